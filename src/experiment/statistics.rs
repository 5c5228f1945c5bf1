//! Statistics over seeds: the mean and sample standard deviation of a metric, its 95%
//! confidence interval from Student's t distribution, and the paired two-sided t-test that
//! says whether two arms run on the same seeds differ.
//!
//! Student's t distribution is computed, not looked up: its CDF through the regularized
//! incomplete beta function (continued fraction, as in Numerical Recipes §6.4), its quantile by
//! bisection on the CDF. A table would stop at the degrees of freedom somebody wrote down.

use serde::{Deserialize, Serialize};

/// A metric over seeds: `{"mean", "std", "ci95": [low, high], "n"}` in `results.json`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The mean over the seeds that have a value.
    pub mean: f64,
    /// The sample standard deviation (n − 1 in the denominator); 0 for one value.
    pub std: f64,
    /// The 95% t-interval of the mean; both ends are the mean for one value (no interval).
    pub ci95: [f64; 2],
    /// How many seeds have a value (a diverged run has none).
    pub n: usize,
}

impl Summary {
    /// The summary of `values` (those that are finite), None when there is none.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        if n == 0 {
            return None;
        }
        let mean = mean(&v);
        let std = sample_std(&v);
        let half = if n > 1 {
            student_t_quantile(0.975, (n - 1) as f64) * std / (n as f64).sqrt()
        } else {
            0.0
        };
        Some(Summary {
            mean,
            std,
            ci95: [mean - half, mean + half],
            n,
        })
    }

    /// Half the width of the interval: the "± h" of "mean ± h".
    pub fn half_width(&self) -> f64 {
        (self.ci95[1] - self.ci95[0]) / 2.0
    }

    /// `mean ± half-width` with `decimals` decimals, `scale` times the values (100 for
    /// percent); just the mean for one value.
    pub fn text(&self, scale: f64, decimals: usize) -> String {
        if self.n > 1 {
            format!(
                "{:.decimals$} ± {:.decimals$}",
                self.mean * scale,
                self.half_width() * scale
            )
        } else {
            format!("{:.decimals$}", self.mean * scale)
        }
    }
}

/// The arithmetic mean (NaN for no values).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The sample standard deviation, with n − 1 in the denominator (0 for fewer than 2 values).
pub fn sample_std(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    let ss: f64 = v.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (v.len() - 1) as f64).sqrt()
}

/// The result of a paired two-sided t-test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedTest {
    /// Mean of the differences a − b.
    pub mean_difference: f64,
    /// The t statistic (±infinity when every difference is the same non-zero value).
    pub t: f64,
    /// Degrees of freedom: pairs − 1.
    pub df: f64,
    /// The two-sided p-value.
    pub p: f64,
    /// Number of pairs.
    pub n: usize,
}

impl PairedTest {
    /// Whether the difference is significant at `alpha` (two-sided).
    pub fn significant(&self, alpha: f64) -> bool {
        self.p < alpha
    }
}

/// The paired two-sided t-test of `a` against `b` (same seeds, same order); pairs where either
/// value is not finite are left out. None with fewer than two pairs: no test is possible.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Option<PairedTest> {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| x - y)
        .collect();
    let n = d.len();
    if n < 2 {
        return None;
    }
    let m = mean(&d);
    let s = sample_std(&d);
    let df = (n - 1) as f64;
    let (t, p) = if s == 0.0 {
        // every pair differs by the same amount: no spread to weigh it against
        if m == 0.0 {
            (0.0, 1.0)
        } else {
            (m.signum() * f64::INFINITY, 0.0)
        }
    } else {
        let t = m / (s / (n as f64).sqrt());
        (t, student_t_two_sided_p(t, df))
    };
    Some(PairedTest {
        mean_difference: m,
        t,
        df,
        p,
        n,
    })
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom.
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    // P(|T| ≥ |t|) = I_x(df/2, 1/2) with x = df / (df + t²)
    regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// The CDF of Student's t distribution with `df` (> 0) degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * student_t_two_sided_p(t, df);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `q`-quantile (0 < q < 1) of Student's t with `df` (> 0) degrees of freedom, by
