//! Hooks: watch a module's input, output and output gradient during a step without changing
//! the model, as PyTorch's `register_forward_hook` and `register_full_backward_hook` do.
//!
//! The registry lives in the graph, keyed by the module's address (see `nn::hooks`, which
//! finds a module by its state-dict path and registers it here). A module's forward is
//! reported by whoever runs it through `nn::call` (every `Sequential` and `Net` does so for
//! their children); its output's gradient is reported by `backward` when that gradient is
//! complete, before it flows on. With no hook registered this costs one `is_empty` check per
//! module call and nothing in `backward`.

use super::{Graph, Var, VarKind};

/// Called after a module's forward with the graph, the module's input and its output.
pub type ForwardHook = Box<dyn FnMut(&Graph, Var, Var)>;

/// Called during `backward` with the gradient of a module's output and that output's shape.
pub type BackwardHook = Box<dyn FnMut(&[f32], &[usize])>;

/// A registered hook, to remove it with [`Graph::remove_hook`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookHandle(usize);

enum Kind {
    Forward(ForwardHook),
    Backward(BackwardHook),
}

struct Entry {
    id: usize,
    /// The module's address.
    module: usize,
    kind: Kind,
}

/// The hooks of a graph, and this step's outputs whose gradients are watched.
#[derive(Default)]
pub struct Hooks {
    entries: Vec<Entry>,
    next_id: usize,
    /// (slot of a watched output, hook id, the output's shape), for this step's backward.
    watched: Vec<(usize, usize, Vec<usize>)>,
}

impl Hooks {
    /// Whether any hook is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the module at `module` (its address) has a hook.
    pub fn watches(&self, module: usize) -> bool {
        self.entries.iter().any(|e| e.module == module)
    }

    fn add(&mut self, module: usize, kind: Kind) -> HookHandle {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push(Entry { id, module, kind });
        HookHandle(id)
    }

    /// Forget this step's watched outputs (at `Graph::reset`).
    pub(super) fn new_step(&mut self) {
        self.watched.clear();
    }
}

impl Graph {
    /// Register `f` to run after every forward of the module at address `module`. Use
    /// `nn::register_forward_hook`, which finds the module by its path.
    pub fn add_forward_hook(&mut self, module: usize, f: ForwardHook) -> HookHandle {
        self.hooks.add(module, Kind::Forward(f))
    }

    /// Register `f` to receive the gradient of the output of the module at address `module`.
    /// Use `nn::register_backward_hook`, which finds the module by its path.
    pub fn add_backward_hook(&mut self, module: usize, f: BackwardHook) -> HookHandle {
        self.hooks.add(module, Kind::Backward(f))
    }

    /// Remove a hook; false if it was removed already.
    pub fn remove_hook(&mut self, handle: HookHandle) -> bool {
        let before = self.hooks.entries.len();
        self.hooks.entries.retain(|e| e.id != handle.0);
        self.hooks.entries.len() < before
    }

    /// The hooks registered on this graph.
    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Report that the module at address `module` computed `output` from `input`: runs its
    /// forward hooks, and watches `output`'s gradient for its backward hooks.
    pub fn module_forward_done(&mut self, module: usize, input: Var, output: Var) {
        if !self.hooks.watches(module) {
            return;
        }
        // the hooks are taken out while they run, so that they can read the whole graph
        let mut entries = std::mem::take(&mut self.hooks.entries);
        for e in entries.iter_mut().filter(|e| e.module == module) {
            match &mut e.kind {
                Kind::Forward(f) => f(self, input, output),
                Kind::Backward(_) => {
                    if let (true, VarKind::Node(i)) = (self.grad_enabled, output.0) {
                        let node = &self.nodes[i];
                        if node.requires_grad {
                            let shape = node.shape.dims().to_vec();
                            self.hooks.watched.push((node.storage, e.id, shape));
                        }
                    }
                }
            }
        }
        // hooks registered by a hook while it ran are kept too
        entries.append(&mut self.hooks.entries);
        self.hooks.entries = entries;
    }

    /// During `backward`: the gradient in `slot` is complete; hand it to the hooks watching it.
    pub(super) fn gradient_done(&mut self, slot: usize, grad: &[f32]) {
        if self.hooks.watched.is_empty() {
            return;
        }
        let Hooks {
            entries, watched, ..
        } = &mut self.hooks;
        for (_, id, shape) in watched.iter().filter(|(s, _, _)| *s == slot) {
            if let Some(e) = entries.iter_mut().find(|e| e.id == *id) {
                if let Kind::Backward(f) = &mut e.kind {
                    f(grad, shape);
                }
            }
        }
    }
}
