//! A run's output folder, claimed for the length of the run.
//!
//! Two promises: two runs never write into one folder at once, and a finished run is never
//! lost without a word.
//! - The folder is locked with an OS lock (`flock` on the folder itself, so no lock file is
//!   left behind). The lock dies with its process, so a run killed with SIGKILL never locks
//!   the folder for ever.
//! - A folder that already holds a run's files is not written over: the default folder moves on
//!   to `runs/train-2`, `runs/train-3`, ...; a folder named with `--out` is refused unless
//!   `--overwrite` is given, which first removes the earlier run's files (and only those).

use bnlab::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

// The names of a run's files, here only: every command that writes or reads a run's folder
// (train, --resume, report, eval's standardisation) takes them from these.

/// The weights at the end of the run: its presence means the run finished.
pub const LAST: &str = "last.safetensors";
/// The run's state after its last epoch (or interruption), for `--resume`.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The weights of the epoch with the lowest validation loss (`--save-best`).
pub const BEST: &str = "best.safetensors";
/// The whole history: epochs, best epoch, how it ended, the run's configuration.
pub const HISTORY_JSON: &str = "history.json";
/// The epochs' losses and accuracies as a table.
pub const HISTORY_CSV: &str = "history.csv";
/// The losses and accuracies drawn.
pub const HISTORY_PNG: &str = "history.png";
/// A table's standardisation, beside the weights that need it.
pub const STANDARDIZE: &str = "standardize.json";
/// `--stats`'s records.
pub const STATS_CSV: &str = "stats.csv";
/// `--stats`'s figure.
pub const STATS_PNG: &str = "stats.png";

/// The files `bnlab train` writes into its folder: their presence means the folder holds a run.
pub const RUN_FILES: &[&str] = &[
    LAST,
    CHECKPOINT,
    BEST,
    HISTORY_JSON,
    HISTORY_CSV,
    HISTORY_PNG,
    STANDARDIZE,
    STATS_CSV,
    STATS_PNG,
];

/// A folder this process holds the lock of until it is dropped.
#[derive(Debug)]
pub struct RunFolder {
    /// The folder, as the user wrote it (or as the default was chosen).
    pub path: PathBuf,
    /// Whether this claim created the folder (so that a run that failed before its first
    /// checkpoint can remove it again).
    created: bool,
    _lock: File,
}

