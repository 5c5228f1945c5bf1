//! `bnlab::train::fit` against the course's semantics (DESIGN.md, "fit: the course's semantics"),
//! on tiny synthetic datasets so that every test runs in a fraction of a second.
//!
//! The oracles:
//! - early stopping and save_best follow from the validation losses alone: an epoch improves when
//!   its loss is strictly below every earlier one; training stops `patience` epochs after the last
//!   improvement; the file is written exactly at the improving epochs. Two cases are built so that
//!   the sequence of losses is known before the run (a one-weight logistic model whose logit
//!   provably rises every step), and the rest are checked against the history they produce;
//! - evaluation: loss is the mean of per-batch losses (not per sample), accuracy is correct / size,
//!   recomputed here both through `run_batch` and from the model's logits in f64;
//! - the printed lines: the course's epoch line (a regular expression, matched by a small matcher
//!   below), a rule of 100 `=`, and the elapsed seconds last;
//! - determinism: the same seed gives bit-identical histories and weights.
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

mod common;
use bnlab::data::Dataset;
use bnlab::error::LossSeen;
use bnlab::io::StateTensor;
use bnlab::nn::{parameters, set_training, Forward, Net};
use bnlab::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use bnlab::presets::{mlp, Preset};
use bnlab::train::{evaluate, fit, run_batch, FitOptions, History, Mode, Scheduler, StepBuffers};
use bnlab::{state_dict, Error, Graph, Rng, Tensor};
use common::is_epoch_line;
use std::io::Write;
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------------
// helpers

#[test]
fn the_line_matcher_accepts_the_seed_line_and_rejects_near_misses() {
    let good = "Epoch[10/10] - Train loss: 0.00842 Train Accuracy: 0.99750 || Validation Loss: 0.07005 Validation Accuracy: 0.98080";
    assert!(is_epoch_line(good));
    for bad in [
        // the seed's own spelling mistake
        "Epoch[10/10] - Train loss: 0.00842 Train Accucracy: 0.99750 || Validation Loss: 0.07005 Validation Accuracy: 0.98080",
        "Epoch[10/10] - Train loss: 0.0084 Train Accuracy: 0.99750 || Validation Loss: 0.07005 Validation Accuracy: 0.98080",
        "Epoch[10/10] - Train loss: 0.00842 Train Accuracy: 0.99750 || Validation Loss: 0.07005 Validation Accuracy: 0.98080 ",
        "Epoch[/10] - Train loss: 0.00842 Train Accuracy: 0.99750 || Validation Loss: 0.07005 Validation Accuracy: 0.98080",
        "Epoch[1/10] - Train loss: 10.00842 Train Accuracy: 0.99750 || Validation Loss: 0.07005 Validation Accuracy: 0.98080",
    ] {
        assert!(!is_epoch_line(bad), "{bad}");
    }
}

fn dataset(images: Vec<u8>, labels: Vec<u8>, shape: [usize; 3], classes: usize) -> Dataset {
    Dataset::new(images, labels, shape, classes).unwrap()
}

/// `n` images of 1x2x2 in four classes: the pixel of the label is brighter by 100..135 on top
/// of noise 0..120 (so classes overlap a little and the losses do not go to zero).
fn four_class(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::seed(seed);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let label = (rng.next_u64() % 4) as usize;
        for p in 0..4 {
            let noise = (rng.next_f32() * 120.0) as u8;
            let signal = if p == label {
                100 + (rng.next_f32() * 35.0) as u8
            } else {
                0
            };
            images.push(noise + signal);
        }
        labels.push(label as u8);
    }
    dataset(images, labels, [1, 2, 2], 4)
}

/// A model from a preset with the given widths, initialised from `seed` (as `bnlab train` does:
/// the graph's dropout generator is seeded from the same stream).
fn model(preset: Preset, dims: &[usize], seed: u64) -> (Graph, Net) {
    let (mut g, mut rng) = bnlab::train::seeded(seed);
    let net = mlp(&mut g.params, preset, dims, &mut rng).unwrap();
    (g, net)
}

fn adam(net: &mut Net, lr: f64) -> Adam {
    Adam::new(
        parameters(net),
        AdamConfig {
            lr,
            ..Default::default()
        },
    )
}

fn sgd(net: &mut Net, lr: f64) -> Sgd {
    Sgd::new(
        parameters(net),
        SgdConfig {
            lr,
            ..Default::default()
        },
    )
    .unwrap()
}

fn options(epochs: usize, batch_size: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size,
        progress: false,
        ..Default::default()
    }
}

/// Records what fit prints and, when watching a file, whether it was written during each
/// epoch. The course saves after printing an epoch's line, so when the line of epoch e + 1 (or
/// the end of the run) arrives, everything written for epoch e has been written. At each epoch
/// line the watched file is replaced by a marker: a later write, even of identical bytes, shows
/// as a file that no longer holds the marker.
struct Spy {
    text: Vec<u8>,
    pending: Vec<u8>,
    watch: Option<PathBuf>,
    epoch_lines: usize,
    /// Per epoch: was the watched file written after that epoch's line?
    writes: Vec<bool>,
    /// The last contents fit wrote, restored at the end.
    latest: Option<Vec<u8>>,
}

const MARKER: &[u8] = b"not written by fit";

