//! Tables of numbers as datasets (project issue 13): `--dataset csv`, the course's two modes.
//!
//! Oracles: statistics computed here by hand; a split's invariants (disjoint, complete, seeded);
//! a run's own last validation accuracy, which `eval` on the same test table must give again
//! (so eval applies the training split's standardisation); the errors' named places.

mod common;
use bnlab::data::table::{labels, parse_csv, split, Standardizer};
use common::bnlab_cli::*;
use common::{assert_ok, stdout};
use std::path::Path;

fn table(text: &str) -> bnlab::Result<bnlab::data::table::Table> {
    parse_csv(text.as_bytes(), Path::new("t.csv"), "y")
}

#[test]
fn a_table_reads_with_its_header_and_target() {
    let t = table("a, b ,y\n1,2,0\n\n3.5,-4e1,1\n").unwrap();
    assert_eq!(t.columns, ["a", "b"]);
    assert_eq!(t.features, [1.0, 2.0, 3.5, -40.0]);
    assert_eq!(t.targets, [(0.0, 2), (1.0, 4)]);
    // the target may be any column
    let t = parse_csv(b"y,a\n1,5\n", Path::new("t.csv"), "y").unwrap();
    assert_eq!((t.columns, t.features), (vec!["a".to_string()], vec![5.0]));
}

#[test]
fn every_row_keeps_its_own_line_through_blank_lines_and_crlf() {
    // rows at known lines, blank lines and CRLF endings between them; the oracle is the text's
    // own line numbering
    let mut text = String::from("a,y\r\n");
    let mut want = Vec::new();
    for r in 0..500u32 {
        if r % 7 == 3 {
            text.push_str("\r\n");
        }
        if r % 11 == 5 {
            text.push('\n');
        }
        want.push((f64::from(r % 3), text.matches('\n').count() as u64 + 1));
        text.push_str(&format!(
            "{r},{}{}",
            r % 3,
            if r % 2 == 0 { "\r\n" } else { "\n" }
        ));
    }
    assert_eq!(table(&text).unwrap().targets, want);
}

#[test]
fn every_bad_table_is_one_line_naming_the_file_line_and_column() {
    let err = |text: &str| table(text).unwrap_err().to_string();
    assert_eq!(
        err("a,y\n1,0\nx,1\n"),
        "t.csv: line 3, column 1 (a): 'x' is not a number"
    );
    assert_eq!(
        err("a,y\n1,0\nNaN,1\n"),
        "t.csv: line 3, column 1 (a): 'NaN' is not a finite number"
    );
    assert_eq!(
        err("a,y\n1,0\n2,inf\n"),
        "t.csv: line 3, column 2 (y): 'inf' is not a finite number"
    );
    assert_eq!(
        err("a,y\n1,0\n2\n"),
        "t.csv: line 3: 1 cells where the header has 2 columns"
    );
    assert_eq!(
        err("a,b\n1,0\n"),
        "t.csv: has no column 'y' for --target (its columns: a, b)"
    );
    assert_eq!(err("a,y\n"), "t.csv: has a header but no rows");
    assert_eq!(err(""), "t.csv: has no header row");
    assert_eq!(
        err("y\n1\n"),
        "t.csv: has only the target column 'y': there are no features"
    );
    let t = table("a,y\n1,0\n2,2\n3,1.5\n").unwrap();
    let e = labels(&t, true, Path::new("t.csv"))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "t.csv: line 3: target 2 is not 0 or 1 (--mode binary)");
    let e = labels(&t, false, Path::new("t.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.csv: line 4: target 1.5 is not a class number"),
        "{e}"
    );
}

#[test]
fn standardisation_uses_the_training_rows_statistics() {
    let train = table("a,b,y\n1,10,0\n2,10,1\n3,10,0\n6,10,1\n").unwrap();
    let s = Standardizer::fit(&train);
    // by hand: a has mean 3 and population variance (4 + 1 + 0 + 9) / 4 = 3.5; b is constant
    assert_eq!(s.mean, [3.0, 10.0]);
    assert!((s.std[0] - 3.5f64.sqrt()).abs() < 1e-12);
    assert_eq!(s.std[1], 1.0, "a constant column is left unscaled");
    let test = table("a,b,y\n3,12,0\n").unwrap();
    let x = s.apply(&test, Path::new("test.csv")).unwrap();
    assert_eq!(x, [0.0, 2.0]);
    let other = parse_csv(b"b,a,y\n1,2,0\n", Path::new("o.csv"), "y").unwrap();
    let e = s.apply(&other, Path::new("o.csv")).unwrap_err().to_string();
    assert!(
        e.starts_with("o.csv: has feature columns b, a where the training data has a, b"),
        "{e}"
    );
}

