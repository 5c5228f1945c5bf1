//! Watching a run from outside `fit`: called around every training step, after every epoch,
//! and whenever a checkpoint is about to be written. `--stats` and `--tensorboard` are
//! observers (the statistics recorder's implementation is in `stats`, which depends on `train`
//! and not the other way round); so is anything a library user wants to record.

use super::history::EpochRecord;
use crate::graph::Graph;
use crate::nn::Module;
use crate::Result;
use std::cell::RefCell;
use std::rc::Rc;

/// Called by `fit` at fixed points of a run. Every method does nothing by default. Steps are
/// counted over the whole run from 1 (a resumed run goes on counting), epochs from 1.
pub trait Observer {
    /// Before a training step's forward: hooks registered here see this step.
    fn before_step(
        &mut self,
        _g: &mut Graph,
        _model: &dyn Module,
        _step: u64,
        _epoch: usize,
    ) -> Result<()> {
        Ok(())
    }

    /// After a training step's backward and optimizer update.
    fn after_step(
        &mut self,
        _g: &mut Graph,
        _model: &dyn Module,
        _step: u64,
        _epoch: usize,
    ) -> Result<()> {
        Ok(())
    }

    /// After an epoch's evaluation, with its record.
    fn after_epoch(
        &mut self,
        _g: &Graph,
        _model: &dyn Module,
        _record: &EpochRecord,
    ) -> Result<()> {
        Ok(())
    }

    /// Before a checkpoint is written (after each epoch, and when interrupted): write out what
    /// has been recorded, so that a resumed run finds it.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A shared observer: `fit` drives it while the caller keeps a handle, to read what it
/// recorded after the run (`Rc::new(RefCell::new(recorder))`, one clone given to `fit`).
impl<O: Observer> Observer for Rc<RefCell<O>> {
    fn before_step(
        &mut self,
        g: &mut Graph,
        model: &dyn Module,
        step: u64,
        epoch: usize,
    ) -> Result<()> {
        self.borrow_mut().before_step(g, model, step, epoch)
    }

    fn after_step(
        &mut self,
        g: &mut Graph,
        model: &dyn Module,
        step: u64,
        epoch: usize,
    ) -> Result<()> {
        self.borrow_mut().after_step(g, model, step, epoch)
    }

    fn after_epoch(&mut self, g: &Graph, model: &dyn Module, record: &EpochRecord) -> Result<()> {
        self.borrow_mut().after_epoch(g, model, record)
    }

    fn flush(&mut self) -> Result<()> {
        self.borrow_mut().flush()
    }
}
