//! PyTorch's default initialisation of Linear and Conv2d.

use crate::rng::Rng;
use crate::tensor::Tensor;

/// `kaiming_uniform_(w, a = sqrt(5))`, PyTorch's default for Linear and Conv2d weights (and,
/// with the same bound, their biases): U(-b, b) with
///   gain = sqrt(2 / (1 + a^2)) = sqrt(1/3),  b = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in),
/// where fan_in = in_features, or in_channels * kernel_h * kernel_w.
pub fn kaiming_uniform(shape: &[usize], fan_in: usize, rng: &mut Rng) -> Tensor {
    let bound = if fan_in == 0 {
        0.0
    } else {
        1.0 / (fan_in as f32).sqrt()
    };
    let n: usize = shape.iter().product();
    let data = (0..n).map(|_| rng.uniform(-bound, bound)).collect();
    Tensor {
        shape: shape.to_vec(),
        data,
    }
}
