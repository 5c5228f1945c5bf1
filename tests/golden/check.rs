//! Comparison within tolerances, collecting every failure of a case.

use bnlab::io::TensorFile;
use bnlab::Tensor;
use std::path::Path;

#[derive(Default)]
pub struct Report {
    pub checked: usize,
    pub failures: Vec<String>,
}

impl Report {
    /// |actual - expected| <= atol + rtol |expected| everywhere, and the same shape.
    pub fn close(&mut self, what: &str, actual: &[f32], expected: &Tensor, atol: f32, rtol: f32) {
        self.checked += 1;
        if actual.len() != expected.data.len() {
            self.failures.push(format!(
                "{what}: {} values, expected {} (shape {:?})",
                actual.len(),
                expected.data.len(),
                expected.shape
            ));
            return;
        }
        let mut worst: Option<(usize, f32)> = None;
        for (i, (&a, &e)) in actual.iter().zip(&expected.data).enumerate() {
            let err = (a - e).abs();
            let ok = err <= atol + rtol * e.abs();
            if !ok && worst.is_none_or(|(_, w)| err > w || w.is_nan()) {
                worst = Some((i, err));
            }
        }
        if let Some((i, err)) = worst {
            self.failures.push(format!(
                "{what}: index {i}: got {}, expected {} (|diff| {err:e} > atol {atol:e} + rtol {rtol:e})",
                actual[i], expected.data[i]
            ));
        }
    }

    pub fn exact_i64(&mut self, what: &str, actual: i64, expected: &[i64]) {
        self.checked += 1;
        if expected != [actual] {
            self.failures
                .push(format!("{what}: got {actual}, expected {expected:?}"));
        }
    }
}

/// A metadata value parsed from its JSON text, or an error naming the key.
pub fn meta<T: serde::de::DeserializeOwned>(file: &TensorFile, key: &str) -> Result<T, String> {
    let raw = file
        .metadata
        .get(key)
        .ok_or_else(|| format!("metadata has no '{key}'"))?;
    serde_json::from_str(raw).map_err(|e| format!("metadata '{key}' = {raw:?}: {e}"))
}

pub fn f32t<'a>(file: &'a TensorFile, key: &str, path: &Path) -> Result<&'a Tensor, String> {
    file.f32(key, path).map_err(|e| e.to_string())
}
