//! The classes a model file may use, each to its layer: PyTorch's signature (positional
//! order, keywords, defaults), the values bnlab honours, and the errors for the rest.

use super::args::{Args, Param};
use super::build::{positive, Builder, SUPPORTED};
use super::parse::{ModuleText, Value};
use crate::nn::{
    AvgPool2d, BatchNorm, BatchNormConfig, BatchNormKind, Conv2d, Conv2dConfig, Dropout, Flatten,
    Gelu, GeluApproximate, GroupNorm, GroupNormConfig, Identity, Layer, LayerNorm, LayerNormConfig,
    LeakyReLU, Linear, LinearConfig, MaxPool2d, ReLU, Sigmoid, Tanh,
};
use crate::{Error, Result};

impl Builder<'_> {
    /// The layer a class with no children names, built with its arguments (the shape it
    /// receives is `self.shape`, from `self.from`).
    pub(super) fn leaf(&mut self, m: &ModuleText, path: &str, place: &str) -> Result<Layer> {
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
                // reading the model's input, it may take the sparse kernels (Graph::linear)
                config.stored_transpose = self.at_input;
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
                        ("affine", yes.clone()),
                    ],
                    &[("bias", yes)],
                )?;
                let config = GroupNormConfig {
                    eps: positive(&a, "eps")?,
                    affine: a.bool("affine")?,
                    bias: a.bool("bias")?,
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
