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
//! Hooks are keyed by the module's path, never by its address: a struct and its first field
//! share an address but not a path, and a model may move after its hooks are registered. The
//! outermost `call` of a forward is the model (path `""`); each `call` inside it is the
//! running module's nearest descendant at that address and of that type, its path read from
//! the model's children as the state dict reads them. So run the model itself through `call`
//! (`fit` and `evaluate` do), and the containers between it and a watched module too (as
//! `Sequential` and `Net` do). Two same-typed modules of size zero (ReLU, Flatten) that are
//! fields of one struct may share an address; they are told apart by the order they run in.

use super::{visit_modules, Module};
use crate::graph::{Graph, HookHandle, ModuleSite, Var};
use crate::{Error, Result};

/// Where a module is in memory now: what `call` recognises it by among its parent's
/// descendants (together with its type), never what a hook is keyed by.
fn address(m: &dyn Module) -> usize {
    m as *const dyn Module as *const () as usize
}

/// Every module of `model` with its address, type name and state-dict path.
fn sites(model: &dyn Module) -> Vec<ModuleSite> {
    let mut sites = Vec::new();
    visit_modules(model, "", &mut |path, m| {
        sites.push(ModuleSite {
            address: address(m),
            type_name: m.type_name().to_string(),
            path: path.to_string(),
        })
    });
    sites
}

/// Run `m` on `x` and report the call to the hooks of the module's path (no hook registered:
/// one check).
pub fn call(g: &mut Graph, m: &mut dyn Module, x: Var) -> Result<Var> {
    if g.hooks().is_empty() {
        return m.forward(g, x);
    }
    let path = g.hooks_mut().enter(address(m), m.type_name(), || sites(m));
    let y = m.forward(g, x);
    g.hooks_mut().leave();
    let y = y?;
    if let Some(path) = path {
        g.module_forward_done(&path, x, y);
    }
    Ok(y)
}

/// Whether a hook watches the running module's child `name` (a container's layer that must
/// then run on its own). True when the running module's path is unknown: running unfused
/// gives the same values.
pub(crate) fn child_watched(g: &Graph, name: &str) -> bool {
    let hooks = g.hooks();
    if hooks.is_empty() {
        return false;
    }
    match hooks.running_path() {
        Some("") => hooks.watches(name),
        Some(parent) => hooks.watches(&format!("{parent}.{name}")),
        None => true,
    }
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
    find(model, path)?;
    Ok(g.add_forward_hook(path, Box::new(f)))
}

/// Call `f(grad_output, shape)` with the gradient of the output of the module at `path` in
/// `model`, during every `backward` that reaches it.
pub fn register_backward_hook(
    g: &mut Graph,
    model: &dyn Module,
    path: &str,
    f: impl FnMut(&[f32], &[usize]) + 'static,
) -> Result<HookHandle> {
    find(model, path)?;
    Ok(g.add_backward_hook(path, Box::new(f)))
}
