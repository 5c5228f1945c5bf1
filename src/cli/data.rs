//! Where a command's data comes from: --data-dir, the repository's copy of MNIST, or a cache
//! folder that missing files are downloaded into.

use bnlab::data::{self, Dataset, DatasetKind, Split};
use bnlab::{Error, Result};
use std::path::{Path, PathBuf};

/// MNIST as shipped in this repository, so that a fresh clone trains offline.
const BUNDLED_MNIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");

/// The folder to read `kind` from. An explicit --data-dir must hold the files; otherwise the
/// bundled MNIST, else the cache folder (downloading what is missing; the mirror can be set
/// with the dataset's environment variable, e.g. BNLAB_MNIST_MIRROR).
pub fn data_dir(kind: DatasetKind, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        if !dir.is_dir() {
            return Err(Error::Invalid(format!(
                "--data-dir {}: no such folder",
                dir.display()
            )));
        }
        for stem in data::file_stems() {
            data::find_file(dir, stem).map_err(|_| {
                Error::Invalid(format!(
                    "--data-dir {}: {stem}(.gz) is missing",
                    dir.display()
                ))
            })?;
        }
        return Ok(dir.to_path_buf());
    }
    if kind == DatasetKind::Mnist && Path::new(BUNDLED_MNIST).is_dir() {
        return Ok(PathBuf::from(BUNDLED_MNIST));
    }
    let cache = data::default_cache_dir(kind)?;
    let mirror = std::env::var(data::download::mirror_env_var(kind))
        .ok()
        .map(|m| vec![m]);
    data::ensure_available(kind, &cache, mirror.as_deref())
}

pub fn parse_kind(name: &str) -> Result<DatasetKind> {
    name.parse()
        .map_err(|e: Error| Error::Invalid(format!("--dataset: {e}")))
}

/// The training and test sets.
pub fn load_both(kind: DatasetKind, explicit: Option<&Path>) -> Result<(Dataset, Dataset)> {
    let dir = data_dir(kind, explicit)?;
    Ok((
        data::load(kind, Split::Train, &dir)?,
        data::load(kind, Split::Test, &dir)?,
    ))
}

pub fn load_test(kind: DatasetKind, explicit: Option<&Path>) -> Result<Dataset> {
    let dir = data_dir(kind, explicit)?;
    data::load(kind, Split::Test, &dir)
}