impl Spy {
    fn new(watch: Option<PathBuf>) -> Spy {
        Spy {
            text: Vec::new(),
            pending: Vec::new(),
            watch,
            epoch_lines: 0,
            writes: Vec::new(),
            latest: None,
        }
    }

    fn check(&mut self) {
        let Some(path) = &self.watch else { return };
        if self.epoch_lines > 0 {
            let written = match std::fs::read(path) {
                Ok(bytes) if bytes != MARKER => {
                    self.latest = Some(bytes);
                    true
                }
                _ => false,
            };
            self.writes.push(written);
        }
    }

    fn on_line(&mut self, line: &str) {
        if line.starts_with("Epoch[") {
            self.check();
            if let Some(path) = &self.watch {
                std::fs::write(path, MARKER).unwrap();
            }
            self.epoch_lines += 1;
        }
    }

    /// After fit: the last epoch's write, and the file restored to what fit last wrote.
    fn finish(&mut self) -> String {
        self.check();
        if let Some(path) = &self.watch {
            match &self.latest {
                Some(bytes) => std::fs::write(path, bytes).unwrap(),
                None => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        String::from_utf8(self.text.clone()).unwrap()
    }
}

impl Write for Spy {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        for &b in buf {
            if b == b'\n' {
                let line = String::from_utf8(std::mem::take(&mut self.pending)).unwrap();
                self.on_line(&line);
            } else {
                self.pending.push(b);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// fit with its printed output.
fn run(
    net: &mut Net,
    g: &mut Graph,
    opt: &mut dyn Optimizer,
    train: &Dataset,
    val: &Dataset,
    opts: &FitOptions,
) -> (bnlab::Result<History>, String) {
    let mut out = Vec::new();
    let r = fit(net, g, opt, train, val, opts, &mut out);
    (r, String::from_utf8(out).unwrap())
}

/// The course's rule for early stopping and saving, applied to a sequence of validation
/// losses: which epochs improve (strictly below all earlier ones), the best epoch (the first
/// minimum), and the epoch training stops at with `patience` (None: runs to the end).
fn course_rule(val_losses: &[f64], patience: Option<usize>) -> (Vec<bool>, usize, Option<usize>) {
    let mut best = f64::INFINITY;
    let (mut improves, mut best_epoch, mut since) = (Vec::new(), 0, 0);
    for (i, &v) in val_losses.iter().enumerate() {
        if v < best {
            best = v;
            best_epoch = i + 1;
            since = 0;
            improves.push(true);
        } else {
            since += 1;
            improves.push(false);
            if patience.is_some_and(|p| since >= p) {
                return (improves, best_epoch, Some(i + 1));
            }
        }
    }
    (improves, best_epoch, None)
}

fn val_losses(h: &History) -> Vec<f64> {
    h.epochs.iter().map(|e| e.val_loss).collect()
}

/// Lines of a printout that mention a save (the course prints one whenever it saves).
fn save_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.to_ascii_lowercase().contains("save"))
        .collect()
}

/// The epoch lines' positions in the printout, by epoch.
fn epoch_line_indices(lines: &[&str]) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("Epoch["))
        .map(|(i, _)| i)
        .collect()
}

/// Does `msg` say "<word> <n>" (case-insensitive, `n` not followed by another digit)?
fn names_number(msg: &str, word: &str, n: usize) -> bool {
    let lower = msg.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(word) {
        let after = &lower[from + pos + word.len()..];
        let after = after.trim_start_matches([' ', ':', '#']);
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.parse::<usize>().ok() == Some(n) {
            return true;
        }
        from += pos + word.len();
    }
    false
}

fn state_bits(net: &mut Net, g: &Graph) -> Vec<(String, Vec<u64>)> {
    state_dict::state_dict(net, &g.params)
        .into_iter()
        .map(|(k, t)| {
            let bits = match t {
                StateTensor::F32(t) => t.data.iter().map(|v| v.to_bits() as u64).collect(),
                StateTensor::I64 { data, .. } => data.iter().map(|&v| v as u64).collect(),
            };
            (k, bits)
        })
        .collect()
}

/// Everything of a history except wall-clock times, as bits.
fn history_bits(h: &History) -> Vec<u64> {
    let mut v = Vec::new();
    for e in &h.epochs {
        v.extend([
            e.epoch as u64,
            e.train_loss.to_bits(),
            e.train_accuracy.to_bits(),
            e.val_loss.to_bits(),
            e.val_accuracy.to_bits(),
            e.lr.to_bits(),
        ]);
    }
    v.push(h.best_epoch.map_or(0, |b| b as u64 + 1));
    v.push(h.stopped_early as u64);
    v
}

fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// One white pixel per image (x = 255 / 255 = 1 exactly) with the given 0/1 labels.
fn white_pixels(labels: &[u8]) -> Dataset {
    dataset(vec![255; labels.len()], labels.to_vec(), [1, 1, 1], 2)
}

/// A one-weight logistic model: Linear(1, 1) on a 1x1x1 image, logit z = w x + b.
fn logistic(seed: u64) -> (Graph, Net) {
    model(Preset::Plain, &[1, 1], seed)
}

/// z = w + b of the logistic model (x = 1).
fn logit(net: &mut Net, g: &Graph) -> f64 {
    let ids = parameters(net);
    assert_eq!(ids.len(), 2, "Linear(1, 1): weight and bias");
    g.params.value(ids[0])[0] as f64 + g.params.value(ids[1])[0] as f64
}

/// Plain SGD (batch of one example x = 1, label 1, binary cross entropy on the logit) moves the
/// weight and the bias each by lr (1 - sigmoid(z)): z grows by 2 lr (1 - sigmoid(z)) > 0 per step.
fn sgd_logit_step(z: f64, lr: f64) -> f64 {
    z + 2.0 * lr * (1.0 - sigmoid(z))
}

// ---------------------------------------------------------------------------------------------
// early stopping

/// Training on {x = 1, label 1} while validating on {x = 1, label 0}: every SGD step raises the
/// logit (see `sgd_logit_step`), so the validation loss softplus(z) rises every epoch. Epoch 1
/// is the best, and with patience 3 training stops at epoch 1 + 3 = 4, not before, not after.
#[test]
fn early_stopping_fires_patience_epochs_after_the_best_when_validation_loss_rises() {
    let (mut g, mut net) = logistic(3);
    let mut opt = sgd(&mut net, 0.5);
    let (train, val) = (white_pixels(&[1]), white_pixels(&[0]));
    let opts = FitOptions {
        early_stopping: Some(3),
        mode: Mode::Binary,
        ..options(20, 1)
    };
    let mut z = logit(&mut net, &g);
    let (h, text) = run(&mut net, &mut g, &mut opt, &train, &val, &opts);
    let h = h.unwrap();

    assert_eq!(h.epochs.len(), 4, "stops at epoch 1 + patience\n{text}");
    assert!(h.stopped_early);
    assert_eq!(h.best_epoch, Some(1));
    // the losses are the ones derived above (f32 training against an f64 oracle)
    for e in &h.epochs {
        z = sgd_logit_step(z, 0.5);
        assert!((e.val_loss - softplus(z)).abs() < 1e-5, "epoch {}", e.epoch);
        assert!(
            (e.train_loss - softplus(-z)).abs() < 1e-5,
            "epoch {}",
            e.epoch
        );
        assert_eq!(e.lr, 0.5);
    }
    let v = val_losses(&h);
    assert!(v.windows(2).all(|w| w[1] > w[0]), "rising: {v:?}");
    // the stop is announced, and the elapsed seconds still close the printout
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.to_ascii_lowercase().contains("early stopping")),
        "{text}"
    );
    assert_eq!(epoch_line_indices(&lines).len(), 4);
    assert!(lines.last().unwrap().contains("second"), "{text}");
}

