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
