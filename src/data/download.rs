//! Downloading missing dataset files from mirrors, verified by checksum.
//!
//! A file is streamed into a temporary file in the destination folder, flushed to disk, hashed,
//! and only then renamed to its final name. Rename within a folder is atomic, so a failed, partial
//! or corrupt download never leaves a file under the final name that a later run would trust; the
//! temporary file is deleted on every error path. CIFAR-10's archive takes the same path, except
//! that once verified it is extracted (each file again through a temporary file and a rename)
//! and deleted instead of renamed.

use std::path::{Path, PathBuf};
#[cfg(feature = "download")]
use std::time::Duration;

use tempfile::NamedTempFile;

use super::checksums::{self, Checksum};
use super::cifar;
use super::dataset::DatasetKind;
use super::folder::{find_data_file, missing_files};
#[cfg(feature = "download")]
use crate::io::atomic::temp_file_for;
use crate::io::atomic::{persist_atomically, split_dest};
use crate::{Error, Result};

/// MNIST mirrors, tried in order (the ones torchvision uses).
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Zalando's Fashion-MNIST mirror.
pub const FASHION_MNIST_MIRRORS: [&str; 1] =
    ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// The CIFAR-10 authors' site, which serves [`cifar::ARCHIVE`].
pub const CIFAR10_MIRRORS: [&str; 1] = ["https://www.cs.toronto.edu/~kriz/"];

/// Largest response accepted (the biggest file, CIFAR-10's archive, is 170,052,171 bytes), so a
/// misbehaving server cannot fill the disk.
pub const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// Environment variable that overrides the mirrors of `kind`: one or more base URLs, separated
/// by commas or whitespace. Meant for the command line; library callers pass mirrors directly.
pub fn mirror_env_var(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Mnist => "BNLAB_MNIST_MIRROR",
        DatasetKind::FashionMnist => "BNLAB_FASHION_MNIST_MIRROR",
        DatasetKind::Cifar10 => "BNLAB_CIFAR10_MIRROR",
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
        DatasetKind::Cifar10 => &CIFAR10_MIRRORS,
    };
    builtin.iter().map(|s| s.to_string()).collect()
}

/// Makes sure `dir` holds the files of `kind` ([`DatasetKind::files`]) and returns it,
/// checking downloads against the built-in checksums ([`checksums::expected`]).
///
/// Files already present are used as they are (not re-hashed: the loader validates their
/// structure, and hashing 47 MB on every run would cost more than it protects; see [`verify`]).
/// Missing files are fetched from `mirrors` in order, or [`default_mirrors`] when `None`, into
/// `dir` (created if needed):
///
/// - MNIST and Fashion-MNIST: each missing file as `<stem>.gz`.
/// - CIFAR-10: the archive [`cifar::ARCHIVE`], checked against its MD5 before anything is
///   extracted; then only the missing `.bin` files are extracted into `dir` (see
///   [`cifar::extract_batches`]) and the archive is deleted. The archive is never kept under its
///   final name. An archive the user already put in `dir` under that name is used instead of
///   downloading (after the same check).
pub fn ensure_available(
    kind: DatasetKind,
    dir: &Path,
    mirrors: Option<&[String]>,
) -> Result<PathBuf> {
    ensure_available_with(kind, dir, mirrors, |name| checksums::expected(kind, name))
}

