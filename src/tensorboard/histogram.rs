//! A tensor's values as a TensorBoard histogram: min, max, count, sum, sum of squares and
//! [`BUCKETS`] equal-width buckets, in f64 so that the sums of a large f32 tensor keep their
//! digits.
//!
//! Equal-width buckets between min and max (as `torch.utils.tensorboard` makes them) rather
//! than TensorFlow's fixed exponential ones: a layer's weights span a small range, which fixed
//! buckets would put in a handful of bars.

use super::proto::HistogramProto;

/// How many buckets a histogram with distinct min and max gets.
pub const BUCKETS: usize = 30;

/// The histogram of the finite values in `values`.
///
/// NaN and ±inf are left out of everything: `num` counts the finite values only, so
/// `values.len() - num` of them were left out, and min, max, the sums and the buckets are over
/// the finite ones.
///
/// Bucket `i` counts the values in `(bucket_limit[i-1], bucket_limit[i]]` (the first starts at
/// `min`, inclusive), as TensorBoard reads them; the last limit is exactly `max`. Each value is
/// placed by comparing it with the limits written, so the file's buckets are exactly consistent
/// with its limits.
///
/// - All values equal (`min == max`): one bucket, `bucket_limit == [max]`, holding all of them.
/// - No finite value (empty, or all NaN/inf): `num == 0`, min, max and the sums 0, and one
///   bucket at 0 with count 0, as TensorBoard's own writer gives an empty tensor all-zero
///   buckets (TensorBoard 2.21 also reads a histogram with no bucket, but then has nothing to
///   draw for that step).
pub fn histogram(values: &[f32]) -> HistogramProto {
    let mut h = HistogramProto {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        ..HistogramProto::default()
    };
    let mut num = 0usize;
    for v in finite(values) {
        num += 1;
        h.min = h.min.min(v);
        h.max = h.max.max(v);
        h.sum += v;
        h.sum_squares += v * v;
    }
    h.num = num as f64;
    if num == 0 {
        h.min = 0.0;
        h.max = 0.0;
        h.bucket_limit = vec![0.0];
        h.bucket = vec![0.0];
    } else if h.min == h.max {
        h.bucket_limit = vec![h.max];
        h.bucket = vec![h.num];
    } else {
        let width = (h.max - h.min) / BUCKETS as f64;
        h.bucket_limit = (1..BUCKETS).map(|i| h.min + i as f64 * width).collect();
        // Exactly max, not min + 30 * width rounded: every value is then <= the last limit.
        h.bucket_limit.push(h.max);
        h.bucket = vec![0.0; BUCKETS];
        for v in finite(values) {
            // The first bucket whose right edge is >= v; v <= max keeps it in range.
            let i = h.bucket_limit.partition_point(|&limit| limit < v);
            h.bucket[i.min(BUCKETS - 1)] += 1.0;
        }
    }
    h
}

/// The finite values, widened to f64.
fn finite(values: &[f32]) -> impl Iterator<Item = f64> + '_ {
    values
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v))
}
