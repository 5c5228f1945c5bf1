//! The four experiments (project issue 14) on real MNIST at small budgets:
//! - results.json has the shape (for ioffe2015: `{"bn": {"curve": [{step,
//!   test_accuracy, p15, p50, p85}]}, "plain": ...}`), the same keys for every run;
//! - a run is deterministic at a seed: twice the same numbers, and the same with one thread
//!   or two (each run of an experiment has a thread of its own);
//! - percentiles are ordered, accuracies are fractions, a diverged run is recorded and the
//!   sweep goes on;
//! - placement's variance shift points the way Li et al. (2019) derive: only a BatchNorm with
//!   Dropout before it has a running variance above its eval-mode input's;
//! - each report is a well-formed, self-contained page whose every image decodes, and the
//!   command refuses bad options and a folder that holds a result.

mod common;

use bnlab::data::{load, Dataset, DatasetKind, Split};
use bnlab::experiment::{batch_size, ioffe2015, lr_sweep, placement, Outcome};
use common::assert_ok;
use common::bnlab_cli::{assert_clean_error, path_str, run, strings};
use common::html_check::check_self_contained;
use std::path::Path;

fn mnist() -> (Dataset, Dataset) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let train = load(DatasetKind::Mnist, Split::Train, &dir).unwrap();
    let test = load(DatasetKind::Mnist, Split::Test, &dir).unwrap();
    (train, test)
}

