//! Photo-like images of MNIST test digits, drawn by the tests themselves: a digit written on a
//! sheet of paper and photographed, as a user of `bnlab predict` would. What varies is what a
//! phone photo of handwriting shows: the paper's grey and tint, light that falls off across the
//! sheet, the ink's colour (black, blue, pencil grey, never pure black), stroke width, a tilt of
//! a few degrees, blur, sensor noise, JPEG compression, the picture's size (50 to 1000 pixels a
//! side) and the digit's size (25% to 85% of the short side) and place; and light-on-dark
//! (chalk on a board).
//!
//! The digit's label is MNIST's own: the oracle for `predict`'s answers.

use bnlab::Rng;
use image::{Rgb, RgbImage};
use std::path::Path;

/// How one photo is drawn.
#[derive(Clone, Debug)]
pub struct Look {
    /// Picture width and height in pixels.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// The digit's 20-pixel box as a fraction of the short side.
    pub digit_fraction: f32,
    /// Where the digit's centre is, as fractions of the room left on each axis (0.5: centred).
    pub place: (f32, f32),
    /// Tilt in degrees (positive: clockwise).
    pub tilt: f32,
    /// The paper's colour at the picture's centre.
    pub paper: [f32; 3],
    /// The light's change across the picture, in grey levels from one edge to the other
    /// (x, y).
    pub gradient: (f32, f32),
    /// The ink's colour.
    pub ink: [f32; 3],
    /// Where MNIST's 0-1 ink is cut to draw the stroke's edge: 0.15 thick, 0.4 as drawn, 0.65
    /// thin.
    pub stroke_cut: f32,
    /// Gaussian blur's standard deviation, in pixels of the picture.
    pub blur: f32,
    /// Sensor noise's standard deviation, in grey levels.
    pub noise: f32,
    /// JPEG quality, or None for PNG.
    pub jpeg: Option<u8>,
}

/// Named inks: what a pen or pencil leaves, never pure black.
pub const BLACK_INK: [f32; 3] = [28.0, 28.0, 34.0];
/// A blue ballpoint.
pub const BLUE_INK: [f32; 3] = [30.0, 55.0, 150.0];
/// Pencil graphite, grey.
pub const PENCIL: [f32; 3] = [105.0, 105.0, 112.0];

/// A uniform draw in [lo, hi).
fn between(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    rng.uniform(lo, hi)
}

/// The grey-paper set's look: grey paper from 170 to 240, slightly uneven light, black or blue
/// ink, slight blur and noise, 96 to 400 pixels, PNG or JPEG of good quality, upright.
pub fn grey_paper(rng: &mut Rng) -> Look {
    let side = between(rng, 96.0, 400.0);
    let aspect = between(rng, 0.75, 1.33);
    let level = between(rng, 170.0, 240.0);
    let ink = if rng.next_f32() < 0.5 {
        BLACK_INK
    } else {
        BLUE_INK
    };
    Look {
        width: side as u32,
        height: (side * aspect) as u32,
        digit_fraction: between(rng, 0.4, 0.8),
        place: (between(rng, 0.3, 0.7), between(rng, 0.3, 0.7)),
        tilt: 0.0,
        paper: [level; 3],
        gradient: (between(rng, -10.0, 10.0), between(rng, -10.0, 10.0)),
        ink,
        stroke_cut: 0.4,
        blur: between(rng, 0.0, 1.0) * side / 200.0,
        noise: between(rng, 1.0, 4.0),
        jpeg: (rng.next_f32() < 0.5).then(|| between(rng, 80.0, 95.0) as u8),
    }
}

/// The harder set's look: tinted paper from 170 to 240, light falling off by up to 50 grey
/// levels, black, blue or pencil ink, strokes thick or thin, a tilt of up to 8 degrees, blur,
/// noise, 50 to 1000 pixels, the digit at 25% to 85% of the short side anywhere in the picture,
/// JPEG down to quality 60, and one in six light on dark (chalk on a board).
pub fn harder(rng: &mut Rng) -> Look {
    let side = between(rng, 50.0, 1000.0);
    let aspect = between(rng, 0.6, 1.6);
    let level = between(rng, 170.0, 240.0);
    let tint = [
        between(rng, -12.0, 12.0),
        between(rng, -12.0, 12.0),
        between(rng, -12.0, 12.0),
    ];
    let mut paper = [level + tint[0], level + tint[1], level + tint[2]];
    let mut ink = match (rng.next_f32() * 3.0) as u32 {
        0 => BLACK_INK,
        1 => BLUE_INK,
        _ => PENCIL,
    };
    let light_on_dark = rng.next_f32() < 1.0 / 6.0;
    if light_on_dark {
        // a dark board and light chalk
        let board = between(rng, 30.0, 80.0);
        paper = [board, board + 5.0, board];
        let chalk = between(rng, 190.0, 240.0);
        ink = [chalk; 3];
    }
    let slope = between(rng, 0.0, 50.0);
    let angle = between(rng, 0.0, std::f32::consts::TAU);
    Look {
        width: side as u32,
        height: ((side * aspect) as u32).max(50),
        digit_fraction: between(rng, 0.25, 0.85),
        place: (between(rng, 0.0, 1.0), between(rng, 0.0, 1.0)),
        tilt: between(rng, -8.0, 8.0),
        paper,
        gradient: (slope * angle.cos(), slope * angle.sin()),
        ink,
        stroke_cut: [0.15, 0.4, 0.65][(rng.next_f32() * 3.0) as usize % 3],
        blur: between(rng, 0.0, 1.5) * side / 250.0,
        noise: between(rng, 1.0, 6.0),
        jpeg: (rng.next_f32() < 0.6).then(|| between(rng, 60.0, 95.0) as u8),
    }
}

