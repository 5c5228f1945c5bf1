//! The `bnlab` binary against the things that go wrong outside the program (project issue 6):
//! a run killed (SIGKILL) or interrupted (SIGINT) in the middle of an epoch and resumed, a reader
//! racing the checkpoint writer, a loss that turns NaN, and files that are truncated, corrupt or
//! of the wrong kind.
//!
//! Oracles:
//! - resumption: with a fixed seed and thread count, a run stopped anywhere and continued with
//!   `--resume` ends with the same `last.safetensors` (byte for byte) and the same
//!   `history.json` (apart from wall-clock seconds, compared as text so that no float is
//!   re-parsed) as a run that was never stopped;
//! - atomic writes: every time the checkpoint can be opened it parses completely, and no
//!   temporary file survives a finished run;
//! - a diverging run stops at the first non-finite loss, naming the epoch and the step, and
//!   leaves the checkpoint of the last completed epoch as it was;
//! - bad input: exactly one line on stderr naming the file or argument, a non-zero exit that is
//!   not a panic's 101, and no "panicked" or backtrace (RUST_BACKTRACE=1 is set so that a panic
//!   could not hide).
//!
//! The messages these tests see are listed in docs/errors.md.
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

mod common;
use bnlab::io::StateTensor;
use bnlab::presets::Preset;
use bnlab::{state_dict, Graph, Rng};
use common::bnlab_cli::*;
use common::run_files::*;
use common::{assert_ok, stderr, stdout};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// helpers: what a run leaves

/// A three-epoch run of the default model, never interrupted: what every stopped and resumed
/// run must end with. Computed once for the whole test binary.
fn uninterrupted() -> &'static Finished {
    static RUN: OnceLock<Finished> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        assert_ok(&run(&train_args(&out, 3, &[]), dir.path()));
        finished(&out, 3)
    })
}

// ---------------------------------------------------------------------------------------------
// 1-2. stopped in the middle of an epoch, then resumed

/// SIGKILL lands between two checkpoints (the run held after step 3 of epoch 2): the last one
/// (epoch 1) is intact, and resuming from it ends exactly as the uninterrupted run does.
#[test]
fn sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run() {
    let want = uninterrupted();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let checkpoint = out.join("checkpoint.safetensors");
    let paused = spawn_paused(&train_args(&out, 3, &[]), dir.path(), "2:3");
    paused.signal("KILL");
    let killed = paused.finish();
    assert_eq!(killed.status.code(), None, "killed by a signal");
    assert!(!out.join("last.safetensors").exists(), "the run finished");
    // the checkpoint is the first epoch's, whole
    let state = checkpoint_state(&checkpoint);
    assert_eq!(state["epoch"], 1, "the kill landed in epoch 2");
    assert_eq!(state["step"], 0);
    // and the run continues from it (the killed run's lock died with it)
    let o = run(&resume_args(&out), dir.path());
    assert_ok(&o);
    assert!(stdout(&o).contains("Resuming"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("Epoch[2/3]") && !stdout(&o).contains("Epoch[1/3]"),
        "{}",
        stdout(&o)
    );
    assert_same_run(&finished(&out, 3), want, "killed and resumed");
}

/// SIGINT (Ctrl-C) finishes the current step, writes a checkpoint of the middle of the epoch,
/// says where on stderr and exits 130; resuming from it ends exactly as the uninterrupted run.
/// The run is held after step 3 of epoch 2 when the signal comes, so it stops at that step.
#[test]
fn sigint_mid_epoch_writes_a_checkpoint_and_resume_equals_an_uninterrupted_run() {
    let want = uninterrupted();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let checkpoint = out.join("checkpoint.safetensors");
    let paused = spawn_paused(&train_args(&out, 3, &[]), dir.path(), "2:3");
    paused.signal("INT");
    let o = paused.finish();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "stderr:\n{err}");
    assert_no_panic(&err);
    let line = err
        .lines()
        .find(|l| l.contains(path_str(&checkpoint)))
        .unwrap_or_else(|| panic!("no stderr line names {checkpoint:?}:\n{err}"));
    assert!(line.contains("epoch 2, step 3"), "{line}");
    assert!(!out.join("last.safetensors").exists(), "the run finished");
    // the checkpoint is the middle of epoch 2, at the step the message names
    let state = checkpoint_state(&checkpoint);
    assert_eq!(state["epoch"], 1, "{line}");
    assert_eq!(state["step"], 3, "{line}");
    assert_eq!(state["history"]["epochs"].as_array().map(Vec::len), Some(1));
    // and the run continues from it
    let o = run(&resume_args(&out), dir.path());
    assert_ok(&o);
    assert!(stdout(&o).contains("Epoch[2/3]"), "{}", stdout(&o));
    assert_same_run(&finished(&out, 3), want, "interrupted and resumed");
}

