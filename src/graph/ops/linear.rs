//! Linear: y = x W^T + b, dense (GEMM) or, for a mostly-zero model input, sparse (the input's
//! nonzeros in CSR form forward, CSC form backward); its forward, what it keeps, its backward.

use super::{shape_err, Op};
use crate::graph::{fit_len, grad_out, Graph, ParamId, Var, VarKind};
use crate::internal::bf16;
use crate::kernels::linear;
use crate::kernels::sparse_linear::{self, Compressed};
use crate::precision::Precision;
use crate::tensor::Shape;
use crate::Result;

/// Below this fraction of nonzeros an input takes the sparse Linear kernels. Measured on the
/// seed's first layer: the sparse kernels win up to about half nonzeros.
const SPARSE_DENSITY: f64 = 0.5;

/// A Linear node's inputs.
#[derive(Clone, Copy, Debug)]
pub(in crate::graph) struct Linear {
    x: Var,
    w: Var,
    b: Option<Var>,
    /// x needs no gradient and is mostly zeros, so the kernels work on its nonzeros, in the
    /// `SparseInput` of the slot given (the input's own, or this node's).
    sparse: Option<usize>,
    /// w is given as W^T (I, O) (`Graph::linear_wt`).
    transposed: bool,
    /// The dense products' precision, forward and backward (the sparse kernels are float32;
    /// see `Graph::dense_bf16_beats_sparse` for when a sparse input goes dense under bf16).
    precision: Precision,
}

/// What the sparse Linear kernels keep in a slot: a sparse input's forms, in the input's slot
/// (filled with the input) or the Linear node's (made by its forward), and in the node's slot
/// the weight transposed.
#[derive(Default)]
pub(in crate::graph) struct SparseInput {
    /// The input by rows (forward).
    pub csr: Compressed,
    /// The row length `csr` describes (0: `csr` is not this step's).
    pub csr_width: usize,
    /// The input by columns (backward), in the Linear node's slot.
    csc: Compressed,
    /// Whether `csc` was built for this step (by the forward, for the backward).
    csc_ready: bool,
    /// W^T (I, O), when the weight is stored as W (O, I).
    wt: Vec<f32>,
    /// Which parameter, at which version, `wt` holds transposed, so that eval batches with
    /// unchanged weights skip the transpose.
    wt_of: Option<(ParamId, u64)>,
    /// A wide layer's W^T by bands of columns, for the forward (`sparse_linear::forward`).
    bands: Vec<f32>,
    /// Which parameter, at which version, `bands` holds, so that eval batches with unchanged
    /// weights skip the copy.
    bands_of: Option<(ParamId, u64)>,
}

/// Whether data derived from a weight and kept as `held` is that of `key` (a parameter at a
/// version); what is derived from a weight that is not a parameter (`None`) is never kept.
fn holds(held: Option<(ParamId, u64)>, key: Option<(ParamId, u64)>) -> bool {
    key.is_some() && held == key
}

impl SparseInput {
    /// A new step: the forms made last step are stale (`wt` is checked by version).
    pub(in crate::graph) fn new_step(&mut self) {
        self.csr_width = 0;
        self.csc_ready = false;
    }
}

impl Graph {
    /// y = x W^T + b. x: (\*, I), w: (O, I), b: (O); y: (\*, O).
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Result<Var> {
        self.linear_op(x, w, b, false)
    }

    /// y = x W^T + b with the weight given as W^T: x: (\*, I), wt: (I, O), b: (O); y: (\*, O).
    /// The same values as [`Graph::linear`] with W; for a layer that stores W^T (a Linear
    /// reading a sparse input, whose kernels read rows of W^T).
    pub fn linear_wt(&mut self, x: Var, wt: Var, b: Option<Var>) -> Result<Var> {
        self.linear_op(x, wt, b, true)
    }

