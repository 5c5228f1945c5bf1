//! ONNX export: a trained model as an `.onnx` file for onnxruntime and other runtimes.
//!
//! - [`proto`]: the `onnx.proto3` messages used, through prost's derive.
//! - [`export`](mod@export): a [`crate::nn::Net`] in eval mode as a graph (opset [`OPSET`]).

pub mod export;
pub mod proto;

pub use export::{export, OPSET};

use prost::Message;
use std::path::Path;

/// Encode `model` and write it to `path` atomically.
pub fn write(model: &proto::ModelProto, path: &Path) -> crate::Result<()> {
    crate::io::atomic::write_atomic(path, &model.encode_to_vec())
}

/// Read an ONNX file back (as the tests check what was written).
pub fn read(path: &Path) -> crate::Result<proto::ModelProto> {
    let bytes = std::fs::read(path).map_err(|e| crate::Error::io(path, e))?;
    proto::ModelProto::decode(&bytes[..])
        .map_err(|e| crate::Error::bad_file(path, format!("is not an ONNX model ({e})")))
}
