//! `Scheduler::lr_at` against PyTorch's documented learning-rate schedules, computed here in f64
//! independently of the library, and `fit` stepping the schedule once per epoch.
//!
//! torch.optim.lr_scheduler (https://pytorch.org/docs/stable/optim.html), after `t` calls of
//! `scheduler.step()` (one per epoch in the course):
//! - StepLR(step_size, gamma): "Decays the learning rate of each parameter group by gamma every
//!   step_size epochs": lr_t = base * gamma^floor(t / step_size). PyTorch computes it
//!   recursively (multiply by gamma when t > 0 and t % step_size == 0); both forms are checked.
//! - CosineAnnealingLR(T_max, eta_min): the closed form from SGDR,
//!   eta_t = eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2, which PyTorch approximates
//!   recursively: eta_{t+1} = eta_min + (eta_t - eta_min) (1 + cos(pi (t + 1) / T_max)) /
//!   (1 + cos(pi t / T_max)), with the step across (t - 1 - T_max) % (2 T_max) == 0 taken as
//!   eta_t + (base - eta_min) (1 - cos(pi / T_max)) / 2. Both are checked, also past T_max.
//! - CosineAnnealingWarmRestarts(T_0, T_mult, eta_min):
//!   eta_t = eta_min + (base - eta_min) (1 + cos(pi T_cur / T_i)) / 2, where T_i = T_0 T_mult^n
//!   is the length of the n-th period and T_cur the epochs since the last restart; the n-th
//!   restart happens at epoch T_0 (T_mult^n - 1) / (T_mult - 1) (n T_0 when T_mult = 1), so
//!   n = floor(log_{T_mult}(t (T_mult - 1) / T_0 + 1)) as in PyTorch's `step(epoch)`.
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

use bnlab::data::Dataset;
use bnlab::nn::{parameters, Net};
use bnlab::optim::{Adam, AdamConfig, Optimizer};
use bnlab::presets::{mlp, Preset};
use bnlab::train::{fit, FitOptions, History, Scheduler};
use bnlab::{Graph, Rng};
use std::f64::consts::PI;

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-12 * scale.abs().max(1e-300)
}

#[track_caller]
fn assert_close(got: f64, want: f64, scale: f64, what: &str) {
    assert!(close(got, want, scale), "{what}: got {got}, want {want}");
}

// ---------------------------------------------------------------------------------------------
// the oracles

fn step_closed(base: f64, step_size: usize, gamma: f64, t: usize) -> f64 {
    base * gamma.powf((t / step_size) as f64)
}

/// PyTorch's StepLR.get_lr, one step at a time.
fn step_recursive(base: f64, step_size: usize, gamma: f64, t: usize) -> f64 {
    let mut lr = base;
    for e in 1..=t {
        if e % step_size == 0 {
            lr *= gamma;
        }
    }
    lr
}

fn cosine_closed(base: f64, t_max: usize, eta_min: f64, t: usize) -> f64 {
    eta_min + (base - eta_min) * (1.0 + (PI * t as f64 / t_max as f64).cos()) / 2.0
}

/// PyTorch's CosineAnnealingLR.get_lr, one step at a time.
fn cosine_recursive(base: f64, t_max: usize, eta_min: f64, t: usize) -> f64 {
    let tm = t_max as f64;
    let mut lr = base;
    for e in 1..=t as i64 {
        if (e - 1 - t_max as i64).rem_euclid(2 * t_max as i64) == 0 {
            lr += (base - eta_min) * (1.0 - (PI / tm).cos()) / 2.0;
        } else {
            lr = eta_min
                + (lr - eta_min) * (1.0 + (PI * e as f64 / tm).cos())
                    / (1.0 + (PI * (e - 1) as f64 / tm).cos());
        }
    }
    lr
}

/// The start of the n-th period (n = 0, 1, ...) of warm restarts.
fn restart_start(t_0: usize, t_mult: usize, n: u32) -> usize {
    if t_mult == 1 {
        t_0 * n as usize
    } else {
        t_0 * (t_mult.pow(n) - 1) / (t_mult - 1)
    }
}

