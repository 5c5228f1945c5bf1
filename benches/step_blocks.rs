//! Training steps and test-set evaluations on command, one block at a time, so that two builds
//! can take turns on the same machine every few hundred milliseconds (`scripts/ab_builds.py`).
//! Taking turns cancels the drift of these machines' speed (10-30% within a minute), which
//! whole-run comparisons cannot: a change of 2-3% per step shows up this way and not in epochs.
//!
//! Protocol, one command per line on stdin, one answer per line on stdout:
//! - `steps N`: N training steps (Adam, shuffled batches); answers the seconds they took;
//! - `eval`: one evaluation of the MNIST test set; answers its seconds.
//!
//! The first line out is `ready` once the data is loaded and the model built. Settings come from
//! the environment: MODEL (a preset, default bn), BS (batch size, default 256), WIDTH (the MLP
//! presets' width multiplier, default 1), THREADS (default: every core).
//!
//! Build: `cargo bench --bench step_blocks --no-run` (the binary is the newest
//! `target/release/deps/step_blocks-*` without an extension).

use bnlab::data::{load, DatasetKind, Loader, Split};
use bnlab::nn::{parameters, set_training};
use bnlab::optim::{Adam, AdamConfig};
use bnlab::presets::{Preset, SEED_DIMS};
use bnlab::train::{evaluate, train_step, Mode, StepBuffers};
use std::io::{BufRead, Write};
use std::time::Instant;

/// Stop with one line on stderr (a wrong setting or command is the caller's, not a bug here).
fn fail(message: String) -> ! {
    eprintln!("step_blocks: {message}");
    std::process::exit(2)
}

/// A setting read from the environment, or its default.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> T
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| fail(format!("{name}={v}: {e}"))),
        Err(_) => default,
    }
}

fn main() {
    bnlab::internal::alloc_tuning::keep_freed_memory(); // as the bnlab command runs
    let threads = setting("THREADS", 0);
    bnlab::runtime::with_threads(threads, serve).expect("a thread pool");
}

/// Answer the commands on stdin until it closes.
fn serve() {
    let dir = std::path::Path::new("data/mnist");
    let train = load(DatasetKind::Mnist, Split::Train, dir).expect("data/mnist in the repository");
    let test = load(DatasetKind::Mnist, Split::Test, dir).expect("data/mnist in the repository");
    let preset: Preset = setting("MODEL", Preset::Bn);
    let (batch, width) = (setting("BS", 256usize), setting("WIDTH", 1usize));
    if width == 0 {
        fail("WIDTH=0: the width multiplier must be at least 1".into());
    }
    let mut g = bnlab::Graph::new(1);
    let mut rng = bnlab::Rng::seed(0);
    let mut net = if preset.is_cnn() {
        if width != 1 {
            fail(format!(
                "WIDTH={width}: applies to the MLP presets, not {preset}"
            ));
        }
        preset.build(&mut g.params, 1, 28, &mut rng)
    } else {
        let mut dims = SEED_DIMS;
        dims[1..4].iter_mut().for_each(|d| *d *= width);
        bnlab::presets::mlp(&mut g.params, preset, &dims, &mut rng)
    }
    .unwrap_or_else(|e| fail(format!("the model: {e}")));
    let mut opt = Adam::new(parameters(&net), AdamConfig::default());
    let mut loader =
        Loader::new(batch, true, false, 0).unwrap_or_else(|e| fail(format!("BS={batch}: {e}")));
    let mut bufs = StepBuffers::default();
    let mut order = Vec::new();
    loader.fill_epoch_indices(train.len, &mut order);
    let batches: Vec<_> = loader.batches(train.len).collect();
    let mut next = 0;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let seconds = match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["steps", n] => {
                let n: usize = n
                    .parse()
                    .unwrap_or_else(|_| fail(format!("{line:?}: N must be a count")));
                set_training(&mut net, true);
                // the pool's workers kept awake, as fit's training steps run
                bnlab::runtime::with_workers_awake(|| {
                    let t0 = Instant::now();
                    for _ in 0..n {
                        let range = batches[next % batches.len()].clone();
                        next += 1;
                        let examples = &order[range];
                        let opt = &mut opt;
                        train_step(
                            &mut net,
                            &mut g,
                            opt,
                            &train,
                            examples,
                            Mode::Multi,
                            &mut bufs,
                        )
                        .expect("a training step");
                    }
                    t0.elapsed().as_secs_f64()
                })
            }
            ["eval"] => {
                let t0 = Instant::now();
                evaluate(&mut net, &mut g, &test, batch, Mode::Multi).expect("an evaluation");
                t0.elapsed().as_secs_f64()
            }
            _ => fail(format!(
                "unknown command {line:?}: expected `steps N` or `eval`"
            )),
        };
        writeln!(out, "{seconds}").expect("stdout");
        out.flush().expect("stdout");
    }
}
