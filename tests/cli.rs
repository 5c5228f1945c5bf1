//! The `bnlab` binary, run as a user runs it.
//!
//! Oracles: the seed chapter's torchinfo table (`summary`); BatchNorm's formulas applied to the
//! demo's own printed input (`demo`: per-feature means 0 and standard deviations
//! sqrt(10/9) sqrt(var / (var + eps)), the "1.054" of the seed); the course's epoch line and the
//! files a run must leave (`train`); the same weights and batches giving the same numbers
//! (`eval` against the history of `train`); and for bad input, one line on stderr that names the
//! argument or file, a non-zero exit, and no panic.
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

mod common;
use bnlab::presets::Preset;
use bnlab::{state_dict, Graph, Rng};
use common::{assert_ok, is_epoch_line, stderr, stdout};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_bnlab");

/// Runs bnlab in a fresh temporary working folder (so that default output folders never land
/// in the repository), with backtraces on so that a panic could not hide.
fn bnlab(args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(args)
        .current_dir(cwd.path())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

/// A failure as a user should see it: a non-zero exit code (not a panic's 101, not a signal),
/// exactly one line on stderr, mentioning each of `names`, and no panic or backtrace.
#[track_caller]
fn assert_clean_error(o: &Output, names: &[&str]) {
    let err = stderr(o);
    let code = o.status.code();
    assert!(
        matches!(code, Some(c) if c != 0 && c != 101),
        "exit {:?}, stderr: {err}",
        o.status
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{err}");
    assert!(!lines[0].trim().is_empty());
    let lower = err.to_ascii_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "{err}"
    );
    for n in names {
        assert!(lines[0].contains(n), "stderr should name {n:?}: {err}");
    }
}

/// Saves an untrained preset's weights (as `bnlab train` would name them) to `path`.
fn save_preset(preset: Preset, path: &Path) {
    let mut g = Graph::new(0);
    let net = preset
        .build(&mut g.params, 1, 28, &mut Rng::seed(0))
        .unwrap();
    state_dict::save(&net, &g.params, path).unwrap();
}

// ---------------------------------------------------------------------------------------------
// summary

/// The seed chapter's `torchinfo.summary(bn_model, (1, 28, 28))`, copied from
/// seed/batch-normalization.md without the notebook's four-space indentation.
const SEED_TABLE: &str = "\
==========================================================================================
Layer (type:depth-idx)                   Output Shape              Param #
==========================================================================================
BNModel                                  [1, 10]                   --
├─Sequential: 1-1                        [1, 256]                  --
│    └─Linear: 2-1                       [1, 256]                  200,960
│    └─BatchNorm1d: 2-2                  [1, 256]                  512
│    └─ReLU: 2-3                         [1, 256]                  --
├─Sequential: 1-2                        [1, 128]                  --
│    └─Linear: 2-4                       [1, 128]                  32,896
│    └─BatchNorm1d: 2-5                  [1, 128]                  256
│    └─ReLU: 2-6                         [1, 128]                  --
├─Sequential: 1-3                        [1, 64]                   --
│    └─Linear: 2-7                       [1, 64]                   8,256
│    └─BatchNorm1d: 2-8                  [1, 64]                   128
│    └─ReLU: 2-9                         [1, 64]                   --
├─Linear: 1-4                            [1, 10]                   650
==========================================================================================
Total params: 243,658
Trainable params: 243,658
Non-trainable params: 0
Total mult-adds (M): 0.24
==========================================================================================
Input size (MB): 0.00
Forward/backward pass size (MB): 0.01
Params size (MB): 0.97
Estimated Total Size (MB): 0.99
==========================================================================================
";

#[test]
fn summary_prints_the_seeds_torchinfo_table() {
    let o = bnlab(&["summary"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), SEED_TABLE);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    // the same with the model and input spelt out
    let o = bnlab(&["summary", "--model", "bn", "--input", "1,28,28"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), SEED_TABLE);
}

#[test]
fn summary_rejects_an_input_the_model_cannot_take() {
    let o = bnlab(&["summary", "--input", "1,3,3"]);
    assert_clean_error(&o, &["--input"]);
    assert!(o.stdout.is_empty());
    let o = bnlab(&["summary", "--input", "1,x,28"]);
    assert_clean_error(&o, &["--input"]);
}

// ---------------------------------------------------------------------------------------------
// demo

/// The numbers of a printed tensor, from `tensor(` to its closing `)`.
fn tensor_values(text: &str) -> Vec<f64> {
    let start = text.find("tensor(").expect("a tensor") + "tensor(".len();
    let end = start + text[start..].find(')').expect("a closing parenthesis");
    text[start..end]
        .split(|c: char| c == ',' || c == '[' || c == ']' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap_or_else(|_| panic!("{w:?} in {text}")))
        .collect()
}

/// The value printed after `label` (a tensor on the same line or on the following lines).
fn printed(out: &str, label: &str) -> Vec<f64> {
    let at = out
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} in\n{out}"))
        + label.len();
    tensor_values(&out[at..])
}

