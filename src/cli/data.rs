//! Where a command's data comes from: --data-dir, the repository's copy of MNIST, or a cache
//! folder that missing files are downloaded into.

use bnlab::data::{self, Dataset, DatasetKind, Split};
use bnlab::{Error, Result};
use std::path::{Path, PathBuf};

/// MNIST as shipped in this repository, so that a fresh clone trains offline.
const BUNDLED_MNIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");

/// The folder to read `kind` from. An explicit --data-dir must hold the files (for CIFAR-10,
/// directly or in its `cifar-10-batches-bin` subfolder); otherwise the bundled MNIST, else the
/// cache folder (downloading what is missing; the mirrors can be set with the dataset's
/// environment variable, e.g. BNLAB_MNIST_MIRROR or BNLAB_CIFAR10_MIRROR).
pub fn data_dir(kind: DatasetKind, explicit: Option<&Path>, splits: &[Split]) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        if !dir.is_dir() {
            return Err(Error::Invalid(format!(
                "--data-dir {}: no such folder",
                dir.display()
            )));
        }
        // only the files of the splits this command reads (eval needs no training set)
        let wanted: Vec<&str> = splits
            .iter()
            .flat_map(|&s| kind.split_files(s).iter().copied())
            .collect();
        let missing: Vec<&str> = data::missing_files(kind, dir)
            .into_iter()
            .filter(|f| wanted.contains(f))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Invalid(missing_message(kind, dir, &missing)));
        }
        return Ok(dir.to_path_buf());
    }
    if kind == DatasetKind::Mnist && Path::new(BUNDLED_MNIST).is_dir() {
        return Ok(PathBuf::from(BUNDLED_MNIST));
    }
    let cache = data::default_cache_dir(kind)?;
    if !data::missing_files(kind, &cache).is_empty() {
        // the library prints nothing; a download can take a while, so say what is happening
        eprintln!(
            "Downloading {kind} into {} (checked by checksum)...",
            cache.display()
        );
    }
    // No mirrors given: the library reads the dataset's mirror variable, else its built-in list.
    data::ensure_available(kind, &cache, None)
}

/// `--data-dir DIR: train-images-idx3-ubyte(.gz) is missing`, naming every missing file.
fn missing_message(kind: DatasetKind, dir: &Path, missing: &[&str]) -> String {
    let names: Vec<String> = missing
        .iter()
        .map(|name| {
            if kind.is_idx() {
                format!("{name}(.gz)")
            } else {
                name.to_string()
            }
        })
        .collect();
    let verb = if names.len() == 1 { "is" } else { "are" };
    let mut msg = format!(
        "--data-dir {}: {} {verb} missing",
        dir.display(),
        names.join(", ")
    );
    if !kind.is_idx() {
        msg.push_str(&format!(
            " (looked in the folder and its {} subfolder)",
            data::cifar::SUBDIR
        ));
    }
    msg
}

pub fn parse_kind(name: &str) -> Result<DatasetKind> {
    name.parse()
        .map_err(|e: Error| Error::Invalid(format!("--dataset: {e}")))
}

/// The training and test sets.
pub fn load_both(kind: DatasetKind, explicit: Option<&Path>) -> Result<(Dataset, Dataset)> {
    let dir = data_dir(kind, explicit, &[Split::Train, Split::Test])?;
    Ok((
        data::load(kind, Split::Train, &dir)?,
        data::load(kind, Split::Test, &dir)?,
    ))
}

pub fn load_test(kind: DatasetKind, explicit: Option<&Path>) -> Result<Dataset> {
    let dir = data_dir(kind, explicit, &[Split::Test])?;
    data::load(kind, Split::Test, &dir)
}