// ---------------------------------------------------------------------------------------------
// 3. atomic checkpoints

/// A reader racing the writer never sees a torn checkpoint, and the run leaves no temporary
/// files behind. The run is held after the first step of epoch 2, when the first epoch's
/// checkpoint must be there; then the reader races it to the end.
#[test]
fn the_checkpoint_is_always_whole_while_a_run_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let checkpoint = out.join("checkpoint.safetensors");
    let mut paused = spawn_paused(&train_args(&out, 2, &["--seed", "3"]), dir.path(), "2:1");
    let mut epochs_seen = std::collections::BTreeSet::new();
    let read = |epochs_seen: &mut std::collections::BTreeSet<u64>| {
        // open it whenever it is there; a rename between exists() and open() is fine
        match std::fs::read(&checkpoint) {
            Ok(bytes) => {
                let file = bnlab::io::read_safetensors_bytes(&bytes, &checkpoint)
                    .unwrap_or_else(|e| panic!("torn checkpoint ({} bytes): {e}", bytes.len()));
                let meta = &file.metadata["bnlab_checkpoint"];
                let state: serde_json::Value = serde_json::from_str(meta).unwrap();
                epochs_seen.insert(state["epoch"].as_u64().unwrap());
            }
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}"),
        }
    };
    read(&mut epochs_seen);
    assert!(
        epochs_seen.contains(&1),
        "no epoch-1 checkpoint during epoch 2: {epochs_seen:?}"
    );
    paused.go_on();
    while paused.child.try_wait().unwrap().is_none() {
        read(&mut epochs_seen);
        std::thread::yield_now();
    }
    let o = paused.finish();
    assert_ok(&o);
    // the final checkpoint is the last epoch's
    assert_eq!(checkpoint_state(&checkpoint)["epoch"], 2);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let temporary: Vec<&String> = names.iter().filter(|n| n.starts_with('.')).collect();
    assert!(temporary.is_empty(), "left behind: {temporary:?}");
    for f in [
        "checkpoint.safetensors",
        "last.safetensors",
        "history.json",
        "history.csv",
        "history.png",
    ] {
        assert!(names.iter().any(|n| n == f), "no {f} in {names:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. a loss that turns NaN

/// A first step large enough to overflow the weights: the loss is NaN from the second step on.
/// (Adam's `--lr 1e6` is not enough: the loss grows to about 1e8 but stays finite and all
/// three epochs finish.)
#[test]
fn a_nan_loss_in_the_first_epoch_stops_naming_epoch_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run(
        &train_args(&out, 3, &["--optimizer", "sgd", "--lr", "1e30"]),
        dir.path(),
    );
    let line = assert_clean_error(&o, &["epoch 1", "step "]);
    assert!(
        line.contains("NaN") || line.contains("inf"),
        "should say the loss is not finite: {line}"
    );
    println!("{line}");
    assert!(!stdout(&o).contains("Epoch["), "{}", stdout(&o));
    assert!(!out.join("last.safetensors").exists());
    // no epoch was completed, so there is no checkpoint; if there were, it would have to load
    let checkpoint = out.join("checkpoint.safetensors");
    if checkpoint.exists() {
        checkpoint_state(&checkpoint);
    }
}

/// A loss that turns NaN in epoch 2 (a completed first epoch whose checkpoint is given a
/// learning rate of 1e30) stops naming epoch 2 and its step, and leaves the first epoch's
/// checkpoint untouched and loadable (resuming from it again stops at the same place).
#[test]
fn a_nan_loss_after_a_checkpoint_leaves_the_checkpoint_intact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let checkpoint = out.join("checkpoint.safetensors");
    assert_ok(&run(&train_args(&out, 1, &[]), dir.path()));
    assert_eq!(checkpoint_state(&checkpoint)["epoch"], 1);
    // the same run, but planned for three epochs, with a learning rate that diverges
    edit_run_state(
        &checkpoint,
        &checkpoint,
        &[
            ("\"base_lr\":0.001,", "\"base_lr\":1e30,"),
            ("\"epochs\":1,", "\"epochs\":3,"),
        ],
    );
    std::fs::remove_file(out.join("last.safetensors")).unwrap();
    let before = std::fs::read(&checkpoint).unwrap();

    for attempt in 0..2 {
        let o = run(&resume_args(&out), dir.path());
        let line = assert_clean_error(&o, &["epoch 2", "step "]);
        assert!(line.contains("NaN") || line.contains("inf"), "{line}");
        println!("{line}");
        assert!(!stdout(&o).contains("Epoch[2/3]"), "{}", stdout(&o));
        assert!(
            std::fs::read(&checkpoint).unwrap() == before,
            "attempt {attempt}: the checkpoint changed"
        );
        assert_eq!(checkpoint_state(&checkpoint)["epoch"], 1);
        assert!(!out.join("last.safetensors").exists());
    }
}