/// BatchNorm1d(5) in training mode on a (10, 5) batch: per feature,
/// b = (a - mean) / sqrt(var + eps) with the biased variance var, so b's mean is 0 and its
/// unbiased standard deviation (torch.std) is sqrt(10/9) sqrt(var / (var + eps)): the seed's
/// 1.0540, or 1.0539 when eps matters in the fourth decimal. Checked against the printed `a`.
#[test]
fn demo_normalises_each_feature_as_batchnorm_does() {
    let eps = 1e-5;
    for seed in ["0", "1", "2", "3"] {
        let o = bnlab(&["demo", "--seed", seed]);
        assert_ok(&o);
        let out = stdout(&o);
        let a = printed(&out, "\na\n");
        let b = printed(&out, "\nb\n");
        assert_eq!((a.len(), b.len()), (50, 50), "{out}");
        let b_mean = printed(&out, "mean of b per feature:");
        let b_std = printed(&out, "std of b per feature:");
        let a_mean = printed(&out, "mean of a per feature:");
        let a_std = printed(&out, "std of a per feature:");
        let running_mean = printed(&out, "running_mean");
        let running_var = printed(&out, "running_var");
        for v in [
            &b_mean,
            &b_std,
            &a_mean,
            &a_std,
            &running_mean,
            &running_var,
        ] {
            assert_eq!(v.len(), 5, "{out}");
        }
        for f in 0..5 {
            let col: Vec<f64> = (0..10).map(|r| a[r * 5 + f]).collect();
            let mean = col.iter().sum::<f64>() / 10.0;
            let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 10.0;
            // the printed statistics of a (4 decimals) are those of the printed a
            assert!((a_mean[f] - mean).abs() < 1e-4, "seed {seed} feature {f}");
            assert!((a_std[f] - (var * 10.0 / 9.0).sqrt()).abs() < 2e-4);
            // b from a, within the rounding of the printout
            for r in 0..10 {
                let want = (col[r] - mean) / (var + eps).sqrt();
                assert!(
                    (b[r * 5 + f] - want).abs() < 2e-3,
                    "seed {seed} b[{r}][{f}] = {} vs {want}",
                    b[r * 5 + f]
                );
            }
            // b's statistics
            assert!(b_mean[f].abs() < 1e-6, "seed {seed}: mean {}", b_mean[f]);
            let want_std = (10.0f64 / 9.0).sqrt() * (var / (var + eps)).sqrt();
            assert!(
                (b_std[f] - want_std).abs() <= 0.5e-4 + 1e-6,
                "seed {seed} feature {f}: std {} vs {want_std}",
                b_std[f]
            );
            // sqrt(10/9) = 1.05409..., a hair less by eps: 1.0539 or 1.0540 for most features,
            // 1.0541 when the variance is large enough (above about 0.124) for eps to vanish in
            // the rounding (seed 2, feature 3: var 0.1294 gives 1.054052)
            assert!(
                [1.0539, 1.0540, 1.0541].contains(&b_std[f]),
                "seed {seed} feature {f}: std {}",
                b_std[f]
            );
            if seed == "0" {
                assert!(b_std[f] == 1.0540 || b_std[f] == 1.0539, "{}", b_std[f]);
            }
            // running statistics after one batch, momentum 0.1, unbiased variance
            assert!((running_mean[f] - 0.1 * mean).abs() < 1e-4);
            assert!((running_var[f] - (0.9 + 0.1 * var * 10.0 / 9.0)).abs() < 1e-4);
        }
        assert!(out.contains("num_batches_tracked = 1"), "{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// train, then eval

#[test]
fn train_one_epoch_writes_its_files_and_eval_reproduces_the_last_validation() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let o = bnlab(&[
        "train",
        "--epochs",
        "1",
        "--batch-size",
        "512",
        "--out",
        run_s,
        "--quiet",
        "--threads",
        "2",
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let epoch_lines: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("Epoch["))
        .collect();
    assert_eq!(epoch_lines.len(), 1, "{out}");
    let i = epoch_lines[0];
    assert!(is_epoch_line(lines[i]), "{}", lines[i]);
    assert!(lines[i].starts_with("Epoch[1/1] - "));
    assert_eq!(lines[i + 1], "=".repeat(100));
    assert!(
        !stderr(&o).contains('\r'),
        "--quiet draws no progress bar: {}",
        stderr(&o)
    );

    // history.json
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("history.json")).unwrap()).unwrap();
    let epochs = json["epochs"].as_array().expect("epochs: [...]");
    assert_eq!(epochs.len(), 1);
    let rec = &epochs[0];
    for key in [
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
    ] {
        assert!(rec[key].is_number(), "epochs[0].{key}: {rec}");
    }
    assert_eq!(rec["epoch"], 1);
    assert_eq!(rec["lr"].as_f64(), Some(0.001), "the default --lr");
    for key in ["best_epoch", "stopped_early", "elapsed_seconds", "config"] {
        assert!(json.get(key).is_some(), "{key} in history.json");
    }
    assert_eq!(json["best_epoch"], 1);
    assert_eq!(json["stopped_early"], false);
    assert!(json["elapsed_seconds"].as_f64().unwrap() >= rec["seconds"].as_f64().unwrap());
    assert!(json["config"].is_object());
    let f = |k: &str| rec[k].as_f64().unwrap();
    let (train_loss, train_acc, val_loss, val_acc) = (
        f("train_loss"),
        f("train_accuracy"),
        f("val_loss"),
        f("val_accuracy"),
    );
    // MNIST: accuracies are counts over 60,000 and 10,000; one epoch of the seed's model learns
    assert!((train_acc * 60000.0 - (train_acc * 60000.0).round()).abs() < 1e-6);
    assert!((val_acc * 10000.0 - (val_acc * 10000.0).round()).abs() < 1e-6);
    assert!(val_acc > 0.9, "{val_acc}");
    // the printed line shows the same numbers
    assert_eq!(
        lines[i],
        format!(
            "Epoch[1/1] - Train loss: {train_loss:.5} Train Accuracy: {train_acc:.5} || Validation Loss: {val_loss:.5} Validation Accuracy: {val_acc:.5}"
        )
    );

    // history.csv: a header and one row, the same numbers
    let csv = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let header: Vec<&str> = rows[0].split(',').collect();
    assert_eq!(
        header,
        [
            "epoch",
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "lr",
            "seconds"
        ]
    );
    let row: Vec<f64> = rows[1].split(',').map(|v| v.parse().unwrap()).collect();
    // serde_json (without its float_roundtrip feature) may parse a float 1 ulp off, so the
    // CSV's exactly parsed values are compared within a few ulps
    let want = [1.0, train_loss, train_acc, val_loss, val_acc, 0.001];
    for (k, (&got, want)) in row.iter().zip(want).enumerate() {
        assert!(
            (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
            "column {k}: {got} vs {want}"
        );
    }

    // history.png
    let png = std::fs::read(run.join("history.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");

    // last.safetensors: the seed's model, loadable strictly
    let last = run.join("last.safetensors");
    let mut g = Graph::new(0);
    let mut net = Preset::Bn
        .build(&mut g.params, 1, 28, &mut Rng::seed(1))
        .unwrap();
    state_dict::load(&mut net, &mut g.params, &last).unwrap();

    // eval: the same weights over the same batches give the last epoch's validation numbers
    let o = bnlab(&[
        "eval",
        "--weights",
        last.to_str().unwrap(),
        "--json",
        "--batch-size",
        "512",
        "--threads",
        "2",
    ]);
    assert_ok(&o);
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 1, "{text}");
    let ev: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let keys: Vec<&String> = ev.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "{ev}");
    assert_eq!(ev["samples"], 10000);
    assert_eq!(ev["accuracy"].as_f64(), Some(val_acc), "{ev}");
    assert_eq!(ev["loss"].as_f64(), Some(val_loss), "{ev}");
}

// ---------------------------------------------------------------------------------------------
// bad input: one line on stderr naming the argument or file, a non-zero exit, no panic

/// Arguments for a training run that would be quick if it started; `--out` in a temp folder.
fn train_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "train",
        "--epochs",
        "1",
        "--batch-size",
        "512",
        "--quiet",
        "--threads",
        "2",
        "--out",
        out,
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn train_rejects_bad_options_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--model", "resnet"], &["--model", "resnet"]),
        (&["--dataset", "imagenet"], &["--dataset", "imagenet"]),
        (&["--batch-size", "0"], &["--batch-size"]),
        (&["--lr", "-1"], &["--lr"]),
        (&["--early-stopping", "--patience", "0"], &["--patience"]),
        (&["--epochs", "many"], &["--epochs"]),
    ];
    for (extra, names) in cases {
        let o = bnlab(&train_args(out, extra));
        assert_clean_error(&o, names);
        assert!(
            !Path::new(out).join("history.json").exists(),
            "{extra:?} trained"
        );
    }
}

