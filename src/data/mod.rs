//! Datasets: reading MNIST-format IDX files and CIFAR-10's binary batches, downloading them when
//! missing, and batching them for training.
//!
//! - [`augment`]: torchvision's augmentations for these datasets, drawn from a seeded generator.
//! - [`idx`]: the IDX file format (gzip or raw), strictly validated.
//! - [`cifar`]: CIFAR-10's batch files, and extracting them from the published archive.
//! - [`kind`]: the datasets and splits bnlab knows, their shapes, classes and files (the bottom).
//! - [`dataset`]: [`Dataset`], images kept as bytes.
//! - [`folder`]: finding a dataset's files in a folder and [`load`]ing a split.
//! - [`checksums`]: the known checksums of the files (or archive), and computing them.
//! - [`download`]: fetching missing files from mirrors, atomically and verified.
//! - [`cache`]: the default folder downloads go to.
//! - [`loader`]: epoch order, batches, and gathering a batch as scaled `f32`.
//! - [`nonzeros`]: the images' nonzeros, for a first layer that reads only those.
//! - [`pixels`]: bytes to the floats the models see, shared by `loader` and `nonzeros`.
//!
//! Atomic writes of streamed files (downloads, extracted archives) are in `crate::io::atomic`.

pub mod augment;
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
