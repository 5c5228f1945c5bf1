//! An image classification dataset held in memory as bytes, and loading a split of MNIST,
//! Fashion-MNIST (IDX files) or CIFAR-10 (binary batches, see [`super::cifar`]) from a folder.
//!
//! Images stay `u8` (47 MB for MNIST's training set instead of 188 MB as `f32`); batches are
//! scaled to `[0, 1]` when gathered (see `loader::gather_batch`), which keeps peak memory low.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::cifar;
use super::idx::{read_idx, shape_str};
use crate::{Error, Result};

/// Which dataset. MNIST and Fashion-MNIST use the same IDX files, names and shapes (1 x 28 x 28);
/// CIFAR-10 has binary batch files of 3 x 32 x 32 colour images. All three have ten classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// Handwritten digits 0-9 (LeCun, Cortes, Burges).
    Mnist,
    /// Zalando's clothing images, a drop-in replacement for MNIST.
    FashionMnist,
    /// Krizhevsky's 32 x 32 colour images of ten classes, in its binary version.
    Cifar10,
}

impl DatasetKind {
    /// Every kind, in the order used in messages.
    pub const ALL: [DatasetKind; 3] = [
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
    ];

    /// Name used on the command line and for cache folders.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }

    /// True for the kinds stored as IDX files (MNIST and Fashion-MNIST).
    pub fn is_idx(self) -> bool {
        matches!(self, DatasetKind::Mnist | DatasetKind::FashionMnist)
    }

    /// `[channels, height, width]` of every image.
    pub fn image_shape(self) -> [usize; 3] {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => [1, 28, 28],
            DatasetKind::Cifar10 => cifar::IMAGE_SHAPE,
        }
    }

    /// The files `split` is read from: for the IDX kinds the image and label stems (each may
    /// also be stored as `<stem>.gz`), for CIFAR-10 the batch file names.
    pub fn split_files(self, split: Split) -> &'static [&'static str] {
        const TRAIN_IDX: [&str; 2] = [Split::Train.images_stem(), Split::Train.labels_stem()];
        const TEST_IDX: [&str; 2] = [Split::Test.images_stem(), Split::Test.labels_stem()];
        match (self.is_idx(), split) {
            (true, Split::Train) => &TRAIN_IDX,
            (true, Split::Test) => &TEST_IDX,
            (false, split) => cifar::split_files(split),
        }
    }

    /// Every file a folder of this dataset must hold (both splits): the four IDX stems of
    /// [`file_stems`] or CIFAR-10's six batch files ([`cifar::FILES`]).
    pub fn files(self) -> &'static [&'static str] {
        const IDX: [&str; 4] = file_stems();
        if self.is_idx() {
            &IDX
        } else {
            &cifar::FILES
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
            DatasetKind::Cifar10 => &cifar::CLASS_NAMES,
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

    /// Accepts the names from [`DatasetKind::name`], ignoring case and treating `_` as `-`,
    /// and `cifar-10` for CIFAR-10.
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        if norm == "cifar-10" {
            return Ok(DatasetKind::Cifar10);
        }
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
    /// The training examples (60,000 for MNIST and Fashion-MNIST, 50,000 for CIFAR-10).
    Train,
    /// The held-out test examples (10,000 for each dataset), used for validation.
    Test,
}

impl Split {
    /// Both splits.
    pub const ALL: [Split; 2] = [Split::Train, Split::Test];

    /// File name of the IDX images, without `.gz` (e.g. `t10k-images-idx3-ubyte`).
    pub const fn images_stem(self) -> &'static str {
        match self {
            Split::Train => "train-images-idx3-ubyte",
            Split::Test => "t10k-images-idx3-ubyte",
        }
    }

    /// File name of the IDX labels, without `.gz`.
    pub const fn labels_stem(self) -> &'static str {
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

/// The four IDX file names (without `.gz`) an MNIST or Fashion-MNIST folder must hold. For any
/// kind, see [`DatasetKind::files`].
pub const fn file_stems() -> [&'static str; 4] {
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
    /// Every image's pixels, `len * item_size()` bytes (0-255), images one after another.
    pub images: Vec<u8>,
    /// One class label per image, in `0..num_classes`.
    pub labels: Vec<u8>,
    /// Number of examples.
    pub len: usize,
    /// Channels per image (1 for MNIST and Fashion-MNIST, 3 for CIFAR-10).
    pub channels: usize,
    /// Rows of pixels per image.
    pub height: usize,
    /// Pixels per row.
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
