//! A panel's axes: where a point lands on them (log axes in log units), their ranges, and the
//! text of their ticks.

use super::Panel;

/// A point on the panel's axes (log units on a log axis); None when it cannot be drawn.
pub(crate) fn project(p: &Panel, (x, y): (f64, f64)) -> Option<(f64, f64)> {
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
pub(crate) fn x_base(p: &Panel) -> f64 {
    if p.log_x_base > 1.0 {
        p.log_x_base
    } else {
        10.0
    }
}

/// Whether every x of the panel is a whole number on a linear axis (epochs, layer numbers):
/// then its ticks are whole numbers only.
pub(crate) fn whole_x(p: &Panel) -> bool {
    let mut xs = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|q| q.0))
        .chain(p.crosses.iter().map(|c| c.0))
        .filter(|x| x.is_finite())
        .peekable();
    !p.log_x && xs.peek().is_some() && xs.all(|x| x == x.round())
}

/// A tick label: the value itself, or base^v on a log axis (`base` > 1), in a short form.
pub(crate) fn tick(base: Option<f64>, v: f64) -> String {
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

/// The range of `values` with a margin of `fraction` of its span on each side.
pub(crate) fn range(values: impl Iterator<Item = f64>, fraction: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    padded(lo, hi, fraction)
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

#[cfg(test)]
mod tests {
    use super::super::Series;
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
    fn whole_x_only_when_every_x_is_whole() {
        let panel = |xs: &[f64]| Panel {
            series: vec![Series {
                points: xs.iter().map(|&x| (x, 0.0)).collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(whole_x(&panel(&[1.0, 2.0, 3.0, f64::NAN])));
        assert!(!whole_x(&panel(&[1.0, 2.5])));
        assert!(!whole_x(&panel(&[])), "no points: nothing to say");
    }
}
