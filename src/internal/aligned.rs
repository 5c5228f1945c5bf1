//! A float buffer that starts on a cache line.
//!
//! The heap hands out 16-byte aligned blocks, so where a buffer starts within its cache line
//! depends on the order of every earlier allocation. A kernel that streams 512-byte rows of a
//! weight matrix with 64-byte vector loads then splits one load in four across two lines or
//! none, by chance: the sparse first layer's forward took 22% longer after an unrelated change
//! moved its weights (`perf`, issue 20). Parameters live in these buffers so that their speed
//! does not depend on allocation order.

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The alignment in bytes: one cache line, one AVX-512 vector.
pub const ALIGN: usize = 64;

/// A fixed-length `[f32]` on the heap whose first value (if any) starts at a multiple of
/// [`ALIGN`].
pub struct AlignedVec {
    ptr: NonNull<f32>,
    len: usize,
}

// SAFETY: AlignedVec owns its buffer exclusively, as a Vec<f32> does.
unsafe impl Send for AlignedVec {}
// SAFETY: shared access only hands out `&[f32]`.
unsafe impl Sync for AlignedVec {}

impl AlignedVec {
    fn layout(len: usize) -> Layout {
        Layout::from_size_align(len * std::mem::size_of::<f32>(), ALIGN)
            .expect("buffer size overflows")
    }

    /// `len` zeros.
    pub fn zeros(len: usize) -> AlignedVec {
        if len == 0 {
            return AlignedVec {
                ptr: NonNull::dangling(),
                len,
            };
        }
        let layout = Self::layout(len);
        // SAFETY: the layout has a nonzero size; zero bits are the float 0.0.
        let raw = unsafe { alloc_zeroed(layout) } as *mut f32;
        let ptr = NonNull::new(raw).unwrap_or_else(|| handle_alloc_error(layout));
        AlignedVec { ptr, len }
    }

    /// A copy of `values`.
    pub fn from_slice(values: &[f32]) -> AlignedVec {
        let mut v = AlignedVec::zeros(values.len());
        v.copy_from_slice(values);
        v
    }
}

impl Deref for AlignedVec {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // SAFETY: ptr points to len initialised floats (or is dangling with len 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedVec {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in deref, and &mut self makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedVec {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: allocated in `zeros` with this very layout.
            unsafe { dealloc(self.ptr.as_ptr() as *mut u8, Self::layout(self.len)) }
        }
    }
}

impl Clone for AlignedVec {
    fn clone(&self) -> AlignedVec {
        AlignedVec::from_slice(self)
    }
}

impl Default for AlignedVec {
    fn default() -> AlignedVec {
        AlignedVec::zeros(0)
    }
}

impl std::fmt::Debug for AlignedVec {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_cache_line_and_keep_their_values() {
        // interleave odd-sized heap allocations so that a 16-byte aligned heap would misalign
        let mut keep = Vec::new();
        for len in [1usize, 3, 17, 200_704, 5, 0, 33] {
            keep.push(vec![1u8; len * 3 + 1]);
            let v = AlignedVec::from_slice(&(0..len).map(|i| i as f32).collect::<Vec<_>>());
            // an empty buffer has no first value to place
            assert!(
                len == 0 || (v.as_ptr() as usize).is_multiple_of(ALIGN),
                "len {len}"
            );
            assert_eq!(v.len(), len);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
            let c = v.clone();
            assert_eq!(&*c, &*v);
            assert!(len == 0 || (c.as_ptr() as usize).is_multiple_of(ALIGN));
        }
        assert!(AlignedVec::zeros(9).iter().all(|&x| x == 0.0));
    }
}
