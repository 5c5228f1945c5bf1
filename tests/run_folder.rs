//! A run's folder and what a run may be asked to do with it (project issue 11):
//! - two runs into one folder: the second refuses while the first holds it, and a run killed
//!   with SIGKILL leaves no lock behind;
//! - a finished run is never overwritten without a word: the default folder moves on to
//!   `runs/train-2`, an `--out` that holds a run is refused unless `--overwrite` is given;
//! - `--resume` refuses every option it cannot change, and `--epochs N` trains a finished run
//!   further, ending as a run started with `--epochs N` does (bit for bit);
//! - `--threads` beyond the machine's cores is capped, with a notice.
//!
//! Every run here trains on a tiny MNIST of 20 + 20 images (one step per epoch at batch 512).
//! A test that needs a run to be in progress holds it with `BNLAB_PAUSE_AT` instead of racing
//! it.

mod common;
use common::bnlab_cli::*;
use common::run_files::*;
use common::{assert_ok, stderr, stdout};
use std::path::{Path, PathBuf};

/// A tiny MNIST in `dir/data`.
fn tiny(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    tiny_mnist(&data);
    data
}

/// `train` on the tiny data, `epochs` epochs into `out` (None: the default folder).
fn tiny_train(data: &Path, out: Option<&Path>, epochs: usize, extra: &[&str]) -> Vec<String> {
    let mut v = strings(&["train", "--threads", "2", "--quiet", "--batch-size", "512"]);
    v.extend(["--epochs".to_string(), epochs.to_string()]);
    v.extend(["--data-dir".to_string(), path_str(data).to_string()]);
    if let Some(out) = out {
        v.extend(["--out".to_string(), path_str(out).to_string()]);
    }
    v.extend(strings(extra));
    v
}

// ---------------------------------------------------------------------------------------------
// one run per folder

/// While a run holds its folder (paused in its first epoch), a second run into the same
/// `--out` (or `--resume` of it) refuses with one line naming the folder, and a second run
/// into the default folder goes to `runs/train-2`. Once the first run is killed with SIGKILL,
/// the folder is free again.
#[test]
fn a_second_run_into_a_busy_folder_refuses_and_a_killed_run_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny(dir.path());
    let out = dir.path().join("out");
    let first = spawn_paused(&tiny_train(&data, Some(&out), 1, &[]), dir.path(), "1:1");
    let o = run(
        &tiny_train(&data, Some(&out), 1, &["--seed", "5"]),
        dir.path(),
    );
    let line = assert_clean_error(&o, &["--out", path_str(&out), "another bnlab run"]);
    println!("{line}");
    let o = run(
        &tiny_train(&data, Some(&out), 1, &["--overwrite"]),
        dir.path(),
    );
    assert_clean_error(&o, &["--out", path_str(&out), "another bnlab run"]);

    // the default folder, held by a paused run, is skipped
    let default = spawn_paused(&tiny_train(&data, None, 1, &[]), dir.path(), "1:1");
    let o = run(&tiny_train(&data, None, 1, &[]), dir.path());
    assert_ok(&o);
    assert!(stdout(&o).contains("runs/train-2"), "{}", stdout(&o));
    assert!(dir.path().join("runs/train-2/last.safetensors").is_file());

    // killed: no lock survives its process
    first.signal("KILL");
    assert_eq!(first.finish().status.code(), None);
    default.signal("KILL");
    default.finish();
    assert_ok(&run(&tiny_train(&data, Some(&out), 1, &[]), dir.path()));
    assert!(out.join("last.safetensors").is_file());
}

/// `--resume` of a folder another run holds refuses too, naming the folder.
#[test]
fn resume_refuses_a_folder_another_run_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny(dir.path());
    let out = dir.path().join("out");
    // a checkpoint after epoch 1, and the run held in epoch 2
    let held = spawn_paused(&tiny_train(&data, Some(&out), 2, &[]), dir.path(), "2:1");
    let o = run(&resume_args(&out), dir.path());
    let line = assert_clean_error(&o, &["--resume", path_str(&out), "another bnlab run"]);
    println!("{line}");
    held.signal("KILL");
    held.finish();
    // free again: it resumes and finishes
    let o = run(&resume_args(&out), dir.path());
    assert_ok(&o);
    assert!(stdout(&o).contains("Epoch[2/2]"), "{}", stdout(&o));
}

