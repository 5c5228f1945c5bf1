//! What a `bnlab train` run leaves in its folder, read back by the tests: its final weights
//! and history (without wall-clock times) to compare two runs bit for bit, and its checkpoint's
//! run state.

use bnlab::io::{read_safetensors, write_safetensors, StateTensor};
use std::path::Path;

/// The parts of a finished run that must not depend on how it was stopped and resumed: the
/// final weights' bytes, and history.json without its wall-clock fields.
#[derive(Debug, PartialEq)]
pub struct Finished {
    pub weights: Vec<u8>,
    pub history: String,
}

/// history.json without the `seconds` and `elapsed_seconds` fields. Compared as text: parsing
/// the numbers back would round them (serde_json's default float parser is not exact), and
/// could make two different histories look equal.
pub fn history_without_seconds(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| !l.starts_with("\"seconds\"") && !l.starts_with("\"elapsed_seconds\""))
        .collect();
    kept.join("\n")
}

#[track_caller]
pub fn finished(out: &Path, epochs: usize) -> Finished {
    let text = std::fs::read_to_string(out.join("history.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        json["epochs"].as_array().map(Vec::len),
        Some(epochs),
        "{text}"
    );
    let history = history_without_seconds(&text);
    // one field per line (pretty JSON), so that the filter above removed only the times
    assert_eq!(
        history.matches("\"train_loss\"").count(),
        epochs,
        "{history}"
    );
    assert!(!history.contains("seconds"), "{history}");
    Finished {
        weights: std::fs::read(out.join("last.safetensors")).unwrap(),
        history,
    }
}

/// Equality of two finished runs, with a readable message instead of two 1 MB byte dumps.
#[track_caller]
pub fn assert_same_run(got: &Finished, want: &Finished, what: &str) {
    let diff: Vec<String> = got
        .history
        .lines()
        .zip(want.history.lines())
        .filter(|(g, w)| g != w)
        .map(|(g, w)| format!("  got {g}, uninterrupted {w}"))
        .collect();
    assert!(
        got.history == want.history,
        "{what}: history.json differs (seconds apart):\n{}\n(history.json has {} lines, the uninterrupted one {})",
        diff.join("\n"),
        got.history.lines().count(),
        want.history.lines().count()
    );
    assert!(
        got.weights == want.weights,
        "{what}: last.safetensors differs from the uninterrupted run's ({} vs {} bytes)",
        got.weights.len(),
        want.weights.len()
    );
}

/// The run state a checkpoint holds in its metadata (epoch, step, history, ...), after
/// checking that the whole file parses, its run state loads and its tensors are finite.
#[track_caller]
pub fn checkpoint_state(path: &Path) -> serde_json::Value {
    let file = read_safetensors(path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        file.tensors.keys().any(|k| k.starts_with("model.")),
        "{path:?} has no model tensors"
    );
    for (k, t) in &file.tensors {
        if let StateTensor::F32(t) = t {
            assert!(
                t.data.iter().all(|v| v.is_finite()),
                "{path:?}: tensor {k} is not finite"
            );
        }
    }
    let meta = file
        .metadata
        .get("bnlab_checkpoint")
        .unwrap_or_else(|| panic!("{path:?} has no run state"));
    // as `bnlab train --resume` reads it
    if let Err(e) = serde_json::from_str::<bnlab::train::TrainState>(meta) {
        panic!("{path:?}: the run state does not load: {e}");
    }
    serde_json::from_str(meta).unwrap()
}

/// Copy a checkpoint from `from` to `to` with its run state edited: each `(old, new)` replaces
/// text that must occur exactly once. (As text: the state holds 128-bit generator states that
/// a `serde_json::Value` cannot carry.)
#[track_caller]
pub fn edit_run_state(from: &Path, to: &Path, replace: &[(&str, &str)]) {
    let file = read_safetensors(from).unwrap();
    let mut meta = file.metadata["bnlab_checkpoint"].clone();
    for (old, new) in replace {
        assert_eq!(meta.matches(old).count(), 1, "{old} in {meta}");
        meta = meta.replace(old, new);
    }
    let tensors: Vec<(String, StateTensor)> = file.tensors.into_iter().collect();
    let meta = [("bnlab_checkpoint".to_string(), meta)].into();
    write_safetensors(to, &tensors, &meta).unwrap();
}

/// The number of parameters of a state dict, from its tensors' sizes: every float tensor but
/// BatchNorm's running statistics (buffers; `num_batches_tracked` is an integer one).
pub fn param_count(weights: &Path) -> u64 {
    let bytes = std::fs::read(weights).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .iter()
        .filter(|(name, t)| {
            t.dtype() == safetensors::Dtype::F32
                && !name.ends_with(".running_mean")
                && !name.ends_with(".running_var")
        })
        .map(|(_, t)| t.shape().iter().product::<usize>() as u64)
        .sum()
}

/// 243658 -> "243,658", as torchinfo writes counts.
pub fn with_commas(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
