//! Data augmentation as torchvision users write it for these datasets, drawn from a seeded
//! generator: a random affine map for MNIST and Fashion-MNIST
//! (`RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))`), a random crop of the
//! zero-padded image and a random horizontal flip for CIFAR-10
//! (`RandomCrop(32, padding=4)`, `RandomHorizontalFlip()`).
//!
//! Images are (C, H, W) floats, as a batch holds them. The transforms follow torchvision's
//! tensor path: the affine map is about the image's centre, its translation whole pixels, its
//! interpolation NEAREST (torchvision's default) and what comes from outside the image 0
//! (its default fill). `bnlab train --augment` applies them per batch, on the fly; a user's own
//! loop can call [`Augmentation::apply_batch`] (or the single transforms) the same way.

use crate::data::DatasetKind;
use crate::rng::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// torchvision's `RandomAffine` without shear: the ranges the parameters are drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomAffine {
    /// The angle is drawn uniformly from [-degrees, degrees].
    pub degrees: f32,
    /// The shift is drawn uniformly from [-tx * W, tx * W] (and [-ty * H, ty * H]), then
    /// rounded to whole pixels.
    pub translate: (f32, f32),
    /// The scale is drawn uniformly from this range.
    pub scale: (f32, f32),
}

impl RandomAffine {
    /// `RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))`, what torchvision
    /// users write for MNIST.
    pub const MNIST: RandomAffine = RandomAffine {
        degrees: 10.0,
        translate: (0.1, 0.1),
        scale: (0.9, 1.1),
    };

    /// One draw of the parameters for an `h` x `w` image, in torchvision's order: the angle,
    /// the shift (x, then y), the scale.
    pub fn sample(&self, rng: &mut Rng, h: usize, w: usize) -> AffineParams {
        let angle = rng.uniform(-self.degrees, self.degrees);
        let max_dx = self.translate.0 * w as f32;
        let max_dy = self.translate.1 * h as f32;
        let tx = rng.uniform(-max_dx, max_dx).round() as i32;
        let ty = rng.uniform(-max_dy, max_dy).round() as i32;
        let scale = rng.uniform(self.scale.0, self.scale.1);
        AffineParams {
            angle,
            translate: (tx, ty),
            scale,
        }
    }
}

/// One affine map: a rotation by `angle` degrees (counter-clockwise on the screen, as
/// torchvision's) and a scaling about the image's centre, then a shift.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AffineParams {
    /// Degrees, counter-clockwise.
    pub angle: f32,
    /// Whole pixels, right and down.
    pub translate: (i32, i32),
    /// 1 keeps the size.
    pub scale: f32,
}

impl AffineParams {
    /// The map that changes nothing.
    pub const IDENTITY: AffineParams = AffineParams {
        angle: 0.0,
        translate: (0, 0),
        scale: 1.0,
    };
}

/// `src` ((C, H, W) floats) mapped by `p` into `dst` (the same shape), as torchvision's
/// `F.affine` on a tensor does: each output pixel's centre taken back through the inverse map
/// into the input, the nearest input pixel read (ties to even, as `grid_sample`'s nearest),
/// 0 outside the image.
pub fn affine(src: &[f32], dst: &mut [f32], shape: [usize; 3], p: &AffineParams) {
    let [c, h, w] = shape;
    assert_eq!(src.len(), c * h * w, "affine: src is not (C, H, W)");
    assert_eq!(dst.len(), src.len(), "affine: dst is not src's shape");
    // torchvision's tensor path uses the inverse matrix of -angle (its y axis points down)
    let (sin, cos) = (-p.angle).to_radians().sin_cos();
    let (tx, ty) = (p.translate.0 as f32, p.translate.1 as f32);
    let (hw, hh) = (w as f32 / 2.0, h as f32 / 2.0);
    for y in 0..h {
        for x in 0..w {
            // the output pixel's centre relative to the image's centre, less the shift
            let (xo, yo) = (x as f32 + 0.5 - hw - tx, y as f32 + 0.5 - hh - ty);
            let xi = (cos * xo + sin * yo) / p.scale;
            let yi = (-sin * xo + cos * yo) / p.scale;
            // grid_sample with align_corners=False: back to pixel indices
            let (px, py) = (
                (xi + hw - 0.5).round_ties_even(),
                (yi + hh - 0.5).round_ties_even(),
            );
            let inside = px >= 0.0 && py >= 0.0 && px < w as f32 && py < h as f32;
            for ch in 0..c {
                dst[(ch * h + y) * w + x] = if inside {
                    src[(ch * h + py as usize) * w + px as usize]
                } else {
                    0.0
                };
            }
        }
    }
}

/// One draw of `RandomCrop(H, padding)` and `RandomHorizontalFlip()`: where the crop of the
/// padded image starts, and whether it is flipped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropParams {
    /// The crop's first row in the padded image, 0..=2 * padding.
    pub top: usize,
    /// The crop's first column in the padded image, 0..=2 * padding.
    pub left: usize,
    /// Mirror left to right.
    pub flip: bool,
}

