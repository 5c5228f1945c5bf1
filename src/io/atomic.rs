//! Atomic file writes: a temporary file in the same folder, written, fsynced, then renamed over
//! the target, so a run killed at any moment leaves either the old file or the new one.

use crate::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use tempfile::NamedTempFile;

/// Temporary files start with this (and end with `.tmp`), so that leftovers of a killed write
/// can be recognised and removed.
pub const TEMP_PREFIX: &str = ".bnlab-";

/// A temporary file is created with mode 0600 by default, and the rename keeps it: every file
/// bnlab wrote was readable by its owner only. Asking for 0666 instead lets the operating system
/// apply the umask as it does for any new file (0644 under the usual 022), so reports and weights
/// that are mailed or archived can be read by others when the user's umask says so.
fn with_umask_mode<'a, 'b>(
    b: &'b mut tempfile::Builder<'a, 'a>,
) -> &'b mut tempfile::Builder<'a, 'a> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666))
    }
    #[cfg(not(unix))]
    {
        b
    }
}

/// Write `bytes` to `path` atomically (see the module docs): a temporary file in the same
/// folder, fsynced, then renamed over `path`. The error names the file that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = with_umask_mode(tempfile::Builder::new().prefix(TEMP_PREFIX))
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

// Streaming writes (downloads, extracted archives): the caller writes the temporary file and
// syncs it, then persists it.

/// The folder and file name of a target path ("." when it has no folder).
pub fn split_dest(dest: &Path) -> Result<(&Path, String)> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("target {} has no file name", dest.display())))?;
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// A new temporary file beside `dest` (same folder, so renaming it to `dest` is atomic),
/// deleted when dropped unless persisted. Its name is dot-prefixed and `.tmp`-suffixed: hidden,
/// ignored by git, never matching a dataset file's name.
pub fn temp_file_for(dest: &Path) -> Result<NamedTempFile> {
    let (dir, name) = split_dest(dest)?;
    with_umask_mode(&mut tempfile::Builder::new())
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Renames a complete (and synced) temporary file to `dest`, then syncs the folder.
pub fn persist_atomically(tmp: NamedTempFile, dest: &Path) -> Result<()> {
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    if let Ok((dir, _)) = split_dest(dest) {
        sync_dir(dir);
    }
    Ok(())
}

/// Flushes the folder entry of the rename, so the new name survives a crash. Best effort: not
/// every platform or filesystem can open or sync a directory, and the data itself is synced.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
