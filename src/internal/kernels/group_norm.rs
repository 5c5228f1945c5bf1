//! Group normalisation (PyTorch's `GroupNorm`) over a (N, C, S) layout (S = the product of the
//! spatial dimensions, 1 for (N, C)): the C channels form G groups of C/G consecutive channels,
//! and each (sample, group) is normalised by its own mean and biased variance over its
//! m = C/G * S values, eps inside the square root; then a per-channel weight and bias:
//!   `y = (x - mean[n, g]) * rstd[n, g] * weight[c] + bias[c]`,  `rstd = 1 / sqrt(var + eps)`
//! applied, as PyTorch's CPU kernel applies it, as one affine map per (n, c):
//!   `alpha = weight[c] * rstd[n, g]`, `beta = bias[c] - mean[n, g] * alpha`, `y = x * alpha + beta`
//! No running statistics, no train/eval difference.
//!
//! A (sample, group) is a contiguous block of C/G * S values, so blocks are spread over threads
//! (at least `CHUNK` values per task). The parameter gradients sum over samples: channels are
//! spread over threads, each summing its N runs in sample order, so no value depends on the
//! thread count.

use super::batch_norm::{merge_runs, run_stats};
use rayon::prelude::*;

/// Values per parallel task, at least (whole blocks, or whole channels for the parameters).
const CHUNK: usize = 1 << 14;

/// Checks the layout and returns (samples, channels per group).
fn dims(len: usize, c: usize, s: usize, groups: usize) -> (usize, usize) {
    assert!(
        c > 0 && s > 0 && groups > 0 && c.is_multiple_of(groups),
        "group_norm: {c} channels do not split into {groups} groups"
    );
    assert!(
        len.is_multiple_of(c * s),
        "group_norm: {len} values are not samples of {c} x {s}"
    );
    (len / (c * s), c / groups)
}

/// One run's sum of dy and sum of dy * (x - mean), in order.
#[inline(always)]
fn run_sums(dy: &[f32], x: &[f32], mean: f32) -> (f32, f32) {
    let (mut a, mut b) = (0.0f32, 0.0f32);
    for (&gy, &v) in dy.iter().zip(x) {
        a += gy;
        b += gy * (v - mean);
    }
    (a, b)
}

/// Forward.
///
/// Shapes: x, y: (N, C, S); weight, bias: (C) each, or absent (`affine = false`);
/// mean, rstd: (N, G), written for the backward.
///
/// Each block's statistics: every channel's run of S values gets its mean and sum of squared
/// deviations (`batch_norm::run_stats`), merged over the block's C/G runs in f64
/// (`batch_norm::merge_runs`): robust when |mean| >> std, and one read of x.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    y: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    x: &[f32],
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    c: usize,
    s: usize,
    groups: usize,
    eps: f32,
) {
    let (n, cg) = dims(x.len(), c, s, groups);
    assert!(
        y.len() == x.len() && mean.len() == n * groups && rstd.len() == n * groups,
        "group_norm: buffer sizes"
    );
    assert!(
        weight.is_none_or(|w| w.len() == c) && bias.is_none_or(|b| b.len() == c),
        "group_norm: weight or bias is not of length {c}"
    );
    let block = cg * s;
    y.par_chunks_mut(block)
        .zip(x.par_chunks(block))
        .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
        .enumerate()
        .with_min_len((CHUNK / block).max(1))
        .for_each(|(k, ((yb, xb), (mu, rs)))| {
            let (m, var) = merge_runs(xb.chunks_exact(s).map(run_stats), s);
            let r = 1.0 / (var + eps).sqrt();
            (*mu, *rs) = (m, r);
            let first = (k % groups) * cg; // the block's first channel
            for (j, (yr, xr)) in yb.chunks_exact_mut(s).zip(xb.chunks_exact(s)).enumerate() {
                let alpha = weight.map_or(1.0, |w| w[first + j]) * r;
                let beta = bias.map_or(0.0, |b| b[first + j]) - m * alpha;
                for (y, &x) in yr.iter_mut().zip(xr) {
                    *y = x * alpha + beta;
                }
            }
        });
}

