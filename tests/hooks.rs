//! Forward and backward hooks on modules (project issue 12), checked against independent
//! computations from the hooked tensors:
//! - a BatchNorm1d's hooked output is its hooked input normalised by that batch's mean and
//!   biased variance (training mode, weight 1 and bias 0 at initialisation);
//! - a layer's hooked input is the previous layer's hooked output;
//! - the gradient reaching the logits is (softmax(logits) - onehot) / N, cross entropy's
//!   closed form, computed here from the hooked logits;
//! - hooks change nothing: the weights after training steps are bit for bit those without;
//! - a hook on a layer of a fused block sees that layer's own output, and the block's values
//!   stay the same; a removed hook is not called; a wrong path is an error naming it;
//! - hooks belong to state-dict paths, not addresses (issue 20): in `struct Wrap { inner:
//!   Linear }` the struct and its field share an address, yet a hook on `""` sees only the
//!   model (its output is relu of inner's), a hook on `"inner"` only the Linear, and a model
//!   moved after registration still runs its hooks.

use bnlab::nn::{
    call, register_backward_hook, register_forward_hook, set_training, Forward, Linear, Module, Net,
};
use bnlab::presets::{mlp, Preset};
use bnlab::{Graph, Result, Rng, Tensor, Var};
use std::cell::RefCell;
use std::rc::Rc;

type Seen = Rc<RefCell<Vec<(Vec<usize>, Vec<f32>)>>>;

fn seen() -> Seen {
    Rc::new(RefCell::new(Vec::new()))
}

/// A small MLP of the seed's kind (Linear -> BatchNorm1d -> ReLU blocks), in training mode.
fn model(preset: Preset) -> (Graph, Net) {
    let mut g = Graph::new(3);
    let net = mlp(&mut g.params, preset, &[12, 8, 6, 4], &mut Rng::seed(5)).unwrap();
    (g, net)
}

fn batch(n: usize, features: usize, seed: u64) -> (Tensor, Vec<u32>) {
    let mut rng = Rng::seed(seed);
    let data = (0..n * features).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let labels = (0..n as u32).map(|i| i % 4).collect();
    (Tensor::new(&[n, features], data).unwrap(), labels)
}

/// One training step of `net` on a batch: forward through `call`, cross entropy, backward.
fn step(g: &mut Graph, net: &mut Net, x: &Tensor, labels: &[u32]) {
    g.reset();
    let x = g.input(x, false).unwrap();
    let logits = call(g, net, x).unwrap();
    let loss = g.cross_entropy(logits, labels).unwrap();
    g.params.zero_grad();
    g.backward(loss).unwrap();
}

/// A forward hook that keeps (shape, values) of the input (`input`) or the output.
fn keep(sink: &Seen, input: bool) -> impl FnMut(&Graph, bnlab::Var, bnlab::Var) + 'static {
    let sink = sink.clone();
    move |g, x, y| {
        let v = if input { x } else { y };
        sink.borrow_mut()
            .push((g.shape(v).to_vec(), g.value(v).to_vec()));
    }
}

#[test]
fn a_batch_norms_hooked_output_is_its_hooked_input_normalised() {
    let (mut g, mut net) = model(Preset::Bn);
    set_training(&mut net, true);
    let (inputs, outputs, linear_out) = (seen(), seen(), seen());
    register_forward_hook(&mut g, &net, "b1.1", keep(&inputs, true)).unwrap();
    register_forward_hook(&mut g, &net, "b1.1", keep(&outputs, false)).unwrap();
    register_forward_hook(&mut g, &net, "b1.0", keep(&linear_out, false)).unwrap();
    let (x, labels) = batch(16, 12, 1);
    step(&mut g, &mut net, &x, &labels);
    let (shape, xin) = inputs.borrow()[0].clone();
    let (out_shape, yout) = outputs.borrow()[0].clone();
    assert_eq!(shape, vec![16, 8]);
    assert_eq!(out_shape, shape);
    assert_eq!(
        linear_out.borrow()[0].1,
        xin,
        "b1.1's input is b1.0's output"
    );
    let (n, c) = (16, 8);
    for j in 0..c {
        let col: Vec<f64> = (0..n).map(|i| xin[i * c + j] as f64).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        for i in 0..n {
            let want = (col[i] - mean) / (var + 1e-5).sqrt();
            let got = yout[i * c + j] as f64;
            assert!(
                (got - want).abs() < 1e-4,
                "unit {j}, row {i}: {got} vs {want}"
            );
        }
    }
    // one call per forward
    step(&mut g, &mut net, &x, &labels);
    assert_eq!(inputs.borrow().len(), 2);
}

