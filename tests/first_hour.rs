//! What a new user met in a first hour (project issue 21): nothing lost, nothing confusing.
//! - a run folder is never the filesystem's root or the home folder;
//! - written files get the mode the umask asks for (not the temporary file's 0600);
//! - a run that fails before its first checkpoint leaves nothing a later run must step around,
//!   and what can be checked is checked before a folder is claimed;
//! - a batch of one example is named, with `--batch-size` and `--drop-last` offered;
//! - a table run records its tables' absolute paths and SHA-256, so `--resume` works from any
//!   folder and takes `--train-csv`/`--test-csv` when the files moved.
//!
//! Oracles: the filesystem (what exists, file modes against the umask's rule `0o666 & !umask`),
//! the table's row count (which batch holds one row), SHA-256 of the files, and one line on
//! stderr naming the argument.

mod common;
use common::bnlab_cli::*;
use common::run_files::{param_count, with_commas};
use common::{assert_ok, entries, stderr, stdout, write_three_class_table};
use std::path::{Path, PathBuf};

/// `train` on a table (its own test set: `test`), quiet, two threads, into `out`.
fn table_train(train: &str, test: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = strings(&["train", "--threads", "2", "--quiet", "--epochs", "1"]);
    v.extend(strings(&["--dataset", "csv", "--target", "cls"]));
    v.extend(strings(&["--train-csv", train, "--test-csv", test]));
    v.extend(["--out".to_string(), path_str(out).to_string()]);
    v.extend(strings(extra));
    v
}

#[test]
fn the_root_and_the_home_folder_are_refused_as_run_folders_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    // a data folder that does not exist: were --out not refused first, this would be the error
    // (and nothing is ever written into / by this test)
    let nowhere = dir.path().join("no-data");
    let args = |out: &str| {
        strings(&[
            "train",
            "--quiet",
            "--data-dir",
            path_str(&nowhere),
            "--out",
            out,
        ])
    };
    let o = run(&args("/"), dir.path());
    assert_clean_error(&o, &["--out /", "root"]);
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    for out in [home.clone(), home.join("."), home.join("sub").join("..")] {
        let o = command(&args(path_str(&out)), dir.path())
            .env("HOME", &home)
            .output()
            .unwrap();
        assert_clean_error(&o, &["--out", path_str(&out), "home folder"]);
    }
    assert!(entries(&home).is_empty());
    // a folder inside the home folder is fine (refused here only for the missing data)
    let inside = home.join("runs");
    let o = command(&args(path_str(&inside)), dir.path())
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_clean_error(&o, &["--data-dir", path_str(&nowhere)]);
}

#[cfg(unix)]
#[test]
fn written_files_get_the_mode_the_umask_asks_for() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    let out = dir.path().join("run");
    let report = dir.path().join("page.html");
    // the shell sets the umask the binary inherits
    let script = format!(
        "umask {:03o} && {bin} train --threads 2 --quiet --batch-size 512 --epochs 1 --data-dir '{}' --out '{}' && {bin} report '{}' --out '{}'",
        0o027,
        path_str(&data),
        path_str(&out),
        path_str(&out),
        path_str(&report),
        bin = BIN
    );
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_ok(&o);
    let want = 0o666 & !0o027;
    let mut files: Vec<PathBuf> = entries(&out).iter().map(|n| out.join(n)).collect();
    files.push(report);
    assert!(files.len() > 4, "{files:?}");
    for f in files {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            want,
            "{}: mode {mode:o}, the umask asks {want:o}",
            f.display()
        );
    }
}