/// Backward. dx += the input gradient; when given, `dweight[c]` += sum over n and s of
/// dy * xhat and `dbias[c]` += sum over n and s of dy (all accumulate, see `kernels/mod.rs`).
///
/// Shapes: dx, dy, x: (N, C, S); mean, rstd: (N, G) from `forward`; weight: (C) or absent
/// (w = 1); dweight, dbias: (C) each, or absent (not wanted).
///
/// Derivation, for one block of m = C/G * S values i, each of channel c(i),
/// xhat_i = (x_i - mean) * rstd, y_i = w_c(i) xhat_i + b_c(i):
///   parameters: dL/dw_c = sum_{n, s} dy xhat,  dL/db_c = sum_{n, s} dy
///   dxhat_i = dy_i w_c(i)
///   as for LayerNorm (see `layer_norm::backward`), with the block's m values in place of a
///   row's d: dxhat_j/dx_i = rstd ([i = j] - 1/m - xhat_j xhat_i / m), so
///   dL/dx_i = rstd * (dxhat_i - mean_j(dxhat_j) - xhat_i * mean_j(dxhat_j xhat_j)).
/// Per block: s1 = sum_c w_c sum_s dy and s2 = sum_c w_c sum_s dy (x - mean), so that
/// mean(dxhat) = s1 / m and mean(dxhat xhat) = s2 * rstd / m; then one pass writing dx:
///   dx_i += rstd * (dy_i w_c - s1 / m - (x_i - mean) * rstd^2 * s2 / m)
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dx: &mut [f32],
    dweight: Option<&mut [f32]>,
    dbias: Option<&mut [f32]>,
    dy: &[f32],
    x: &[f32],
    mean: &[f32],
    rstd: &[f32],
    weight: Option<&[f32]>,
    c: usize,
    s: usize,
    groups: usize,
) {
    let (n, cg) = dims(x.len(), c, s, groups);
    assert!(
        dx.len() == x.len()
            && dy.len() == x.len()
            && mean.len() == n * groups
            && rstd.len() == n * groups,
        "group_norm backward: buffer sizes"
    );
    assert!(
        weight.is_none_or(|w| w.len() == c),
        "group_norm: weight is not of length {c}"
    );
    let block = cg * s;
    let inv_m = 1.0 / block as f32;
    dx.par_chunks_mut(block)
        .zip(dy.par_chunks(block).zip(x.par_chunks(block)))
        .zip(mean.par_iter().zip(rstd.par_iter()))
        .enumerate()
        .with_min_len((CHUNK / block).max(1))
        .for_each(|(k, ((gb, (dyb, xb)), (&mu, &rs)))| {
            let first = (k % groups) * cg;
            let w = |j: usize| weight.map_or(1.0, |w| w[first + j]);
            // each channel's run sums, weighted by w_c into s1 and s2
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for (j, (dyr, xr)) in dyb.chunks_exact(s).zip(xb.chunks_exact(s)).enumerate() {
                let (a, b) = run_sums(dyr, xr, mu);
                s1 += w(j) * a;
                s2 += w(j) * b;
            }
            let (k_mean, k_x) = (s1 * inv_m, s2 * rs * rs * inv_m);
            let runs = gb
                .chunks_exact_mut(s)
                .zip(dyb.chunks_exact(s).zip(xb.chunks_exact(s)));
            for (j, (gr, (dyr, xr))) in runs.enumerate() {
                let wj = w(j);
                for (g, (&gy, &v)) in gr.iter_mut().zip(dyr.iter().zip(xr)) {
                    *g += rs * (gy * wj - k_mean - (v - mu) * k_x);
                }
            }
        });
    // parameters: channel ch sums its runs dy[n, ch, :], x[n, ch, :] in sample order
    let sums = |ch: usize| -> (f32, f32) {
        let (mut sw, mut sb) = (0.0f32, 0.0f32);
        for i in 0..n {
            let (at, k) = ((i * c + ch) * s, i * groups + ch / cg);
            let (a, b) = run_sums(&dy[at..at + s], &x[at..at + s], mean[k]);
            sb += a;
            sw += b * rstd[k]; // sum dy xhat = rstd * sum dy (x - mean), within one (n, g)
        }
        (sw, sb)
    };
    let per_task = (CHUNK / (n * s).max(1)).max(1);
    match (dweight, dbias) {
        (Some(dw), Some(db)) => dw
            .par_iter_mut()
            .zip(db.par_iter_mut())
            .enumerate()
            .with_min_len(per_task)
            .for_each(|(ch, (gw, gb))| {
                let (sw, sb) = sums(ch);
                *gw += sw;
                *gb += sb;
            }),
        (Some(dw), None) => dw
            .par_iter_mut()
            .enumerate()
            .with_min_len(per_task)
            .for_each(|(ch, g)| *g += sums(ch).0),
        (None, Some(db)) => db
            .par_iter_mut()
            .enumerate()
            .with_min_len(per_task)
            .for_each(|(ch, g)| *g += sums(ch).1),
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::layer_norm::tests::{assert_close, central_differences, draws, Golden};

    /// f64 GroupNorm of (N, C, S) with weight and bias (C): y, and per (n, g) the mean and
    /// rstd. A block's statistics are a LayerNorm row's over its C/G * S values.
    fn reference(
        x: &[f64],
        w: &[f64],
        b: &[f64],
        cs: (usize, usize),
        groups: usize,
    ) -> [Vec<f64>; 3] {
        let (c, s) = cs;
        let block = c / groups * s;
        let ones = (vec![1.0; block], vec![0.0; block]);
        let [mut y, means, rstds] =
            crate::kernels::layer_norm::tests::reference(x, &ones.0, &ones.1, block, 1e-5);
        for (i, y) in y.iter_mut().enumerate() {
            let ch = i / s % c;
            *y = *y * w[ch] + b[ch];
        }
        [y, means, rstds]
    }

    fn narrow(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&v| v as f32).collect()
    }

    #[test]
    fn forward_matches_an_f64_computation() {
        // (N, C, S, G, affine): S = 1, G = 1 and G = C; an offset larger than the spread
        for (n, c, s, g, affine) in [
            (3, 6, 5, 3, true),
            (4, 8, 1, 2, true),
            (2, 4, 9, 1, false),
            (2, 6, 4, 6, true),
            (64, 8, 40, 4, true),
        ] {
            let x = draws(n * c * s, 1, 49.0, 51.0);
            let (w, b) = if affine {
                (draws(c, 2, 0.5, 1.5), draws(c, 3, -1.0, 1.0))
            } else {
                (vec![1.0; c], vec![0.0; c])
            };
            let (wa, ba) = if affine {
                (Some(&w[..]), Some(&b[..]))
            } else {
                (None, None)
            };
            let (mut y, mut mean, mut rstd) =
                (vec![0.0; x.len()], vec![0.0; n * g], vec![0.0; n * g]);
            forward(&mut y, &mut mean, &mut rstd, &x, wa, ba, c, s, g, 1e-5);
            let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
            let [y64, m64, r64] = reference(&wide(&x), &wide(&w), &wide(&b), (c, s), g);
            assert_close(&mean, &narrow(&m64), 0.0, 1e-5, "mean");
            assert_close(&rstd, &narrow(&r64), 0.0, 1e-3, "rstd");
            assert_close(&y, &narrow(&y64), 1e-4, 1e-3, "y");
        }
    }

    #[test]
    fn backward_matches_central_differences_of_sum_y_r() {
        // L = sum y * r through the f64 reference; the kernel adds onto dx, dweight, dbias
        for (n, c, s, g) in [(2, 6, 3, 3), (3, 4, 1, 2), (2, 3, 4, 1)] {
            let (x, r) = (
                draws(n * c * s, 4, -2.0, 2.0),
                draws(n * c * s, 7, -1.0, 1.0),
            );
            let (w, b) = (draws(c, 5, 0.5, 1.5), draws(c, 6, -1.0, 1.0));
            let want = central_differences(&[&x, &w, &b], |p| {
                let [y, _, _] = reference(&p[0], &p[1], &p[2], (c, s), g);
                y.iter().zip(&r).map(|(y, &r)| y * r as f64).sum()
            });
            let (mut y, mut mean, mut rstd) =
                (vec![0.0; x.len()], vec![0.0; n * g], vec![0.0; n * g]);
            forward(
                &mut y,
                &mut mean,
                &mut rstd,
                &x,
                Some(&w),
                Some(&b),
                c,
                s,
                g,
                1e-5,
            );
            let (mut dx, mut dw, mut db) = (vec![1.0; x.len()], vec![1.0; c], vec![1.0; c]);
            backward(
                &mut dx,
                Some(&mut dw),
                Some(&mut db),
                &r,
                &x,
                &mean,
                &rstd,
                Some(&w),
                c,
                s,
                g,
            );
            let plus_one = |v: &[f32]| v.iter().map(|v| v + 1.0).collect::<Vec<_>>();
            let case = format!("({n}, {c}, {s}) in {g} groups");
            assert_close(&dx, &plus_one(&want[0]), 1e-5, 1e-4, &format!("{case}: dx"));
            assert_close(
                &dw,
                &plus_one(&want[1]),
                1e-5,
                1e-4,
                &format!("{case}: dweight"),
            );
            assert_close(
                &db,
                &plus_one(&want[2]),
                1e-5,
                1e-4,
                &format!("{case}: dbias"),
            );
            // one parameter gradient at a time: the same values
            let (mut dw1, mut db1, mut dx1) = (vec![1.0; c], vec![1.0; c], vec![1.0; x.len()]);
            backward(
                &mut dx1,
                Some(&mut dw1),
                None,
                &r,
                &x,
                &mean,
                &rstd,
                Some(&w),
                c,
                s,
                g,
            );
            backward(
                &mut dx1,
                None,
                Some(&mut db1),
                &r,
                &x,
                &mean,
                &rstd,
                Some(&w),
                c,
                s,
                g,
            );
            assert_eq!((dw1, db1), (dw, db), "{case}: separately");
        }
    }

    #[test]
    fn golden_cases_from_pytorch() {
        for case in Golden::cases("GroupNorm") {
            let p = case.path.display();
            let shape: Vec<usize> = case.json("shape");
            let (c, g, steps): (usize, usize, usize) = (
                case.parse("num_channels"),
                case.parse("num_groups"),
                case.parse("steps"),
            );
            assert!(
                shape.len() >= 2 && shape[1] == c,
                "{p}: shape {shape:?} is not (N, {c}, *)"
            );
            let (n, s, eps, affine) = (
                shape[0],
                shape[2..].iter().product(),
                case.parse("eps"),
                case.parse("affine"),
            );
            let (w, b) = if affine {
                (Some(case.t("weight")), Some(case.t("bias")))
            } else {
                (None, None)
            };
            assert!(steps > 0, "{p}: no steps");
            for st in 0..steps {
                let (x, dy) = (case.t(&format!("x{st}")), case.t(&format!("grad_y{st}")));
                assert_eq!(x.len(), shape.iter().product::<usize>(), "{p}: x{st}");
                let (mut y, mut mean, mut rstd) =
                    (vec![0.0; x.len()], vec![0.0; n * g], vec![0.0; n * g]);
                forward(&mut y, &mut mean, &mut rstd, x, w, b, c, s, g, eps);
                let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
                let (dwa, dba) = if affine {
                    (Some(&mut dw[..]), Some(&mut db[..]))
                } else {
                    (None, None)
                };
                backward(&mut dx, dwa, dba, dy, x, &mean, &rstd, w, c, s, g);
                // README: atol 1e-5 + rtol 1e-4; no accumulation across steps
                case.check(&y, &format!("y{st}"), 1e-5, 1e-4);
                case.check(&dx, &format!("grad_x{st}"), 1e-5, 1e-4);
                if affine {
                    case.check(&dw, &format!("grad_weight{st}"), 1e-5, 1e-4);
                    case.check(&db, &format!("grad_bias{st}"), 1e-5, 1e-4);
                }
            }
        }
    }
}
