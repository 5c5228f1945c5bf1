//! Downloading missing dataset files from mirrors, verified by checksum.
//!
//! A file is streamed into a temporary file in the destination folder, flushed to disk, hashed,
//! and only then renamed to its final name. Rename within a folder is atomic, so a failed, partial
//! or corrupt download never leaves a file under the final name that a later run would trust; the
//! temporary file is deleted on every error path.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checksums::{self, Checksum};
use super::dataset::{file_stems, find_file, DatasetKind};
use crate::{Error, Result};

/// MNIST mirrors, tried in order (the ones torchvision uses).
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Zalando's Fashion-MNIST mirror.
pub const FASHION_MNIST_MIRRORS: [&str; 1] =
    ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// Largest response accepted (the biggest file, Fashion-MNIST's training images, is 26 MB), so
/// a misbehaving server cannot fill the disk.
pub const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// Environment variable that overrides the mirrors of `kind`: one or more base URLs, separated
/// by commas or whitespace. Meant for the command line; library callers pass mirrors directly.
pub fn mirror_env_var(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Mnist => "BNLAB_MNIST_MIRROR",
        DatasetKind::FashionMnist => "BNLAB_FASHION_MNIST_MIRROR",
    }
}

/// The mirrors used when none are passed: from [`mirror_env_var`] if set, else the built-in list.
pub fn default_mirrors(kind: DatasetKind) -> Vec<String> {
    let from_env: Vec<String> = std::env::var(mirror_env_var(kind))
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !from_env.is_empty() {
        return from_env;
    }
    let builtin: &[&str] = match kind {
        DatasetKind::Mnist => &MNIST_MIRRORS,
        DatasetKind::FashionMnist => &FASHION_MNIST_MIRRORS,
    };
    builtin.iter().map(|s| s.to_string()).collect()
}

/// Makes sure `dir` holds the four files of `kind` (raw or `.gz`) and returns it.
///
/// Files already present are used as they are (not re-hashed: the loader validates their
/// structure, and hashing 47 MB on every run would cost more than it protects; see [`verify`]).
/// Missing files are downloaded as `<name>.gz` into `dir` (created if needed), trying `mirrors`
/// in order, or [`default_mirrors`] when `None`.
pub fn ensure_available(
    kind: DatasetKind,
    dir: &Path,
    mirrors: Option<&[String]>,
) -> Result<PathBuf> {
    let missing: Vec<&str> = file_stems()
        .into_iter()
        .filter(|stem| find_file(dir, stem).is_err())
        .collect();
    if missing.is_empty() {
        return Ok(dir.to_path_buf());
    }
    let mirrors = mirrors.map_or_else(|| default_mirrors(kind), <[String]>::to_vec);
    if mirrors.is_empty() {
        return Err(Error::Invalid(format!(
            "{kind}: files missing in {} and no mirror to download them from",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let agent = agent();
    for stem in missing {
        let checksum = checksums::expected(kind, stem)
            .ok_or_else(|| Error::Invalid(format!("{kind}: no known checksum for {stem}")))?;
        let name = format!("{stem}.gz");
        let dest = dir.join(&name);
        let mut errors = Vec::new();
        for base in &mirrors {
            let url = join_url(base, &name);
            match download_with(&agent, &url, &dest, checksum) {
                Ok(()) => break,
                Err(e) => errors.push(e),
            }
        }
        if errors.len() == mirrors.len() {
            return Err(if errors.len() == 1 {
                errors.remove(0)
            } else {
                let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                Error::Download {
                    url: name,
                    msg: format!("every mirror failed: {}", all.join("; ")),
                }
            });
        }
    }
    Ok(dir.to_path_buf())
}

/// Downloads `url` to `dest` atomically, keeping it only if it matches `checksum`.
pub fn download_file(url: &str, dest: &Path, checksum: Checksum) -> Result<()> {
    download_with(&agent(), url, dest, checksum)
}

/// Checks every file of `kind` in `dir` against its known checksum. A raw (decompressed) file
/// whose only known hash is of the `.gz` cannot be checked and is reported as an error.
pub fn verify(kind: DatasetKind, dir: &Path) -> Result<()> {
    for stem in file_stems() {
        let path = find_file(dir, stem)?;
        let checksum = checksums::expected(kind, stem)
            .ok_or_else(|| Error::Invalid(format!("{kind}: no known checksum for {stem}")))?;
        if matches!(checksum, Checksum::Gz(_)) && path.extension().is_none_or(|e| e != "gz") {
            return Err(Error::bad_file(
                &path,
                format!("cannot verify: only the {} is known", checksum.what()),
            ));
        }
        let actual = checksum.compute(&path)?;
        if actual != checksum.hex() {
            return Err(Error::bad_file(
                &path,
                format!(
                    "checksum mismatch: {} is {actual}, expected {}",
                    checksum.what(),
                    checksum.hex()
                ),
            ));
        }
    }
    Ok(())
}

/// One HTTP agent per call of [`ensure_available`]: timeouts on connecting and on each read, so
/// a dead mirror fails instead of hanging, but no total timeout, so slow links still finish.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("bnlab/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

fn join_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

fn download_with(agent: &ureq::Agent, url: &str, dest: &Path, checksum: Checksum) -> Result<()> {
    let dl = |msg: String| Error::Download {
        url: url.to_string(),
        msg,
    };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "download target {} has no file name",
                dest.display()
            ))
        })?
        .to_string_lossy();
    // Dot-prefixed and `.tmp`-suffixed: hidden, ignored by git, never matching a dataset name.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;

    let mut response = agent.get(url).call().map_err(|e| dl(e.to_string()))?;
    let mut body = response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .reader();
    std::io::copy(&mut body, tmp.as_file_mut())
        .map_err(|e| dl(format!("reading the response failed: {e}")))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;

    let actual = checksum.compute(tmp.path()).map_err(|e| match e {
        // The temporary file's name means nothing to the user; the URL says it all.
        Error::BadFile { msg, .. } => dl(msg),
        e => dl(format!("downloaded file is unreadable: {e}")),
    })?;
    if actual != checksum.hex() {
        return Err(dl(format!(
            "checksum mismatch: {} is {actual}, expected {}",
            checksum.what(),
            checksum.hex()
        )));
    }
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Flushes the folder entry of the rename, so the new name survives a crash. Best effort: not
/// every platform or filesystem can open or sync a directory, and the data itself is synced.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
