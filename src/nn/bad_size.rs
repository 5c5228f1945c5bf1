//! The error of a layer built with a size of zero, one wording for every layer: the model-file
//! parser refuses such sizes in a file, and this refuses them from code, where a zero would
//! otherwise reach the kernels (a zero-width band of rows, a chunk of zero values) and panic.

use crate::{Error, Result};

/// Ok when every named size is at least 1, else "Linear: out_features=0 must be at least 1"
/// for the first that is not.
pub(crate) fn sizes_at_least_one(type_name: &str, sizes: &[(&str, usize)]) -> Result<()> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some((name, v)) => Err(Error::Invalid(format!(
            "{type_name}: {name}={v} must be at least 1"
        ))),
        None => Ok(()),
    }
}
