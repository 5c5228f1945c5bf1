//! `fit` in fewer arguments: a model with what trains it, as one value.

use super::fit::{fit, FitOptions};
use super::history::History;
use crate::data::Dataset;
use crate::graph::Graph;
use crate::nn::Module;
use crate::optim::Optimizer;
use crate::Result;
use std::io::Write;

/// A model, its graph (which holds the parameters) and the optimizer that updates them: what
/// [`fit`] trains, in one value.
///
/// ```no_run
/// # use bnlab::{data, optim, presets, train, Result};
/// # fn main() -> Result<()> {
/// let (train_set, test_set) = (data::mnist(data::Split::Train)?, data::mnist(data::Split::Test)?);
/// let (mut g, mut rng) = train::seeded(0);
/// let mut model = presets::Preset::Bn.build(&mut g.params, 1, 28, &mut rng)?;
/// let mut adam = optim::Adam::new(bnlab::nn::parameters(&model), Default::default());
/// let options = train::FitOptions { epochs: 2, ..Default::default() };
/// let history = train::Learner::new(&mut model, &mut g, &mut adam).fit(&train_set, &test_set, &options)?;
/// # Ok(()) }
/// ```
pub struct Learner<'a> {
    /// The model trained.
    pub model: &'a mut dyn Module,
    /// Its graph: the parameters, and the tape of each step.
    pub graph: &'a mut Graph,
    /// The optimizer, made for the model's parameters.
    pub optimizer: &'a mut dyn Optimizer,
}

impl<'a> Learner<'a> {
    /// The three together.
    pub fn new(
        model: &'a mut dyn Module,
        graph: &'a mut Graph,
        optimizer: &'a mut dyn Optimizer,
    ) -> Learner<'a> {
        Learner {
            model,
            graph,
            optimizer,
        }
    }

    /// The course's `fit` (see [`fit`]): train on `train`, evaluate on `val` after each epoch,
    /// the epoch lines on standard output.
    pub fn fit(&mut self, train: &Dataset, val: &Dataset, options: &FitOptions) -> Result<History> {
        self.fit_to(train, val, options, &mut std::io::stdout())
    }

    /// [`Learner::fit`] with the epoch lines written to `out`.
    pub fn fit_to(
        &mut self,
        train: &Dataset,
        val: &Dataset,
        options: &FitOptions,
        out: &mut dyn Write,
    ) -> Result<History> {
        fit(
            self.model,
            self.graph,
            self.optimizer,
            train,
            val,
            options,
            out,
        )
    }
}
