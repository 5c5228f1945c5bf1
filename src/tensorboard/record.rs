//! TFRecord framing, the container of TensorFlow's event files: each record is
//!
//! ```text
//! u64 length (little-endian) | u32 masked CRC-32C of those 8 bytes | data | u32 masked CRC-32C of data
//! ```
//!
//! The CRCs let a reader tell a record cut short by a crash (the writer is still appending, or
//! died) from a corrupt one; TensorBoard checks them, so a wrong one makes it drop the file.

use crate::{Error, Result};
use std::io::{self, Write};
use std::path::Path;

/// CRC-32C (Castagnoli, the iSCSI polynomial), the checksum TFRecord uses.
const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Added after the rotation, as TensorFlow's `crc32c::Mask` does.
const MASK_DELTA: u32 = 0xa282_ead8;

/// Bytes before a record's data: the length and its CRC.
const HEADER: usize = 12;
/// Bytes after a record's data: its CRC.
const FOOTER: usize = 4;

/// The CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// The masked CRC-32C of `data`, as TFRecord stores it: rotated right by 15 bits plus
/// `0xa282ead8` (TensorFlow masks CRCs so that a CRC of data that itself holds CRCs is not
/// degenerate).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Write `data` as one TFRecord.
pub fn write_record(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    w.write_all(&len)?;
    w.write_all(&masked_crc32c(&len).to_le_bytes())?;
    w.write_all(data)?;
    w.write_all(&masked_crc32c(data).to_le_bytes())
}

/// Read every record of the TFRecord file at `path`, checking each length's and each data's CRC.
///
/// An error names the file, the record's number (from 0), its byte offset and what is wrong: a
/// bad length CRC, a bad data CRC, or a record cut short (a file still being written ends so).
/// The whole file is read at once: this is for checking files, not for following a live one.
pub fn read_records(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_records(&bytes)
        .map_err(|(n, at, msg)| Error::bad_file(path, format!("TFRecord {n} at byte {at}: {msg}")))
}

/// The records in `bytes`, or (record number, its offset, what is wrong).
fn parse_records(bytes: &[u8]) -> std::result::Result<Vec<Vec<u8>>, (usize, usize, String)> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = records.len();
        let fail = |msg: String| (n, at, msg);
        let rest = &bytes[at..];
        let Some((header, rest)) = rest.split_first_chunk::<HEADER>() else {
            return Err(fail(format!(
                "truncated: {} bytes where the {HEADER}-byte header should be",
                rest.len()
            )));
        };
        let [l0, l1, l2, l3, l4, l5, l6, l7, c0, c1, c2, c3] = *header;
        let len_bytes = [l0, l1, l2, l3, l4, l5, l6, l7];
        let stored = u32::from_le_bytes([c0, c1, c2, c3]);
        let computed = masked_crc32c(&len_bytes);
        if stored != computed {
            return Err(fail(format!(
                "bad length CRC (stored {stored:#010x}, computed {computed:#010x})"
            )));
        }
        let len = u64::from_le_bytes(len_bytes);
        // Checked before slicing (or allocating), so a huge length is an error, not a panic.
        let split = usize::try_from(len)
            .ok()
            .filter(|&l| l <= rest.len())
            .map(|l| rest.split_at(l));
        let Some((data, rest)) = split else {
            return Err(fail(format!(
                "truncated: length {len} but {} data bytes left",
                rest.len()
            )));
        };
        let Some((crc, _)) = rest.split_first_chunk::<FOOTER>() else {
            return Err(fail(format!(
                "truncated: {} bytes where the data's {FOOTER}-byte CRC should be",
                rest.len()
            )));
        };
        let stored = u32::from_le_bytes(*crc);
        let computed = masked_crc32c(data);
        if stored != computed {
            return Err(fail(format!(
                "bad data CRC over {} bytes (stored {stored:#010x}, computed {computed:#010x})",
                data.len()
            )));
        }
        records.push(data.to_vec());
        at += HEADER + data.len() + FOOTER;
    }
    Ok(records)
}