/// With a learning rate of zero nothing changes, so every epoch's validation loss equals the
/// first one exactly: no epoch after the first improves (strictly), and training stops at epoch
/// 1 + patience.
#[test]
fn early_stopping_on_a_flat_loss_stops_at_one_plus_patience() {
    for patience in [1, 2, 5] {
        let (mut g, mut net) = model(Preset::Plain, &[4, 6, 4], 11);
        let mut opt = sgd(&mut net, 0.0);
        let (train, val) = (four_class(24, 1), four_class(10, 2));
        let opts = FitOptions {
            early_stopping: Some(patience),
            ..options(30, 8)
        };
        let (h, text) = run(&mut net, &mut g, &mut opt, &train, &val, &opts);
        let h = h.unwrap();
        assert_eq!(h.epochs.len(), 1 + patience, "{text}");
        assert!(h.stopped_early);
        assert_eq!(h.best_epoch, Some(1));
        let v = val_losses(&h);
        assert!(v.iter().all(|&x| x.to_bits() == v[0].to_bits()), "{v:?}");
    }
}

/// Without early stopping, the history holds every epoch, numbered from 1, and is not marked as
/// stopped early, even when the validation loss rises all along.
#[test]
fn without_early_stopping_every_epoch_runs() {
    let (mut g, mut net) = logistic(3);
    let mut opt = sgd(&mut net, 0.5);
    let (train, val) = (white_pixels(&[1]), white_pixels(&[0]));
    let opts = FitOptions {
        mode: Mode::Binary,
        ..options(9, 1)
    };
    let (h, text) = run(&mut net, &mut g, &mut opt, &train, &val, &opts);
    let h = h.unwrap();
    assert_eq!(h.epochs.len(), 9);
    assert!(!h.stopped_early);
    assert_eq!(h.best_epoch, Some(1));
    let numbers: Vec<usize> = h.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(numbers, (1..=9).collect::<Vec<_>>());
    assert!(
        !text.to_ascii_lowercase().contains("early stopping"),
        "{text}"
    );
    // the course's four lists
    let [tl, ta, vl, va] = h.lists();
    assert_eq!(vl, val_losses(&h));
    assert_eq!(tl.len(), 9);
    assert_eq!(
        ta,
        h.epochs
            .iter()
            .map(|e| e.train_accuracy)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        va,
        h.epochs.iter().map(|e| e.val_accuracy).collect::<Vec<_>>()
    );
    // wall-clock: each epoch's seconds fit in the whole run's
    let sum: f64 = h.epochs.iter().map(|e| e.seconds).sum();
    assert!(h.epochs.iter().all(|e| e.seconds >= 0.0));
    assert!(
        sum <= h.elapsed_seconds + 1e-9,
        "{sum} > {}",
        h.elapsed_seconds
    );
}

