//! `bnlab experiment`: the papers' experiments on BatchNorm, one command each, deterministic
//! at a seed, each writing `results.json`, PNG figures and a self-contained HTML report.
//!
//! - [`ioffe2015`]: Figure 1 of Ioffe and Szegedy (2015), sigmoid MLP with and without BN;
//! - [`lr_sweep`]: final accuracy against learning rate, with and without BN (their §3.3);
//! - [`batch_size`]: BN against GroupNorm, LayerNorm and none at batches of 2 to 256 (Wu and
//!   He 2018, Figure 1), and BN's train/eval gap at small batches;
//! - [`placement`]: BN before or after the activation, with Dropout, and the variance shift
//!   Dropout before BN causes (Li et al. 2019);
//! - [`smoothness`]: Santurkar et al. (2018), Figure 4: the loss and gradient along the
//!   gradient, with and without BN and with noisy BN.
//!
//! Each is a [`Design`]: runs repeated over seeds (`--seeds`, summarised by [`seeds`] with
//! [`statistics`]), which can be spread over a job array and merged ([`shard`]).

pub mod batch_size;
pub mod design;
pub mod ioffe2015;
pub mod lr_sweep;
pub mod models;
pub mod named;
mod outcome;
mod page;
pub mod parallel;
pub mod placement;
pub mod seeds;
pub mod shard;
pub mod smoothness;
pub mod statistics;
pub mod steps;
mod write;

pub use design::{run_design, Design};
pub use outcome::{Outcome, Table, REPORT, RESULTS};
pub use steps::{train_steps, Ended};
