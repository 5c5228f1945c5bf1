//! Pixels as the models see them: bytes 0..=255 scaled to floats in [0, 1]. At the bottom of
//! `data`, so that the batch gatherer (`loader`) and the nonzeros (`nonzeros`) share it without
//! depending on each other.

use multiversion::multiversion;

/// dst = src / 255, the division (not a multiplication by 1/255) that PyTorch does; also the
/// values of a batch's nonzeros (`Nonzeros::gather`), so that both forms agree to the bit.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub(crate) fn scale_bytes(dst: &mut [f32], src: &[u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as f32 / 255.0;
    }
}
