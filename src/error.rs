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
    /// Training produced a NaN or infinite loss.
    #[error("{0}")]
    NonFinite(String),
    /// The run was interrupted (Ctrl-C) after a checkpoint was written.
    #[error("{0}")]
    Interrupted(String),
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
