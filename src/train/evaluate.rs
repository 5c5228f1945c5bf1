//! One batch through a model with its loss, and the course's evaluation of a whole set.

use crate::data::augment::Augmentation;
use crate::data::{gather_batch, Dataset};
use crate::graph::{Graph, Var};
use crate::nn::{set_training, Module};
use crate::rng::Rng;
use crate::{Error, Result};

/// What the model predicts: one of several classes (cross entropy on logits, argmax), or a
/// binary label (binary cross entropy on one logit per sample, probability threshold 0.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Classes 0..C: the model outputs (N, C) logits, trained with cross entropy, and the
    /// prediction is the argmax.
    Multi,
    /// Labels 0 or 1: the model outputs one logit per sample, trained with binary cross entropy
    /// on logits, and the prediction is 1 where the logit is above 0 (probability above 0.5).
    Binary,
}

/// Buffers reused from batch to batch, so that a step allocates nothing.
#[derive(Default)]
pub struct StepBuffers {
    /// The epoch's order of training examples (indices into the dataset), drawn by the loader.
    pub order: Vec<u32>,
    /// The training batches' augmentation and the generator it draws from (`fit` sets it for
    /// its training steps; an evaluation's buffers never have one).
    pub augment: Option<(Augmentation, Rng)>,
    labels: Vec<u32>,
    targets: Vec<f32>,
}

/// Gather a batch into the graph, run the model and its loss. Returns the loss node and the
/// number of correct predictions.
pub fn run_batch(
    model: &mut dyn Module,
    g: &mut Graph,
    ds: &Dataset,
    indices: &[u32],
    mode: Mode,
    bufs: &mut StepBuffers,
) -> Result<(Var, usize)> {
    g.reset();
    let n = indices.len();
    bufs.labels.resize(n, 0);
    let shape = ds.batch_shape(n);
    let mut gathered = Ok(());
    let augment = bufs.augment.as_mut().filter(|_| !ds.is_tabular());
    let x = if let Some((augmentation, rng)) = augment {
        // the gathered images transformed: their nonzeros are no longer the dataset's index
        // of them, so the Linear that reads the batch looks for its own (`Graph::linear`)
        let item = [ds.channels, ds.height, ds.width];
        let labels = &mut bufs.labels;
        g.input_with(&shape, |buf| {
            gathered = gather_batch(ds, indices, buf, labels);
            augmentation.apply_batch(buf, item, rng);
        })?
    } else if g.wants_input_nonzeros() && ds.indexes_nonzeros() {
        // Whether a batch is sparse is the Linear's decision that reads it (`Graph::linear`,
        // on the batch's density). When it took the last batch sparse, this one comes with its
        // nonzeros, gathered from the dataset's index of them (a cheap copy beside the dense
        // gather) instead of scanned for by the Linear.
        g.input_with_csr(&shape, |buf, csr| {
            let labels = &mut bufs.labels;
            gathered = rayon::join(
                || gather_batch(ds, indices, buf, labels),
                || ds.nonzeros().gather(indices, csr),
            )
            .0;
        })?
    } else {
        g.input_with(&shape, |buf| {
            gathered = gather_batch(ds, indices, buf, &mut bufs.labels);
        })?
    };
    gathered?;
    // through `call`, so that a hook on the model itself sees the batch
    let out = crate::nn::call(g, model, x)?;
    match mode {
        Mode::Multi => {
            let loss = g.cross_entropy(out, &bufs.labels)?;
            let classes = g.shape(out)[1];
            let correct = g
                .value(out)
                .chunks_exact(classes)
                .zip(&bufs.labels)
                .filter(|(row, &y)| argmax(row) == y as usize)
                .count();
            Ok((loss, correct))
        }
        Mode::Binary => {
            if g.value(out).len() != n {
                return Err(Error::Shape(format!(
                    "binary mode needs one output per sample, the model gives {:?}",
                    g.shape(out)
                )));
            }
            if let Some(&bad) = bufs.labels.iter().find(|&&y| y > 1) {
                return Err(Error::Invalid(format!(
                    "binary mode needs labels 0 or 1, found {bad}"
                )));
            }
            bufs.targets.clear();
            bufs.targets.extend(bufs.labels.iter().map(|&y| y as f32));
            let loss = g.bce_with_logits(out, &bufs.targets)?;
            // sigmoid(z) > 0.5  <=>  z > 0
            let correct = g
                .value(out)
                .iter()
                .zip(&bufs.labels)
                .filter(|(&z, &y)| (z > 0.0) == (y == 1))
                .count();
            Ok((loss, correct))
        }
    }
}

/// The first index of the largest value (torch.argmax's choice on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// How an evaluation averages its loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LossMean {
    /// The mean of the per-batch mean losses: the course's rule (and `fit`'s). A smaller last
    /// batch weighs as much as a full one, so the value depends a little on the batch size.
    #[default]
    Batch,
    /// The mean over every example: each batch's mean weighted by its size, the same at any
    /// batch size (up to rounding).
    Example,
}

/// The course's evaluation in eval mode without gradients: loss = the mean of the per-batch
/// losses, accuracy = correct / dataset size. Batches in order.
pub fn evaluate(
    model: &mut dyn Module,
    g: &mut Graph,
    ds: &Dataset,
    batch_size: usize,
    mode: Mode,
) -> Result<(f64, f64)> {
    evaluate_with(model, g, ds, batch_size, mode, LossMean::Batch)
}

/// [`evaluate`] with the loss averaged as `mean` says.
pub fn evaluate_with(
    model: &mut dyn Module,
    g: &mut Graph,
    ds: &Dataset,
    batch_size: usize,
    mode: Mode,
    mean: LossMean,
) -> Result<(f64, f64)> {
    if ds.is_empty() {
        return Err(Error::Invalid("cannot evaluate on an empty dataset".into()));
    }
    set_training(model, false);
    g.set_grad_enabled(false);
    let mut bufs = StepBuffers::default();
    let order: Vec<u32> = (0..ds.len as u32).collect();
    let (mut loss_sum, mut correct, mut batches) = (0.0f64, 0usize, 0usize);
    let run = crate::runtime::with_workers_awake(|| {
        for chunk in order.chunks(batch_size.max(1)) {
            let (loss, c) = run_batch(model, g, ds, chunk, mode, &mut bufs)?;
            match mean {
                LossMean::Batch => loss_sum += g.value(loss)[0] as f64,
                LossMean::Example => loss_sum += g.value(loss)[0] as f64 * chunk.len() as f64,
            }
            correct += c;
            batches += 1;
        }
        Ok::<(), Error>(())
    });
    g.set_grad_enabled(true);
    run?;
    let count = match mean {
        LossMean::Batch => batches,
        LossMean::Example => ds.len,
    };
    Ok((loss_sum / count as f64, correct as f64 / ds.len as f64))
}
