//! Fuzz the IDX reader: any bytes (raw IDX, gzip-compressed IDX, or garbage) must give `Ok` or
//! `Err`, never a panic, an abort or an out-of-memory. Run with `-malloc_limit_mb=2048` so a
//! gzip bomb or a header claiming huge dimensions that made the reader allocate gigabytes is
//! reported as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = bnlab::data::parse_idx(data, Path::new("fuzz.idx")) {
        // The reader's documented invariant: the data holds exactly the product of the dims.
        let n: usize = idx.dims.iter().product();
        assert_eq!(idx.data.len(), n, "dims {:?}", idx.dims);
    }
});
