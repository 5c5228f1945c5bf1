//! An experiment's HTML report (placeholder until the page builder lands).

use super::outcome::Outcome;
use crate::Result;

/// A page: written as plain text for now.
pub struct Page(String);

impl Page {
    /// Write the page.
    pub fn write(&self, path: &std::path::Path) -> Result<()> {
        crate::io::write_atomic(path, self.0.as_bytes())
    }
}

/// The report of `o`.
pub fn page(o: &Outcome, _pngs: &[(&str, Vec<u8>)]) -> Result<Page> {
    Ok(Page(o.title.clone()))
}
