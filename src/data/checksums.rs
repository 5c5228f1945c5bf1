//! Known checksums of the dataset files, and computing them.
//!
//! MNIST's hashes cover the *decompressed* IDX bytes: mirrors (and `../shared/data/mnist`) hold
//! differently compressed `.gz` files with the same content, so only the content hash holds for
//! all of them. For Fashion-MNIST only the hashes of the published `.gz` files are known (see
//! [`Checksum::Gz`]), so a Fashion-MNIST mirror must serve byte-identical files. For CIFAR-10
//! only the MD5 of the published archive is known (see [`Checksum::Md5`]); the `.bin` files
//! extracted from it have no published checksum.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::cifar;
use super::dataset::DatasetKind;
use super::idx::GZIP_MAGIC;
use crate::{Error, Result};

/// An expected hash (hex) and what it covers.
///
/// The hash is a `Cow` so the built-in table needs no allocation while callers (tests, or a
/// private mirror with files of its own) can pass hashes computed at run time, e.g.
/// `Checksum::md5(format!(...))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// SHA-256 of the decompressed IDX bytes (the file is decompressed first if it is gzip).
    Idx(Cow<'static, str>),
    /// SHA-256 of the file's bytes as stored, i.e. of the `.gz` file as published.
    Gz(Cow<'static, str>),
    /// MD5 of the file's bytes as stored: what the CIFAR-10 authors publish for their archive.
    Md5(Cow<'static, str>),
}

impl Checksum {
    /// [`Checksum::Idx`] of a hash given as `&'static str` or `String`.
    pub fn idx(hex: impl Into<Cow<'static, str>>) -> Self {
        Checksum::Idx(hex.into())
    }

    /// [`Checksum::Gz`] of a hash given as `&'static str` or `String`.
    pub fn gz(hex: impl Into<Cow<'static, str>>) -> Self {
        Checksum::Gz(hex.into())
    }

    /// [`Checksum::Md5`] of a hash given as `&'static str` or `String`.
    pub fn md5(hex: impl Into<Cow<'static, str>>) -> Self {
        Checksum::Md5(hex.into())
    }

    /// The expected hash, hex.
    pub fn hex(&self) -> &str {
        match self {
            Checksum::Idx(h) | Checksum::Gz(h) | Checksum::Md5(h) => h,
        }
    }

    /// Short description of what is hashed, for messages.
    pub fn what(&self) -> &'static str {
        match self {
            Checksum::Idx(_) => "SHA-256 of the decompressed IDX bytes",
            Checksum::Gz(_) => "SHA-256 of the .gz file",
            Checksum::Md5(_) => "MD5 of the file",
        }
    }

    /// Computes this kind of hash of the file at `path` (lowercase hex).
    pub fn compute(&self, path: &Path) -> Result<String> {
        match self {
            Checksum::Idx(_) => sha256_idx(path),
            Checksum::Gz(_) => sha256_file(path),
            Checksum::Md5(_) => md5_file(path),
        }
    }

    /// True when `actual` (as from [`Checksum::compute`]) is the expected hash, ignoring the
    /// case of the hex digits.
    pub fn matches(&self, actual: &str) -> bool {
        actual.eq_ignore_ascii_case(self.hex())
    }
}

const fn idx(hex: &'static str) -> Checksum {
    Checksum::Idx(Cow::Borrowed(hex))
}

const fn gz(hex: &'static str) -> Checksum {
    Checksum::Gz(Cow::Borrowed(hex))
}

// From ../shared/data/mnist/README.md, checked against the files there.
static MNIST: [(&str, Checksum); 4] = [
    (
        "train-images-idx3-ubyte",
        idx("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ),
    (
        "train-labels-idx1-ubyte",
        idx("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ),
    (
        "t10k-images-idx3-ubyte",
        idx("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ),
    (
        "t10k-labels-idx1-ubyte",
        idx("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ),
];

// The SHA-256s of the `.gz` files on Zalando's mirror, as published by TensorFlow
// Datasets, torchvision users and others; not verified here (no network).
static FASHION_MNIST: [(&str, Checksum); 4] = [
    (
        "train-images-idx3-ubyte",
        gz("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    ),
    (
        "train-labels-idx1-ubyte",
        gz("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    ),
    (
        "t10k-images-idx3-ubyte",
        gz("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    ),
    (
        "t10k-labels-idx1-ubyte",
        gz("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    ),
];

// Published with the archive on https://www.cs.toronto.edu/~kriz/cifar.html.
static CIFAR10: [(&str, Checksum); 1] = [(
    cifar::ARCHIVE,
    Checksum::Md5(Cow::Borrowed(cifar::ARCHIVE_MD5)),
)];

/// The expected checksum of the file `name` of `kind`, if known: for MNIST and Fashion-MNIST
/// `name` is an IDX stem (e.g. `train-images-idx3-ubyte`); for CIFAR-10 only the archive
/// ([`cifar::ARCHIVE`]) has one.
pub fn expected(kind: DatasetKind, name: &str) -> Option<Checksum> {
    let table: &[(&str, Checksum)] = match kind {
        DatasetKind::Mnist => &MNIST,
        DatasetKind::FashionMnist => &FASHION_MNIST,
        DatasetKind::Cifar10 => &CIFAR10,
    };
    table
        .iter()
        .find(|(s, _)| *s == name)
        .map(|(_, c)| c.clone())
}

/// SHA-256 (hex) of a file's bytes as stored.
pub fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    hash_reader::<Sha256>(file).map_err(|e| Error::io(path, e))
}

/// MD5 (hex) of a file's bytes as stored.
pub fn md5_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    hash_reader::<Md5>(file).map_err(|e| Error::io(path, e))
}

/// SHA-256 (hex) of a file's IDX content: gzip (detected by magic bytes) is decompressed on the
/// fly, so the whole file never has to sit in memory.
pub fn sha256_idx(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let gz = reader
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .starts_with(&GZIP_MAGIC);
    if gz {
        hash_reader::<Sha256>(MultiGzDecoder::new(reader))
            .map_err(|e| Error::bad_file(path, format!("corrupt or truncated gzip data: {e}")))
    } else {
        hash_reader::<Sha256>(reader).map_err(|e| Error::io(path, e))
    }
}

fn hash_reader<D: Digest + io::Write>(mut r: impl Read) -> io::Result<String> {
    let mut hasher = D::new();
    io::copy(&mut r, &mut hasher)?;
    Ok(to_hex(&hasher.finalize()))
}

/// Lowercase hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