/// When the step that makes the weights non-finite is the last of its epoch (here every epoch
/// is one step: 20 images, batches of 512), the loss is finite during training but not when the
/// epoch is evaluated. That must stop the run too: no epoch of NaN losses, no checkpoint of NaN
/// weights over the last good one, no `last.safetensors`, no exit 0.
#[test]
fn a_nan_loss_after_the_last_step_of_an_epoch_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    for epochs in [1, 2] {
        let out = dir.path().join(format!("out{epochs}"));
        let extra = [
            "--data-dir",
            path_str(&data),
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
        ];
        let o = run(&train_args(&out, epochs, &extra), dir.path());
        let line = assert_clean_error(&o, &["epoch 1"]);
        println!("{line}");
        assert!(line.contains("NaN") || line.contains("inf"), "{line}");
        assert!(!stdout(&o).contains("NaN"), "{}", stdout(&o));
        assert!(!out.join("last.safetensors").exists());
        let checkpoint = out.join("checkpoint.safetensors");
        if checkpoint.exists() {
            checkpoint_state(&checkpoint);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. determinism

/// Same seed and threads: the same bytes and history; another seed: other weights.
#[test]
fn the_same_seed_gives_identical_runs_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<Finished> = [("a", "7"), ("b", "7"), ("c", "8")]
        .iter()
        .map(|(name, seed)| {
            let out = dir.path().join(name);
            assert_ok(&run(&train_args(&out, 1, &["--seed", seed]), dir.path()));
            finished(&out, 1)
        })
        .collect();
    assert_same_run(&runs[1], &runs[0], "same seed");
    assert!(runs[2].weights != runs[0].weights, "--seed changes nothing");
    assert_ne!(runs[2].history, runs[0].history);
}

// ---------------------------------------------------------------------------------------------
// 6. bad files

/// A tiny MNIST folder in which `stem` (without `.gz`) is replaced by `bytes`, written as
/// `name` (the stem, or the stem with `.gz`). Returns the path of the bad file.
fn tiny_mnist_with(dir: &Path, stem: &str, name: &str, bytes: &[u8]) -> PathBuf {
    tiny_mnist(dir);
    std::fs::remove_file(dir.join(format!("{stem}.gz"))).unwrap();
    let bad = dir.join(name);
    std::fs::write(&bad, bytes).unwrap();
    bad
}

/// A broken dataset: its name, the file replaced (stem), the name it is written as, its bytes,
/// and words the message must contain besides the file's path.
type DataCase<'a> = (&'a str, &'a str, String, Vec<u8>, &'a [&'a str]);

/// Every kind of broken dataset file makes `train --data-dir` fail with one line naming the
/// file (checked for the good folder first, so that each failure is the bad file's).
#[test]
fn bad_dataset_files_fail_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let files = tiny_mnist(&good);
    let out = dir.path().join("out");
    let o = run(
        &train_args(&out, 1, &["--data-dir", path_str(&good)]),
        dir.path(),
    );
    assert_ok(&o);

    let train_images = &files[0].1;
    let raw_images = idx(&[TINY, 28, 28], &pixels(TINY as usize * 784, 1));
    let labels: Vec<u8> = (0..TINY as u8).map(|i| i % 10).collect();
    let mut corrupt = train_images.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let mut bad_magic = raw_images.clone();
    bad_magic[..4].copy_from_slice(&[0x12, 0x34, 0x08, 0x03]);
    let mut float_type = idx(&[TINY, 28, 28], &pixels(TINY as usize * 784, 2));
    float_type[2] = 0x0D;
    let mut label_10 = labels.clone();
    label_10[7] = 10;

    let imgs = "train-images-idx3-ubyte";
    let lbls = "train-labels-idx1-ubyte";
    let test_imgs = "t10k-images-idx3-ubyte";
    let test_lbls = "t10k-labels-idx1-ubyte";
    let gz = |s: &str| format!("{s}.gz");
    let cases: Vec<DataCase> = vec![
        (
            "truncated gzip",
            imgs,
            gz(imgs),
            train_images[..train_images.len() / 2].to_vec(),
            &["gzip"],
        ),
        ("corrupt gzip", imgs, gz(imgs), corrupt, &["gzip"]),
        ("empty file", imgs, imgs.into(), vec![], &["IDX"]),
        ("wrong magic", imgs, imgs.into(), bad_magic, &["magic"]),
        (
            "wrong type code",
            test_imgs,
            test_imgs.into(),
            float_type,
            &["type"],
        ),
        (
            "images of 2 dimensions",
            imgs,
            gz(imgs),
            gzip(&idx(&[TINY, 784], &pixels(TINY as usize * 784, 1))),
            &["dimensions"],
        ),
        (
            "labels of 2 dimensions",
            lbls,
            lbls.into(),
            idx(&[TINY, 1], &labels),
            &["dimensions"],
        ),
        (
            "raw data shorter than its dimensions",
            imgs,
            imgs.into(),
            raw_images[..raw_images.len() - 100].to_vec(),
            &["truncated"],
        ),
        (
            "image and label counts differ",
            lbls,
            gz(lbls),
            gzip(&idx(&[TINY - 1], &labels[1..])),
            &["19 labels", "20 images"],
        ),
        (
            "label out of range",
            test_lbls,
            test_lbls.into(),
            idx(&[TINY], &label_10),
            &["label 10"],
        ),
    ];
    for (i, (case, stem, name, bytes, words)) in cases.into_iter().enumerate() {
        let data = dir.path().join(format!("case{i}"));
        let bad = tiny_mnist_with(&data, stem, &name, &bytes);
        // a folder of its own: the good run's folder holds a finished run, which a new run
        // into it refuses before it reads any data
        let out = dir.path().join(format!("out{i}"));
        let o = run(
            &train_args(&out, 1, &["--data-dir", path_str(&data)]),
            dir.path(),
        );
        let mut names = vec![path_str(&bad)];
        names.extend_from_slice(words);
        let line = std::panic::catch_unwind(|| assert_clean_error(&o, &names))
            .unwrap_or_else(|_| panic!("case {case:?} (see above)"));
        println!("{case}: {line}");
    }
}

/// A state dict of the untrained `bn` model as (name, dtype, shape, little-endian bytes).
fn bn_tensors() -> Vec<(String, &'static str, Vec<usize>, Vec<u8>)> {
    let mut g = Graph::new(0);
    let net = Preset::Bn
        .build(&mut g.params, 1, 28, &mut Rng::seed(0))
        .unwrap();
    state_dict::state_dict(&net, &g.params)
        .into_iter()
        .map(|(name, t)| match t {
            StateTensor::F32(t) => {
                let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name, "F32", t.shape, bytes)
            }
            StateTensor::I64 { shape, data } => {
                let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name, "I64", shape, bytes)
            }
        })
        .collect()
}