#[test]
fn the_split_is_seeded_disjoint_and_complete() {
    let (tr, te) = split(100, 0.2, 7, Path::new("t.csv")).unwrap();
    assert_eq!((tr.len(), te.len()), (80, 20));
    let mut all: Vec<usize> = tr.iter().chain(&te).copied().collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(
        split(100, 0.2, 7, Path::new("t.csv")).unwrap(),
        (tr.clone(), te.clone())
    );
    assert_ne!(split(100, 0.2, 8, Path::new("t.csv")).unwrap().1, te);
    assert!(split(1, 0.5, 0, Path::new("t.csv")).is_err());
    assert!(split(10, 1.0, 0, Path::new("t.csv")).is_err());
}

/// Two separable blobs (binary) or three (multi), seeded.
fn write_tables(dir: &Path) {
    let mut rng = bnlab::Rng::seed(5);
    let mut bin = String::from("f1,f2,f3,label\n");
    let mut multi = String::from("x1,x2,cls\n");
    for i in 0..240 {
        let y = i % 2;
        let c = if y == 1 { 2.0 } else { -2.0 };
        bin += &format!(
            "{},{},{},{y}\n",
            c + rng.uniform(-1.0, 1.0),
            100.0 + 10.0 * rng.uniform(-1.0, 1.0),
            c * 50.0 + rng.uniform(-5.0, 5.0)
        );
        let k = i % 3;
        multi += &format!(
            "{},{},{k}\n",
            3.0 * k as f32 + rng.uniform(-0.5, 0.5),
            -(k as f32) + rng.uniform(-0.5, 0.5)
        );
    }
    std::fs::write(dir.join("bin.csv"), &bin).unwrap();
    std::fs::write(dir.join("multi.csv"), &multi).unwrap();
    let (train, test) = multi.split_at(multi.len() / 2);
    let test_start = test.find('\n').unwrap() + 1;
    std::fs::write(
        dir.join("multi-train.csv"),
        format!("{train}{}", &test[..test_start]),
    )
    .unwrap();
    std::fs::write(
        dir.join("multi-test.csv"),
        format!("x1,x2,cls\n{}", &test[test_start..]),
    )
    .unwrap();
}

/// `train_args` with batches of 16 (the tables are small).
fn small_batches(mut args: Vec<String>) -> Vec<String> {
    let i = args.iter().position(|a| a == "--batch-size").unwrap();
    args[i + 1] = "16".into();
    args
}

fn last_val_accuracy(out: &Path) -> f64 {
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    let epochs = h["epochs"].as_array().unwrap();
    epochs.last().unwrap()["val_accuracy"].as_f64().unwrap()
}

#[test]
fn both_modes_train_and_eval_standardises_as_training_did() {
    let dir = tempfile::tempdir().unwrap();
    write_tables(dir.path());
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    // binary: one logit, BCEWithLogits; a seeded 20% split
    let out = dir.path().join("bin");
    let mut args = small_batches(train_args(
        &out,
        5,
        &["--dataset", "csv", "--train-csv", &p("bin.csv")],
    ));
    args.extend(strings(&["--target", "label", "--mode", "binary"]));
    assert_ok(&run(&args, dir.path()));
    assert!(
        last_val_accuracy(&out) > 0.95,
        "separable blobs: {}",
        last_val_accuracy(&out)
    );
    let stats: Standardizer =
        serde_json::from_str(&std::fs::read_to_string(out.join("standardize.json")).unwrap())
            .unwrap();
    assert_eq!(stats.columns, ["f1", "f2", "f3"]);
    // multi: classes 0..2 with a separate test table; eval on it gives the run's own number
    let out = dir.path().join("multi");
    let mut args = small_batches(train_args(
        &out,
        3,
        &["--dataset", "csv", "--train-csv", &p("multi-train.csv")],
    ));
    args.extend(strings(&[
        "--test-csv",
        &p("multi-test.csv"),
        "--target",
        "cls",
    ]));
    assert_ok(&run(&args, dir.path()));
    let weights = out.join("last.safetensors");
    let o = run(
        &strings(&[
            "eval",
            "--dataset",
            "csv",
            "--test-csv",
            &p("multi-test.csv"),
            "--target",
            "cls",
            "--weights",
            path_str(&weights),
            "--json",
        ]),
        dir.path(),
    );
    assert_ok(&o);
    let eval: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(eval["accuracy"].as_f64().unwrap(), last_val_accuracy(&out));
}

