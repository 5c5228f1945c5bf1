//! bnlab: build, train, inspect and compare neural networks with Batch Normalization,
//! with PyTorch's semantics for every layer it has.

#![warn(missing_docs)]

// `#[derive(Module)]` names `::bnlab`, which inside this crate is the crate itself.
extern crate self as bnlab;

pub mod data;
pub mod error;
pub mod experiment;
pub mod figure;
pub mod fold;
pub mod graph;
pub mod html_page;
pub mod internal;
pub mod io;
pub mod model_file;
pub mod nn;
pub mod onnx;
pub mod optim;
pub mod precision;
pub mod predict;
pub mod presets;
pub mod rng;
pub mod runtime;
pub mod state_dict;
pub mod stats;
pub mod summary;
pub mod tensor;
pub mod tensorboard;
pub mod train;

pub use error::{Error, IncompatibleKeys, KeyMismatch, Result};
pub use graph::{BnStats, ConvArgs, Graph, ParamId, ParamStore, Var};
pub use precision::Precision;
pub use rng::Rng;
pub use tensor::Tensor;

// the crate's own code keeps its short paths (`crate::kernels::...`) to the internal modules
pub(crate) use internal::{kernels, matmul};
