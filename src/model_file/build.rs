//! Building a model from its printed text: each class to its layer with PyTorch's arguments
//! and initialisation, children named as printed (so the state dict has PyTorch's names), and
//! every shape checked against the input before any training.

use super::args::{Args, Param};
use super::parse::{ModuleText, Value};
use crate::graph::ParamStore;
use crate::nn::{
    AvgPool2d, BatchNorm, BatchNormConfig, BatchNormKind, Conv2d, Conv2dConfig, Dropout, Flatten,
    Gelu, GeluApproximate, GroupNorm, GroupNormConfig, Identity, Layer, LayerNorm, LayerNormConfig,
    LeakyReLU, Linear, LinearConfig, MaxPool2d, Net, ReLU, Sequential, Sigmoid, Tanh,
};
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

/// How the built model meets its data.
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// The input is mostly exact zeros (images): a first Linear that reads it keeps W^T for
    /// the sparse kernels, as the presets' first layers do (same values, same state dict).
    pub sparse_input: bool,
}

/// Build the model `m` (parsed from `file`) for inputs of `input` (batch dimension included),
/// drawing its parameters from `rng` in the order printed, as PyTorch's `__init__` creates
/// them in the order it assigns the children.
pub fn build(
    m: &ModuleText,
    file: &str,
    input: &[usize],
    params: &mut ParamStore,
    rng: &mut Rng,
    options: BuildOptions,
) -> Result<Net> {
    let mut b = Builder {
        file,
        params,
        rng,
        options,
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

struct Builder<'a> {
    file: &'a str,
    params: &'a mut ParamStore,
    rng: &'a mut Rng,
    options: BuildOptions,
    /// The shape reaching the next layer, and the path of the layer that made it.
    shape: Vec<usize>,
    from: String,
    /// No layer has run yet (only views such as Flatten): the next Linear reads the data.
    at_input: bool,
    /// Parameter and buffer values asked for so far (see [`MAX_VALUES`]).
    values: usize,
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
    fn reserve(&mut self, place: &str, tensors: &[&[usize]]) -> Result<()> {
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
    fn at(&self, m: &ModuleText) -> String {
        format!("{}:{}:{}", self.file, m.pos.line, m.pos.column)
    }

    /// `file:line:column: path: Class`, where errors about a module start.
    fn place(&self, m: &ModuleText, path: &str) -> String {
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

    fn leaf(&mut self, m: &ModuleText, path: &str, place: &str) -> Result<Layer> {
        let args = |sig: &[Param], kw: &[Param]| Args::resolve(m, place.to_string(), sig, kw);
        let int = |i: i64| Some(Value::Int(i));
        let yes = Some(Value::Bool(true));
        let no = Some(Value::Bool(false));
        Ok(match m.class.as_str() {
            "Linear" => {
                let a = args(
                    &[("in_features", None), ("out_features", None), ("bias", yes)],
                    &[],
                )?;
                let (i, o) = (a.usize("in_features", 1)?, a.usize("out_features", 1)?);
                self.reserve(place, &[&[o, i], &[o]])?;
                let mut config = LinearConfig::new(i, o);
                config.bias = a.bool("bias")?;
                config.stored_transpose = self.at_input && self.options.sparse_input;
                let mut linear = Linear::with_config(self.params, config, self.rng)?;
                // the seed's forward flattens inline before its first Linear (no Flatten
                // printed): a Linear meeting (N, *) with prod(*) = in_features flattens first
                let s = &self.shape;
                if s.len() > 2 && s.last() != Some(&i) && s[1..].iter().product::<usize>() == i {
                    linear.flatten_input = true;
                } else if s.last() != Some(&i) {
                    return Err(Error::Invalid(format!(
                        "{}: {path}: Linear(in_features={i}) receives {} features from {} \
                         (shape {s:?})",
                        self.at(m),
                        s.last().copied().unwrap_or(0),
                        self.from
                    )));
                }
                linear.into()
            }
            "BatchNorm1d" | "BatchNorm2d" => {
                let a = args(
                    &[
                        ("num_features", None),
                        ("eps", Some(Value::Float(1e-5))),
                        ("momentum", Some(Value::Float(0.1))),
                        ("affine", yes.clone()),
                        ("track_running_stats", yes.clone()),
                    ],
                    &[("bias", yes)],
                )?;
                let affine = a.bool("affine")?;
                if affine && !a.bool("bias")? {
                    return Err(a.bad(
                        "bias",
                        "is not supported (bnlab's BatchNorm with affine=True has a bias)",
                    ));
                }
                let config = BatchNormConfig {
                    eps: positive(&a, "eps")?,
                    momentum: a.opt_float("momentum")?.map(|m| m as f32),
                    affine,
                    track_running_stats: a.bool("track_running_stats")?,
                };
                let kind = if m.class == "BatchNorm1d" {
                    BatchNormKind::OneD
                } else {
                    BatchNormKind::TwoD
                };
                let n = a.usize("num_features", 1)?;
                self.reserve(place, &[&[4, n]])?;
                BatchNorm::with_config(self.params, kind, n, config)?.into()
            }
            "Conv2d" => {
                let a = args(
                    &[
                        ("in_channels", None),
                        ("out_channels", None),
                        ("kernel_size", None),
                        ("stride", int(1)),
                        ("padding", int(0)),
                        ("dilation", int(1)),
                        ("groups", int(1)),
                        ("bias", yes),
                        ("padding_mode", Some(Value::Str("zeros".into()))),
                    ],
                    &[],
                )?;
                a.only("dilation", Value::Int(1), "bnlab's Conv2d has no dilation")?;
                a.only("groups", Value::Int(1), "bnlab's Conv2d has no groups")?;
                a.only(
                    "padding_mode",
                    Value::Str("zeros".into()),
                    "bnlab's Conv2d pads with zeros",
                )?;
                if a.string("padding").is_ok() {
                    return Err(a.bad("padding", "is not supported (give the padding as a number)"));
                }
                let config = Conv2dConfig {
                    in_channels: a.usize("in_channels", 1)?,
                    out_channels: a.usize("out_channels", 1)?,
                    kernel_size: a.square("kernel_size", 1)?,
                    stride: a.square("stride", 1)?,
                    padding: a.square("padding", 0)?,
                    bias: a.bool("bias")?,
                };
                let (o, k) = (config.out_channels, config.kernel_size);
                self.reserve(place, &[&[o, config.in_channels, k, k], &[o]])?;
                Conv2d::with_config(self.params, config, self.rng)?.into()
            }
            "MaxPool2d" => {
                let a = args(
                    &[
                        ("kernel_size", None),
                        ("stride", Some(Value::None)),
                        ("padding", int(0)),
                        ("dilation", int(1)),
                        ("return_indices", no.clone()),
                        ("ceil_mode", no),
                    ],
                    &[],
                )?;
                a.only("padding", Value::Int(0), "bnlab's MaxPool2d does not pad")?;
                a.only(
                    "dilation",
                    Value::Int(1),
                    "bnlab's MaxPool2d has no dilation",
                )?;
                a.only(
                    "return_indices",
                    Value::Bool(false),
                    "a layer gives one output",
                )?;
                a.only(
                    "ceil_mode",
                    Value::Bool(false),
                    "bnlab rounds the output size down",
                )?;
                let k = a.square("kernel_size", 1)?;
                let stride = if a.is("stride", &Value::None) {
                    k
                } else {
                    a.square("stride", 1)?
                };
                MaxPool2d {
                    kernel_size: k,
                    stride,
                }
                .into()
            }
            "ReLU" => {
                let a = args(&[("inplace", no)], &[])?;
                a.bool("inplace")?; // in place or not, the values are the same
                ReLU.into()
            }
            "Dropout" => {
                let a = args(&[("p", Some(Value::Float(0.5))), ("inplace", no)], &[])?;
                a.bool("inplace")?;
                let p = a.float("p")?;
                Dropout::new(p as f32)
                    .map_err(|_| a.bad("p", "must be between 0 and 1"))?
                    .into()
            }
            "Sigmoid" => {
                args(&[], &[])?;
                Sigmoid.into()
            }
            "Tanh" => {
                args(&[], &[])?;
                Tanh.into()
            }
            "Identity" => {
                args(&[], &[])?;
                Identity.into()
            }
            "LeakyReLU" => {
                let a = args(
                    &[
                        ("negative_slope", Some(Value::Float(0.01))),
                        ("inplace", no),
                    ],
                    &[],
                )?;
                a.bool("inplace")?;
                LeakyReLU {
                    negative_slope: a.float("negative_slope")? as f32,
                }
                .into()
            }
            "GELU" => {
                let a = args(&[("approximate", Some(Value::Str("none".into())))], &[])?;
                let approximate = GeluApproximate::from_name(a.string("approximate")?)
                    .ok_or_else(|| a.bad("approximate", "must be 'none' or 'tanh'"))?;
                Gelu { approximate }.into()
            }
            "LayerNorm" => {
                let a = args(
                    &[
                        ("normalized_shape", None),
                        ("eps", Some(Value::Float(1e-5))),
                        ("elementwise_affine", yes.clone()),
                        ("bias", yes),
                    ],
                    &[],
                )?;
                let config = LayerNormConfig {
                    eps: positive(&a, "eps")?,
                    elementwise_affine: a.bool("elementwise_affine")?,
                    bias: a.bool("bias")?,
                };
                let shape = a.shape("normalized_shape")?;
                self.reserve(place, &[&shape, &shape])?;
                LayerNorm::with_config(self.params, &shape, config)?.into()
            }
            "GroupNorm" => {
                let a = args(
                    &[
                        ("num_groups", None),
                        ("num_channels", None),
                        ("eps", Some(Value::Float(1e-5))),
                        ("affine", yes),
                    ],
                    &[],
                )?;
                let config = GroupNormConfig {
                    eps: positive(&a, "eps")?,
                    affine: a.bool("affine")?,
                };
                let (groups, channels) = (a.usize("num_groups", 1)?, a.usize("num_channels", 1)?);
                self.reserve(place, &[&[2, channels]])?;
                if channels % groups != 0 {
                    return Err(a.bad(
                        "num_groups",
                        &format!("does not divide num_channels={channels}"),
                    ));
                }
                GroupNorm::with_config(self.params, groups, channels, config)?.into()
            }
            "AvgPool2d" => {
                let a = args(
                    &[
                        ("kernel_size", None),
                        ("stride", Some(Value::None)),
                        ("padding", int(0)),
                        ("ceil_mode", no.clone()),
                        ("count_include_pad", yes),
                        ("divisor_override", Some(Value::None)),
                    ],
                    &[],
                )?;
                a.only("padding", Value::Int(0), "bnlab's AvgPool2d does not pad")?;
                a.only(
                    "ceil_mode",
                    Value::Bool(false),
                    "bnlab rounds the output size down",
                )?;
                a.only(
                    "divisor_override",
                    Value::None,
                    "bnlab divides by the window's size",
                )?;
                // without padding, count_include_pad changes nothing
                a.bool("count_include_pad")?;
                let kernel = a.pair("kernel_size", 1)?;
                let stride = if a.is("stride", &Value::None) {
                    kernel
                } else {
                    a.pair("stride", 1)?
                };
                AvgPool2d {
                    kernel_size: kernel,
                    stride,
                }
                .into()
            }
            "Flatten" => {
                let a = args(&[("start_dim", int(1)), ("end_dim", int(-1))], &[])?;
                let rank = self.shape.len() as i64;
                let (start, end) = (a.int("start_dim")?, a.int("end_dim")?);
                if start != 1 && start != 1 - rank {
                    return Err(a.bad(
                        "start_dim",
                        "is not supported (bnlab's Flatten keeps dimension 0 only)",
                    ));
                }
                if end != -1 && end != rank - 1 {
                    return Err(a.bad(
                        "end_dim",
                        "is not supported (bnlab's Flatten flattens to the last dimension)",
                    ));
                }
                Flatten.into()
            }
            other => {
                return Err(Error::Invalid(format!(
                    "{}: unknown layer '{other}' (bnlab supports {SUPPORTED})",
                    self.place(m, path)
                )))
            }
        })
    }
}

/// A positive finite number, as f32 (an epsilon).
fn positive(a: &Args, name: &str) -> Result<f32> {
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
