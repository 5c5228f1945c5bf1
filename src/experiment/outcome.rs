//! What an experiment gives: its numbers (`results.json`), its table (printed), its figures
//! (PNG) and the words of its report, and the writing of all of them into a folder.

use crate::figure::Figure;
use crate::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A table of text cells, printed with aligned columns and shown in the report.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// The column names.
    pub headers: Vec<String>,
    /// The rows, each as many cells as there are headers.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: vec![],
        }
    }

    /// Add a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: columns padded to their widest cell, separated by two spaces.
    pub fn to_text(&self) -> String {
        let cols = self.headers.len();
        let width = |c: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(c))
                .chain(std::iter::once(&self.headers[c]))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_string()
        };
        let mut s = line(&self.headers);
        s.push('\n');
        s.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1)));
        s.push('\n');
        for r in &self.rows {
            s.push_str(&line(r));
            s.push('\n');
        }
        s
    }
}

/// An experiment's whole result.
pub struct Outcome {
    /// The command's name (`ioffe2015`).
    pub name: &'static str,
    /// The report's title.
    pub title: String,
    /// How the experiment was run: data, models, training, budget (paragraphs).
    pub protocol: Vec<String>,
    /// The printed table.
    pub table: Table,
    /// What the numbers say, against the published sources (paragraphs).
    pub findings: Vec<String>,
    /// (file name, caption, figure).
    pub figures: Vec<(String, String, Figure)>,
    /// (name, text as PyTorch prints it) of each network trained.
    pub models: Vec<(String, String)>,
    /// The numbers, as `results.json`.
    pub results: serde_json::Value,
    /// Wall-clock seconds of the whole experiment.
    pub seconds: f64,
}

/// The report's file name inside an experiment's folder.
pub const REPORT: &str = "report.html";
/// The numbers' file name.
pub const RESULTS: &str = "results.json";

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
        let page = super::report::page(self, &pngs)?;
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
