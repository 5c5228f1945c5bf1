//! The define-by-run tape. A forward pass is plain Rust calling the graph's ops; each op computes
//! its value at once and records one node; `backward` walks the nodes in reverse and calls each
//! op's hand-written backward. Each op family has one file under `ops` with its forward, the
//! layout of what its node saves, and its backward; the arithmetic is in `crate::kernels`.
//!
//! Buffers are kept between steps: node i of this step reuses node i's buffers of the previous
//! step (a training step records the same ops in the same order), and the kernels' scratch is
//! the graph's (`Scratch`), so after the first step a training step allocates nothing of its
//! own (the GEMM crate allocates packing buffers). Call `reset` at the start of every step.

mod backward;
mod hooks;
mod ops;
mod params;

pub use hooks::{BackwardHook, ForwardHook, HookHandle, Hooks, ModuleSite};
pub use ops::{BnStats, ConvArgs};
pub use params::{ParamId, ParamStore};

use crate::kernels::{bn_relu_pool, sparse_linear};
use crate::precision::Precision;
use crate::rng::Rng;
use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};
use ops::{Op, SparseInput};

/// A value in the graph: a node recorded this step, or a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(VarKind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VarKind {
    Node(usize),
    Param(ParamId),
}

struct Node {
    op: Op,
    shape: Shape,
    /// The slot holding this node's value and gradient: its own, or the aliased node's.
    storage: usize,
    requires_grad: bool,
}

/// The buffers of one node, reused across steps.
#[derive(Default)]
pub(crate) struct Slot {
    value: Vec<f32>,
    grad: Vec<f32>,
    /// Whether `grad` holds this step's gradient (otherwise it is zeroed on first use).
    grad_live: bool,
    /// What the node's op keeps for its backward (a dropout mask, softmax probabilities,
    /// BatchNorm statistics, ...). Its layout belongs to the op's own file in `ops`, which
    /// alone reads and writes it, through named pieces.
    saved: Vec<f32>,
    /// Indices the op keeps for its backward (argmaxes, class targets), likewise.
    saved_idx: Vec<u32>,
    /// A sparse input's CSR and CSC forms, and a sparse Linear's transposed weight.
    sparse: SparseInput,
}

/// Scratch the kernels work in, owned by the graph and reused from op to op and step to step,
/// so that a step allocates nothing. Nothing in it outlives the call that uses it: every user
/// overwrites what it reads. (Kernels that run parallel tasks cut it into one piece per task.)
#[derive(Default)]
pub(crate) struct Scratch {
    /// A convolution's backward: each chunk of samples' weight and bias gradient partials.
    conv_partials: Vec<f32>,
    /// A convolution's per-chunk column matrices (and, backward, their gradients and one
    /// sample's output gradient).
    conv: Vec<f32>,
    /// A BatchNorm backward's per-channel sums and coefficients (and the fused ops'
    /// per-plane sums).
    bn: Vec<f32>,
    /// The fused BatchNorm -> ReLU -> MaxPool kernels' per-group scratch.
    pool: bn_relu_pool::Scratch,
    /// The sparse Linear weight-gradient kernels' per-task scratch.
    sparse: sparse_linear::Scratch,
}

/// The tape of one training or evaluation step, and the parameters it reads: ops record nodes
/// (see the module docs), [`Graph::backward`] fills the gradients, [`Graph::reset`] starts the
/// next step with the buffers kept.
pub struct Graph {
    /// The parameters of the models built on this graph.
    pub params: ParamStore,
    nodes: Vec<Node>,
    slots: Vec<Slot>,
    /// The generator for dropout masks.
    pub rng: Rng,
    grad_enabled: bool,
    /// Scratch for the kernels, reused from step to step.
    scratch: Scratch,
    /// Forward and backward hooks on modules (none: nothing to do).
    hooks: Hooks,
    /// Whether the last model input a Linear read took the sparse kernels (the decision is
    /// the Linear op's, `ops::linear`); kept across `reset`, for [`Graph::wants_input_nonzeros`].
    input_went_sparse: bool,
    /// Whether a Linear read a model input since `reset` (a step in which none did forgets
    /// `input_went_sparse`: the model reading this graph's inputs has changed).
    input_read: bool,
    /// How the Linear and convolution products compute (see [`Graph::set_precision`]).
    precision: Precision,
}

/// Read-only access to every value recorded before a given node, and to the parameters.
struct Values<'a> {
    nodes: &'a [Node],
    slots: &'a [Slot],
    params: &'a ParamStore,
}

