//! Hooks: watch a module's input, output and output gradient during a step without changing
//! the model, as PyTorch's `register_forward_hook` and `register_full_backward_hook` do.
//!
//! The registry lives in the graph, keyed by the module's state-dict path (`"b1.1"`, `""` for
//! the model), so that a hook belongs to a place in the model and not to a memory address:
//! a struct and its first field (which share an address) have different paths, and a model
//! that moves keeps its hooks. A module's forward is reported by whoever runs it through
//! `nn::call` (every `Sequential` and `Net` does so for their children), which also keeps
//! [`Hooks`]'s trail of the modules running now, to learn each one's path; its output's
//! gradient is reported by `backward` when that gradient is complete, before it flows on.
//! With no hook registered this costs one `is_empty` check per module call and nothing in
//! `backward`.

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
    /// The module's state-dict path.
    module: String,
    kind: Kind,
}

/// A module of the model being run, as `nn::call` recognises it among its parent's
/// descendants: its address and type name now, and its state-dict path.
pub struct ModuleSite {
    /// Where the module is during this forward (read afresh at every forward).
    pub address: usize,
    /// Its `Module::type_name`, which tells a struct from its first field at the same address.
    pub type_name: String,
    /// Its state-dict path (`""` for the model).
    pub path: String,
}

/// A module running now (entered by `nn::call` and not yet left).
struct Frame {
    /// Its path, or `None` for a module that is not part of the model (made inside a forward).
    path: Option<String>,
    /// The sites already entered from this module's forward (to tell same-typed zero-size
    /// fields, which may share an address, apart by the order they run in).
    entered: Vec<usize>,
}

/// The hooks of a graph, and this step's outputs whose gradients are watched.
#[derive(Default)]
pub struct Hooks {
    entries: Vec<Entry>,
    next_id: usize,
    /// (slot of a watched output, hook id, the output's shape), for this step's backward.
    watched: Vec<(usize, usize, Vec<usize>)>,
    /// Every module of the model being run, read when its outermost `call` begins.
    sites: Vec<ModuleSite>,
    /// The modules running now, outermost first.
    trail: Vec<Frame>,
}

impl Hooks {
    /// Whether any hook is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the module at state-dict path `path` has a hook.
    pub fn watches(&self, path: &str) -> bool {
        self.entries.iter().any(|e| e.module == path)
    }

    fn add(&mut self, module: &str, kind: Kind) -> HookHandle {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push(Entry {
            id,
            module: module.to_string(),
            kind,
        });
        HookHandle(id)
    }

    /// Forget this step's watched outputs (at `Graph::reset`).
    pub(super) fn new_step(&mut self) {
        self.watched.clear();
        self.trail.clear();
    }

    /// The path of the module running now (`None` when none is, or it is not in the model).
    pub fn running_path(&self) -> Option<&str> {
        self.trail.last().and_then(|f| f.path.as_deref())
    }

    /// A module at `address` of type `type_name` begins its forward: find its path and make
    /// it the running module. With no module running it is the model itself (path `""`), and
    /// `sites` lists the model's modules. Otherwise it is the running module's nearest
    /// descendant at that address and of that type (the first not entered yet, when
    /// zero-size fields share an address); `None` when it is none of them. Each `enter` is
    /// followed by one [`Hooks::leave`].
    pub fn enter(
        &mut self,
        address: usize,
        type_name: &str,
        sites: impl FnOnce() -> Vec<ModuleSite>,
    ) -> Option<String> {
        let Some(parent) = self.trail.last_mut() else {
            self.sites = sites();
            self.trail.push(Frame {
                path: Some(String::new()),
                entered: Vec::new(),
            });
            return Some(String::new());
        };
        let found = parent.path.as_deref().and_then(|parent_path| {
            let below = |p: &str| {
                if parent_path.is_empty() {
                    !p.is_empty()
                } else {
                    p.strip_prefix(parent_path)
                        .is_some_and(|rest| rest.starts_with('.'))
                }
            };
            let depth = |i: usize| self.sites[i].path.matches('.').count();
            let candidates: Vec<usize> = (0..self.sites.len())
                .filter(|&i| {
                    let s = &self.sites[i];
                    s.address == address && s.type_name == type_name && below(&s.path)
                })
                .collect();
            let nearest = candidates.iter().map(|&i| depth(i)).min()?;
            let nearest: Vec<usize> = candidates
                .into_iter()
                .filter(|&i| depth(i) == nearest)
                .collect();
            nearest
                .iter()
                .copied()
                .find(|i| !parent.entered.contains(i))
                .or(nearest.first().copied())
        });
        if let Some(i) = found {
            parent.entered.push(i);
        }
        let path = found.map(|i| self.sites[i].path.clone());
        self.trail.push(Frame {
            path: path.clone(),
            entered: Vec::new(),
        });
        path
    }

    /// The module entered last ends its forward.
    pub fn leave(&mut self) {
        self.trail.pop();
    }
}

impl Graph {
    /// Register `f` to run after every forward of the module at state-dict path `module`. Use
    /// `nn::register_forward_hook`, which checks that the model has a module there.
    pub fn add_forward_hook(&mut self, module: &str, f: ForwardHook) -> HookHandle {
        self.hooks.add(module, Kind::Forward(f))
    }

    /// Register `f` to receive the gradient of the output of the module at state-dict path
    /// `module`. Use `nn::register_backward_hook`, which checks that the model has a module
    /// there.
    pub fn add_backward_hook(&mut self, module: &str, f: BackwardHook) -> HookHandle {
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

    /// The hooks registered on this graph, to keep the trail of running modules (`nn::call`).
    pub fn hooks_mut(&mut self) -> &mut Hooks {
        &mut self.hooks
    }

    /// Report that the module at state-dict path `module` computed `output` from `input`: runs
    /// its forward hooks, and watches `output`'s gradient for its backward hooks.
    pub fn module_forward_done(&mut self, module: &str, input: Var, output: Var) {
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
