//! Where downloaded datasets are kept when the user names no folder.

use std::path::PathBuf;

use super::dataset::DatasetKind;
use crate::{Error, Result};

/// Environment variable naming the cache root; each dataset gets a subfolder named after it.
pub const CACHE_ENV: &str = "BNLAB_CACHE";

/// The default cache folder for `kind`: `$BNLAB_CACHE/<dataset>`, else
/// `$XDG_CACHE_HOME/bnlab/<dataset>`, else `~/.cache/bnlab/<dataset>`.
///
/// Even under `$BNLAB_CACHE` each dataset gets its own subfolder, because MNIST and Fashion-MNIST
/// use identical file names and would otherwise overwrite each other.
pub fn default_cache_dir(kind: DatasetKind) -> Result<PathBuf> {
    cache_dir_from(
        kind,
        env_nonempty(CACHE_ENV),
        env_nonempty("XDG_CACHE_HOME"),
        env_nonempty("HOME").or_else(|| env_nonempty("USERPROFILE")),
    )
}

/// The rule of [`default_cache_dir`] on given values, separate so it can be tested without
/// touching the process environment.
fn cache_dir_from(
    kind: DatasetKind,
    bnlab_cache: Option<String>,
    xdg_cache_home: Option<String>,
    home: Option<String>,
) -> Result<PathBuf> {
    let root = if let Some(dir) = bnlab_cache {
        PathBuf::from(dir)
    } else if let Some(dir) = xdg_cache_home {
        PathBuf::from(dir).join("bnlab")
    } else if let Some(dir) = home {
        PathBuf::from(dir).join(".cache").join("bnlab")
    } else {
        return Err(Error::Invalid(format!(
            "no cache folder for {kind}: set {CACHE_ENV}, XDG_CACHE_HOME or HOME, or pass a data folder"
        )));
    };
    Ok(root.join(kind.name()))
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn precedence() {
        let k = DatasetKind::FashionMnist;
        assert_eq!(
            cache_dir_from(k, s("/c"), s("/x"), s("/h")).unwrap(),
            PathBuf::from("/c/fashion-mnist")
        );
        assert_eq!(
            cache_dir_from(k, None, s("/x"), s("/h")).unwrap(),
            PathBuf::from("/x/bnlab/fashion-mnist")
        );
        assert_eq!(
            cache_dir_from(DatasetKind::Mnist, None, None, s("/h")).unwrap(),
            PathBuf::from("/h/.cache/bnlab/mnist")
        );
        assert_eq!(
            cache_dir_from(DatasetKind::Cifar10, s("/c"), None, None).unwrap(),
            PathBuf::from("/c/cifar10")
        );
        assert!(cache_dir_from(k, None, None, None).is_err());
    }
}