// ---------------------------------------------------------------------------------------------
// save_best

/// Training and validating on {x = 1, label 1}: the validation loss softplus(-z) falls at every
/// step while the learning rate is positive. StepLR(step_size 3, gamma 0) keeps lr = 0.5 for
/// epochs 1-3 (lr_at(e) = 0.5 * 0^floor(e / 3) for e = 0, 1, 2) and sets it to 0 from epoch 4 on,
/// so epochs 4 and 5 repeat epoch 3's loss exactly. Derived: improvements at 1, 2, 3 only; the
/// best epoch is 3; with patience 2 training stops at 5; the file is written at epochs 1, 2 and 3
/// and never again (an equal loss is not an improvement).
#[test]
fn save_best_writes_only_on_strict_improvement_and_stops_two_epochs_after_the_plateau() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("best.safetensors");
    let (mut g, mut net) = logistic(5);
    let mut opt = sgd(&mut net, 0.5);
    let data = white_pixels(&[1]);
    let opts = FitOptions {
        early_stopping: Some(2),
        save_best: Some(path.clone()),
        mode: Mode::Binary,
        scheduler: Scheduler::Step {
            step_size: 3,
            gamma: 0.0,
        },
        ..options(20, 1)
    };
    let mut spy = Spy::new(Some(path.clone()));
    let h = fit(&mut net, &mut g, &mut opt, &data, &data, &opts, &mut spy).unwrap();
    let text = spy.finish();

    assert_eq!(h.epochs.len(), 5, "{text}");
    assert!(h.stopped_early);
    assert_eq!(h.best_epoch, Some(3));
    let lrs: Vec<f64> = h.epochs.iter().map(|e| e.lr).collect();
    assert_eq!(lrs, [0.5, 0.5, 0.5, 0.0, 0.0]);
    let v = val_losses(&h);
    assert!(v[0] > v[1] && v[1] > v[2], "{v:?}");
    assert_eq!(v[3].to_bits(), v[2].to_bits(), "lr 0 changes nothing");
    assert_eq!(v[4].to_bits(), v[2].to_bits());
    assert_eq!(spy.writes, [true, true, true, false, false], "{text}");
    assert_eq!(save_lines(&text).len(), 3, "one line per save\n{text}");

    // the file holds epoch 3's weights, which are also the final ones
    let (mut g2, mut net2) = logistic(99);
    state_dict::load(&mut net2, &mut g2.params, &path).unwrap();
    assert_eq!(
        logit(&mut net2, &g2).to_bits(),
        logit(&mut net, &g).to_bits()
    );
    let (loss, _) = evaluate(&mut net2, &mut g2, &data, 1, Mode::Binary).unwrap();
    assert_eq!(loss, v[2]);
}

/// When the validation loss rises from epoch 1 on, the saved file keeps epoch 1's weights while
/// training goes on: loaded into a fresh model they give the history's minimum validation loss
/// (the best epoch's), not the final model's.
#[test]
fn save_best_keeps_the_best_epochs_weights_when_later_epochs_are_worse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("best.safetensors");
    let (mut g, mut net) = logistic(8);
    let mut opt = sgd(&mut net, 0.5);
    let (train, val) = (white_pixels(&[1]), white_pixels(&[0]));
    let z0 = logit(&mut net, &g);
    let opts = FitOptions {
        save_best: Some(path.clone()),
        mode: Mode::Binary,
        ..options(6, 1)
    };
    let mut spy = Spy::new(Some(path.clone()));
    let h = fit(&mut net, &mut g, &mut opt, &train, &val, &opts, &mut spy).unwrap();
    let text = spy.finish();
    assert_eq!(h.epochs.len(), 6);
    assert_eq!(h.best_epoch, Some(1));
    assert_eq!(
        spy.writes,
        [true, false, false, false, false, false],
        "{text}"
    );

    let (mut g2, mut net2) = logistic(1234);
    state_dict::load(&mut net2, &mut g2.params, &path).unwrap();
    let z1 = sgd_logit_step(z0, 0.5);
    assert!((logit(&mut net2, &g2) - z1).abs() < 1e-6, "epoch 1's logit");
    let (loss, _) = evaluate(&mut net2, &mut g2, &val, 1, Mode::Binary).unwrap();
    let min = val_losses(&h).into_iter().fold(f64::INFINITY, f64::min);
    assert_eq!(loss, min);
    assert_eq!(loss, h.epochs[0].val_loss);
    let (final_loss, _) = evaluate(&mut net, &mut g, &val, 1, Mode::Binary).unwrap();
    assert_eq!(final_loss, h.epochs[5].val_loss);
    assert!(final_loss > loss);
}

