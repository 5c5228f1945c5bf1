//! Writes a small TensorBoard event file, for checking by hand that TensorBoard reads what
//! bnlab writes (`scripts/tensorboard_check.py` reads it back and compares).
//!
//! cargo run --release --example tensorboard_demo DIR
//!
//! Writes to DIR: scalars `loss/train` and `accuracy/train` at steps 0..10, histograms
//! `weights` (uniform, drifting), `constant` (all 0.5), `with_nan` (NaN and inf among finite
//! values) and `empty` at steps 0..3, and `written.json` with what went in (each scalar as the
//! f32 it is stored as; each histogram's min, max, num and sum computed here in f64).

use bnlab::tensorboard::EventWriter;
use bnlab::{Result, Rng};
use serde_json::json;
use std::path::PathBuf;

fn main() -> Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "tb-demo".into()));
    let mut w = EventWriter::create(&dir)?;
    let mut scalars = Vec::new();
    for step in 0..10i64 {
        let loss = 2.3 * (-0.3 * step as f64).exp() + 0.05;
        let acc = 1.0 - loss / 2.5;
        w.add_scalar("loss/train", step, loss)?;
        w.add_scalar("accuracy/train", step, acc)?;
        scalars.push(json!({"tag": "loss/train", "step": step, "value": loss as f32}));
        scalars.push(json!({"tag": "accuracy/train", "step": step, "value": acc as f32}));
    }
    let mut rng = Rng::seed(7);
    let mut histograms = Vec::new();
    for step in 0..3i64 {
        let shift = step as f32 * 0.5;
        let weights: Vec<f32> = (0..1000).map(|_| rng.uniform(-1.0, 1.0) + shift).collect();
        let mut with_nan: Vec<f32> = (0..100).map(|i| i as f32 / 10.0).collect();
        with_nan.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        let cases: [(&str, Vec<f32>); 4] = [
            ("weights", weights),
            ("constant", vec![0.5; 64]),
            ("with_nan", with_nan),
            ("empty", vec![]),
        ];
        for (tag, values) in cases {
            w.add_histogram(tag, step, &values)?;
            let finite: Vec<f64> = values
                .iter()
                .filter(|v| v.is_finite())
                .map(|&v| v as f64)
                .collect();
            let (min, max) = if finite.is_empty() {
                (0.0, 0.0)
            } else {
                let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
                let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (min, max)
            };
            histograms.push(json!({
                "tag": tag, "step": step, "min": min, "max": max,
                "num": finite.len(), "sum": finite.iter().sum::<f64>(),
            }));
        }
    }
    w.flush()?;
    let written = json!({"file": w.path(), "scalars": scalars, "histograms": histograms});
    let json_path = dir.join("written.json");
    std::fs::write(&json_path, written.to_string()).map_err(|e| bnlab::Error::io(&json_path, e))?;
    println!("wrote {}", w.path().display());
    Ok(())
}