#[test]
fn the_gradient_reaching_the_logits_is_cross_entropys_closed_form() {
    let (mut g, mut net) = model(Preset::Bn);
    set_training(&mut net, true);
    let (logits, grads) = (seen(), seen());
    register_forward_hook(&mut g, &net, "output", keep(&logits, false)).unwrap();
    let sink = grads.clone();
    register_backward_hook(&mut g, &net, "output", move |grad, shape| {
        sink.borrow_mut().push((shape.to_vec(), grad.to_vec()));
    })
    .unwrap();
    let (x, labels) = batch(10, 12, 2);
    step(&mut g, &mut net, &x, &labels);
    let (shape, z) = logits.borrow()[0].clone();
    let (gshape, dz) = grads.borrow()[0].clone();
    assert_eq!(shape, vec![10, 4]);
    assert_eq!(gshape, shape);
    for (i, row) in z.chunks(4).enumerate() {
        let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let exps: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        for k in 0..4 {
            let onehot = if labels[i] as usize == k { 1.0 } else { 0.0 };
            let want = (exps[k] / sum - onehot) / 10.0;
            let got = dz[i * 4 + k] as f64;
            assert!(
                (got - want).abs() < 1e-6,
                "row {i}, class {k}: {got} vs {want}"
            );
        }
    }
    // in eval mode without gradients the backward hook has nothing to see
    set_training(&mut net, false);
    g.set_grad_enabled(false);
    g.reset();
    let xv = g.input(&x, false).unwrap();
    call(&mut g, &mut net, xv).unwrap();
    assert_eq!(grads.borrow().len(), 1);
    assert_eq!(
        logits.borrow().len(),
        2,
        "the forward hook still runs in eval mode"
    );
}

#[test]
fn hooks_change_nothing_and_a_removed_hook_is_not_called() {
    let weights = |hooked: bool| {
        let (mut g, mut net) = model(Preset::BnDropout);
        set_training(&mut net, true);
        let calls = seen();
        if hooked {
            for path in ["", "b1", "b1.1", "b2.2", "output"] {
                register_forward_hook(&mut g, &net, path, keep(&calls, false)).unwrap();
                register_backward_hook(&mut g, &net, path, |_, _| {}).unwrap();
            }
        }
        let mut opt = bnlab::optim::Adam::new(
            bnlab::nn::parameters(&net),
            bnlab::optim::AdamConfig::default(),
        );
        for s in 0..3 {
            let (x, labels) = batch(8, 12, 10 + s);
            step(&mut g, &mut net, &x, &labels);
            bnlab::optim::Optimizer::step(&mut opt, &mut g.params);
        }
        if hooked {
            assert_eq!(calls.borrow().len(), 5 * 3, "every hook once per step");
        }
        bnlab::state_dict::state_dict(&net, &g.params)
    };
    let plain = weights(false);
    let hooked = weights(true);
    assert!(plain == hooked, "hooks changed the training");

    let (mut g, mut net) = model(Preset::Bn);
    let calls = seen();
    let h = register_forward_hook(&mut g, &net, "b2", keep(&calls, false)).unwrap();
    let (x, labels) = batch(4, 12, 3);
    step(&mut g, &mut net, &x, &labels);
    assert!(g.remove_hook(h));
    assert!(!g.remove_hook(h), "removed once");
    step(&mut g, &mut net, &x, &labels);
    assert_eq!(calls.borrow().len(), 1);
}

#[test]
fn a_hook_inside_a_fused_block_sees_its_layer_and_changes_no_value() {
    let run = |hooked: bool| {
        let mut g = Graph::new(0);
        let mut net = Preset::CnnBn
            .build(&mut g.params, 1, 12, &mut Rng::seed(4))
            .unwrap();
        set_training(&mut net, true);
        let bn_out = seen();
        if hooked {
            register_forward_hook(&mut g, &net, "b1.1", keep(&bn_out, false)).unwrap();
        }
        let mut rng = Rng::seed(9);
        let data = (0..4 * 144).map(|_| rng.uniform(0.0, 1.0)).collect();
        let x = Tensor::new(&[4, 1, 12, 12], data).unwrap();
        g.reset();
        let xv = g.input(&x, false).unwrap();
        let y = call(&mut g, &mut net, xv).unwrap();
        let seen = bn_out.borrow().clone();
        (g.value(y).to_vec(), seen)
    };
    let (fused, none) = run(false);
    let (unfused, seen) = run(true);
    assert!(none.is_empty());
    assert_eq!(fused, unfused, "the fused block and its layers one by one");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, vec![4, 32, 12, 12], "BatchNorm2d's own output");
}

