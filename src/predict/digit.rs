//! From the ink on a page to MNIST's 28 x 28 field, as MNIST itself was made (LeCun et al.):
//! the strokes told from the paper by Otsu's threshold, specks apart from the drawing dropped,
//! the drawing cropped, scaled so that its longer side is 20 pixels (its aspect kept), and
//! placed so that its centre of mass is the field's centre.

use super::paper::{median, Ink};

/// Why an image holds no digit to read.
#[derive(Clone, Debug, PartialEq)]
pub enum NoDigit {
    /// Nothing on the page differs from the paper by more than its noise (a blank page, a
    /// transparent image, a single pixel).
    Blank,
    /// What differs from the paper is only scattered specks, nothing the size of a digit.
    OnlySpecks,
}

impl std::fmt::Display for NoDigit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoDigit::Blank => write!(
                f,
                "no digit-like ink found: the image is blank (nothing stands out from its background)"
            ),
            NoDigit::OnlySpecks => write!(
                f,
                "no digit-like ink found: only scattered specks or noise, nothing the size of a digit"
            ),
        }
    }
}

impl std::error::Error for NoDigit {}

/// The side of MNIST's field.
pub const FIELD: usize = 28;
/// The side of the box MNIST's digits were scaled into.
pub const BOX: usize = 20;

/// The least contrast, in grey levels, a stroke must have against its paper.
const MIN_CONTRAST: f32 = 12.0;

/// Otsu's threshold of `values` (all at least 0): the level that best splits them into two
/// classes (the largest between-class variance), over a 256-bin histogram up to their maximum.
pub fn otsu(values: &[f32]) -> f32 {
    let max = values.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return 0.0;
    }
    let bins = 256;
    let mut hist = vec![0u64; bins];
    for &v in values {
        let b = ((v / max) * (bins - 1) as f32).round() as usize;
        hist[b.min(bins - 1)] += 1;
    }
    let total = values.len() as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0) = (0.0f64, 0.0f64);
    let (mut best, mut best_t) = (-1.0f64, 0usize);
    for (t, &c) in hist.iter().enumerate() {
        w0 += c as f64;
        sum0 += t as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    // the threshold lies between bin best_t and the next
    (best_t as f32 + 0.5) / (bins - 1) as f32 * max
}

/// The 8-connected components of `mask` (w x h): a label per pixel (0: not in the mask, else
/// 1..=n) and each component's pixel count (index 0 unused).
fn components(mask: &[bool], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
    let mut labels = vec![0u32; w * h];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32;
        let mut size = 0;
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] && labels[j] == 0 {
                        labels[j] = label;
                        stack.push(j);
                    }
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// The longer side of the bounding box of the pixels labelled `label` (`w` a row).
fn span_of(labels: &[u32], label: u32, w: usize) -> usize {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, &l) in labels.iter().enumerate() {
        if l == label {
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    if x0 > x1 {
        0
    } else {
        (x1 - x0 + 1).max(y1 - y0 + 1)
    }
}

/// The drawing found in `ink`, cut out: its width, height and values in [0, 1] (1: a stroke's
/// core), with specks apart from it removed.
pub fn cut_out(ink: &Ink) -> Result<(usize, usize, Vec<f32>), NoDigit> {
    let (w, h) = (ink.width, ink.height);
    // a stroke stands out from the paper by well over its noise, and by some grey levels
    let floor = (4.0 * ink.noise).max(MIN_CONTRAST);
    let threshold = otsu(&ink.values).max(floor);
    let mask: Vec<bool> = ink.values.iter().map(|&v| v > threshold).collect();
    let (labels, sizes) = components(&mask, w, h);
    let Some((biggest, &largest)) = sizes.iter().enumerate().max_by_key(|&(_, s)| *s) else {
        return Err(NoDigit::Blank);
    };
    if largest == 0 {
        return Err(NoDigit::Blank);
    }
    // a digit spans a good part of the picture, and most of it is one stroke: its largest
    // piece at least a tenth of the short side (the digits fill a quarter or more),
    // and a few pixels; noise and dust are specks
    let piece = span_of(&labels, biggest as u32, w);
    if piece < 4 || piece * 10 < w.min(h) {
        return Err(NoDigit::OnlySpecks);
    }
    // the drawing: the components at least 8% the size of the largest (a digit drawn in two
    // strokes, a broken pencil line), not the specks of dust or noise around it
    let kept: Vec<bool> = sizes
        .iter()
        .map(|&s| s > 0 && s * 100 >= largest * 8)
        .collect();
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    let mut core = Vec::new();
    for (i, &l) in labels.iter().enumerate() {
        if l != 0 && kept[l as usize] {
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            core.push(ink.values[i]);
        }
    }
    // strokes reach 1 at their typical (median) level, the paper's noise fades to 0 below half
    // the threshold
    let high = median(&mut core).max(threshold * 1.01);
    let low = 0.5 * threshold;
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut out = Vec::with_capacity(cw * ch);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let i = y * w + x;
            let l = labels[i];
            let v = if l != 0 && !kept[l as usize] {
                0.0
            } else {
                ((ink.values[i] - low) / (high - low)).clamp(0.0, 1.0)
            };
            out.push(v);
        }
    }
    Ok((cw, ch, out))
}