// ---------------------------------------------------------------------------------------------
// finished runs are kept

/// Running `bnlab train` twice with the default folder keeps both runs: the second goes to
/// `runs/train-2` and says so; the first run's files are untouched. Likewise `compare`.
#[test]
fn the_default_folder_never_overwrites_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny(dir.path());
    assert_ok(&run(&tiny_train(&data, None, 1, &[]), dir.path()));
    let first = dir.path().join("runs/train");
    let weights = std::fs::read(first.join("last.safetensors")).unwrap();
    let o = run(&tiny_train(&data, None, 1, &["--seed", "5"]), dir.path());
    assert_ok(&o);
    assert!(
        stdout(&o).contains("runs/train holds an earlier run: this one goes to runs/train-2"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read(first.join("last.safetensors")).unwrap(),
        weights
    );
    let second = std::fs::read(dir.path().join("runs/train-2/last.safetensors")).unwrap();
    assert_ne!(second, weights, "seed 5 trains other weights");
    // and a third
    assert_ok(&run(&tiny_train(&data, None, 1, &[]), dir.path()));
    assert!(dir.path().join("runs/train-3/last.safetensors").is_file());

    let compare = |extra: &[&str]| {
        let mut v = strings(&["compare", "--models", "bn,plain", "--epochs", "1"]);
        v.extend(strings(&[
            "--quiet",
            "--threads",
            "2",
            "--batch-size",
            "512",
        ]));
        v.extend(["--data-dir".to_string(), path_str(&data).to_string()]);
        v.extend(strings(extra));
        run(&v, dir.path())
    };
    assert_ok(&compare(&[]));
    let plot = std::fs::read(dir.path().join("runs/compare/compare.png")).unwrap();
    assert_ok(&compare(&[]));
    assert!(dir.path().join("runs/compare-2/compare.png").is_file());
    assert!(dir
        .path()
        .join("runs/compare-2/plain/last.safetensors")
        .is_file());
    assert_eq!(
        std::fs::read(dir.path().join("runs/compare/compare.png")).unwrap(),
        plot
    );
}

/// A new run into an `--out` that holds a run (finished or not) is refused with one line that
/// names the folder and `--overwrite`, and leaves every file as it was; with `--overwrite` the
/// earlier run's files are replaced, and one the new run does not write (best.safetensors) is
/// removed rather than left to mix with it.
#[test]
fn an_out_that_holds_a_run_is_refused_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny(dir.path());
    let out = dir.path().join("out");
    assert_ok(&run(
        &tiny_train(&data, Some(&out), 1, &["--save-best"]),
        dir.path(),
    ));
    let before: Vec<(String, Vec<u8>)> = common::entries(&out)
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(out.join(&n)).unwrap()))
        .collect();
    assert!(before.iter().any(|(n, _)| n == "best.safetensors"));
    let o = run(
        &tiny_train(&data, Some(&out), 1, &["--seed", "5"]),
        dir.path(),
    );
    let line = assert_clean_error(
        &o,
        &["--out", path_str(&out), "finished run", "--overwrite"],
    );
    println!("{line}");
    let after: Vec<(String, Vec<u8>)> = common::entries(&out)
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(out.join(&n)).unwrap()))
        .collect();
    assert_eq!(after, before, "the refused run changed the folder");

    // an unfinished run (a checkpoint only) is refused too, pointing to --resume
    let unfinished = dir.path().join("unfinished");
    std::fs::create_dir(&unfinished).unwrap();
    std::fs::copy(
        out.join("checkpoint.safetensors"),
        unfinished.join("checkpoint.safetensors"),
    )
    .unwrap();
    let o = run(&tiny_train(&data, Some(&unfinished), 1, &[]), dir.path());
    assert_clean_error(&o, &["--out", "unfinished run", "--resume", "--overwrite"]);

    // --overwrite replaces it
    let o = run(
        &tiny_train(&data, Some(&out), 1, &["--seed", "5", "--overwrite"]),
        dir.path(),
    );
    assert_ok(&o);
    let names = common::entries(&out);
    assert!(
        !names.contains(&"best.safetensors".to_string()),
        "{names:?}"
    );
    let weights = std::fs::read(out.join("last.safetensors")).unwrap();
    let old = &before
        .iter()
        .find(|(n, _)| n == "last.safetensors")
        .unwrap()
        .1;
    assert_ne!(&weights, old, "seed 5's weights");
    // --overwrite without --out: clap's one line, naming the missing --out
    let o = run(&tiny_train(&data, None, 1, &["--overwrite"]), dir.path());
    assert_clean_error(&o, &["--out"]);
}