#[test]
fn a_table_that_does_not_fit_the_model_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    write_tables(dir.path());
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let model = dir.path().join("two.txt");
    // 2 features in, 2 classes out, where multi.csv has 2 features and 3 classes
    std::fs::write(
        &model,
        "Tiny(\n  (fc): Linear(in_features=2, out_features=2, bias=True)\n)\n",
    )
    .unwrap();
    let csv_args = |out: &str, extra: &[&str]| {
        let mut a = train_args(
            &dir.path().join(out),
            1,
            &[
                "--dataset",
                "csv",
                "--train-csv",
                &p("multi.csv"),
                "--target",
                "cls",
            ],
        );
        a.extend(strings(extra));
        a
    };
    let o = run(&csv_args("a", &["--model", path_str(&model)]), dir.path());
    assert_clean_error(&o, &["class 2", "2 outputs"]);
    let o = run(
        &csv_args("b", &["--model", path_str(&model), "--mode", "binary"]),
        dir.path(),
    );
    assert_clean_error(&o, &["target 2 is not 0 or 1"]);
    // a feature count that is not the model's input
    let o = run(
        &csv_args("c", &["--model", "examples/models/bn.txt"]),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_clean_error(
        &o,
        &[
            "bn.txt:3:10",
            "in_features=784",
            "receives 2 features from the input",
        ],
    );
    // options that do not apply are refused, never ignored
    let o = run(
        &train_args(&dir.path().join("d"), 1, &["--target", "cls"]),
        dir.path(),
    );
    assert_clean_error(&o, &["--target applies to --dataset csv only"]);
    let o = run(
        &train_args(&dir.path().join("e"), 1, &["--mode", "binary"]),
        dir.path(),
    );
    assert_clean_error(&o, &["--mode binary", "mnist"]);
    for d in ["a", "b", "c", "d", "e"] {
        assert!(!dir.path().join(d).join("last.safetensors").exists());
    }
}

/// `bnlab bench` times a table as `train` loads it: the MLP preset sized to its columns and
/// classes (also 2x wide), in one JSON line; an image model and a half-named table are refused
/// in one line.
#[test]
fn bench_times_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("three.csv");
    common::write_three_class_table(&table, 60);
    let t = path_str(&table);
    let bench = |extra: &[&str]| {
        let mut a = strings(&["bench", "--epochs", "1", "--threads", "2", "--json"]);
        a.extend(strings(&[
            "--batch-size",
            "16",
            "--train-csv",
            t,
            "--target",
            "cls",
        ]));
        a.extend(strings(extra));
        run(&a, dir.path())
    };
    for width in ["1", "2"] {
        let o = bench(&["--test-csv", t, "--width", width]);
        assert_ok(&o);
        let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(j["width"], width.parse::<u64>().unwrap());
        // 60 rows trained in the epoch timed
        let (secs, rate) = (
            j["train_epoch_seconds"].as_f64().unwrap(),
            j["train_samples_per_second"].as_f64().unwrap(),
        );
        assert!((secs * rate - 60.0).abs() < 1e-6, "{j}");
    }
    assert_clean_error(&bench(&["--model", "cnn-bn"]), &["--model cnn-bn", "table"]);
    let o = run(&strings(&["bench", "--test-csv", t]), dir.path());
    assert_clean_error(&o, &["--train-csv"]);
}
