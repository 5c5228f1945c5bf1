//! `stats.png`: one panel per normalisation layer with its input's and output's percentiles
//! over the steps (the BatchNorm paper's Figure 1(b, c) for a training run), then the gradient
//! norm reaching each layer, its batch variance against its running one, and the weight norm
//! of the layer before it.

use super::row::StatsRow;
use crate::figure::{Figure, Legend, Panel, Series};
use crate::Result;
use std::path::Path;

/// A summary panel: title, y axis, log scale, and the number it plots of a row.
type SummaryPanel = (
    &'static str,
    &'static str,
    bool,
    fn(&StatsRow) -> Option<f64>,
);

/// The layers of `rows`, in their first appearance's order.
fn layer_names(rows: &[StatsRow]) -> Vec<&str> {
    let mut names: Vec<&str> = vec![];
    for r in rows {
        if !names.contains(&r.layer.as_str()) {
            names.push(&r.layer);
        }
    }
    names
}

fn series(label: String, color: usize, dashed: bool, points: Vec<(f64, f64)>) -> Series {
    Series {
        label,
        points,
        color,
        dashed,
        markers: false,
    }
}

/// The statistics figure of `rows` (one unit's percentiles, `unit` naming it in the titles).
pub fn figure(rows: &[StatsRow], unit: usize) -> Figure {
    let names = layer_names(rows);
    fn of<'a>(rows: &'a [StatsRow], name: &'a str) -> impl Iterator<Item = &'a StatsRow> {
        rows.iter().filter(move |r| r.layer == name)
    }
    let mut panels = vec![];
    for name in &names {
        let kind = of(rows, name).next().map_or("", |r| r.kind.as_str());
        let mut s = vec![];
        for (k, (label, pick)) in [
            (
                "p15",
                (|d: &super::Distribution| d.p15) as fn(&super::Distribution) -> f64,
            ),
            ("p50", |d| d.p50),
            ("p85", |d| d.p85),
        ]
        .into_iter()
        .enumerate()
        {
            let input = of(rows, name)
                .map(|r| (r.step as f64, pick(&r.input)))
                .collect();
            let output = of(rows, name)
                .map(|r| (r.step as f64, pick(&r.output)))
                .collect();
            // one legend entry per percentile (the output's), and one for the dashed input
            let input_label = if k == 1 {
                "input: dashed".to_string()
            } else {
                String::new()
            };
            s.push(series(input_label, k, true, input));
            s.push(series(format!("output {label}"), k, false, output));
        }
        panels.push(Panel {
            title: format!("{name} ({kind}): unit {unit}, 15/50/85th percentiles"),
            x_label: "step".into(),
            y_label: "value".into(),
            series: s,
            legend: Legend::UpperLeft,
            ..Default::default()
        });
    }
    let per_layer = |pick: fn(&StatsRow) -> Option<f64>| -> Vec<Series> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let pts = of(rows, name)
                    .filter_map(|r| pick(r).map(|v| (r.step as f64, v)))
                    .collect();
                series(name.to_string(), i, false, pts)
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let summary: [SummaryPanel; 3] = [
        (
            "Gradient norm reaching each layer",
            "||dL/d output||",
            true,
            |r| r.grad_norm,
        ),
        (
            "Batch variance / running variance (mean over units)",
            "ratio",
            false,
            |r| r.var_ratio,
        ),
        ("Weight norm of the layer before", "||W||", false, |r| {
            r.weight_norm_before
        }),
    ];
    for (title, y, log_y, pick) in summary {
        let s = per_layer(pick);
        if !s.is_empty() {
            panels.push(Panel {
                title: title.into(),
                x_label: "step".into(),
                y_label: y.into(),
                log_y,
                series: s,
                ..Default::default()
            });
        }
    }
    Figure::new(panels, 2)
}

/// Write `stats.png` for `rows` at `path`.
pub fn write(rows: &[StatsRow], unit: usize, path: &Path) -> Result<()> {
    figure(rows, unit).write(path).map(|_| ())
}