/// MNIST's 28 x 28 digit (0-255) sampled bilinearly at (x, y) in its own pixels, as 0-1 ink.
fn sample(digit: &[u8], x: f32, y: f32) -> f32 {
    let at = |xi: i32, yi: i32| -> f32 {
        if (0..28).contains(&xi) && (0..28).contains(&yi) {
            digit[(yi * 28 + xi) as usize] as f32 / 255.0
        } else {
            0.0
        }
    };
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i32, y0 as i32);
    at(x0, y0) * (1.0 - fx) * (1.0 - fy)
        + at(x0 + 1, y0) * fx * (1.0 - fy)
        + at(x0, y0 + 1) * (1.0 - fx) * fy
        + at(x0 + 1, y0 + 1) * fx * fy
}

/// The picture of `digit` (MNIST's 784 bytes) drawn with `look`; `rng` draws the noise.
pub fn draw(digit: &[u8], look: &Look, rng: &mut Rng) -> RgbImage {
    let (w, h) = (look.width as usize, look.height as usize);
    let short = w.min(h) as f32;
    // MNIST's 20-pixel box spans digit_fraction of the short side
    let scale = look.digit_fraction * short / 20.0;
    let extent = 28.0 * scale;
    let room = ((w as f32 - extent).max(0.0), (h as f32 - extent).max(0.0));
    let centre = (
        extent / 2.0 + room.0 * look.place.0,
        extent / 2.0 + room.1 * look.place.1,
    );
    let (sin, cos) = look.tilt.to_radians().sin_cos();
    // ink coverage: the digit's ink cut at stroke_cut, with an edge a picture pixel wide
    let edge = 0.5 / scale.max(0.5);
    let mut coverage = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 + 0.5 - centre.0, y as f32 + 0.5 - centre.1);
            // back into the digit's frame: undo the tilt, then the scale
            let (u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
            let (mx, my) = (u / scale + 14.0 - 0.5, v / scale + 14.0 - 0.5);
            let m = sample(digit, mx, my);
            coverage[y * w + x] = ((m - look.stroke_cut) / (2.0 * edge) + 0.5).clamp(0.0, 1.0);
        }
    }
    let coverage = gaussian_blur(&coverage, w, h, look.blur);
    let mut img = RgbImage::new(w as u32, h as u32);
    for y in 0..h {
        for x in 0..w {
            let (u, v) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
            let light = look.gradient.0 * u + look.gradient.1 * v;
            let c = coverage[y * w + x];
            let mut px = [0u8; 3];
            for (ch, out) in px.iter_mut().enumerate() {
                let paper = look.paper[ch] + light;
                // the ink is lit by the same light as its paper
                let ink = look.ink[ch] * (paper / look.paper[ch].max(1.0)).min(1.3);
                let value = paper * (1.0 - c) + ink * c + look.noise * rng.normal(0.0, 1.0);
                *out = value.round().clamp(0.0, 255.0) as u8;
            }
            img.put_pixel(x as u32, y as u32, Rgb(px));
        }
    }
    img
}

/// A separable Gaussian blur of standard deviation `sigma` pixels (none below 0.3).
fn gaussian_blur(values: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    if sigma < 0.3 {
        return values.to_vec();
    }
    let r = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                for (k, &kv) in kernel.iter().enumerate() {
                    let d = k as isize - r;
                    let (sx, sy) = if horizontal {
                        ((x as isize + d).clamp(0, w as isize - 1), y as isize)
                    } else {
                        (x as isize, (y as isize + d).clamp(0, h as isize - 1))
                    };
                    s += kv * src[sy as usize * w + sx as usize];
                }
                out[y * w + x] = s;
            }
        }
        out
    };
    pass(&pass(values, true), false)
}

/// Save `img` as `look` says (PNG, or JPEG at its quality) under `stem` in `dir`; returns the
/// file's path.
pub fn save(img: &RgbImage, look: &Look, dir: &Path, stem: &str) -> std::path::PathBuf {
    match look.jpeg {
        None => {
            let path = dir.join(format!("{stem}.png"));
            img.save(&path).unwrap();
            path
        }
        Some(q) => {
            let path = dir.join(format!("{stem}.jpg"));
            let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, q)
                .encode_image(img)
                .unwrap();
            path
        }
    }
}
