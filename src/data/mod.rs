//! Datasets: reading MNIST-format IDX files and CIFAR-10's binary batches, downloading them when
//! missing, and batching them for training.
//!
//! What a user reaches, all through this module's flat names:
//! - [`Dataset`] (images kept as bytes) and [`load`] for a split of a [`DatasetKind`] from a
//!   folder; [`read_idx`] / [`parse_idx`] for the IDX format (gzip or raw), strictly validated;
//! - [`Loader`] and [`gather_batch`]: epoch order, batches, and a batch as scaled `f32`;
//! - [`ensure_available`] and [`verify`]: fetching missing files from mirrors, atomically and
//!   verified against [`Checksum`]s, into [`default_cache_dir`] by default;
//! - [`augment`]: torchvision's augmentations for these datasets, drawn from a seeded generator;
//! - [`mnist`] (and [`mnist_dir`]): MNIST without a folder to name: the crate's own copy
//!   ([`BUNDLED_MNIST`]), else the cache folder;
//! - [`table`]: the tabular (CSV) datasets and their standardisation;
//! - [`cifar`], [`checksums`], [`download`]: CIFAR-10's batch files and archive, the known
//!   checksums, and the mirrors, for tests and tools that need their details.
//!
//! Inside, one file per job: `kind` (the datasets and splits bnlab knows: the bottom), `dataset`,
//! `idx`, `folder`, `cache`, `loader`, `nonzeros` (the images' nonzeros, for a first layer that
//! reads only those) and `pixels` (bytes to the floats the models see).
//!
//! Atomic writes of streamed files (downloads, extracted archives) are in `crate::io::atomic`.

pub mod augment;
mod bundled;
pub(crate) mod cache;
pub mod checksums;
pub mod cifar;
pub(crate) mod dataset;
pub mod download;
pub(crate) mod folder;
pub(crate) mod idx;
pub(crate) mod kind;
pub(crate) mod loader;
pub(crate) mod nonzeros;
pub(crate) mod pixels;
pub mod table;

pub use bundled::{mnist, mnist_dir, BUNDLED_MNIST};
pub use cache::default_cache_dir;
pub use checksums::Checksum;
pub use dataset::Dataset;
pub use download::{
    default_mirrors, download_file, ensure_available, ensure_available_with, verify,
};
pub use folder::{find_data_file, find_file, load, missing_files};
pub use idx::{parse_idx, read_idx, Idx};
pub use kind::{file_stems, DatasetKind, Split};
pub use loader::{gather_batch, Loader};
