//! The experiments by name: one rebuilt from the options a shard recorded, so that a merge
//! makes its outcome without the command line that ran it.

use super::design::Design;
use super::{batch_size, ioffe2015, lr_sweep, placement, smoothness};
use crate::{Error, Result};
use serde_json::Value;

/// The names of the experiments, as the command takes them.
pub const NAMES: [&str; 5] = [
    "ioffe2015",
    "lr-sweep",
    "batch-size",
    "placement",
    "smoothness",
];

/// Experiment `name` with the recorded `options` (which leave out the seed: `seed` is put
/// back), checked as the command checks them.
pub fn design_of(name: &str, options: &Value, seed: u64) -> Result<Box<dyn Design>> {
    let mut options = options.clone();
    if let Some(m) = options.as_object_mut() {
        m.insert("seed".into(), seed.into());
    }
    fn read<T: serde::de::DeserializeOwned>(name: &str, v: Value) -> Result<T> {
        serde_json::from_value(v)
            .map_err(|e| Error::Invalid(format!("the options recorded for {name}: {e}")))
    }
    Ok(match name {
        "ioffe2015" => {
            let o: ioffe2015::Options = read(name, options)?;
            o.validate()?;
            Box::new(o)
        }
        "lr-sweep" => {
            let o: lr_sweep::Options = read(name, options)?;
            o.validate()?;
            Box::new(o)
        }
        "batch-size" => {
            let o: batch_size::Options = read(name, options)?;
            o.validate()?;
            Box::new(o)
        }
        "placement" => {
            let o: placement::Options = read(name, options)?;
            o.validate()?;
            Box::new(o)
        }
        "smoothness" => {
            let o: smoothness::Options = read(name, options)?;
            o.validate()?;
            Box::new(o)
        }
        other => {
            return Err(Error::Invalid(format!(
                "no experiment is called {other:?} (there are {})",
                NAMES.join(", ")
            )))
        }
    })
}