impl RunFolder {
    /// After a new run failed before its first checkpoint, leave the folder as the run found
    /// it: remove the run's files it holds (a claimed folder held none: [`claim`] refuses them
    /// or `--overwrite` removed them) and the folder itself when the claim created it. The next
    /// run into it then starts afresh instead of being told to resume a run that has no
    /// checkpoint. A run with a checkpoint (interrupted, or failed later) keeps everything.
    /// Best effort: what cannot be removed stays.
    pub fn abandon_unstarted(self) {
        if self.path.join(CHECKPOINT).exists() {
            return;
        }
        for name in RUN_FILES {
            let _ = std::fs::remove_file(self.path.join(name));
        }
        if self.created {
            // only an empty folder is removed
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// How to claim an explicitly named folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A new run: refuse a folder that holds an earlier run's files.
    New,
    /// A new run replacing an earlier one: remove its files first.
    Overwrite,
    /// Continue the run in the folder: its files are the run's own.
    Resume,
}

/// The run files under `dir` that a run would write, as paths relative to `dir`: `outputs`
/// lists them (for `compare`, its plot and each model's folder's files).
fn existing(dir: &Path, outputs: &[PathBuf]) -> Vec<PathBuf> {
    outputs
        .iter()
        .filter(|rel| dir.join(rel).exists())
        .cloned()
        .collect()
}

/// Create `dir` if needed and take its lock, without waiting: None when another process holds
/// it. `flag` names the argument in errors.
fn lock(dir: &Path, flag: &str) -> Result<Option<(File, bool)>> {
    let created = !dir.is_dir();
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Invalid(format!("{flag} {}: cannot create it ({e})", dir.display())))?;
    let file = File::open(dir)
        .map_err(|e| Error::Invalid(format!("{flag} {}: cannot open it ({e})", dir.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some((file, created))),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Invalid(format!(
            "{flag} {}: cannot lock it ({e})",
            dir.display()
        ))),
    }
}

/// Check that a claimed folder can be written, before hours of training.
fn check_writable(dir: &Path, flag: &str) -> Result<()> {
    tempfile::tempfile_in(dir).map_err(|e| {
        Error::Invalid(format!(
            "{flag} {}: cannot write there ({e})",
            dir.display()
        ))
    })?;
    Ok(())
}

/// Refuse the filesystem's root and the home folder as a run's folder: a run's files (and
/// `--overwrite`'s removals) belong in a folder of their own, not among everything else (`--out /`
/// as root wrote five run files into `/`). Also called before any work, so the refusal comes
/// first. Compared after resolving links and `..`, so
/// `--out ~/.` or `--out /tmp/..` are refused too.
pub fn check_not_shared(dir: &Path, flag: &str) -> Result<()> {
    let Some(resolved) = resolve(dir) else {
        return Ok(());
    };
    let what = if resolved.parent().is_none() {
        "the filesystem's root"
    } else if std::env::var_os("HOME")
        .and_then(|h| std::fs::canonicalize(h).ok())
        .is_some_and(|home| home == resolved)
    {
        "your home folder"
    } else {
        return Ok(());
    };
    Err(Error::Invalid(format!(
        "{flag} {}: is {what}; a run writes its files into a folder of its own (e.g. {flag} runs/NAME)",
        dir.display()
    )))
}

/// Where `dir` leads: resolved by the filesystem when it exists; else with its `.` and `..`
/// taken out by hand first (`home/new/..` is the home folder once `new` is created), then
/// resolved when that exists.
fn resolve(dir: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(dir) {
        return Some(p);
    }
    let mut lexical = PathBuf::new();
    for part in std::path::absolute(dir).ok()?.components() {
        match part {
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            std::path::Component::CurDir => {}
            part => lexical.push(part),
        }
    }
    Some(std::fs::canonicalize(&lexical).unwrap_or(lexical))
}

/// Claim the folder the user named (`--out`, or `--resume` with [`Claim::Resume`]). `outputs`
/// are the files the run writes, relative to the folder.
pub fn claim(dir: &Path, flag: &str, how: Claim, outputs: &[PathBuf]) -> Result<RunFolder> {
    check_not_shared(dir, flag)?;
    let Some((lock, created)) = lock(dir, flag)? else {
        return Err(Error::Invalid(format!(
            "{flag} {}: another bnlab run is writing to this folder; wait for it to end or choose another folder",
            dir.display()
        )));
    };
    let found = existing(dir, outputs);
    match how {
        Claim::Resume => {}
        Claim::New => {
            if let Some(first) = found.first() {
                let finished = found.iter().any(|f| f.ends_with(LAST));
                let (what, or_resume) = if finished {
                    ("a finished run", String::new())
                } else {
                    (
                        "an unfinished run",
                        format!(", continue it with --resume {}", dir.display()),
                    )
                };
                return Err(Error::Invalid(format!(
                    "{flag} {} already holds {what} ({}); choose another folder{or_resume}, or pass --overwrite to replace it",
                    dir.display(),
                    first.display()
                )));
            }
        }
        Claim::Overwrite => {
            for rel in &found {
                let path = dir.join(rel);
                std::fs::remove_file(&path).map_err(|e| {
                    Error::Invalid(format!(
                        "--overwrite: cannot remove {} ({e})",
                        path.display()
                    ))
                })?;
            }
        }
    }
    check_writable(dir, flag)?;
    Ok(RunFolder {
        path: dir.to_path_buf(),
        created,
        _lock: lock,
    })
}

/// The first of `base`, `base-2`, `base-3`, ... that holds no run and that no other run holds,
/// claimed: the default folder, so that running the same command twice keeps both runs.
pub fn claim_fresh(base: &Path, outputs: &[PathBuf]) -> Result<RunFolder> {
    for n in 1.. {
        let dir = if n == 1 {
            base.to_path_buf()
        } else {
            let mut name = base.as_os_str().to_owned();
            name.push(format!("-{n}"));
            PathBuf::from(name)
        };
        if dir.is_file() {
            continue;
        }
        let Some((lock, created)) = lock(&dir, "--out")? else {
            continue;
        };
        if !existing(&dir, outputs).is_empty() {
            continue;
        }
        check_writable(&dir, "--out")?;
        return Ok(RunFolder {
            path: dir,
            created,
            _lock: lock,
        });
    }
    unreachable!("the loop over folder numbers only ends by returning")
}

/// The folder of a new run: `out` exactly when given (replacing a run there if `overwrite`),
/// else the first free one of `default`, `default-2`, ... (see [`claim_fresh`]).
pub fn claim_out(
    out: Option<&Path>,
    overwrite: bool,
    default: &str,
    outputs: &[PathBuf],
) -> Result<RunFolder> {
    match out {
        Some(dir) => {
            let how = if overwrite {
                Claim::Overwrite
            } else {
                Claim::New
            };
            claim(dir, "--out", how, outputs)
        }
        None => claim_fresh(Path::new(default), outputs),
    }
}

/// What `bnlab train` writes into its folder, as [`claim`] takes it.
pub fn train_outputs() -> Vec<PathBuf> {
    RUN_FILES.iter().map(PathBuf::from).collect()
}
