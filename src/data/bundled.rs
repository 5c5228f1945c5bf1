//! MNIST for a program of your own, without naming a folder: the copy shipped in this crate's
//! source, else the cache folder (the files downloaded there when missing, with the `download`
//! feature).

use super::{
    default_cache_dir, ensure_available, load, missing_files, Dataset, DatasetKind, Split,
};
use crate::Result;
use std::path::{Path, PathBuf};

/// The crate's own copy of MNIST (`data/mnist` in its source), found through the path the crate
/// was compiled from. A program (the `bnlab` command included) finds it as long as that source
/// stays where it was compiled; when it is gone, [`mnist_dir`] falls back to the cache folder.
pub const BUNDLED_MNIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");

/// The folder MNIST is read from: [`BUNDLED_MNIST`] when it holds the files, else the cache
/// folder ([`default_cache_dir`]), where missing files are downloaded and checked (an error
/// naming the folder without the `download` feature).
pub fn mnist_dir() -> Result<PathBuf> {
    let bundled = Path::new(BUNDLED_MNIST);
    if bundled.is_dir() && missing_files(DatasetKind::Mnist, bundled).is_empty() {
        return Ok(bundled.to_path_buf());
    }
    let cache = default_cache_dir(DatasetKind::Mnist)?;
    ensure_available(DatasetKind::Mnist, &cache, None)
}

/// One split of MNIST, from [`mnist_dir`]: `bnlab::data::mnist(Split::Train)`.
pub fn mnist(split: Split) -> Result<Dataset> {
    load(DatasetKind::Mnist, split, &mnist_dir()?)
}
