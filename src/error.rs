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
    /// A state dict does not fit the model it is loaded into.
    #[error("state dict: {0}")]
    StateDict(String),
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