/// (T_cur, T_i) at epoch t, from the closed form of the restart epochs.
fn restarts_position(t_0: usize, t_mult: usize, t: usize) -> (usize, usize) {
    let mut n = if t_mult == 1 {
        (t / t_0) as u32
    } else {
        let x = t as f64 * (t_mult - 1) as f64 / t_0 as f64 + 1.0;
        (x.ln() / (t_mult as f64).ln()).floor() as u32
    };
    // the logarithm can land a hair off an integer at a restart: settle n exactly
    while n > 0 && restart_start(t_0, t_mult, n) > t {
        n -= 1;
    }
    while restart_start(t_0, t_mult, n + 1) <= t {
        n += 1;
    }
    (t - restart_start(t_0, t_mult, n), t_0 * t_mult.pow(n))
}

fn restarts(base: f64, t_0: usize, t_mult: usize, eta_min: f64, t: usize) -> f64 {
    let (t_cur, t_i) = restarts_position(t_0, t_mult, t);
    eta_min + (base - eta_min) * (1.0 + (PI * t_cur as f64 / t_i as f64).cos()) / 2.0
}

/// The oracle for any scheduler.
fn oracle(s: &Scheduler, base: f64, t: usize) -> f64 {
    match *s {
        Scheduler::None => base,
        Scheduler::Step { step_size, gamma } => step_closed(base, step_size, gamma, t),
        Scheduler::Cosine { t_max, eta_min } => cosine_closed(base, t_max, eta_min, t),
        Scheduler::CosineRestarts {
            t_0,
            t_mult,
            eta_min,
        } => restarts(base, t_0, t_mult, eta_min, t),
    }
}

#[test]
fn oracle_restart_positions_by_hand() {
    // T_0 = 2, T_mult = 2: periods [0, 2), [2, 6), [6, 14), [14, 30)
    let want = [
        (0, 2),
        (1, 2),
        (0, 4),
        (1, 4),
        (2, 4),
        (3, 4),
        (0, 8),
        (1, 8),
        (7, 8),
        (0, 16),
    ];
    for (t, w) in [0, 1, 2, 3, 4, 5, 6, 7, 13, 14].into_iter().zip(want) {
        assert_eq!(restarts_position(2, 2, t), w, "t = {t}");
    }
    // T_0 = 1, T_mult = 3: periods start at 0, 1, 4, 13, 40, 121 (where log3 is inexact)
    for (t, w) in [
        (121, (0, 243)),
        (120, (80, 81)),
        (40, (0, 81)),
        (39, (26, 27)),
    ] {
        assert_eq!(restarts_position(1, 3, t), w, "t = {t}");
    }
    // T_mult = 1: plain periods of T_0
    assert_eq!(restarts_position(5, 1, 17), (2, 5));
}

// ---------------------------------------------------------------------------------------------
// lr_at against the oracles

#[test]
fn every_schedule_starts_at_the_base_rate() {
    for s in [
        Scheduler::None,
        Scheduler::Step {
            step_size: 3,
            gamma: 0.1,
        },
        Scheduler::Cosine {
            t_max: 10,
            eta_min: 1e-4,
        },
        Scheduler::CosineRestarts {
            t_0: 4,
            t_mult: 2,
            eta_min: 1e-4,
        },
    ] {
        assert_eq!(s.lr_at(0.003, 0), 0.003, "{s:?}");
    }
}

#[test]
fn constant_schedule_never_changes() {
    for t in 0..50 {
        assert_eq!(Scheduler::None.lr_at(0.01, t), 0.01);
    }
}

