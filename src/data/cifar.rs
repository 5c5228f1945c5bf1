//! CIFAR-10, binary version: reading its batch files, and extracting them from the published
//! archive.
//!
//! Format (<https://www.cs.toronto.edu/~kriz/cifar.html>): each of `data_batch_1.bin` ..
//! `data_batch_5.bin` (training, 10000 records each) and `test_batch.bin` is a sequence of
//! 3073-byte records: one label byte (0-9), then 3072 pixel bytes, the 1024 red values, then the
//! green, then the blue, each plane row-major 32 x 32. That is already the row-major
//! `C x H x W` layout of [`Dataset::images`], so a record's pixels are kept as they are.
//!
//! The files have no header, so the only structural checks possible are that a file is a whole
//! number of records and that every label is a class; both are made, and errors name the file
//! (and the record).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::dataset::Dataset;
pub use super::kind::cifar10::{
    split_files, CLASS_NAMES, FILES, IMAGE_SHAPE, NUM_CLASSES, TEST_FILES, TRAIN_FILES,
};
use super::kind::Split;
use crate::io::atomic::{persist_atomically, temp_file_for};
use crate::{Error, Result};

/// Pixel bytes of one image (3 x 32 x 32).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Bytes of one record: the label byte, then the image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;

/// The folder the archive unpacks to; the files are also looked for there.
pub const SUBDIR: &str = "cifar-10-batches-bin";

/// The published archive (a gzip-compressed tar of [`SUBDIR`]).
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";

/// The published MD5 of [`ARCHIVE`], the only checksum its authors give.
pub const ARCHIVE_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// Largest batch file accepted from an archive (the real ones are 30,730,000 bytes), so a corrupt
/// or hostile archive cannot fill the disk.
pub const MAX_BATCH_BYTES: u64 = 64 << 20;

/// Finds the batch file `name` in `dir` or in `dir/cifar-10-batches-bin` (the folder the archive
/// unpacks to), preferring `dir`. The error names `dir/name` and both places looked in.
pub fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let direct = dir.join(name);
    if direct.is_file() {
        return Ok(direct);
    }
    let nested = dir.join(SUBDIR).join(name);
    if nested.is_file() {
        return Ok(nested);
    }
    Err(Error::io(
        direct,
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "not found (looked in {} and its {SUBDIR} subfolder)",
                dir.display()
            ),
        ),
    ))
}

/// The number of records in a batch file of `len` bytes; an error naming `path` and the size
/// unless it is a positive multiple of [`RECORD_BYTES`].
pub fn records_in(path: &Path, len: u64) -> Result<usize> {
    let record = RECORD_BYTES as u64;
    if len == 0 {
        return Err(Error::bad_file(
            path,
            format!("empty file: a CIFAR-10 batch holds {RECORD_BYTES}-byte records"),
        ));
    }
    if !len.is_multiple_of(record) {
        return Err(Error::bad_file(
            path,
            format!(
                "size {len} bytes is not a multiple of the {RECORD_BYTES}-byte CIFAR-10 record \
                 (1 label byte + {IMAGE_BYTES} pixel bytes): {} whole records and {} bytes over",
                len / record,
                len % record
            ),
        ));
    }
    usize::try_from(len / record)
        .map_err(|_| Error::bad_file(path, format!("size {len} bytes is too large")))
}

/// Parses the bytes of a batch file into `(images, labels)`: images row-major `3 x 32 x 32`
/// bytes each. Pure (no I/O), so it can be fuzzed; `path` only names the file in errors.
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    append_batch(bytes, path, &mut images, &mut labels)?;
    Ok((images, labels))
}

