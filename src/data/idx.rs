//! Reading IDX files (the format MNIST and Fashion-MNIST ship in), gzip-compressed or raw.
//!
//! Format: a big-endian header of two zero bytes, a type code (0x08 = unsigned byte, the only
//! type these datasets use), the number of dimensions, then one big-endian `u32` per dimension,
//! then the data in row-major order. We check every part of it and require the data length to be
//! exactly the product of the dimensions, because a silently short or padded file would train on
//! garbage instead of failing loudly.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::{Error, Result};

/// The two bytes every gzip stream starts with. Compression is detected by content, not by the
/// file name, so a renamed file still loads.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// IDX type code for unsigned bytes, the only element type supported.
pub const TYPE_U8: u8 = 0x08;

/// Highest number of dimensions accepted. IDX allows up to 255, but no dataset here needs more
/// than 3; the bound keeps a corrupt header from describing absurd shapes.
pub const MAX_NDIM: usize = 8;

/// A decoded IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// Size of each dimension, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// True when `bytes` start with the gzip magic.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Parses IDX bytes, decompressing them first if they are gzip. Pure (no I/O), so it can be fuzzed;
/// `path` is only used to name the file in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<Idx> {
    if is_gzip(bytes) {
        parse_raw(gunzip(bytes, path)?, path)
    } else {
        parse_raw(bytes.to_vec(), path)
    }
}

/// Reads and parses an IDX file (gzip or raw) from disk.
pub fn read_idx(path: impl AsRef<Path>) -> Result<Idx> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if is_gzip(&bytes) {
        let raw = gunzip(&bytes, path)?;
        drop(bytes); // free the compressed copy before the caller keeps the data
        parse_raw(raw, path)
    } else {
        // Take ownership of the buffer instead of copying it: raw train images are 47 MB.
        parse_raw(bytes, path)
    }
}

/// The largest IDX file bnlab reads (1 GiB; MNIST's largest is 47 MB): a header claiming more
/// is a corrupt file, and must not make us decompress (or reserve) gigabytes to find out.
pub const MAX_IDX_BYTES: usize = 1 << 30;

/// Decompresses a gzip stream (all members, like `gunzip`), reporting truncation and corruption
/// (bad deflate data, CRC or length trailer mismatch) as errors naming the file.
///
/// The IDX header is decompressed first, and the rest is read only up to the size the header
/// claims (plus one byte, so that an over-long file is still reported): a small gzip bomb behind
/// a header cannot make us inflate gigabytes.
fn gunzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let gz_err = |e: std::io::Error| {
        let what = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "truncated gzip data"
        } else {
            "corrupt gzip data"
        };
        Error::bad_file(path, format!("{what}: {e}"))
    };
    let mut dec = MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    (&mut dec).take(4).read_to_end(&mut out).map_err(gz_err)?;
    let ndim = out.get(3).map_or(0, |&n| n as usize);
    if out.len() < 4 || ndim == 0 || ndim > MAX_NDIM {
        return Ok(out); // parse_raw names what is wrong with this header
    }
    (&mut dec)
        .take(4 * ndim as u64)
        .read_to_end(&mut out)
        .map_err(gz_err)?;
    if out.len() < 4 + 4 * ndim {
        return Ok(out); // truncated header: parse_raw reports it
    }
    let total = out[4..].chunks_exact(4).try_fold(1usize, |acc, c| {
        acc.checked_mul(u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
    });
    let Some(total) = total else {
        return Ok(out); // the dimensions overflow: parse_raw reports it
    };
    if total > MAX_IDX_BYTES {
        return Err(Error::bad_file(
            path,
            format!("IDX header claims {total} bytes of data; bnlab reads files of up to {MAX_IDX_BYTES} bytes"),
        ));
    }
    out.reserve(total.min(size_hint(bytes)) + 1);
    (&mut dec)
        .take(total as u64 + 1)
        .read_to_end(&mut out)
        .map_err(gz_err)?;
    Ok(out)
}

/// Capacity to reserve for the decompressed bytes, from the gzip trailer's ISIZE field (size
/// modulo 2^32), so a 47 MB image file is decompressed without repeated reallocation. Capped at
/// deflate's maximum ratio so a corrupt trailer cannot make us reserve absurd memory.
fn size_hint(gz: &[u8]) -> usize {
    let Some(tail) = gz.len().checked_sub(4).map(|i| &gz[i..]) else {
        return 0;
    };
    let isize_field = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    isize_field.min(gz.len().saturating_mul(1032))
}

/// Validates the header of uncompressed IDX bytes and strips it in place (no second copy).
fn parse_raw(mut bytes: Vec<u8>, path: &Path) -> Result<Idx> {
    let bad = |msg: String| Error::bad_file(path, msg);
    if bytes.len() < 4 {
        return Err(bad(format!(
            "not an IDX file: {} bytes, shorter than the 4-byte magic",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "not an IDX file: wrong magic {:02x} {:02x} {:02x} {:02x} (must start with two zero bytes)",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != TYPE_U8 {
        return Err(bad(format!(
            "unsupported IDX type code 0x{:02x} ({}); only 0x08 (unsigned byte) is supported",
            bytes[2],
            type_name(bytes[2])
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > MAX_NDIM {
        return Err(bad(format!(
            "invalid IDX header: {ndim} dimensions (expected 1 to {MAX_NDIM})"
        )));
    }
    let header_len = 4 + 4 * ndim;
    if bytes.len() < header_len {
        return Err(bad(format!(
            "truncated IDX header: {ndim} dimensions need {header_len} header bytes, file has {}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("IDX dimensions {dims:?} overflow")))?;
    let actual = bytes.len() - header_len;
    if actual != expected {
        let what = if actual < expected {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(bad(format!(
            "{what}: dimensions {} need {expected} data bytes, file has {actual}",
            shape_str(&dims)
        )));
    }
    bytes.drain(..header_len);
    Ok(Idx { dims, data: bytes })
}

/// Human name of an IDX type code, for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => "not an IDX type",
    }
}

/// `60000x28x28`-style shape string for messages.
pub(crate) fn shape_str(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}
