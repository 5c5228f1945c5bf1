//! Fuzz the CSV table reader: any bytes must give `Ok` or `Err`, never a panic; a table that
//! parses must standardise, label and split without one either.
#![no_main]

use bnlab::data::table::{labels, parse_csv, split, Standardizer};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.csv");
    let Ok(table) = parse_csv(data, path, "y") else {
        return;
    };
    assert_eq!(table.features.len(), table.rows() * table.columns.len());
    let s = Standardizer::fit(&table);
    let x = s.apply(&table, path).expect("a table standardises with its own statistics");
    // every cell is a finite float32, so every standardised value is finite (the spread of
    // two float32s fits in f64, and a constant column is divided by 1)
    assert!(x.iter().all(|v| v.is_finite()), "a non-finite standardised value");
    let _ = labels(&table, false, path);
    let _ = labels(&table, true, path);
    let _ = split(table.rows(), 0.2, 0, path);
});
