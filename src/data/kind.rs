//! The datasets bnlab knows and their splits: names, image shapes, class names, and the files
//! each is stored in. The bottom of `data`: it imports nothing from the rest of it.

use std::fmt;
use std::str::FromStr;

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
            DatasetKind::Cifar10 => cifar10::IMAGE_SHAPE,
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
            (false, split) => cifar10::split_files(split),
        }
    }

    /// Every file a folder of this dataset must hold (both splits): the four IDX stems of
    /// [`file_stems`] or CIFAR-10's six batch files ([`cifar10::FILES`]).
    pub fn files(self) -> &'static [&'static str] {
        const IDX: [&str; 4] = file_stems();
        if self.is_idx() {
            &IDX
        } else {
            &cifar10::FILES
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
            DatasetKind::Cifar10 => &cifar10::CLASS_NAMES,
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

/// CIFAR-10's facts that the dataset kinds need (its format is read in `data::cifar`).
pub mod cifar10 {
    use super::Split;

    /// `[channels, height, width]` of every image.
    pub const IMAGE_SHAPE: [usize; 3] = [3, 32, 32];

    /// Number of classes; labels are `0..NUM_CLASSES`.
    pub const NUM_CLASSES: usize = 10;

    /// Class names, indexed by label (`batches.meta.txt` of the archive).
    pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];

    /// The training batches, in order.
    pub const TRAIN_FILES: [&str; 5] = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ];

    /// The test batch.
    pub const TEST_FILES: [&str; 1] = ["test_batch.bin"];

    /// Every batch file (training, then test).
    pub const FILES: [&str; 6] = [
        TRAIN_FILES[0],
        TRAIN_FILES[1],
        TRAIN_FILES[2],
        TRAIN_FILES[3],
        TRAIN_FILES[4],
        TEST_FILES[0],
    ];

    /// The batch files of `split`.
    pub fn split_files(split: Split) -> &'static [&'static str] {
        match split {
            Split::Train => &TRAIN_FILES,
            Split::Test => &TEST_FILES,
        }
    }
}
