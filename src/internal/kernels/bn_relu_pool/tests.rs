//! The fused kernels against plain references written from the definitions, bit for bit: the
//! forward against a scan of each window in scan order, the input gradient against its
//! expression on a dense g. Both the portable code and (where the CPU has it) the AVX-512 code
//! are checked, on values that tie often (a few levels, ReLU's zeros, -0.0), with NaN and
//! infinities, and on shapes with odd sizes and rows longer than one register (16 windows).

use super::*;
use crate::Rng;

/// (H, W): even and odd, the cnn preset's 28 and 14, rows of 16, 17 and 32 windows.
const SHAPES: [(usize, usize); 11] = [
    (2, 2),
    (3, 3),
    (4, 5),
    (7, 5),
    (6, 8),
    (14, 14),
    (28, 28),
    (2, 34),
    (3, 32),
    (5, 64),
    (3, 65),
];

/// Planes per test case, over 3 channels; the first plane is channel 1 (`FIRST`).
const PLANES: usize = 5;
const CHANNELS: usize = 3;
const FIRST: usize = 1;

/// Values that tie often: 7 levels, some -0.0, and with `specials` NaN (at least one, in the
/// middle) and infinities.
fn draws(rng: &mut Rng, n: usize, specials: bool) -> Vec<f32> {
    let mut x: Vec<f32> = (0..n)
        .map(|_| match rng.next_u64() % 40 {
            0 => -0.0,
            1 if specials => f32::NAN,
            2 if specials => f32::INFINITY,
            3 if specials => f32::NEG_INFINITY,
            k => (k % 7) as f32 * 0.5 - 1.5,
        })
        .collect();
    if specials {
        x[n / 2] = f32::NAN;
    }
    x
}

/// alpha and beta per channel: a negative alpha reverses a window's order, beta moves ties to
/// ReLU's zero.
fn affine() -> (Vec<f32>, Vec<f32>) {
    (vec![1.0, -0.75, 2.5], vec![0.0, 0.25, -1.0])
}

/// Outputs of the forward: y, argmax, x_at.
type Outs = (Vec<f32>, Vec<u32>, Vec<f32>);

