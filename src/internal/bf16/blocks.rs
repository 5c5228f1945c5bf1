//! The output split into rectangular blocks, run on the pool's threads or the calling thread.
//!
//! Each block of `dst` is written by exactly one task, so tasks may run in parallel; a block is
//! a multiple of the microkernel's rows and columns (except at the matrix's edge), so a
//! microkernel never straddles two blocks.

use rayon::prelude::*;

/// The destination as a raw pointer, so that tasks writing disjoint blocks can share it.
#[derive(Clone, Copy)]
pub(super) struct Dst {
    ptr: *mut f32,
    /// Row length of `dst` (n).
    pub ld: usize,
}

// SAFETY: tasks write disjoint blocks of the buffer (see `for_each_block`) while the `&mut`
// borrow it came from is held by the caller, so no two threads touch the same element.
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

impl Dst {
    /// Element (i, j)'s address. Safe to compute; writing through it is the caller's duty.
    pub fn at(self, i: usize, j: usize) -> *mut f32 {
        self.ptr.wrapping_add(i * self.ld + j)
    }
}

/// A block of the output: rows `i0..i1`, columns `j0..j1`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Block {
    pub i0: usize,
    pub i1: usize,
    pub j0: usize,
    pub j1: usize,
}

/// Calls `task(dst, block)` once for each block of `block_rows x block_cols` covering (m, n):
/// over the rayon pool when `on_pool` (and there is more than one block), else in order on the
/// calling thread. `block_rows`/`block_cols` must be multiples of the microkernel's size.
pub(super) fn for_each_block(
    dst: &mut [f32],
    (m, n): (usize, usize),
    (block_rows, block_cols): (usize, usize),
    on_pool: bool,
    task: impl Fn(Dst, Block) + Sync,
) {
    assert_eq!(dst.len(), m * n);
    let d = Dst {
        ptr: dst.as_mut_ptr(),
        ld: n,
    };
    let (rb, cb) = (m.div_ceil(block_rows), n.div_ceil(block_cols));
    let block = |t: usize| {
        let (bi, bj) = (t / cb, t % cb);
        Block {
            i0: bi * block_rows,
            i1: (bi * block_rows + block_rows).min(m),
            j0: bj * block_cols,
            j1: (bj * block_cols + block_cols).min(n),
        }
    };
    if on_pool && rb * cb > 1 && crate::runtime::threads() > 1 {
        (0..rb * cb).into_par_iter().for_each(|t| task(d, block(t)));
    } else {
        (0..rb * cb).for_each(|t| task(d, block(t)));
    }
}

/// Block sizes for a (m, n) output: `max_rows x max_cols` when there are enough blocks to keep
/// `threads` busy, else smaller blocks (halving the larger side, down to the microkernel's
/// `mr x nr`) so that every thread gets work.
pub(super) fn block_shape(
    (m, n): (usize, usize),
    (mr, nr): (usize, usize),
    (max_rows, max_cols): (usize, usize),
    threads: usize,
) -> (usize, usize) {
    let (mut br, mut bc) = (max_rows, max_cols);
    // at least 2 blocks per thread when the matrix allows, so the last one is not alone
    let want = 2 * threads;
    while m.div_ceil(br) * n.div_ceil(bc) < want && (br > mr || bc > nr) {
        if (bc > nr && bc >= br) || br <= mr {
            bc = (bc / 2).max(nr).div_ceil(nr) * nr;
        } else {
            br = (br / 2).max(mr).div_ceil(mr) * mr;
        }
    }
    (br, bc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_whole_microkernels_and_give_every_thread_work() {
        for (m, n) in [
            (1, 1),
            (9, 784),
            (64, 196),
            (256, 256),
            (2048, 2048),
            (33, 1000),
        ] {
            for (mr, nr) in [(8, 32), (32, 32)] {
                for threads in [1, 2, 8] {
                    let (br, bc) = block_shape((m, n), (mr, nr), (128, 256), threads);
                    assert!(br % mr == 0 && bc % nr == 0, "{m}x{n}: {br}x{bc}");
                    assert!(br <= 128 && bc <= 256);
                    let blocks = m.div_ceil(br) * n.div_ceil(bc);
                    // fewer than 2 per thread only when the blocks are already microkernels
                    assert!(
                        blocks >= 2 * threads
                            || (br == mr && bc == nr)
                            || blocks == m.div_ceil(mr) * n.div_ceil(nr),
                        "{m}x{n} {threads}: {br}x{bc}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_element_is_in_exactly_one_block() {
        let (m, n) = (70, 100);
        let mut dst = vec![0.0f32; m * n];
        let seen = std::sync::Mutex::new(vec![0u8; m * n]);
        for_each_block(&mut dst, (m, n), (16, 32), true, |_, b| {
            let mut seen = seen.lock().unwrap();
            for i in b.i0..b.i1 {
                for j in b.j0..b.j1 {
                    seen[i * n + j] += 1;
                }
            }
        });
        assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1));
    }
}
