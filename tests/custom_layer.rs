//! A layer of the user's own inside a `Sequential` (project issue 12): it trains, its state
//! dict round-trips under PyTorch's names, and it shows in a summary.
//!
//! Oracles: the same computation written by hand (the same Linear layers called one by one,
//! with the residual sum in the forward) trains to bit-identical weights; the state dict's keys
//! are those of the PyTorch module `nn.Sequential(nn.Linear(6, 4), Residual(nn.Linear(4, 4)),
//! nn.ReLU(), nn.Linear(4, 3))` with `Residual.__init__` registering `self.inner`; loading the
//! saved file into a fresh model gives back the same outputs; the summary counts the layer's 20
//! parameters (4 x 4 + 4).

use bnlab::nn::{call, parameters, set_training, Forward, Layer, Linear, Module, ReLU, Sequential};
use bnlab::optim::{Adam, AdamConfig, Optimizer};
use bnlab::{Graph, ParamId, Result, Rng, Tensor, Var};

/// y = x + inner(x): a residual block, written as a user of the library writes a layer.
#[derive(Module)]
struct Residual {
    inner: Linear,
}

impl Forward for Residual {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let y = call(g, &mut self.inner, x)?;
        g.add(x, y)
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
}

/// A leaf layer of the user's own with every kind of field the derive knows: parameters
/// (`ParamId`, `Option<ParamId>`), a buffer, and a field that is not state.
#[derive(Module)]
struct Leaf {
    weight: ParamId,
    bias: Option<ParamId>,
    no_bias: Option<ParamId>,
    #[module(buffer)]
    running: Tensor,
    #[module(skip)]
    #[allow(dead_code)]
    width: usize,
}

impl Forward for Leaf {
    fn forward(&mut self, _g: &mut Graph, x: Var) -> Result<Var> {
        Ok(x)
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
    let mut opt = Adam::new(parameters(&seq), AdamConfig::default());
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
            let (_, inner) = r.children_mut().pop().unwrap();
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
    bnlab::state_dict::state_dict(&seq, &g.params)
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
    let (g0, s0) = model(7);
    let before = bnlab::state_dict::state_dict(&s0, &g0.params);
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
    bnlab::state_dict::save(&seq, &g.params, &path).unwrap();
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
    // torchinfo shows a module that holds others as a container ("--"), its parameters on the
    // rows of what it holds: Residual's on its inner Linear, one level down
    let row = |title: &str| {
        table
            .lines()
            .find(|l| l.contains(title))
            .unwrap_or_else(|| panic!("no {title} row:\n{table}"))
            .to_string()
    };
    let residual = row("Residual: 2-2");
    assert!(
        residual.contains("[8, 4]") && residual.trim_end().ends_with("--"),
        "{residual}"
    );
    let inner = row("Linear: 3-1");
    assert!(
        inner.contains("[8, 4]") && inner.trim_end().ends_with("20"),
        "{inner}\n{table}"
    );
    // 6*4+4 + 20 + 4*3+3
    assert!(table.contains("Total params: 63"), "{table}");
}

#[test]
fn the_derive_names_parameters_buffers_and_children_by_their_fields() {
    let mut g = Graph::new(0);
    let p = &mut g.params;
    let mut leaf = |value: f32| Leaf {
        weight: p.add(Tensor::full(&[3], value)).unwrap(),
        bias: Some(p.add(Tensor::full(&[3], -value)).unwrap()),
        no_bias: None,
        running: Tensor::full(&[2], 10.0 * value),
        width: 3,
    };
    let (a, mut b) = (leaf(1.0), leaf(2.0));
    let sd = bnlab::state_dict::state_dict(&a, &g.params);
    let keys: Vec<&str> = sd.iter().map(|(k, _)| k.as_str()).collect();
    // PyTorch's order: parameters, then buffers; the skipped field and the absent bias are not
    // state
    assert_eq!(keys, ["weight", "bias", "running"]);
    let tensors = sd.into_iter().collect();
    bnlab::state_dict::load_state_dict(&mut b, &mut g.params, &tensors, "").unwrap();
    assert_eq!(g.params.value(b.weight), &[1.0; 3]);
    assert_eq!(g.params.value(b.bias.unwrap()), &[-1.0; 3]);
    assert_eq!(b.running.data, [10.0; 2]);
    assert_eq!(b.children().len(), 0);
    let residual = Residual {
        inner: Linear::new(&mut g.params, 2, 2, &mut Rng::seed(0)).unwrap(),
    };
    let names: Vec<String> = residual.children().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["inner"]);
    assert_eq!(Module::type_name(&residual), "Residual");
}