// ---------------------------------------------------------------------------------------------
// --resume and its options

/// Every option `--resume` cannot change is refused, all of them named in one line, and
/// nothing is trained or written.
#[test]
fn resume_refuses_the_options_it_cannot_change_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny(dir.path());
    let out = dir.path().join("out");
    assert_ok(&run(&tiny_train(&data, Some(&out), 1, &[]), dir.path()));
    let history = std::fs::read(out.join("history.json")).unwrap();
    let mut args = resume_args(&out);
    args.extend(strings(&[
        "--lr",
        "0.1",
        "--batch-size",
        "64",
        "--seed",
        "3",
    ]));
    let o = run(&args, dir.path());
    let line = assert_clean_error(&o, &["--resume", "--lr", "--batch-size", "--seed"]);
    println!("{line}");
    let refused = line.split("(only").next().unwrap();
    assert!(
        !refused.contains("--threads"),
        "--threads may be given: {line}"
    );
    assert_eq!(std::fs::read(out.join("history.json")).unwrap(), history);
}

/// The tiny data in `dir`, and a run trained straight to `epochs` epochs on it (its folder): what
/// a resumed run must end as.
fn straight_run(dir: &Path, epochs: usize) -> (PathBuf, PathBuf) {
    let data = tiny(dir);
    let straight = dir.join("straight");
    assert_ok(&run(&tiny_train(&data, Some(&straight), epochs, &[]), dir));
    (data, straight)
}

/// The process settings are not the run's options: given before the command's name they work
/// as after it, and a run resumed without `--data-dir` reads its data from the folder it was
/// started with (recorded in its configuration). Oracle: the resumed run ends byte for byte as
/// a run trained straight to 2 epochs on the same data; on any other data it could not.
#[test]
fn a_resumed_run_keeps_its_data_folder_and_settings_go_before_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let (data, straight) = straight_run(dir.path(), 2);
    let out = dir.path().join("out");
    let mut args = strings(&["--threads", "2", "--data-dir", path_str(&data), "--quiet"]);
    args.extend(strings(&["train", "--batch-size", "512", "--epochs", "1"]));
    args.extend(strings(&["--out", path_str(&out)]));
    assert_ok(&run(&args, dir.path()));
    let mut args = resume_args(&out);
    args.extend(strings(&["--epochs", "2"]));
    assert_ok(&run(&args, dir.path()));
    assert_same_run(&finished(&out, 2), &finished(&straight, 2), "resumed");
}

