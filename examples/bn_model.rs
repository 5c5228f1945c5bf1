//! The seed's BNModel written as a user writes it, trained with the course's `fit` on MNIST,
//! its weights saved for PyTorch. This file is the README's library section, word for word
//! (tests/readme_library.rs checks it), and compiles as it is in a crate of your own.
//!
//! cargo run --release --example bn_model [EPOCHS]

use bnlab::data::{mnist, Split};
use bnlab::nn::{parameters, BatchNorm, Forward, Linear, Module, ReLU, Sequential};
use bnlab::optim::{Adam, AdamConfig};
use bnlab::train::{FitOptions, Learner};
use bnlab::{Graph, ParamStore, Result, Rng, Var};
use std::path::Path;

// ---- the model: Linear -> BatchNorm -> Activation, as in the seed ----
// The fields name the state dict, as PyTorch's attributes do: b1.0.weight, b1.1.running_mean,
// ..., output.bias.
#[derive(Module)]
struct BNModel {
    b1: Sequential,
    b2: Sequential,
    b3: Sequential,
    output: Linear,
}

impl BNModel {
    fn new(p: &mut ParamStore, rng: &mut Rng) -> Result<BNModel> {
        let mut block = |i, o| -> Result<Sequential> {
            let linear = Linear::new(p, i, o, rng)?;
            Ok(Sequential::new(vec![
                linear.into(),
                BatchNorm::d1(p, o)?.into(),
                ReLU.into(),
            ]))
        };
        let (b1, b2, b3) = (block(784, 256)?, block(256, 128)?, block(128, 64)?);
        let output = Linear::new(p, 64, 10, rng)?;
        Ok(BNModel { b1, b2, b3, output })
    }
}

impl Forward for BNModel {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let out = g.flatten(x)?;
        let out = self.b1.forward(g, out)?;
        let out = self.b2.forward(g, out)?;
        let out = self.b3.forward(g, out)?;
        self.output.forward(g, out)
    }
}
// ---- end of the model ----

fn main() {
    // errors as one readable line (their Display), not Rust's Debug form
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let epochs = std::env::args()
        .nth(1)
        .and_then(|e| e.parse().ok())
        .unwrap_or(1);
    // the crate's own copy of MNIST, else the cache folder (downloaded there once)
    let train = mnist(Split::Train)?;
    let test = mnist(Split::Test)?;

    let mut rng = Rng::seed(0);
    let mut g = Graph::new(1);
    let mut model = BNModel::new(&mut g.params, &mut rng)?;
    let mut optimizer = Adam::new(
        parameters(&model),
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let options = FitOptions {
        epochs,
        batch_size: 256,
        ..Default::default()
    };
    let history = Learner::new(&mut model, &mut g, &mut optimizer).fit(&train, &test, &options)?;
    println!(
        "validation accuracy per epoch: {:?}",
        history.val_accuracies()
    );
    bnlab::state_dict::save(&model, &g.params, Path::new("bn_model.safetensors"))?;
    println!("saved bn_model.safetensors (loads in PyTorch with load_state_dict)");
    Ok(())
}
