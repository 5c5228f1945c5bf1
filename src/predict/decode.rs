//! Reading an image file within a fixed budget: its format is told from its first bytes, its
//! size from its header, and only then is it decoded, under `image`'s allocation limits. A
//! 20000 x 20000 PNG of a few kilobytes (a decompression bomb) is refused from its header,
//! before a pixel is decoded.

use crate::{Error, Result};
use image::{DynamicImage, ImageFormat};
use std::io::{BufReader, Read};
use std::path::Path;

/// The longest side an image may have, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// The most pixels an image may have (40 megapixels: a 7300 x 5500 photo).
pub const MAX_PIXELS: u64 = 40_000_000;
/// The most memory the decoder may allocate, in bytes (40 megapixels of 16-bit RGBA fit).
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// Open `path` as a PNG or JPEG image within the budget ([`MAX_SIDE`], [`MAX_PIXELS`],
/// [`MAX_DECODE_BYTES`]). Errors are one line naming the file: unreadable, empty, not an image,
/// an image in another format (GIF, ...), too large, truncated or corrupt, or with no pixels.
pub fn open_image(path: &Path) -> Result<DynamicImage> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(16);
    file.take(16)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if head.is_empty() {
        return Err(Error::bad_file(path, "is empty, not an image"));
    }
    let format = match image::guess_format(&head) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        Ok(other) => {
            let name = other.extensions_str().first().copied().unwrap_or("other");
            return Err(Error::bad_file(
                path,
                format!(
                    "is a {} image; predict reads PNG and JPEG",
                    name.to_uppercase()
                ),
            ));
        }
        Err(_) => return Err(Error::bad_file(path, "is not a PNG or JPEG image")),
    };
    let what = if format == ImageFormat::Png {
        "PNG"
    } else {
        "JPEG"
    };
    let reader =
        |limits: image::io::Limits| -> Result<image::io::Reader<BufReader<std::fs::File>>> {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            let mut r = image::io::Reader::with_format(BufReader::new(file), format);
            r.limits(limits);
            Ok(r)
        };
    // the header alone (the sides unlimited, so that a large image is told by its size, not by
    // a limit's error): nothing is decoded before the size is known to fit
    let mut header_limits = image::io::Limits::default();
    header_limits.max_alloc = Some(MAX_DECODE_BYTES);
    let (w, h) = reader(header_limits)?
        .into_dimensions()
        .map_err(|e| Error::bad_file(path, format!("is not a readable {what} image ({e})")))?;
    check_size(w, h).map_err(|msg| Error::bad_file(path, msg))?;
    let img = reader(limits())?.decode().map_err(|e| {
        Error::bad_file(
            path,
            format!("is a truncated or corrupt {what} image ({e})"),
        )
    })?;
    Ok(img)
}

/// `image`'s limits for the budget: the sides are strict limits, the allocation a best effort
/// (which is why the size is also checked from the header first).
fn limits() -> image::io::Limits {
    let mut l = image::io::Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(MAX_DECODE_BYTES);
    l
}

/// Why a `w` x `h` image is refused, if it is: no pixels, a side over [`MAX_SIDE`], or more than
/// [`MAX_PIXELS`].
pub fn check_size(w: u32, h: u32) -> std::result::Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("is an image with no pixels ({w} x {h})"));
    }
    if w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!(
            "is {w} x {h} pixels, over predict's budget ({MAX_SIDE} pixels a side, {} megapixels); scale it down first",
            MAX_PIXELS / 1_000_000
        ));
    }
    Ok(())
}