#[test]
fn a_path_that_names_no_module_is_an_error_naming_it() {
    let (mut g, net) = model(Preset::Bn);
    let e = register_forward_hook(&mut g, &net, "b1.7", |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("b1.7") && e.contains("0, 1, 2"), "{e}");
    let e = register_backward_hook(&mut g, &net, "head", |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("head") && e.contains("b1, b2, output"), "{e}");
    assert!(g.hooks().is_empty());
    let _: &dyn Module = &net;
}

/// relu(inner(x)): a model whose only field sits at the model's own address.
#[derive(Module)]
struct Wrap {
    inner: Linear,
}

impl Forward for Wrap {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let h = call(g, &mut self.inner, x)?;
        g.relu(h)
    }
}

fn wrap() -> (Graph, Wrap) {
    let mut g = Graph::new(0);
    let inner = Linear::new(&mut g.params, 5, 7, &mut Rng::seed(11)).unwrap();
    (g, Wrap { inner })
}

/// Run `model` once through `call` on a fixed batch: (input values, output values).
fn run(g: &mut Graph, model: &mut Wrap) -> (Vec<f32>, Vec<f32>) {
    let (x, _) = batch(6, 5, 21);
    g.reset();
    let xv = g.input(&x, false).unwrap();
    let y = call(g, model, xv).unwrap();
    (x.data.clone(), g.value(y).to_vec())
}

#[test]
fn a_struct_and_its_first_field_share_an_address_but_not_their_hooks() {
    let (mut g, mut model) = wrap();
    let addr_model = &model as *const Wrap as usize;
    let addr_inner = &model.inner as *const Linear as usize;
    assert_eq!(addr_model, addr_inner, "the case this test is about");
    let (model_io, inner_io) = (seen(), seen());
    let (model_in, inner_in) = (seen(), seen());
    register_forward_hook(&mut g, &model, "", keep(&model_io, false)).unwrap();
    register_forward_hook(&mut g, &model, "", keep(&model_in, true)).unwrap();
    register_forward_hook(&mut g, &model, "inner", keep(&inner_io, false)).unwrap();
    register_forward_hook(&mut g, &model, "inner", keep(&inner_in, true)).unwrap();
    let (x, y) = run(&mut g, &mut model);

    // the hook on "" fires once, for the model: its output is the model's (relu'd) output
    assert_eq!(
        model_io.borrow().len(),
        1,
        "the hook on \"\" fired for inner too"
    );
    assert_eq!(model_io.borrow()[0].1, y);
    assert_eq!(model_in.borrow()[0].1, x);

    // the hook on "inner" fires once, for the Linear: the model's output is relu of it
    assert_eq!(
        inner_io.borrow().len(),
        1,
        "the hook on \"inner\" fired for the model"
    );
    let h = inner_io.borrow()[0].1.clone();
    assert!(
        h.iter().any(|&v| v < 0.0),
        "relu must change something here"
    );
    let relu: Vec<f32> = h.iter().map(|&v| v.max(0.0)).collect();
    assert_eq!(relu, y, "the model's output is relu of inner's");
    assert_eq!(inner_in.borrow()[0].1, x, "inner's input is the batch");
}

#[test]
fn a_model_moved_after_registering_keeps_its_hooks() {
    let (mut g, model) = wrap();
    let (outer, inner) = (seen(), seen());
    register_forward_hook(&mut g, &model, "", keep(&outer, false)).unwrap();
    let sink = inner.clone();
    register_backward_hook(&mut g, &model, "inner", move |grad, shape| {
        sink.borrow_mut().push((shape.to_vec(), grad.to_vec()));
    })
    .unwrap();
    let before = &model as *const Wrap as usize;
    let mut moved = Box::new(model);
    assert_ne!(before, &*moved as *const Wrap as usize, "the model moved");

    let (x, _) = batch(6, 5, 21);
    g.reset();
    let xv = g.input(&x, false).unwrap();
    let y = call(&mut g, moved.as_mut(), xv).unwrap();
    let ones = vec![1.0; g.value(y).len()];
    g.backward_from(y, &ones).unwrap();
    assert_eq!(
        outer.borrow().len(),
        1,
        "the forward hook on the moved model"
    );
    assert_eq!(outer.borrow()[0].1, g.value(y).to_vec());
    // d(sum relu(h))/dh is 1 where h > 0 and 0 elsewhere
    assert_eq!(
        inner.borrow().len(),
        1,
        "the backward hook on the moved model's inner"
    );
    let (shape, grad) = inner.borrow()[0].clone();
    assert_eq!(shape, vec![6, 7]);
    let want: Vec<f32> = g
        .value(y)
        .iter()
        .map(|&v| if v > 0.0 { 1.0 } else { 0.0 })
        .collect();
    assert_eq!(grad, want);
}
