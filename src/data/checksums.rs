//! Known SHA-256 checksums of the dataset files, and computing them.
//!
//! MNIST's hashes cover the *decompressed* IDX bytes: mirrors (and `../shared/data/mnist`) hold
//! differently compressed `.gz` files with the same content, so only the content hash holds for
//! all of them. For Fashion-MNIST only the hashes of the published `.gz` files are known (see
//! [`Checksum::Gz`]), so a Fashion-MNIST mirror must serve byte-identical files.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::dataset::DatasetKind;
use super::idx::GZIP_MAGIC;
use crate::{Error, Result};

/// An expected SHA-256 (lowercase hex) and what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// SHA-256 of the decompressed IDX bytes (the file is decompressed first if it is gzip).
    Idx(&'static str),
    /// SHA-256 of the file's bytes as stored, i.e. of the `.gz` file as published.
    Gz(&'static str),
}

impl Checksum {
    /// The expected hash, lowercase hex.
    pub fn hex(&self) -> &'static str {
        match self {
            Checksum::Idx(h) | Checksum::Gz(h) => h,
        }
    }

    /// Short description of what is hashed, for messages.
    pub fn what(&self) -> &'static str {
        match self {
            Checksum::Idx(_) => "SHA-256 of the decompressed IDX bytes",
            Checksum::Gz(_) => "SHA-256 of the .gz file",
        }
    }

    /// Computes this kind of hash of the file at `path`.
    pub fn compute(&self, path: &Path) -> Result<String> {
        match self {
            Checksum::Idx(_) => sha256_idx(path),
            Checksum::Gz(_) => sha256_file(path),
        }
    }
}

/// The expected checksum of `stem` (e.g. `train-images-idx3-ubyte`) for `kind`, if known.
pub fn expected(kind: DatasetKind, stem: &str) -> Option<Checksum> {
    let table: &[(&str, Checksum)] = match kind {
        // From ../shared/data/mnist/README.md, checked against the files there.
        DatasetKind::Mnist => &[
            (
                "train-images-idx3-ubyte",
                Checksum::Idx("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
            ),
            (
                "train-labels-idx1-ubyte",
                Checksum::Idx("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
            ),
            (
                "t10k-images-idx3-ubyte",
                Checksum::Idx("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            ),
            (
                "t10k-labels-idx1-ubyte",
                Checksum::Idx("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
            ),
        ],
        // The SHA-256s of the `.gz` files on Zalando's mirror, as published by TensorFlow
        // Datasets, torchvision users and others; not verified here (no network).
        DatasetKind::FashionMnist => &[
            (
                "train-images-idx3-ubyte",
                Checksum::Gz("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            ),
            (
                "train-labels-idx1-ubyte",
                Checksum::Gz("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            ),
            (
                "t10k-images-idx3-ubyte",
                Checksum::Gz("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            ),
            (
                "t10k-labels-idx1-ubyte",
                Checksum::Gz("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
            ),
        ],
    };
    table.iter().find(|(s, _)| *s == stem).map(|&(_, c)| c)
}

/// SHA-256 (hex) of a file's bytes as stored.
pub fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    hash_reader(file).map_err(|e| Error::io(path, e))
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
        hash_reader(MultiGzDecoder::new(reader))
            .map_err(|e| Error::bad_file(path, format!("corrupt or truncated gzip data: {e}")))
    } else {
        hash_reader(reader).map_err(|e| Error::io(path, e))
    }
}

fn hash_reader(mut r: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
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
