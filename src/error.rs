//! One error type for the library: every variant says what went wrong and where (a file, a key,
//! an argument), so the command line can print it as one readable line.

use std::path::PathBuf;

/// Every error bnlab returns; its `Display` is one line naming the file, key or argument at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file (or folder) the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its contents are not what they must be.
    #[error("{path}: {msg}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents.
        msg: String,
    },
    /// A tensor's shape does not fit the operation or layer it was given to.
    #[error("shape error: {0}")]
    Shape(String),
    /// A state dict does not fit the model it is loaded into: which keys are missing,
    /// unexpected or of the wrong shape or dtype (nothing was loaded).
    #[error("{}state dict does not fit the model: {keys}", file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    StateDict {
        /// The file the state dict was read from (`None` for one given in memory).
        file: Option<PathBuf>,
        /// What did not fit.
        keys: IncompatibleKeys,
    },
    /// An invalid argument or option.
    #[error("{0}")]
    Invalid(String),
    /// A download failed.
    #[error("download {url}: {msg}")]
    Download {
        /// The address fetched (the file's name when every mirror failed).
        url: String,
        /// Why it failed: a network or HTTP error, a checksum mismatch, an unreadable archive.
        msg: String,
    },
    /// Training produced a NaN or infinite loss: where, and what it was. A caller phrases its
    /// own advice from the fields (the command line names `--lr`).
    #[error("training stopped: {0} (try a lower learning rate)")]
    NonFinite(NonFiniteLoss),
    /// The run was interrupted (Ctrl-C) after a checkpoint was written.
    #[error("{0}")]
    Interrupted(String),
}

/// Where a run's loss stopped being finite, as [`Error::NonFinite`] reports it. Its `Display`
/// says what was seen and where, without advice: "the loss is NaN at epoch 2, step 5 of 10".
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NonFiniteLoss {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The step within the epoch, from 1: the step whose loss was not finite, or the epoch's
    /// last step when the evaluation after it found the loss.
    pub step: usize,
    /// The epoch's number of steps.
    pub steps: usize,
    /// What was not finite.
    pub seen: LossSeen,
}

/// The loss that was found not finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossSeen {
    /// A training step's loss (the model was not updated with it).
    Step(f32),
    /// The evaluation after the epoch: its last step's update made the model's losses on the
    /// training and validation sets these (one of them not finite).
    Evaluation {
        /// The loss over the training set.
        train: f64,
        /// The loss over the validation set.
        validation: f64,
    },
}

impl std::fmt::Display for NonFiniteLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let NonFiniteLoss {
            epoch, step, steps, ..
        } = self;
        match self.seen {
            LossSeen::Step(value) => {
                write!(f, "the loss is {value} at epoch {epoch}, step {step} of {steps}")
            }
            LossSeen::Evaluation { train, validation } => write!(
                f,
                "the loss is not finite after epoch {epoch}, step {step} of {steps}, the epoch's last (train {train}, validation {validation})"
            ),
        }
    }
}

/// What keeps a state dict from loading strictly into a model, as PyTorch's
/// `_IncompatibleKeys` (`missing_keys`, `unexpected_keys`) with the keys present in both but of
/// another shape or dtype (which PyTorch reports as size mismatches). Keys are named as in the
/// state dict (with its prefix).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncompatibleKeys {
    /// Keys the model has and the state dict lacks, in the model's order.
    pub missing: Vec<String>,
    /// Keys the state dict has and the model lacks, in name order.
    pub unexpected: Vec<String>,
    /// Keys both have, whose tensors differ in shape or dtype, in the model's order.
    pub mismatched: Vec<KeyMismatch>,
}

/// A key whose tensor in the state dict does not fit the model's.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyMismatch {
    /// The key.
    pub key: String,
    /// The shape the model needs (PyTorch's layout; `[]` for a scalar).
    pub expected: Vec<usize>,
    /// The shape in the state dict.
    pub found: Vec<usize>,
    /// The dtype the model needs (`F32`, or `I64` for num_batches_tracked).
    pub expected_dtype: &'static str,
    /// The dtype in the state dict.
    pub found_dtype: &'static str,
}

impl IncompatibleKeys {
    /// Whether everything fits.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

/// How many names of one kind a message lists before it says how many more there are.
const NAMES_SHOWN: usize = 3;

/// "2 missing (a, b)" or "7 missing (a, b, c and 4 more)".
fn summarise(
    f: &mut std::fmt::Formatter<'_>,
    what: &str,
    items: &[impl std::fmt::Display],
) -> std::fmt::Result {
    write!(f, "{} {what} (", items.len())?;
    for (i, item) in items.iter().take(NAMES_SHOWN).enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{item}")?;
    }
    if items.len() > NAMES_SHOWN {
        write!(f, " and {} more", items.len() - NAMES_SHOWN)?;
    }
    write!(f, ")")
}

impl std::fmt::Display for IncompatibleKeys {
    /// One line: "1 missing key (b2.1.running_var); 1 mismatched key (b2.0.weight: [128, 255]
    /// in the state dict, the model needs [128, 256])", with at most three names of each kind.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize| if n == 1 { "key" } else { "keys" };
        let mut first = true;
        let mut sep = |f: &mut std::fmt::Formatter<'_>| {
            let s = if first { "" } else { "; " };
            first = false;
            write!(f, "{s}")
        };
        if !self.missing.is_empty() {
            sep(f)?;
            summarise(
                f,
                &format!("missing {}", plural(self.missing.len())),
                &self.missing,
            )?;
        }
        if !self.unexpected.is_empty() {
            sep(f)?;
            let what = format!("unexpected {}", plural(self.unexpected.len()));
            summarise(f, &what, &self.unexpected)?;
        }
        if !self.mismatched.is_empty() {
            sep(f)?;
            let what = format!("mismatched {}", plural(self.mismatched.len()));
            summarise(f, &what, &self.mismatched)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for KeyMismatch {
    /// "b2.0.weight: [128, 255] in the state dict, the model needs [128, 256]" (dtypes shown
    /// when they differ).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let KeyMismatch {
            key,
            expected,
            found,
            expected_dtype,
            found_dtype,
        } = self;
        if expected_dtype == found_dtype {
            write!(
                f,
                "{key}: {found:?} in the state dict, the model needs {expected:?}"
            )
        } else {
            write!(
                f,
                "{key}: {found_dtype} {found:?} in the state dict, the model needs {expected_dtype} {expected:?}"
            )
        }
    }
}

/// `std::result::Result` with bnlab's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`, wrapping the operating system's error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    /// An [`Error::BadFile`]: `path` was read but `msg` says what is wrong with it.
    pub fn bad_file(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
