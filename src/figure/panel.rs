//! Drawing one panel: its title, axes, lines, markers, crosses and legend.

use super::axes::{project, range, tick, whole_x, x_base};
use super::legend::{self, Layout, Metrics, Rect};
use super::style::{Sizes, PALETTE};
use super::Panel;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
pub(crate) type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Where a panel's parts ended up, in figure pixels: what the legend must not cover, and the
/// legend's box.
#[derive(Clone, Debug)]
pub(crate) struct Drawn {
    /// The plotting area (inside the axes).
    pub plot: Rect,
    /// Every line as a polyline, every lone marker as one point, every cross as two strokes.
    pub paths: Vec<Vec<(f64, f64)>>,
    /// How near a path may come to the legend's box.
    pub reach: f64,
    /// The legend's box, if the panel has one.
    pub legend: Option<Rect>,
}

/// Draw `p` into `area`, a part of `root` (the whole figure).
pub(crate) fn draw(p: &Panel, area: &Area, root: &Area, sz: Sizes) -> DrawResult<Drawn> {
    let projected: Vec<Vec<Option<(f64, f64)>>> = p
        .series
        .iter()
        .map(|s| s.points.iter().map(|&pt| project(p, pt)).collect())
        .collect();
    // a band's outline: projected like the lines' points, and counted in the axes' ranges
    let bands: Vec<(usize, Vec<(f64, f64)>)> = p
        .bands
        .iter()
        .map(|b| {
            let outline = b
                .upper
                .iter()
                .chain(b.lower.iter().rev())
                .filter_map(|&pt| project(p, pt))
                .collect();
            (b.color, outline)
        })
        .collect();
    let all = || {
        projected
            .iter()
            .flatten()
            .flatten()
            .copied()
            .chain(bands.iter().flat_map(|(_, o)| o.iter().copied()))
    };
    let cross_x = p
        .crosses
        .iter()
        .filter_map(|&(x, _)| project(p, (x, 1.0)).map(|q| q.0));
    let x = range(all().map(|q| q.0).chain(cross_x), 0.04);
    let y = match p.y_range {
        Some((a, b)) if p.log_y => (a.max(1e-300).log10(), b.log10()),
        Some(r) => r,
        None => range(all().map(|q| q.1), 0.06),
    };

    // a title wider than the panel is set smaller until it fits, rather than cut off
    let (aw, _) = area.dim_in_pixel();
    let room = aw as f64 - 2.0 * sz.px(6.0) as f64;
    let wanted: TextStyle = ("sans-serif", sz.title()).into();
    let (tw, _) = area.estimate_text_size(&p.title, &wanted)?;
    let title_size = sz.title() * (room / tw.max(1) as f64).min(1.0);
    let body = area.titled(&p.title, ("sans-serif", title_size))?;
    let entries = legend::entries(p);
    let label_font: TextStyle = ("sans-serif", sz.label()).into();
    let mut widths = vec![];
    let mut text_height = 0;
    for e in &entries {
        let (w, h) = area.estimate_text_size(&e.label, &label_font)?;
        widths.push(w as i32);
        text_height = text_height.max(h as i32);
    }
    let m = Metrics::new(sz, text_height);
    let reach = (sz.stroke() as f64 / 2.0 + sz.marker() as f64 + sz.px(3.0) as f64).ceil();

    // First try the legend inside the plotting area; where nothing inside is clear, give the
    // chart less height and put the legend under it.
    let inset = sz.px(8.0);
    let mut legend_at: Option<(Rect, Layout)> = None;
    let mut chart_area = body.clone();
    if !entries.is_empty() {
        let probe = build(&body, x, y, sz)?;
        let col = legend::column(&widths, &m);
        let (plot, seen) = (plot_rect(&probe), paths(p, &projected, &probe, y, sz));
        match legend::place_inside(plot, col.size, inset, &seen, reach, p.legend) {
            Some(at) => legend_at = Some((at, col)),
            None => {
                let (bw, bh) = body.dim_in_pixel();
                let flow = legend::rows(&widths, &m, bw as i32 - 2 * inset);
                let strip = flow.size.1 + inset;
                chart_area = body.split_vertically(bh as i32 - strip).0;
                let (bx, by) = body.get_base_pixel();
                let left = bx + (bw as i32 - flow.size.0) / 2;
                let at = Rect::at(left, by + bh as i32 - strip, flow.size);
                legend_at = Some((at, flow));
            }
        }
    }
    let mut chart = build(&chart_area, x, y, sz)?;
    let drawn = Drawn {
        plot: plot_rect(&chart),
        paths: paths(p, &projected, &chart, y, sz),
        reach,
        legend: legend_at.as_ref().map(|l| l.0),
    };

    mesh(p, &mut chart, x, sz)?;
    for (color, outline) in &bands {
        if outline.len() > 2 {
            let fill = PALETTE[color % PALETTE.len()].mix(0.18).filled();
            chart.draw_series(std::iter::once(Polygon::new(outline.clone(), fill)))?;
        }
    }
    lines(p, &projected, &mut chart, sz)?;
    crosses(p, &mut chart, y, sz)?;
    if let Some((at, layout)) = &legend_at {
        legend::draw(root, *at, layout, &entries, &m, sz)?;
    }
    Ok(drawn)
}