/// A safetensors file by hand: the header's length (8 bytes, little-endian), the JSON header
/// (padded with spaces to a multiple of 8), then the data.
fn safetensors_bytes(tensors: &[(String, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.clone(),
            serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [start, data.len()] }),
        );
    }
    let mut text = serde_json::Value::Object(header).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&data);
    out
}

/// Malformed safetensors files and tensors of the wrong dtype make `eval --weights` fail with
/// one line naming the file (checked for the well-formed file first).
#[test]
fn bad_weights_files_fail_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    let eval = |weights: &Path| {
        let args = [
            "eval",
            "--weights",
            path_str(weights),
            "--data-dir",
            path_str(&data),
            "--threads",
            "2",
        ];
        run(&strings(&args), dir.path())
    };
    let tensors = bn_tensors();
    let good = dir.path().join("good.safetensors");
    std::fs::write(&good, safetensors_bytes(&tensors)).unwrap();
    let o = eval(&good);
    assert_ok(&o);
    assert!(stdout(&o).contains("Test loss"), "{}", stdout(&o));

    let with = |i: usize, dtype: &'static str, bytes: Vec<u8>| {
        let mut t = tensors.clone();
        t[i].1 = dtype;
        t[i].3 = bytes;
        safetensors_bytes(&t)
    };
    let first_f32 = tensors.iter().position(|t| t.1 == "F32").unwrap();
    let counter = tensors.iter().position(|t| t.1 == "I64").unwrap();
    let as_f64: Vec<u8> = tensors[first_f32]
        .3
        .chunks_exact(4)
        .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) as f64).to_le_bytes())
        .collect();
    let f64_key = tensors[first_f32].0.clone();
    let counter_key = tensors[counter].0.clone();
    let bad_json = {
        let text = b"{\"weight\": not json}    ";
        let mut v = (text.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(text);
        v
    };
    let huge_header = {
        let mut v = (1u64 << 40).to_le_bytes().to_vec();
        v.extend_from_slice(b"{}");
        v
    };
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("header is not JSON", bad_json, vec![]),
        ("header longer than the file", huge_header, vec![]),
        ("shorter than the header's length", vec![1, 2, 3], vec![]),
        (
            "an F64 tensor",
            with(first_f32, "F64", as_f64),
            vec![&f64_key, "F64"],
        ),
        (
            "an I32 counter",
            with(counter, "I32", 0i32.to_le_bytes().to_vec()),
            vec![&counter_key, "I32"],
        ),
        (
            "an F32 counter",
            with(counter, "F32", 0f32.to_le_bytes().to_vec()),
            vec![&counter_key, "I64"],
        ),
    ];
    for (i, (case, bytes, words)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("case{i}.safetensors"));
        std::fs::write(&path, bytes).unwrap();
        let o = eval(&path);
        let mut names = vec![path_str(&path)];
        names.extend(words);
        let line = std::panic::catch_unwind(|| assert_clean_error(&o, &names))
            .unwrap_or_else(|_| panic!("case {case:?} (see above)"));
        println!("{case}: {line}");
        assert!(o.stdout.is_empty(), "{case}: {}", stdout(&o));
    }
    // a folder where a file should be
    let o = eval(dir.path());
    let line = assert_clean_error(&o, &[path_str(dir.path())]);
    println!("a folder: {line}");
}

