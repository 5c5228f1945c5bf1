//! Training curves as a PNG: loss and accuracy per epoch, side by side, one colour per run.
//!
//! The picture is drawn by plotters into an in-memory RGB buffer, encoded as PNG here (zlib
//! from `flate2`, CRC from `flate2::Crc`) and written with [`crate::io::write_atomic`], so a
//! reader never sees half a file and a failed write leaves nothing behind. Text uses the
//! vendored DejaVu Sans (`assets/fonts/`), so no system font or fontconfig is needed.

use crate::train::{EpochRecord, History};
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

/// Width and height of the picture, in pixels.
pub const PLOT_SIZE: (u32, u32) = (1200, 500);

/// DejaVu Sans 2.37; its license is `assets/fonts/LICENSE-DejaVu`.
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// One colour per run (Tableau 10), reused in order when there are more runs.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Below this many epochs every point gets a marker; above it only isolated points do.
const MARKERS_UP_TO: usize = 30;

/// Plots the runs' loss (left) and accuracy (right) per epoch into one PNG at `path`.
///
/// Each run has one colour; its training curve is dashed and lighter, its validation curve solid,
/// and the legend names run and set ("bn train", "bn validation"). NaN and infinite values are
/// left out (the line breaks there). The file is replaced atomically. It is an error, naming
/// `path`, to give no runs, a run without epochs, or a path that cannot be written.
pub fn plot_histories(runs: &[(&str, &History)], path: &Path) -> Result<()> {
    let fail = |msg: String| Error::Invalid(format!("{}: cannot plot: {msg}", path.display()));
    if runs.is_empty() {
        return Err(fail("no runs given".into()));
    }
    if let Some((name, _)) = runs.iter().find(|(_, h)| h.epochs.is_empty()) {
        return Err(fail(format!("the history of run {name:?} has no epochs")));
    }
    register_font().map_err(&fail)?;

    let (w, h) = PLOT_SIZE;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    render(runs, &mut rgb).map_err(|e| fail(format!("drawing failed: {e}")))?;
    let png = encode_png(w, h, &rgb).map_err(|e| Error::io(path, e))?;
    write_png(path, &png)
}

/// Registers the vendored font for the family "sans-serif", once per process.
pub(crate) fn register_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the bundled font DejaVuSans.ttf is not a valid font".to_string())
        })
        .clone()
}

/// Writes atomically; any failure (including one about the folder) names the file itself.
pub(crate) fn write_png(path: &Path, png: &[u8]) -> Result<()> {
    crate::io::write_atomic(path, png).map_err(|e| match e {
        Error::Io { path: p, source } if p != path => Error::io(
            path,
            std::io::Error::new(source.kind(), format!("{source} (in {})", p.display())),
        ),
        e => e,
    })
}

type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Which number of an epoch a panel shows.
#[derive(Clone, Copy)]
enum Metric {
    Loss,
    Accuracy,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::Accuracy => "accuracy",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Metric::Loss => "Loss per epoch",
            Metric::Accuracy => "Accuracy per epoch",
        }
    }
    /// Training and validation values.
    fn values(self, e: &EpochRecord) -> (f64, f64) {
        match self {
            Metric::Loss => (e.train_loss, e.val_loss),
            Metric::Accuracy => (e.train_accuracy, e.val_accuracy),
        }
    }
    /// Where the legend is least likely to cover the curves: loss falls, accuracy rises.
    fn legend_position(self) -> SeriesLabelPosition {
        match self {
            Metric::Loss => SeriesLabelPosition::UpperRight,
            Metric::Accuracy => SeriesLabelPosition::LowerRight,
        }
    }
}

