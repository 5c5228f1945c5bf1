//! The one chart renderer: line charts in a grid of panels, as PNG. Training histories
//! ([`history`]), the statistics of `--stats` (`stats::figure`) and the experiments' figures
//! are all [`Figure`]s.
//!
//! Drawn by plotters on an RGB buffer with the vendored font, encoded and written atomically
//! (`png.rs`). A series is any (x, y) list: epochs, steps, learning rates on a log axis, batch
//! sizes. A non-finite point breaks its line; a series can carry markers, and a panel can carry
//! crosses at the bottom edge (a run that diverged has no value to draw). Each legend is placed
//! where it covers no line, marker or cross (`legend.rs`), and text is sized for the width
//! the figure is shown at (`style.rs`).

mod axes;
pub mod history;
mod legend;
mod panel;
mod png;
mod style;

use crate::{Error, Result};
use plotters::prelude::*;
use png::{encode_png, write_png};
use std::path::Path;
use style::{register_font, Sizes};

/// The most panels side by side: two 600-pixel panels shrink to a page's width
/// (936 pixels, see `style.rs`) with their text still legible, three would not.
pub const MAX_COLUMNS: usize = 2;

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
    /// Draw a marker at every point: a ring on a dashed line, a dot on a solid one (the
    /// legend shows the same).
    pub markers: bool,
}

/// The corner a panel's legend prefers; it goes elsewhere when the data are there: to another
/// corner or the middle of the top or bottom edge, or under the chart.
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
    /// The corner the legend prefers.
    pub legend: Legend,
    /// Shaded areas drawn under the lines (a spread, an interval).
    pub bands: Vec<Band>,
}

/// A shaded area between two curves of a panel, in a light shade of a palette colour.
#[derive(Clone, Debug, Default)]
pub struct Band {
    /// (x, lower y), in x order.
    pub lower: Vec<(f64, f64)>,
    /// (x, upper y), at the same x as `lower`.
    pub upper: Vec<(f64, f64)>,
    /// Index into the palette, as the matching [`Series`]'s.
    pub color: usize,
}

