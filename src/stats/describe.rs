//! Describing a tensor the way the BatchNorm paper's figures do: percentiles of one unit's
//! values over a batch, and how the per-unit means and standard deviations spread over units.
//!
//! A "unit" is an index of dimension 1: a feature of an (N, F) tensor, a channel of an
//! (N, C, H, W) one. Its values are every element with that index: N of them for (N, F),
//! N·H·W for (N, C, H, W), which is the set BatchNorm normalises together.

use serde::{Deserialize, Serialize};

/// The `q`-quantile (0 ≤ q ≤ 1) of `sorted` (ascending, not empty) with linear interpolation
/// between the two nearest ranks: NumPy's and `torch.quantile`'s default. Position
/// h = (n − 1)·q; the result is x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
pub fn quantile(sorted: &[f32], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty() && (0.0..=1.0).contains(&q));
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b) = (sorted[lo] as f64, sorted[hi] as f64);
    a + (h - lo as f64) * (b - a)
}

/// (units, values per unit, inner size) of a tensor of `shape`: dimension 1 is the unit, the
/// batch and every dimension after 1 are its values. A 1-d tensor is one unit.
fn layout(shape: &[usize]) -> (usize, usize, usize) {
    match shape {
        [] => (1, 1, 1),
        [n] => (1, *n, 1),
        [n, c, rest @ ..] => {
            let inner: usize = rest.iter().product();
            (*c, n * inner, inner)
        }
    }
}

/// The values of unit `unit` of `data` (shape `shape`), appended to `out`.
pub fn unit_values(data: &[f32], shape: &[usize], unit: usize, out: &mut Vec<f32>) {
    let (units, _, inner) = layout(shape);
    if units == 0 || inner == 0 {
        return;
    }
    // each sample is `units` blocks of `inner` values; unit u's block starts at u·inner
    for sample in data.chunks_exact(units * inner) {
        out.extend_from_slice(&sample[unit * inner..(unit + 1) * inner]);
    }
}

/// Per-unit sums and sums of squares, in f64, of one tensor or of many with the same units
/// (the batches of an evaluation).
#[derive(Clone, Debug, Default)]
pub struct UnitSums {
    /// Values added per unit.
    pub count: usize,
    /// Per unit: the sum of its values.
    pub sum: Vec<f64>,
    /// Per unit: the sum of their squares.
    pub sum_sq: Vec<f64>,
}

impl UnitSums {
    /// Add every value of `data` (shape `shape`) to its unit's sums.
    pub fn add(&mut self, data: &[f32], shape: &[usize]) {
        let (units, count, inner) = layout(shape);
        if self.sum.len() != units {
            // the first tensor sets the units
            *self = UnitSums {
                count: 0,
                sum: vec![0.0; units],
                sum_sq: vec![0.0; units],
            };
        }
        self.count += count;
        if units == 0 || inner == 0 {
            return;
        }
        for sample in data.chunks_exact(units * inner) {
            for (u, block) in sample.chunks_exact(inner).enumerate() {
                for &v in block {
                    self.sum[u] += v as f64;
                    self.sum_sq[u] += v as f64 * v as f64;
                }
            }
        }
    }

    /// Per-unit mean and variance (biased: divided by the count, as BatchNorm normalises).
    pub fn moments(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.count.max(1) as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let var = self
            .sum_sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| (s / n - m * m).max(0.0))
            .collect();
        (mean, var)
    }
}

/// Per-unit mean and variance (biased: divided by the count, as BatchNorm normalises) of
/// `data`, accumulated in f64.
pub fn unit_moments(data: &[f32], shape: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let mut sums = UnitSums::default();
    sums.add(data, shape);
    sums.moments()
}

/// Mean and (population) standard deviation of `xs`; NaN for an empty list.
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// A tensor's distribution as one row of the statistics: one unit's percentiles, and the
/// spread over units of the per-unit batch means and standard deviations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// 15th percentile of the chosen unit's values.
    pub p15: f64,
    /// Median of the chosen unit's values.
    pub p50: f64,
    /// 85th percentile of the chosen unit's values.
    pub p85: f64,
    /// Average over units of the per-unit means.
    pub mean_avg: f64,
    /// Standard deviation over units of the per-unit means.
    pub mean_sd: f64,
    /// Average over units of the per-unit standard deviations (biased).
    pub std_avg: f64,
    /// Standard deviation over units of the per-unit standard deviations.
    pub std_sd: f64,
}

impl Distribution {
    /// Describe `data` of `shape` through unit `unit`; None when the tensor has fewer units.
    pub fn of(data: &[f32], shape: &[usize], unit: usize) -> Option<Distribution> {
        let (means, vars) = unit_moments(data, shape);
        Distribution::with_moments(data, shape, unit, &means, &vars)
    }

    /// [`Distribution::of`] with the tensor's per-unit means and variances already known
    /// ([`unit_moments`]), when the caller needs them too.
    pub fn with_moments(
        data: &[f32],
        shape: &[usize],
        unit: usize,
        means: &[f64],
        vars: &[f64],
    ) -> Option<Distribution> {
        let (units, count, _) = layout(shape);
        if unit >= units || count == 0 {
            return None;
        }
        let mut values = Vec::with_capacity(count);
        unit_values(data, shape, unit, &mut values);
        values.sort_unstable_by(f32::total_cmp);
        let stds: Vec<f64> = vars.iter().map(|v| v.sqrt()).collect();
        let (mean_avg, means_sd) = mean_sd(means);
        let (std_avg, std_sd) = mean_sd(&stds);
        Some(Distribution {
            p15: quantile(&values, 0.15),
            p50: quantile(&values, 0.50),
            p85: quantile(&values, 0.85),
            mean_avg,
            mean_sd: means_sd,
            std_avg,
            std_sd,
        })
    }
}

/// The number of units (dimension 1) of a tensor of `shape`.
pub fn units(shape: &[usize]) -> usize {
    layout(shape).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_as_numpy_does() {
        // numpy.percentile([1, 2, 3, 4], [15, 50, 85]) = [1.45, 2.5, 3.55]
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((quantile(&x, 0.15) - 1.45).abs() < 1e-12);
        assert!((quantile(&x, 0.50) - 2.5).abs() < 1e-12);
        assert!((quantile(&x, 0.85) - 3.55).abs() < 1e-12);
        assert_eq!(quantile(&[7.0], 0.85), 7.0);
    }

    #[test]
    fn a_channel_gathers_its_values_over_batch_and_space() {
        // (2, 2, 1, 2): sample 0 = [[0, 1], [2, 3]], sample 1 = [[4, 5], [6, 7]]
        let data: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let mut v = vec![];
        unit_values(&data, &[2, 2, 1, 2], 1, &mut v);
        assert_eq!(v, [2.0, 3.0, 6.0, 7.0]);
        let (mean, var) = unit_moments(&data, &[2, 2, 1, 2]);
        assert_eq!(mean, [2.5, 4.5]);
        // values 0, 1, 4, 5 around 2.5: (6.25 + 2.25 + 2.25 + 6.25) / 4
        assert_eq!(var[0], 4.25);
    }

    #[test]
    fn a_unit_beyond_the_tensor_is_none() {
        assert!(Distribution::of(&[1.0, 2.0], &[1, 2], 2).is_none());
        assert!(Distribution::of(&[1.0, 2.0], &[1, 2], 1).is_some());
    }
}
