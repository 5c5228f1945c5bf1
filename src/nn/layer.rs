//! Layers as data: an enum of the layers bnlab has, `Sequential` (nn.Sequential) and `Net`,
//! a model of named blocks (the presets). Being data, they can also be described without
//! running them: output shapes and parameter counts for `bnlab summary`.

use super::hooks::{call, child_watched};
use super::{
    fused, AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, Forward, Gelu, GroupNorm, Identity,
    LayerNorm, LeakyReLU, Linear, MaxPool2d, Module, ReLU, Sigmoid, StateRef, StateView, Tanh,
};
use crate::graph::{Graph, Var};
use crate::Result;

/// Any layer bnlab has, as data, so that a model made of them can report its output shapes and
/// parameters without running (`bnlab summary`). Each layer type converts into it with `into()`.
pub enum Layer {
    /// nn.Linear: the last dimension, in_features, becomes out_features.
    Linear(Linear),
    /// nn.BatchNorm1d or nn.BatchNorm2d (by its `kind`): the input's shape, unchanged.
    BatchNorm(BatchNorm),
    /// nn.ReLU: any shape, unchanged.
    ReLU(ReLU),
    /// nn.Dropout: any shape, unchanged.
    Dropout(Dropout),
    /// nn.Flatten: (N, *) -> (N, product of *).
    Flatten(Flatten),
    /// nn.Conv2d: (N, in_channels, H, W) -> (N, out_channels, Ho, Wo).
    Conv2d(Conv2d),
    /// nn.MaxPool2d: (N, C, H, W) -> (N, C, Ho, Wo).
    MaxPool2d(MaxPool2d),
    /// nn.Sigmoid: any shape, unchanged.
    Sigmoid(Sigmoid),
    /// nn.Tanh: any shape, unchanged.
    Tanh(Tanh),
    /// nn.LeakyReLU: any shape, unchanged.
    LeakyReLU(LeakyReLU),
    /// nn.GELU: any shape, unchanged.
    Gelu(Gelu),
    /// nn.Identity: the input itself.
    Identity(Identity),
    /// nn.LayerNorm: the input's shape, unchanged.
    LayerNorm(LayerNorm),
    /// nn.GroupNorm: (N, C, *), unchanged.
    GroupNorm(GroupNorm),
    /// nn.AvgPool2d: (N, C, H, W) -> (N, C, Ho, Wo).
    AvgPool2d(AvgPool2d),
    /// nn.Sequential: layers nested as one.
    Sequential(Sequential),
    /// A model of named blocks inside another, as a model file's own classes are.
    Net(Net),
    /// A layer of your own: any [`Module`] (see [`Layer::custom`]).
    Custom(Box<dyn Module>),
}

impl Layer {
    fn module(&self) -> &dyn Module {
        match self {
            Layer::Linear(m) => m,
            Layer::BatchNorm(m) => m,
            Layer::ReLU(m) => m,
            Layer::Dropout(m) => m,
            Layer::Flatten(m) => m,
            Layer::Conv2d(m) => m,
            Layer::MaxPool2d(m) => m,
            Layer::Sigmoid(m) => m,
            Layer::Tanh(m) => m,
            Layer::LeakyReLU(m) => m,
            Layer::Gelu(m) => m,
            Layer::Identity(m) => m,
            Layer::LayerNorm(m) => m,
            Layer::GroupNorm(m) => m,
            Layer::AvgPool2d(m) => m,
            Layer::Net(m) => m,
            Layer::Sequential(m) => m,
            Layer::Custom(m) => m.as_ref(),
        }
    }

    fn module_mut(&mut self) -> &mut dyn Module {
        match self {
            Layer::Linear(m) => m,
            Layer::BatchNorm(m) => m,
            Layer::ReLU(m) => m,
            Layer::Dropout(m) => m,
            Layer::Flatten(m) => m,
            Layer::Conv2d(m) => m,
            Layer::MaxPool2d(m) => m,
            Layer::Sigmoid(m) => m,
            Layer::Tanh(m) => m,
            Layer::LeakyReLU(m) => m,
            Layer::Gelu(m) => m,
            Layer::Identity(m) => m,
            Layer::LayerNorm(m) => m,
            Layer::GroupNorm(m) => m,
            Layer::AvgPool2d(m) => m,
            Layer::Net(m) => m,
            Layer::Sequential(m) => m,
            Layer::Custom(m) => m.as_mut(),
        }
    }

    /// A layer of your own in a [`Sequential`] or a [`Net`]: it trains, saves and loads like
    /// the built-in ones (its state under its index or block name), and shows in a summary
    /// when it implements [`Forward::output_shape`].
    pub fn custom(m: impl Module + 'static) -> Layer {
        Layer::Custom(Box::new(m))
    }

    /// PyTorch's class name.
    pub fn type_name(&self) -> &str {
        match self {
            Layer::Linear(_) => "Linear",
            Layer::ReLU(_) => "ReLU",
            Layer::Dropout(_) => "Dropout",
            Layer::Flatten(_) => "Flatten",
            Layer::Conv2d(_) => "Conv2d",
            Layer::MaxPool2d(_) => "MaxPool2d",
            Layer::AvgPool2d(_) => "AvgPool2d",
            Layer::LayerNorm(_) => "LayerNorm",
            Layer::GroupNorm(_) => "GroupNorm",
            Layer::Sequential(_) => "Sequential",
            other => other.module().type_name(),
        }
    }

    /// The output shape this layer gives an input shape, or an error saying why it cannot.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.module().output_shape(input)
    }
}

impl Forward for Layer {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        self.module_mut().forward(g, x)
    }
    fn set_own_training(&mut self, training: bool) {
        self.module_mut().set_own_training(training)
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.module().output_shape(input)
    }
}

