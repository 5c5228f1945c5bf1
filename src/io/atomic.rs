//! Atomic file writes: a temporary file in the same folder, written, fsynced, then renamed over
//! the target, so a run killed at any moment leaves either the old file or the new one.

use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Temporary files start with this (and end with `.tmp`), so that leftovers of a killed write
/// can be recognised and removed.
pub const TEMP_PREFIX: &str = ".bnlab-";

/// Write `bytes` to `path` atomically (see the module docs): a temporary file in the same
/// folder, fsynced, then renamed over `path`. The error names the file that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    // make the rename itself durable
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
