//! The sparse first layer: a batch handed over with its CSR (as training does, from the
//! dataset's nonzeros) gives exactly what the same batch gives as dense values, and both agree
//! with the dense matrix product within float rounding. A Linear whose weight is stored
//! transposed (as the presets' first layer is) computes the same values and gradients.

use bnlab::data::{gather_batch, Dataset};
use bnlab::nn::{Forward, Linear, LinearConfig, ParamMapper};
use bnlab::{Graph, ParamId, ParamStore, Rng, Tensor};

/// Values laid out as parameter `id` is stored (its value or gradient), in PyTorch's layout:
/// through the Linear's save mapper when it keeps W^T.
fn torch_layout(params: &ParamStore, id: ParamId, transposed: bool, values: &[f32]) -> Vec<f32> {
    if transposed {
        (ParamMapper::TRANSPOSE.save)(params.shape(id), values)
    } else {
        values.to_vec()
    }
}

/// A small dataset of 6 x 6 byte images, about 80% zeros.
fn dataset(n: usize, rng: &mut Rng) -> Dataset {
    let images = (0..n * 36)
        .map(|_| {
            if rng.next_f32() < 0.8 {
                0
            } else {
                1 + (rng.next_f32() * 254.0) as u8
            }
        })
        .collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::new(images, labels, [1, 6, 6], 10).unwrap()
}

/// Outputs and weight gradient (in PyTorch's layout) of a Linear(36, 5) on the batch, its
/// input given three ways, its weight stored as W or W^T. `twice`: the layer is applied twice
/// and the two outputs added, so that its weight gradient accumulates over two nodes.
fn run_with(
    ds: &Dataset,
    indices: &[u32],
    how: &str,
    stored_transposed: bool,
    twice: bool,
) -> (Vec<f32>, Vec<f32>) {
    let mut g = Graph::new(0);
    let rng = &mut Rng::seed(7);
    let mut lin = if stored_transposed {
        Linear::with_config(
            &mut g.params,
            LinearConfig {
                stored_transpose: true,
                ..LinearConfig::new(36, 5)
            },
            rng,
        )
        .unwrap()
    } else {
        Linear::new(&mut g.params, 36, 5, rng).unwrap()
    };
    let n = indices.len();
    let mut labels = vec![0u32; n];
    let x = match how {
        "csr" => g
            .input_with_csr(&[n, 1, 6, 6], |buf, csr| {
                gather_batch(ds, indices, buf, &mut labels).unwrap();
                ds.nonzeros().gather(indices, csr);
            })
            .unwrap(),
        "dense-sparse-kernels" => g
            .input_with(&[n, 1, 6, 6], |buf| {
                gather_batch(ds, indices, buf, &mut labels).unwrap()
            })
            .unwrap(),
        _ => {
            // an input that needs a gradient always takes the dense GEMM
            let mut buf = vec![0.0; n * 36];
            gather_batch(ds, indices, &mut buf, &mut labels).unwrap();
            g.input(&Tensor::new(&[n, 1, 6, 6], buf).unwrap(), true)
                .unwrap()
        }
    };
    let flat = g.flatten(x).unwrap();
    let mut y = lin.forward(&mut g, flat).unwrap();
    if twice {
        let again = lin.forward(&mut g, flat).unwrap();
        y = g.add(y, again).unwrap();
    }
    let upstream: Vec<f32> = (0..n * 5).map(|i| (i as f32 * 0.37).sin()).collect();
    g.backward_from(y, &upstream).unwrap();
    let dw = g.params.grad(lin.weight).unwrap();
    (
        g.value(y).to_vec(),
        torch_layout(&g.params, lin.weight, lin.stores_transpose(), dw),
    )
}

fn run(ds: &Dataset, indices: &[u32], how: &str) -> (Vec<f32>, Vec<f32>) {
    run_with(ds, indices, how, false, false)
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-5 + 1e-5 * y.abs(),
            "{what}: {x} against {y}"
        );
    }
}