impl CropParams {
    /// One draw for padding `padding`: top and left uniform in 0..=2 * padding (torch's
    /// `randint(0, h - th + 1)`), then the flip with probability 1/2.
    pub fn sample(rng: &mut Rng, padding: usize) -> CropParams {
        let choices = (2 * padding + 1) as f32;
        let pick = |rng: &mut Rng| ((rng.next_f32() * choices) as usize).min(2 * padding);
        let top = pick(rng);
        let left = pick(rng);
        let flip = rng.next_f32() < 0.5;
        CropParams { top, left, flip }
    }
}

/// `src` ((C, H, W) floats) padded by `padding` zeros on every side, cropped back to H x W at
/// `p.top`, `p.left`, and mirrored left to right when `p.flip`; into `dst`.
pub fn crop_flip(src: &[f32], dst: &mut [f32], shape: [usize; 3], padding: usize, p: &CropParams) {
    let [c, h, w] = shape;
    assert_eq!(src.len(), c * h * w, "crop_flip: src is not (C, H, W)");
    assert_eq!(dst.len(), src.len(), "crop_flip: dst is not src's shape");
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let xc = if p.flip { w - 1 - x } else { x };
                // the padded image's pixel (top + y, left + xc) is the source's, shifted back
                let (sy, sx) = (
                    (p.top + y) as isize - padding as isize,
                    (p.left + xc) as isize - padding as isize,
                );
                let inside = sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w;
                dst[(ch * h + y) * w + x] = if inside {
                    src[(ch * h + sy as usize) * w + sx as usize]
                } else {
                    0.0
                };
            }
        }
    }
}

/// The augmentation of a dataset, as `bnlab train --augment` applies it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Augmentation {
    /// A random affine map (MNIST, Fashion-MNIST).
    Affine(RandomAffine),
    /// A random crop of the image padded with this many zeros, and a random horizontal flip
    /// (CIFAR-10).
    CropFlip {
        /// Zeros added on every side before the crop.
        padding: usize,
    },
}

/// The drawn parameters of one image's transform.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Drawn {
    /// An affine map's.
    Affine(AffineParams),
    /// A crop's and flip's, with the padding the crop is of.
    CropFlip(CropParams, usize),
}

impl Drawn {
    /// `src` ((C, H, W) floats of `shape`) transformed into `dst`.
    pub fn apply(&self, src: &[f32], dst: &mut [f32], shape: [usize; 3]) {
        match self {
            Drawn::Affine(p) => affine(src, dst, shape, p),
            Drawn::CropFlip(p, padding) => crop_flip(src, dst, shape, *padding, p),
        }
    }
}

impl Augmentation {
    /// What torchvision users write for `kind`: [`RandomAffine::MNIST`] for MNIST and
    /// Fashion-MNIST, `RandomCrop(32, padding=4)` with `RandomHorizontalFlip()` for CIFAR-10.
    pub fn for_dataset(kind: DatasetKind) -> Augmentation {
        match kind {
            DatasetKind::Mnist | DatasetKind::FashionMnist => {
                Augmentation::Affine(RandomAffine::MNIST)
            }
            DatasetKind::Cifar10 => Augmentation::CropFlip { padding: 4 },
        }
    }

    /// One image's parameters, drawn from `rng`.
    pub fn sample(&self, rng: &mut Rng, h: usize, w: usize) -> Drawn {
        match self {
            Augmentation::Affine(a) => Drawn::Affine(a.sample(rng, h, w)),
            Augmentation::CropFlip { padding } => {
                Drawn::CropFlip(CropParams::sample(rng, *padding), *padding)
            }
        }
    }

    /// Every image of `batch` (images of `shape` one after another) transformed in place, each
    /// with its own parameters. The parameters are drawn from `rng` one image after another
    /// before any is applied, so the result depends on the generator only, not on the threads
    /// that apply them.
    pub fn apply_batch(&self, batch: &mut [f32], shape: [usize; 3], rng: &mut Rng) {
        let item = shape.iter().product::<usize>();
        if item == 0 {
            return;
        }
        let drawn: Vec<Drawn> = (0..batch.len() / item)
            .map(|_| self.sample(rng, shape[1], shape[2]))
            .collect();
        batch
            .par_chunks_mut(item)
            .zip(drawn.par_iter())
            .for_each_init(
                || vec![0.0f32; item],
                |scratch, (img, d)| {
                    scratch.copy_from_slice(img);
                    d.apply(scratch, img, shape);
                },
            );
    }
}

/// The augmentation stream's seed for a run seeded with `seed`: a stream apart from the ones
/// the seed already drives (initialisation, data order, dropout), so a run without
/// augmentation draws exactly what it drew before augmentation existed.
pub fn stream_seed(seed: u64) -> u64 {
    // the golden ratio's bits: any fixed odd constant keeps the streams apart
    seed ^ 0x9E37_79B9_7F4A_7C15
}
