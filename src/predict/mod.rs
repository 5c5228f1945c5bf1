//! Images of any size made ready for a model, and its top classes for them.
//!
//! For MNIST models, an image is read as a photo of a digit on paper and given MNIST's own
//! preparation (LeCun et al.: each digit size-normalised into a 20 x 20 box keeping its aspect
//! ratio, then centred by its centre of mass in a 28 x 28 field, light strokes on black):
//! - grey, transparent parts over white ([`paper::grey_on_white`]);
//! - the paper estimated as a plane fitted to the border, so grey or tinted paper and uneven
//!   light leave no haze; the ink is the distance from it, on the side of the drawing (dark
//!   on light, or light on dark) ([`paper::find_ink`]);
//! - the strokes told from the paper by Otsu's threshold, specks dropped, and an image with no
//!   digit-like ink refused instead of answered ([`digit::cut_out`]);
//! - cropped, scaled into 20 x 20 and centred by mass ([`digit::into_field`]).
//!
//! Fashion-MNIST and CIFAR-10 images are simply resized (Fashion-MNIST's to 28 x 28 grayscale,
//! CIFAR-10's to 32 x 32 colour). Every file is read within a fixed budget ([`decode`]).

pub mod decode;
pub mod digit;
pub mod paper;

pub use decode::open_image;
pub use digit::NoDigit;

use crate::data::DatasetKind;
use crate::{Error, Result};
use image::imageops::FilterType;
use image::DynamicImage;
use std::path::Path;

/// The model's input for one image of `kind`: (C, H, W) floats in [0, 1], as the dataset's own
/// images are scaled. An MNIST image with no digit-like ink in it is refused (see [`NoDigit`]).
pub fn prepare(img: &DynamicImage, kind: DatasetKind) -> std::result::Result<Vec<f32>, NoDigit> {
    match kind {
        DatasetKind::Mnist => mnist_digit(img),
        DatasetKind::FashionMnist => {
            let small = image::imageops::resize(&img.to_luma8(), 28, 28, FilterType::Triangle);
            Ok(small.pixels().map(|p| p.0[0] as f32 / 255.0).collect())
        }
        DatasetKind::Cifar10 => {
            let small = image::imageops::resize(&img.to_rgb8(), 32, 32, FilterType::Triangle);
            // CIFAR-10's layout: the red plane, then green, then blue
            Ok((0..3)
                .flat_map(|c| small.pixels().map(move |p| p.0[c] as f32 / 255.0))
                .collect())
        }
    }
}

/// MNIST's preparation of a photographed or drawn digit (see the module docs): 784 floats in
/// [0, 1], light strokes on black.
pub fn mnist_digit(img: &DynamicImage) -> std::result::Result<Vec<f32>, NoDigit> {
    let grey = paper::grey_on_white(img);
    let ink = paper::find_ink(&grey);
    let (w, h, drawing) = digit::cut_out(&ink)?;
    Ok(digit::into_field(w, h, &drawing))
}

/// A model's input (C, H, W floats in [0, 1], C = 1 or 3) as the PNG image it is: what
/// `predict --show-input` writes, so a user can see what the model saw.
pub fn input_png(input: &[f32], shape: [usize; 3]) -> Result<Vec<u8>> {
    let [c, h, w] = shape;
    if input.len() != c * h * w || !(c == 1 || c == 3) {
        return Err(Error::Shape(format!(
            "input_png: {} values for a {c} x {h} x {w} image",
            input.len()
        )));
    }
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let plane = h * w;
    let img = if c == 1 {
        DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(
                w as u32,
                h as u32,
                input.iter().map(|&v| byte(v)).collect(),
            )
            .expect("h * w values"),
        )
    } else {
        // channels are planes (red, green, blue); PNG interleaves them
        let rgb = (0..plane)
            .flat_map(|i| (0..3).map(move |ch| byte(input[ch * plane + i])))
            .collect();
        DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(w as u32, h as u32, rgb).expect("h * w * 3 values"),
        )
    };
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageOutputFormat::Png,
    )
    .map_err(|e| Error::Invalid(format!("input_png: {e}")))?;
    Ok(bytes)
}

/// Read `path` and prepare it for a model of `kind`: the decode budget's and the preparation's
/// refusals as one error naming the file.
pub fn read_input(path: &Path, kind: DatasetKind) -> Result<Vec<f32>> {
    let img = open_image(path)?;
    prepare(&img, kind).map_err(|e| Error::bad_file(path, e.to_string()))
}

/// Softmax of one row of logits, in f64 for the probabilities' sake.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let exps: Vec<f64> = logits.iter().map(|&z| (z as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The `k` most probable classes, best first (ties: the lower class first), with their
/// probabilities.
pub fn top_k(probabilities: &[f64], k: usize) -> Vec<(usize, f64)> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    order
        .into_iter()
        .take(k)
        .map(|c| (c, probabilities[c]))
        .collect()
}