#[test]
fn a_run_that_fails_before_its_first_checkpoint_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("t.csv");
    write_three_class_table(&csv, 60);
    let (t, out) = (path_str(&csv), d.join("out"));

    // 60 rows in batches of 59: the second holds one row; named before a folder is made
    let o = run(&table_train(t, t, &out, &["--batch-size", "59"]), d);
    assert_clean_error(&o, &["--batch-size 59", "2 of 2", "--drop-last"]);
    assert!(!out.exists(), "{:?}", entries(d));
    // a batch size of one: every batch
    let o = run(&table_train(t, t, &out, &["--batch-size", "1"]), d);
    assert_clean_error(&o, &["--batch-size 1"]);
    assert!(!out.exists());
    // models that do not fit the table
    let cnn = run(&table_train(t, t, &out, &["--model", "cnn-bn"]), d);
    assert_clean_error(&cnn, &["cnn-bn"]);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/models/bn-dropout.txt");
    let o = run(&table_train(t, t, &out, &["--model", path_str(&file)]), d);
    assert_clean_error(&o, &[]);
    assert!(!out.exists());
    // compare checks its models on the table before it claims a folder too
    let mut v = strings(&["compare", "--threads", "2", "--quiet", "--epochs", "1"]);
    v.extend(strings(&[
        "--models",
        "bn,cnn-bn",
        "--dataset",
        "csv",
        "--target",
        "cls",
    ]));
    v.extend(strings(&["--train-csv", t, "--out", path_str(&out)]));
    assert_clean_error(&run(&v, d), &["cnn-bn"]);
    assert!(!out.exists());
    // --drop-last with no full batch would train on nothing
    let o = run(
        &table_train(t, t, &out, &["--batch-size", "100", "--drop-last"]),
        d,
    );
    assert_clean_error(&o, &["--drop-last", "--batch-size 100", "60"]);
    assert!(!out.exists());
    // --drop-last skips the batch of one: the run trains
    let o = run(
        &table_train(t, t, &out, &["--batch-size", "59", "--drop-last"]),
        d,
    );
    assert_ok(&o);
    assert!(out.join("last.safetensors").is_file());

    // found only at the first step (the unit of --stats): the folder this run created goes
    let data = d.join("data");
    tiny_mnist(&data);
    let images = d.join("images");
    let stats = train_args(
        &images,
        1,
        &["--data-dir", path_str(&data), "--stats", "--unit", "100000"],
    );
    let o = run(&stats, d);
    assert_clean_error(&o, &["--unit 100000"]);
    assert!(!images.exists(), "{:?}", entries(&images));
    // into a folder the user made, with a file of theirs: only the run's own files go
    std::fs::create_dir(&images).unwrap();
    std::fs::write(images.join("notes.txt"), "mine").unwrap();
    let o = run(&stats, d);
    assert_clean_error(&o, &["--unit 100000"]);
    assert_eq!(entries(&images), ["notes.txt"]);
    // and the next run into it is not told to resume
    let o = run(&train_args(&images, 1, &["--data-dir", path_str(&data)]), d);
    assert_ok(&o);
    assert!(images.join("last.safetensors").is_file());
}

/// SHA-256 in hex, computed here.
fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_table_run_resumes_from_any_folder_and_takes_the_new_place_of_a_moved_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_three_class_table(&d.join("t.csv"), 60);
    let out = d.join("run");
    // relative paths, from d
    let mut args = strings(&["train", "--threads", "2", "--quiet", "--epochs", "1"]);
    args.extend(strings(&[
        "--dataset",
        "csv",
        "--target",
        "cls",
        "--train-csv",
        "t.csv",
    ]));
    args.extend(strings(&["--out", "run"]));
    assert_ok(&run(&args, d));
    // the run records the absolute path and the table's SHA-256
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    let recorded = history["config"]["options"]["train_csv"].as_str().unwrap();
    assert_eq!(Path::new(recorded), d.join("t.csv"));
    assert_eq!(
        history["config"]["csv_sha256"]["train_csv"]
            .as_str()
            .unwrap(),
        sha256(&d.join("t.csv"))
    );

    // from another folder
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let resume = |epochs: &str, extra: &[&str]| {
        let mut v = resume_args(&out);
        v.extend(strings(&["--epochs", epochs]));
        v.extend(strings(extra));
        run(&v, &elsewhere)
    };
    assert_ok(&resume("2", &[]));

    // the table moved: named, with the flag that says where it is now
    std::fs::rename(d.join("t.csv"), d.join("moved.csv")).unwrap();
    let o = resume("3", &[]);
    assert_clean_error(&o, &[path_str(&d.join("t.csv")), "--train-csv"]);
    // another table in its place is refused
    write_three_class_table(&d.join("other.csv"), 61);
    let other = d.join("other.csv");
    let o = resume("3", &["--train-csv", path_str(&other)]);
    assert_clean_error(&o, &["--train-csv", path_str(&other), "SHA-256"]);
    // the same table at its new place
    let moved = d.join("moved.csv");
    let o = resume("3", &["--train-csv", path_str(&moved)]);
    assert_ok(&o);
    assert!(stdout(&o).contains("Epoch[3/3]"), "{}", stdout(&o));
    // ... which the run now records: the next --resume needs no flag
    let o = resume("4", &[]);
    assert_ok(&o);
    assert!(stdout(&o).contains("Epoch[4/4]"), "{}", stderr(&o));
}