fn build<'a, 'b>(
    area: &'a Area<'b>,
    x: (f64, f64),
    y: (f64, f64),
    sz: Sizes,
) -> DrawResult<Chart<'a, 'b>> {
    Ok(ChartBuilder::on(area)
        .margin(sz.px(10.0))
        .x_label_area_size(sz.px(44.0))
        .y_label_area_size(sz.px(66.0))
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?)
}

fn plot_rect(chart: &Chart) -> Rect {
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    Rect {
        x0: xs.start,
        y0: ys.start,
        x1: xs.end,
        y1: ys.end,
    }
}

fn mesh(p: &Panel, chart: &mut Chart, (x0, x1): (f64, f64), sz: Sizes) -> DrawResult<()> {
    let x_log = p.log_x.then(|| x_base(p));
    let y_log = p.log_y.then_some(10.0);
    let whole = whole_x(p);
    let x_fmt = move |v: &f64| {
        if whole && (v - v.round()).abs() > 1e-6 {
            String::new() // an epoch or a layer number has no halves
        } else {
            tick(x_log, *v)
        }
    };
    let x_labels = if whole {
        ((x1 - x0).floor().max(0.0) as usize + 1).clamp(2, 10)
    } else {
        8
    };
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .x_labels(x_labels)
        .y_labels(8)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|v| tick(y_log, *v))
        .label_style(("sans-serif", sz.label()))
        .axis_desc_style(("sans-serif", sz.axis()))
        .max_light_lines(2)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(205, 205, 205))
        .draw()?;
    Ok(())
}

/// The drawn pieces of each series: runs of points between missing ones.
fn segments(points: &[Option<(f64, f64)>]) -> Vec<Vec<(f64, f64)>> {
    points
        .split(|q| q.is_none())
        .map(|seg| seg.iter().flatten().copied().collect())
        .filter(|seg: &Vec<_>| !seg.is_empty())
        .collect()
}

fn lines(
    p: &Panel,
    projected: &[Vec<Option<(f64, f64)>>],
    chart: &mut Chart,
    sz: Sizes,
) -> DrawResult<()> {
    for (s, points) in p.series.iter().zip(projected) {
        let style = legend::line_style(PALETTE[s.color % PALETTE.len()], s.dashed, sz);
        for seg in segments(points) {
            if s.dashed {
                let (on, off) = (sz.px(7.0) as u32, sz.px(5.0) as u32);
                chart.draw_series(DashedLineSeries::new(seg.iter().copied(), on, off, style))?;
            } else {
                chart.draw_series(LineSeries::new(seg.iter().copied(), style))?;
            }
            if s.markers || seg.len() == 1 {
                // a lone point (between missing values) gets a bigger marker
                let r = sz.marker() + if seg.len() == 1 { sz.px(1.5) } else { 0 };
                chart.draw_series(seg.iter().map(|&q| legend::marker(q, r, style, s.dashed)))?;
            }
        }
    }
    Ok(())
}

/// The crosses' height: just above the bottom edge.
fn cross_y((y0, y1): (f64, f64)) -> f64 {
    y0 + (y1 - y0) * 0.03
}

fn crosses(p: &Panel, chart: &mut Chart, y: (f64, f64), sz: Sizes) -> DrawResult<()> {
    for &(x, color) in &p.crosses {
        if let Some((x, _)) = project(p, (x, 1.0)) {
            let style =
                ShapeStyle::from(&PALETTE[color % PALETTE.len()]).stroke_width(sz.px(3.0) as u32);
            chart.draw_series(std::iter::once(Cross::new(
                (x, cross_y(y)),
                sz.px(7.0),
                style,
            )))?;
        }
    }
    Ok(())
}

/// What the legend must not cover, in figure pixels.
fn paths(
    p: &Panel,
    projected: &[Vec<Option<(f64, f64)>>],
    chart: &Chart,
    y: (f64, f64),
    sz: Sizes,
) -> Vec<Vec<(f64, f64)>> {
    let px = |q: &(f64, f64)| {
        let (a, b) = chart.backend_coord(q);
        (a as f64, b as f64)
    };
    let mut out: Vec<Vec<(f64, f64)>> = projected
        .iter()
        .flat_map(|points| segments(points))
        .map(|seg| seg.iter().map(px).collect())
        .collect();
    let arm = sz.px(7.0) as f64;
    for &(x, _) in &p.crosses {
        if let Some((x, _)) = project(p, (x, 1.0)) {
            let (cx, cy) = px(&(x, cross_y(y)));
            out.push(vec![(cx - arm, cy - arm), (cx + arm, cy + arm)]);
            out.push(vec![(cx - arm, cy + arm), (cx + arm, cy - arm)]);
        }
    }
    out
}
