//! Files: safetensors reading and writing, and atomic writes.

pub mod atomic;
pub mod safetensors_file;

pub use atomic::write_atomic;
pub use safetensors_file::{
    read_safetensors, read_safetensors_bytes, write_safetensors, StateTensor, TensorFile,
};
