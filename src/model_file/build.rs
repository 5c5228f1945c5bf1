//! Building a model from its printed text: each class to its layer with PyTorch's arguments
//! and initialisation, children named as printed (so the state dict has PyTorch's names), and
//! every shape checked against the input before any training.

use super::args::Args;
use super::parse::ModuleText;
use crate::graph::ParamStore;
use crate::nn::{Layer, Net, Sequential};
use crate::rng::Rng;
use crate::{Error, Result};

/// Every class a model file may use, as the error for an unknown one lists them.
pub const SUPPORTED: &str = "Linear, BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, Conv2d, \
                             MaxPool2d, AvgPool2d, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, \
                             Dropout, Flatten, Identity, Sequential, and any class holding \
                             children";

/// The most parameters (and buffers) a model file may ask for: 2^28 values, 1 GiB of float32
/// (a VGG-16 has 138 million). A guard for untrusted text: `Linear(10000000, 10000000)` is an
/// error, not an allocation that takes the machine down.
pub const MAX_VALUES: usize = 1 << 28;

/// Build the model `m` (parsed from `file`) for inputs of `input` (batch dimension included),
/// drawing its parameters from `rng` in the order printed, as PyTorch's `__init__` creates
/// them in the order it assigns the children.
pub fn build(
    m: &ModuleText,
    file: &str,
    input: &[usize],
    params: &mut ParamStore,
    rng: &mut Rng,
) -> Result<Net> {
    let mut b = Builder {
        file,
        params,
        rng,
        shape: input.to_vec(),
        from: "the input".to_string(),
        at_input: true,
        values: 0,
    };
    if m.children.is_empty() {
        // a single layer as the whole model: a Net of one block named as PyTorch would not
        // name it is impossible, so say what is expected
        return Err(Error::Invalid(format!(
            "{}: the model is a single {}; a model file holds a module with children, such as \
             Sequential(...) or Net(...)",
            b.place(m, ""),
            m.class
        )));
    }
    let blocks = b.children(m, "")?;
    Ok(Net {
        name: m.class.clone(),
        flatten_input: false,
        blocks,
    })
}

pub(super) struct Builder<'a> {
    pub(super) file: &'a str,
    pub(super) params: &'a mut ParamStore,
    pub(super) rng: &'a mut Rng,
    /// The shape reaching the next layer, and the path of the layer that made it.
    pub(super) shape: Vec<usize>,
    pub(super) from: String,
    /// No layer has run yet (only views such as Flatten): the next Linear reads the model's
    /// input, and keeps W^T for the sparse kernels the graph gives a mostly-zero batch, as the
    /// presets' first layers do (same values, same state dict).
    pub(super) at_input: bool,
    /// Parameter and buffer values asked for so far (see [`MAX_VALUES`]).
    pub(super) values: usize,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl Builder<'_> {
    /// Count a layer's values against [`MAX_VALUES`] before anything is allocated; `dims`
    /// multiply to each of its tensors' sizes.
    pub(super) fn reserve(&mut self, place: &str, tensors: &[&[usize]]) -> Result<()> {
        let total = tensors.iter().try_fold(self.values, |acc, dims| {
            dims.iter()
                .try_fold(1usize, |p, &d| p.checked_mul(d))
                .and_then(|n| acc.checked_add(n))
        });
        match total {
            Some(t) if t <= MAX_VALUES => {
                self.values = t;
                Ok(())
            }
            _ => Err(Error::Invalid(format!(
                "{place}: the model would hold more than {MAX_VALUES} parameter values"
            ))),
        }
    }

    /// `file:line:column` of a module.
    pub(super) fn at(&self, m: &ModuleText) -> String {
        format!("{}:{}:{}", self.file, m.pos.line, m.pos.column)
    }

    /// `file:line:column: path: Class`, where errors about a module start.
    pub(super) fn place(&self, m: &ModuleText, path: &str) -> String {
        let at = self.at(m);
        if path.is_empty() {
            format!("{at}: {}", m.class)
        } else {
            format!("{at}: {path}: {}", m.class)
        }
    }

    fn children(&mut self, m: &ModuleText, path: &str) -> Result<Vec<(String, Layer)>> {
        m.children
            .iter()
            .map(|(name, child)| Ok((name.clone(), self.module(child, &join(path, name))?)))
            .collect()
    }

    fn module(&mut self, m: &ModuleText, path: &str) -> Result<Layer> {
        if m.class == "Sequential" || !m.children.is_empty() {
            return self.container(m, path);
        }
        let place = self.place(m, path);
        // every shape stays small enough that no layer's arithmetic on it can overflow
        let numel = self.shape.iter().try_fold(1usize, |p, &d| p.checked_mul(d));
        if self.shape.len() > 6 || numel.is_none_or(|n| n > 1 << 40) {
            return Err(Error::Invalid(format!(
                "{place} receives {:?} from {}: too many values for one example",
                self.shape, self.from
            )));
        }
        let layer = self.leaf(m, path, &place)?;
        // the shape check of every layer, before any training
        let out = layer.output_shape(&self.shape).map_err(|e| {
            Error::Invalid(format!(
                "{place} receives {:?} from {}: {}",
                self.shape,
                self.from,
                strip_kind(&e)
            ))
        })?;
        self.shape = out;
        self.from = path.to_string();
        if !matches!(layer, Layer::Flatten(_)) {
            self.at_input = false;
        }
        Ok(layer)
    }

    fn container(&mut self, m: &ModuleText, path: &str) -> Result<Layer> {
        if !m.args.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: a container takes no arguments, only children",
                self.place(m, path)
            )));
        }
        let blocks = self.children(m, path)?;
        if m.class == "Sequential" {
            for (k, (name, _)) in blocks.iter().enumerate() {
                if *name != k.to_string() {
                    return Err(Error::Invalid(format!(
                        "{}: a Sequential's children are numbered 0, 1, ...: child {k} is \
                         named '{name}'",
                        self.place(m, path)
                    )));
                }
            }
            // runs (Conv2d ->) BatchNorm2d -> ReLU -> MaxPool2d(2) as one op, as the presets do
            let layers = blocks.into_iter().map(|(_, l)| l).collect();
            return Ok(Sequential::fused(layers).into());
        }
        Ok(Layer::Net(Net {
            name: m.class.clone(),
            flatten_input: false,
            blocks,
        }))
    }
}

/// A positive finite number, as f32 (an epsilon).
pub(super) fn positive(a: &Args, name: &str) -> Result<f32> {
    let v = a.float(name)?;
    if v > 0.0 {
        Ok(v as f32)
    } else {
        Err(a.bad(name, "must be positive"))
    }
}

/// An error's message without its kind ("shape error: "), to put inside another.
fn strip_kind(e: &Error) -> String {
    match e {
        Error::Shape(m) | Error::Invalid(m) => m.clone(),
        other => other.to_string(),
    }
}
