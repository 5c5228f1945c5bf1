//! State dicts: a model's parameters and buffers by PyTorch's names, saved as safetensors so
//! that `model.load_state_dict(safetensors.torch.load_file(path))` works in PyTorch, and back.

use crate::graph::ParamStore;
use crate::io::{read_safetensors, write_safetensors, StateTensor};
use crate::nn::{visit_state, visit_state_mut, Module, StateRef, StateView};
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Every parameter and buffer of `model`, in PyTorch's order and with its names and dtypes
/// (num_batches_tracked is int64).
pub fn state_dict(model: &dyn Module, params: &ParamStore) -> Vec<(String, StateTensor)> {
    let mut out = Vec::new();
    visit_state(model, "", &mut |name, entry| {
        let t = match entry {
            StateView::Param(id) => StateTensor::F32(Tensor {
                shape: params.torch_shape(id),
                data: params.to_torch_layout(id, params.value(id)).into_owned(),
            }),
            StateView::Buffer(t) => StateTensor::F32(t.clone()),
            StateView::Counter(c) => StateTensor::I64 {
                shape: vec![],
                data: vec![c],
            },
        };
        out.push((name.to_string(), t));
    });
    out
}

/// Load a state dict strictly (PyTorch's `strict=True`): every key of the model must be present
/// with its shape and dtype, and no other key. Nothing is changed unless everything fits.
/// `prefix` selects keys that start with it (e.g. "init." in the golden files); "" takes all.
pub fn load_state_dict(
    model: &mut dyn Module,
    params: &mut ParamStore,
    tensors: &BTreeMap<String, StateTensor>,
    prefix: &str,
) -> Result<()> {
    let wanted: BTreeMap<&str, &StateTensor> = tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k, v)))
        .collect();
    // First pass: check every key.
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    visit_state(model, "", &mut |name, entry| {
        seen.push(name.to_string());
        let (want_shape, want_dtype) = match &entry {
            StateView::Param(id) => (params.torch_shape(*id), "F32"),
            StateView::Buffer(t) => (t.shape.clone(), "F32"),
            StateView::Counter(_) => (vec![], "I64"),
        };
        match wanted.get(name) {
            None => problems.push(format!(
                "missing key '{prefix}{name}' (shape {want_shape:?})"
            )),
            Some(t) if t.dtype_name() != want_dtype => problems.push(format!(
                "key '{prefix}{name}' has dtype {}, the model needs {want_dtype}",
                t.dtype_name()
            )),
            Some(t) if t.shape() != want_shape.as_slice() => problems.push(format!(
                "key '{prefix}{name}' has shape {:?}, the model needs {want_shape:?}",
                t.shape()
            )),
            Some(_) => {}
        }
    });
    for k in wanted.keys() {
        if !seen.iter().any(|s| s == k) {
            problems.push(format!("unexpected key '{prefix}{k}'"));
        }
    }
    if !problems.is_empty() {
        return Err(Error::StateDict(problems.join("; ")));
    }
    // Second pass: copy.
    visit_state_mut(model, "", &mut |name, entry| match (entry, wanted[name]) {
        (StateRef::Param(id), StateTensor::F32(t)) => {
            let stored = params.from_torch_layout(id, &t.data).into_owned();
            params.value_mut(id).copy_from_slice(&stored)
        }
        (StateRef::Buffer(b), StateTensor::F32(t)) => b.data.copy_from_slice(&t.data),
        (StateRef::Counter(c), StateTensor::I64 { data, .. }) => *c = data[0],
        _ => unreachable!("dtypes were checked above"),
    });
    Ok(())
}

/// Save a model's state dict as safetensors, atomically.
pub fn save(model: &dyn Module, params: &ParamStore, path: &Path) -> Result<()> {
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(path, &state_dict(model, params), &meta)
}

/// Load a model's state dict from a safetensors file; errors name the file and the key.
pub fn load(model: &mut dyn Module, params: &mut ParamStore, path: &Path) -> Result<()> {
    let file = read_safetensors(path)?;
    load_state_dict(model, params, &file.tensors, "")
        .map_err(|e| Error::bad_file(path, e.to_string()))
}
