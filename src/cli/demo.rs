//! `bnlab demo`: the seed's first cells. A (10, 5) batch of uniform values through
//! BatchNorm1d(5): per-feature mean and standard deviation before and after, printed the way
//! PyTorch prints tensors, and why the standard deviation after is 1.054 rather than 1.

use super::args::DemoArgs;
use bnlab::internal::tensor_fmt::format_tensor;
use bnlab::nn::{BatchNorm, Forward};
use bnlab::{Graph, Result, Rng, Tensor};
use std::io::Write;

/// Per-column mean and sample standard deviation (n - 1, as torch.std) of an (n, c) tensor.
fn column_stats(t: &Tensor) -> (Tensor, Tensor) {
    let (n, c) = (t.shape[0], t.shape[1]);
    let mut mean = vec![0.0f64; c];
    for row in t.data.chunks_exact(c) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64 / n as f64;
        }
    }
    let mut var = vec![0.0f64; c];
    for row in t.data.chunks_exact(c) {
        for ((s, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v as f64 - m).powi(2) / (n - 1) as f64;
        }
    }
    let to_t = |v: Vec<f64>| Tensor {
        shape: vec![c],
        data: v.into_iter().map(|x| x as f32).collect(),
    };
    (to_t(mean), to_t(var.into_iter().map(f64::sqrt).collect()))
}

pub fn run(a: &DemoArgs, out: &mut dyn Write) -> Result<()> {
    let (n, c) = (10, 5);
    let mut rng = Rng::seed(a.seed);
    let data = (0..n * c).map(|_| rng.next_f32()).collect();
    let x = Tensor::new(&[n, c], data)?;
    let mut g = Graph::new(0);
    let mut bn = BatchNorm::d1(&mut g.params, c)?;
    let input = g.input(&x, false)?;
    let normed = bn.forward(&mut g, input)?;
    let b = g.tensor(normed);

    writeln!(out, "a = torch.rand(10, 5)    # 10 samples, 5 features")
        .map_err(super::stdout_err)?;
    writeln!(
        out,
        "bn = nn.BatchNorm1d(5)   # BatchNorm1d(features); BatchNorm2d(channels) for images"
    )
    .map_err(super::stdout_err)?;
    writeln!(out, "b = bn(a)\n").map_err(super::stdout_err)?;
    let (am, asd) = column_stats(&x);
    let (bm, bsd) = column_stats(&b);
    writeln!(out, "mean of a per feature: {}", format_tensor(&am)).map_err(super::stdout_err)?;
    writeln!(out, "std of a per feature:  {}\n", format_tensor(&asd)).map_err(super::stdout_err)?;
    writeln!(out, "mean of b per feature: {}", format_tensor(&bm)).map_err(super::stdout_err)?;
    writeln!(out, "std of b per feature:  {}\n", format_tensor(&bsd)).map_err(super::stdout_err)?;
    writeln!(out, "a\n{}\n", format_tensor(&x)).map_err(super::stdout_err)?;
    writeln!(out, "b\n{}\n", format_tensor(&b)).map_err(super::stdout_err)?;
    let ratio = (n as f64 / (n - 1) as f64).sqrt();
    writeln!(out, "Why 1.054 and not 1: BatchNorm divides by the biased standard deviation (dividing by n = {n}),").map_err(super::stdout_err)?;
    writeln!(
        out,
        "while torch.std reports the unbiased one (dividing by n - 1 = {}). So b's std is",
        n - 1
    )
    .map_err(super::stdout_err)?;
    writeln!(out, "sqrt(n / (n - 1)) = sqrt(10/9) = {ratio:.4} (a hair less, because eps = 1e-5 is added to the variance).\n").map_err(super::stdout_err)?;
    writeln!(
        out,
        "In training mode the layer also updated its running statistics (momentum 0.1):"
    )
    .map_err(super::stdout_err)?;
    writeln!(
        out,
        "running_mean = 0.9 * 0 + 0.1 * batch mean     = {}",
        format_tensor(&bn.running_mean)
    )
    .map_err(super::stdout_err)?;
    writeln!(
        out,
        "running_var  = 0.9 * 1 + 0.1 * unbiased var   = {}",
        format_tensor(&bn.running_var)
    )
    .map_err(super::stdout_err)?;
    writeln!(out, "num_batches_tracked = {}", bn.num_batches_tracked).map_err(super::stdout_err)?;
    Ok(())
}