impl<'a> Values<'a> {
    fn get(&self, v: Var) -> &'a [f32] {
        match v.0 {
            VarKind::Node(i) => &self.slots[self.nodes[i].storage].value,
            VarKind::Param(p) => self.params.value(p),
        }
    }
    fn opt(&self, v: Option<Var>) -> Option<&'a [f32]> {
        v.map(|v| self.get(v))
    }
}

/// Resize a reused buffer without touching its contents when the length is unchanged
/// (the kernels overwrite it fully).
fn fit_len<T: Copy + Default>(buf: &mut Vec<T>, len: usize) {
    if buf.len() != len {
        buf.clear();
        buf.resize(len, T::default());
    }
}

/// A gradient taken with `take_grad_to_overwrite`, as a kernel's output: the buffer and whether
/// to add to it (`true`), or overwrite it (`false`: a gradient not started this step).
fn grad_out(taken: &mut Option<(Vec<f32>, bool)>) -> Option<(&mut [f32], bool)> {
    taken.as_mut().map(|(grad, fresh)| (&mut grad[..], !*fresh))
}

/// The first `len` values of a scratch buffer, grown if it is shorter (its contents are left
/// as they are: the user overwrites what it reads).
fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

impl Graph {
    /// An empty graph; `seed` seeds the dropout generator.
    pub fn new(seed: u64) -> Graph {
        Graph {
            params: ParamStore::new(),
            nodes: Vec::new(),
            slots: Vec::new(),
            rng: Rng::seed(seed),
            grad_enabled: true,
            scratch: Scratch::default(),
            hooks: Hooks::default(),
            input_went_sparse: false,
            input_read: false,
            precision: Precision::F32,
        }
    }

