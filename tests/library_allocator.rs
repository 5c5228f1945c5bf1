//! A library must not change its process's allocator (project issue 11): running bnlab's
//! thread pool leaves glibc's malloc settings as they were. The `bnlab` command applies its
//! own (`alloc_tuning::keep_freed_memory`) at start; a program using the library decides.
//!
//! The oracle is glibc's documented behaviour: with its default settings a block above the
//! largest dynamic mmap threshold (32 MiB on 64-bit) is always served by mmap, and glibc marks
//! such a chunk in its size field (`IS_MMAPPED`, bit 1 of the word before the pointer); after
//! `keep_freed_memory` (threshold 256 MiB) the same block comes from the heap. The check runs
//! on the main thread (no test harness: `harness = false`), whose arena is the heap itself;
//! a thread's arena could not hold the block and would mmap it whatever the settings.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn main() {
    use std::os::raw::c_void;
    extern "C" {
        fn malloc(size: usize) -> *mut c_void;
        fn free(p: *mut c_void);
    }
    /// Whether a fresh 40 MiB block is mmapped (glibc's default) rather than taken from the heap.
    fn a_large_block_is_mmapped() -> bool {
        const IS_MMAPPED: usize = 0x2;
        // SAFETY: a block from malloc is preceded by its chunk's size word (glibc's layout),
        // which is the allocator's own mapped memory; the block is freed at once.
        unsafe {
            // hidden from the optimiser, which knows malloc and would treat the word before
            // the block as outside any object
            let p = std::hint::black_box(malloc(40 << 20));
            assert!(!p.is_null());
            let size_word = std::ptr::read_volatile((p as *const usize).sub(1));
            free(p);
            size_word & IS_MMAPPED != 0
        }
    }

    assert!(a_large_block_is_mmapped(), "glibc's defaults to start with");
    // everything the library does with threads: the global pool, a pool of its own with its
    // pollers, a parallel product
    bnlab::runtime::set_threads(2).unwrap();
    let sum = bnlab::runtime::with_threads(2, || {
        let a = vec![1.0f32; 64 * 64];
        let mut c = vec![0.0f32; 64 * 64];
        let m = bnlab::internal::matmul::Mat::new(&a, 64, 64);
        bnlab::internal::matmul::matmul(&mut c, m, m, false);
        c.iter().sum::<f32>()
    })
    .unwrap();
    assert_eq!(sum, 64.0 * 64.0 * 64.0);
    assert!(
        a_large_block_is_mmapped(),
        "the library changed the process's malloc settings"
    );
    // the command's tuning, applied explicitly, does change them: the check can see it
    bnlab::internal::alloc_tuning::keep_freed_memory();
    assert!(
        !a_large_block_is_mmapped(),
        "keep_freed_memory had no effect"
    );
    println!("library_allocator: the library leaves malloc alone; the command's tuning applies");
}

/// Elsewhere glibc's settings do not exist (and `keep_freed_memory` does nothing).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() {}