/// `--out` naming a regular file: one line naming it, and the file is left alone.
#[test]
fn train_rejects_an_out_that_is_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    let file = dir.path().join("results.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let o = run(
        &train_args(&file, 1, &["--data-dir", path_str(&data)]),
        dir.path(),
    );
    let line = assert_clean_error(&o, &["--out", path_str(&file)]);
    println!("{line}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

/// The options tests/cli.rs does not try (it covers --model, --dataset, --batch-size 0,
/// --lr -1, --patience 0 and a non-number): one line naming the option, before any data is read
/// or any folder made.
#[test]
fn train_rejects_the_other_bad_options_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cases: [(&[&str], &str); 9] = [
        (&["--epochs", "0"], "--epochs"),
        (&["--lr", "nan"], "--lr"),
        (&["--lr", "inf"], "--lr"),
        (&["--lr", "0"], "--lr"),
        (&["--weight-decay", "-1"], "--weight-decay"),
        (&["--momentum", "-0.5"], "--momentum"),
        (&["--scheduler", "step", "--step-size", "0"], "--step-size"),
        (&["--scheduler", "cosine-restarts", "--t0", "0"], "--t0"),
        (
            &["--scheduler", "cosine-restarts", "--t-mult", "0"],
            "--t-mult",
        ),
    ];
    for (extra, name) in cases {
        let mut args = strings(&["train", "--quiet", "--threads", "2", "--out"]);
        args.push(path_str(&out).to_string());
        args.extend(strings(extra));
        let o = run(&args, dir.path());
        let line = assert_clean_error(&o, &[name]);
        println!("{extra:?}: {line}");
        assert!(!out.exists(), "{extra:?} made the --out folder");
    }
}