#[test]
fn csr_from_the_dataset_equals_dense_input_and_the_dense_product() {
    let mut rng = Rng::seed(1);
    let ds = dataset(40, &mut rng);
    let indices: Vec<u32> = vec![3, 17, 0, 39, 22, 8, 8, 31];
    let (y_csr, dw_csr) = run(&ds, &indices, "csr");
    let (y_sparse, dw_sparse) = run(&ds, &indices, "dense-sparse-kernels");
    let (y_gemm, dw_gemm) = run(&ds, &indices, "gemm");
    assert_eq!(
        y_csr, y_sparse,
        "the dataset's CSR and a CSR built from dense values must agree exactly"
    );
    assert_eq!(dw_csr, dw_sparse);
    for (a, b) in y_csr.iter().zip(&y_gemm).chain(dw_csr.iter().zip(&dw_gemm)) {
        assert!(
            (a - b).abs() <= 1e-5 + 1e-5 * b.abs(),
            "sparse {a} against dense {b}"
        );
    }
}

#[test]
fn a_weight_stored_transposed_gives_the_same_values_and_gradients() {
    let mut rng = Rng::seed(2);
    let ds = dataset(40, &mut rng);
    let indices: Vec<u32> = vec![5, 1, 33, 12, 12, 27, 0];
    for how in ["csr", "dense-sparse-kernels", "gemm"] {
        for twice in [false, true] {
            let (y, dw) = run_with(&ds, &indices, how, false, twice);
            let (y_t, dw_t) = run_with(&ds, &indices, how, true, twice);
            if how == "gemm" {
                // the GEMM may order its sums differently for the other layout
                assert_close(&y_t, &y, "output");
                assert_close(&dw_t, &dw, "weight gradient");
            } else {
                // the sparse kernels read the same W^T and sum in the same order
                assert_eq!(y_t, y, "{how}, twice {twice}: output");
                assert_eq!(dw_t, dw, "{how}, twice {twice}: weight gradient");
            }
        }
    }
}

#[test]
fn a_weight_stored_transposed_keeps_pytorchs_layout_in_the_state_dict() {
    use bnlab::state_dict::{load_state_dict, state_dict};
    let (mut pa, mut pb) = (ParamStore::new(), ParamStore::new());
    let a = Linear::new(&mut pa, 3, 2, &mut Rng::seed(4)).unwrap();
    let mut b = Linear::with_config(
        &mut pb,
        LinearConfig {
            stored_transpose: true,
            ..LinearConfig::new(3, 2)
        },
        &mut Rng::seed(4),
    )
    .unwrap();
    assert!(b.stores_transpose() && !a.stores_transpose());
    assert_eq!(pb.shape(b.weight), [3, 2], "stored as W^T");
    assert_eq!(b.torch_weight(&pb).shape, vec![2, 3]);
    assert_eq!(b.torch_weight(&pb), a.torch_weight(&pa));
    // same initial values, same state dict (PyTorch's (out, in) weight)
    let (sa, sb) = (state_dict(&a, &pa), state_dict(&b, &pb));
    assert_eq!(format!("{sa:?}"), format!("{sb:?}"));
    // W^T in memory: stored[i * 2 + o] = W[o, i]
    let w = pa.value(a.weight).to_vec();
    for o in 0..2 {
        for i in 0..3 {
            assert_eq!(pb.value(b.weight)[i * 2 + o], w[o * 3 + i]);
        }
    }
    // loading a state dict (PyTorch's layout) stores the transpose
    let tensors: std::collections::BTreeMap<_, _> = vec![
        (
            "weight".to_string(),
            bnlab::io::StateTensor::F32(
                Tensor::new(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap(),
            ),
        ),
        (
            "bias".to_string(),
            bnlab::io::StateTensor::F32(Tensor::new(&[2], vec![0.5, -0.5]).unwrap()),
        ),
    ]
    .into_iter()
    .collect();
    load_state_dict(&mut b, &mut pb, &tensors, "").unwrap();
    assert_eq!(pb.value(b.weight), [1., 4., 2., 5., 3., 6.]);
    // and a wrong shape is reported in PyTorch's terms
    let mut bad = tensors.clone();
    bad.insert(
        "weight".to_string(),
        bnlab::io::StateTensor::F32(Tensor::new(&[3, 2], vec![0.; 6]).unwrap()),
    );
    let err = load_state_dict(&mut b, &mut pb, &bad, "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[3, 2]") && err.contains("[2, 3]"), "{err}");
}