#[test]
fn process_settings_a_command_would_ignore_are_refused_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bnlab = |args: &[&str]| run(&strings(args), d);
    let o = bnlab(&["demo", "--threads", "2"]);
    assert_clean_error(&o, &["--threads", "bnlab demo"]);
    // before the command's name too
    let o = bnlab(&["--quiet", "summary"]);
    assert_clean_error(&o, &["--quiet", "bnlab summary"]);
    let o = bnlab(&["report", "somewhere", "--data-dir", "x", "--quiet"]);
    assert_clean_error(&o, &["--data-dir", "--quiet", "bnlab report"]);
    let o = bnlab(&["eval", "--weights", "w.safetensors", "--quiet"]);
    assert_clean_error(&o, &["--quiet", "bnlab eval"]);
    assert!(
        entries(d).is_empty(),
        "nothing was written: {:?}",
        entries(d)
    );
    let o = bnlab(&["predict", "--weights", "w.safetensors", "--quiet", "x.png"]);
    assert_clean_error(&o, &["--quiet", "bnlab predict"]);
    let o = bnlab(&["fold", "--weights", "w", "--out", "f", "--threads", "1"]);
    assert_clean_error(&o, &["--threads", "bnlab fold"]);
    let o = bnlab(&[
        "export",
        "--weights",
        "w",
        "--onnx",
        "m.onnx",
        "--data-dir",
        "x",
    ]);
    assert_clean_error(&o, &["--data-dir", "bnlab export"]);
    // the control: the same commands without them
    assert_ok(&bnlab(&["demo"]));
    assert_ok(&bnlab(&["summary"]));
}

#[test]
fn summary_shows_the_preset_a_table_run_trains_and_the_wrote_line_names_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("t.csv");
    write_three_class_table(&csv, 60);
    let out = d.join("run");
    let o = run(
        &table_train(path_str(&csv), path_str(&csv), &out, &["--save-best"]),
        d,
    );
    assert_ok(&o);
    // the last line names every file of the folder
    let text = stdout(&o);
    let wrote = text.lines().last().unwrap();
    let (folder, names) = wrote
        .strip_prefix("Wrote ")
        .and_then(|w| w.split_once("/history.csv"))
        .unwrap_or_else(|| panic!("{wrote}"));
    assert_eq!(folder, path_str(&out));
    let mut named: Vec<String> = std::iter::once("history.csv".to_string())
        .chain(
            names
                .split(", ")
                .filter(|n| !n.is_empty())
                .map(String::from),
        )
        .collect();
    named.sort();
    assert_eq!(named, entries(&out), "{wrote}");

    // 3 features, 3 classes: the preset summary sizes as the run did
    let o = run(
        &strings(&["summary", "--input", "1,3", "--outputs", "3"]),
        d,
    );
    assert_ok(&o);
    let want = format!(
        "Total params: {}",
        with_commas(param_count(&out.join("last.safetensors")))
    );
    assert!(stdout(&o).contains(&want), "{want}:\n{}", stdout(&o));
    // the CSV preset of the issue: 13 features, the default 10 outputs
    assert_ok(&run(&strings(&["summary", "--input", "1,13"]), d));
    // --outputs without a table's input is refused, not ignored
    let o = run(&strings(&["summary", "--outputs", "3"]), d);
    assert_clean_error(&o, &["--outputs"]);
}