fn render(runs: &[(&str, &History)], rgb: &mut [u8]) -> DrawResult<()> {
    let root = BitMapBackend::with_buffer(rgb, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    draw_panel(&panels[0], runs, Metric::Loss)?;
    draw_panel(&panels[1], runs, Metric::Accuracy)?;
    root.present()?;
    Ok(())
}

/// The runs' finite (epoch, value) points for one metric and set, split where a value is missing.
fn segments(h: &History, metric: Metric, train: bool) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![];
    let mut current = vec![];
    for e in &h.epochs {
        let (t, v) = metric.values(e);
        let y = if train { t } else { v };
        if y.is_finite() {
            current.push((e.epoch as f64, y));
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A range around `lo..=hi` with a margin, never empty (a constant gets a range around it).
pub(crate) fn padded(lo: f64, hi: f64, fraction: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) || lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 && span.is_finite() {
        span * fraction
    } else if lo != 0.0 {
        (lo.abs() * 0.1).max(f64::MIN_POSITIVE)
    } else {
        0.5
    };
    let (a, b) = (lo - pad, hi + pad);
    if a.is_finite() && b.is_finite() && a < b {
        (a, b)
    } else {
        (lo, hi)
    }
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    runs: &[(&str, &History)],
    metric: Metric,
) -> DrawResult<()> {
    // Axis ranges from the finite values only.
    let epochs = runs
        .iter()
        .flat_map(|(_, h)| h.epochs.iter().map(|e| e.epoch as f64));
    let (e_lo, e_hi) = epochs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let values = runs.iter().flat_map(|(_, h)| {
        h.epochs.iter().flat_map(move |e| {
            let (t, v) = metric.values(e);
            [t, v]
        })
    });
    let (v_lo, v_hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    let (x0, x1) = if e_lo == e_hi {
        (e_lo - 0.5, e_hi + 0.5)
    } else {
        padded(e_lo, e_hi, 0.03)
    };
    let (y0, y1) = padded(v_lo, v_hi, 0.06);

    let mut chart = ChartBuilder::on(area)
        .caption(metric.title(), ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)?;

    // Epoch ticks only at whole numbers: at most one label per epoch.
    let x_labels = ((e_hi - e_lo).max(0.0) as usize + 1).clamp(1, 12);
    let epoch_label = |x: &f64| {
        if (x - x.round()).abs() < 1e-6 {
            format!("{}", x.round() as i64)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(metric.name())
        .x_labels(x_labels)
        .y_labels(8)
        .x_label_formatter(&epoch_label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 18))
        .max_light_lines(4)
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()?;

    for (i, (name, h)) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let label = |set: &str| {
            let name = name.trim();
            if name.is_empty() {
                set.to_string()
            } else {
                format!("{name} {set}")
            }
        };

        // Training: dashed and lighter.
        let light = color.mix(0.6);
        let train_style = ShapeStyle::from(&light).stroke_width(2);
        let markers = h.epochs.len() <= MARKERS_UP_TO;
        // The legend shows a marker only when the curves have them.
        let legend_marker =
            move |style: ShapeStyle| if markers { style } else { TRANSPARENT.into() };
        let train = segments(h, metric, true);
        for (k, seg) in train.iter().enumerate() {
            let anno = chart.draw_series(DashedLineSeries::new(
                seg.iter().copied(),
                8,
                5,
                train_style,
            ))?;
            if k == 0 {
                anno.label(label("train")).legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (8, 0)], train_style)
                        + PathElement::new(vec![(13, 0), (20, 0)], train_style)
                        + Circle::new((10, 0), 3, legend_marker(train_style))
                });
            }
            if markers || seg.len() == 1 {
                // Hollow markers; a lone point (one epoch, or between missing values) gets a big one.
                let r = if seg.len() == 1 { 6 } else { 4 };
                chart.draw_series(seg.iter().map(|&p| Circle::new(p, r, train_style)))?;
            }
        }

        // Validation: solid.
        let val_style = ShapeStyle::from(&color).stroke_width(2);
        let val = segments(h, metric, false);
        for (k, seg) in val.iter().enumerate() {
            let anno = chart.draw_series(LineSeries::new(seg.iter().copied(), val_style))?;
            if k == 0 {
                anno.label(label("validation")).legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (20, 0)], val_style)
                        + Circle::new((10, 0), 3, legend_marker(val_style.filled()))
                });
            }
            if markers || seg.len() == 1 {
                let r = if seg.len() == 1 { 5 } else { 3 };
                chart.draw_series(seg.iter().map(|&p| Circle::new(p, r, val_style.filled())))?;
            }
        }
    }

    chart
        .configure_series_labels()
        .position(metric.legend_position())
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .legend_area_size(28)
        .margin(10)
        .draw()?;
    Ok(())
}

/// An 8-bit RGB PNG: signature, IHDR, one zlib IDAT (each row with filter "Up"), IEND.
pub(crate) fn encode_png(width: u32, height: u32, rgb: &[u8]) -> std::io::Result<Vec<u8>> {
    let row = width as usize * 3;
    debug_assert_eq!(rgb.len(), row * height as usize);
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for (r, line) in rgb.chunks_exact(row).enumerate() {
        if r == 0 {
            raw.push(0); // None
            raw.extend_from_slice(line);
        } else {
            raw.push(2); // Up: difference to the row above, mostly zeros in a plot
            let above = &rgb[(r - 1) * row..r * row];
            raw.extend(line.iter().zip(above).map(|(a, b)| a.wrapping_sub(*b)));
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw)?;
    let idat = z.finish()?;

    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, adaptive filters, no interlace

    let mut png = Vec::with_capacity(idat.len() + 64);
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &idat[..]),
        (b"IEND", &[][..]),
    ] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(&crc.sum().to_be_bytes());
    }
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_ranges_are_never_empty() {
        let (a, b) = padded(1.0, 1.0, 0.05);
        assert!((a - 0.9).abs() < 1e-12 && (b - 1.1).abs() < 1e-12);
        assert_eq!(padded(0.0, 0.0, 0.05), (-0.5, 0.5));
        assert_eq!(padded(f64::INFINITY, f64::NEG_INFINITY, 0.05), (0.0, 1.0));
        let (a, b) = padded(0.0, 10.0, 0.1);
        assert!((a + 1.0).abs() < 1e-12 && (b - 11.0).abs() < 1e-12);
    }

    #[test]
    fn png_crc_matches_the_spec() {
        // The CRC of an empty IEND chunk is fixed by the PNG spec.
        let png = encode_png(1, 1, &[0, 0, 0]).unwrap();
        assert_eq!(&png[png.len() - 4..], &[0xAE, 0x42, 0x60, 0x82]);
    }
}
