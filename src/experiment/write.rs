//! The writing of an experiment's [`Outcome`] into its folder: `results.json`, the figures
//! and the HTML page (built by `page.rs`), each file atomically.

use super::outcome::{Outcome, REPORT, RESULTS};
use crate::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

impl Outcome {
    /// The files this outcome writes into its folder.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut f = vec![PathBuf::from(RESULTS), PathBuf::from(REPORT)];
        f.extend(self.figures.iter().map(|(n, _, _)| PathBuf::from(n)));
        f
    }

    /// Print the table, then write `results.json`, the figures and the report into `dir`
    /// (each file atomically), and say what was written.
    pub fn write(&self, dir: &Path, log: &mut dyn Write) -> Result<()> {
        let out = |e| crate::Error::io("<output>", e);
        write!(log, "{}", self.table.to_text()).map_err(out)?;
        for f in &self.findings {
            writeln!(log, "{f}").map_err(out)?;
        }
        let json = serde_json::to_string_pretty(&self.results).expect("results serialise");
        crate::io::write_atomic(&dir.join(RESULTS), json.as_bytes())?;
        let mut pngs = vec![];
        for (name, caption, figure) in &self.figures {
            pngs.push((caption.as_str(), figure.write(&dir.join(name))?));
        }
        let page = super::page::page(self, &pngs)?;
        page.write(&dir.join(REPORT))?;
        let names: Vec<String> = self
            .files()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        writeln!(
            log,
            "{:.1} seconds. Wrote {}/{}",
            self.seconds,
            dir.display(),
            names.join(", ")
        )
        .map_err(out)?;
        Ok(())
    }
}