/// A table whose target is 0 or 1.
fn write_binary_table(path: &Path, rows: u32) {
    let mut text = String::from("a,b,y\n");
    for i in 0..rows {
        let y = i % 2;
        let jitter = (i * 7919 % 13) as f32 / 13.0;
        text += &format!("{},{},{y}\n", y as f32 * 3.0 + jitter, jitter);
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn eval_reads_checkpoints_names_the_mode_and_takes_a_moved_standardisation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    tiny_mnist(&data);
    let images = d.join("images");
    assert_ok(&run(
        &train_args(&images, 1, &["--data-dir", path_str(&data)]),
        d,
    ));
    let eval = |weights: &Path, extra: &[&str]| {
        let mut v = strings(&["eval", "--json", "--data-dir", path_str(&data), "--weights"]);
        v.push(path_str(weights).to_string());
        v.extend(strings(extra));
        run(&v, d)
    };
    // after the last epoch the checkpoint holds the last weights: the same numbers
    let last = eval(&images.join("last.safetensors"), &[]);
    let checkpoint = eval(&images.join("checkpoint.safetensors"), &[]);
    assert_ok(&last);
    assert_ok(&checkpoint);
    assert_eq!(stdout(&checkpoint), stdout(&last));

    // binary weights on a table
    let csv = d.join("b.csv");
    write_binary_table(&csv, 40);
    let table = d.join("table");
    let mut args = strings(&["train", "--threads", "2", "--quiet", "--epochs", "1"]);
    args.extend(strings(&[
        "--dataset",
        "csv",
        "--target",
        "y",
        "--mode",
        "binary",
    ]));
    args.extend(strings(&[
        "--train-csv",
        path_str(&csv),
        "--out",
        path_str(&table),
    ]));
    assert_ok(&run(&args, d));
    let eval_table = |weights: &Path, extra: &[&str]| {
        let mut v = strings(&["eval", "--dataset", "csv", "--target", "y", "--test-csv"]);
        v.push(path_str(&csv).to_string());
        v.extend(["--weights".to_string(), path_str(weights).to_string()]);
        v.extend(strings(extra));
        run(&v, d)
    };
    let weights = table.join("last.safetensors");
    let o = eval_table(&weights, &[]);
    assert_clean_error(&o, &[path_str(&weights), "--mode binary"]);
    assert_ok(&eval_table(&weights, &["--mode", "binary"]));

    // the weights moved away from their run's folder: the flag that points at the statistics
    let moved = d.join("moved.safetensors");
    std::fs::copy(&weights, &moved).unwrap();
    let o = eval_table(&moved, &["--mode", "binary"]);
    assert_clean_error(&o, &["standardize.json", "--standardize"]);
    let stats = table.join("standardize.json");
    let at_home = eval_table(&weights, &["--mode", "binary", "--json"]);
    let away = eval_table(
        &moved,
        &[
            "--mode",
            "binary",
            "--json",
            "--standardize",
            path_str(&stats),
        ],
    );
    assert_ok(&away);
    assert_eq!(stdout(&away), stdout(&at_home));
}

#[test]
fn eval_loss_mean_example_is_the_mean_over_examples_at_any_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    tiny_mnist(&data);
    let out = d.join("run");
    assert_ok(&run(
        &train_args(&out, 1, &["--data-dir", path_str(&data)]),
        d,
    ));
    let loss = |batch: &str, mean: &str| -> f64 {
        let mut v = strings(&["eval", "--json", "--data-dir", path_str(&data), "--weights"]);
        v.push(path_str(&out.join("last.safetensors")).to_string());
        v.extend(strings(&["--batch-size", batch, "--loss-mean", mean]));
        let o = run(&v, d);
        assert_ok(&o);
        let json: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        json["loss"].as_f64().unwrap()
    };
    // batches of one example: the mean of the batch means is the mean over examples (the
    // independent value); the tiny test set has 20 examples, so batches of 7 are 7, 7, 6
    let per_example = loss("1", "batch");
    for batch in ["7", "3", "256"] {
        let got = loss(batch, "example");
        assert!(
            (got - per_example).abs() <= 1e-5 * per_example.abs().max(1.0),
            "batch {batch}: {got} against {per_example}"
        );
    }
    // the course's rule weighs the short last batch as a full one: it differs
    let by_batch = loss("7", "batch");
    assert!(
        (by_batch - per_example).abs() > 1e-6,
        "{by_batch} {per_example}"
    );
}

/// The library's side of the batch of one: `fit` names the batch and the option that avoids
/// it, and `FitOptions::drop_last` skips it, through `Learner` (fit in four arguments).
#[test]
fn fit_names_a_last_batch_of_one_and_drop_last_skips_it() {
    use bnlab::data::Dataset;
    use bnlab::optim::Adam;
    use bnlab::presets::{mlp, Preset};
    use bnlab::train::{seeded, FitOptions, Learner};
    // 5 rows of 2 features, 2 classes: batches of 4 leave one row
    let features: Vec<f32> = (0..10).map(|i| (i * 37 % 11) as f32 / 11.0).collect();
    let labels = vec![0, 1, 0, 1, 1];
    let ds = Dataset::tabular(features, labels, 2, 2).unwrap();
    let train = |drop_last: bool| {
        let (mut g, mut rng) = seeded(0);
        let mut net = mlp(&mut g.params, Preset::Bn, &[2, 8, 8, 8, 2], &mut rng).unwrap();
        let mut adam = Adam::new(bnlab::nn::parameters(&net), Default::default());
        let options = FitOptions {
            epochs: 1,
            batch_size: 4,
            drop_last,
            progress: false,
            ..Default::default()
        };
        Learner::new(&mut net, &mut g, &mut adam).fit_to(&ds, &ds, &options, &mut Vec::new())
    };
    let e = train(false).unwrap_err().to_string();
    for needle in [
        "epoch 1",
        "batch 2 of 2",
        "1 example",
        "drop_last",
        "more than 1 value",
    ] {
        assert!(e.contains(needle), "{needle:?} in {e}");
    }
    let history = train(true).unwrap();
    assert_eq!(history.epochs.len(), 1);
}

/// `bnlab::data::mnist` finds the crate's own copy (MNIST's published sizes: 60,000 training
/// and 10,000 test images of 28 x 28).
#[test]
fn data_mnist_reads_the_bundled_copy_without_a_folder() {
    use bnlab::data::{mnist, mnist_dir, Split, BUNDLED_MNIST};
    assert_eq!(mnist_dir().unwrap(), Path::new(BUNDLED_MNIST));
    let test = mnist(Split::Test).unwrap();
    assert_eq!((test.len, test.height, test.width), (10_000, 28, 28));
}
