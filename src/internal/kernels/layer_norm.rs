//! Layer normalisation (PyTorch's `LayerNorm`): each of `rows` rows of `d` values (the trailing
//! `normalized_shape` dimensions flattened, d = their product) is normalised by its own mean
//! and biased variance, eps inside the square root, then optionally scaled and shifted
//! elementwise by a weight and bias of length d:
//!   `y = (x - mean) * rstd * weight + bias`,  `rstd = 1 / sqrt(var + eps)`
//! There are no running statistics and no train/eval difference.
//!
//! Rows are independent: both passes over x are spread over threads by rows, with at least
//! `CHUNK` values per task so that small inputs stay on the calling thread. The parameter
//! gradients sum over rows: one pass in row order, vectorised across d (as `batch_norm` does
//! for (N, C)), so their values do not depend on the thread count.

use super::batch_norm::run_stats;
use rayon::prelude::*;

/// Values per parallel task, at least (whole rows).
const CHUNK: usize = 1 << 14;

/// Rows per parallel task for rows of d values.
fn rows_per_task(d: usize) -> usize {
    (CHUNK / d).max(1)
}

/// Forward.
///
/// Shapes: x, y: (rows, d); weight, bias: (d) each, or absent (`elementwise_affine = false`,
/// or PyTorch's `bias = False`); mean, rstd: (rows), written for the backward.
///
/// Per row: mean and sum of squared deviations from it (two passes, `batch_norm::run_stats`:
/// no loss of the variance when |mean| >> std), var = that / d (biased), rstd = 1/sqrt(var + eps),
/// then `xhat = x * rstd + (-mean * rstd)` (one multiply-add, as PyTorch's CPU kernel forms it)
/// and `y = xhat * weight + bias`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    y: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    x: &[f32],
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    d: usize,
    eps: f32,
) {
    assert!(
        d > 0 && x.len().is_multiple_of(d),
        "layer_norm: {} values are not rows of {d}",
        x.len()
    );
    let rows = x.len() / d;
    assert!(
        y.len() == x.len() && mean.len() == rows && rstd.len() == rows,
        "layer_norm: buffer sizes"
    );
    assert!(
        weight.is_none_or(|w| w.len() == d) && bias.is_none_or(|b| b.len() == d),
        "layer_norm: weight or bias is not of length {d}"
    );
    y.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
        .with_min_len(rows_per_task(d))
        .for_each(|((yr, xr), (mu, rs))| {
            let [m, m2] = run_stats(xr);
            let r = 1.0 / (m2 / d as f32 + eps).sqrt();
            (*mu, *rs) = (m, r);
            let shift = -m * r;
            if let (Some(w), Some(b)) = (weight, bias) {
                // the usual case, without the per-value Option tests below
                for (((y, &x), &w), &b) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                    *y = (x * r + shift) * w + b;
                }
            } else {
                for (j, (y, &x)) in yr.iter_mut().zip(xr).enumerate() {
                    let (w, b) = (weight.map_or(1.0, |w| w[j]), bias.map_or(0.0, |b| b[j]));
                    *y = (x * r + shift) * w + b;
                }
            }
        });
}

