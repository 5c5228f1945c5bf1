//! An image classification dataset held in memory as bytes.
//!
//! Images stay `u8` (47 MB for MNIST's training set instead of 188 MB as `f32`); batches are
//! scaled to `[0, 1]` when gathered (see `loader::gather_batch`), which keeps peak memory low.

pub(super) use super::kind::{DatasetKind, Split};
use crate::{Error, Result};

/// Images (or a table's rows) and labels of one split, in memory.
///
/// Image `i` is `images[i * item_size() .. (i + 1) * item_size()]`, row-major `C x H x W` bytes.
/// A table ([`Dataset::tabular`]) holds its rows as floats in `features` instead, one row of
/// `width` values per example (`channels` and `height` are 1), and its batches are (N, width).
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
    /// A table's rows, `len * width` floats, already standardised; empty for images.
    pub features: Vec<f32>,
    /// The nonzero pixels of each image, found on first use (see [`Dataset::nonzeros`]).
    nonzeros: std::sync::OnceLock<super::nonzeros::Nonzeros>,
}

impl PartialEq for Dataset {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.images,
            &self.features,
            &self.labels,
            self.len,
            self.channels,
            self.height,
            self.width,
            self.num_classes,
        ) == (
            &other.images,
            &other.features,
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
            features: Vec::new(),
            labels,
            len,
            channels,
            height,
            width,
            num_classes,
            nonzeros: Default::default(),
        })
    }

    /// A table as a dataset: `features` holds `labels.len()` rows of `width` floats.
    pub fn tabular(
        features: Vec<f32>,
        labels: Vec<u8>,
        width: usize,
        num_classes: usize,
    ) -> Result<Self> {
        if Some(features.len()) != labels.len().checked_mul(width) || width == 0 {
            return Err(Error::Invalid(format!(
                "dataset: {} values do not fit {} rows of {width} features",
                features.len(),
                labels.len()
            )));
        }
        if labels.is_empty() {
            return Err(Error::Invalid("dataset: a table with no rows".into()));
        }
        let mut ds = Dataset::new(Vec::new(), labels, [0, 1, 1], num_classes)?;
        ds.features = features;
        (ds.channels, ds.width) = (1, width);
        Ok(ds)
    }

    /// Whether [`Dataset::nonzeros`] can give a batch's nonzeros: an image dataset's are
    /// found once and kept; a table's float rows are not indexed.
    pub fn indexes_nonzeros(&self) -> bool {
        !self.is_tabular()
    }

    /// True for a table ([`Dataset::tabular`]): batches are (N, width) floats.
    pub fn is_tabular(&self) -> bool {
        !self.features.is_empty()
    }

    /// The shape of a batch of `n` examples: (n, C, H, W) images, or (n, width) rows.
    pub fn batch_shape(&self, n: usize) -> Vec<usize> {
        if self.is_tabular() {
            vec![n, self.width]
        } else {
            vec![n, self.channels, self.height, self.width]
        }
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
