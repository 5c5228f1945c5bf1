//! Layers without parameters: ReLU, Dropout, Flatten.

use super::{Forward, Module};
use crate::graph::{Graph, Var};
use crate::{Error, Result};

/// max(x, 0), elementwise (NaN passes through, as in PyTorch).
///
/// # Shapes
///
/// - input: any shape (*).
/// - output: the input's shape.
#[derive(Module)]
pub struct ReLU;

impl Forward for ReLU {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        g.relu(x)
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
}

/// nn.Flatten: (N, d1, d2, ...) -> (N, d1 * d2 * ...), a view of the same values (no copy).
///
/// # Shapes
///
/// - input: (N, *), at least one dimension.
/// - output: (N, product of *); (N) gives (N, 1).
#[derive(Module)]
pub struct Flatten;

impl Forward for Flatten {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        g.flatten(x)
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        match input.split_first() {
            Some((&n, rest)) => Ok(vec![n, rest.iter().product()]),
            None => Err(super::bad_input::bad_input(
                "Flatten",
                input,
                "has no batch dimension",
            )),
        }
    }
}

/// Inverted dropout: in training, zero each value with probability `p` and scale the rest by
/// 1 / (1 - p); the identity in eval mode. Draws from the graph's generator.
///
/// # Shapes
///
/// - input: any shape (*).
/// - output: the input's shape.
#[derive(Module)]
pub struct Dropout {
    /// The probability of zeroing each value, in [0, 1]: 0 is the identity, 1 gives zeros.
    #[module(skip)]
    pub p: f32,
    #[module(skip)]
    training: bool,
}

impl Dropout {
    /// nn.Dropout(p), in training mode; an error unless 0 <= p <= 1.
    pub fn new(p: f32) -> Result<Dropout> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Invalid(format!(
                "dropout probability has to be between 0 and 1, but got {p}"
            )));
        }
        Ok(Dropout { p, training: true })
    }
}

impl Forward for Dropout {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        if self.training && self.p > 0.0 {
            g.dropout(x, self.p)
        } else {
            Ok(x)
        }
    }

    fn set_own_training(&mut self, training: bool) {
        self.training = training;
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
}
