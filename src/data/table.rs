//! Tables of numbers from CSV files (`--dataset csv`): a header row, numeric cells, one target
//! column; standardisation with the training split's statistics; a seeded split.
//!
//! The text is untrusted: every error names the file, the line and the column, and nothing
//! panics on any input (fuzzed by `fuzz/fuzz_targets/csv.rs`).

use crate::rng::Rng;
use crate::{Error, Result};
use std::path::Path;

/// Largest CSV file read (1 GiB): a guard against reading something that is not a table.
pub const MAX_BYTES: u64 = 1 << 30;

/// A CSV file's rows: the features (every column but the target) and the target.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The feature columns' names, in file order.
    pub columns: Vec<String>,
    /// `rows * columns.len()` values, row after row.
    pub features: Vec<f32>,
    /// The target of each row, with the line it came from (for errors).
    pub targets: Vec<(f64, u64)>,
}

impl Table {
    /// Rows in the table.
    pub fn rows(&self) -> usize {
        self.targets.len()
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Table {
        let f = self.columns.len();
        Table {
            columns: self.columns.clone(),
            features: indices
                .iter()
                .flat_map(|&i| self.features[i * f..(i + 1) * f].iter().copied())
                .collect(),
            targets: indices.iter().map(|&i| self.targets[i]).collect(),
        }
    }
}

/// Read `path` with `target` as the target column. Errors: an unreadable file, no header, a
/// missing target column, a ragged row, a cell that is not a finite number, no rows.
pub fn read_csv(path: &Path, target: &str) -> Result<Table> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > MAX_BYTES {
        return Err(Error::bad_file(
            path,
            format!("is larger than {MAX_BYTES} bytes"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_csv(&bytes, path, target)
}

/// [`read_csv`] on bytes already read; `path` names them in errors.
pub fn parse_csv(bytes: &[u8], path: &Path, target: &str) -> Result<Table> {
    let bad = |msg: String| Error::bad_file(path, msg);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(format!("unreadable header row ({e})")))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(bad("has no header row".into()));
    }
    let target_col = header.iter().position(|h| h == target).ok_or_else(|| {
        bad(format!(
            "has no column '{target}' for --target (its columns: {})",
            header.join(", ")
        ))
    })?;
    if header.len() < 2 {
        return Err(bad(format!(
            "has only the target column '{target}': there are no features"
        )));
    }
    let columns: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != target_col)
        .map(|(_, h)| h.clone())
        .collect();
    let mut table = Table {
        columns,
        features: Vec::new(),
        targets: Vec::new(),
    };
    // the line a byte offset is on, counted here: the reader's own count skips blank lines
    let mut lines = LineCounter {
        bytes,
        counted_to: 0,
        line: 1,
    };
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                return Err(bad(format!("line {line}: not readable as CSV ({e})")));
            }
        };
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        if record.len() == 1 && record.get(0) == Some("") {
            continue; // a blank line
        }
        if record.len() != header.len() {
            return Err(bad(format!(
                "line {line}: {} cells where the header has {} columns",
                record.len(),
                header.len()
            )));
        }
        for (i, cell) in record.iter().enumerate() {
            let v: f64 = cell.parse().map_err(|_| {
                bad(format!(
                    "line {line}, column {} ({}): '{cell}' is not a number",
                    i + 1,
                    header[i]
                ))
            })?;
            if !v.is_finite() {
                return Err(bad(format!(
                    "line {line}, column {} ({}): '{cell}' is not a finite number",
                    i + 1,
                    header[i]
                )));
            }
            if i != target_col && !(v as f32).is_finite() {
                return Err(bad(format!(
                    "line {line}, column {} ({}): '{cell}' is beyond float32's range",
                    i + 1,
                    header[i]
                )));
            }
            if i == target_col {
                table.targets.push((v, line));
            } else {
                table.features.push(v as f32);
            }
        }
    }
    if table.rows() == 0 {
        return Err(bad("has a header but no rows".into()));
    }
    Ok(table)
}

/// Line numbers of byte offsets that come in increasing order (the records of one file), each
/// newline counted once: counting from the file's start for every record took minutes for
/// MNIST as a 110 MB table (60,000 records).
struct LineCounter<'a> {
    bytes: &'a [u8],
    /// Newlines before this offset are counted in `line`.
    counted_to: usize,
    line: u64,
}