/// Backward. dx += the input gradient; when given, dweight += sum over rows of dy * xhat and
/// dbias += sum over rows of dy (all accumulate, see `kernels/mod.rs`).
///
/// Shapes: dx, dy, x: (rows, d); mean, rstd: (rows) from `forward`; weight: (d) or absent
/// (w = 1); dweight, dbias: (d) each, or absent (not wanted).
///
/// Derivation, for one row of d values, xhat_j = (x_j - mean) * rstd, y_j = w_j xhat_j + b_j:
///   parameters: dL/dw_j = sum_rows dy_j xhat_j,  dL/db_j = sum_rows dy_j
///   dxhat_j = dL/dxhat_j = dy_j w_j
///   dmean/dx_i = 1/d,  dvar/dx_i = 2 (x_i - mean) / d,  drstd/dvar = -rstd^3 / 2, so
///   dxhat_j/dx_i = rstd ([i = j] - 1/d) - (x_j - mean) rstd^3 (x_i - mean) / d
///                = rstd ([i = j] - 1/d - xhat_j xhat_i / d)
/// and dL/dx_i = sum_j dxhat_j dxhat_j/dx_i
///             = rstd * (dxhat_i - mean_j(dxhat_j) - xhat_i * mean_j(dxhat_j xhat_j)).
/// Per row that is two sums, s1 = sum_j dxhat_j and s2 = sum_j dxhat_j (x_j - mean) (so that
/// mean(dxhat xhat) = s2 * rstd / d), then one pass writing dx.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dx: &mut [f32],
    mut dweight: Option<&mut [f32]>,
    mut dbias: Option<&mut [f32]>,
    dy: &[f32],
    x: &[f32],
    mean: &[f32],
    rstd: &[f32],
    weight: Option<&[f32]>,
    d: usize,
) {
    assert!(
        d > 0 && x.len().is_multiple_of(d),
        "layer_norm: {} values are not rows of {d}",
        x.len()
    );
    let rows = x.len() / d;
    assert!(
        dx.len() == x.len() && dy.len() == x.len() && mean.len() == rows && rstd.len() == rows,
        "layer_norm backward: buffer sizes"
    );
    assert!(
        weight.is_none_or(|w| w.len() == d),
        "layer_norm: weight is not of length {d}"
    );
    let inv_d = 1.0 / d as f32;
    dx.par_chunks_mut(d)
        .zip(dy.par_chunks(d).zip(x.par_chunks(d)))
        .zip(mean.par_iter().zip(rstd.par_iter()))
        .with_min_len(rows_per_task(d))
        .for_each(|((gr, (dr, xr)), (&mu, &rs))| {
            let w = |j: usize| weight.map_or(1.0, |w| w[j]);
            // s1 = sum dxhat, s2 = sum dxhat * (x - mean), in a fixed order
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for (j, (&gy, &v)) in dr.iter().zip(xr).enumerate() {
                let g = gy * w(j);
                s1 += g;
                s2 += g * (v - mu);
            }
            // dx_i = rstd * (dxhat_i - s1 / d - (x_i - mean) * rstd * (s2 * rstd / d))
            let (k_mean, k_x) = (s1 * inv_d, s2 * rs * rs * inv_d);
            for (j, (g, (&gy, &v))) in gr.iter_mut().zip(dr.iter().zip(xr)).enumerate() {
                *g += rs * (gy * w(j) - k_mean - (v - mu) * k_x);
            }
        });
    // parameters: in row order, each row's contribution added across d
    for (r, (dr, xr)) in dy.chunks_exact(d).zip(x.chunks_exact(d)).enumerate() {
        let (mu, rs) = (mean[r], rstd[r]);
        if let Some(dw) = dweight.as_deref_mut() {
            for ((g, &gy), &v) in dw.iter_mut().zip(dr).zip(xr) {
                *g += gy * ((v - mu) * rs);
            }
        }
        if let Some(db) = dbias.as_deref_mut() {
            for (g, &gy) in db.iter_mut().zip(dr) {
                *g += gy;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Also the golden-file and finite-difference helpers of the other kernels' tests.
    use super::*;
    use crate::io::safetensors_file::{read_safetensors, TensorFile};
    use std::path::PathBuf;

    /// One golden case: its file's path (to name it in failures) and contents.
    pub(crate) struct Golden {
        pub path: PathBuf,
        pub file: TensorFile,
    }

    impl Golden {
        /// Every case in `../shared/golden/extended` whose metadata `layer` is `layer`. Panics
        /// if the directory or any file in it cannot be read (a case that cannot be interpreted
        /// fails rather than being skipped), or if no case matches.
        pub(crate) fn cases(layer: &str) -> Vec<Golden> {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/golden/extended");
            let mut cases = Vec::new();
            for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
                let path = entry.expect("a directory entry").path();
                if path.extension().is_some_and(|e| e == "safetensors") {
                    let file = read_safetensors(&path).unwrap_or_else(|e| panic!("{e}"));
                    if file.metadata.get("layer").map(String::as_str) == Some(layer) {
                        cases.push(Golden { path, file });
                    }
                }
            }
            assert!(!cases.is_empty(), "no golden {layer} case in {dir}");
            cases.sort_by(|a, b| a.path.cmp(&b.path));
            cases
        }

        /// A tensor's values.
        pub(crate) fn t(&self, key: &str) -> &[f32] {
            &self
                .file
                .f32(key, &self.path)
                .unwrap_or_else(|e| panic!("{e}"))
                .data
        }

        /// Metadata `key` as text.
        pub(crate) fn meta(&self, key: &str) -> &str {
            let p = self.path.display();
            self.file
                .metadata
                .get(key)
                .unwrap_or_else(|| panic!("{p}: no metadata '{key}'"))
        }

        /// Metadata `key` parsed as a plain value (`"0.2"`, `"3"`, `"true"`).
        pub(crate) fn parse<T: std::str::FromStr>(&self, key: &str) -> T {
            let (p, v) = (self.path.display(), self.meta(key));
            v.parse()
                .unwrap_or_else(|_| panic!("{p}: metadata {key} = {v}"))
        }

        /// Metadata `key` read as JSON (`"[4, 5, 6]"`).
        pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> T {
            let (p, v) = (self.path.display(), self.meta(key));
            serde_json::from_str(v).unwrap_or_else(|e| panic!("{p}: metadata {key} = {v}: {e}"))
        }

        /// `got` against tensor `key` within atol + rtol * |want|.
        pub(crate) fn check(&self, got: &[f32], key: &str, atol: f64, rtol: f64) {
            let what = format!("{}: {key}", self.path.display());
            assert_close(got, self.t(key), atol, rtol, &what);
        }
    }

    /// |got - want| <= atol + rtol * |want| everywhere (and the same length).
    pub(crate) fn assert_close(got: &[f32], want: &[f32], atol: f64, rtol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (g as f64 - w as f64).abs();
            assert!(
                err <= atol + rtol * (w as f64).abs(),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    /// n seeded uniform draws from [lo, hi).
    pub(crate) fn draws(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
        let mut rng = crate::rng::Rng::seed(seed);
        (0..n).map(|_| rng.uniform(lo, hi)).collect()
    }

    /// Central differences (step 1e-5, in f64) of `loss` with respect to every value of every
    /// one of `params`, in their shapes, rounded to f32.
    pub(crate) fn central_differences(
        params: &[&[f32]],
        loss: impl Fn(&[Vec<f64>]) -> f64,
    ) -> Vec<Vec<f32>> {
        let at: Vec<Vec<f64>> = params
            .iter()
            .map(|p| p.iter().map(|&v| v as f64).collect())
            .collect();
        let h = 1e-5;
        let slope = |k: usize, i: usize| {
            let (mut up, mut down) = (at.clone(), at.clone());
            up[k][i] += h;
            down[k][i] -= h;
            ((loss(&up) - loss(&down)) / (2.0 * h)) as f32
        };
        (0..at.len())
            .map(|k| (0..at[k].len()).map(|i| slope(k, i)).collect())
            .collect()
    }

    /// f64 LayerNorm of (rows, d) with weight and bias (d): y, and per row the mean and rstd.
    pub(crate) fn reference(x: &[f64], w: &[f64], b: &[f64], d: usize, eps: f64) -> [Vec<f64>; 3] {
        let [mut y, mut means, mut rstds] = [vec![], vec![], vec![]];
        for row in x.chunks(d) {
            let m = row.iter().sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / d as f64;
            let r = 1.0 / (var + eps).sqrt();
            y.extend(
                row.iter()
                    .zip(w.iter().zip(b))
                    .map(|(v, (w, b))| (v - m) * r * w + b),
            );
            means.push(m);
            rstds.push(r);
        }
        [y, means, rstds]
    }

    fn narrow(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&v| v as f32).collect()
    }

    #[test]
    fn forward_matches_an_f64_computation() {
        // an offset larger than the spread: the two-pass variance must keep it
        for (rows, d, affine) in [(5, 7, true), (3, 33, false), (1, 1, true), (2000, 9, true)] {
            let x = draws(rows * d, 1, 99.0, 101.0);
            let (w, b) = if affine {
                (draws(d, 2, 0.5, 1.5), draws(d, 3, -1.0, 1.0))
            } else {
                (vec![1.0; d], vec![0.0; d])
            };
            let (wa, ba) = if affine {
                (Some(&w[..]), Some(&b[..]))
            } else {
                (None, None)
            };
            let (mut y, mut mean, mut rstd) =
                (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
            forward(&mut y, &mut mean, &mut rstd, &x, wa, ba, d, 1e-5);
            let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
            let [y64, m64, r64] = reference(&wide(&x), &wide(&w), &wide(&b), d, 1e-5);
            assert_close(&mean, &narrow(&m64), 0.0, 1e-5, "mean");
            assert_close(&rstd, &narrow(&r64), 0.0, 1e-3, "rstd");
            assert_close(&y, &narrow(&y64), 1e-4, 1e-3, "y");
        }
    }

    #[test]
    fn backward_matches_central_differences_of_sum_y_r() {
        // L = sum y * r through the f64 reference; the kernel adds onto dx, dweight, dbias
        let (rows, d, eps) = (4, 6, 1e-5);
        let (x, r) = (draws(rows * d, 4, -2.0, 2.0), draws(rows * d, 7, -1.0, 1.0));
        let (w, b) = (draws(d, 5, 0.5, 1.5), draws(d, 6, -1.0, 1.0));
        let want = central_differences(&[&x, &w, &b], |p| {
            let [y, _, _] = reference(&p[0], &p[1], &p[2], d, eps);
            y.iter().zip(&r).map(|(y, &r)| y * r as f64).sum()
        });
        let (mut y, mut mean, mut rstd) = (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
        forward(
            &mut y,
            &mut mean,
            &mut rstd,
            &x,
            Some(&w),
            Some(&b),
            d,
            eps as f32,
        );
        let (mut dx, mut dw, mut db) = (vec![1.0; x.len()], vec![1.0; d], vec![1.0; d]);
        backward(
            &mut dx,
            Some(&mut dw),
            Some(&mut db),
            &r,
            &x,
            &mean,
            &rstd,
            Some(&w),
            d,
        );
        let plus_one = |v: &[f32]| v.iter().map(|v| v + 1.0).collect::<Vec<_>>();
        assert_close(&dx, &plus_one(&want[0]), 1e-5, 1e-4, "dx");
        assert_close(&dw, &plus_one(&want[1]), 1e-5, 1e-4, "dweight");
        assert_close(&db, &plus_one(&want[2]), 1e-5, 1e-4, "dbias");
        // no weight is w = 1, with or without parameter gradients asked for
        forward(&mut y, &mut mean, &mut rstd, &x, None, None, d, eps as f32);
        let (mut dx1, mut dx2, mut sink) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; d]);
        backward(&mut dx1, None, None, &r, &x, &mean, &rstd, None, d);
        backward(
            &mut dx2,
            Some(&mut sink),
            None,
            &r,
            &x,
            &mean,
            &rstd,
            Some(&vec![1.0; d]),
            d,
        );
        assert_eq!(dx1, dx2);
    }

    #[test]
    fn golden_cases_from_pytorch() {
        for case in Golden::cases("LayerNorm") {
            let (shape, normalized): (Vec<usize>, Vec<usize>) =
                (case.json("shape"), case.json("normalized_shape"));
            assert!(
                shape.ends_with(&normalized),
                "{}: normalized_shape is not trailing",
                case.path.display()
            );
            let (d, eps, affine) = (
                normalized.iter().product(),
                case.parse("eps"),
                case.parse("affine"),
            );
            let (w, b) = if affine {
                (Some(case.t("weight")), Some(case.t("bias")))
            } else {
                (None, None)
            };
            let steps: usize = case.parse("steps");
            assert!(steps > 0, "{}: no steps", case.path.display());
            for s in 0..steps {
                let (x, dy) = (case.t(&format!("x{s}")), case.t(&format!("grad_y{s}")));
                assert_eq!(
                    x.len(),
                    shape.iter().product::<usize>(),
                    "{}: x{s}",
                    case.path.display()
                );
                let rows = x.len() / d;
                let (mut y, mut mean, mut rstd) =
                    (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
                forward(&mut y, &mut mean, &mut rstd, x, w, b, d, eps);
                let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; d], vec![0.0; d]);
                let (dwa, dba) = if affine {
                    (Some(&mut dw[..]), Some(&mut db[..]))
                } else {
                    (None, None)
                };
                backward(&mut dx, dwa, dba, dy, x, &mean, &rstd, w, d);
                // README: atol 1e-5 + rtol 1e-4; no accumulation across steps
                case.check(&y, &format!("y{s}"), 1e-5, 1e-4);
                case.check(&dx, &format!("grad_x{s}"), 1e-5, 1e-4);
                if affine {
                    case.check(&dw, &format!("grad_weight{s}"), 1e-5, 1e-4);
                    case.check(&db, &format!("grad_bias{s}"), 1e-5, 1e-4);
                }
            }
        }
    }
}