#[test]
fn train_rejects_an_empty_data_dir_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = dir.path().join("out");
    let (empty_s, out_s) = (empty.to_str().unwrap(), out.to_str().unwrap());
    let o = bnlab(&train_args(out_s, &["--data-dir", empty_s]));
    assert_clean_error(&o, &["--data-dir", empty_s]);
    // and a folder that does not exist
    let missing = dir.path().join("missing");
    let o = bnlab(&train_args(
        out_s,
        &["--data-dir", missing.to_str().unwrap()],
    ));
    assert_clean_error(&o, &["--data-dir"]);
}

#[test]
fn train_rejects_an_out_folder_that_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let out = file.join("run");
    let o = bnlab(&train_args(out.to_str().unwrap(), &[]));
    assert_clean_error(&o, &["--out"]);
}

#[test]
fn eval_rejects_a_truncated_weights_file_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("bn.safetensors");
    save_preset(Preset::Bn, &whole);
    let bytes = std::fs::read(&whole).unwrap();
    // cut inside the header, and cut inside the tensor data
    for (name, len) in [
        ("head.safetensors", 100),
        ("tail.safetensors", bytes.len() - 10),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes[..len]).unwrap();
        let p = path.to_str().unwrap();
        let o = bnlab(&["eval", "--weights", p, "--threads", "2"]);
        assert_clean_error(&o, &[name]);
    }
    // and a file that is not there
    let missing = dir.path().join("missing.safetensors");
    let o = bnlab(&["eval", "--weights", missing.to_str().unwrap()]);
    assert_clean_error(&o, &["missing.safetensors"]);
}

