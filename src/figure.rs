//! Line charts in a grid of panels, as PNG: the statistics' and the experiments' figures.
//!
//! Drawn like [`crate::plot`]'s history plot (plotters on an RGB buffer, the vendored font,
//! PNG written atomically), but for any (x, y) series: steps, learning rates on a log axis,
//! batch sizes. A non-finite point breaks its line; a series can be markers only, and a panel
//! can carry crosses at the bottom edge (a run that diverged has no value to draw).

use crate::plot::{encode_png, padded, register_font, write_png, PALETTE};
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One line (or set of markers) of a panel.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// The legend's text.
    pub label: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Index into the palette (Tableau 10).
    pub color: usize,
    /// A dashed line (and a lighter colour).
    pub dashed: bool,
    /// Draw a marker at every point.
    pub markers: bool,
}

/// Where a panel's legend goes.
#[derive(Clone, Copy, Debug, Default)]
pub enum Legend {
    /// Top right.
    #[default]
    UpperRight,
    /// Top left.
    UpperLeft,
    /// Bottom right.
    LowerRight,
    /// Bottom left.
    LowerLeft,
}

/// One chart of a figure.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    /// Shown above the chart.
    pub title: String,
    /// The x axis's name.
    pub x_label: String,
    /// The y axis's name.
    pub y_label: String,
    /// A logarithmic x axis (points with x ≤ 0 are left out).
    pub log_x: bool,
    /// The log x axis's base: 10 when 0 (the default); 2 puts ticks on powers of two.
    pub log_x_base: f64,
    /// A logarithmic y axis (points with y ≤ 0 are left out).
    pub log_y: bool,
    /// A fixed y range instead of the data's.
    pub y_range: Option<(f64, f64)>,
    /// The lines.
    pub series: Vec<Series>,
    /// (x, colour): a cross at the bottom of the chart, for a run with no value at x.
    pub crosses: Vec<(f64, usize)>,
    /// Where the legend goes.
    pub legend: Legend,
}

/// Panels in a grid, `columns` wide, each `panel_size` pixels.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The charts, row by row.
    pub panels: Vec<Panel>,
    /// Panels per row (at least 1).
    pub columns: usize,
    /// Width and height of one panel in pixels.
    pub panel_size: (u32, u32),
}

impl Figure {
    /// A figure of `panels`, `columns` per row, 600x420 each.
    pub fn new(panels: Vec<Panel>, columns: usize) -> Figure {
        Figure {
            panels,
            columns: columns.max(1),
            panel_size: (600, 420),
        }
    }

    /// The figure as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>> {
        if self.panels.is_empty() {
            return Err(Error::Invalid("a figure needs at least one panel".into()));
        }
        register_font().map_err(Error::Invalid)?;
        let cols = self.columns.min(self.panels.len());
        let rows = self.panels.len().div_ceil(cols);
        let (w, h) = (
            self.panel_size.0 * cols as u32,
            self.panel_size.1 * rows as u32,
        );
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            let areas = root.split_evenly((rows, cols));
            for (panel, area) in self.panels.iter().zip(&areas) {
                draw(panel, area).map_err(|e| Error::Invalid(format!("drawing failed: {e}")))?;
            }
            root.present().map_err(draw_err)?;
        }
        encode_png(w, h, &rgb).map_err(|e| Error::io("<png>", e))
    }

    /// Write the figure to `path` as PNG, atomically.
    pub fn write(&self, path: &Path) -> Result<Vec<u8>> {
        let png = self.png()?;
        write_png(path, &png)?;
        Ok(png)
    }
}

fn draw_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Invalid(format!("drawing failed: {e}"))
}

type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A point on the panel's axes (log10 on a log axis); None when it cannot be drawn.
fn project(p: &Panel, (x, y): (f64, f64)) -> Option<(f64, f64)> {
    let x = if p.log_x {
        (x > 0.0).then(|| x.log(x_base(p)))?
    } else {
        x
    };
    let y = if p.log_y {
        (y > 0.0).then(|| y.log10())?
    } else {
        y
    };
    (x.is_finite() && y.is_finite()).then_some((x, y))
}

/// The base of a panel's log x axis.
fn x_base(p: &Panel) -> f64 {
    if p.log_x_base > 1.0 {
        p.log_x_base
    } else {
        10.0
    }
}

