//! The cost of `--stats` at its default (a record every 50 steps), in one process so that the
//! machine's drift falls on both sides alike: PAIRS pairs of one training epoch of the seed's
//! model on MNIST (batch 256, Adam, two threads), with and without the statistics recorder, the
//! order alternating; prints each pair's ratio and their median (BENCHMARKS.md).
//!
//!     cargo run --release --example stats_overhead [PAIRS]

use bnlab::data::{load, DatasetKind, Split};
use bnlab::optim::Adam;
use bnlab::presets::{mlp, Preset, SEED_DIMS};
use bnlab::stats::{StatsOptions, StatsRecorder};
use bnlab::train::{fit_resumable, FitOptions, RunControl};
use std::time::Instant;

/// One epoch's seconds, and the seconds the recorder itself spent in it.
fn epoch(train: &bnlab::data::Dataset, test: &bnlab::data::Dataset, stats: bool) -> (f64, f64) {
    let (mut g, mut rng) = bnlab::train::seeded(0);
    let mut net = mlp(&mut g.params, Preset::Bn, &SEED_DIMS, &mut rng).unwrap();
    let mut opt = Adam::new(bnlab::nn::parameters(&net), Default::default());
    let mut control = RunControl::default();
    let recorder = std::rc::Rc::new(std::cell::RefCell::new(
        StatsRecorder::new(
            &net,
            StatsOptions {
                every: 50,
                unit: 0,
                keep_values: false,
            },
        )
        .unwrap(),
    ));
    if stats {
        control.observer = Some(Box::new(recorder.clone()));
    }
    let opts = FitOptions {
        epochs: 1,
        progress: false,
        ..Default::default()
    };
    let t = Instant::now();
    fit_resumable(
        &mut net,
        &mut g,
        &mut opt,
        train,
        test,
        &opts,
        &mut std::io::sink(),
        &mut control,
    )
    .unwrap();
    let spent = recorder.borrow().seconds_spent();
    (t.elapsed().as_secs_f64(), spent)
}

fn main() {
    let pairs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let train = load(DatasetKind::Mnist, Split::Train, &dir).unwrap();
    let test = load(DatasetKind::Mnist, Split::Test, &dir).unwrap();
    bnlab::runtime::with_threads(2, || {
        epoch(&train, &test, false); // warm-up: the nonzeros of both sets, the allocator
        let (mut ratios, mut shares) = (vec![], vec![]);
        for p in 0..pairs {
            let ((plain, _), (stats, spent)) = if p % 2 == 0 {
                let a = epoch(&train, &test, false);
                (a, epoch(&train, &test, true))
            } else {
                let b = epoch(&train, &test, true);
                (epoch(&train, &test, false), b)
            };
            println!(
                "pair {p}: plain {plain:.3} s, --stats {stats:.3} s (recording {:.4} s, {:.2}%), ratio {:.4}",
                spent,
                100.0 * spent / stats,
                stats / plain
            );
            ratios.push(stats / plain);
            shares.push(spent / stats);
        }
        ratios.sort_by(f64::total_cmp);
        shares.sort_by(f64::total_cmp);
        println!(
            "median ratio {:.4}, median time spent recording {:.2}% of the epoch, over {pairs} pairs",
            ratios[pairs / 2],
            100.0 * shares[pairs / 2]
        );
    })
    .unwrap();
}
