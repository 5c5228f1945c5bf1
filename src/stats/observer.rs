//! The statistics recorder as an observer of `fit`: it hooks the model on the steps it records
//! only. Here rather than in `train`, so that `stats` depends on `train` and not both ways.

use super::StatsRecorder;
use crate::graph::Graph;
use crate::nn::Module;
use crate::train::Observer;
use crate::Result;

/// The statistics recorder as an observer: hooks on stats steps only.
impl Observer for StatsRecorder {
    fn before_step(
        &mut self,
        g: &mut Graph,
        model: &dyn Module,
        step: u64,
        epoch: usize,
    ) -> Result<()> {
        self.begin_step(g, model, step, epoch).map(|_| ())
    }

    fn after_step(
        &mut self,
        g: &mut Graph,
        _model: &dyn Module,
        _step: u64,
        _epoch: usize,
    ) -> Result<()> {
        self.end_step(g)
    }
}
