//! The run's folder as the report reads it: its history (or the error that says it is not a
//! run's folder), the `--out` file's place, and the files it holds.

use crate::cli::run_folder::HISTORY_JSON;
use bnlab::train::History;
use bnlab::{Error, Result};
use std::path::{Path, PathBuf};

/// The run's history.json, with errors that name the folder or the file.
pub fn read_history(dir: &Path) -> Result<History> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Invalid(format!("{}: no such folder", dir.display())))
        }
        Err(e) => return Err(Error::io(dir, e)),
        Ok(m) if !m.is_dir() => {
            return Err(Error::Invalid(format!(
                "{}: not a folder (bnlab report takes a run's folder, as bnlab train writes it)",
                dir.display()
            )))
        }
        Ok(_) => {}
    }
    let path = dir.join(HISTORY_JSON);
    if !path.exists() {
        return Err(Error::Invalid(format!(
            "not a run folder: {} has no history.json",
            dir.display()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&path, format!("not a bnlab history ({e})")))
}

/// `--out FILE` names a file that can be written: not a folder, in a folder that exists, and
/// not a file that exists unless `overwrite` (said before any work, and without the name of
/// the temporary file the write would use). A file the user named may be anything (trained
/// weights, another report): replacing it takes `--overwrite`, as for `export` and `fold`.
pub fn check_out(out: &Path, overwrite: bool) -> Result<()> {
    if out.is_dir() {
        return Err(Error::Invalid(format!(
            "--out {}: is a folder; name the HTML file to write",
            out.display()
        )));
    }
    // symlink_metadata: a link (even a dangling one) is an existing name too
    if !overwrite && out.symlink_metadata().is_ok() {
        return Err(Error::Invalid(format!(
            "--out {}: the file exists (--overwrite replaces it)",
            out.display()
        )));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::Invalid(format!(
            "--out {}: the folder {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// One entry of the run's folder.
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    /// Its size in bytes; None for a folder (or an entry that vanished while listed).
    pub size: Option<u64>,
    pub is_dir: bool,
    pub modified: Option<std::time::SystemTime>,
}

/// The folder's entries by name, without hidden ones (a killed write's `.bnlab-*.tmp`) and
/// without the report being replaced.
pub fn list_files(dir: &Path, target: &Path) -> Result<Vec<Entry>> {
    let target = std::fs::canonicalize(target).ok();
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with('.') || target.is_some() && std::fs::canonicalize(&path).ok() == target
        {
            continue;
        }
        // a broken link or a file removed meanwhile is listed without a size
        let meta = std::fs::metadata(&path).ok();
        entries.push(Entry {
            name,
            size: meta.as_ref().filter(|m| !m.is_dir()).map(|m| m.len()),
            is_dir: meta.as_ref().is_some_and(|m| m.is_dir()),
            modified: meta.and_then(|m| m.modified().ok()),
            path,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The largest PNG a report embeds: bnlab's own plots are well under a megabyte, and a page
/// meant to be mailed should not carry more.
pub const MAX_PNG_BYTES: u64 = 32 << 20;

/// PNG's eight-byte signature.
const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// A PNG of the folder, read for embedding: `Ok(None)` with the reason when it must be left
/// out (a symbolic link, or a file that resolves outside the run's folder: a page meant to be
/// mailed carries nothing from elsewhere on the disk; larger than [`MAX_PNG_BYTES`]); an error
/// when it is not a PNG. The link, the size and the signature are checked before the file is
/// read, so a huge or foreign file costs nothing.
pub fn read_png(dir: &Path, entry: &Entry) -> Result<std::result::Result<Vec<u8>, String>> {
    use std::io::Read;
    let path = &entry.path;
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.file_type().is_symlink() {
        return Ok(Err(
            "a symbolic link; the report embeds only the run's own files".into(),
        ));
    }
    let inside = match (std::fs::canonicalize(dir), std::fs::canonicalize(path)) {
        (Ok(d), Ok(p)) => p.starts_with(d),
        _ => false,
    };
    if !inside {
        return Ok(Err("it resolves outside the run's folder".into()));
    }
    if meta.len() > MAX_PNG_BYTES {
        return Ok(Err(format!(
            "{} bytes, more than the {} a report embeds",
            meta.len(),
            MAX_PNG_BYTES
        )));
    }
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.by_ref()
        .take(MAX_PNG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Err(Error::bad_file(path, "not a PNG image (no PNG signature)"));
    }
    if bytes.len() as u64 > MAX_PNG_BYTES {
        return Ok(Err(format!(
            "more than the {MAX_PNG_BYTES} bytes a report embeds"
        )));
    }
    Ok(Ok(bytes))
}
