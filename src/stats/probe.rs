//! One unit's values at one layer over a whole evaluation: the BatchNorm paper's Figure 1(b, c)
//! reads the input of a sigmoid this way, over the 10,000 test images in eval mode.

use super::describe::{unit_values, units, UnitSums};
use crate::data::Dataset;
use crate::graph::Graph;
use crate::nn::{register_forward_hook, Module};
use crate::train::{evaluate, Mode};
use crate::{Error, Result};
use std::cell::RefCell;
use std::rc::Rc;

/// Evaluate `model` on `ds` (eval mode, as `evaluate` does) while a forward hook on the module
/// at `path` keeps unit `unit` of that module's input. Returns (loss, accuracy, the values),
/// the values in the order of the dataset.
pub fn eval_input_values(
    model: &mut dyn Module,
    g: &mut Graph,
    ds: &Dataset,
    batch_size: usize,
    mode: Mode,
    path: &str,
    unit: usize,
) -> Result<(f64, f64, Vec<f32>)> {
    // (values, the unit count of an input too small for `unit`)
    let seen: Rc<RefCell<(Vec<f32>, Option<usize>)>> = Rc::default();
    let sink = seen.clone();
    let handle = register_forward_hook(g, model, path, move |g, x, _| {
        let mut s = sink.borrow_mut();
        let shape = g.shape(x);
        if unit < units(shape) {
            unit_values(g.value(x), shape, unit, &mut s.0);
        } else {
            s.1 = Some(units(shape));
        }
    })?;
    let result = evaluate(model, g, ds, batch_size, mode);
    g.remove_hook(handle);
    let (loss, accuracy) = result?;
    let (values, too_few) = std::mem::take(&mut *seen.borrow_mut());
    if let Some(have) = too_few {
        return Err(Error::Invalid(format!(
            "unit {unit}: the input of {path} has {have} units"
        )));
    }
    Ok((loss, accuracy, values))
}

/// Per-unit mean and (biased) variance of the input of the module at `path` over all of `ds`,
/// in eval mode (as [`eval_input_values`] runs it): what eval mode feeds a BatchNorm, to set
/// against the running statistics it normalises with.
pub fn eval_input_moments(
    model: &mut dyn Module,
    g: &mut Graph,
    ds: &Dataset,
    batch_size: usize,
    path: &str,
) -> Result<(Vec<f64>, Vec<f64>)> {
    // per unit, accumulated over the batches in f64
    let seen: Rc<RefCell<UnitSums>> = Rc::default();
    let sink = seen.clone();
    let handle = register_forward_hook(g, model, path, move |g, x, _| {
        sink.borrow_mut().add(g.value(x), g.shape(x));
    })?;
    let result = evaluate(model, g, ds, batch_size, Mode::Multi);
    g.remove_hook(handle);
    result?;
    let (mean, var) = seen.borrow().moments();
    Ok((mean, var))
}