/// A StepLR factor that is not a positive number would give learning rates of NaN, infinity, zero
/// or alternating sign: like --lr, it is refused up front, naming --gamma (also when written
/// `--gamma -1`, as `--lr -1` is accepted for parsing and then refused).
#[test]
fn train_rejects_a_gamma_that_is_not_a_positive_number() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for gamma in [
        &["--gamma", "nan"][..],
        &["--gamma", "inf"],
        &["--gamma", "-1"],
    ] {
        let mut args = strings(&["train", "--quiet", "--threads", "2", "--epochs", "2"]);
        args.extend(strings(&["--scheduler", "step", "--step-size", "1"]));
        args.extend(["--out".to_string(), path_str(&out).to_string()]);
        args.extend(strings(gamma));
        let o = run(&args, dir.path());
        let line = assert_clean_error(&o, &["--gamma"]);
        println!("{gamma:?}: {line}");
        assert!(!out.exists(), "{gamma:?} made the --out folder");
    }
}

/// `summary` of a CNN for a huge image: a table or one line naming --input, not an aborted
/// allocation of the head's weights (1,1,20000,20000 asked for 819 GB).
#[test]
fn summary_of_a_huge_input_does_not_abort() {
    let dir = tempfile::tempdir().unwrap();
    let args = strings(&["summary", "--model", "cnn-bn", "--input", "1,1,20000,20000"]);
    let o = run(&args, dir.path());
    if !o.status.success() {
        let line = assert_clean_error(&o, &["--input"]);
        println!("{line}");
    } else {
        assert!(stdout(&o).contains("Total params"), "{}", stdout(&o));
    }
}

/// A broken run folder: its name, the checkpoint's bytes (None: no checkpoint), and words the
/// message must contain besides the checkpoint's path.
type ResumeCase<'a> = (&'a str, Option<Vec<u8>>, &'a [&'a str]);

/// `--resume` on a folder without a checkpoint, a missing folder, a truncated checkpoint, a
/// safetensors file that is not a checkpoint, and a checkpoint whose tensors are not its
/// model's: one line naming the checkpoint file.
#[test]
fn resume_rejects_missing_truncated_and_foreign_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    // a real checkpoint of a one-epoch run on the tiny data
    let run_dir = dir.path().join("run");
    let o = run(
        &train_args(&run_dir, 1, &["--data-dir", path_str(&data)]),
        dir.path(),
    );
    assert_ok(&o);
    let checkpoint = std::fs::read(run_dir.join("checkpoint.safetensors")).unwrap();
    let weights = std::fs::read(run_dir.join("last.safetensors")).unwrap();
    // it resumes: a finished run, nothing left to train, its files left as they were
    let before = std::fs::read(run_dir.join("history.json")).unwrap();
    let o = run(&resume_args(&run_dir), dir.path());
    assert_ok(&o);
    assert!(stdout(&o).contains("nothing to train"), "{}", stdout(&o));
    assert_eq!(std::fs::read(run_dir.join("history.json")).unwrap(), before);

    let other_model = {
        let path = dir.path().join("other.safetensors");
        let replace = [("\"model\":\"bn\"", "\"model\":\"plain\"")];
        edit_run_state(&run_dir.join("checkpoint.safetensors"), &path, &replace);
        std::fs::read(&path).unwrap()
    };
    let cases: Vec<ResumeCase> = vec![
        ("a folder without a checkpoint", None, &[]),
        (
            "a truncated checkpoint",
            Some(checkpoint[..checkpoint.len() / 2].to_vec()),
            &[],
        ),
        (
            "a checkpoint cut inside its header",
            Some(checkpoint[..100].to_vec()),
            &[],
        ),
        (
            "a state dict, not a checkpoint",
            Some(weights.clone()),
            &["checkpoint"],
        ),
        (
            "a checkpoint whose tensors are not its model's",
            Some(other_model),
            &[],
        ),
    ];
    for (i, (case, bytes, words)) in cases.into_iter().enumerate() {
        let folder = dir.path().join(format!("case{i}"));
        std::fs::create_dir(&folder).unwrap();
        let path = folder.join("checkpoint.safetensors");
        if let Some(bytes) = bytes {
            std::fs::write(&path, bytes).unwrap();
        }
        let o = run(&resume_args(&folder), dir.path());
        let mut names = vec![path_str(&path)];
        names.extend_from_slice(words);
        let line = std::panic::catch_unwind(|| assert_clean_error(&o, &names))
            .unwrap_or_else(|_| panic!("case {case:?} (see above)"));
        println!("{case}: {line}");
        assert!(!folder.join("last.safetensors").exists(), "{case}");
    }
    // a folder that does not exist
    let missing = dir.path().join("missing");
    let o = run(&resume_args(&missing), dir.path());
    let line = assert_clean_error(&o, &[path_str(&missing)]);
    println!("a missing folder: {line}");
}
