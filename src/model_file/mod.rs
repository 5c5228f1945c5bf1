//! Model files: a model written as PyTorch prints it (`print(model)`), for models built from
//! named children and `nn.Sequential` whose forward runs the children in the order listed.
//!
//! ```text
//! Net(
//!   (features): Sequential(
//!     (0): Flatten(start_dim=1, end_dim=-1)
//!     (1): Linear(in_features=784, out_features=300, bias=True)
//!     (2): BatchNorm1d(300, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
//!     (3): ReLU()
//!   )
//!   (head): Linear(in_features=300, out_features=10, bias=False)
//! )
//! ```
//!
//! Arguments are taken as PyTorch prints them (keyword or positional, tuples, `True`, `None`,
//! quoted strings) or left out for PyTorch's defaults; a value bnlab cannot honour is an error,
//! never ignored. The state dict has PyTorch's names for the module. A Linear that meets an
//! input of more than two dimensions whose trailing dimensions multiply to its `in_features`
//! flattens it first, as the seed's `forward` does inline (so the seed's printed `BNModel`
//! trains as it is).
//!
//! - [`parse`]: the text to a tree of [`ModuleText`], with places for errors.
//! - [`args`]: a module's arguments against its class's signature.
//! - [`build`](mod@build): the tree to a [`Net`], shapes checked before training.
//! - [`print`](mod@print): a [`Net`] back to PyTorch's printed text.

pub mod args;
pub mod build;
mod layers;
pub mod parse;
pub mod print;

pub use build::SUPPORTED;
pub use parse::{ModuleText, Value};

use crate::graph::ParamStore;
use crate::nn::Net;
use crate::rng::Rng;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Files larger than this are not model files (the seed's is 600 bytes): a guard against
/// reading a dataset by mistake.
pub const MAX_BYTES: u64 = 1 << 20;

/// A model file read and parsed: its text (kept, so that a run can save it beside its weights)
/// and its tree of modules.
#[derive(Clone, Debug)]
pub struct ModelFile {
    /// Where it was read from (the name in errors).
    pub path: PathBuf,
    /// The text as read.
    pub text: String,
    /// The modules it describes.
    pub tree: ModuleText,
}

impl ModelFile {
    /// Read and parse `path`. Errors name the file, and for its contents the line and column.
    pub fn read(path: &Path) -> Result<ModelFile> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::bad_file(path, "is a folder, not a model file"));
        }
        if meta.len() > MAX_BYTES {
            return Err(Error::bad_file(
                path,
                format!(
                    "is {} bytes, too large for a model file (at most {MAX_BYTES})",
                    meta.len()
                ),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| Error::bad_file(path, format!("is not UTF-8 text ({e})")))?;
        ModelFile::from_text(text, path)
    }

    /// Parse `text`, naming it `path` in errors.
    pub fn from_text(text: String, path: &Path) -> Result<ModelFile> {
        let tree = parse::parse(&text, &path.display().to_string())?;
        Ok(ModelFile {
            path: path.to_path_buf(),
            text,
            tree,
        })
    }

    /// The model's class name (the first word of the file).
    pub fn class(&self) -> &str {
        &self.tree.class
    }

    /// Build the model for inputs of shape `input` (batch dimension included), its parameters
    /// in `params` drawn from `rng` as PyTorch's initialisation draws them.
    pub fn build(&self, input: &[usize], params: &mut ParamStore, rng: &mut Rng) -> Result<Net> {
        build::build(
            &self.tree,
            &self.path.display().to_string(),
            input,
            params,
            rng,
        )
    }
}