impl LineCounter<'_> {
    /// The 1-based line of the record the reader resumed at `byte` (after any blank lines).
    fn line_at(&mut self, byte: u64) -> u64 {
        let bytes = self.bytes;
        let mut end = (byte as usize).min(bytes.len());
        // a record's position is where the reader resumed: skip the blank lines it passed
        while end < bytes.len() && matches!(bytes[end], b'\n' | b'\r') {
            end += 1;
        }
        if end < self.counted_to {
            // an offset behind the last one (not expected): count again from the start
            (self.counted_to, self.line) = (0, 1);
        }
        let newlines = bytes[self.counted_to..end].iter().filter(|&&b| b == b'\n');
        self.line += newlines.count() as u64;
        self.counted_to = end;
        self.line
    }
}

/// Per-column mean and standard deviation (the population's, as scikit-learn's StandardScaler
/// uses) of a training table; a constant column gets 1 so that it stays finite.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardizer {
    /// The columns, in order (a table to standardise must have the same).
    pub columns: Vec<String>,
    /// Each column's mean.
    pub mean: Vec<f64>,
    /// Each column's standard deviation (1 for a constant column).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// The statistics of `train`'s columns, in f64.
    pub fn fit(train: &Table) -> Standardizer {
        let f = train.columns.len();
        let n = train.rows() as f64;
        let mut mean = vec![0.0; f];
        for row in train.features.chunks_exact(f) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; f];
        for row in train.features.chunks_exact(f) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        let std = var
            .iter()
            .map(|s| {
                let sd = (s / n).sqrt();
                if sd > 0.0 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Standardizer {
            columns: train.columns.clone(),
            mean,
            std,
        }
    }

    /// `table`'s features as (x - mean) / std, or an error naming `path` when its columns are
    /// not the training table's.
    pub fn apply(&self, table: &Table, path: &Path) -> Result<Vec<f32>> {
        if table.columns != self.columns {
            return Err(Error::bad_file(
                path,
                format!(
                    "has feature columns {} where the training data has {}",
                    table.columns.join(", "),
                    self.columns.join(", ")
                ),
            ));
        }
        let f = self.columns.len();
        Ok(table
            .features
            .chunks_exact(f)
            .flat_map(|row| {
                row.iter()
                    .zip(&self.mean)
                    .zip(&self.std)
                    .map(|((&v, m), s)| ((v as f64 - m) / s) as f32)
            })
            .collect())
    }
}

/// A seeded split of `rows` rows: (training indices, test indices), the test part being
/// `fraction` of the rows rounded, at least one of each.
pub fn split(
    rows: usize,
    fraction: f64,
    seed: u64,
    path: &Path,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::Invalid(format!(
            "--test-fraction must be between 0 and 1 (exclusive), got {fraction}"
        )));
    }
    if rows < 2 {
        return Err(Error::bad_file(
            path,
            format!("has {rows} rows: too few to split into training and test sets"),
        ));
    }
    let test = ((rows as f64 * fraction).round() as usize).clamp(1, rows - 1);
    let mut order: Vec<usize> = (0..rows).collect();
    let mut rng = Rng::seed(seed);
    // Fisher-Yates, from the seeded generator
    for i in (1..rows).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let test_idx = order[..test].to_vec();
    let train_idx = order[test..].to_vec();
    Ok((train_idx, test_idx))
}

/// The targets as class labels: integers in 0..256 for the multi-class mode, 0 or 1 for the
/// binary mode; errors name the file and line.
pub fn labels(table: &Table, binary: bool, path: &Path) -> Result<Vec<u8>> {
    table
        .targets
        .iter()
        .map(|&(v, line)| {
            let ok = v.fract() == 0.0 && v >= 0.0 && if binary { v <= 1.0 } else { v < 256.0 };
            if ok {
                Ok(v as u8)
            } else {
                let want = if binary {
                    "0 or 1 (--mode binary)"
                } else {
                    "a class number 0, 1, 2, ... (below 256)"
                };
                Err(Error::bad_file(
                    path,
                    format!("line {line}: target {v} is not {want}"),
                ))
            }
        })
        .collect()
}
