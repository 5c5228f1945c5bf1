//! A dataset's files in a folder: finding them (IDX files plain or gzipped, CIFAR-10's batches
//! in the folder or the archive's subfolder) and loading a split, MNIST and Fashion-MNIST from
//! IDX files ([`super::idx`]), CIFAR-10 from its batches ([`super::cifar`]).

use std::path::{Path, PathBuf};

use super::cifar;
use super::dataset::{Dataset, DatasetKind, Split};
use super::idx::{read_idx, shape_str};
use crate::{Error, Result};

/// Finds `stem` in `dir`, raw or gzip. Prefers the raw file when both exist, since it loads
/// without decompression (the reader detects gzip by content either way).
pub fn find_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    let raw = dir.join(stem);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{stem}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(Error::io(
        raw,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("not found (looked for {stem} and {stem}.gz)"),
        ),
    ))
}

/// Finds the file `name` of `kind` in `dir`: for the IDX kinds `name` is a stem found raw or
/// gzip ([`find_file`]), for CIFAR-10 a batch file found in `dir` or its `cifar-10-batches-bin`
/// subfolder ([`cifar::find_file`]). The error names the path looked for.
pub fn find_data_file(kind: DatasetKind, dir: &Path, name: &str) -> Result<PathBuf> {
    if kind.is_idx() {
        find_file(dir, name)
    } else {
        cifar::find_file(dir, name)
    }
}

/// The files of [`DatasetKind::files`] that `dir` lacks (empty when it holds them all).
pub fn missing_files(kind: DatasetKind, dir: &Path) -> Vec<&'static str> {
    kind.files()
        .iter()
        .copied()
        .filter(|name| find_data_file(kind, dir, name).is_err())
        .collect()
}

/// Loads one split of `kind` from `dir`.
///
/// MNIST and Fashion-MNIST: IDX files (gzip or raw), checking that images are `N x H x W`,
/// labels are `N`, the counts agree and every label is a valid class. CIFAR-10: the split's
/// batch files (see [`cifar::load_split`]), checking every file's size and every label.
pub fn load(kind: DatasetKind, split: Split, dir: &Path) -> Result<Dataset> {
    if kind == DatasetKind::Cifar10 {
        return cifar::load_split(split, dir);
    }
    let images_path = find_file(dir, split.images_stem())?;
    let labels_path = find_file(dir, split.labels_stem())?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;

    let [n, height, width] = images.dims[..] else {
        return Err(Error::bad_file(
            &images_path,
            format!(
                "wrong number of dimensions for images: {} ({}), expected 3 (count x height x width)",
                images.dims.len(),
                shape_str(&images.dims)
            ),
        ));
    };
    let [n_labels] = labels.dims[..] else {
        return Err(Error::bad_file(
            &labels_path,
            format!(
                "wrong number of dimensions for labels: {} ({}), expected 1",
                labels.dims.len(),
                shape_str(&labels.dims)
            ),
        ));
    };
    if n != n_labels {
        return Err(Error::bad_file(
            &labels_path,
            format!(
                "{n_labels} labels but {} holds {n} images",
                images_path.display()
            ),
        ));
    }
    let num_classes = kind.num_classes();
    if let Some((i, &l)) = labels
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= num_classes)
    {
        return Err(Error::bad_file(
            &labels_path,
            format!("label {l} at index {i} is out of range for {kind} ({num_classes} classes)"),
        ));
    }
    // the labels were checked above, with the file named; `new` checks the sizes again
    Dataset::new(images.data, labels.data, [1, height, width], num_classes)
}
