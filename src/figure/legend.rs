//! A panel's legend: its entries (a sample of each labelled series' line and marker, then the
//! label), its box, and where the box goes.
//!
//! The box goes where it covers nothing drawn: the panel's preferred corner when that is
//! clear, else the first clear one of the other corners and the middles of the top and bottom
//! edges, else under the chart, outside the plotting area. "Clear" is computed from the drawn
//! pixels: no line segment, marker or cross comes within reach of the box.

use super::style::{Sizes, PALETTE};
use super::{Legend, Panel};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A rectangle in the figure's pixels: `x0..x1` by `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x0: i32,
    /// Top edge.
    pub y0: i32,
    /// Right edge (exclusive).
    pub x1: i32,
    /// Bottom edge (exclusive).
    pub y1: i32,
}

impl Rect {
    /// The rectangle `w` by `h` with its top-left corner at (`x`, `y`).
    pub fn at(x: i32, y: i32, (w, h): (i32, i32)) -> Rect {
        Rect {
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        }
    }

    /// The rectangle grown by `d` pixels on every side.
    pub fn grown(self, d: f64) -> (f64, f64, f64, f64) {
        (
            self.x0 as f64 - d,
            self.y0 as f64 - d,
            self.x1 as f64 + d,
            self.y1 as f64 + d,
        )
    }

    /// Whether `other` lies wholly inside this rectangle.
    pub fn contains(&self, other: &Rect) -> bool {
        self.x0 <= other.x0 && self.y0 <= other.y0 && other.x1 <= self.x1 && other.y1 <= self.y1
    }

    /// Whether any of `paths` (polylines in pixels; one point is a marker) comes within
    /// `reach` pixels of the rectangle.
    pub fn touches(&self, paths: &[Vec<(f64, f64)>], reach: f64) -> bool {
        let (x0, y0, x1, y1) = self.grown(reach);
        let inside = |(x, y): (f64, f64)| x0 <= x && x <= x1 && y0 <= y && y <= y1;
        paths.iter().any(|path| match path.as_slice() {
            [] => false,
            [p] => inside(*p),
            _ => path
                .windows(2)
                .any(|w| segment_hits((x0, y0, x1, y1), w[0], w[1])),
        })
    }
}

/// Whether the segment from `a` to `b` meets the box `(x0, y0, x1, y1)` (Liang-Barsky
/// clipping: the part of the segment inside each of the four half-planes must not be empty).
fn segment_hits((x0, y0, x1, y1): (f64, f64, f64, f64), a: (f64, f64), b: (f64, f64)) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - x0),
        (dx, x1 - a.0),
        (-dy, a.1 - y0),
        (dy, y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false; // parallel to this edge and outside it
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    t0 <= t1
}

/// One line of the legend: what the series looks like, and its label.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub label: String,
    pub color: RGBColor,
    pub dashed: bool,
    /// The series draws a marker at its points (a ring when dashed, a dot when solid).
    pub markers: bool,
}

/// The legend's entries: every labelled series, in the panel's order (a series without points
/// still gets its entry: it explains a line style).
pub(crate) fn entries(p: &Panel) -> Vec<Entry> {
    p.series
        .iter()
        .filter(|s| !s.label.is_empty())
        .map(|s| Entry {
            label: s.label.clone(),
            color: PALETTE[s.color % PALETTE.len()],
            dashed: s.dashed,
            markers: s.markers,
        })
        .collect()
}

/// The legend's box and where each entry sits in it (top-left corners, relative to the box).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    pub size: (i32, i32),
    pub slots: Vec<(i32, i32)>,
}

/// The parts of an entry, in pixels.
pub(crate) struct Metrics {
    pub pad: i32,
    pub sample: i32,
    pub gap: i32,
    pub row: i32,
}

impl Metrics {
    pub fn new(sz: Sizes, text_height: i32) -> Metrics {
        Metrics {
            pad: sz.px(7.0),
            sample: sz.px(30.0),
            gap: sz.px(7.0),
            row: text_height.max(2 * sz.marker()) + sz.px(5.0),
        }
    }
}

