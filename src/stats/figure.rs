//! `stats.png`, a [`Figure`]: one panel per normalisation layer with its input's and output's percentiles
//! over the steps (the BatchNorm paper's Figure 1(b, c) for a training run), then the gradient
//! norm reaching each layer, its batch variance against its running one, and the weight norm
//! of the layer before it.

use super::row::StatsRow;
use crate::figure::{Figure, Legend, Panel, Series};
use crate::Result;
use std::path::Path;

/// The palette's grey: a legend entry for a line style, not for one series.
const GREY: usize = 7;

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
        // the outputs top to bottom as their lines lie (85th percentile highest), then one
        // grey entry for the dashed inputs, which share the outputs' colours
        type Pick = fn(&super::Distribution) -> f64;
        let percentiles: [(&str, usize, Pick); 3] = [
            ("p85", 2, |d| d.p85),
            ("p50", 1, |d| d.p50),
            ("p15", 0, |d| d.p15),
        ];
        let mut s = vec![];
        for (label, color, pick) in percentiles {
            let output = of(rows, name)
                .map(|r| (r.step as f64, pick(&r.output)))
                .collect();
            s.push(series(format!("output {label}"), color, false, output));
        }
        for (_, color, pick) in percentiles {
            let input = of(rows, name)
                .map(|r| (r.step as f64, pick(&r.input)))
                .collect();
            s.push(series(String::new(), color, true, input));
        }
        s.push(series("input (dashed)".into(), GREY, true, vec![]));
        panels.push(Panel {
            title: format!("{name} ({kind}), unit {unit}: percentiles"),
            x_label: "step".into(),
            y_label: "value".into(),
            series: s,
            legend: Legend::UpperRight,
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
