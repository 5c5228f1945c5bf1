//! Reshape and flatten: views of a node's buffer with another shape (`Op::Alias`), with no
//! copy and no backward of their own.

use super::{shape_err, Op};
use crate::graph::{Graph, Var, VarKind};
use crate::tensor::Shape;
use crate::Result;

impl Graph {
    /// The same values with another shape (same number of elements). No copy for nodes.
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var> {
        let new = Shape::new(shape)?;
        if new.numel() != self.shape_inline(x).numel() {
            return shape_err(format!(
                "reshape: cannot view {:?} as {shape:?}",
                self.shape(x)
            ));
        }
        match x.0 {
            VarKind::Node(src) => {
                let rg = self.nodes[src].requires_grad;
                let storage = self.nodes[src].storage;
                let k = self.push(Op::Alias, new, rg);
                self.nodes[k].storage = storage;
                Ok(Graph::node_var(k))
            }
            VarKind::Param(p) => {
                // a parameter viewed with another shape: a copy of its values as its layer
                // stores them (its gradient is not tracked)
                let data = self.params.value(p).to_vec();
                let t = crate::tensor::Tensor::new(shape, data)?;
                self.input(&t, false)
            }
        }
    }

    /// (N, d1, d2, ...) -> (N, d1 * d2 * ...), as nn.Flatten does.
    pub fn flatten(&mut self, x: Var) -> Result<Var> {
        let d = self.shape(x).to_vec();
        if d.is_empty() {
            return shape_err("flatten: a scalar has no batch dimension".into());
        }
        let rest: usize = d[1..].iter().product();
        self.reshape(x, &[d[0], rest])
    }
}
