//! An image classification dataset held in memory as bytes, and loading MNIST-format splits
//! from a folder.
//!
//! Images stay `u8` (47 MB for MNIST's training set instead of 188 MB as `f32`); batches are
//! scaled to `[0, 1]` when gathered (see `loader::gather_batch`), which keeps peak memory low.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::idx::{read_idx, shape_str};
use crate::{Error, Result};

/// Which dataset. Both use the same IDX files, names, shapes and ten classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// Handwritten digits 0-9 (LeCun, Cortes, Burges).
    Mnist,
    /// Zalando's clothing images, a drop-in replacement for MNIST.
    FashionMnist,
}

impl DatasetKind {
    /// Every kind, in the order used in messages.
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Mnist, DatasetKind::FashionMnist];

    /// Name used on the command line and for cache folders.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// Number of classes (labels are `0..num_classes`).
    pub fn num_classes(self) -> usize {
        self.class_names().len()
    }

    /// Human-readable class names, indexed by label.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Mnist => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => &[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = Error;

    /// Accepts the names from [`DatasetKind::name`], ignoring case and treating `_` as `-`.
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        DatasetKind::ALL
            .into_iter()
            .find(|k| k.name() == norm)
            .ok_or_else(|| {
                let valid: Vec<&str> = DatasetKind::ALL.iter().map(|k| k.name()).collect();
                Error::Invalid(format!(
                    "unknown dataset '{s}'; valid datasets: {}",
                    valid.join(", ")
                ))
            })
    }
}

/// The training or the test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    /// Both splits.
    pub const ALL: [Split; 2] = [Split::Train, Split::Test];

    /// File name of the images, without `.gz` (e.g. `t10k-images-idx3-ubyte`).
    pub fn images_stem(self) -> &'static str {
        match self {
            Split::Train => "train-images-idx3-ubyte",
            Split::Test => "t10k-images-idx3-ubyte",
        }
    }

    /// File name of the labels, without `.gz`.
    pub fn labels_stem(self) -> &'static str {
        match self {
            Split::Train => "train-labels-idx1-ubyte",
            Split::Test => "t10k-labels-idx1-ubyte",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

impl FromStr for Split {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" | "t10k" => Ok(Split::Test),
            _ => Err(Error::Invalid(format!(
                "unknown split '{s}'; valid splits: train, test"
            ))),
        }
    }
}

/// The four file names (without `.gz`) a dataset folder must hold.
pub fn file_stems() -> [&'static str; 4] {
    [
        Split::Train.images_stem(),
        Split::Train.labels_stem(),
        Split::Test.images_stem(),
        Split::Test.labels_stem(),
    ]
}

/// Images and labels of one split, in memory.
///
/// Image `i` is `images[i * item_size() .. (i + 1) * item_size()]`, row-major `C x H x W` bytes.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    /// Number of examples.
    pub len: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Labels are in `0..num_classes`.
    pub num_classes: usize,
    /// The nonzero pixels of each image, found on first use (see [`Dataset::nonzeros`]).
    nonzeros: std::sync::OnceLock<super::nonzeros::Nonzeros>,
}

impl PartialEq for Dataset {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.images,
            &self.labels,
            self.len,
            self.channels,
            self.height,
            self.width,
            self.num_classes,
        ) == (
            &other.images,
            &other.labels,
            other.len,
            other.channels,
            other.height,
            other.width,
            other.num_classes,
        )
    }
}

impl Eq for Dataset {}

impl Dataset {
    /// The nonzero pixels of every image, computed on first use and kept: the sparse input of
    /// a model's first Linear layer. (Change `images` only before the first call.)
    pub fn nonzeros(&self) -> &super::nonzeros::Nonzeros {
        self.nonzeros
            .get_or_init(|| super::nonzeros::Nonzeros::new(&self.images, self.item_size()))
    }

    /// Builds a dataset from parts, checking that the sizes agree and every label is in range
    /// (so synthetic datasets in tests get the same guarantees as loaded ones).
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        [channels, height, width]: [usize; 3],
        num_classes: usize,
    ) -> Result<Self> {
        let len = labels.len();
        let need = [channels, height, width]
            .iter()
            .try_fold(len, |acc, &d| acc.checked_mul(d));
        if need != Some(images.len()) {
            return Err(Error::Invalid(format!(
                "dataset: {} image bytes do not fit {len} labels of {channels}x{height}x{width} \
                 images",
                images.len()
            )));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= num_classes)
        {
            return Err(Error::Invalid(format!(
                "dataset: label {l} at index {i} is out of range for {num_classes} classes"
            )));
        }
        Ok(Dataset {
            images,
            labels,
            len,
            channels,
            height,
            width,
            num_classes,
            nonzeros: Default::default(),
        })
    }

    /// Bytes per image (`channels * height * width`).
    pub fn item_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The bytes of image `i`. Panics if `i >= len`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.item_size();
        &self.images[i * n..(i + 1) * n]
    }

    /// True when the dataset holds no examples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

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

/// Loads one split from a folder holding MNIST-format IDX files (gzip or raw), checking that
/// images are `N x H x W`, labels are `N`, the counts agree and every label is a valid class.
pub fn load(kind: DatasetKind, split: Split, dir: &Path) -> Result<Dataset> {
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
    Ok(Dataset {
        images: images.data,
        labels: labels.data,
        len: n,
        channels: 1,
        height,
        width,
        num_classes,
        nonzeros: Default::default(),
    })
}
