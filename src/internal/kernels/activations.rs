//! Elementwise activations: Sigmoid, Tanh, LeakyReLU and GELU (exact and tanh-approximated).
//! Each forward is `y = f(x)` over any shape; each backward *accumulates* `dx += dy * f'(x)`
//! (see `kernels/mod.rs`). Large tensors are split over threads, as `relu` splits them.
//!
//! Which value a backward reads follows PyTorch's autograd, for float32 accuracy: Sigmoid and
//! Tanh take the saved output y (their derivatives are polynomials in y), LeakyReLU and GELU the
//! saved input x. f32's `exp` and `tanh` are enough for the first three. GELU's exact form uses
//! the erf PyTorch's CPU kernel uses (Abramowitz and Stegun's, in f32; std has no erf); its tanh
//! form is evaluated in f64 and rounded once, written so that `1 + tanh` never cancels.

use rayon::prelude::*;
use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

/// Values per parallel task: below this a tensor is done on the calling thread.
const CHUNK: usize = 1 << 16;

/// `y[i] = f(x[i])`, over threads above `CHUNK` values. x, y: any shape, same length.
#[inline(always)]
fn map(y: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32 + Sync) {
    assert_eq!(y.len(), x.len(), "activation: y and x differ in length");
    let run = |y: &mut [f32], x: &[f32]| {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = f(x);
        }
    };
    if y.len() <= CHUNK {
        run(y, x);
    } else {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| run(y, x));
    }
}

/// `dx[i] += dy[i] * g(saved[i])`, g being the derivative written in terms of the saved value.
#[inline(always)]
fn accumulate(dx: &mut [f32], dy: &[f32], saved: &[f32], g: impl Fn(f32) -> f32 + Sync) {
    assert!(
        dx.len() == dy.len() && dy.len() == saved.len(),
        "activation backward: dx, dy and the saved tensor differ in length"
    );
    let run = |dx: &mut [f32], dy: &[f32], s: &[f32]| {
        for ((dx, &dy), &s) in dx.iter_mut().zip(dy).zip(s) {
            *dx += dy * g(s);
        }
    };
    if dx.len() <= CHUNK {
        run(dx, dy, saved);
    } else {
        dx.par_chunks_mut(CHUNK)
            .zip(dy.par_chunks(CHUNK))
            .zip(saved.par_chunks(CHUNK))
            .for_each(|((dx, dy), s)| run(dx, dy, s));
    }
}

// ---------------------------------------------------------------------------------------------
// Sigmoid: y = 1 / (1 + e^-x)

/// Sigmoid forward, `y = 1 / (1 + exp(-x))`. x, y: any shape, same length.
/// For x below about -88, exp(-x) is +inf in f32 and y is 0, not NaN (as in PyTorch).
pub fn sigmoid_forward(y: &mut [f32], x: &[f32]) {
    map(y, x, |x| 1.0 / (1.0 + (-x).exp()));
}

/// Sigmoid backward from the saved *output* y:
///   dy/dx = e^-x / (1 + e^-x)^2 = y * (1 - y)
/// so `dx += dy * (1 - y) * y` (PyTorch's `sigmoid_backward`, in its order).
pub fn sigmoid_backward(dx: &mut [f32], dy: &[f32], y: &[f32]) {
    accumulate(dx, dy, y, |y| (1.0 - y) * y);
}

// ---------------------------------------------------------------------------------------------
// Tanh

/// Tanh forward, `y = tanh(x)` (±1 for large |x|). x, y: any shape, same length.
pub fn tanh_forward(y: &mut [f32], x: &[f32]) {
    map(y, x, f32::tanh);
}

/// Tanh backward from the saved *output* y:
///   d tanh(x)/dx = 1 / cosh^2(x) = 1 - tanh^2(x) = 1 - y^2
/// so `dx += dy * (1 - y * y)`.
pub fn tanh_backward(dx: &mut [f32], dy: &[f32], y: &[f32]) {
    accumulate(dx, dy, y, |y| 1.0 - y * y);
}

// ---------------------------------------------------------------------------------------------
// LeakyReLU: y = x for x > 0, negative_slope * x otherwise

/// LeakyReLU forward, `y = x if x > 0 else negative_slope * x` (NaN stays NaN).
/// x, y: any shape, same length.
pub fn leaky_relu_forward(y: &mut [f32], x: &[f32], negative_slope: f32) {
    map(y, x, |x| if x > 0.0 { x } else { x * negative_slope });
}