/// Validates a batch (size and every label) and only then appends its images and labels, so
/// an error leaves `images` and `labels` as they were.
fn append_batch(
    bytes: &[u8],
    path: &Path,
    images: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> Result<()> {
    let n = records_in(path, bytes.len() as u64)?;
    if let Some((i, l)) = bytes
        .chunks_exact(RECORD_BYTES)
        .map(|r| r[0])
        .enumerate()
        .find(|&(_, l)| l as usize >= NUM_CLASSES)
    {
        return Err(Error::bad_file(
            path,
            format!("label {l} at record {i} is out of range for cifar10 ({NUM_CLASSES} classes)"),
        ));
    }
    images.reserve(n * IMAGE_BYTES);
    labels.reserve(n);
    for record in bytes.chunks_exact(RECORD_BYTES) {
        labels.push(record[0]);
        images.extend_from_slice(&record[1..]);
    }
    Ok(())
}

/// Loads a split from `dir` (or its `cifar-10-batches-bin` subfolder): the five training
/// batches in order, or the test batch. Every file's size is checked before any is read, so a
/// damaged file fails at once, and the images are allocated once.
pub fn load_split(split: Split, dir: &Path) -> Result<Dataset> {
    let paths = split_files(split)
        .iter()
        .map(|name| find_file(dir, name))
        .collect::<Result<Vec<_>>>()?;
    let mut total = 0usize;
    for path in &paths {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        total = total.saturating_add(records_in(path, len)?);
    }
    let mut images = Vec::with_capacity(total.saturating_mul(IMAGE_BYTES));
    let mut labels = Vec::with_capacity(total);
    for path in &paths {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        append_batch(&bytes, path, &mut images, &mut labels)?;
    }
    Dataset::new(images, labels, IMAGE_SHAPE, NUM_CLASSES)
}

/// Extracts the batch files `names` from the archive at `archive` (a gzip-compressed tar, as
/// published) into `dir`, matching archive entries by file name wherever they are in it (in
/// the real archive, under `cifar-10-batches-bin/`).
///
/// Nothing is written under a final name until every requested file has been extracted, in
/// full, to a temporary file in `dir` and has a valid size; then each is renamed into place.
/// So a truncated or corrupt archive, or one lacking a file, leaves no `.bin` file behind.
/// Paths in the archive are never used to write: only `dir/<name>` for the requested names.
///
/// The archive is not checked against a checksum here; see [`super::download`], which does so
/// before calling this.
pub fn extract_batches(archive: &Path, dir: &Path, names: &[&str]) -> Result<()> {
    let bad = |msg: String| Error::bad_file(archive, msg);
    let corrupt = |e: io::Error| bad(format!("corrupt or truncated archive: {e}"));
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut tar = tar::Archive::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)));
    let mut extracted: Vec<Option<tempfile::NamedTempFile>> = names.iter().map(|_| None).collect();
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let entry_path = entry.path().map_err(corrupt)?.into_owned();
        let Some(i) = entry_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| names.iter().position(|&want| want == n))
        else {
            continue;
        };
        if extracted[i].is_some() {
            continue; // the first entry of a name wins
        }
        let dest = dir.join(names[i]);
        let mut tmp = temp_file_for(&dest)?;
        let copied = copy_entry((&mut entry).take(MAX_BATCH_BYTES + 1), tmp.as_file_mut())
            .map_err(|e| match e {
                CopyError::Read(e) => corrupt(e),
                CopyError::Write(e) => Error::io(tmp.path(), e),
            })?;
        if copied > MAX_BATCH_BYTES {
            return Err(bad(format!(
                "{} is larger than {MAX_BATCH_BYTES} bytes, too large for a CIFAR-10 batch",
                entry_path.display()
            )));
        }
        records_in(&entry_path, copied).map_err(|e| bad(e.to_string()))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        extracted[i] = Some(tmp);
    }
    let missing: Vec<&str> = names
        .iter()
        .zip(&extracted)
        .filter(|(_, t)| t.is_none())
        .map(|(&n, _)| n)
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "the archive lacks {} (it is not the CIFAR-10 binary archive?)",
            missing.join(", ")
        )));
    }
    for (name, tmp) in names.iter().zip(extracted) {
        let tmp = tmp.expect("every name was extracted");
        persist_atomically(tmp, &dir.join(name))?;
    }
    Ok(())
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// `io::copy` that tells a failure to read the archive from a failure to write the copy.
fn copy_entry(mut from: impl Read, to: &mut File) -> std::result::Result<u64, CopyError> {
    use std::io::Write;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}