#[test]
fn eval_rejects_weights_of_another_model_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.safetensors");
    save_preset(Preset::Plain, &plain);
    let p = plain.to_str().unwrap();
    // the plain model's weights fit the plain model...
    let o = bnlab(&[
        "eval",
        "--model",
        "plain",
        "--weights",
        p,
        "--json",
        "--threads",
        "2",
    ]);
    assert_ok(&o);
    // ...but not the BatchNorm one
    let o = bnlab(&["eval", "--model", "bn", "--weights", p, "--threads", "2"]);
    assert_clean_error(&o, &["plain.safetensors"]);
    assert!(o.stdout.is_empty());
}

#[test]
fn eval_rejects_bad_options_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("bn.safetensors");
    save_preset(Preset::Bn, &w);
    let w = w.to_str().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let cases: [(&[&str], &[&str]); 4] = [
        (&["--model", "resnet"], &["--model"]),
        (&["--dataset", "imagenet"], &["--dataset"]),
        (&["--batch-size", "0"], &["--batch-size"]),
        (&["--data-dir", empty.to_str().unwrap()], &["--data-dir"]),
    ];
    for (extra, names) in cases {
        let mut args = vec!["eval", "--weights", w];
        args.extend_from_slice(extra);
        assert_clean_error(&bnlab(&args), names);
    }
}

/// A learning rate so large that the loss overflows stops training with one line that says
/// where (epoch and step) and what to change, not a panic and not a run of NaN epochs.
#[test]
fn train_with_a_diverging_learning_rate_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = bnlab(&train_args(out.to_str().unwrap(), &["--lr", "1e300"]));
    assert_clean_error(&o, &["epoch 1", "--lr"]);
    assert!(!stdout(&o).contains("Epoch["), "{}", stdout(&o));
}