impl Module for Layer {
    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.module().children()
    }
    fn children_mut(&mut self) -> Vec<(String, &mut dyn Module)> {
        self.module_mut().children_mut()
    }
    fn own_state(&self) -> Vec<(&'static str, StateView<'_>)> {
        self.module().own_state()
    }
    fn own_state_mut(&mut self) -> Vec<(&'static str, StateRef<'_>)> {
        self.module_mut().own_state_mut()
    }
    fn type_name(&self) -> &str {
        Layer::type_name(self)
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
layer_from!(
    Linear, BatchNorm, ReLU, Dropout, Flatten, Conv2d, MaxPool2d, Sequential, Sigmoid, Tanh,
    LeakyReLU, Identity, LayerNorm, GroupNorm, AvgPool2d, Net
);

impl From<Gelu> for Layer {
    fn from(m: Gelu) -> Layer {
        Layer::Gelu(m)
    }
}

/// nn.Sequential: layers applied in order, named "0", "1", ... in the state dict.
///
/// # Shapes
///
/// - input: whatever the first layer accepts (anything when there are no layers).
/// - output: the last layer's output, each layer's output being the next one's input (see
///   [`Layer::output_shape`]); the input itself when there are no layers.
pub struct Sequential {
    /// The layers, in order.
    pub layers: Vec<Layer>,
    /// Run Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d(2) (and BatchNorm2d -> ReLU ->
    /// MaxPool2d(2)) as one op where they follow each other (see [`Sequential::fused`]).
    pub fuse: bool,
}

impl Sequential {
    /// The layers, each run on its own.
    pub fn new(layers: Vec<Layer>) -> Sequential {
        Sequential {
            layers,
            fuse: false,
        }
    }

    /// The layers, with every Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d(2, 2) run (and every
    /// BatchNorm2d -> ReLU -> MaxPool2d(2, 2) without the convolution) run as one op where the
    /// input allows: the same values, running statistics and gradients as the layers one by
    /// one (tests/fused.rs) with a fraction of the memory traffic (graph/ops/fused.rs,
    /// kernels/bn_relu_pool/). The CNN presets are built this way; a hand-written forward
    /// gets the same with [`crate::nn::fused`]. A layer with a hook runs unfused.
    pub fn fused(layers: Vec<Layer>) -> Sequential {
        Sequential { layers, fuse: true }
    }

    /// Whether the graph has a hook on any of the layers `layers` (indices into this
    /// Sequential, which is the running module), which must then run one by one.
    fn watched(g: &Graph, layers: std::ops::Range<usize>) -> bool {
        !g.hooks().is_empty() && layers.into_iter().any(|i| child_watched(g, &i.to_string()))
    }
}

impl Forward for Sequential {
    fn forward(&mut self, g: &mut Graph, mut x: Var) -> Result<Var> {
        let mut i = 0;
        while i < self.layers.len() {
            if !self.fuse {
                x = call(g, &mut self.layers[i], x)?;
                i += 1;
                continue;
            }
            let end = self.layers.len().min(i + 4);
            let watched = Sequential::watched(g, i..end);
            let fused = match &mut self.layers[i..] {
                _ if watched => None,
                [Layer::Conv2d(conv), Layer::BatchNorm(bn), Layer::ReLU(_), Layer::MaxPool2d(pool), ..]
                    if pool.is_2x2() =>
                {
                    fused::conv_bn_relu_pool(g, conv, bn, x).map(|y| (y, 4))
                }
                [Layer::BatchNorm(bn), Layer::ReLU(_), Layer::MaxPool2d(pool), ..]
                    if pool.is_2x2() =>
                {
                    fused::bn_relu_pool(g, bn, x).map(|y| (y, 3))
                }
                _ => None,
            };
            if let Some((y, layers)) = fused {
                x = y?;
                i += layers;
                continue;
            }
            x = call(g, &mut self.layers[i], x)?;
            i += 1;
        }
        Ok(x)
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.layers
            .iter()
            .try_fold(input.to_vec(), |shape, l| l.output_shape(&shape))
    }
}

impl Module for Sequential {
    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l as &dyn Module))
            .collect()
    }
    fn children_mut(&mut self) -> Vec<(String, &mut dyn Module)> {
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
    /// The model's class name, as summaries show it (`BNModel`, `CNNModel`, ...).
    pub name: String,
    /// Flatten (N, *) to (N, product of *) before the first block.
    pub flatten_input: bool,
    /// The blocks in order, each with its state-dict name (`b1`, ..., `output`).
    pub blocks: Vec<(String, Layer)>,
}

impl Forward for Net {
    /// The output shape for an input shape (with the batch dimension).
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let mut shape = self.children_input(input)?;
        for (_, b) in &self.blocks {
            shape = b.output_shape(&shape)?;
        }
        Ok(shape)
    }

    fn children_input(&self, input: &[usize]) -> Result<Vec<usize>> {
        if self.flatten_input {
            Layer::Flatten(Flatten).output_shape(input)
        } else {
            Ok(input.to_vec())
        }
    }

    fn forward(&mut self, g: &mut Graph, mut x: Var) -> Result<Var> {
        if self.flatten_input {
            x = g.flatten(x)?;
        }
        for (_, b) in &mut self.blocks {
            x = call(g, b, x)?;
        }
        Ok(x)
    }
}

impl Module for Net {
    fn type_name(&self) -> &str {
        &self.name
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.blocks
            .iter()
            .map(|(n, l)| (n.clone(), l as &dyn Module))
            .collect()
    }
    fn children_mut(&mut self) -> Vec<(String, &mut dyn Module)> {
        self.blocks
            .iter_mut()
            .map(|(n, l)| (n.clone(), l as &mut dyn Module))
            .collect()
    }
}
