//! Layers as data: an enum of the layers bnlab has, `Sequential` (nn.Sequential) and `Net`,
//! a model of named blocks (the presets). Being data, they can also be described without
//! running them: output shapes and parameter counts for `bnlab summary`.

use super::{BatchNorm, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU, StateRef};
use crate::graph::{Graph, Var};
use crate::{Error, Result};

pub enum Layer {
    Linear(Linear),
    BatchNorm(BatchNorm),
    ReLU(ReLU),
    Dropout(Dropout),
    Flatten(Flatten),
    Conv2d(Conv2d),
    MaxPool2d(MaxPool2d),
    Sequential(Sequential),
}

impl Layer {
    fn module(&mut self) -> &mut dyn Module {
        match self {
            Layer::Linear(m) => m,
            Layer::BatchNorm(m) => m,
            Layer::ReLU(m) => m,
            Layer::Dropout(m) => m,
            Layer::Flatten(m) => m,
            Layer::Conv2d(m) => m,
            Layer::MaxPool2d(m) => m,
            Layer::Sequential(m) => m,
        }
    }

    /// PyTorch's class name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Layer::Linear(_) => "Linear",
            Layer::BatchNorm(m) => m.type_name(),
            Layer::ReLU(_) => "ReLU",
            Layer::Dropout(_) => "Dropout",
            Layer::Flatten(_) => "Flatten",
            Layer::Conv2d(_) => "Conv2d",
            Layer::MaxPool2d(_) => "MaxPool2d",
            Layer::Sequential(_) => "Sequential",
        }
    }

    /// The output shape this layer gives an input shape, or an error saying why it cannot.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let bad = |why: &str| {
            Err(Error::Shape(format!(
                "{}: input {input:?} {why}",
                self.type_name()
            )))
        };
        match self {
            Layer::Linear(l) => match input.last() {
                Some(&i) if i == l.in_features => {
                    let mut out = input.to_vec();
                    *out.last_mut().unwrap() = l.out_features;
                    Ok(out)
                }
                _ => bad(&format!("must end in {} features", l.in_features)),
            },
            Layer::BatchNorm(bn) => bn.check_input(input).map(|_| input.to_vec()),
            Layer::ReLU(_) | Layer::Dropout(_) => Ok(input.to_vec()),
            Layer::Flatten(_) => match input.split_first() {
                Some((&n, rest)) => Ok(vec![n, rest.iter().product()]),
                None => bad("has no batch dimension"),
            },
            Layer::Conv2d(c) => c.output_shape(input).map_or_else(
                || {
                    bad(&format!(
                        "must be (N, {}, H, W) and no smaller than the kernel",
                        c.in_channels
                    ))
                },
                Ok,
            ),
            Layer::MaxPool2d(p) => p.output_shape(input).map_or_else(
                || bad("must be (N, C, H, W) and no smaller than the window"),
                Ok,
            ),
            Layer::Sequential(s) => s
                .layers
                .iter()
                .try_fold(input.to_vec(), |shape, l| l.output_shape(&shape)),
        }
    }
}

impl Module for Layer {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        self.module().forward(g, x)
    }
    fn children(&mut self) -> Vec<(String, &mut dyn Module)> {
        self.module().children()
    }
    fn own_state(&mut self) -> Vec<(&'static str, StateRef<'_>)> {
        self.module().own_state()
    }
    fn set_own_training(&mut self, training: bool) {
        self.module().set_own_training(training)
    }
}

macro_rules! layer_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Layer {
            fn from(m: $t) -> Layer {
                Layer::$t(m)
            }
        }
    )*};
}
layer_from!(Linear, BatchNorm, ReLU, Dropout, Flatten, Conv2d, MaxPool2d, Sequential);

/// nn.Sequential: layers applied in order, named "0", "1", ... in the state dict.
pub struct Sequential {
    pub layers: Vec<Layer>,
}

impl Sequential {
    pub fn new(layers: Vec<Layer>) -> Sequential {
        Sequential { layers }
    }
}

impl Module for Sequential {
    fn forward(&mut self, g: &mut Graph, mut x: Var) -> Result<Var> {
        let mut i = 0;
        while i < self.layers.len() {
            // Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d(2, 2), and the same without the
            // convolution, run as one op where the input allows: the same values with a
            // fraction of the memory traffic (graph/fused.rs, kernels/bn_relu_pool.rs)
            let fused = match &mut self.layers[i..] {
                [Layer::Conv2d(conv), Layer::BatchNorm(bn), Layer::ReLU(_), Layer::MaxPool2d(pool), ..]
                    if pool.is_2x2() =>
                {
                    bn.forward_after_conv_relu_pool(g, conv, x).map(|y| (y, 4))
                }
                [Layer::BatchNorm(bn), Layer::ReLU(_), Layer::MaxPool2d(pool), ..]
                    if pool.is_2x2() =>
                {
                    bn.forward_relu_pool(g, x).map(|y| (y, 3))
                }
                _ => None,
            };
            if let Some((y, layers)) = fused {
                x = y?;
                i += layers;
                continue;
            }
            x = self.layers[i].forward(g, x)?;
            i += 1;
        }
        Ok(x)
    }
    fn children(&mut self) -> Vec<(String, &mut dyn Module)> {
        self.layers
            .iter_mut()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l as &mut dyn Module))
            .collect()
    }
}

/// A model of named blocks applied in order, like the seed's BNModel (`b1`, `b2`, `b3`,
/// `output`). `flatten_input` flattens the input first without a layer of its own, as the
/// seed's `nn.Flatten()(X)` inside `forward` does (so it shows in no summary).
pub struct Net {
    pub name: String,
    pub flatten_input: bool,
    pub blocks: Vec<(String, Layer)>,
}

impl Net {
    /// The output shape for an input shape (with the batch dimension).
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let mut shape = input.to_vec();
        if self.flatten_input {
            shape = Layer::Flatten(Flatten).output_shape(&shape)?;
        }
        for (_, b) in &self.blocks {
            shape = b.output_shape(&shape)?;
        }
        Ok(shape)
    }
}

impl Module for Net {
    fn forward(&mut self, g: &mut Graph, mut x: Var) -> Result<Var> {
        if self.flatten_input {
            x = g.flatten(x)?;
        }
        for (_, b) in &mut self.blocks {
            x = b.forward(g, x)?;
        }
        Ok(x)
    }
    fn children(&mut self) -> Vec<(String, &mut dyn Module)> {
        self.blocks
            .iter_mut()
            .map(|(n, l)| (n.clone(), l as &mut dyn Module))
            .collect()
    }
}
