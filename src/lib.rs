//! bnlab: build, train, inspect and compare neural networks with Batch Normalization,
//! with PyTorch's semantics for every layer it has.

pub mod data;
pub mod error;

pub use error::{Error, Result};
pub mod graph;
pub mod io;
pub mod kernels;
pub mod nn;
pub mod optim;
pub mod presets;
pub mod matmul;
pub mod rng;
pub mod state_dict;
pub mod tensor;

pub use graph::{BnStats, Graph, ParamId, ParamStore, Var};
pub use rng::Rng;
pub use tensor::Tensor;
