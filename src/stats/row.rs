//! One row of `stats.csv`: a normalisation layer on a stats step, and the file's reading and
//! writing.

use super::describe::Distribution;
use crate::{Error, Result};
use std::fmt::Write as _;
use std::path::Path;

/// A normalisation layer's statistics on one training step.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatsRow {
    /// The step, counted over the whole run from 1.
    pub step: u64,
    /// The epoch it belongs to, from 1.
    pub epoch: usize,
    /// The layer's state-dict path.
    pub layer: String,
    /// The layer's class name.
    pub kind: String,
    /// The layer's input in this step's batch.
    pub input: Distribution,
    /// The layer's output in this step's batch.
    pub output: Distribution,
    /// Average over units of |batch mean − running mean|, the running mean as it was before
    /// this step (what eval mode would have used); BatchNorm with running statistics only.
    pub mean_gap: Option<f64>,
    /// Average over units of (batch variance, unbiased) / (running variance before the step).
    pub var_ratio: Option<f64>,
    /// The L2 norm of the loss's gradient with respect to the layer's output.
    pub grad_norm: Option<f64>,
    /// The L2 (Frobenius) norm of the weight of the Linear or Conv2d before the layer.
    pub weight_norm_before: Option<f64>,
}

const DIST: [&str; 7] = [
    "p15", "p50", "p85", "mean_avg", "mean_sd", "std_avg", "std_sd",
];
const TAIL: [&str; 4] = ["mean_gap", "var_ratio", "grad_norm", "weight_norm_before"];

/// The header line of `stats.csv`.
pub fn csv_header() -> String {
    let mut cols = vec![
        "step".to_string(),
        "epoch".into(),
        "layer".into(),
        "type".into(),
    ];
    for side in ["in", "out"] {
        cols.extend(DIST.iter().map(|d| format!("{side}_{d}")));
    }
    cols.extend(TAIL.iter().map(|t| t.to_string()));
    cols.join(",")
}

fn dist_cells(d: &Distribution) -> [f64; 7] {
    [
        d.p15, d.p50, d.p85, d.mean_avg, d.mean_sd, d.std_avg, d.std_sd,
    ]
}

/// The rows as CSV (header first); a value that does not apply is an empty cell. Numbers are
/// written in Rust's shortest form that reads back to the same f64.
pub fn to_csv(rows: &[StatsRow]) -> String {
    let mut s = csv_header();
    s.push('\n');
    for r in rows {
        let _ = write!(s, "{},{},{},{}", r.step, r.epoch, r.layer, r.kind);
        for v in dist_cells(&r.input).iter().chain(&dist_cells(&r.output)) {
            let _ = write!(s, ",{v:?}");
        }
        for v in [r.mean_gap, r.var_ratio, r.grad_norm, r.weight_norm_before] {
            match v {
                Some(v) => {
                    let _ = write!(s, ",{v:?}");
                }
                None => s.push(','),
            }
        }
        s.push('\n');
    }
    s
}

/// Write the rows to `path` as CSV, atomically.
pub fn write_csv(rows: &[StatsRow], path: &Path) -> Result<()> {
    crate::io::write_atomic(path, to_csv(rows).as_bytes())
}

/// Read rows back from a `stats.csv`; errors name the file and line.
pub fn read_csv(path: &Path) -> Result<Vec<StatsRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    if lines.next() != Some(csv_header().as_str()) {
        return Err(Error::bad_file(
            path,
            "not a stats.csv: its header is not bnlab's",
        ));
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            parse_row(line).ok_or_else(|| {
                Error::bad_file(path, format!("line {}: not a row of statistics", i + 2))
            })
        })
        .collect()
}

fn parse_row(line: &str) -> Option<StatsRow> {
    let cells: Vec<&str> = line.split(',').collect();
    if cells.len() != 4 + 14 + 4 {
        return None;
    }
    let num = |i: usize| cells[i].parse::<f64>().ok();
    let dist = |at: usize| {
        Some(Distribution {
            p15: num(at)?,
            p50: num(at + 1)?,
            p85: num(at + 2)?,
            mean_avg: num(at + 3)?,
            mean_sd: num(at + 4)?,
            std_avg: num(at + 5)?,
            std_sd: num(at + 6)?,
        })
    };
    let optional = |i: usize| -> Option<Option<f64>> {
        if cells[i].is_empty() {
            Some(None)
        } else {
            num(i).map(Some)
        }
    };
    Some(StatsRow {
        step: cells[0].parse().ok()?,
        epoch: cells[1].parse().ok()?,
        layer: cells[2].to_string(),
        kind: cells[3].to_string(),
        input: dist(4)?,
        output: dist(11)?,
        mean_gap: optional(18)?,
        var_ratio: optional(19)?,
        grad_norm: optional(20)?,
        weight_norm_before: optional(21)?,
    })
}
