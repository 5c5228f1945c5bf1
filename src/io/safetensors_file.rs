//! Reading and writing safetensors files of float32 and int64 tensors (the dtypes of a PyTorch
//! state dict of these models), with errors that name the file and the key.

use super::write_atomic;
use crate::tensor::Tensor;
use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One tensor of a state dict.
#[derive(Clone, Debug, PartialEq)]
pub enum StateTensor {
    /// A float32 tensor: parameters, running statistics, optimizer state.
    F32(Tensor),
    /// An int64 tensor, such as BatchNorm's `num_batches_tracked` (a scalar, shape `[]`).
    I64 {
        /// Its dimensions (empty for a scalar).
        shape: Vec<usize>,
        /// Its values, row-major.
        data: Vec<i64>,
    },
}

impl StateTensor {
    /// The tensor's dimensions, whatever its dtype.
    pub fn shape(&self) -> &[usize] {
        match self {
            StateTensor::F32(t) => &t.shape,
            StateTensor::I64 { shape, .. } => shape,
        }
    }

    /// The safetensors name of its dtype: `"F32"` or `"I64"`.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            StateTensor::F32(_) => "F32",
            StateTensor::I64 { .. } => "I64",
        }
    }
}

/// The tensors of a file by name, and its metadata.
#[derive(Debug, Default)]
pub struct TensorFile {
    /// Every tensor, by its name in the file (e.g. `b1.0.weight`).
    pub tensors: BTreeMap<String, StateTensor>,
    /// The header's `__metadata__` string map (empty when the file has none); checkpoints keep
    /// their run state here.
    pub metadata: HashMap<String, String>,
}

impl TensorFile {
    /// A float32 tensor by name, or an error naming the file and key.
    pub fn f32(&self, key: &str, path: &Path) -> Result<&Tensor> {
        match self.tensors.get(key) {
            Some(StateTensor::F32(t)) => Ok(t),
            Some(other) => Err(Error::bad_file(
                path,
                format!("tensor '{key}' is {}, expected F32", other.dtype_name()),
            )),
            None => Err(Error::bad_file(path, format!("has no tensor '{key}'"))),
        }
    }

    /// An int64 tensor's values by name.
    pub fn i64(&self, key: &str, path: &Path) -> Result<&[i64]> {
        match self.tensors.get(key) {
            Some(StateTensor::I64 { data, .. }) => Ok(data),
            Some(other) => Err(Error::bad_file(
                path,
                format!("tensor '{key}' is {}, expected I64", other.dtype_name()),
            )),
            None => Err(Error::bad_file(path, format!("has no tensor '{key}'"))),
        }
    }
}

/// Read a safetensors file of F32 and I64 tensors; any other dtype is an error naming the
/// tensor, and every error names the file.
pub fn read_safetensors(path: &Path) -> Result<TensorFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_safetensors_bytes(&bytes, path)
}

/// Parse a safetensors buffer; `path` only names the source in errors.
pub fn read_safetensors_bytes(bytes: &[u8], path: &Path) -> Result<TensorFile> {
    let bad = |msg: String| Error::bad_file(path, msg);
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("bad safetensors header ({e})")))?;
    let mut out = TensorFile {
        metadata: meta.metadata().clone().unwrap_or_default(),
        ..Default::default()
    };
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let t = match view.dtype() {
            Dtype::F32 => StateTensor::F32(Tensor {
                shape,
                data: data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            }),
            Dtype::I64 => StateTensor::I64 {
                shape,
                data: data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8-byte chunk")))
                    .collect(),
            },
            other => {
                return Err(bad(format!(
                    "tensor '{name}' has dtype {other:?}; bnlab reads F32 and I64"
                )))
            }
        };
        out.tensors.insert(name, t);
    }
    Ok(out)
}

/// Write tensors (in the given order) with metadata, atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, StateTensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let b = match t {
                StateTensor::F32(t) => t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                StateTensor::I64 { data, .. } => {
                    data.iter().flat_map(|v| v.to_le_bytes()).collect()
                }
            };
            (name.clone(), b)
        })
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, t), (_, b)) in tensors.iter().zip(&bytes) {
        let dtype = match t {
            StateTensor::F32(_) => Dtype::F32,
            StateTensor::I64 { .. } => Dtype::I64,
        };
        let view = TensorView::new(dtype, t.shape().to_vec(), b)
            .map_err(|e| Error::Invalid(format!("tensor '{name}': {e}")))?;
        views.push((name.clone(), view));
    }
    let meta = (!metadata.is_empty()).then(|| metadata.clone());
    let out = safetensors::tensor::serialize(views, &meta)
        .map_err(|e| Error::bad_file(path, format!("cannot serialise ({e})")))?;
    write_atomic(path, &out)
}
