//! Keep freed memory for reuse instead of returning it to the kernel.
//!
//! These are settings of the whole process, so the library never applies them itself: the
//! `bnlab` command (and the benchmarks, which measure what it does) call
//! [`keep_freed_memory`] at start; a program that uses bnlab as a library decides for itself.
//!
//! The GEMM crate allocates its packing buffers (hundreds of kilobytes) on every call. With
//! glibc's defaults such blocks are mmapped and unmapped each time, and every step then pays
//! for page faults and for the kernel zeroing fresh pages (5-10% of a training epoch in `perf`).
//! Raising the mmap and trim thresholds keeps those blocks in the heap, where they are reused.
//! One arena for all threads: the pool's workers, kept busy with the kernels' work, otherwise
//! each got an arena of their own holding copies of those blocks (13 MB more resident for
//! `bnlab train`, 157 MB instead of 144 MB); a step allocates too rarely for a shared arena's
//! lock to be contended (measured: no slower).

/// Apply the tuning (glibc on Linux only; elsewhere a no-op). Safe to call more than once.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::raw::c_int;
        extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        const M_TRIM_THRESHOLD: c_int = -1;
        const M_MMAP_THRESHOLD: c_int = -3;
        const M_ARENA_MAX: c_int = -8;
        // SAFETY: mallopt only changes allocator parameters; glibc documents these settings.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 256 << 20);
            mallopt(M_TRIM_THRESHOLD, 512 << 20);
            mallopt(M_ARENA_MAX, 1);
        }
    }
}