/// LeakyReLU backward from the saved *input* x (the output cannot tell the sides apart when
/// the slope is 0 or negative):
///   dy/dx = 1 for x > 0, negative_slope otherwise (PyTorch's choice at x = 0 is the slope)
/// so `dx += dy * (x > 0 ? 1 : negative_slope)`.
pub fn leaky_relu_backward(dx: &mut [f32], dy: &[f32], x: &[f32], negative_slope: f32) {
    accumulate(dx, dy, x, |x| if x > 0.0 { 1.0 } else { negative_slope });
}

// ---------------------------------------------------------------------------------------------
// GELU

/// GELU's form, PyTorch's `approximate` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GeluApproximate {
    /// `"none"` (the default): `x * Phi(x)`, Phi the standard normal CDF.
    #[default]
    None,
    /// `"tanh"`: `0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`.
    Tanh,
}

impl GeluApproximate {
    /// From PyTorch's spelling, `"none"` or `"tanh"`; any other name gives `Option::None`.
    pub fn from_name(name: &str) -> Option<GeluApproximate> {
        match name {
            "none" => Some(GeluApproximate::None),
            "tanh" => Some(GeluApproximate::Tanh),
            _ => None,
        }
    }
}

/// sqrt(2 / pi) and the cubic coefficient of the tanh approximation.
const BETA: f64 = FRAC_2_SQRT_PI * FRAC_1_SQRT_2;
const KAPPA: f64 = 0.044715;

/// For the tanh form, with u = BETA * (x + KAPPA x^3): (1 + tanh u) / 2 = sigma(2u), the
/// logistic function, and sigma(2u) (1 - sigma(2u)). Both from e = exp(-2|u|) <= 1, so neither
/// tail cancels or overflows: sigma(2u) = 1 / (1 + e) for u >= 0, e / (1 + e) below, and
/// sigma (1 - sigma) = e / (1 + e)^2 (even in u).
#[inline(always)]
fn tanh_form_parts(x: f64) -> (f64, f64) {
    let u = BETA * (x + KAPPA * x * x * x);
    let e = (-2.0 * u.abs()).exp();
    let sig = if u >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (sig, e / ((1.0 + e) * (1.0 + e)))
}

/// erf(z) in f32 as PyTorch's vectorised CPU kernel computes it (Abramowitz and Stegun 7.1.26:
/// with t = 1 / (1 + p |z|), erf |z| = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-z^2),
/// an absolute error below 1.5e-7). A dozen flops and one exp; libm's f64 erfc made an epoch of
/// the seed's MLP with GELU take 1.9 s (0.6 s with ReLU). The same rounding as PyTorch in the lower tail
/// (GELU(-8) is 0 there too).
#[inline(always)]
fn erf32(z: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152,
        1.061_405_4,
    ];
    let a = z.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let r = 1.0 - poly * (-a * a).exp();
    r.copysign(z)
}