/// The optimizer does not care how a layer stores its weight: one Adam step from the same
/// weights on the same batch gives the same weights in PyTorch's layout, and moments that are
/// the stored layout's image of the same moments (a checkpoint is read back by a model built
/// the same way).
#[test]
fn the_optimizer_does_not_care_how_the_weight_is_stored() {
    use bnlab::optim::{Adam, AdamConfig, Optimizer};
    let mut rng = Rng::seed(5);
    let ds = dataset(20, &mut rng);
    let indices: Vec<u32> = (0..12).collect();
    // one Adam step on each layout, from the same weights and the same batch
    let state_after_a_step = |stored_transposed: bool| {
        let mut g = Graph::new(0);
        let rng = &mut Rng::seed(9);
        let mut lin = if stored_transposed {
            Linear::with_config(
                &mut g.params,
                LinearConfig {
                    stored_transpose: true,
                    ..LinearConfig::new(36, 10)
                },
                rng,
            )
            .unwrap()
        } else {
            Linear::new(&mut g.params, 36, 10, rng).unwrap()
        };
        let mut labels = vec![0u32; indices.len()];
        let x = g
            .input_with_csr(&[indices.len(), 1, 6, 6], |buf, csr| {
                gather_batch(&ds, &indices, buf, &mut labels).unwrap();
                ds.nonzeros().gather(&indices, csr);
            })
            .unwrap();
        let flat = g.flatten(x).unwrap();
        let y = lin.forward(&mut g, flat).unwrap();
        let loss = g.cross_entropy(y, &labels).unwrap();
        g.backward(loss).unwrap();
        let mut opt = Adam::new(vec![lin.weight, lin.bias.unwrap()], AdamConfig::default());
        opt.step(&mut g.params);
        let mut state = opt.state(&g.params);
        // the state goes back in: the same state comes out
        let mut again = Adam::new(vec![lin.weight, lin.bias.unwrap()], AdamConfig::default());
        again.load_state(&state, &g.params).unwrap();
        assert_eq!(again.state(&g.params), state);
        // the weight's moments, in PyTorch's layout
        for (name, moment) in &mut state {
            if name.starts_with("0.exp_avg") {
                *moment = torch_layout(&g.params, lin.weight, stored_transposed, moment);
            }
        }
        (lin.torch_weight(&g.params), state)
    };
    let (w_t, state_t) = state_after_a_step(true);
    let (w, state) = state_after_a_step(false);
    assert_eq!(w_t, w, "the weights after a step");
    assert_eq!(state_t, state, "the optimizer's state");
}

/// `n` MNIST-like 28 x 28 byte images: about 19% of pixels nonzero (MNIST's share), or,
/// `dense`, every pixel nonzero (as in photographs).
fn images(n: usize, dense: bool, rng: &mut Rng) -> Dataset {
    let pixels = (0..n * 784)
        .map(|_| {
            if dense || rng.next_f32() < 0.19 {
                1 + (rng.next_f32() * 254.0) as u8
            } else {
                0
            }
        })
        .collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::new(pixels, labels, [1, 28, 28], 10).unwrap()
}

/// The dense reference in f64, from PyTorch's (out, in) weight: the mean cross entropy of
/// x W^T + b against the labels, and its gradient with respect to W.
fn reference(x: &[f32], labels: &[u32], w: &[f32], b: &[f32], o: usize) -> (f64, Vec<f64>) {
    let i = w.len() / o;
    let n = labels.len();
    let (mut loss, mut dw) = (0.0, vec![0.0; o * i]);
    for (row, &y) in x.chunks_exact(i).zip(labels) {
        let z: Vec<f64> = (0..o)
            .map(|k| {
                let dot: f64 = (0..i).map(|j| row[j] as f64 * w[k * i + j] as f64).sum();
                dot + b[k] as f64
            })
            .collect();
        let max = z.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
        loss += (sum.ln() + max - z[y as usize]) / n as f64;
        for k in 0..o {
            let p = (z[k] - max).exp() / sum - if k == y as usize { 1.0 } else { 0.0 };
            for j in 0..i {
                dw[k * i + j] += p * row[j] as f64 / n as f64;
            }
        }
    }
    (loss, dw)
}