/// Entries one under the other (`widths` are their texts' widths).
pub(crate) fn column(widths: &[i32], m: &Metrics) -> Layout {
    let text = widths.iter().copied().max().unwrap_or(0);
    Layout {
        size: (
            2 * m.pad + m.sample + m.gap + text,
            2 * m.pad + m.row * widths.len() as i32,
        ),
        slots: (0..widths.len() as i32)
            .map(|i| (m.pad, m.pad + i * m.row))
            .collect(),
    }
}

/// Entries side by side, in as many rows as `max_width` needs.
pub(crate) fn rows(widths: &[i32], m: &Metrics, max_width: i32) -> Layout {
    let (mut x, mut y, mut widest) = (m.pad, m.pad, 0);
    let mut slots = vec![];
    for &w in widths {
        let entry = m.sample + m.gap + w;
        if x > m.pad && x + entry + m.pad > max_width {
            (x, y) = (m.pad, y + m.row);
        }
        slots.push((x, y));
        x += entry + 2 * m.gap;
        widest = widest.max(x - 2 * m.gap + m.pad);
    }
    Layout {
        size: (widest, y + m.row + m.pad),
        slots,
    }
}

/// The first clear place inside `plot` for a box of `size`, `inset` pixels from its edges:
/// the preferred corner, the other corners, then the middles of the top and bottom edges.
pub(crate) fn place_inside(
    plot: Rect,
    size: (i32, i32),
    inset: i32,
    paths: &[Vec<(f64, f64)>],
    reach: f64,
    preferred: Legend,
) -> Option<Rect> {
    let (w, h) = size;
    let left = plot.x0 + inset;
    let right = plot.x1 - inset - w;
    let middle = (plot.x0 + plot.x1 - w) / 2;
    let top = plot.y0 + inset;
    let bottom = plot.y1 - inset - h;
    let corner = |l: Legend| match l {
        Legend::UpperRight => (right, top),
        Legend::UpperLeft => (left, top),
        Legend::LowerRight => (right, bottom),
        Legend::LowerLeft => (left, bottom),
    };
    let candidates = [
        corner(preferred),
        corner(Legend::UpperRight),
        corner(Legend::UpperLeft),
        corner(Legend::LowerRight),
        corner(Legend::LowerLeft),
        (middle, top),
        (middle, bottom),
    ];
    candidates
        .into_iter()
        .map(|(x, y)| Rect::at(x, y, size))
        .find(|r| plot.contains(r) && !r.touches(paths, reach))
}

/// Draw the legend's box at `at` (figure pixels) on `root`, the whole figure's area.
pub(crate) fn draw(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    at: Rect,
    layout: &Layout,
    entries: &[Entry],
    m: &Metrics,
    sz: Sizes,
) -> Result<(), Box<dyn std::error::Error>> {
    root.draw(&Rectangle::new(
        [(at.x0, at.y0), (at.x1, at.y1)],
        WHITE.mix(0.92).filled(),
    ))?;
    root.draw(&Rectangle::new(
        [(at.x0, at.y0), (at.x1, at.y1)],
        RGBColor(170, 170, 170).stroke_width(1),
    ))?;
    let font = ("sans-serif", sz.label())
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (e, &(dx, dy)) in entries.iter().zip(&layout.slots) {
        let (x, y) = (at.x0 + dx, at.y0 + dy + m.row / 2);
        let style = line_style(e.color, e.dashed, sz);
        if e.dashed {
            // the same dash as the series: 7 on, 5 off (page pixels), centred on the sample
            let (on, off) = (sz.px(7.0), sz.px(5.0));
            let mut a = x;
            while a < x + m.sample {
                let b = (a + on).min(x + m.sample);
                root.draw(&PathElement::new(vec![(a, y), (b, y)], style))?;
                a = b + off;
            }
        } else {
            root.draw(&PathElement::new(vec![(x, y), (x + m.sample, y)], style))?;
        }
        if e.markers {
            root.draw(&marker((x + m.sample / 2, y), sz.marker(), style, e.dashed))?;
        }
        root.draw_text(&e.label, &font, (x + m.sample + m.gap, y))?;
    }
    Ok(())
}

