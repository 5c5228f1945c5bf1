//! The numerical kernels: each file holds one layer's forward and backward over plain slices,
//! with shapes in comments and the derivation of each gradient written out. Backward kernels
//! *accumulate* into their gradient outputs (`+=`), as autograd does when a value has several
//! consumers; the graph zeroes a gradient buffer before its first use.

pub mod batch_norm;
pub mod bn_relu_pool;
pub mod conv2d;
pub mod dropout;
pub mod elementwise;
pub mod linear;
pub mod loss;
pub mod max_pool2d;
pub mod relu;
pub mod sparse_linear;
