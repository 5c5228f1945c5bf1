//! The models `bnlab` knows by name, built as PyTorch builds them, with PyTorch's state-dict
//! names: the seed's BNModel and its variants, and the CNN with BatchNorm2d.

use crate::graph::ParamStore;
use crate::nn::{
    BatchNorm, Conv2d, Conv2dConfig, Dropout, Flatten, Layer, Linear, LinearConfig, MaxPool2d, Net,
    ReLU, Sequential,
};
use crate::rng::Rng;
use crate::{Error, Result};
use std::str::FromStr;

/// A model bnlab builds by name (the command line's `--model`): parsed from and displayed as
/// the names in [`PRESET_NAMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// The seed's BNModel: Linear -> BatchNorm1d -> ReLU blocks.
    Bn,
    /// The same without BatchNorm: Linear -> ReLU.
    Plain,
    /// Plain with Dropout(0.5) after each ReLU.
    Dropout,
    /// Linear -> BatchNorm1d -> ReLU -> Dropout(0.5).
    BnDropout,
    /// Linear -> ReLU -> BatchNorm1d.
    BnAfterRelu,
    /// Two Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d blocks, then a BatchNorm1d MLP head.
    CnnBn,
    /// The CNN without BatchNorm.
    CnnPlain,
}

/// Every preset's name, comma-separated, as the error for an unknown name lists them.
pub const PRESET_NAMES: &str = "bn, plain, dropout, bn-dropout, bn-after-relu, cnn-bn, cnn-plain";

impl FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Preset> {
        Ok(match s {
            "bn" => Preset::Bn,
            "plain" => Preset::Plain,
            "dropout" => Preset::Dropout,
            "bn-dropout" => Preset::BnDropout,
            "bn-after-relu" => Preset::BnAfterRelu,
            "cnn-bn" => Preset::CnnBn,
            "cnn-plain" => Preset::CnnPlain,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown model '{s}' (choose one of: {PRESET_NAMES})"
                )))
            }
        })
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Preset::Bn => "bn",
            Preset::Plain => "plain",
            Preset::Dropout => "dropout",
            Preset::BnDropout => "bn-dropout",
            Preset::BnAfterRelu => "bn-after-relu",
            Preset::CnnBn => "cnn-bn",
            Preset::CnnPlain => "cnn-plain",
        })
    }
}

/// The seed's layer widths: 784-256-128-64-10.
pub const SEED_DIMS: [usize; 5] = [784, 256, 128, 64, 10];

impl Preset {
    /// True for the CNNs, which take (N, C, H, W) images; the MLPs flatten their input.
    pub fn is_cnn(self) -> bool {
        matches!(self, Preset::CnnBn | Preset::CnnPlain)
    }

    /// The model for images of `channels` x `side` x `side` and 10 classes, the MLPs with the
    /// seed's widths.
    pub fn build(
        self,
        params: &mut ParamStore,
        channels: usize,
        side: usize,
        rng: &mut Rng,
    ) -> Result<Net> {
        if self.is_cnn() {
            cnn(params, channels, side, self == Preset::CnnBn, rng)
        } else {
            let mut dims = SEED_DIMS;
            dims[0] = channels * side * side;
            mlp(params, self, &dims, rng)
        }
    }
}

/// An MLP preset with the given widths (input, hidden..., classes): blocks b1, b2, ... and
/// `output`, each block an nn.Sequential as in the seed.
pub fn mlp(params: &mut ParamStore, preset: Preset, dims: &[usize], rng: &mut Rng) -> Result<Net> {
    if dims.len() < 2 {
        return Err(Error::Invalid(format!(
            "an MLP needs at least input and output widths, got {dims:?}"
        )));
    }
    let name = match preset {
        Preset::Bn => "BNModel",
        Preset::Plain => "PlainModel",
        Preset::Dropout => "DropoutModel",
        Preset::BnDropout => "BNDropoutModel",
        Preset::BnAfterRelu => "BNAfterReLUModel",
        _ => return Err(Error::Invalid(format!("'{preset}' is not an MLP preset"))),
    };
    let mut blocks = Vec::new();
    for (k, w) in dims[..dims.len() - 1].windows(2).enumerate() {
        let (i, o) = (w[0], w[1]);
        // the first layer reads the images, mostly exact zeros: its weight is kept as W^T
        // for the sparse kernels (same values, same state dict)
        let linear: Layer = if k == 0 {
            let config = LinearConfig {
                stored_transpose: true,
                ..LinearConfig::new(i, o)
            };
            Linear::with_config(params, config, rng)?.into()
        } else {
            Linear::new(params, i, o, rng)?.into()
        };
        let layers: Vec<Layer> = match preset {
            Preset::Bn => vec![linear, BatchNorm::d1(params, o)?.into(), ReLU.into()],
            Preset::Plain => vec![linear, ReLU.into()],
            Preset::Dropout => vec![linear, ReLU.into(), Dropout::new(0.5)?.into()],
            Preset::BnDropout => vec![
                linear,
                BatchNorm::d1(params, o)?.into(),
                ReLU.into(),
                Dropout::new(0.5)?.into(),
            ],
            _ => vec![linear, ReLU.into(), BatchNorm::d1(params, o)?.into()],
        };
        blocks.push((format!("b{}", k + 1), Sequential::new(layers).into()));
    }
    let n = dims.len();
    blocks.push((
        "output".to_string(),
        Linear::new(params, dims[n - 2], dims[n - 1], rng)?.into(),
    ));
    Ok(Net {
        name: name.to_string(),
        flatten_input: true,
        blocks,
    })
}

/// The cnn-bn preset (or cnn-plain without BatchNorm): b1, b2 = Conv2d(3x3, padding 1) ->
/// BatchNorm2d -> ReLU -> MaxPool2d(2) with 32 and 64 channels; b3 = Flatten -> Linear(64 (side/4)^2,
/// 128) -> BatchNorm1d -> ReLU; output = Linear(128, 10).
pub fn cnn(
    params: &mut ParamStore,
    channels: usize,
    side: usize,
    bn: bool,
    rng: &mut Rng,
) -> Result<Net> {
    let conv_block =
        |params: &mut ParamStore, cin: usize, cout: usize, rng: &mut Rng| -> Result<Layer> {
            let config = Conv2dConfig {
                padding: 1,
                ..Conv2dConfig::new(cin, cout, 3)
            };
            let mut layers: Vec<Layer> = vec![Conv2d::with_config(params, config, rng)?.into()];
            if bn {
                layers.push(BatchNorm::d2(params, cout)?.into());
            }
            layers.extend([ReLU.into(), MaxPool2d::new(2).into()]);
            // the block runs as one op (Sequential::fused): same values, less memory traffic
            Ok(Sequential::fused(layers).into())
        };
    let b1 = conv_block(params, channels, 32, rng)?;
    let b2 = conv_block(params, 32, 64, rng)?;
    let flat = 64 * (side / 4) * (side / 4);
    let mut head: Vec<Layer> = vec![Flatten.into(), Linear::new(params, flat, 128, rng)?.into()];
    if bn {
        head.push(BatchNorm::d1(params, 128)?.into());
    }
    head.push(ReLU.into());
    let output = Linear::new(params, 128, 10, rng)?.into();
    Ok(Net {
        name: if bn { "CNNModel" } else { "CNNPlainModel" }.to_string(),
        flatten_input: false,
        blocks: vec![
            ("b1".into(), b1),
            ("b2".into(), b2),
            ("b3".into(), Sequential::new(head).into()),
            ("output".into(), output),
        ],
    })
}
