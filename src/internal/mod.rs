//! Internal building blocks, public only so that the `bnlab` command, the benchmarks and the
//! fuzz targets can reach them. They are not part of the library's API: names and signatures
//! change whenever the kernels do, without notice.
//!
//! - [`kernels`]: each layer's forward and backward over plain slices (the graph calls them);
//! - [`matmul`]: the checked interface to the `gemm` crate's matrix products;
//! - [`bf16`]: the bfloat16 products of `--precision bf16`, their CPU kernels and their oracle;
//! - [`product`]: the one branch from a layer's product to [`matmul`] or [`bf16`], by the
//!   graph's [`crate::Precision`];
//! - [`aligned`]: float buffers that start on a cache line (the parameters live in them);
//! - [`alloc_tuning`]: the process-wide allocator settings the command applies at start;
//! - [`tensor_fmt`]: PyTorch's tensor printing, behind `Tensor`'s `Display` and the demo.
//!
//! A program using bnlab builds with [`crate::nn`], [`crate::graph`], [`crate::optim`],
//! [`crate::train`], [`crate::data`] and [`crate::state_dict`] instead.

pub mod aligned;
pub mod alloc_tuning;
pub mod bf16;
pub mod kernels;
pub mod matmul;
pub mod product;
pub mod tensor_fmt;
