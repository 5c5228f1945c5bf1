//! A layer of the user's own inside a `Sequential` (project issue 12): it trains, its state
//! dict round-trips under PyTorch's names, and it shows in a summary.
//!
//! Oracles: the same computation written by hand (the same Linear layers called one by one,
//! with the residual sum in the forward) trains to bit-identical weights; the state dict's keys
//! are those of the PyTorch module `nn.Sequential(nn.Linear(6, 4), Residual(nn.Linear(4, 4)),
//! nn.ReLU(), nn.Linear(4, 3))` with `Residual.__init__` registering `self.inner`; loading the
//! saved file into a fresh model gives back the same outputs; the summary counts the layer's 20
//! parameters (4 x 4 + 4).

use bnlab::nn::{call, parameters, set_training, Layer, Linear, Module, ReLU, Sequential};
use bnlab::optim::{Adam, AdamConfig, Optimizer};
use bnlab::{Graph, ParamId, Result, Rng, Tensor, Var};

/// y = x + inner(x): a residual block, written as a user of the library writes a layer.
struct Residual {
    inner: Linear,
}

impl Module for Residual {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let y = call(g, &mut self.inner, x)?;
        g.add(x, y)
    }
    fn children(&mut self) -> Vec<(String, &mut dyn Module)> {
        vec![("inner".into(), &mut self.inner)]
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
    fn summary_params(&self) -> Vec<ParamId> {
        std::iter::once(self.inner.weight)
            .chain(self.inner.bias)
            .collect()
    }
}

/// The model, and the same four layers kept apart for the hand-written forward.
fn model(seed: u64) -> (Graph, Sequential) {
    let mut g = Graph::new(1);
    let mut rng = Rng::seed(seed);
    let p = &mut g.params;
    let seq = Sequential::new(vec![
        Linear::new(p, 6, 4, &mut rng).unwrap().into(),
        Layer::custom(Residual {
            inner: Linear::new(p, 4, 4, &mut rng).unwrap(),
        }),
        ReLU.into(),
        Linear::new(p, 4, 3, &mut rng).unwrap().into(),
    ]);
    (g, seq)
}

fn batch(step: u64) -> (Tensor, Vec<u32>) {
    let mut rng = Rng::seed(100 + step);
    let data = (0..8 * 6).map(|_| rng.uniform(-1.0, 1.0)).collect();
    (
        Tensor::new(&[8, 6], data).unwrap(),
        (0..8).map(|i| i % 3).collect(),
    )
}

/// Train three Adam steps, running the model either as the Sequential or by hand.
fn train(by_hand: bool) -> Vec<(String, bnlab::io::StateTensor)> {
    let (mut g, mut seq) = model(7);
    set_training(&mut seq, true);
    let mut opt = Adam::new(parameters(&mut seq), AdamConfig::default());
    for step in 0..3 {
        let (x, labels) = batch(step);
        g.reset();
        let x = g.input(&x, false).unwrap();
        let logits = if by_hand {
            // the same layers, called one by one, with the residual sum written here
            let Layer::Linear(l1) = &mut seq.layers[0] else {
                unreachable!()
            };
            let h = l1.forward(&mut g, x).unwrap();
            let Layer::Custom(r) = &mut seq.layers[1] else {
                unreachable!()
            };
            let (_, inner) = r.children().pop().unwrap();
            let y = inner.forward(&mut g, h).unwrap();
            let s = g.add(h, y).unwrap();
            let a = g.relu(s).unwrap();
            let Layer::Linear(l2) = &mut seq.layers[3] else {
                unreachable!()
            };
            l2.forward(&mut g, a).unwrap()
        } else {
            seq.forward(&mut g, x).unwrap()
        };
        let loss = g.cross_entropy(logits, &labels).unwrap();
        g.params.zero_grad();
        g.backward(loss).unwrap();
        opt.step(&mut g.params);
    }
    bnlab::state_dict::state_dict(&mut seq, &g.params)
}

#[test]
fn a_user_layer_in_a_sequential_trains_as_the_same_computation_by_hand() {
    let in_sequential = train(false);
    let by_hand = train(true);
    assert!(
        in_sequential == by_hand,
        "the Sequential and the hand-written forward differ"
    );
    let keys: Vec<&str> = in_sequential.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "0.weight",
            "0.bias",
            "1.inner.weight",
            "1.inner.bias",
            "3.weight",
            "3.bias"
        ]
    );
    // training moved the user layer's weights
    let (g0, mut s0) = model(7);
    let before = bnlab::state_dict::state_dict(&mut s0, &g0.params);
    assert!(
        before[2] != in_sequential[2],
        "1.inner.weight did not train"
    );
}

#[test]
fn a_user_layers_state_dict_round_trips_and_it_shows_in_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.safetensors");
    let (mut g, mut seq) = model(3);
    bnlab::state_dict::save(&mut seq, &g.params, &path).unwrap();
    let (mut g2, mut seq2) = model(4);
    bnlab::state_dict::load(&mut seq2, &mut g2.params, &path).unwrap();
    let (x, _) = batch(0);
    set_training(&mut seq, false);
    set_training(&mut seq2, false);
    let out = |g: &mut Graph, s: &mut Sequential| {
        g.reset();
        let xv = g.input(&x, false).unwrap();
        let y = s.forward(g, xv).unwrap();
        g.value(y).to_vec()
    };
    assert_eq!(out(&mut g, &mut seq), out(&mut g2, &mut seq2));

    let net = bnlab::nn::Net {
        name: "WithResidual".into(),
        flatten_input: false,
        blocks: vec![("body".into(), seq.into())],
    };
    let table = bnlab::summary::summary(&net, &g.params, &[8, 6]).unwrap();
    let row = table
        .lines()
        .find(|l| l.contains("Residual: "))
        .unwrap_or_else(|| panic!("no Residual row:\n{table}"));
    assert!(
        row.contains("[8, 4]") && row.trim_end().ends_with("20"),
        "{row}"
    );
    // 6*4+4 + 20 + 4*3+3
    assert!(table.contains("Total params: 63"), "{table}");
}
