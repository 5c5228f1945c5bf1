//! The error of a layer that cannot take an input shape, one wording for every layer. Its own
//! module so that the layers (which use it) and `layer` (which holds the layers) do not import
//! each other.

use crate::Error;

/// The error of a layer that cannot take an input shape: "Conv2d: input [3, 4] must be ...".
pub(crate) fn bad_input(type_name: &str, input: &[usize], why: &str) -> Error {
    Error::Shape(format!("{type_name}: input {input:?} {why}"))
}