    /// [`Graph::linear`], or with `transposed` [`Graph::linear_wt`].
    fn linear_op(&mut self, x: Var, w: Var, b: Option<Var>, transposed: bool) -> Result<Var> {
        let (xs, mut ws) = (self.shape_inline(x), self.shape_inline(w));
        if transposed {
            // W^T (I, O): checked below as the W (O, I) it stands for
            let d = ws.dims();
            if d.len() != 2 {
                return shape_err(format!("linear_wt: weight {d:?} must be W^T (I, O)"));
            }
            ws = Shape::new(&[d[1], d[0]])?;
        }
        let (xd, wd) = (xs.dims(), ws.dims());
        if wd.len() != 2 || xd.is_empty() || xd[xd.len() - 1] != wd[1] {
            return shape_err(format!(
                "linear: input {xd:?} does not fit weight {wd:?} (the input's last dimension must be {})",
                wd.get(1).copied().unwrap_or(0)
            ));
        }
        let (o, i) = (wd[0], wd[1]);
        if let Some(b) = b {
            if self.shape(b) != [o] {
                return shape_err(format!("linear: bias {:?} must be [{o}]", self.shape(b)));
            }
        }
        let n = xs.numel() / i.max(1);
        let mut out = xd.to_vec();
        *out.last_mut().unwrap() = o;
        let rg = self.requires_grad(x)
            || self.requires_grad(w)
            || b.is_some_and(|b| self.requires_grad(b));
        let sparse = self.sparse_source(x, n, i, o);
        let op = Linear {
            x,
            w,
            b,
            sparse,
            transposed,
            precision: self.precision,
        };
        let k = self.push(Op::Linear(op), Shape::new(&out)?, rg);
        let needs_dw = self.grad_enabled() && self.requires_grad(w);
        let (v, slot) = self.split(k);
        let Some(src) = sparse else {
            let (xv, wv, bv) = (v.get(x), v.get(w), v.opt(b));
            let p = op.precision;
            linear::forward(p, &mut slot.value, xv, wv, transposed, bv, n, i, o);
            return Ok(Graph::node_var(k));
        };
        let own = &mut slot.sparse;
        if src == k {
            sparse_linear::to_csr(v.get(x), i, &mut own.csr);
            own.csr_width = i;
        }
        // the forward reads rows of W^T: the stored weight itself, or a transposed copy kept
        // until the weight changes
        let key = match w.0 {
            VarKind::Param(p) => Some((p, v.params.version(p))),
            VarKind::Node(_) => None,
        };
        if !transposed && (!holds(own.wt_of, key) || own.wt.len() != o * i) {
            fit_len(&mut own.wt, o * i);
            sparse_linear::transpose(&mut own.wt, v.get(w), o, i);
            own.wt_of = key;
        }
        if sparse_linear::banded(n, o) && !holds(own.bands_of, key) {
            let wt = if transposed { v.get(w) } else { &own.wt[..] };
            sparse_linear::to_bands(wt, o, &mut own.bands);
            own.bands_of = key;
        }
        let SparseInput {
            csr,
            csc,
            wt,
            bands,
            ..
        } = own;
        let csr = if src == k {
            &*csr
        } else {
            &v.slots[src].sparse.csr
        };
        let wt = if transposed { v.get(w) } else { &wt[..] };
        let (value, bv) = (&mut slot.value, v.opt(b));
        // The weight gradient will need x by columns: that form is built here, beside the
        // forward's parallel rows, instead of alone at the start of the backward.
        if needs_dw {
            rayon::join(
                || sparse_linear::forward(value, csr, (wt, bands), bv, o),
                || sparse_linear::csr_to_csc(csr, i, csc),
            );
        } else {
            sparse_linear::forward(value, csr, (wt, bands), bv, o);
        }
        slot.sparse.csc_ready = needs_dw;
        Ok(Graph::node_var(k))
    }

    /// The slot whose CSR form of x a Linear with n rows of i inputs takes the sparse kernels
    /// with: x's own (given with it), or `Some(the new node's)` to make one; None for the
    /// dense kernels. This is the one place that decides whether an input is sparse: on each
    /// batch's own density, whoever built the model and whatever fed the batch.
    fn sparse_source(&mut self, x: Var, n: usize, i: usize, o: usize) -> Option<usize> {
        // only model inputs (leaves needing no gradient, or views of them such as a flatten):
        // intermediate values (a ReLU's output in eval mode, say) are rarely sparse enough for
        // the sparse kernels to beat the GEMM
        let VarKind::Node(j) = x.0 else { return None };
        let src = self.nodes[j].storage;
        if self.requires_grad(x) || !matches!(self.nodes[src].op, Op::Leaf) {
            return None;
        }
        if self.dense_bf16_beats_sparse(o) {
            (self.input_went_sparse, self.input_read) = (false, true);
            return None;
        }
        let given = &self.slots[src].sparse;
        let given = given.csr_width == i && given.csr.ptr.len() == n + 1;
        let nonzeros = if given {
            self.slots[src].sparse.csr.idx.len()
        } else {
            sparse_linear::count_nonzeros(self.value(x))
        };
        let sparse = sparse_enough(nonzeros, n * i);
        (self.input_went_sparse, self.input_read) = (sparse, true);
        match (sparse, given) {
            (false, _) => None,
            (true, true) => Some(src),
            (true, false) => Some(self.nodes.len()), // the node about to be recorded
        }
    }
}