/// A BatchNorm model with a learning rate high enough for the validation loss to wander: the file
/// is written exactly at the epochs the course's rule calls improvements, the best epoch is the
/// first minimum, and the file reproduces that epoch's validation and training losses exactly
/// (weights and running statistics of that epoch).
#[test]
fn save_best_with_batchnorm_follows_the_course_rule_on_the_runs_own_losses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("best.safetensors");
    let (mut g, mut net) = model(Preset::Bn, &[4, 8, 4], 21);
    let mut opt = adam(&mut net, 0.08);
    let (train, val) = (four_class(40, 3), four_class(18, 4));
    let opts = FitOptions {
        save_best: Some(path.clone()),
        seed: 9,
        ..options(14, 8)
    };
    let mut spy = Spy::new(Some(path.clone()));
    let h = fit(&mut net, &mut g, &mut opt, &train, &val, &opts, &mut spy).unwrap();
    let text = spy.finish();

    let (improves, best, stop) = course_rule(&val_losses(&h), None);
    assert_eq!(stop, None);
    assert_eq!(h.epochs.len(), 14);
    // the run exercises both branches of the rule (this set-up is chosen for it)
    assert!(
        improves.contains(&false) && improves[1..].contains(&true),
        "set-up: the run no longer exercises both branches; pick another seed {improves:?}"
    );
    assert_eq!(spy.writes, improves, "{:?}\n{text}", val_losses(&h));
    assert_eq!(h.best_epoch, Some(best));
    assert_eq!(
        save_lines(&text).len(),
        improves.iter().filter(|&&b| b).count()
    );

    let (mut g2, mut net2) = model(Preset::Bn, &[4, 8, 4], 777);
    state_dict::load(&mut net2, &mut g2.params, &path).unwrap();
    let (vl, va) = evaluate(&mut net2, &mut g2, &val, 8, Mode::Multi).unwrap();
    let (tl, ta) = evaluate(&mut net2, &mut g2, &train, 8, Mode::Multi).unwrap();
    let rec = &h.epochs[best - 1];
    assert_eq!(
        (vl, va, tl, ta),
        (
            rec.val_loss,
            rec.val_accuracy,
            rec.train_loss,
            rec.train_accuracy
        )
    );
}