/// A tick label: the value itself, or base^v on a log axis (`base` > 1), in a short form.
fn tick(base: Option<f64>, v: f64) -> String {
    // a log axis's ticks fall between round numbers: two significant digits are enough
    let v = match base {
        // whole powers (2^8 = 256) stay whole
        Some(b) if (b.powf(v) - b.powf(v).round()).abs() < 1e-9 * b.powf(v).max(1.0) => {
            b.powf(v).round()
        }
        Some(b) => format!("{:.1e}", b.powf(v)).parse().unwrap_or(f64::NAN),
        None => v,
    };
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn range(values: impl Iterator<Item = f64>, fraction: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    padded(lo, hi, fraction)
}

fn draw(p: &Panel, area: &DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult<()> {
    let projected: Vec<Vec<Option<(f64, f64)>>> = p
        .series
        .iter()
        .map(|s| s.points.iter().map(|&pt| project(p, pt)).collect())
        .collect();
    let all = || projected.iter().flatten().flatten();
    let cross_x = p
        .crosses
        .iter()
        .filter_map(|&(x, _)| project(p, (x, 1.0)).map(|q| q.0));
    let (x0, x1) = range(all().map(|q| q.0).chain(cross_x), 0.04);
    let (y0, y1) = match p.y_range {
        Some((a, b)) if p.log_y => (a.max(1e-300).log10(), b.log10()),
        Some(r) => r,
        None => range(all().map(|q| q.1), 0.06),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let x_log = p.log_x.then(|| x_base(p));
    let y_log = p.log_y.then_some(10.0);
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&|v| tick(x_log, *v))
        .y_label_formatter(&|v| tick(y_log, *v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .max_light_lines(2)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(205, 205, 205))
        .draw()?;
    for (s, points) in p.series.iter().zip(&projected) {
        let base = PALETTE[s.color % PALETTE.len()];
        let style = if s.dashed {
            ShapeStyle::from(&base.mix(0.75)).stroke_width(2)
        } else {
            ShapeStyle::from(&base).stroke_width(2)
        };
        // the line breaks where a point is missing
        let segments: Vec<Vec<(f64, f64)>> = points
            .split(|q| q.is_none())
            .map(|seg| seg.iter().flatten().copied().collect())
            .filter(|seg: &Vec<_>| !seg.is_empty())
            .collect();
        let mut labelled = false;
        for seg in &segments {
            let anno = if s.dashed {
                chart.draw_series(DashedLineSeries::new(seg.iter().copied(), 7, 5, style))?
            } else {
                chart.draw_series(LineSeries::new(seg.iter().copied(), style))?
            };
            if !labelled && !s.label.is_empty() {
                anno.label(&s.label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                labelled = true;
            }
            if s.markers || seg.len() == 1 {
                chart.draw_series(seg.iter().map(|&q| Circle::new(q, 3, style.filled())))?;
            }
        }
    }
    // crosses sit just above the bottom edge
    let y_mark = y0 + (y1 - y0) * 0.03;
    for &(x, color) in &p.crosses {
        if let Some((x, _)) = project(p, (x, 1.0)) {
            let style = ShapeStyle::from(&PALETTE[color % PALETTE.len()]).stroke_width(3);
            chart.draw_series(std::iter::once(Cross::new((x, y_mark), 7, style)))?;
        }
    }
    if p.series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .position(match p.legend {
                Legend::UpperRight => SeriesLabelPosition::UpperRight,
                Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
                Legend::LowerRight => SeriesLabelPosition::LowerRight,
                Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
            })
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(170, 170, 170))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_read_as_values() {
        assert_eq!(tick(Some(10.0), 0.0), "1");
        assert_eq!(tick(Some(10.0), -2.0), "0.01");
        assert_eq!(tick(Some(2.0), 8.0), "256");
        assert_eq!(tick(Some(10.0), 0.5), "3.2", "two significant digits");
        assert_eq!(tick(Some(2.0), 5.0), "32");
        assert_eq!(tick(None, 2.5), "2.5");
        assert_eq!(tick(None, 50000.0), "50000");
        assert_eq!(tick(None, 200000.0), "2e5");
        assert_eq!(tick(Some(10.0), 0.0398f64.log10()), "0.04");
    }

    #[test]
    fn points_off_a_log_axis_are_left_out() {
        let p = Panel {
            log_x: true,
            ..Default::default()
        };
        assert_eq!(project(&p, (0.0, 1.0)), None);
        assert_eq!(project(&p, (100.0, f64::NAN)), None);
        assert_eq!(project(&p, (100.0, 1.0)), Some((2.0, 1.0)));
        let p2 = Panel {
            log_x: true,
            log_x_base: 2.0,
            ..Default::default()
        };
        assert_eq!(project(&p2, (256.0, 1.0)), Some((8.0, 1.0)));
    }
}