/// A series' line: solid in its colour, or dashed and lighter.
pub(crate) fn line_style(color: RGBColor, dashed: bool, sz: Sizes) -> ShapeStyle {
    let color = if dashed { color.mix(0.7) } else { color.into() };
    ShapeStyle::from(&color).stroke_width(sz.stroke())
}

/// A series' marker at `at`: a ring on a dashed line, a dot on a solid one.
pub(crate) fn marker<C>(at: C, r: i32, style: ShapeStyle, ring: bool) -> Circle<C, i32> {
    if ring {
        Circle::new(at, r, style)
    } else {
        Circle::new(at, r, style.filled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_meet_boxes_as_geometry_says() {
        let b = (10.0, 10.0, 20.0, 20.0);
        assert!(
            segment_hits(b, (0.0, 15.0), (30.0, 15.0)),
            "straight through"
        );
        assert!(segment_hits(b, (12.0, 12.0), (13.0, 13.0)), "wholly inside");
        assert!(!segment_hits(b, (0.0, 0.0), (30.0, 5.0)), "passes above");
        assert!(!segment_hits(b, (0.0, 30.0), (30.0, 25.0)), "passes below");
        assert!(segment_hits(b, (0.0, 0.0), (30.0, 30.0)), "the diagonal");
        assert!(!segment_hits(b, (0.0, 12.0), (9.0, 30.0)), "stops short");
        assert!(!segment_hits(b, (25.0, 0.0), (40.0, 18.0)), "beside it");
    }

    #[test]
    fn a_path_within_reach_touches() {
        let r = Rect::at(10, 10, (10, 10));
        let near = vec![vec![(0.0, 22.0), (30.0, 22.0)]];
        assert!(!r.touches(&near, 1.0));
        assert!(r.touches(&near, 3.0));
        assert!(
            r.touches(&[vec![(15.0, 15.0)]], 0.0),
            "a lone marker inside"
        );
        assert!(!r.touches(&[vec![(35.0, 15.0)]], 3.0));
    }

    #[test]
    fn rows_wrap_at_the_width_and_keep_the_order() {
        let m = Metrics {
            pad: 5,
            sample: 20,
            gap: 5,
            row: 18,
        };
        let l = rows(&[50, 50, 50], &m, 170);
        // each entry is 20 + 5 + 50 = 75 wide: two fit in 170, the third wraps
        assert_eq!(l.slots, vec![(5, 5), (90, 5), (5, 23)]);
        assert!(l.size.0 <= 170 && l.size.1 == 5 + 2 * 18 + 5);
        let c = column(&[50, 80], &m);
        assert_eq!(c.size, (5 + 20 + 5 + 80 + 5, 5 + 2 * 18 + 5));
        assert_eq!(c.slots, vec![(5, 5), (5, 23)]);
    }

    #[test]
    fn the_box_avoids_data_that_fills_the_preferred_corner() {
        let plot = Rect::at(0, 0, (400, 300));
        // a curve through the upper right, where a fixed legend would sit
        let curve: Vec<(f64, f64)> = (0..=40)
            .map(|i| (i as f64 * 10.0, 300.0 - i as f64 * 7.0))
            .collect();
        let paths = vec![curve];
        let r = place_inside(plot, (120, 60), 8, &paths, 5.0, Legend::UpperRight).unwrap();
        assert!(!r.touches(&paths, 5.0) && plot.contains(&r), "{r:?}");
        assert_eq!(r, Rect::at(8, 8, (120, 60)), "the upper left is clear");
        // lines along every edge: no place inside is clear
        let edges = vec![
            vec![(0.0, 20.0), (400.0, 20.0)],
            vec![(0.0, 280.0), (400.0, 280.0)],
        ];
        assert_eq!(
            place_inside(plot, (120, 60), 8, &edges, 5.0, Legend::UpperRight),
            None
        );
    }
}
