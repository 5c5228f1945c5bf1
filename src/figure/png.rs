//! The figure's pixels as a PNG file: encoded here (zlib from `flate2`, CRC from `flate2::Crc`)
//! and written with [`crate::io::write_atomic`], so a reader never sees half a file and a failed
//! write leaves nothing behind.

use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_crc_matches_the_spec() {
        // The CRC of an empty IEND chunk is fixed by the PNG spec.
        let png = encode_png(1, 1, &[0, 0, 0]).unwrap();
        assert_eq!(&png[png.len() - 4..], &[0xAE, 0x42, 0x60, 0x82]);
    }
}
