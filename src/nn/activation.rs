//! The activations beyond ReLU, and Identity: layers without parameters.

use super::{Forward, Module};
use crate::graph::{Graph, Var};
use crate::kernels::activations::GeluApproximate;
use crate::Result;

/// nn.Sigmoid: 1 / (1 + exp(-x)), elementwise.
///
/// # Shapes
///
/// - input: any shape (*).
/// - output: the input's shape.
pub struct Sigmoid;

/// nn.Tanh: tanh(x), elementwise.
///
/// # Shapes
///
/// - input: any shape (*).
/// - output: the input's shape.
pub struct Tanh;

/// nn.LeakyReLU: x where x >= 0, `negative_slope` x elsewhere.
///
/// # Shapes
///
/// - input: any shape (*).
/// - output: the input's shape.
pub struct LeakyReLU {
    /// The slope for negative inputs. PyTorch's default: 0.01.
    pub negative_slope: f32,
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU {
            negative_slope: 0.01,
        }
    }
}

/// nn.GELU: x Phi(x), Phi the standard normal CDF, or PyTorch's tanh approximation of it.
///
/// # Shapes
///
/// - input: any shape (*).
/// - output: the input's shape.
#[derive(Default)]
pub struct Gelu {
    /// `none` (exact, PyTorch's default) or `tanh`.
    pub approximate: GeluApproximate,
}

impl Gelu {
    /// PyTorch's name of the approximation: `none` or `tanh`.
    pub fn approximate_name(&self) -> &'static str {
        match self.approximate {
            GeluApproximate::None => "none",
            GeluApproximate::Tanh => "tanh",
        }
    }
}

/// nn.Identity: the input, unchanged (a placeholder, as where a model has no normalisation).
///
/// # Shapes
///
/// - input: any shape (*).
/// - output: the input itself.
pub struct Identity;

macro_rules! elementwise_layer {
    ($t:ty, $name:literal, |$s:ident, $g:ident, $x:ident| $body:expr) => {
        impl Forward for $t {
            fn forward(&mut self, $g: &mut Graph, $x: Var) -> Result<Var> {
                let $s = &*self;
                $body
            }
            fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
                Ok(input.to_vec())
            }
        }
        impl Module for $t {
            fn type_name(&self) -> &str {
                $name
            }
        }
    };
}

elementwise_layer!(Sigmoid, "Sigmoid", |_s, g, x| g.sigmoid(x));
elementwise_layer!(Tanh, "Tanh", |_s, g, x| g.tanh(x));
elementwise_layer!(LeakyReLU, "LeakyReLU", |s, g, x| g
    .leaky_relu(x, s.negative_slope));
elementwise_layer!(Gelu, "GELU", |s, g, x| g.gelu(x, s.approximate));
elementwise_layer!(Identity, "Identity", |_s, _g, x| Ok(x));
