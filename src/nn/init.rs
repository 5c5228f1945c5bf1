//! PyTorch's default initialisation of Linear and Conv2d.

use crate::rng::Rng;
use crate::tensor::Tensor;

/// `kaiming_uniform_(w, a = sqrt(5))`, PyTorch's default for Linear and Conv2d weights (and,
/// with the same bound, their biases): U(-b, b) with
///   gain = sqrt(2 / (1 + a^2)) = sqrt(1/3),  b = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in),
/// where fan_in = in_features, or in_channels * kernel_h * kernel_w.
pub fn kaiming_uniform(shape: &[usize], fan_in: usize, rng: &mut Rng) -> crate::Result<Tensor> {
    let bound = if fan_in == 0 {
        0.0
    } else {
        1.0 / (fan_in as f32).sqrt()
    };
    let n = checked_numel(shape)?;
    let data = (0..n).map(|_| rng.uniform(-bound, bound)).collect();
    Ok(Tensor {
        shape: shape.to_vec(),
        data,
    })
}

/// Values per parameter tensor that bnlab will allocate (2^28, 1 GiB): a larger layer is a
/// mistake in its sizes (an input shape far larger than meant, say), not a model to build here.
pub const MAX_PARAM_VALUES: usize = 1 << 28;

/// The number of values of a parameter of this shape, or an error when it is absurdly large.
pub fn checked_numel(shape: &[usize]) -> crate::Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_PARAM_VALUES)
        .ok_or_else(|| {
            crate::Error::Shape(format!(
                "a parameter of shape {shape:?} would be larger than {MAX_PARAM_VALUES} values"
            ))
        })
}
