//! The seed's BNModel written as a user writes it, trained with the course's `fit`.
//!
//! cargo run --release --example bn_model [EPOCHS]

use bnlab::data::{load, DatasetKind, Split};
use bnlab::nn::{parameters, BatchNorm, Linear, Module, ReLU, Sequential};
use bnlab::optim::{Adam, AdamConfig};
use bnlab::train::{fit, FitOptions};
use bnlab::{Graph, ParamStore, Result, Rng, Var};
use std::path::Path;

// ---- the model: Linear -> BatchNorm -> Activation, as in the seed ----
struct BNModel {
    b1: Sequential,
    b2: Sequential,
    b3: Sequential,
    output: Linear,
}

fn block(p: &mut ParamStore, i: usize, o: usize, rng: &mut Rng) -> Result<Sequential> {
    let layers = vec![
        Linear::new(p, i, o, rng)?.into(),
        BatchNorm::d1(p, o)?.into(),
        ReLU.into(),
    ];
    Ok(Sequential::new(layers))
}

impl BNModel {
    fn new(p: &mut ParamStore, rng: &mut Rng) -> Result<BNModel> {
        Ok(BNModel {
            b1: block(p, 784, 256, rng)?,
            b2: block(p, 256, 128, rng)?,
            b3: block(p, 128, 64, rng)?,
            output: Linear::new(p, 64, 10, rng)?,
        })
    }
}

impl Module for BNModel {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let out = g.flatten(x)?;
        let out = self.b1.forward(g, out)?;
        let out = self.b2.forward(g, out)?;
        let out = self.b3.forward(g, out)?;
        self.output.forward(g, out)
    }

    // the names of the state dict: b1.0.weight, b1.1.running_mean, ..., output.bias
    fn children(&mut self) -> Vec<(String, &mut dyn Module)> {
        vec![
            ("b1".into(), &mut self.b1 as &mut dyn Module),
            ("b2".into(), &mut self.b2),
            ("b3".into(), &mut self.b3),
            ("output".into(), &mut self.output),
        ]
    }
}
// ---- end of the model ----

fn main() -> Result<()> {
    let epochs = std::env::args()
        .nth(1)
        .and_then(|e| e.parse().ok())
        .unwrap_or(1);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let train = load(DatasetKind::Mnist, Split::Train, &dir)?;
    let test = load(DatasetKind::Mnist, Split::Test, &dir)?;

    let mut rng = Rng::seed(0);
    let mut g = Graph::new(1);
    let mut model = BNModel::new(&mut g.params, &mut rng)?;
    let mut optimizer = Adam::new(
        parameters(&mut model),
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let options = FitOptions {
        epochs,
        ..Default::default()
    };
    let history = fit(
        &mut model,
        &mut g,
        &mut optimizer,
        &train,
        &test,
        &options,
        &mut std::io::stdout(),
    )?;
    println!("validation accuracy per epoch: {:?}", history.lists()[3]);
    bnlab::state_dict::save(&mut model, &g.params, Path::new("bn_model.safetensors"))?;
    println!("saved bn_model.safetensors (loads in PyTorch with load_state_dict)");
    Ok(())
}