#[test]
fn step_lr_matches_pytorchs_documented_example() {
    // lr = 0.05 if epoch < 30; 0.005 if 30 <= epoch < 60; 0.0005 if 60 <= epoch < 90
    let s = Scheduler::Step {
        step_size: 30,
        gamma: 0.1,
    };
    for t in 0..100 {
        let want = match t {
            0..=29 => 0.05,
            30..=59 => 0.005,
            60..=89 => 0.0005,
            _ => 0.00005,
        };
        assert_close(s.lr_at(0.05, t), want, want, &format!("t = {t}"));
    }
}

#[test]
fn step_lr_matches_closed_and_recursive_forms() {
    for (base, step_size, gamma) in [(0.1, 1, 0.5), (0.001, 5, 0.5), (0.3, 3, 0.9), (1.0, 7, 2.0)] {
        let s = Scheduler::Step { step_size, gamma };
        for t in 0..40 {
            let got = s.lr_at(base, t);
            let want = step_closed(base, step_size, gamma, t);
            assert_close(got, want, want, &format!("{s:?} t = {t}"));
            let rec = step_recursive(base, step_size, gamma, t);
            assert!(
                (got - rec).abs() <= 1e-13 * rec,
                "{s:?} t = {t}: {got} vs {rec}"
            );
        }
    }
}

