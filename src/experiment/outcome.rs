//! What an experiment gives: its numbers (`results.json`), its table (printed), its figures
//! (PNG) and the words of its page. `page.rs` turns it into HTML, `write.rs` writes it all
//! into a folder.

use crate::figure::Figure;

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