/// bisection on the CDF to the precision of an f64.
pub fn student_t_quantile(q: f64, df: f64) -> f64 {
    assert!(
        q > 0.0 && q < 1.0 && df > 0.0,
        "t quantile of {q} at df {df}"
    );
    // the quantile lies in a bracket that widens until it holds q (df = 1, q = 0.9999: 3183)
    let mut hi = 1.0;
    while student_t_cdf(hi, df) < q.max(1.0 - q) {
        hi *= 2.0;
    }
    let (mut lo, mut hi) = (-hi, hi);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid == lo || mid == hi {
            break;
        }
        if student_t_cdf(mid, df) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection: Γ(x) Γ(1 − x) = π / sin(πx)
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b), for 0 ≤ x ≤ 1 and a, b > 0.
pub fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // the continued fraction converges fast for x < (a + 1) / (a + b + 2); otherwise use the
    // symmetry I_x(a, b) = 1 − I_{1−x}(b, a)
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz's method).
fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        // the even step
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        // the odd step
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn t_quantiles_match_the_published_tables() {
        // two-sided 95% critical values, as printed in any t table (e.g. NIST/SEMATECH
        // e-Handbook of Statistical Methods, table 1.3.6.7.2), to the table's digits
        for (df, want) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (4.0, 2.776),
            (9.0, 2.262),
            (30.0, 2.042),
            (100.0, 1.984),
        ] {
            let got = student_t_quantile(0.975, df);
            assert!((got - want).abs() < 5e-4, "df {df}: {got} vs {want}");
        }
        // more digits, as the brief gives them
        assert!((student_t_quantile(0.975, 4.0) - 2.7764).abs() < 5e-5);
        assert!((student_t_quantile(0.975, 30.0) - 2.0423).abs() < 5e-5);
        // symmetry, and the normal limit 1.959964 at a very large df
        assert!(close(
            student_t_quantile(0.025, 7.0),
            -student_t_quantile(0.975, 7.0),
            1e-12
        ));
        assert!((student_t_quantile(0.975, 1e7) - 1.959_964).abs() < 1e-5);
    }

    #[test]
    fn the_t_cdf_matches_its_closed_forms_at_one_and_two_degrees_of_freedom() {
        // df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/π; df = 2:
        // F(t) = 1/2 + t / (2 √(2 + t²)). Both independent of the incomplete beta.
        for t in [-30.0, -3.0, -1.0, -0.2, 0.0, 0.5, 1.0, 2.5, 12.706, 100.0] {
            let cauchy = 0.5 + f64::atan(t) / std::f64::consts::PI;
            assert!(
                (student_t_cdf(t, 1.0) - cauchy).abs() < 1e-13,
                "df 1, t {t}"
            );
            let two = 0.5 + t / (2.0 * (2.0 + t * t).sqrt());
            assert!((student_t_cdf(t, 2.0) - two).abs() < 1e-13, "df 2, t {t}");
        }
        // the exact quantile at df 1: tan(π (q − 1/2))
        let q = 0.975;
        let exact = (std::f64::consts::PI * (q - 0.5)).tan();
        assert!(close(student_t_quantile(q, 1.0), exact, 1e-12));
    }

    #[test]
    fn mean_std_and_interval_of_a_known_sample() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squares 32, sample variance 32/7
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let s = Summary::of(&v).unwrap();
        assert_eq!(s.mean, 5.0);
        assert!(close(s.std, (32.0f64 / 7.0).sqrt(), 1e-15));
        assert_eq!(s.n, 8);
        // t_{0.975, 7} = 2.364624 (table value 2.365)
        let half = 2.364_624 * s.std / 8f64.sqrt();
        assert!((s.ci95[0] - (5.0 - half)).abs() < 1e-5);
        assert!((s.ci95[1] - (5.0 + half)).abs() < 1e-5);
        // a non-finite value (a diverged run) is left out, one value has no interval
        let one = Summary::of(&[0.5, f64::NAN]).unwrap();
        assert_eq!((one.n, one.std, one.ci95), (1, 0.0, [0.5, 0.5]));
        assert!(Summary::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn paired_t_test_matches_scipy() {
        // scipy.stats.ttest_rel(a, b), scipy 1.17.1: statistic 3.02871797958878,
        // pvalue 0.038829365734858186
        let a = [0.9812, 0.9790, 0.9801, 0.9825, 0.9808];
        let b = [0.9779, 0.9785, 0.9771, 0.9810, 0.9802];
        let r = paired_t_test(&a, &b).unwrap();
        assert_eq!((r.n, r.df), (5, 4.0));
        // the statistic by hand: differences .0033 .0005 .0030 .0015 .0006
        let d = [0.0033, 0.0005, 0.0030, 0.0015, 0.0006];
        let t = mean(&d) / (sample_std(&d) / 5f64.sqrt());
        assert!(close(r.t, t, 1e-9), "{} vs {t}", r.t);
        assert!(close(r.t, SCIPY_T, 1e-6), "{} vs scipy {SCIPY_T}", r.t);
        assert!(close(r.p, SCIPY_P, 1e-6), "{} vs scipy {SCIPY_P}", r.p);
        assert!(r.significant(0.05) == (SCIPY_P < 0.05));
        // the test is antisymmetric in its arms
        let back = paired_t_test(&b, &a).unwrap();
        assert!(close(back.t, -r.t, 1e-12) && close(back.p, r.p, 1e-12));
        // at t = t_{0.975, df} the two-sided p is 0.05, whatever df
        for df in [1.0, 3.0, 10.0, 50.0] {
            let t = student_t_quantile(0.975, df);
            assert!(
                (student_t_two_sided_p(t, df) - 0.05).abs() < 1e-12,
                "df {df}"
            );
        }
        // no spread: equal pairs are p = 1, a constant shift p = 0; one pair: no test
        assert_eq!(paired_t_test(&[1.0, 2.0], &[1.0, 2.0]).unwrap().p, 1.0);
        assert_eq!(paired_t_test(&[2.0, 3.0], &[1.0, 2.0]).unwrap().p, 0.0);
        assert!(paired_t_test(&[1.0, f64::NAN], &[0.0, 1.0]).is_none());
    }

    const SCIPY_T: f64 = 3.028_717_979_588_78;
    const SCIPY_P: f64 = 0.038_829_365_734_858_186;

    #[test]
    fn a_difference_within_the_noise_is_not_significant() {
        // scipy.stats.ttest_rel(a, b), scipy 1.17.1: statistic 0.20498001542269653,
        // pvalue 0.8456711339658731
        let a = [12.1, 11.8, 13.0, 12.6, 12.2, 11.9];
        let b = [12.0, 12.1, 12.4, 12.9, 11.8, 12.2];
        let r = paired_t_test(&a, &b).unwrap();
        assert!(close(r.t, 0.204_980_015_422_696_53, 1e-9), "{}", r.t);
        assert!(close(r.p, 0.845_671_133_965_873_1, 1e-9), "{}", r.p);
        assert!(!r.significant(0.05));
    }

    #[test]
    fn t_quantiles_match_scipy_to_many_digits() {
        // scipy.stats.t.ppf(0.975, df), scipy 1.17.1
        for (df, want) in [
            (1.0, 12.706_204_736_174_694),
            (2.0, 4.302_652_729_749_462),
            (4.0, 2.776_445_105_197_793_4),
            (7.0, 2.364_624_251_592_784),
            (30.0, 2.042_272_456_301_237_8),
            (100.0, 1.983_971_518_523_551_8),
        ] {
            let got = student_t_quantile(0.975, df);
            assert!(close(got, want, 1e-10), "df {df}: {got} vs {want}");
        }
    }
}
