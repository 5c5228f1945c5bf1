//! Hooks on modules, found by their state-dict path (`"b1.1"`, `""` for the model itself):
//! PyTorch's `register_forward_hook` and `register_full_backward_hook`, without changing the
//! model.
//!
//! A module's forward is reported to its hooks when it runs through [`call`]: `fit`,
//! `evaluate`, every `Sequential` and every `Net` run their modules that way, so every layer of
//! a preset (or of any container) can be watched. A hand-written model makes its own fields
//! watchable by running them with `call(g, &mut self.b1, x)` instead of `self.b1.forward(g, x)`.
//!
//! A watched layer inside a fusable run (Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d) runs
//! unfused, so that its own output exists to be seen; the values are the same either way.
//!
//! Modules are told apart by their address, so a model must not move between registering a
//! hook and running it (keep it in one place, as `fit` does). Two modules of size zero (ReLU,
//! Flatten) that are fields of one struct may share an address; in a `Sequential` they never do.

use super::Module;
use crate::graph::{Graph, HookHandle, Var};
use crate::{Error, Result};

/// A module's identity for the graph's hooks: its address.
pub fn module_key(m: &dyn Module) -> usize {
    m as *const dyn Module as *const () as usize
}

/// Run `m` on `x` and report the call to the graph's hooks (nothing to report: one check).
pub fn call(g: &mut Graph, m: &mut dyn Module, x: Var) -> Result<Var> {
    let y = m.forward(g, x)?;
    if !g.hooks().is_empty() {
        g.module_forward_done(module_key(m), x, y);
    }
    Ok(y)
}

/// The module at `path` in `model` (its children's names joined by dots; "" is the model).
pub fn find<'a>(model: &'a dyn Module, path: &str) -> Result<&'a dyn Module> {
    find_rest(model, path, path)
}

fn find_rest<'a>(model: &'a dyn Module, path: &str, rest: &str) -> Result<&'a dyn Module> {
    if rest.is_empty() {
        return Ok(model);
    }
    let (head, tail) = rest.split_once('.').unwrap_or((rest, ""));
    let mut children = model.children();
    let names: Vec<String> = children.iter().map(|(n, _)| n.clone()).collect();
    match children.iter().position(|(n, _)| n == head) {
        Some(i) => find_rest(children.swap_remove(i).1, path, tail),
        None => Err(Error::Invalid(format!(
            "no module at '{path}': no child '{head}' where the children are {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))),
    }
}

/// Call `f(graph, input, output)` after every forward of the module at `path` in `model`.
pub fn register_forward_hook(
    g: &mut Graph,
    model: &dyn Module,
    path: &str,
    f: impl FnMut(&Graph, Var, Var) + 'static,
) -> Result<HookHandle> {
    let key = module_key(find(model, path)?);
    Ok(g.add_forward_hook(key, Box::new(f)))
}

/// Call `f(grad_output, shape)` with the gradient of the output of the module at `path` in
/// `model`, during every `backward` that reaches it.
pub fn register_backward_hook(
    g: &mut Graph,
    model: &dyn Module,
    path: &str,
    f: impl FnMut(&[f32], &[usize]) + 'static,
) -> Result<HookHandle> {
    let key = module_key(find(model, path)?);
    Ok(g.add_backward_hook(key, Box::new(f)))
}
