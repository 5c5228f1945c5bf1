//! The numerical kernels: each file holds one layer's forward and backward over plain slices,
//! with shapes in comments and the derivation of each gradient written out.
//!
//! Most backward kernels *accumulate* into their gradient outputs (`+=`), as autograd does when
//! a value has several consumers, into a buffer the graph zeroed before its first use. Where a
//! gradient has one producer the graph can skip that zeroing: the kernels that take an
//! `overwrite` flag (or say "overwritten" on their gradient) then write every value with `=`
//! instead: the fused BatchNorm -> ReLU -> MaxPool input gradient (`bn_relu_pool`), and the
//! sparse first layer's weight gradient (`sparse_linear`). Each kernel's comment says which.

pub mod activations;
pub mod avg_pool2d;
pub mod batch_norm;
pub mod bn_relu_pool;
pub mod conv2d;
pub mod dropout;
pub mod elementwise;
pub mod group_norm;
pub mod layer_norm;
pub mod linear;
pub mod loss;
pub mod max_pool2d;
pub mod relu;
pub mod sparse_linear;