/// A user's norm layer with the derive's other marks: an int64 counter and buffers kept only
/// while `self.tracking()` (as PyTorch leaves out a buffer registered as None), and a class
/// name of its own.
#[derive(Module)]
#[module(type_name = Counted::class)]
struct Counted {
    scale: ParamId,
    #[module(buffer, when = tracking)]
    mean: Tensor,
    #[module(counter, when = tracking)]
    seen: i64,
    #[module(skip)]
    track: bool,
}

impl Counted {
    fn tracking(&self) -> bool {
        self.track
    }
    fn class(&self) -> &'static str {
        if self.track {
            "CountedTracking"
        } else {
            "Counted"
        }
    }
}

impl Forward for Counted {
    fn forward(&mut self, _g: &mut Graph, x: Var) -> Result<Var> {
        Ok(x)
    }
}

/// A field-less layer: no children, no state.
#[derive(Module)]
struct Nothing;

impl Forward for Nothing {
    fn forward(&mut self, _g: &mut Graph, x: Var) -> Result<Var> {
        Ok(x)
    }
}

#[test]
fn the_derive_keeps_counters_leaves_out_untracked_state_and_names_the_class() {
    let mut g = Graph::new(0);
    let mut counted = |track: bool| Counted {
        scale: g.params.add(Tensor::full(&[2], 1.0)).unwrap(),
        mean: Tensor::full(&[2], 0.5),
        seen: 4,
        track,
    };
    let (tracking, mut plain) = (counted(true), counted(false));
    let keys = |m: &dyn Module| {
        let mut k = Vec::new();
        bnlab::nn::visit_state(m, "", &mut |name, _| k.push(name.to_string()));
        k
    };
    assert_eq!(keys(&tracking), ["scale", "mean", "seen"]);
    assert_eq!(keys(&plain), ["scale"]);
    assert_eq!(Module::type_name(&tracking), "CountedTracking");
    assert_eq!(Module::type_name(&plain), "Counted");
    // the counter is an int64 scalar in the state dict, and loads back into the field
    let sd = bnlab::state_dict::state_dict(&tracking, &g.params);
    assert!(matches!(
        &sd[2].1,
        bnlab::io::StateTensor::I64 { shape, data } if shape.is_empty() && data == &[4]
    ));
    plain.track = true;
    plain.seen = 0;
    plain.mean = Tensor::zeros(&[2]);
    let tensors = sd.into_iter().collect();
    bnlab::state_dict::load_state_dict(&mut plain, &mut g.params, &tensors, "").unwrap();
    assert_eq!((plain.seen, plain.mean.data.clone()), (4, vec![0.5; 2]));
    assert!(keys(&Nothing).is_empty() && Nothing.children().is_empty());
}

/// A model that is a derived struct, not a Net: summary describes it through its fields.
#[derive(Module)]
struct Mlp {
    hidden: Linear,
    act: ReLU,
    output: Linear,
}

impl Forward for Mlp {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let h = self.hidden.forward(g, x)?;
        let h = self.act.forward(g, h)?;
        self.output.forward(g, h)
    }
}

#[test]
fn summary_describes_any_module_through_its_children() {
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(0);
    let mlp = Mlp {
        hidden: Linear::new(&mut g.params, 5, 7, &mut rng).unwrap(),
        act: ReLU,
        output: Linear::new(&mut g.params, 7, 2, &mut rng).unwrap(),
    };
    let table = bnlab::summary::summary(&mlp, &g.params, &[3, 5]).unwrap();
    let titles = ["Mlp", "Linear: 1-1", "ReLU: 1-2", "Linear: 1-3"];
    for (title, shape, params) in [
        (titles[1], "[3, 7]", "42"),
        (titles[2], "[3, 7]", "--"),
        (titles[3], "[3, 2]", "16"),
    ] {
        let row = table.lines().find(|l| l.contains(title)).unwrap();
        assert!(
            row.contains(shape) && row.trim_end().ends_with(params),
            "{row}"
        );
    }
    // 5*7+7 + 7*2+2, and mult-adds batch x parameters: 3 * 58
    assert!(table.contains("Total params: 58"), "{table}");
    assert!(table.contains("Total mult-adds (M): 0.00"), "{table}");
    // a shape the model cannot take names the layer
    let err = bnlab::summary::summary(&mlp, &g.params, &[3, 6]).unwrap_err();
    assert!(err.to_string().contains("hidden"), "{err}");
}
