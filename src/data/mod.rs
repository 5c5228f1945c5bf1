//! Datasets: reading MNIST-format IDX files, downloading them when missing, and batching them
//! for training.
//!
//! - [`idx`]: the IDX file format (gzip or raw), strictly validated.
//! - [`dataset`]: [`Dataset`] (images kept as bytes) and [`load`]ing a split from a folder.
//! - [`checksums`]: the known SHA-256 of every file, and computing them.
//! - [`download`]: fetching missing files from mirrors, atomically and verified.
//! - [`cache`]: the default folder downloads go to.
//! - [`loader`]: epoch order, batches, and gathering a batch as scaled `f32`.

pub mod cache;
pub mod checksums;
pub mod dataset;
pub mod download;
pub mod idx;
pub mod loader;
pub mod nonzeros;

pub use cache::default_cache_dir;
pub use checksums::Checksum;
pub use dataset::{file_stems, find_file, load, Dataset, DatasetKind, Split};
pub use download::{default_mirrors, download_file, ensure_available, verify};
pub use idx::{parse_idx, read_idx, Idx};
pub use loader::{gather_batch, Loader};
