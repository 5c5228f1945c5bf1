//! Experiments over seeds and over the tasks of a job array (project issue 25), on real MNIST
//! at a tiny budget (ioffe2015, 100 steps):
//! - with several seeds, `results.json` is `{"seeds", "runs": {"<seed>": the one-seed result},
//!   "summary": {arm: {metric: {mean, std, ci95, n}}}}`; each seed's entry is bit for bit the
//!   result of a one-seed run at that seed, and the summary is the statistics of those entries;
//! - `--shard K/N`, `--shard auto` (Slurm's variables) and `--shard auto/N` (Kubernetes') write
//!   disjoint parts, and `experiment merge` of the parts writes the same results.json and figure
//!   bytes as one unsharded run, and a report that differs only in its times;
//! - the merge refuses, in one line, shards of another experiment, version, option or seeds, a
//!   run present twice and a run missing, naming what is wrong, and makes no folder then.

mod common;

use bnlab::data::{load, Dataset, DatasetKind, Split};
use bnlab::experiment::statistics::{student_t_quantile, Summary};
use bnlab::experiment::{ioffe2015, run_design};
use common::assert_ok;
use common::bnlab_cli::{assert_clean_error, command, path_str, run, strings};
use serde_json::Value;
use std::path::Path;

fn mnist() -> (Dataset, Dataset) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let train = load(DatasetKind::Mnist, Split::Train, &dir).unwrap();
    let test = load(DatasetKind::Mnist, Split::Test, &dir).unwrap();
    (train, test)
}

fn tiny() -> ioffe2015::Options {
    ioffe2015::Options {
        steps: 100,
        every: 50,
        ..Default::default()
    }
}