    /// How the matrix products of Linear layers and convolutions compute from the next op on,
    /// forward and backward (a node keeps the precision it was recorded with): float32 (the
    /// default), or bfloat16 operands with float32 sums, PyTorch's autocast split (see
    /// [`crate::precision`]). bfloat16 on a CPU without a bfloat16 kernel (AVX512-BF16 or AMX)
    /// is refused with one line saying what the CPU lacks, and the precision is left as it was.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        if precision == Precision::Bf16 {
            crate::internal::bf16::kernel()
                .map_err(|why| Error::Invalid(format!("precision bf16: {why}")))?;
        }
        self.precision = precision;
        Ok(())
    }

    /// How the matrix products compute (see [`Graph::set_precision`]).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Forget this step's nodes (their buffers stay for the next step).
    pub fn reset(&mut self) {
        if !self.nodes.is_empty() && !self.input_read {
            self.input_went_sparse = false;
        }
        self.input_read = false;
        self.nodes.clear();
        self.hooks.new_step();
    }

    /// With gradients disabled (PyTorch's `no_grad`), nodes record nothing for a backward.
    pub fn set_grad_enabled(&mut self, enabled: bool) {
        self.grad_enabled = enabled;
    }

    /// Whether new nodes record what a backward needs (see [`Graph::set_grad_enabled`]).
    pub fn grad_enabled(&self) -> bool {
        self.grad_enabled
    }

    /// A parameter as a value in the graph.
    pub fn param(&self, id: ParamId) -> Var {
        Var(VarKind::Param(id))
    }

    /// An input that needs no gradient, filled by `fill` straight into the graph's buffer.
    pub fn input_with(&mut self, shape: &[usize], fill: impl FnOnce(&mut [f32])) -> Result<Var> {
        let i = self.push(Op::Leaf, Shape::new(shape)?, false);
        fill(&mut self.slots[i].value);
        Ok(Var(VarKind::Node(i)))
    }

    /// An input that needs no gradient, filled by `fill` with its dense values and, in CSR form
    /// over rows of `shape[1..]`, its nonzeros: a Linear that reads this input and finds it
    /// sparse enough (see [`Graph::wants_input_nonzeros`]) uses them instead of scanning.
    pub fn input_with_csr(
        &mut self,
        shape: &[usize],
        fill: impl FnOnce(&mut [f32], &mut crate::kernels::sparse_linear::Compressed),
    ) -> Result<Var> {
        let i = self.push(Op::Leaf, Shape::new(shape)?, false);
        let slot = &mut self.slots[i];
        fill(&mut slot.value, &mut slot.sparse.csr);
        slot.sparse.csr_width = shape[1..].iter().product();
        Ok(Var(VarKind::Node(i)))
    }

    /// Whether the last model input that a Linear read was mostly zeros, so that the Linear
    /// took the sparse kernels (the one place that decides is `Graph::linear`, on each
    /// batch's own density). A loop that can gather the next batch's nonzeros cheaply (a
    /// dataset's index of them) hands them over with [`Graph::input_with_csr`] when this says
    /// so; otherwise the Linear finds them itself. False for a new graph, after an input the
    /// Linear took dense, and after a step in which no Linear read the input (a CNN's).
    pub fn wants_input_nonzeros(&self) -> bool {
        self.input_went_sparse
    }

    /// An input copied from a tensor; `requires_grad` asks for its gradient in `grad`.
    pub fn input(&mut self, t: &Tensor, requires_grad: bool) -> Result<Var> {
        let i = self.push(Op::Leaf, Shape::new(&t.shape)?, requires_grad);
        self.slots[i].value.copy_from_slice(&t.data);
        Ok(Var(VarKind::Node(i)))
    }

    /// The values of a node or parameter, row-major in its shape (a parameter as its layer
    /// stores it).
    pub fn value(&self, v: Var) -> &[f32] {
        self.values_all().get(v)
    }

    /// The shape of a node or parameter (a parameter's as its layer stores it).
    pub fn shape(&self, v: Var) -> &[usize] {
        match v.0 {
            VarKind::Node(i) => self.nodes[i].shape.dims(),
            VarKind::Param(p) => self.params.shape(p),
        }
    }

    fn shape_inline(&self, v: Var) -> Shape {
        match v.0 {
            VarKind::Node(i) => self.nodes[i].shape,
            VarKind::Param(p) => self.params.shape_inline(p),
        }
    }

    /// A copy of a value with its shape.
    pub fn tensor(&self, v: Var) -> Tensor {
        Tensor {
            shape: self.shape(v).to_vec(),
            data: self.value(v).to_vec(),
        }
    }

    /// The gradient of a node after `backward` (None if it needs none or received none).
    pub fn grad(&self, v: Var) -> Option<&[f32]> {
        match v.0 {
            VarKind::Node(i) => {
                let slot = &self.slots[self.nodes[i].storage];
                (self.nodes[i].requires_grad && slot.grad_live).then(|| &slot.grad[..])
            }
            VarKind::Param(p) => self.params.grad(p),
        }
    }

    /// The number of nodes recorded since `reset`.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node has been recorded since `reset`.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn requires_grad(&self, v: Var) -> bool {
        match v.0 {
            VarKind::Node(i) => self.nodes[i].requires_grad,
            VarKind::Param(_) => self.grad_enabled,
        }
    }

    fn values_all(&self) -> Values<'_> {
        Values {
            nodes: &self.nodes,
            slots: &self.slots,
            params: &self.params,
        }
    }

    /// Record a node and size its value buffer; returns its index.
    fn push(&mut self, op: Op, shape: Shape, requires_grad: bool) -> usize {
        let i = self.nodes.len();
        if self.slots.len() <= i {
            self.slots.push(Slot::default());
        }
        let slot = &mut self.slots[i];
        fit_len(&mut slot.value, shape.numel());
        slot.grad_live = false;
        slot.sparse.new_step();
        self.nodes.push(Node {
            op,
            shape,
            storage: i,
            requires_grad: requires_grad && self.grad_enabled,
        });
        i
    }

    /// The values before node `i`, and node `i`'s own slot to write.
    fn split(&mut self, i: usize) -> (Values<'_>, &mut Slot) {
        let (before, rest) = self.slots.split_at_mut(i);
        (
            Values {
                nodes: &self.nodes,
                slots: before,
                params: &self.params,
            },
            &mut rest[0],
        )
    }

    /// Like `split`, with the graph's scratch too.
    fn split_scratch(&mut self, i: usize) -> (Values<'_>, &mut Slot, &mut Scratch) {
        let (before, rest) = self.slots.split_at_mut(i);
        (
            Values {
                nodes: &self.nodes,
                slots: before,
                params: &self.params,
            },
            &mut rest[0],
            &mut self.scratch,
        )
    }

    /// Every value recorded, and the graph's scratch (for a backward kernel).
    fn values_and_scratch(&mut self) -> (Values<'_>, &mut Scratch) {
        (
            Values {
                nodes: &self.nodes,
                slots: &self.slots,
                params: &self.params,
            },
            &mut self.scratch,
        )
    }

    fn node_var(i: usize) -> Var {
        Var(VarKind::Node(i))
    }

    fn expect_scalar(&self, v: Var, what: &str) -> Result<usize> {
        match v.0 {
            VarKind::Node(i) if self.nodes[i].shape.numel() == 1 => Ok(i),
            _ => Err(Error::Shape(format!(
                "{what} needs a scalar, got shape {:?}",
                self.shape(v)
            ))),
        }
    }
}