/// Panels in a grid, at most `columns` (and at most [`MAX_COLUMNS`]) wide, each `panel_size`
/// pixels.
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
    /// A figure of `panels`, `columns` per row (at most [`MAX_COLUMNS`]), 600x420 each.
    pub fn new(panels: Vec<Panel>, columns: usize) -> Figure {
        Figure {
            panels,
            columns: columns.max(1),
            panel_size: (600, 420),
        }
    }

    /// Panels per row and rows.
    fn grid(&self) -> (usize, usize) {
        let cols = self
            .columns
            .clamp(1, MAX_COLUMNS)
            .min(self.panels.len().max(1));
        (cols, self.panels.len().div_ceil(cols))
    }

    /// Width and height of the picture, in pixels.
    pub fn size(&self) -> (u32, u32) {
        let (cols, rows) = self.grid();
        (
            self.panel_size.0 * cols as u32,
            self.panel_size.1 * rows as u32,
        )
    }

    /// The top-left corner of each panel. When the panels do not fill the grid, the first row
    /// holds the fewer and is centred (a figure's first panel is often its overview).
    fn corners(&self) -> Vec<(i32, i32)> {
        let (cols, rows) = self.grid();
        let (w, h) = (self.panel_size.0 as i32, self.panel_size.1 as i32);
        let short = self.panels.len() - (rows - 1) * cols;
        let mut out = vec![];
        for i in 0..short {
            out.push((((cols - short) as i32 * w) / 2 + i as i32 * w, 0));
        }
        for r in 1..rows {
            for c in 0..cols {
                out.push((c as i32 * w, r as i32 * h));
            }
        }
        out
    }

    /// The pixels (RGB), and where each panel's parts went.
    fn render(&self) -> Result<(Vec<u8>, Vec<panel::Drawn>)> {
        if self.panels.is_empty() {
            return Err(Error::Invalid("a figure needs at least one panel".into()));
        }
        register_font().map_err(Error::Invalid)?;
        let (w, h) = self.size();
        let sz = Sizes::for_width(w);
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        let mut drawn = vec![];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            for (p, (x, y)) in self.panels.iter().zip(self.corners()) {
                let area = root.clone().shrink((x, y), self.panel_size);
                let d = panel::draw(p, &area, &root, sz).map_err(draw_err)?;
                // the legend's promise: inside the plotting area and clear of the data, or
                // under the plotting area
                debug_assert!(d.legend.is_none_or(|r| {
                    (d.plot.contains(&r) && !r.touches(&d.paths, d.reach)) || r.y0 >= d.plot.y1
                }));
                drawn.push(d);
            }
            root.present().map_err(draw_err)?;
        }
        Ok((rgb, drawn))
    }

    /// The figure as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>> {
        let (w, h) = self.size();
        let (rgb, _) = self.render()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: Vec<(f64, f64)>, color: usize, label: &str) -> Series {
        Series {
            label: label.into(),
            points,
            color,
            ..Default::default()
        }
    }

    /// The invariant of every panel drawn: its legend covers no line, marker or cross, and
    /// lies inside the panel.
    fn legends_are_clear(f: &Figure) -> Vec<panel::Drawn> {
        let (_, drawn) = f.render().unwrap();
        let (w, h) = f.size();
        for (i, d) in drawn.iter().enumerate() {
            let r = d.legend.expect("every panel here has labels");
            assert!(
                !r.touches(&d.paths, d.reach),
                "panel {i}: legend {r:?} covers data"
            );
            assert!(r.x0 >= 0 && r.y0 >= 0 && r.x1 <= w as i32 && r.y1 <= h as i32);
            assert!(!d.paths.is_empty(), "panel {i}: the data were seen");
        }
        drawn
    }

    #[test]
    fn legends_move_off_data_in_their_corner() {
        // a rising line through the upper right and a falling one through the lower right:
        // the fixed upper-right and lower-right legends of old covered them
        let rising = (0..50)
            .map(|i| (i as f64, (i as f64 / 49.0).powi(3)))
            .collect();
        let falling = (0..50)
            .map(|i| (i as f64, 1.0 - (i as f64 / 49.0).sqrt()))
            .collect();
        let panel = Panel {
            title: "corner".into(),
            series: vec![line(rising, 0, "rising"), line(falling, 1, "falling")],
            legend: Legend::UpperRight,
            ..Default::default()
        };
        let drawn = legends_are_clear(&Figure::new(vec![panel], 1));
        let (r, plot) = (drawn[0].legend.unwrap(), drawn[0].plot);
        assert!(
            plot.contains(&r),
            "a clear place inside was found: {r:?} in {plot:?}"
        );
    }

    #[test]
    fn a_legend_with_no_clear_place_inside_goes_under_the_chart() {
        // six noisy lines over the whole area, as in stats.png's percentile panels
        let series = (0..6)
            .map(|k| {
                let pts = (0..120)
                    .map(|i| {
                        let t = i as f64;
                        (t, k as f64 + 0.9 * ((t * 0.7 + k as f64).sin()))
                    })
                    .collect();
                line(pts, k, &format!("series number {k}"))
            })
            .collect();
        let panel = Panel {
            series,
            ..Default::default()
        };
        let drawn = legends_are_clear(&Figure::new(vec![panel.clone(), panel], 2));
        for d in drawn {
            let r = d.legend.unwrap();
            assert!(
                r.y0 >= d.plot.y1,
                "under the plotting area: {r:?} {:?}",
                d.plot
            );
        }
    }

    #[test]
    fn crosses_and_markers_are_avoided_too() {
        let points = vec![(1.0, 1.0), (2.0, 2.0), (4.0, f64::NAN), (8.0, 9.0)];
        let panel = Panel {
            series: vec![Series {
                markers: true,
                ..line(points, 0, "with markers")
            }],
            crosses: vec![(4.0, 0), (8.0, 1)],
            log_x: true,
            log_x_base: 2.0,
            legend: Legend::LowerRight,
            ..Default::default()
        };
        legends_are_clear(&Figure::new(vec![panel], 1));
    }

    #[test]
    fn three_panels_make_two_rows_with_the_first_centred() {
        let p = Panel {
            series: vec![line(vec![(0.0, 0.0), (1.0, 1.0)], 0, "a")],
            ..Default::default()
        };
        let f = Figure::new(vec![p.clone(), p.clone(), p], 3);
        assert_eq!(f.size(), (1200, 840));
        assert_eq!(f.corners(), vec![(300, 0), (0, 420), (600, 420)]);
        legends_are_clear(&f);
    }
}