/// The same rule with early stopping, on the same kind of run: training stops exactly where the
/// course's rule applied to the history's own losses says it stops.
#[test]
fn early_stopping_with_batchnorm_stops_where_the_course_rule_says() {
    let (mut g, mut net) = model(Preset::Bn, &[4, 8, 4], 23);
    let mut opt = adam(&mut net, 0.05);
    let (train, val) = (four_class(40, 5), four_class(18, 6));
    let opts = FitOptions {
        early_stopping: Some(3),
        seed: 6,
        ..options(60, 8)
    };
    let (h, text) = run(&mut net, &mut g, &mut opt, &train, &val, &opts);
    let h = h.unwrap();
    let (improves, best, stop) = course_rule(&val_losses(&h), Some(3));
    assert_eq!(h.best_epoch, Some(best));
    // this set-up (chosen for it) stops early, and on the way an epoch without improvement is
    // followed by an improvement, which must reset the count of epochs without improvement
    let stop = stop.unwrap_or_else(|| {
        panic!(
            "set-up: the run no longer stops early; pick another seed {:?}",
            val_losses(&h)
        )
    });
    assert!(h.stopped_early);
    assert_eq!(h.epochs.len(), stop, "{text}");
    let reset = improves.windows(2).take(stop - 2).any(|w| !w[0] && w[1]);
    assert!(
        reset,
        "set-up: no improvement after a miss; pick another seed {improves:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// evaluation: loss = mean of per-batch losses, accuracy = correct / size

/// Cross entropy and correct predictions computed here in f64 from the model's logits, batch by
/// batch in order (eval mode, no gradients): the per-batch mean losses and the number correct.
fn logits_eval(net: &mut Net, g: &mut Graph, ds: &Dataset, batch: usize) -> (Vec<f64>, usize) {
    set_training(net, false);
    g.set_grad_enabled(false);
    let item = ds.item_size();
    let (mut losses, mut correct) = (Vec::new(), 0);
    for start in (0..ds.len).step_by(batch) {
        let end = (start + batch).min(ds.len);
        let n = end - start;
        let x: Vec<f32> = ds.images[start * item..end * item]
            .iter()
            .map(|&b| b as f32 / 255.0)
            .collect();
        g.reset();
        let shape = [n, ds.channels, ds.height, ds.width];
        let x = g.input(&Tensor::new(&shape, x).unwrap(), false).unwrap();
        let out = net.forward(g, x).unwrap();
        let logits = g.value(out).to_vec();
        let k = logits.len() / n;
        let mut sum = 0.0;
        for (row, &y) in logits.chunks(k).zip(&ds.labels[start..end]) {
            let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            sum += lse - row[y as usize];
            // torch.argmax: the first maximum
            let pred = row.iter().position(|&v| v == m).unwrap();
            correct += (pred == y as usize) as usize;
        }
        losses.push(sum / n as f64);
    }
    g.set_grad_enabled(true);
    (losses, correct)
}

/// The same through the library's `run_batch`, batch by batch in order.
fn run_batch_eval(net: &mut Net, g: &mut Graph, ds: &Dataset, batch: usize) -> (Vec<f64>, usize) {
    set_training(net, false);
    g.set_grad_enabled(false);
    let mut bufs = StepBuffers::default();
    let order: Vec<u32> = (0..ds.len as u32).collect();
    let (mut losses, mut correct) = (Vec::new(), 0);
    for chunk in order.chunks(batch) {
        let (loss, c) = run_batch(net, g, ds, chunk, Mode::Multi, &mut bufs).unwrap();
        losses.push(g.value(loss)[0] as f64);
        correct += c;
    }
    g.set_grad_enabled(true);
    (losses, correct)
}

/// A validation set of 10 (batches of 4, 4 and 2) whose last two images point at the wrong
/// class, so that the mean of per-batch losses and the mean of per-sample losses differ clearly.
fn val_with_hard_tail() -> Dataset {
    let mut ds = four_class(10, 17);
    for i in 8..10 {
        let wrong = (ds.labels[i] + 2) % 4;
        ds.labels[i] = wrong;
    }
    dataset(ds.images, ds.labels, [1, 2, 2], 4)
}

#[test]
fn epoch_losses_are_means_of_per_batch_losses_and_accuracy_is_correct_over_size() {
    let (mut g, mut net) = model(Preset::Bn, &[4, 8, 4], 31);
    let mut opt = adam(&mut net, 0.01);
    let train = four_class(42, 7); // batches of 8: five of 8 and one of 2
    let val = val_with_hard_tail();
    let batch = 4;
    let opts = FitOptions {
        seed: 2,
        ..options(3, batch)
    };
    let (h, _) = run(&mut net, &mut g, &mut opt, &train, &val, &opts);
    let h = h.unwrap();
    let last = h.epochs.last().unwrap().clone();

    for (ds, loss, acc) in [
        (&val, last.val_loss, last.val_accuracy),
        (&train, last.train_loss, last.train_accuracy),
    ] {
        // through run_batch: the same computation, so the same bits
        let (losses, correct) = run_batch_eval(&mut net, &mut g, ds, batch);
        let mean = losses.iter().sum::<f64>() / losses.len() as f64;
        assert_eq!(loss, mean, "loss = the mean of per-batch losses");
        assert_eq!(
            acc,
            correct as f64 / ds.len as f64,
            "accuracy = correct / size"
        );
        // from the logits in f64: the same within float error
        let (losses64, correct64) = logits_eval(&mut net, &mut g, ds, batch);
        let mean64 = losses64.iter().sum::<f64>() / losses64.len() as f64;
        assert!(
            (loss - mean64).abs() < 1e-5 * mean64.max(1.0),
            "{loss} vs {mean64}"
        );
        assert_eq!(correct64, correct);
        // and the library's evaluate agrees with both
        let (el, ea) = evaluate(&mut net, &mut g, ds, batch, Mode::Multi).unwrap();
        assert_eq!((el, ea), (loss, acc));
    }

    // the test can tell the two means apart: the per-sample mean is clearly different here
    let (losses, _) = logits_eval(&mut net, &mut g, &val, batch);
    let sizes = [4.0, 4.0, 2.0];
    let per_sample: f64 = losses.iter().zip(sizes).map(|(l, n)| l * n).sum::<f64>() / 10.0;
    assert!(
        (last.val_loss - per_sample).abs() > 1e-3,
        "per-batch {} vs per-sample {per_sample}",
        last.val_loss
    );
}

/// Accuracy is a count over the dataset's size: with 10 examples, a multiple of 1/10.
#[test]
fn accuracies_are_counts_over_the_dataset_size() {
    let (mut g, mut net) = model(Preset::Plain, &[4, 6, 4], 41);
    let mut opt = adam(&mut net, 0.02);
    let (train, val) = (four_class(30, 8), four_class(10, 9));
    let (h, _) = run(&mut net, &mut g, &mut opt, &train, &val, &options(4, 7));
    for e in h.unwrap().epochs {
        let v = e.val_accuracy * 10.0;
        let t = e.train_accuracy * 30.0;
        assert!((v - v.round()).abs() < 1e-9 && (t - t.round()).abs() < 1e-9);
        assert!((0.0..=1.0).contains(&e.val_accuracy));
    }
}

// ---------------------------------------------------------------------------------------------
// binary mode

/// 1x2x2 images, label 1 when pixel 0 is brighter than pixel 1 by at least 40, label 0 when it
/// is darker by at least 40 (pixels 2 and 3 are noise): linearly separable with a margin.
fn separable(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::seed(seed);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    while labels.len() < n {
        let px: Vec<u8> = (0..4).map(|_| (rng.next_f32() * 256.0) as u8).collect();
        let d = px[0] as i32 - px[1] as i32;
        if d.abs() < 40 {
            continue;
        }
        labels.push((d > 0) as u8);
        images.extend(px);
    }
    dataset(images, labels, [1, 2, 2], 2)
}

#[test]
fn binary_mode_learns_a_linearly_separable_problem_perfectly() {
    for preset in [Preset::Plain, Preset::Bn] {
        let dims: &[usize] = if preset == Preset::Plain {
            &[4, 1]
        } else {
            &[4, 8, 1]
        };
        let (mut g, mut net) = model(preset, dims, 51);
        let mut opt = adam(&mut net, 0.05);
        let (train, val) = (separable(64, 1), separable(32, 2));
        let opts = FitOptions {
            mode: Mode::Binary,
            ..options(80, 16)
        };
        let (h, text) = run(&mut net, &mut g, &mut opt, &train, &val, &opts);
        let h = h.unwrap();
        let last = h.epochs.last().unwrap();
        assert_eq!(last.train_accuracy, 1.0, "{preset}\n{text}");
        assert_eq!(last.val_accuracy, 1.0, "{preset}\n{text}");

        // accuracy in binary mode is sigmoid(logit) > 0.5 against the label, over the size
        set_training(&mut net, false);
        g.set_grad_enabled(false);
        let x: Vec<f32> = val.images.iter().map(|&b| b as f32 / 255.0).collect();
        let x = g
            .input(&Tensor::new(&[32, 1, 2, 2], x).unwrap(), false)
            .unwrap();
        let out = net.forward(&mut g, x).unwrap();
        let z = g.value(out).to_vec();
        assert_eq!(z.len(), 32, "one logit per sample");
        let mut bce = 0.0;
        for (&z, &y) in z.iter().zip(&val.labels) {
            assert_eq!(sigmoid(z as f64) > 0.5, y == 1);
            bce += if y == 1 {
                softplus(-(z as f64))
            } else {
                softplus(z as f64)
            };
        }
        // with 32 = 2 x 16, the mean of two batch means is the mean over samples
        assert!(
            (last.val_loss - bce / 32.0).abs() < 1e-5,
            "binary cross entropy"
        );
    }
}

#[test]
fn binary_mode_rejects_labels_above_one() {
    let (mut g, mut net) = model(Preset::Plain, &[4, 1], 52);
    let mut opt = adam(&mut net, 0.01);
    let mut bad = separable(16, 3);
    bad.labels[5] = 2;
    let bad = dataset(bad.images, bad.labels, [1, 2, 2], 3);
    let good = separable(8, 4);
    let opts = FitOptions {
        mode: Mode::Binary,
        ..options(2, 4)
    };
    // in the training set
    let (r, _) = run(&mut net, &mut g, &mut opt, &bad, &good, &opts);
    match r {
        Err(e @ Error::Invalid(_)) => assert!(e.to_string().contains('2'), "{e}"),
        other => panic!("expected an invalid-label error, got {other:?}"),
    }
    // in the validation set
    let (r, _) = run(&mut net, &mut g, &mut opt, &good, &bad, &opts);
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    // and in evaluate
    let r = evaluate(&mut net, &mut g, &bad, 4, Mode::Binary);
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
}

#[test]
fn binary_mode_needs_one_output_per_sample() {
    let (mut g, mut net) = model(Preset::Plain, &[4, 2], 53);
    let mut opt = adam(&mut net, 0.01);
    let data = separable(8, 5);
    let opts = FitOptions {
        mode: Mode::Binary,
        ..options(1, 4)
    };
    let (r, _) = run(&mut net, &mut g, &mut opt, &data, &data, &opts);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// non-finite losses

/// SGD with lr = 1e300 multiplies gradients by lr as f32 = inf. With every label 0 and every
/// pixel > 0, every gradient of Linear(4, 2) is nonzero (class 0's negative, class 1's positive),
/// so after the first step every weight and bias is infinite and the next forward pass gives
/// inf - inf = NaN. With batches of 4: 12 examples -> the first non-finite loss is epoch 1,
/// step 2 of 3; 4 examples -> one step per epoch, so the evaluation after epoch 1 finds it,
/// naming epoch 1, step 1 of 1 (the step that diverged), before anything is saved.
#[test]
fn a_non_finite_loss_stops_training_naming_the_epoch_and_step() {
    for (n, epoch, step) in [(12, 1, 2), (4, 1, 1)] {
        let (mut g, mut net) = model(Preset::Plain, &[4, 2], 61);
        let mut opt = sgd(&mut net, 1e300);
        let images: Vec<u8> = (0..n * 4).map(|i| 1 + (i * 37 % 250) as u8).collect();
        let data = dataset(images, vec![0; n], [1, 2, 2], 2);
        let (r, text) = run(&mut net, &mut g, &mut opt, &data, &data, &options(5, 4));
        match r {
            Err(Error::NonFinite(at)) => {
                assert_eq!((at.epoch, at.step, at.steps), (epoch, step, n / 4), "{at}");
                // 12 examples: a step's loss is NaN; 4: only the evaluation after the epoch sees it
                let by_step = matches!(at.seen, LossSeen::Step(v) if !v.is_finite());
                let by_evaluation =
                    matches!(at.seen, LossSeen::Evaluation { train, .. } if !train.is_finite());
                assert!(if n == 12 { by_step } else { by_evaluation }, "{at:?}");
                let msg = at.to_string();
                assert!(names_number(&msg, "epoch", epoch), "{msg}");
                assert!(names_number(&msg, "step", step), "{msg}");
            }
            other => panic!("expected Error::NonFinite, got {other:?}\n{text}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// printed lines

#[test]
fn printed_lines_follow_the_courses_format() {
    let (mut g, mut net) = model(Preset::Bn, &[4, 8, 4], 71);
    let mut opt = adam(&mut net, 0.01);
    let (train, val) = (four_class(32, 10), four_class(12, 11));
    let (h, text) = run(&mut net, &mut g, &mut opt, &train, &val, &options(4, 8));
    let h = h.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(text.ends_with('\n'));
    assert_eq!(lines.len(), 2 * 4 + 1, "{text}");
    for (e, rec) in h.epochs.iter().enumerate() {
        let line = lines[2 * e];
        assert!(is_epoch_line(line), "{line}");
        let expected = format!(
            "Epoch[{}/4] - Train loss: {:.5} Train Accuracy: {:.5} || Validation Loss: {:.5} Validation Accuracy: {:.5}",
            e + 1,
            rec.train_loss,
            rec.train_accuracy,
            rec.val_loss,
            rec.val_accuracy
        );
        assert_eq!(line, expected);
        assert_eq!(lines[2 * e + 1], "=".repeat(100));
    }
    // the last line: the elapsed seconds
    let last = lines.last().unwrap();
    let words: Vec<&str> = last.split_whitespace().collect();
    assert!(words.len() <= 2, "{last}");
    let secs: f64 = words[0].parse().unwrap_or_else(|_| panic!("{last}"));
    assert!(secs >= 0.0);
    assert!(
        (secs - h.elapsed_seconds).abs() <= 0.0051,
        "{last} vs {}",
        h.elapsed_seconds
    );
}

/// Extra lines (a learning-rate change, a save, early stopping) go between the epoch blocks and
/// never break the epoch line and rule pairs.
#[test]
fn every_epoch_line_is_followed_by_the_rule_with_all_options_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, mut net) = model(Preset::Bn, &[4, 8, 4], 72);
    let mut opt = adam(&mut net, 0.05);
    let (train, val) = (four_class(32, 12), four_class(12, 13));
    let opts = FitOptions {
        save_best: Some(dir.path().join("best.safetensors")),
        early_stopping: Some(3),
        scheduler: Scheduler::Step {
            step_size: 2,
            gamma: 0.5,
        },
        ..options(12, 8)
    };
    let (h, text) = run(&mut net, &mut g, &mut opt, &train, &val, &opts);
    let h = h.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let idx = epoch_line_indices(&lines);
    assert_eq!(idx.len(), h.epochs.len());
    for (e, &i) in idx.iter().enumerate() {
        assert!(is_epoch_line(lines[i]), "{}", lines[i]);
        assert!(lines[i].starts_with(&format!("Epoch[{}/12]", e + 1)));
        assert_eq!(lines[i + 1], "=".repeat(100));
    }
    let last = lines.last().unwrap();
    assert!(
        last.split_whitespace()
            .next()
            .unwrap()
            .parse::<f64>()
            .is_ok(),
        "{last}"
    );
}

// ---------------------------------------------------------------------------------------------
// determinism

fn seeded_run(init_seed: u64, fit_seed: u64) -> (History, Vec<(String, Vec<u64>)>) {
    // BN and dropout: initialisation, shuffling and dropout masks all come from the seeds
    let (mut g, mut net) = model(Preset::BnDropout, &[4, 12, 8, 4], init_seed);
    let mut opt = adam(&mut net, 0.01);
    let (train, val) = (four_class(40, 14), four_class(12, 15));
    let opts = FitOptions {
        seed: fit_seed,
        ..options(3, 8)
    };
    let (h, _) = run(&mut net, &mut g, &mut opt, &train, &val, &opts);
    let bits = state_bits(&mut net, &g);
    (h.unwrap(), bits)
}

#[test]
fn the_same_seed_gives_bit_identical_histories_and_weights() {
    let (h1, w1) = seeded_run(7, 7);
    let (h2, w2) = seeded_run(7, 7);
    assert_eq!(history_bits(&h1), history_bits(&h2));
    assert_eq!(w1, w2);
}

#[test]
fn a_different_seed_gives_a_different_run() {
    let (h1, w1) = seeded_run(7, 7);
    // a different initialisation
    let (h2, w2) = seeded_run(8, 7);
    assert_ne!(history_bits(&h1), history_bits(&h2));
    assert_ne!(w1, w2);
    // the same initialisation, a different order of examples
    let (h3, w3) = seeded_run(7, 8);
    assert_ne!(history_bits(&h1), history_bits(&h3));
    assert_ne!(w1, w3);
}

// ---------------------------------------------------------------------------------------------
// options

#[test]
fn invalid_options_are_rejected_before_training() {
    let (mut g, mut net) = model(Preset::Plain, &[4, 4], 81);
    let mut opt = adam(&mut net, 0.01);
    let data = four_class(8, 16);
    let before = state_bits(&mut net, &g);
    for opts in [
        options(2, 0),
        FitOptions {
            early_stopping: Some(0),
            ..options(2, 4)
        },
    ] {
        let (r, text) = run(&mut net, &mut g, &mut opt, &data, &data, &opts);
        assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
        assert!(text.is_empty(), "{text}");
    }
    assert_eq!(state_bits(&mut net, &g), before, "nothing trained");
}

#[test]
fn helper_course_rule_matches_hand_worked_sequences() {
    // improvements are strict; the stop comes `patience` epochs after the last improvement
    let (imp, best, stop) = course_rule(&[3.0, 2.0, 2.0, 1.0, 1.5, 1.0, 0.9], Some(2));
    assert_eq!(imp, [true, true, false, true, false, false]);
    assert_eq!((best, stop), (4, Some(6)));
    let (imp, best, stop) = course_rule(&[1.0, 2.0, 3.0], None);
    assert_eq!(imp, [true, false, false]);
    assert_eq!((best, stop), (1, None));
    assert!(names_number("at epoch 2, step 1 of 1", "epoch", 2));
    assert!(!names_number("at epoch 21, step 1 of 1", "epoch", 2));
    assert!(names_number("Epoch 3 step 12", "step", 12));
}
