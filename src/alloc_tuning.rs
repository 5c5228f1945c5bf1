//! Keep freed memory for reuse instead of returning it to the kernel.
//!
//! The GEMM crate allocates its packing buffers (hundreds of kilobytes) on every call. With
//! glibc's defaults such blocks are mmapped and unmapped each time, and every step then pays
//! for page faults and for the kernel zeroing fresh pages (5-10% of a training epoch in `perf`).
//! Raising the mmap and trim thresholds keeps those blocks in the heap, where they are reused.

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
        // SAFETY: mallopt only changes allocator parameters; glibc documents both settings.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 256 << 20);
            mallopt(M_TRIM_THRESHOLD, 512 << 20);
        }
    }
}
