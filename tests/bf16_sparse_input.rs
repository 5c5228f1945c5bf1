//! Under `--precision bf16`, a Linear reading a mostly-zero model input (MNIST's first layer)
//! is a dense bfloat16 product where that is faster, on AMX from 256 outputs, and the float32
//! sparse product elsewhere (`Graph::dense_bf16_beats_sparse`).
//!
//! The oracles: the dense bfloat16 result is `internal::bf16::matmul_emulated`'s product
//! within twice a float32 sum's error bound; the sparse result is, bit for bit, the float32
//! graph's (whose sparse kernels `tests/sparse_input.rs` checks against a float64 product).
//! On a CPU without a bfloat16 kernel the graph refuses bf16 (checked in `tests/precision.rs`)
//! and this file checks that refusal instead; no test skips.

use bnlab::internal::bf16::{self, matmul_emulated, Bf16Kernel};
use bnlab::internal::matmul::Mat;
use bnlab::{Graph, Precision, Rng, Tensor};

/// x (N, I) with 80% zeros, W^T (I, O), b (O), dy (N, O).
struct Case {
    n: usize,
    i: usize,
    o: usize,
    x: Vec<f32>,
    wt: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
}

impl Case {
    fn new(o: usize) -> Case {
        let (n, i) = (24, 70);
        let mut rng = Rng::seed(3);
        let mut draw = |len: usize, zeros: f32| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    let keep = rng.next_f32() >= zeros;
                    let v = rng.next_f32() * 2.0 - 1.0;
                    if keep {
                        v
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        Case {
            n,
            i,
            o,
            x: draw(n * i, 0.8),
            wt: draw(i * o, 0.0),
            b: draw(o, 0.0),
            dy: draw(n * o, 0.0),
        }
    }

    /// y and dW^T through a graph in `precision`, and whether the graph took x as sparse.
    fn run(&self, precision: Precision) -> (Vec<f32>, Vec<f32>, bool) {
        let mut g = Graph::new(0);
        g.set_precision(precision).unwrap();
        let t = |shape: &[usize], v: &[f32]| Tensor::new(shape, v.to_vec()).unwrap();
        // a model input: a leaf without gradient, as a batch is
        let x = g.input(&t(&[self.n, self.i], &self.x), false).unwrap();
        let wt = g.input(&t(&[self.i, self.o], &self.wt), true).unwrap();
        let b = g.input(&t(&[self.o], &self.b), true).unwrap();
        let y = g.linear_wt(x, wt, Some(b)).unwrap();
        let sparse = g.wants_input_nonzeros();
        let out = g.value(y).to_vec();
        g.backward_from(y, &self.dy).unwrap();
        (out, g.grad(wt).unwrap().to_vec(), sparse)
    }
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// `got` against the emulated `a b` (+ `start`) within twice a float32 sum's error bound.
fn assert_emulated(what: &str, got: &[f32], start: &[f32], a: Mat, b: Mat) {
    let mut want = start.to_vec();
    matmul_emulated(&mut want, a, b, true);
    let (aa, ba) = (abs(a.data), abs(b.data));
    let mut mag = abs(start);
    matmul_emulated(
        &mut mag,
        Mat { data: &aa, ..a },
        Mat { data: &ba, ..b },
        true,
    );
    let bound = |m: f32| 2.0 * (a.cols + 2) as f64 * 2f64.powi(-24) * m as f64;
    for (j, ((&g, &w), &m)) in got.iter().zip(&want).zip(&mag).enumerate() {
        assert!(
            (g as f64 - w as f64).abs() <= bound(m),
            "{what}[{j}]: {g} against the emulation's {w}"
        );
    }
}

#[test]
fn a_wide_first_layer_in_bf16_is_dense_on_amx_and_sparse_float32_elsewhere() {
    let kernel = bf16::kernel();
    if let Err(why) = &kernel {
        let e = Graph::new(0).set_precision(Precision::Bf16).unwrap_err();
        assert_eq!(e.to_string(), format!("precision bf16: {why}"));
        return;
    }
    for o in [128, 255, 256, 600] {
        let c = Case::new(o);
        let (y32, dwt32, sparse32) = c.run(Precision::F32);
        assert!(sparse32, "float32 takes an 80%-zero input sparse");
        let (y, dwt, sparse) = c.run(Precision::Bf16);
        let dense = o >= 256 && kernel == Ok(Bf16Kernel::Amx);
        assert_eq!(sparse, !dense, "{o} outputs on {kernel:?}");
        if dense {
            let x = Mat::new(&c.x, c.n, c.i);
            let bias: Vec<f32> = c.b.iter().cycle().take(c.n * o).copied().collect();
            assert_emulated("y", &y, &bias, x, Mat::new(&c.wt, c.i, o));
            let zeros = vec![0.0; c.i * o];
            assert_emulated("dW^T", &dwt, &zeros, x.t(), Mat::new(&c.dy, c.n, o));
            // rounded operands: not the float32 sums
            assert!(y.iter().zip(&y32).any(|(a, b)| (a - b).abs() > 1e-4));
        } else {
            assert_eq!(y, y32, "{o} outputs: the float32 sparse forward");
            assert_eq!(
                dwt, dwt32,
                "{o} outputs: the float32 sparse weight gradient"
            );
        }
    }
}