/// The forward from its definition: relu(x a + b) at each of a window's four inputs in scan
/// order, a later one taking over by `later_wins` (max_pool2d's rule: the first maximum, and
/// the first NaN).
fn reference(x: &[f32], alpha: &[f32], beta: &[f32], h: usize, w: usize) -> Outs {
    let (ho, wo) = (pooled(h), pooled(w));
    let (mut y, mut at, mut x_at) = (Vec::new(), Vec::new(), Vec::new());
    for (i, xp) in x.chunks_exact(h * w).enumerate() {
        let ch = (FIRST + i) % CHANNELS;
        let z = |k: usize| {
            let z = xp[k] * alpha[ch] + beta[ch];
            if z < 0.0 {
                0.0
            } else {
                z
            }
        };
        for oy in 0..ho {
            for ox in 0..wo {
                let tl = 2 * oy * w + 2 * ox;
                let mut best = tl;
                for k in [tl + 1, tl + w, tl + w + 1] {
                    if later_wins(z(best), z(k)) {
                        best = k;
                    }
                }
                y.push(z(best));
                at.push(best as u32);
                x_at.push(xp[best]);
            }
        }
    }
    (y, at, x_at)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn assert_same(what: &str, got: &Outs, want: &Outs) {
    assert_eq!(bits(&got.0), bits(&want.0), "{what}: y");
    assert_eq!(got.1, want.1, "{what}: argmax");
    assert_eq!(bits(&got.2), bits(&want.2), "{what}: x_at");
}

/// The portable forward over the planes of x.
fn portable(x: &[f32], alpha: &[f32], beta: &[f32], h: usize, w: usize) -> Outs {
    let outs = x.len() / (h * w) * pooled(h) * pooled(w);
    let (mut y, mut at, mut x_at) = (vec![0.0; outs], vec![0; outs], vec![0.0; outs]);
    let pairs = 2 * pooled(h) * pooled(w);
    let (mut vals, mut offsets) = (
        vec![0.0; Pairs::VALS * pairs],
        vec![0; Pairs::OFFSETS * pairs],
    );
    let mut s = Pairs::carve(&mut vals, &mut offsets, pairs);
    forward_planes(
        &mut y, &mut at, &mut x_at, x, alpha, beta, CHANNELS, FIRST, h, w, &mut s,
    );
    (y, at, x_at)
}

/// The AVX-512 forward over the planes of x, None if this CPU lacks it.
fn vector(x: &[f32], alpha: &[f32], beta: &[f32], h: usize, w: usize) -> Option<Outs> {
    #[cfg(target_arch = "x86_64")]
    if avx512_available() {
        let outs = x.len() / (h * w) * pooled(h) * pooled(w);
        let (mut y, mut at, mut x_at) = (vec![0.0; outs], vec![0; outs], vec![0.0; outs]);
        // SAFETY: the CPU has AVX-512F
        unsafe {
            avx512::forward_planes(
                &mut y, &mut at, &mut x_at, x, alpha, beta, CHANNELS, FIRST, h, w,
            )
        };
        return Some((y, at, x_at));
    }
    None
}

#[test]
fn forward_is_a_scan_of_each_window_in_scan_order() {
    let (alpha, beta) = affine();
    let mut rng = Rng::seed(7);
    for (h, w) in SHAPES {
        for specials in [false, true] {
            let x = draws(&mut rng, PLANES * h * w, specials);
            let want = reference(&x, &alpha, &beta, h, w);
            let case = format!("{h}x{w}, specials {specials}");
            assert_same(&case, &portable(&x, &alpha, &beta, h, w), &want);
            if let Some(got) = vector(&x, &alpha, &beta, h, w) {
                assert_same(&format!("{case}, AVX-512"), &got, &want);
            }
        }
    }
}

#[test]
fn forward_through_the_public_entry_splits_planes_without_changing_values() {
    // 70 planes: more than GROUPS, so groups hold 3 planes and the last one fewer
    let (h, w, n) = (6, 10, 70);
    let (alpha, beta) = (vec![0.5, -1.25], vec![0.1, 0.0]);
    let x = draws(&mut Rng::seed(3), n * h * w, true);
    let plane_out = pooled(h) * pooled(w);
    let (mut y, mut at, mut x_at) = (
        vec![0.0; n * plane_out],
        vec![0; n * plane_out],
        vec![0.0; n * plane_out],
    );
    let mut scratch = Scratch::default();
    forward(
        &mut y,
        &mut at,
        &mut x_at,
        &x,
        &alpha,
        &beta,
        h,
        w,
        &mut scratch,
    );
    // plane i is channel i % 2: the reference, which numbers channels its own way, sees one
    // plane at a time with that channel's alpha and beta
    for (i, xp) in x.chunks_exact(h * w).enumerate() {
        let (a3, b3) = ([alpha[i % 2]; 3], [beta[i % 2]; 3]);
        let want = reference(xp, &a3, &b3, h, w);
        let o = i * plane_out..(i + 1) * plane_out;
        let got = (
            y[o.clone()].to_vec(),
            at[o.clone()].to_vec(),
            x_at[o].to_vec(),
        );
        assert_same(&format!("plane {i}"), &got, &want);
    }
}

/// The input gradient's coefficients k1, k2, k3 and the mean, per channel (nonzero k2 and k3:
/// batch statistics).
fn coefficients() -> [Vec<f32>; 4] {
    [
        vec![0.8, -1.3, 2.1],
        vec![0.05, -0.2, 0.0],
        vec![0.3, 0.01, -0.7],
        vec![0.1, -0.4, 1.5],
    ]
}

/// The input gradient from its definition: g dense (dy at each argmax where y > 0, else 0),
/// then dx = k1 (g - k2 - (x - mean) k3), added to `dx0` unless `overwrite`.
#[allow(clippy::too_many_arguments)]
fn reference_dx(
    dx0: &[f32],
    overwrite: bool,
    x: &[f32],
    dy: &[f32],
    fwd: &Outs,
    h: usize,
    w: usize,
) -> Vec<f32> {
    let [k1, k2, k3, mean] = coefficients();
    let plane_out = pooled(h) * pooled(w);
    let mut dx = Vec::new();
    for (i, xp) in x.chunks_exact(h * w).enumerate() {
        let ch = (FIRST + i) % CHANNELS;
        let mut g = vec![0.0f32; h * w];
        for o in i * plane_out..(i + 1) * plane_out {
            g[fwd.1[o] as usize] = if fwd.0[o] > 0.0 { dy[o] } else { 0.0 };
        }
        for (j, &v) in xp.iter().enumerate() {
            let t = k1[ch] * (g[j] - k2[ch] - (v - mean[ch]) * k3[ch]);
            dx.push(if overwrite { t } else { dx0[i * h * w + j] + t });
        }
    }
    dx
}

#[test]
fn input_gradient_is_its_expression_on_a_dense_g() {
    let (alpha, beta) = affine();
    let [k1, k2, k3, mean] = coefficients();
    let mut rng = Rng::seed(11);
    for (h, w) in SHAPES {
        for specials in [false, true] {
            let x = draws(&mut rng, PLANES * h * w, specials);
            let fwd = reference(&x, &alpha, &beta, h, w);
            let dy: Vec<f32> = (0..fwd.0.len()).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let dx0: Vec<f32> = (0..x.len()).map(|_| rng.uniform(-1.0, 1.0)).collect();
            for overwrite in [true, false] {
                let want = reference_dx(&dx0, overwrite, &x, &dy, &fwd, h, w);
                let case = format!("{h}x{w}, specials {specials}, overwrite {overwrite}");
                let (mut dx, mut g) = (dx0.clone(), vec![0.0; h * w]);
                backward::backward_planes(
                    &mut dx,
                    overwrite,
                    &x,
                    &dy,
                    &fwd.0,
                    &fwd.1,
                    &mean,
                    &k1,
                    Some((&k2, &k3)),
                    CHANNELS,
                    FIRST,
                    &mut g,
                    h * w,
                );
                assert_eq!(bits(&dx), bits(&want), "{case}");
                #[cfg(target_arch = "x86_64")]
                if avx512_available() {
                    let mut dx = dx0.clone();
                    // SAFETY: the CPU has AVX-512F
                    unsafe {
                        avx512::backward_planes(
                            &mut dx,
                            overwrite,
                            &x,
                            &dy,
                            &fwd.0,
                            &fwd.1,
                            &mean,
                            [&k1, &k2, &k3],
                            FIRST,
                            h,
                            w,
                        )
                    };
                    assert_eq!(bits(&dx), bits(&want), "{case}, AVX-512");
                }
            }
        }
    }
}

#[test]
fn input_gradient_through_the_public_entries_splits_planes_without_changing_values() {
    // 70 planes over 3 channels: groups of 3 planes, the last one shorter; then one sample
    // (CHANNELS planes) through sample_input_grad
    let (h, w, n) = (5, 8, 70);
    let [k1, k2, k3, mean] = coefficients();
    let (alpha, beta) = affine();
    let mut rng = Rng::seed(5);
    let x = draws(&mut rng, n * h * w, true);
    // plane i is channel i % 3 here, the reference's channel is (FIRST + i) % 3: rotate the
    // reference's planes by prepending CHANNELS - FIRST planes that are then dropped
    let skip = CHANNELS - FIRST;
    let padded = [vec![0.0; skip * h * w], x.clone()].concat();
    let fwd = reference(&padded, &alpha, &beta, h, w);
    let plane_out = pooled(h) * pooled(w);
    let dy: Vec<f32> = (0..fwd.0.len()).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let dx0: Vec<f32> = (0..padded.len()).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let want = reference_dx(&dx0, false, &padded, &dy, &fwd, h, w);
    let outs = skip * plane_out..;
    let (dys, y, at) = (&dy[outs.clone()], &fwd.0[outs.clone()], &fwd.1[outs]);
    let mut dx = dx0[skip * h * w..].to_vec();
    let mut scratch = Scratch::default();
    let coef = Some((&k2[..], &k3[..]));
    backward_input(
        &mut dx,
        false,
        dys,
        y,
        at,
        &x,
        &mean,
        &k1,
        coef,
        h,
        w,
        &mut scratch,
    );
    assert_eq!(bits(&dx), bits(&want[skip * h * w..]), "backward_input");
    // the first sample alone, overwritten
    let want = reference_dx(&dx0, true, &padded, &dy, &fwd, h, w);
    let sample = CHANNELS * h * w;
    let mut dx_n = vec![f32::NAN; sample];
    let mut g = vec![0.0; sample_scratch_len(h, w)];
    let o = CHANNELS * plane_out;
    sample_input_grad(
        &mut dx_n,
        &x[..sample],
        &dys[..o],
        &y[..o],
        &at[..o],
        &mean,
        &k1,
        coef,
        h,
        w,
        &mut g,
    );
    let start = skip * h * w;
    assert_eq!(
        bits(&dx_n),
        bits(&want[start..start + sample]),
        "sample_input_grad"
    );
}

/// One plane's [sum g, sum g (x_at - mean)] from the definition, in `plane_sums`'s order:
/// output j into accumulator j % 8, then the eight in order.
fn reference_sums(dy: &[f32], y: &[f32], x_at: &[f32], mean: f32) -> [f32; 2] {
    let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
    for j in 0..dy.len() {
        let g = if y[j] > 0.0 { dy[j] } else { 0.0 };
        a[j % 8] += g;
        b[j % 8] += g * (x_at[j] - mean);
    }
    [a.iter().sum(), b.iter().sum()]
}

#[test]
fn gradient_sums_keep_their_order_of_addition() {
    let mean = coefficients()[3].clone();
    let mut rng = Rng::seed(13);
    // outputs per plane: fewer than 8, the cnn preset's 49 and 196, a multiple of 8
    for plane_out in [1, 5, 49, 64, 196] {
        // 40 planes: more than one task of PLANES (16), the last one shorter
        let planes = 40;
        let n = planes * plane_out;
        let y = draws(&mut rng, n, true);
        let dy: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let x_at: Vec<f32> = (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let mut want = Vec::new();
        for p in 0..planes {
            let r = p * plane_out..(p + 1) * plane_out;
            let mu = mean[p % CHANNELS];
            want.extend(reference_sums(&dy[r.clone()], &y[r.clone()], &x_at[r], mu));
        }
        let mut portable = vec![0.0; 2 * planes];
        for (task, sums) in portable.chunks_mut(2 * PLANES).enumerate() {
            backward::plane_sums(
                sums,
                &dy,
                &y,
                &x_at,
                &mean,
                CHANNELS,
                task * PLANES,
                plane_out,
            );
        }
        assert_eq!(
            bits(&portable),
            bits(&want),
            "{plane_out} outputs, portable"
        );
        // through the entry (the AVX-512 path where the CPU has it): per channel, the planes'
        // sums in plane order, the second times rstd
        let rstd = vec![1.5, 0.5, 2.0];
        let (mut per_plane, mut sum_g, mut sum_gx) = (vec![0.0; 2 * planes], [0.0; 3], [0.0; 3]);
        grad_sums(
            &dy,
            &y,
            &x_at,
            &mean,
            &rstd,
            plane_out,
            &mut per_plane,
            &mut sum_g,
            &mut sum_gx,
        );
        assert_eq!(
            bits(&per_plane),
            bits(&want),
            "{plane_out} outputs, per plane"
        );
        let (mut g, mut gx) = ([0.0f32; 3], [0.0f32; 3]);
        for (p, s) in want.chunks_exact(2).enumerate() {
            g[p % CHANNELS] += s[0];
            gx[p % CHANNELS] += s[1];
        }
        for ch in 0..CHANNELS {
            gx[ch] *= rstd[ch];
        }
        assert_eq!(bits(&sum_g), bits(&g), "{plane_out} outputs, sum g");
        assert_eq!(bits(&sum_gx), bits(&gx), "{plane_out} outputs, sum g xhat");
    }
}