/// The Linear reading the model's input decides from each batch whether it is sparse, the
/// same way whether the model flattens inline (`Net`) or with a leading `Flatten` layer
/// (`Sequential`), and whatever its weight's layout: MNIST-like batches take the sparse
/// kernels (and the loop then hands the next batch over with its nonzeros), batches with no
/// zeros the dense ones. Either way the loss and the weight gradient are the dense reference's.
#[test]
fn the_linear_reading_the_input_decides_from_each_batchs_density() {
    use bnlab::nn::{Flatten, Layer, Net, Sequential};
    use bnlab::train::{run_batch, Mode, StepBuffers};
    let linear = |g: &mut Graph, stored_transpose: bool| {
        let config = LinearConfig {
            stored_transpose,
            ..LinearConfig::new(784, 10)
        };
        Linear::with_config(&mut g.params, config, &mut Rng::seed(11)).unwrap()
    };
    type Build = fn(Layer) -> Layer;
    let containers: [(&str, Build); 2] = [
        ("Net with an inline flatten", |l| {
            Layer::Net(Net {
                name: "Net".into(),
                flatten_input: true,
                blocks: vec![("fc".into(), l)],
            })
        }),
        ("Sequential(Flatten, Linear)", |l| {
            Layer::Sequential(Sequential::new(vec![Flatten.into(), l]))
        }),
    ];
    for dense in [false, true] {
        let ds = images(64, dense, &mut Rng::seed(3));
        for (what, container) in containers {
            for stored_transpose in [true, false] {
                let mut g = Graph::new(0);
                let lin = linear(&mut g, stored_transpose);
                let (weight, bias) = (lin.weight, lin.bias.unwrap());
                let mut model = container(lin.into());
                let mut bufs = StepBuffers::default();
                let case = format!("{what}, dense {dense}, W^T {stored_transpose}");
                assert!(!g.wants_input_nonzeros(), "{case}: a new graph");
                for batch in [&[0u32, 5, 9, 12, 33, 63, 2, 40][..], &[7, 1, 50, 51, 19, 8]] {
                    g.params.zero_grad();
                    let (loss, _) =
                        run_batch(&mut model, &mut g, &ds, batch, Mode::Multi, &mut bufs).unwrap();
                    assert_eq!(g.wants_input_nonzeros(), !dense, "{case}: the decision");
                    g.backward(loss).unwrap();
                    let w =
                        torch_layout(&g.params, weight, stored_transpose, g.params.value(weight));
                    let mut x = vec![0.0; batch.len() * 784];
                    let mut labels = vec![0; batch.len()];
                    gather_batch(&ds, batch, &mut x, &mut labels).unwrap();
                    let (want, want_dw) = reference(&x, &labels, &w, g.params.value(bias), 10);
                    let got = g.value(loss)[0] as f64;
                    assert!(
                        (got - want).abs() < 1e-5,
                        "{case}: loss {got} against {want}"
                    );
                    let dw = g.params.grad(weight).unwrap();
                    let dw = torch_layout(&g.params, weight, stored_transpose, dw);
                    for (a, b) in dw.iter().zip(&want_dw) {
                        assert!(
                            (*a as f64 - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                            "{case}: weight gradient {a} against {b}"
                        );
                    }
                }
            }
        }
    }
}

/// The loop's hint follows the model that reads the graph's inputs: after an MLP took MNIST-like
/// batches sparse, a model whose Linear reads no model input (here it reads a ReLU's output, as
/// a CNN's head reads its features) stops the nonzeros being gathered after one step.
#[test]
fn a_step_in_which_no_linear_reads_the_input_forgets_the_hint() {
    use bnlab::nn::{Flatten, Layer, ReLU, Sequential};
    use bnlab::train::{run_batch, Mode, StepBuffers};
    let ds = images(16, false, &mut Rng::seed(4));
    let mut g = Graph::new(0);
    let linear = |g: &mut Graph| Linear::new(&mut g.params, 784, 10, &mut Rng::seed(1)).unwrap();
    let mut mlp = Sequential::new(vec![Flatten.into(), linear(&mut g).into()]);
    let first: Layer = ReLU.into();
    let mut other = Sequential::new(vec![first, Flatten.into(), linear(&mut g).into()]);
    let mut bufs = StepBuffers::default();
    let batch = [0u32, 3, 7, 9];
    run_batch(&mut mlp, &mut g, &ds, &batch, Mode::Multi, &mut bufs).unwrap();
    assert!(g.wants_input_nonzeros(), "the MLP took the batch sparse");
    run_batch(&mut other, &mut g, &ds, &batch, Mode::Multi, &mut bufs).unwrap();
    run_batch(&mut other, &mut g, &ds, &batch, Mode::Multi, &mut bufs).unwrap();
    assert!(!g.wants_input_nonzeros(), "no Linear read the input");
    run_batch(&mut mlp, &mut g, &ds, &batch, Mode::Multi, &mut bufs).unwrap();
    assert!(g.wants_input_nonzeros(), "the MLP again");
}