/// Write the outcome into a fresh folder and check its files: results.json as returned, each
/// figure a PNG, the report self-contained with one image per figure.
fn written(o: &Outcome) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    o.write(dir.path(), &mut std::io::sink()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(json, o.results);
    for (name, _, _) in &o.figures {
        let png = image::open(dir.path().join(name)).unwrap();
        assert!(png.width() > 100 && png.height() > 100, "{name}");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let page = check_self_contained(&html).unwrap_or_else(|e| panic!("{}: {e}", o.name));
    assert_eq!(page.images.len(), o.figures.len());
    assert!(page
        .tables
        .iter()
        .any(|t| t.rows.len() == o.table.rows.len()));
    json
}

fn in_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> T {
    bnlab::runtime::with_threads(n, f).unwrap()
}

#[test]
fn ioffe2015_records_the_papers_curves_deterministically() {
    let (train, test) = mnist();
    let o = ioffe2015::Options {
        steps: 400,
        every: 200,
        ..Default::default()
    };
    let a = in_threads(2, || {
        ioffe2015::run(&o, &train, &test, &mut std::io::sink()).unwrap()
    });
    let b = in_threads(1, || {
        ioffe2015::run(&o, &train, &test, &mut std::io::sink()).unwrap()
    });
    assert_eq!(a.results, b.results, "same seed, other thread count");
    let json = written(&a);
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["bn", "plain"]);
    for run in ["bn", "plain"] {
        let curve = json[run]["curve"].as_array().unwrap();
        assert_eq!(curve.len(), 2, "{run}: one point per 200 steps");
        for (i, p) in curve.iter().enumerate() {
            let mut k: Vec<&String> = p.as_object().unwrap().keys().collect();
            k.sort();
            assert_eq!(k, ["p15", "p50", "p85", "step", "test_accuracy"]);
            assert_eq!(p["step"], (i + 1) * 200);
            let acc = p["test_accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&acc));
            let (p15, p50, p85) = (
                p["p15"].as_f64().unwrap(),
                p["p50"].as_f64().unwrap(),
                p["p85"].as_f64().unwrap(),
            );
            assert!(p15 <= p50 && p50 <= p85, "{run}: {p}");
        }
    }
    // 400 steps are enough for BatchNorm's network to learn and not for the other's (the
    // paper's Figure 1a: the network without BatchNorm starts slowly)
    let last = |run: &str| json[run]["curve"][1]["test_accuracy"].as_f64().unwrap();
    assert!(
        last("bn") > 0.8 && last("plain") < 0.3,
        "bn {} plain {}",
        last("bn"),
        last("plain")
    );
}

#[test]
fn lr_sweep_records_a_diverged_run_and_goes_on() {
    let (train, test) = mnist();
    let o = lr_sweep::Options {
        lrs: vec![0.1, 40.0],
        epochs: 1,
        batch_size: 128,
        seed: 1,
        ..Default::default()
    };
    let out = lr_sweep::run(&o, &train, &test, &mut std::io::sink()).unwrap();
    let json = written(&out);
    let plain = json["plain"]["points"].as_array().unwrap();
    assert_eq!(plain.len(), 2);
    assert_eq!(plain[0]["diverged"], false);
    assert!(plain[0]["test_accuracy"].as_f64().unwrap() > 0.8);
    assert_eq!(plain[1]["diverged"], true, "{}", plain[1]);
    assert!(plain[1]["test_accuracy"].is_null());
    assert!(plain[1]["diverged_at_step"].as_u64().unwrap() >= 1);
    assert_eq!(
        json["bn"]["points"].as_array().unwrap().len(),
        2,
        "the sweep went on"
    );
}

#[test]
fn batch_size_compares_the_normalisations_on_one_budget() {
    let (train, test) = mnist();
    let o = batch_size::Options {
        batch_sizes: vec![4, 64],
        examples: 3_200,
        ..Default::default()
    };
    let a = batch_size::run(&o, &train, &test, &mut std::io::sink()).unwrap();
    let b = batch_size::run(&o, &train, &test, &mut std::io::sink()).unwrap();
    assert_eq!(a.results, b.results, "same seed, same numbers");
    let json = written(&a);
    for key in ["bn", "gn", "ln", "none"] {
        let pts = json[key]["points"].as_array().unwrap();
        let sizes: Vec<u64> = pts
            .iter()
            .map(|p| p["batch_size"].as_u64().unwrap())
            .collect();
        assert_eq!(sizes, [4, 64], "{key}");
        // the linear scaling rule
        assert_eq!(pts[0]["lr"].as_f64().unwrap(), 0.1 * 4.0 / 256.0);
        for p in pts {
            assert_eq!(
                p["train_mode_accuracy"].is_null(),
                key != "bn",
                "{key}: {p}"
            );
        }
    }
}

#[test]
fn placement_finds_the_variance_shift_only_behind_dropout() {
    let (train, test) = mnist();
    let o = placement::Options {
        epochs: 1,
        seed: 0,
        ..Default::default()
    };
    let out = placement::run(&o, &train, &test, &mut std::io::sink()).unwrap();
    let json = written(&out);
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5);
    let shifts = |m: &str| -> Vec<(String, bool, f64)> {
        json[m]["variance_shift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["layer"].as_str().unwrap().to_string(),
                    s["dropout_before"].as_bool().unwrap(),
                    s["running_over_eval"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    for (layer, dropout, ratio) in shifts("bn") {
        assert!(
            !dropout && (0.9..1.1).contains(&ratio),
            "bn {layer}: {ratio}"
        );
    }
    let with = shifts("bn-dropout");
    assert_eq!(
        with.iter().map(|s| s.1).collect::<Vec<_>>(),
        [false, true, true]
    );
    for (layer, dropout, ratio) in with {
        // Dropout(0.5) in training doubles the kept values: their variance is larger than
        // eval mode's, where every value passes unscaled (Li et al. 2019, section 3)
        if dropout {
            assert!(ratio > 1.05, "bn-dropout {layer}: {ratio}");
        } else {
            assert!((0.9..1.1).contains(&ratio), "bn-dropout {layer}: {ratio}");
        }
    }
    assert!(json["plain"]["variance_shift"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(json["bn"]["epochs"].as_array().unwrap().len(), 1);
}

#[test]
fn the_command_refuses_bad_options_and_a_folder_that_holds_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ex");
    let cmd = |extra: &[&str]| {
        let mut v = strings(&["experiment"]);
        v.extend(strings(extra));
        v
    };
    let o = run(
        &cmd(&["lr-sweep", "--lrs", "0.1,-1", "--out", path_str(&out)]),
        dir.path(),
    );
    assert_clean_error(&o, &["--lrs", "-1"]);
    let o = run(
        &cmd(&[
            "batch-size",
            "--batch-sizes",
            "1,8",
            "--out",
            path_str(&out),
        ]),
        dir.path(),
    );
    assert_clean_error(&o, &["--batch-sizes", "1"]);
    let o = run(
        &cmd(&["ioffe2015", "--steps", "10", "--out", path_str(&out)]),
        dir.path(),
    );
    assert_clean_error(&o, &["--steps", "--every"]);
    assert!(!out.exists(), "nothing is made for bad options");
    // a real (short) sweep, then the same folder again
    let sweep = cmd(&[
        "lr-sweep",
        "--lrs",
        "0.1",
        "--epochs",
        "1",
        "--out",
        path_str(&out),
    ]);
    assert_ok(&run(&sweep, dir.path()));
    for f in ["results.json", "report.html", "lr-sweep.png"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let before = std::fs::read(out.join("results.json")).unwrap();
    let o = run(&sweep, dir.path());
    assert_clean_error(&o, &["--out", "--overwrite"]);
    assert_eq!(
        std::fs::read(out.join("results.json")).unwrap(),
        before,
        "the result was kept"
    );
}