#[test]
fn several_seeds_keep_each_seeds_result_and_summarise_them() {
    let (train, test) = mnist();
    let o = tiny();
    let seeds = [0, 3, 7];
    let many = run_design(&o, &seeds, &train, &test, &|_, _| {}).unwrap();
    let r = &many.results;
    let mut keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["runs", "seeds", "summary"]);
    assert_eq!(r["seeds"], serde_json::json!([0, 3, 7]));
    // each seed's entry is what a run at that seed alone writes (today's shape, unchanged)
    for seed in seeds {
        let one = ioffe2015::Options { seed, ..tiny() };
        let alone = ioffe2015::run(&one, &train, &test, &mut std::io::sink()).unwrap();
        assert_eq!(r["runs"][seed.to_string()], alone.results, "seed {seed}");
        let mut k: Vec<&String> = alone.results.as_object().unwrap().keys().collect();
        k.sort();
        assert_eq!(k, ["bn", "plain"], "one seed keeps the old shape");
    }
    // the summary, recomputed here from the seeds' entries
    for arm in ["bn", "plain"] {
        let finals: Vec<f64> = seeds
            .iter()
            .map(|s| {
                r["runs"][s.to_string()][arm]["curve"][1]["test_accuracy"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        let mean = finals.iter().sum::<f64>() / 3.0;
        let var = finals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0;
        let half = student_t_quantile(0.975, 2.0) * var.sqrt() / 3f64.sqrt();
        let s: Summary =
            serde_json::from_value(r["summary"][arm]["final_test_accuracy"].clone()).unwrap();
        assert_eq!(s.n, 3);
        assert!((s.mean - mean).abs() < 1e-12, "{arm}: {} vs {mean}", s.mean);
        assert!((s.std - var.sqrt()).abs() < 1e-12);
        assert!(
            (s.ci95[0] - (mean - half)).abs() < 1e-9 && (s.ci95[1] - (mean + half)).abs() < 1e-9
        );
        // t_{0.975, 2} = 4.303 (t tables): the interval is that many standard errors wide
        assert!((student_t_quantile(0.975, 2.0) - 4.303).abs() < 1e-3);
    }
    // the table gives intervals, the findings a test or the words for its absence
    assert!(
        many.table.rows.iter().any(|row| row[1].contains(" ± ")),
        "{:?}",
        many.table.rows
    );
    let text = many.findings.join("\n");
    assert!(text.contains("paired t-test over 3 seeds"), "{text}");
    assert!(
        text.contains("not compared with them"),
        "100 steps are not the published 50,000: {text}"
    );
}

fn ioffe(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = strings(&[
        "experiment",
        "ioffe2015",
        "--steps",
        "100",
        "--every",
        "50",
        "--seeds",
        "2",
        "--out",
    ]);
    v.push(path_str(out).to_string());
    v.extend(strings(extra));
    v
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn shard_json(dir: &Path) -> Value {
    serde_json::from_slice(&read(&dir.join("shard.json"))).unwrap()
}

#[test]
fn shards_merge_into_the_unsharded_run_bit_for_bit_and_bad_sets_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let whole = cwd.join("whole");
    assert_ok(&run(&ioffe(&whole, &[]), cwd));
    // three parts of the 4 runs: by hand, from Slurm's variables, from Kubernetes'
    let parts = [cwd.join("s1"), cwd.join("s2"), cwd.join("s3")];
    assert_ok(&run(&ioffe(&parts[0], &["--shard", "1/3"]), cwd));
    let slurm = command(&ioffe(&parts[1], &["--shard", "auto"]), cwd)
        .env("SLURM_ARRAY_TASK_ID", "11")
        .env("SLURM_ARRAY_TASK_MIN", "10")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    assert_ok(&slurm);
    let k8s = command(&ioffe(&parts[2], &["--shard", "auto/3"]), cwd)
        .env("JOB_COMPLETION_INDEX", "2")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    assert_ok(&k8s);
    let mut ids = vec![];
    for (k, p) in parts.iter().enumerate() {
        let s = shard_json(p);
        assert_eq!(s["shard"]["index"], k + 1, "{}", p.display());
        assert_eq!(s["shard"]["count"], 3);
        assert_eq!(s["experiment"], "ioffe2015");
        for r in s["runs"].as_array().unwrap() {
            ids.push((
                r["run"].as_str().unwrap().to_string(),
                r["seed"].as_u64().unwrap(),
            ));
        }
        assert!(
            !p.join("results.json").exists(),
            "a shard is a partial folder"
        );
    }
    ids.sort();
    let want: Vec<(String, u64)> = [("bn", 0), ("bn", 1), ("plain", 0), ("plain", 1)]
        .iter()
        .map(|(r, s)| (r.to_string(), *s))
        .collect();
    assert_eq!(ids, want, "disjoint parts covering every run");

    let merged = cwd.join("merged");
    let mut merge = strings(&["experiment", "merge"]);
    merge.extend(parts.iter().map(|p| path_str(p).to_string()));
    merge.extend(strings(&["--out", path_str(&merged)]));
    assert_ok(&run(&merge, cwd));
    for f in ["results.json", "ioffe2015.png"] {
        assert!(read(&whole.join(f)) == read(&merged.join(f)), "{f} differs");
    }
    // the report differs only in the seconds of its subtitle
    let strip = |p: &Path| {
        String::from_utf8(read(&p.join("report.html")))
            .unwrap()
            .lines()
            .filter(|l| !l.contains(" seconds"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&whole), strip(&merged));
    let json: Value = serde_json::from_slice(&read(&merged.join("results.json"))).unwrap();
    assert_eq!(json["seeds"], serde_json::json!([0, 1]));

    // refusals: one line, naming what differs, and no folder made
    let refused = cwd.join("refused");
    let merge_of = |dirs: &[&Path]| {
        let mut v = strings(&["experiment", "merge"]);
        v.extend(dirs.iter().map(|p| path_str(p).to_string()));
        v.extend(strings(&["--out", path_str(&refused)]));
        run(&v, cwd)
    };
    let edited = |name: &str, edit: &dyn Fn(&mut Value)| {
        let dir = cwd.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = shard_json(&parts[1]);
        edit(&mut s);
        std::fs::write(dir.join("shard.json"), serde_json::to_vec(&s).unwrap()).unwrap();
        dir
    };
    let other_steps = edited("steps", &|s| s["options"]["steps"] = 150.into());
    let other_experiment = edited("exp", &|s| s["experiment"] = "placement".into());
    let other_version = edited("ver", &|s| s["bnlab"] = "0.0.1".into());
    let other_seeds = edited("seeds", &|s| s["seeds"] = serde_json::json!([0, 1, 2]));
    let (p1, p2, p3) = (parts[0].as_path(), parts[1].as_path(), parts[2].as_path());
    assert_clean_error(
        &merge_of(&[p1, &other_steps, p3]),
        &["--steps", "100", "150"],
    );
    assert_clean_error(
        &merge_of(&[p1, &other_experiment, p3]),
        &["placement", "ioffe2015"],
    );
    assert_clean_error(&merge_of(&[p1, &other_version, p3]), &["bnlab 0.0.1"]);
    assert_clean_error(&merge_of(&[p1, &other_seeds, p3]), &["--seeds", "0,1,2"]);
    let twice = assert_clean_error(&merge_of(&[p1, p2, p3, p2]), &["present twice"]);
    assert!(twice.contains("at seed"), "{twice}");
    // shard 2 of 3 holds the second run at seed 0 ("bn", the runs are plain, bn per seed)
    let s2 = shard_json(p2);
    let missing = format!(
        "run {} at seed {}",
        s2["runs"][0]["run"].as_str().unwrap(),
        s2["runs"][0]["seed"]
    );
    assert_clean_error(&merge_of(&[p1, p3]), &["missing", &missing]);
    assert_clean_error(&merge_of(&[&cwd.join("nowhere")]), &["shard.json"]);
    assert!(!refused.exists(), "a refused merge makes no folder");
    // a finished merge is not written over
    assert_clean_error(&run(&merge, cwd), &["--out", "--overwrite"]);
}

#[test]
fn bad_seeds_and_shards_are_refused_before_anything_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    for (extra, words) in [
        (&["--seeds", "0"][..], &["--seeds", "at least one"][..]),
        (&["--seeds", "1,2,1"], &["--seeds", "seed 1 is given twice"]),
        (&["--seeds", "a,b"], &["--seeds", "\"a\""]),
        (&["--shard", "4/3"], &["--shard", "part 4 of 3"]),
        (&["--shard", "auto"], &["--shard", "SLURM_ARRAY_TASK_ID"]),
    ] {
        let mut v = strings(&["experiment", "ioffe2015", "--steps", "100", "--every", "50"]);
        v.extend(strings(extra));
        v.extend(strings(&["--out", path_str(&out)]));
        let o = command(&v, tmp.path())
            .env_remove("SLURM_ARRAY_TASK_ID")
            .output()
            .unwrap();
        assert_clean_error(&o, words);
    }
    assert!(!out.exists());
}

#[test]
fn smoothness_walks_change_nothing_and_record_the_papers_quantities() {
    use bnlab::experiment::smoothness;
    let (train, test) = mnist();
    let o = |every| smoothness::Options {
        steps: 120,
        every,
        ..Default::default()
    };
    let walked = smoothness::run(&o(20), &train, &test, &mut std::io::sink()).unwrap();
    let once = smoothness::run(&o(120), &train, &test, &mut std::io::sink()).unwrap();
    let r = &walked.results;
    let mut keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["bn", "noisy_bn", "plain"]);
    for arm in ["bn", "plain", "noisy_bn"] {
        // a walk puts the weights and running statistics back: training with six walks ends
        // bit for bit where training with one does
        assert_eq!(
            r[arm]["test_accuracy"], once.results[arm]["test_accuracy"],
            "{arm}"
        );
        let curve = r[arm]["curve"].as_array().unwrap();
        assert_eq!(curve.len(), 6, "{arm}: a walk every 20 of 120 steps");
        for (i, p) in curve.iter().enumerate() {
            let mut k: Vec<&String> = p.as_object().unwrap().keys().collect();
            k.sort();
            assert_eq!(k, ["beta", "grad_change", "loss", "loss_range", "step"]);
            assert_eq!(p["step"], (i + 1) * 20);
            for q in ["loss", "loss_range", "grad_change", "beta"] {
                let v = p[q].as_f64().unwrap();
                assert!(v.is_finite() && v >= 0.0, "{arm} {q}: {v}");
            }
            // the loss at θ is a cross entropy over 10 classes: below ln 10 plus a margin early
            assert!(p["loss"].as_f64().unwrap() < 3.0);
        }
    }
    // the noise reaches the model: the noisy arm is not BatchNorm's run again
    assert_ne!(r["noisy_bn"]["curve"], r["bn"]["curve"]);
    let again = smoothness::run(&o(20), &train, &test, &mut std::io::sink()).unwrap();
    assert_eq!(again.results, walked.results, "deterministic at a seed");
}