/// `--resume OUT --epochs 3` on a finished 2-epoch run trains epoch 3 and ends exactly as a
/// run started with `--epochs 3` (weights byte for byte, history apart from times); fewer
/// epochs than done, or more after an early stop, are refused naming `--epochs`.
#[test]
fn resume_with_more_epochs_equals_a_run_started_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let (data, straight) = straight_run(dir.path(), 3);
    let out = dir.path().join("out");
    assert_ok(&run(&tiny_train(&data, Some(&out), 2, &[]), dir.path()));
    let mut args = resume_args(&out);
    args.extend(strings(&["--epochs", "3", "--data-dir", path_str(&data)]));
    let o = run(&args, dir.path());
    assert_ok(&o);
    let text = stdout(&o);
    assert!(text.contains("trained to 3 epochs"), "{text}");
    assert!(
        text.contains("Epoch[3/3]") && !text.contains("Epoch[2/3]"),
        "{text}"
    );
    assert_same_run(
        &finished(&out, 3),
        &finished(&straight, 3),
        "extended to 3 epochs",
    );
    // the run now has 3 epochs: a plain --resume has nothing to train
    let o = run(&resume_args(&out), dir.path());
    assert_ok(&o);
    assert!(stdout(&o).contains("nothing to train"), "{}", stdout(&o));

    // fewer epochs than trained
    let mut args = resume_args(&out);
    args.extend(strings(&["--epochs", "2"]));
    let line = assert_clean_error(
        &run(&args, dir.path()),
        &["--epochs 2", "already trained 3"],
    );
    println!("{line}");

    // a run that stopped early is not trained further
    let stopped = dir.path().join("stopped");
    std::fs::create_dir(&stopped).unwrap();
    edit_run_state(
        &out.join("checkpoint.safetensors"),
        &stopped.join("checkpoint.safetensors"),
        &[("\"stopped_early\":false", "\"stopped_early\":true")],
    );
    let mut args = resume_args(&stopped);
    args.extend(strings(&["--epochs", "5"]));
    let line = assert_clean_error(&run(&args, dir.path()), &["--epochs 5", "stopped early"]);
    println!("{line}");
}

/// A cosine schedule keeps its period when its run is trained further: the lr of each epoch
/// is PyTorch's closed form with T_max = the run's first --epochs, so epoch 3 of a 2-epoch
/// run trains at eta_min = 0 (cos(pi) = -1), as `CosineAnnealingLR` past T_max does.
#[test]
fn an_extended_cosine_run_keeps_its_period() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny(dir.path());
    let out = dir.path().join("out");
    let cosine = ["--scheduler", "cosine", "--lr", "0.01"];
    assert_ok(&run(&tiny_train(&data, Some(&out), 2, &cosine), dir.path()));
    let mut args = resume_args(&out);
    args.extend(strings(&["--epochs", "4", "--data-dir", path_str(&data)]));
    assert_ok(&run(&args, dir.path()));
    let text = std::fs::read_to_string(out.join("history.json")).unwrap();
    let h: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lrs: Vec<f64> = h["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["lr"].as_f64().unwrap())
        .collect();
    let closed_form =
        |epoch: usize| 0.01 * (1.0 + (std::f64::consts::PI * epoch as f64 / 2.0).cos()) / 2.0;
    assert_eq!(lrs.len(), 4);
    for (e, lr) in lrs.iter().enumerate() {
        assert!(
            (lr - closed_form(e)).abs() < 1e-12,
            "epoch {}: {lrs:?}",
            e + 1
        );
    }
    assert_eq!(lrs[2], 0.0);
    assert_eq!(h["config"]["options"]["epochs"], 4);
    assert_eq!(h["config"]["options"]["cosine_t_max"], 2);
}

// ---------------------------------------------------------------------------------------------
// threads

/// `--threads` beyond the cores is capped at them with a one-line notice naming `--threads`;
/// the run records the count it used. (With polling workers, 1000 threads on two cores did
/// not finish an epoch in a minute.)
#[test]
fn threads_beyond_the_cores_are_capped_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny(dir.path());
    let out = dir.path().join("out");
    let mut args = tiny_train(&data, Some(&out), 1, &[]);
    let at = args.iter().position(|a| a == "--threads").unwrap();
    args[at + 1] = "1000".into();
    let o = run(&args, dir.path());
    assert_ok(&o);
    let cores = std::thread::available_parallelism().unwrap().get();
    let err = stderr(&o);
    let notes: Vec<&str> = err.lines().filter(|l| l.contains("--threads")).collect();
    assert_eq!(notes.len(), 1, "{err}");
    assert!(
        notes[0].contains("1000") && notes[0].contains(&format!("using {cores}")),
        "{err}"
    );
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    assert_eq!(h["config"]["threads"], cores);
}