/// [`ensure_available`] with the expected checksums given by `expected`, which maps a file
/// name as passed to [`checksums::expected`] (an IDX stem, or [`cifar::ARCHIVE`]) to its
/// checksum; `None` fails the download. For private mirrors of other content, and for tests.
pub fn ensure_available_with(
    kind: DatasetKind,
    dir: &Path,
    mirrors: Option<&[String]>,
    expected: impl Fn(&str) -> Option<Checksum>,
) -> Result<PathBuf> {
    let missing = missing_files(kind, dir);
    if missing.is_empty() {
        return Ok(dir.to_path_buf());
    }
    let known = |name: &str| {
        expected(name)
            .ok_or_else(|| Error::Invalid(format!("{kind}: no known checksum for {name}")))
    };
    if kind == DatasetKind::Cifar10 {
        let local = dir.join(cifar::ARCHIVE);
        if local.is_file() {
            let checksum = known(cifar::ARCHIVE)?;
            check_file(&local, &checksum)?;
            cifar::extract_batches(&local, dir, &missing)?;
            return Ok(dir.to_path_buf());
        }
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
    if kind.is_idx() {
        for stem in missing {
            let checksum = known(stem)?;
            let name = format!("{stem}.gz");
            let (tmp, _) = fetch_from_mirrors(&agent, &mirrors, dir, &name, &checksum)?;
            persist_atomically(tmp, &dir.join(&name))?;
        }
    } else {
        let checksum = known(cifar::ARCHIVE)?;
        let (tmp, url) = fetch_from_mirrors(&agent, &mirrors, dir, cifar::ARCHIVE, &checksum)?;
        // The archive is verified; errors now are about its content, which the URL names best
        // (the temporary file's name means nothing to the user). It is deleted on return.
        cifar::extract_batches(tmp.path(), dir, &missing).map_err(|e| match e {
            Error::BadFile { path, msg } if path == tmp.path() => Error::Download {
                url,
                msg: format!("extracting: {msg}"),
            },
            e => e,
        })?;
    }
    Ok(dir.to_path_buf())
}

/// Tries `mirrors` in order for the file `name`, returning the first verified download (still a
/// temporary file in `dir`) and its URL. With one mirror its error is returned as it is; with
/// several, one error listing them all.
fn fetch_from_mirrors(
    agent: &Agent,
    mirrors: &[String],
    dir: &Path,
    name: &str,
    checksum: &Checksum,
) -> Result<(NamedTempFile, String)> {
    let mut errors = Vec::new();
    for base in mirrors {
        let url = join_url(base, name);
        match fetch_verified(agent, &url, dir, name, checksum) {
            Ok(tmp) => return Ok((tmp, url)),
            Err(e) => errors.push(e),
        }
    }
    Err(if errors.len() == 1 {
        errors.remove(0)
    } else {
        let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        Error::Download {
            url: name.to_string(),
            msg: format!("every mirror failed: {}", all.join("; ")),
        }
    })
}

/// Downloads `url` to `dest` atomically, keeping it only if it matches `checksum`.
pub fn download_file(url: &str, dest: &Path, checksum: Checksum) -> Result<()> {
    let (dir, name) = split_dest(dest)?;
    let tmp = fetch_verified(&agent(), url, dir, &name, &checksum)?;
    persist_atomically(tmp, dest)
}

/// Checks every file of `kind` in `dir` against its known checksum. A raw (decompressed) file
/// whose only known hash is of the `.gz` cannot be checked and is reported as an error, and so
/// are CIFAR-10's `.bin` files, for which only the archive's MD5 is published.
pub fn verify(kind: DatasetKind, dir: &Path) -> Result<()> {
    for &name in kind.files() {
        let path = find_data_file(kind, dir, name)?;
        let checksum = checksums::expected(kind, name).ok_or_else(|| {
            Error::bad_file(
                &path,
                format!("cannot verify: no checksum of {name} is published for {kind}"),
            )
        })?;
        if matches!(checksum, Checksum::Gz(_)) && path.extension().is_none_or(|e| e != "gz") {
            return Err(Error::bad_file(
                &path,
                format!("cannot verify: only the {} is known", checksum.what()),
            ));
        }
        check_file(&path, &checksum)?;
    }
    Ok(())
}

/// Hashes the file at `path`; an error naming it and both hashes unless it matches `checksum`.
fn check_file(path: &Path, checksum: &Checksum) -> Result<()> {
    let actual = checksum.compute(path)?;
    if !checksum.matches(&actual) {
        return Err(Error::bad_file(
            path,
            format!(
                "checksum mismatch: {} is {actual}, expected {}",
                checksum.what(),
                checksum.hex()
            ),
        ));
    }
    Ok(())
}

/// The HTTP client (absent without the `download` feature: see [`fetch_verified`]).
#[cfg(feature = "download")]
type Agent = ureq::Agent;
#[cfg(not(feature = "download"))]
struct Agent;

#[cfg(not(feature = "download"))]
fn agent() -> Agent {
    Agent
}

/// Without the `download` feature nothing is fetched: the error says where the file is wanted.
#[cfg(not(feature = "download"))]
fn fetch_verified(
    _agent: &Agent,
    url: &str,
    dir: &Path,
    name: &str,
    _checksum: &Checksum,
) -> Result<NamedTempFile> {
    Err(Error::Download {
        url: url.to_string(),
        msg: format!(
            "this build of bnlab has no download feature; put {name} into {} yourself",
            dir.display()
        ),
    })
}

/// One HTTP agent per call of [`ensure_available`]: timeouts on connecting and on each read, so
/// a dead mirror fails instead of hanging, but no total timeout, so slow links still finish.
#[cfg(feature = "download")]
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

/// Streams `url` into a temporary file in `dir` (named after `name`), flushes it to disk and
/// checks it against `checksum`. The caller persists it, or reads it and lets it be deleted; on
/// any error it is deleted and nothing is left in `dir`.
#[cfg(feature = "download")]
fn fetch_verified(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    name: &str,
    checksum: &Checksum,
) -> Result<NamedTempFile> {
    let dl = |msg: String| Error::Download {
        url: url.to_string(),
        msg,
    };
    let mut tmp = temp_file_for(&dir.join(name))?;

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
    if !checksum.matches(&actual) {
        return Err(dl(format!(
            "checksum mismatch: {} is {actual}, expected {}",
            checksum.what(),
            checksum.hex()
        )));
    }
    Ok(tmp)
}
