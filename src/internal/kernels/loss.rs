//! Losses, each the mean over the batch: cross entropy (log-softmax + NLL), binary cross entropy
//! with logits, and mean squared error. Every forward returns the scalar loss and keeps what its
//! backward needs; every backward scales by the upstream gradient of the scalar, `dloss`.

/// Cross entropy. logits: (N, C), target: (N) class indices; probs: (N, C) receives softmax.
/// `loss = 1/N sum_n ( logsumexp(logits[n]) - logits[n, target[n]] )`
/// Accumulated in f64: the loss is one number, and its rounding is PyTorch's to within 1e-7.
pub fn cross_entropy_forward(probs: &mut [f32], logits: &[f32], target: &[u32], c: usize) -> f32 {
    let n = target.len();
    let mut total = 0.0f64;
    for ((p, z), &t) in probs
        .chunks_exact_mut(c)
        .zip(logits.chunks_exact(c))
        .zip(target)
    {
        let max = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0.0f32;
        for (p, &z) in p.iter_mut().zip(z) {
            *p = (z - max).exp();
            sum += *p;
        }
        p.iter_mut().for_each(|p| *p /= sum);
        // -log_softmax[t] = ln(sum) - (z[t] - max): subtracting before adding keeps the
        // precision of large logits (as PyTorch's log_softmax does)
        total += (sum.ln() - (z[t as usize] - max)) as f64;
    }
    (total / n as f64) as f32
}

/// `d loss / d logits[n, k] = (softmax[n, k] - [k = target[n]]) / N`. dlogits += dloss * that.
pub fn cross_entropy_backward(
    dlogits: &mut [f32],
    probs: &[f32],
    target: &[u32],
    c: usize,
    dloss: f32,
) {
    let scale = dloss / target.len() as f32;
    for ((g, p), &t) in dlogits
        .chunks_exact_mut(c)
        .zip(probs.chunks_exact(c))
        .zip(target)
    {
        for (k, (g, &p)) in g.iter_mut().zip(p).enumerate() {
            let onehot = if k == t as usize { 1.0 } else { 0.0 };
            *g += (p - onehot) * scale;
        }
    }
}

/// Binary cross entropy on logits x against targets t in [0, 1], stable for large |x|:
/// loss = 1/N sum ( max(x, 0) - x t + log(1 + exp(-|x|)) )
pub fn bce_with_logits_forward(x: &[f32], t: &[f32]) -> f32 {
    let total: f64 = x
        .iter()
        .zip(t)
        .map(|(&x, &t)| (x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()) as f64)
        .sum();
    (total / x.len() as f64) as f32
}

/// d loss / dx = (sigmoid(x) - t) / N. dx += dloss * that.
pub fn bce_with_logits_backward(dx: &mut [f32], x: &[f32], t: &[f32], dloss: f32) {
    let scale = dloss / x.len() as f32;
    for ((g, &x), &t) in dx.iter_mut().zip(x).zip(t) {
        let sigmoid = 1.0 / (1.0 + (-x).exp());
        *g += (sigmoid - t) * scale;
    }
}

/// loss = 1/N sum (x - t)^2
pub fn mse_forward(x: &[f32], t: &[f32]) -> f32 {
    let total: f64 = x
        .iter()
        .zip(t)
        .map(|(&x, &t)| ((x - t) * (x - t)) as f64)
        .sum();
    (total / x.len() as f64) as f32
}

/// d loss / dx = 2 (x - t) / N. dx += dloss * that.
pub fn mse_backward(dx: &mut [f32], x: &[f32], t: &[f32], dloss: f32) {
    let scale = 2.0 * dloss / x.len() as f32;
    for ((g, &x), &t) in dx.iter_mut().zip(x).zip(t) {
        *g += (x - t) * scale;
    }
}