/// Phi(x) = (1 + erf(x / sqrt 2)) / 2, in f32 as PyTorch computes it.
#[inline(always)]
fn normal_cdf32(x: f32) -> f32 {
    0.5 * (1.0 + erf32(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// 1 / sqrt(2 pi), phi(0).
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// GELU(x) in f64 (the tanh form; the exact form is `x * normal_cdf32(x)` in f32).
#[inline(always)]
fn gelu64(x: f64, approximate: GeluApproximate) -> f64 {
    match approximate {
        GeluApproximate::None => (x as f32 * normal_cdf32(x as f32)) as f64,
        GeluApproximate::Tanh => x * tanh_form_parts(x).0,
    }
}

/// GELU'(x) in f64: the derivations are in `gelu_backward`'s comment.
#[inline(always)]
fn gelu_grad64(x: f64, approximate: GeluApproximate) -> f64 {
    match approximate {
        GeluApproximate::None => {
            // phi(x) = e^(-x^2 / 2) / sqrt(2 pi), all in f32 as PyTorch's kernel
            let x = x as f32;
            let pdf = INV_SQRT_2PI * (-0.5 * x * x).exp();
            (normal_cdf32(x) + x * pdf) as f64
        }
        GeluApproximate::Tanh => {
            let (sig, sig_1msig) = tanh_form_parts(x);
            let du = BETA * (1.0 + 3.0 * KAPPA * x * x);
            sig + 2.0 * x * sig_1msig * du
        }
    }
}

/// GELU forward. x, y: any shape, same length.
///   `none`: y = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2
///   `tanh`: y = x * (1 + tanh(u)) / 2, u = sqrt(2/pi) * (x + 0.044715 x^3)
/// Computed in f64 and rounded once: GELU(-20) is -0, GELU(20) is 20, never NaN for finite x.
pub fn gelu_forward(y: &mut [f32], x: &[f32], approximate: GeluApproximate) {
    match approximate {
        GeluApproximate::None => map(y, x, |x| x * normal_cdf32(x)),
        GeluApproximate::Tanh => map(y, x, |x| gelu64(x as f64, approximate) as f32),
    }
}

/// GELU backward from the saved *input* x, `dx += dy * GELU'(x)`, GELU'(x) in f64:
///   `none`: d/dx [x Phi(x)] = Phi(x) + x phi(x),  phi(x) = e^(-x^2/2) / sqrt(2 pi)
///     (PyTorch's `cdf + x * pdf`).
///   `tanh`: with t = tanh(u), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2),
///     d/dx [x (1 + t) / 2] = (1 + t) / 2 + x / 2 * (1 - t^2) * u'
///     (PyTorch's `left_derivative + right_derivative`). Written with s = sigma(2u) = (1 + t)/2,
///     1 - t^2 = (1 - t)(1 + t) = 4 s (1 - s), this is s + 2 x s (1 - s) u', which stays exact
///     where t rounds to ±1 (1 - t^2 would be 0 or cancelled).
pub fn gelu_backward(dx: &mut [f32], dy: &[f32], x: &[f32], approximate: GeluApproximate) {
    accumulate(dx, dy, x, |x| gelu_grad64(x as f64, approximate) as f32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::layer_norm::tests::Golden;

    /// The kernels under test, with their parameters.
    #[derive(Clone, Copy, Debug)]
    enum Act {
        Sigmoid,
        Tanh,
        Leaky(f32),
        Gelu(GeluApproximate),
    }

    const ACTS: [Act; 5] = [
        Act::Sigmoid,
        Act::Tanh,
        Act::Leaky(0.2),
        Act::Gelu(GeluApproximate::None),
        Act::Gelu(GeluApproximate::Tanh),
    ];

    impl Act {
        fn forward(self, y: &mut [f32], x: &[f32]) {
            match self {
                Act::Sigmoid => sigmoid_forward(y, x),
                Act::Tanh => tanh_forward(y, x),
                Act::Leaky(slope) => leaky_relu_forward(y, x, slope),
                Act::Gelu(a) => gelu_forward(y, x, a),
            }
        }

        fn backward(self, dx: &mut [f32], dy: &[f32], x: &[f32], y: &[f32]) {
            match self {
                Act::Sigmoid => sigmoid_backward(dx, dy, y),
                Act::Tanh => tanh_backward(dx, dy, y),
                Act::Leaky(slope) => leaky_relu_backward(dx, dy, x, slope),
                Act::Gelu(a) => gelu_backward(dx, dy, x, a),
            }
        }

        /// f64 references, written independently of the kernels' forms.
        fn reference(self, x: f64) -> f64 {
            let pi = std::f64::consts::PI;
            match self {
                Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                Act::Tanh => x.tanh(),
                Act::Leaky(slope) => x.max(0.0) + slope as f64 * x.min(0.0),
                Act::Gelu(GeluApproximate::None) => {
                    // Phi(t), t <= 0, by Simpson's rule on the density over [t - 12, t] (what
                    // lies below is under 1e-32 of it): no erf, and the lower tail keeps its
                    // relative accuracy
                    let lower = |t: f64| {
                        let (n, h, a) = (4000, 12.0 / 4000.0, t - 12.0);
                        let pdf = |s: f64| (-0.5 * s * s).exp() / (2.0 * pi).sqrt();
                        let weight = |i: usize| if i % 2 == 1 { 4.0 } else { 2.0 };
                        let inner: f64 = (1..n).map(|i| weight(i) * pdf(a + i as f64 * h)).sum();
                        h / 3.0 * (pdf(a) + inner + pdf(t))
                    };
                    x * if x <= 0.0 { lower(x) } else { 1.0 - lower(-x) }
                }
                Act::Gelu(GeluApproximate::Tanh) => {
                    // (1 + tanh u) / 2 = 1 / (1 + e^(-2u)), without 1 + tanh's cancellation
                    let u = (2.0 / pi).sqrt() * (x + 0.044715 * x * x * x);
                    x / (1.0 + (-2.0 * u).exp())
                }
            }
        }
    }

    /// Inputs covering both tails and zero: the golden files' first four values, then a ramp.
    fn inputs() -> Vec<f32> {
        let mut x = vec![
            0.0, -20.0, 20.0, 1e-3, -1e-3, 88.0, -88.0, -104.0, 1e4, -1e4,
        ];
        x.extend((0..161).map(|i| (i as f32 - 80.0) / 10.0));
        x
    }

    #[test]
    fn erf32_is_within_abramowitz_and_stegun_bound() {
        // from CPython's math.erf: z, erf(z)
        for (z, want) in [
            (0.0f32, 0.0f64),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (-1.5, -0.9661051464753108),
            (5.0, 0.9999999999984626),
        ] {
            let got = erf32(z) as f64;
            assert!((got - want).abs() <= 2e-7, "erf({z}) = {got}, want {want}");
        }
    }

    #[test]
    fn forward_matches_f64_references() {
        let x = inputs();
        for act in ACTS {
            let mut y = vec![f32::NAN; x.len()];
            act.forward(&mut y, &x);
            for (&x, &y) in x.iter().zip(&y) {
                let want = act.reference(x as f64);
                let err = (y as f64 - want).abs();
                // the exact GELU is PyTorch's f32 form: erf within 1.5e-7 absolute, so y within
                // |x| 1e-7 (the golden cases' tolerance holds it to PyTorch's own numbers)
                let bound = match act {
                    Act::Gelu(GeluApproximate::None) => 1e-7 * (1.0 + (x as f64).abs()),
                    _ => 1e-37 + 3e-7 * want.abs(),
                };
                assert!(err <= bound, "{act:?}({x}) = {y}, want {want}");
            }
        }
    }

    #[test]
    fn backward_matches_central_differences_of_sum_y_r() {
        // L = sum_i y_i r_i, so dL/dx_i = r_i f'(x_i): central differences of the f64 reference
        // (a step relative to |x|, so that it is not lost at 1e4)
        let x = inputs();
        let r: Vec<f32> = (0..x.len())
            .map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0)
            .collect();
        for act in ACTS {
            let mut y = vec![0.0; x.len()];
            act.forward(&mut y, &x);
            let mut dx = vec![0.5; x.len()]; // backward adds onto what is there
            act.backward(&mut dx, &r, &x, &y);
            for i in 0..x.len() {
                let (xi, h) = (x[i] as f64, 1e-4 * (1.0 + (x[i] as f64).abs()));
                let slope = match act {
                    // the kink at 0: the kernel takes the slope's side, as PyTorch does
                    Act::Leaky(slope) if x[i] == 0.0 => slope as f64,
                    _ => (act.reference(xi + h) - act.reference(xi - h)) / (2.0 * h),
                };
                let want = 0.5 + r[i] as f64 * slope;
                let err = (dx[i] as f64 - want).abs();
                assert!(
                    err <= 2e-6 + 1e-5 * want.abs(),
                    "{act:?}'({xi}): {}, want {want}",
                    dx[i]
                );
            }
        }
    }

    #[test]
    fn large_tensors_split_over_threads_give_the_same_values() {
        let x: Vec<f32> = (0..3 * CHUNK + 5)
            .map(|i| (i % 4001) as f32 / 100.0 - 20.0)
            .collect();
        for act in ACTS {
            let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            act.forward(&mut y, &x);
            act.backward(&mut dx, &x, &x, &y);
            assert!(
                y.iter().chain(&dx).all(|v| v.is_finite()),
                "{act:?}: not finite"
            );
            for i in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 17, x.len() - 1] {
                let (mut y1, mut d1, one) = ([0.0], [0.0], &x[i..i + 1]);
                act.forward(&mut y1, one);
                act.backward(&mut d1, one, one, &y1);
                assert_eq!((y[i], dx[i]), (y1[0], d1[0]), "{act:?} at {i}");
            }
        }
    }

    #[test]
    fn golden_cases_from_pytorch() {
        let mut seen = 0;
        for layer in ["Sigmoid", "Tanh", "LeakyReLU", "GELU"] {
            for case in Golden::cases(layer) {
                let act = match layer {
                    "Sigmoid" => Act::Sigmoid,
                    "Tanh" => Act::Tanh,
                    "LeakyReLU" => Act::Leaky(case.parse("negative_slope")),
                    _ => Act::Gelu(
                        GeluApproximate::from_name(case.meta("approximate")).unwrap_or_else(|| {
                            panic!(
                                "{}: approximate {}",
                                case.path.display(),
                                case.meta("approximate")
                            )
                        }),
                    ),
                };
                let (x, dy) = (case.t("x"), case.t("grad_y"));
                let (mut y, mut dx) = (vec![f32::NAN; x.len()], vec![0.0; x.len()]);
                act.forward(&mut y, x);
                act.backward(&mut dx, dy, x, &y);
                // README: atol 1e-6 + rtol 1e-5
                case.check(&y, "y", 1e-6, 1e-5);
                case.check(&dx, "grad_x", 1e-6, 1e-5);
                seen += 1;
            }
        }
        assert!(
            seen >= 5,
            "expected at least the five activation cases, found {seen}"
        );
    }
}
