//! `bnlab train --stats` and `--tensorboard` from the command line (project issue 14):
//! - stats.csv has one row per BatchNorm on step 1 and every --stats-every-th step, and its
//!   figure decodes;
//! - the TensorBoard file's records pass their CRC-32C checks, its scalars are history.json's
//!   numbers (as float32) at each epoch, and its histograms count every value of each hooked
//!   batch (batch x units) on the stats steps;
//! - a run interrupted mid-epoch and resumed ends with the same stats.csv as one never stopped;
//! - options that record nothing, a model without normalisation, and a unit too large are
//!   clean errors naming the flag.

mod common;

use bnlab::tensorboard::proto::{event, summary, Event};
use common::bnlab_cli::{assert_clean_error, path_str, resume_args, run, spawn_paused, train_args};
use common::{assert_ok, stdout};
use prost::Message;

/// MNIST at batches of 512: 118 steps per epoch.
const STEPS_PER_EPOCH: u64 = 60_000 / 512 + 1;

fn stats_steps(every: u64, epochs: u64) -> Vec<u64> {
    (1..=STEPS_PER_EPOCH * epochs)
        .filter(|s| *s == 1 || s % every == 0)
        .collect()
}

#[test]
fn stats_and_tensorboard_record_what_the_run_did() {
    let dir = tempfile::tempdir().unwrap();
    let (out, tb) = (dir.path().join("run"), dir.path().join("tb"));
    let args = train_args(
        &out,
        2,
        &[
            "--stats",
            "--stats-every",
            "40",
            "--tensorboard",
            path_str(&tb),
        ],
    );
    let o = run(&args, dir.path());
    assert_ok(&o);
    assert!(
        stdout(&o).contains("stats.csv, stats.png"),
        "{}",
        stdout(&o)
    );

    // stats.csv: three BatchNorms on each stats step
    let rows = bnlab::stats::read_csv(&out.join("stats.csv")).unwrap();
    let want = stats_steps(40, 2);
    for layer in ["b1.1", "b2.1", "b3.1"] {
        let steps: Vec<u64> = rows
            .iter()
            .filter(|r| r.layer == layer)
            .map(|r| r.step)
            .collect();
        assert_eq!(steps, want, "{layer}");
    }
    assert_eq!(rows.len(), 3 * want.len());
    let png = image::open(out.join("stats.png")).unwrap();
    assert!(png.width() > 0 && png.height() > 0);

    // TensorBoard: every record's CRCs checked by read_records
    let files: Vec<_> = std::fs::read_dir(&tb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    let events: Vec<Event> = bnlab::tensorboard::read_records(&files[0])
        .unwrap()
        .iter()
        .map(|r| Event::decode(&r[..]).unwrap())
        .collect();
    assert!(matches!(&events[0].what, Some(event::What::FileVersion(v)) if v == "brain.Event:2"));
    let values = || {
        events.iter().filter_map(|e| match &e.what {
            Some(event::What::Summary(s)) => Some((e.step, s)),
            _ => None,
        })
    };
    let scalar = |tag: &str, step: i64| -> f32 {
        values()
            .filter(|(s, _)| *s == step)
            .flat_map(|(_, s)| s.value.iter())
            .find_map(|v| match (&v.value, v.tag == tag) {
                (Some(summary::value::Value::SimpleValue(x)), true) => Some(*x),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no scalar {tag} at step {step}"))
    };
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    for e in history["epochs"].as_array().unwrap() {
        let epoch = e["epoch"].as_i64().unwrap();
        for (tag, key) in [
            ("loss/train", "train_loss"),
            ("loss/validation", "val_loss"),
            ("accuracy/train", "train_accuracy"),
            ("accuracy/validation", "val_accuracy"),
            ("learning_rate", "lr"),
        ] {
            assert_eq!(
                scalar(tag, epoch),
                e[key].as_f64().unwrap() as f32,
                "{tag} at epoch {epoch}"
            );
        }
    }
    let histo_steps = |tag: &str| -> Vec<(u64, f64)> {
        values()
            .flat_map(|(step, s)| s.value.iter().map(move |v| (step, v)))
            .filter_map(|(step, v)| match (&v.value, v.tag == tag) {
                (Some(summary::value::Value::Histo(h)), true) => Some((step as u64, h.num)),
                _ => None,
            })
            .collect()
    };
    // b1.1 is BatchNorm1d(256): a batch of 512 gives 512 x 256 values, the last (partial)
    // batch 60,000 - 117 x 512 = 96 rows; stats steps 1..236 never land on a last batch here
    let got = histo_steps("activations/b1.1/input");
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), want);
    assert!(got.iter().all(|(_, n)| *n == (512 * 256) as f64), "{got:?}");
    let weights = histo_steps("parameters/b1.0.weight");
    assert_eq!(weights.len(), want.len());
    assert!(weights.iter().all(|(_, n)| *n == (784 * 256) as f64));
    assert!(
        histo_steps("parameters/b1.1.running_mean").is_empty(),
        "buffers are not parameters"
    );
}

#[test]
fn a_resumed_run_ends_with_the_stats_of_one_never_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    let extra = ["--stats", "--stats-every", "25"];
    assert_ok(&run(&train_args(&whole, 2, &extra), dir.path()));
    // stopped after epoch 2's step 30 (step 148 of the run: the last stats step before it is
    // 125), then resumed
    let paused = spawn_paused(&train_args(&cut, 2, &extra), dir.path(), "2:30");
    paused.signal("INT");
    let o = paused.finish();
    assert_eq!(o.status.code(), Some(130));
    let partial = bnlab::stats::read_csv(&cut.join("stats.csv")).unwrap();
    assert!(
        partial.iter().all(|r| r.step <= STEPS_PER_EPOCH + 30),
        "rows past the checkpoint"
    );
    assert_ok(&run(&resume_args(&cut), dir.path()));
    let a = std::fs::read_to_string(whole.join("stats.csv")).unwrap();
    let b = std::fs::read_to_string(cut.join("stats.csv")).unwrap();
    assert_eq!(a, b, "the resumed run's statistics differ");
}

#[test]
fn watching_nothing_or_the_wrong_thing_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = run(&train_args(&out, 1, &["--stats-every", "5"]), dir.path());
    assert_clean_error(&o, &["--stats-every", "--stats"]);
    let o = run(&train_args(&out, 1, &["--unit", "3"]), dir.path());
    assert_clean_error(&o, &["--unit"]);
    let o = run(
        &train_args(&out, 1, &["--stats", "--stats-every", "0"]),
        dir.path(),
    );
    assert_clean_error(&o, &["--stats-every"]);
    let o = run(
        &train_args(&out, 1, &["--stats", "--model", "plain"]),
        dir.path(),
    );
    assert_clean_error(&o, &["--stats", "no BatchNorm"]);
    let o = run(
        &train_args(&out, 1, &["--stats", "--unit", "300"]),
        dir.path(),
    );
    assert_clean_error(&o, &["--unit 300", "b1.1", "256 units"]);
}
