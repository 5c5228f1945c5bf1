//! The seed's experiment end to end, as the README's first command runs it: `bnlab train` with
//! its defaults (BNModel, Adam 1e-3, batch 256, 10 epochs, MNIST from data/mnist) must reach the
//! chapter's accuracy: validation accuracy >= 0.978 after 10 epochs (PyTorch gets about 0.981 on
//! this data, the chapter 0.9808), printing the chapter's lines.

mod common;
use common::is_epoch_line;

#[test]
fn default_train_reaches_the_chapters_accuracy_in_ten_epochs() {
    let out = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bnlab"))
        .args(["train", "--quiet", "--threads", "2", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let epochs: Vec<&str> = stdout.lines().filter(|l| l.starts_with("Epoch[")).collect();
    assert_eq!(epochs.len(), 10, "{stdout}");
    assert!(epochs.iter().all(|l| is_epoch_line(l)), "{stdout}");
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("history.json")).unwrap())
            .unwrap();
    let last = &history["epochs"][9];
    let accuracy = last["val_accuracy"].as_f64().unwrap();
    assert!(
        accuracy >= 0.978,
        "validation accuracy after 10 epochs is {accuracy}"
    );
    assert!(
        epochs[9].ends_with(&format!("Validation Accuracy: {accuracy:.5}")),
        "{}",
        epochs[9]
    );
}