impl Graph {
    /// Whether a Linear with `o` outputs reading a model input runs faster as a dense bfloat16
    /// product than on the float32 sparse kernels: under bfloat16, on AMX, from
    /// [`AMX_DENSE_OUTPUTS`] outputs. Measured on an Intel Xeon (Emerald Rapids), `bnlab bench
    /// --precision bf16`, 3 rounds: the seed's model (256 outputs) at batch 256 trains in 0.31 s
    /// per epoch dense against 0.39 s sparse, and evaluates in 0.016 s against 0.024; 4x wider
    /// (1024 outputs) at batch 1024, 1.44 s against 2.19 s (perf had the sparse layer at 41% of
    /// that epoch). AMX runs 256 x 784 x 256 at 299 GFLOP/s and 1024 x 1024 x 512 at 871
    /// (`cargo bench --bench bf16_matmul`). Narrower layers were not measured, so they keep the
    /// sparse kernels. AVX512-BF16 is no faster than the float32 GEMM on that CPU, so it never
    /// takes a sparse input densely.
    fn dense_bf16_beats_sparse(&self, o: usize) -> bool {
        self.precision == Precision::Bf16
            && o >= AMX_DENSE_OUTPUTS
            && matches!(bf16::kernel(), Ok(bf16::Bf16Kernel::Amx))
    }
}

/// Outputs from which a Linear under bfloat16 on AMX reads even a sparse input as a dense
/// bfloat16 product (see `Graph::dense_bf16_beats_sparse`).
const AMX_DENSE_OUTPUTS: usize = 256;

/// Whether an input with `nonzeros` of its `values` nonzero takes the sparse kernels.
fn sparse_enough(nonzeros: usize, values: usize) -> bool {
    (nonzeros as f64) < SPARSE_DENSITY * values as f64
}

/// The backward of Linear node `i`.
pub(in crate::graph) fn backward(g: &mut Graph, i: usize, op: Linear, dy: &[f32]) {
    let Linear {
        x,
        w,
        b,
        sparse,
        transposed,
        precision,
    } = op;
    let (mut gx, gw, mut gb) = (
        g.take_grad_to_overwrite(x),
        g.take_grad_to_overwrite(w),
        g.take_opt(b),
    );
    let ws = g.shape_inline(w);
    let (o, inner) = if transposed {
        (ws.dims()[1], ws.dims()[0])
    } else {
        (ws.dims()[0], ws.dims()[1])
    };
    // a fresh gradient is overwritten by the products and by the sparse kernel for W^T; the
    // sparse kernel for W only accumulates
    let mut gw = gw.map(|(mut grad, fresh)| {
        if fresh && sparse.is_some() && !transposed {
            grad.fill(0.0);
        }
        (grad, fresh)
    });
    if let Some(src) = sparse {
        // x needs no gradient (`sparse_source` takes only such inputs); dw from the nonzeros
        // of x, by columns of x
        debug_assert!(gx.is_none());
        if let Some((gw, fresh)) = gw.as_mut() {
            let (before, rest) = g.slots.split_at_mut(i);
            let own = &mut rest[0].sparse;
            if !own.csc_ready {
                // src is this node's slot or an earlier one (the input's)
                let csr = if src == i {
                    &own.csr
                } else {
                    &before[src].sparse.csr
                };
                sparse_linear::csr_to_csc(csr, inner, &mut own.csc);
            }
            let scratch = &mut g.scratch.sparse;
            if transposed {
                sparse_linear::backward_weight_t(gw, dy, &own.csc, o, *fresh, scratch);
            } else {
                sparse_linear::backward_weight(gw, dy, &own.csc, o, inner, scratch);
            }
        }
        if let Some(gb) = gb.as_deref_mut() {
            linear::bias_grad(gb, dy, o);
        }
    } else {
        let v = g.values_all();
        let n = v.get(x).len() / inner;
        linear::backward(
            precision,
            dy,
            v.get(x),
            v.get(w),
            transposed,
            grad_out(&mut gx),
            grad_out(&mut gw),
            gb.as_deref_mut(),
            n,
            inner,
            o,
        );
    }
    g.put_taken_grad(x, gx);
    g.put_taken_grad(w, gw);
    g.put_opt(b, gb);
}
