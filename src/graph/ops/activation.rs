//! The smooth and leaky activations: Sigmoid, Tanh, LeakyReLU, GELU; their forwards and
//! backwards (`kernels::activations`, where each derivative is written out).
//!
//! Sigmoid and Tanh differentiate through their own output (saved as the node's value);
//! LeakyReLU and GELU through their input.

use super::Op;
use crate::graph::{Graph, Var};
use crate::kernels::activations::{self as act, GeluApproximate};
use crate::Result;

/// Which activation a node applies, with its option.
#[derive(Clone, Copy, Debug)]
pub(in crate::graph) enum Activation {
    Sigmoid,
    Tanh,
    LeakyRelu { negative_slope: f32 },
    Gelu(GeluApproximate),
}

impl Graph {
    fn activation(&mut self, x: Var, f: Activation) -> Result<Var> {
        let rg = self.requires_grad(x);
        let k = self.push(Op::Activation { x, f }, self.shape_inline(x), rg);
        let (v, slot) = self.split(k);
        let (y, x) = (&mut slot.value, v.get(x));
        match f {
            Activation::Sigmoid => act::sigmoid_forward(y, x),
            Activation::Tanh => act::tanh_forward(y, x),
            Activation::LeakyRelu { negative_slope } => {
                act::leaky_relu_forward(y, x, negative_slope)
            }
            Activation::Gelu(a) => act::gelu_forward(y, x, a),
        }
        Ok(Graph::node_var(k))
    }

    /// 1 / (1 + exp(-x)), elementwise, any shape.
    pub fn sigmoid(&mut self, x: Var) -> Result<Var> {
        self.activation(x, Activation::Sigmoid)
    }

    /// tanh(x), elementwise, any shape.
    pub fn tanh(&mut self, x: Var) -> Result<Var> {
        self.activation(x, Activation::Tanh)
    }

    /// x where x >= 0, negative_slope * x elsewhere; any shape.
    pub fn leaky_relu(&mut self, x: Var, negative_slope: f32) -> Result<Var> {
        self.activation(x, Activation::LeakyRelu { negative_slope })
    }

    /// x * Phi(x) (or PyTorch's tanh approximation of it), elementwise, any shape.
    pub fn gelu(&mut self, x: Var, approximate: GeluApproximate) -> Result<Var> {
        self.activation(x, Activation::Gelu(approximate))
    }
}

/// The backward of activation node `i`: dx += dy * f'(x).
pub(in crate::graph) fn backward(g: &mut Graph, i: usize, x: Var, f: Activation, dy: &[f32]) {
    let mut gx = g.take_grad(x);
    if let Some(gx) = gx.as_deref_mut() {
        match f {
            Activation::Sigmoid => act::sigmoid_backward(gx, dy, &g.slots[i].value),
            Activation::Tanh => act::tanh_backward(gx, dy, &g.slots[i].value),
            Activation::LeakyRelu { negative_slope } => {
                act::leaky_relu_backward(gx, dy, g.value(x), negative_slope)
            }
            Activation::Gelu(a) => act::gelu_backward(gx, dy, g.value(x), a),
        }
    }
    g.put_grad(x, gx);
}