/// The cut-out drawing (`w` x `h`, values in [0, 1]) in MNIST's field: its longer side scaled
/// to 20 pixels (area averaging when shrinking, bilinear when growing), its strokes brought to
/// full intensity, its centre of mass on the field's pixel (14, 14). 784 floats in [0, 1].
pub fn into_field(w: usize, h: usize, values: &[f32]) -> Vec<f32> {
    let scale = BOX as f32 / w.max(h) as f32;
    let sw = ((w as f32 * scale).round() as usize).clamp(1, BOX);
    let sh = ((h as f32 * scale).round() as usize).clamp(1, BOX);
    let src = image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(
        w as u32,
        h as u32,
        values.to_vec(),
    )
    .expect("w * h values");
    let small = image::imageops::resize(
        &src,
        sw as u32,
        sh as u32,
        image::imageops::FilterType::Triangle,
    );
    let mut small: Vec<f32> = small.into_raw();
    // a thin stroke shrunk with its paper comes out faint: the strongest pixel back to 1
    let peak = small.iter().copied().fold(0.0f32, f32::max);
    if peak > 0.0 {
        for v in &mut small {
            *v = (*v / peak).clamp(0.0, 1.0);
        }
    }
    // its centre of mass onto the field's pixel (14, 14), as MNIST's centring used pixel
    // indices
    let (mut mass, mut cx, mut cy) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in small.iter().enumerate() {
        let v = v as f64;
        mass += v;
        cx += v * (i % sw) as f64;
        cy += v * (i / sw) as f64;
    }
    let (cx, cy) = if mass > 0.0 {
        (cx / mass, cy / mass)
    } else {
        (sw as f64 / 2.0, sh as f64 / 2.0)
    };
    let half = (FIELD / 2) as f64;
    let (ox, oy) = ((half - cx).round() as i64, (half - cy).round() as i64);
    let mut field = vec![0.0f32; FIELD * FIELD];
    for (i, &v) in small.iter().enumerate() {
        let (fx, fy) = ((i % sw) as i64 + ox, (i / sw) as i64 + oy);
        if (0..FIELD as i64).contains(&fx) && (0..FIELD as i64).contains(&fy) {
            field[fy as usize * FIELD + fx as usize] = v;
        }
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_levels_between_them() {
        let mut v = vec![10.0f32; 900];
        v.extend(vec![200.0f32; 100]);
        let t = otsu(&v);
        assert!(t > 10.0 && t < 200.0, "{t}");
    }

    #[test]
    fn components_are_eight_connected() {
        // a diagonal is one component, a pixel apart is another
        let (w, h) = (5, 5);
        let mut mask = vec![false; w * h];
        for i in 0..3 {
            mask[i * w + i] = true;
        }
        mask[4 * w] = true;
        let (labels, sizes) = components(&mask, w, h);
        assert_eq!(sizes, vec![0, 3, 1]);
        assert_eq!(labels[0], labels[2 * w + 2]);
    }

    #[test]
    fn a_square_lands_centred_in_the_box() {
        // a 10 x 5 block: scaled to 20 x 10, its centre of mass at (14, 14)
        let field = into_field(10, 5, &[1.0; 50]);
        let mass: f32 = field.iter().sum();
        let cx: f32 = field
            .iter()
            .enumerate()
            .map(|(i, v)| v * (i % FIELD) as f32)
            .sum::<f32>()
            / mass;
        let cy: f32 = field
            .iter()
            .enumerate()
            .map(|(i, v)| v * (i / FIELD) as f32)
            .sum::<f32>()
            / mass;
        assert!(
            (cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5,
            "{cx} {cy}"
        );
        assert!((mass - 200.0).abs() < 1.0, "{mass}");
    }
}