#[test]
fn step_lr_with_gamma_zero_drops_to_zero_at_the_first_step() {
    let s = Scheduler::Step {
        step_size: 3,
        gamma: 0.0,
    };
    let lrs: Vec<f64> = (0..7).map(|t| s.lr_at(0.5, t)).collect();
    assert_eq!(lrs, [0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn cosine_annealing_by_hand() {
    // T_max = 2, eta_min = 0: 0.1, 0.05, 0, then back up (the schedule keeps going past T_max)
    let s = Scheduler::Cosine {
        t_max: 2,
        eta_min: 0.0,
    };
    let want = [0.1, 0.05, 0.0, 0.05, 0.1];
    for (t, w) in want.into_iter().enumerate() {
        assert!(
            (s.lr_at(0.1, t) - w).abs() < 1e-15,
            "t = {t}: {}",
            s.lr_at(0.1, t)
        );
    }
    // halfway: the mean of base and eta_min
    let s = Scheduler::Cosine {
        t_max: 10,
        eta_min: 0.001,
    };
    assert_close(s.lr_at(0.1, 5), 0.0505, 0.1, "halfway");
    assert_close(s.lr_at(0.1, 10), 0.001, 0.1, "the end: eta_min");
}

#[test]
fn cosine_annealing_matches_closed_and_recursive_forms() {
    for (base, t_max, eta_min) in [
        (0.1, 10, 0.0),
        (0.001, 7, 1e-5),
        (0.5, 1, 0.01),
        (0.02, 3, 0.001),
    ] {
        let s = Scheduler::Cosine { t_max, eta_min };
        for t in 0..=(3 * t_max + 2) {
            let got = s.lr_at(base, t);
            assert_close(
                got,
                cosine_closed(base, t_max, eta_min, t),
                base,
                &format!("{s:?} t = {t}"),
            );
            let rec = cosine_recursive(base, t_max, eta_min, t);
            assert!(
                (got - rec).abs() <= 1e-10 * base,
                "{s:?} t = {t}: {got} vs {rec}"
            );
            assert!(got >= eta_min - 1e-15 && got <= base + 1e-15);
        }
    }
}

#[test]
fn warm_restarts_by_hand_with_t_mult_2() {
    // T_0 = 2, T_mult = 2, base 1, eta_min 0: restarts at 2, 6, 14 with periods 4, 8, 16
    let s = Scheduler::CosineRestarts {
        t_0: 2,
        t_mult: 2,
        eta_min: 0.0,
    };
    let c = |x: f64| (1.0 + (PI * x).cos()) / 2.0;
    let want = [
        (0, 1.0),
        (1, 0.5),
        (2, 1.0),
        (3, c(0.25)), // 0.853553...
        (4, 0.5),
        (5, c(0.75)), // 0.146446...
        (6, 1.0),
        (7, c(1.0 / 8.0)),
        (10, 0.5),
        (13, c(7.0 / 8.0)),
        (14, 1.0),
        (22, 0.5),
        (30, 1.0),
    ];
    for (t, w) in want {
        assert!(
            (s.lr_at(1.0, t) - w).abs() < 1e-15,
            "t = {t}: {}",
            s.lr_at(1.0, t)
        );
    }
    assert!((c(0.25) - 0.853_553_390_593_273_7).abs() < 1e-15);
}

#[test]
fn warm_restarts_match_a_published_example() {
    // MindFormers' CosineAnnealingWarmRestarts docstring (same formula as PyTorch), printed in
    // float32: base 0.005, t_0 10, t_mult 2, eta_min 1e-7 gives 0.0048776437 at step 1 and
    // 0.0042677815 at step 15 (inside the second period, T_cur = 5 of T_i = 20)
    let s = Scheduler::CosineRestarts {
        t_0: 10,
        t_mult: 2,
        eta_min: 1e-7,
    };
    assert!((s.lr_at(0.005, 1) - 0.004_877_643_7).abs() < 1e-10);
    assert!((s.lr_at(0.005, 15) - 0.004_267_781_5).abs() < 1e-10);
}

#[test]
fn warm_restarts_match_the_closed_form_for_many_settings() {
    for (base, t_0, t_mult, eta_min) in [
        (0.1, 5, 1, 0.0),
        (0.1, 1, 1, 0.0),
        (0.01, 3, 2, 1e-4),
        (0.5, 1, 3, 0.01),
        (0.001, 4, 4, 1e-6),
        (0.2, 2, 5, 0.0),
    ] {
        let s = Scheduler::CosineRestarts {
            t_0,
            t_mult,
            eta_min,
        };
        for t in 0..200 {
            let got = s.lr_at(base, t);
            let want = restarts(base, t_0, t_mult, eta_min, t);
            assert_close(got, want, base, &format!("{s:?} t = {t}"));
        }
        // every restart returns to the base rate exactly
        for n in 0..4 {
            let t = restart_start(t_0, t_mult, n);
            assert_close(s.lr_at(base, t), base, base, &format!("{s:?} restart {n}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fit steps the schedule once per epoch

/// 1x2x2 images in two classes (the brighter of pixels 0 and 1).
fn tiny_data(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::seed(seed);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let px: Vec<u8> = (0..4).map(|_| (rng.next_f32() * 256.0) as u8).collect();
        labels.push((px[0] > px[1]) as u8);
        images.extend(px);
    }
    Dataset::new(images, labels, [1, 2, 2], 2).unwrap()
}

fn fit_with(s: Scheduler, base: f64, epochs: usize) -> (History, String, f64) {
    let mut rng = Rng::seed(3);
    let mut g = Graph::new(rng.next_u64());
    let mut net: Net = mlp(&mut g.params, Preset::Bn, &[4, 6, 2], &mut rng).unwrap();
    let mut opt = Adam::new(
        parameters(&net),
        AdamConfig {
            lr: base,
            ..Default::default()
        },
    );
    let (train, val) = (tiny_data(24, 1), tiny_data(8, 2));
    let opts = FitOptions {
        epochs,
        batch_size: 8,
        scheduler: s,
        progress: false,
        ..Default::default()
    };
    let mut out = Vec::new();
    let h = fit(&mut net, &mut g, &mut opt, &train, &val, &opts, &mut out).unwrap();
    (h, String::from_utf8(out).unwrap(), opt.lr())
}

/// The numbers in a line (tokens trimmed of punctuation that parse as f64).
fn numbers(line: &str) -> Vec<f64> {
    line.split(|c: char| c.is_whitespace() || c == ',' || c == '>' || c == '(' || c == ')')
        .map(|w| w.trim_matches(|c: char| !(c.is_ascii_digit() || c == '.')))
        .filter_map(|w| w.parse().ok())
        .collect()
}

fn is_lr_line(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    !l.starts_with("epoch[")
        && (l.contains("learning rate")
            || l.split_whitespace()
                .any(|w| w.trim_matches(|c: char| !c.is_alphabetic()) == "lr"))
}

/// The history's lr column is the schedule before each epoch (lr_at(base, e - 1) for epoch e),
/// the optimizer ends at lr_at(base, epochs), and a line announcing old and new rates comes
/// right before the line of each epoch after which the rate changed (the course steps the
/// scheduler and prints the change, then prints the epoch's line), and nowhere else.
fn check_fit_schedule(s: Scheduler, base: f64, epochs: usize) {
    let (h, text, final_lr) = fit_with(s, base, epochs);
    assert_eq!(h.epochs.len(), epochs);
    for rec in &h.epochs {
        let want = oracle(&s, base, rec.epoch - 1);
        assert_close(rec.lr, want, base, &format!("{s:?} epoch {}", rec.epoch));
    }
    assert_close(
        final_lr,
        oracle(&s, base, epochs),
        base,
        "the optimizer's final lr",
    );

    let lines: Vec<&str> = text.lines().collect();
    let mut announced = 0;
    for e in 1..=epochs {
        let i = lines
            .iter()
            .position(|l| l.starts_with(&format!("Epoch[{e}/{epochs}]")))
            .unwrap_or_else(|| panic!("no line for epoch {e}\n{text}"));
        let (old, new) = (oracle(&s, base, e - 1), oracle(&s, base, e));
        let changed = !close(old, new, base);
        let before = if i > 0 { lines[i - 1] } else { "" };
        assert_eq!(
            is_lr_line(before),
            changed,
            "{s:?}: epoch {e}, lr {old} -> {new}, line before: {before:?}\n{text}"
        );
        if changed {
            announced += 1;
            let nums = numbers(before);
            assert!(
                nums.iter().any(|&x| close(x, old, base))
                    && nums.iter().any(|&x| close(x, new, base)),
                "{before:?} should name {old} and {new}"
            );
        }
    }
    let lr_lines = lines.iter().filter(|l| is_lr_line(l)).count();
    assert_eq!(lr_lines, announced, "{text}");
}

#[test]
fn fit_steps_step_lr_once_per_epoch() {
    let s = Scheduler::Step {
        step_size: 2,
        gamma: 0.5,
    };
    let (h, _, final_lr) = fit_with(s, 0.01, 5);
    let lrs: Vec<f64> = h.epochs.iter().map(|e| e.lr).collect();
    assert_eq!(lrs, [0.01, 0.01, 0.005, 0.005, 0.0025]);
    assert_eq!(final_lr, 0.0025);
    check_fit_schedule(s, 0.01, 5);
}

#[test]
fn fit_steps_cosine_annealing_once_per_epoch() {
    check_fit_schedule(
        Scheduler::Cosine {
            t_max: 6,
            eta_min: 1e-4,
        },
        0.01,
        6,
    );
}

#[test]
fn fit_steps_warm_restarts_once_per_epoch() {
    check_fit_schedule(
        Scheduler::CosineRestarts {
            t_0: 2,
            t_mult: 2,
            eta_min: 1e-4,
        },
        0.01,
        8,
    );
}

#[test]
fn fit_without_a_schedule_keeps_the_rate_and_prints_no_change() {
    check_fit_schedule(Scheduler::None, 0.003, 3);
}

#[test]
fn helper_numbers_and_lr_lines() {
    assert_eq!(numbers("Learning rate: 0.01 -> 0.005"), [0.01, 0.005]);
    assert_eq!(numbers("lr 0.01 => 0"), [0.01, 0.0]);
    assert!(is_lr_line("Learning rate: 0.01 -> 0.005"));
    assert!(is_lr_line("lr: 0.01 -> 0.005"));
    assert!(!is_lr_line(
        "Epoch[1/3] - Train loss: 0.10000 Train Accuracy: 0.90000 || Validation Loss: 0.20000 Validation Accuracy: 0.80000"
    ));
    assert!(!is_lr_line("===="));
}
