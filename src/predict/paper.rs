//! The paper under a drawing, and the ink on it: what a photo of a digit on a sheet shows.
//!
//! The paper is estimated as a plane fitted to the image's border (grey or tinted paper, and
//! light that falls off across the sheet, are both a plane to first order); the ink is how far
//! each pixel is from that plane, on the side the drawing is: darker for ink on paper, lighter
//! for chalk on a board or a digit drawn light on dark.

use image::DynamicImage;

/// A grayscale image in floats, 0 (black) to 255 (white), row by row.
#[derive(Clone, Debug)]
pub struct Grey {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` values, row by row.
    pub values: Vec<f32>,
}

/// The longer side images are brought down to before the paper is estimated: a digit at a
/// quarter of the short side of any photo keeps well over the 20 pixels MNIST's box needs, and
/// a 40-megapixel photo costs no more than a small one.
pub const WORKING_SIDE: u32 = 512;

/// `img` in grey (ITU-R 601 luma, as PIL's "L"), transparent pixels shown over white paper,
/// brought down to at most [`WORKING_SIDE`] a side by area averaging.
pub fn grey_on_white(img: &DynamicImage) -> Grey {
    let img = if img.width().max(img.height()) > WORKING_SIDE {
        img.thumbnail(WORKING_SIDE, WORKING_SIDE)
    } else {
        img.clone()
    };
    let rgba = img.to_rgba8();
    let values = rgba
        .pixels()
        .map(|p| {
            let [r, g, b, a] = p.0.map(f32::from);
            let luma = 0.299 * r + 0.587 * g + 0.114 * b;
            let alpha = a / 255.0;
            alpha * luma + (1.0 - alpha) * 255.0
        })
        .collect();
    Grey {
        width: rgba.width() as usize,
        height: rgba.height() as usize,
        values,
    }
}

/// The ink found on the paper.
#[derive(Clone, Debug)]
pub struct Ink {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// How far each pixel is from the paper towards the ink's side, in grey levels (0: paper).
    pub values: Vec<f32>,
    /// The paper's noise: the spread of the border around its plane (a robust standard
    /// deviation, in grey levels, at least 1).
    pub noise: f32,
    /// Whether the drawing is lighter than its paper (chalk on a board, MNIST's own digits).
    pub light_on_dark: bool,
}

/// A plane `a + b x + c y` over coordinates scaled to [-1, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plane {
    /// The level at the image's centre.
    pub a: f32,
    /// The change from the left edge to the centre.
    pub b: f32,
    /// The change from the top edge to the centre.
    pub c: f32,
}

impl Plane {
    /// The plane's level at pixel (x, y) of a `w` x `h` image.
    pub fn at(&self, x: usize, y: usize, w: usize, h: usize) -> f32 {
        let (u, v) = unit_coords(x, y, w, h);
        self.a + self.b * u + self.c * v
    }
}

fn unit_coords(x: usize, y: usize, w: usize, h: usize) -> (f32, f32) {
    let u = if w > 1 {
        2.0 * x as f32 / (w - 1) as f32 - 1.0
    } else {
        0.0
    };
    let v = if h > 1 {
        2.0 * y as f32 / (h - 1) as f32 - 1.0
    } else {
        0.0
    };
    (u, v)
}

/// The pixels of the border band: `band` pixels deep on every side.
fn border_pixels(w: usize, h: usize, band: usize) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if x < band || y < band || x + band >= w || y + band >= h {
                v.push((x, y));
            }
        }
    }
    v
}

/// The paper's plane fitted to the border of `grey`, by least squares repeated three times,
/// each time without the pixels far from the last fit (a stroke that reaches the border, a
/// shadow in a corner); and the spread of the border around it.
pub fn fit_paper(grey: &Grey) -> (Plane, f32) {
    let (w, h) = (grey.width, grey.height);
    // about 3% of the short side, at least one pixel
    let band = (w.min(h) * 3 / 100).max(1);
    let mut points: Vec<(f32, f32, f32)> = border_pixels(w, h, band)
        .into_iter()
        .map(|(x, y)| {
            let (u, v) = unit_coords(x, y, w, h);
            (u, v, grey.values[y * w + x])
        })
        .collect();
    let mut plane = least_squares(&points);
    let mut spread = 1.0;
    for _ in 0..3 {
        let mut residuals: Vec<f32> = points
            .iter()
            .map(|&(u, v, z)| (z - (plane.a + plane.b * u + plane.c * v)).abs())
            .collect();
        spread = (1.4826 * median(&mut residuals)).max(1.0);
        let keep = (3.0 * spread).max(4.0);
        let kept: Vec<(f32, f32, f32)> = points
            .iter()
            .copied()
            .filter(|&(u, v, z)| (z - (plane.a + plane.b * u + plane.c * v)).abs() <= keep)
            .collect();
        if kept.len() < 3 || kept.len() == points.len() {
            break;
        }
        points = kept;
        plane = least_squares(&points);
    }
    (plane, spread)
}

/// The median of `values` (reordered), 0 for none.
pub fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mid = values.len() / 2;
    *values.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// The least-squares plane through `points` (u, v, level); only its level when the points do
/// not span a plane (an image one pixel wide).
fn least_squares(points: &[(f32, f32, f32)]) -> Plane {
    let n = points.len().max(1) as f64;
    let (mut su, mut sv, mut sz) = (0.0f64, 0.0f64, 0.0f64);
    let (mut suu, mut svv, mut suv, mut suz, mut svz) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for &(u, v, z) in points {
        let (u, v, z) = (u as f64, v as f64, z as f64);
        su += u;
        sv += v;
        sz += z;
        suu += u * u;
        svv += v * v;
        suv += u * v;
        suz += u * z;
        svz += v * z;
    }
    // centred sums: the level is the mean, the slopes solve a 2 x 2 system
    let (mu, mv, mz) = (su / n, sv / n, sz / n);
    let cuu = suu / n - mu * mu;
    let cvv = svv / n - mv * mv;
    let cuv = suv / n - mu * mv;
    let cuz = suz / n - mu * mz;
    let cvz = svz / n - mv * mz;
    let det = cuu * cvv - cuv * cuv;
    let (b, c) = if det.abs() > 1e-9 {
        ((cuz * cvv - cvz * cuv) / det, (cvz * cuu - cuz * cuv) / det)
    } else if cuu > 1e-9 {
        (cuz / cuu, 0.0)
    } else if cvv > 1e-9 {
        (0.0, cvz / cvv)
    } else {
        (0.0, 0.0)
    };
    let a = mz - b * mu - c * mv;
    Plane {
        a: a as f32,
        b: b as f32,
        c: c as f32,
    }
}

/// The ink on `grey`: its distance from the paper's plane, on the side that holds more of the
/// drawing. The side is the one whose pixels stray further beyond the paper's noise, summed
/// over the image: strokes are far from the paper on one side only, while the paper's noise
/// and the light's unevenness are on both.
pub fn find_ink(grey: &Grey) -> Ink {
    let (w, h) = (grey.width, grey.height);
    let (plane, noise) = fit_paper(grey);
    let mut residual = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            residual.push(grey.values[y * w + x] - plane.at(x, y, w, h));
        }
    }
    let beyond = (4.0 * noise).max(12.0);
    let (mut lighter, mut darker) = (0.0f64, 0.0f64);
    for &r in &residual {
        lighter += (r - beyond).max(0.0) as f64;
        darker += (-r - beyond).max(0.0) as f64;
    }
    let light_on_dark = if lighter == darker {
        // nothing beyond the noise on either side: the paper's own brightness decides
        plane.a < 128.0
    } else {
        lighter > darker
    };
    let sign = if light_on_dark { 1.0 } else { -1.0 };
    let values = residual.iter().map(|&r| (sign * r).max(0.0)).collect();
    Ink {
        width: w,
        height: h,
        values,
        noise,
        light_on_dark,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plane_is_recovered_exactly_from_its_border() {
        let (w, h) = (40, 30);
        let truth = Plane {
            a: 200.0,
            b: -20.0,
            c: 10.0,
        };
        let mut values = Vec::new();
        for y in 0..h {
            for x in 0..w {
                values.push(truth.at(x, y, w, h));
            }
        }
        let (plane, _) = fit_paper(&Grey {
            width: w,
            height: h,
            values,
        });
        assert!((plane.a - truth.a).abs() < 1e-3, "{plane:?}");
        assert!((plane.b - truth.b).abs() < 1e-3, "{plane:?}");
        assert!((plane.c - truth.c).abs() < 1e-3, "{plane:?}");
    }

    #[test]
    fn a_stroke_across_the_border_does_not_move_the_paper() {
        let (w, h) = (50, 50);
        let mut values = vec![220.0; w * h];
        // a dark stroke from the top edge down the middle
        for y in 0..25 {
            for x in 23..27 {
                values[y * w + x] = 40.0;
            }
        }
        let grey = Grey {
            width: w,
            height: h,
            values,
        };
        let (plane, noise) = fit_paper(&grey);
        assert!(
            (plane.a - 220.0).abs() < 0.5 && plane.c.abs() < 0.5,
            "{plane:?}"
        );
        assert_eq!(noise, 1.0);
        let ink = find_ink(&grey);
        assert!(!ink.light_on_dark);
        assert!((ink.values[10 * w + 24] - 180.0).abs() < 1.0);
        assert_eq!(ink.values[40 * w + 10], 0.0);
    }
}
