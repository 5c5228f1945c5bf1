//! Optimizers against PyTorch's documented update rules, implemented independently here in f64.
//!
//! torch.optim.SGD (https://pytorch.org/docs/stable/generated/torch.optim.SGD.html), per step t
//! and parameter with gradient g:
//!   g <- g + wd p;  if mu != 0: b <- g (t = 1) or mu b + (1 - dampening) g;
//!                   g <- g + mu b (nesterov) or b;   p <- p - lr g
//! torch.optim.Adam (.../torch.optim.Adam.html):
//!   g <- g + wd p;  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
//!   p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//! torch.optim.AdamW (.../torch.optim.AdamW.html): p <- p (1 - lr wd) first, no g + wd p.
//! Parameters whose gradient is None (after zero_grad(set_to_none=True), no backward reached
//! them) are skipped entirely: no decay, no momentum, and their step count t does not advance.
//!
//! Gradients come from a graph backward each step (a Linear layer's output against a changing
//! target, plus free vectors against changing targets), and the oracle is fed the same gradients.
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

use bnlab::nn::Linear;
use bnlab::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use bnlab::{Graph, ParamId, Rng, Tensor};

/// The problem: Linear(4 -> 3) (weight, bias) and two free vectors p (5) and q (3).
struct Problem {
    g: Graph,
    ids: [ParamId; 4],
}

fn uniform(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(lo, hi)).collect()
}

fn problem() -> Problem {
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(42);
    let lin = Linear::new(&mut g.params, 4, 3, &mut rng).unwrap();
    let p = g
        .params
        .add(Tensor::new(&[5], uniform(&mut rng, 5, -1.0, 1.0)).unwrap())
        .unwrap();
    let q = g
        .params
        .add(Tensor::new(&[3], uniform(&mut rng, 3, -1.0, 1.0)).unwrap())
        .unwrap();
    Problem {
        g,
        ids: [lin.weight, lin.bias.unwrap(), p, q],
    }
}

/// Which parameters receive a gradient in a step (the Linear layer always does).
#[derive(Clone, Copy)]
struct Plan {
    p: bool,
    q: bool,
    /// set the learning rate before this step
    lr: Option<f64>,
}

const ALL: Plan = Plan {
    p: true,
    q: true,
    lr: None,
};

/// zero_grad, then one backward of mse(linear(x_s), t_s) [+ mse(p, u_s)] [+ mse(q, v_s)], with
/// data that change with the step s. Returns every parameter's gradient (None: not reached).
fn gradients(pr: &mut Problem, s: usize, plan: Plan) -> Vec<Option<Vec<f64>>> {
    let g = &mut pr.g;
    g.reset();
    g.params.zero_grad();
    let mut rng = Rng::seed(1000 + s as u64);
    let x = Tensor::new(&[6, 4], uniform(&mut rng, 24, -1.0, 1.0)).unwrap();
    let t = uniform(&mut rng, 18, -2.0, 2.0);
    let (u, v) = (
        uniform(&mut rng, 5, -2.0, 2.0),
        uniform(&mut rng, 3, -2.0, 2.0),
    );
    let xv = g.input(&x, false).unwrap();
    let [w, b, p, q] = pr.ids.map(|id| g.param(id));
    let y = g.linear(xv, w, Some(b)).unwrap();
    let mut loss = g.mse(y, &t).unwrap();
    if plan.p {
        let l = g.mse(p, &u).unwrap();
        loss = g.add(loss, l).unwrap();
    }
    if plan.q {
        let l = g.mse(q, &v).unwrap();
        loss = g.add(loss, l).unwrap();
    }
    g.backward(loss).unwrap();
    let grads: Vec<Option<Vec<f64>>> = pr
        .ids
        .iter()
        .map(|&id| {
            g.params
                .grad(id)
                .map(|d| d.iter().map(|&x| x as f64).collect())
        })
        .collect();
    assert_eq!(
        grads[2].is_some(),
        plan.p,
        "p has a gradient exactly when the loss used it"
    );
    assert_eq!(
        grads[3].is_some(),
        plan.q,
        "q has a gradient exactly when the loss used it"
    );
    grads
}

fn values(pr: &Problem) -> Vec<Vec<f32>> {
    pr.ids
        .iter()
        .map(|&id| pr.g.params.value(id).to_vec())
        .collect()
}

fn to_f64(v: &[Vec<f32>]) -> Vec<Vec<f64>> {
    v.iter()
        .map(|t| t.iter().map(|&x| x as f64).collect())
        .collect()
}

/// An independent f64 implementation of an update rule.
trait Oracle {
    fn step(&mut self, p: &mut [Vec<f64>], grads: &[Option<Vec<f64>>]);
    fn set_lr(&mut self, lr: f64);
}

struct SgdOracle {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    buf: Vec<Option<Vec<f64>>>,
}

impl SgdOracle {
    fn new(c: SgdConfig) -> SgdOracle {
        SgdOracle {
            lr: c.lr,
            momentum: c.momentum,
            dampening: c.dampening,
            weight_decay: c.weight_decay,
            nesterov: c.nesterov,
            buf: vec![None; 4],
        }
    }
}

impl Oracle for SgdOracle {
    fn step(&mut self, params: &mut [Vec<f64>], grads: &[Option<Vec<f64>>]) {
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let Some(g) = g else { continue };
            let mut d: Vec<f64> = g
                .iter()
                .zip(p.iter())
                .map(|(g, p)| g + self.weight_decay * p)
                .collect();
            if self.momentum != 0.0 {
                let b = match self.buf[k].take() {
                    None => d.clone(),
                    Some(b) => b
                        .iter()
                        .zip(&d)
                        .map(|(b, d)| self.momentum * b + (1.0 - self.dampening) * d)
                        .collect(),
                };
                d = if self.nesterov {
                    d.iter()
                        .zip(&b)
                        .map(|(d, b)| d + self.momentum * b)
                        .collect()
                } else {
                    b.clone()
                };
                self.buf[k] = Some(b);
            }
            for (p, d) in p.iter_mut().zip(&d) {
                *p -= self.lr * d;
            }
        }
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

struct AdamOracle {
    c: AdamConfig,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    t: Vec<i32>,
}

impl AdamOracle {
    fn new(c: AdamConfig) -> AdamOracle {
        AdamOracle {
            c,
            m: vec![Vec::new(); 4],
            v: vec![Vec::new(); 4],
            t: vec![0; 4],
        }
    }
}

impl Oracle for AdamOracle {
    fn step(&mut self, params: &mut [Vec<f64>], grads: &[Option<Vec<f64>>]) {
        let c = self.c;
        let (b1, b2) = c.betas;
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let Some(g) = g else { continue };
            if self.t[k] == 0 {
                self.m[k] = vec![0.0; p.len()];
                self.v[k] = vec![0.0; p.len()];
            }
            self.t[k] += 1;
            let t = self.t[k];
            for i in 0..p.len() {
                let mut gi = g[i];
                if c.decoupled {
                    p[i] *= 1.0 - c.lr * c.weight_decay;
                } else {
                    gi += c.weight_decay * p[i];
                }
                self.m[k][i] = b1 * self.m[k][i] + (1.0 - b1) * gi;
                self.v[k][i] = b2 * self.v[k][i] + (1.0 - b2) * gi * gi;
                let m_hat = self.m[k][i] / (1.0 - b1.powi(t));
                let v_hat = self.v[k][i] / (1.0 - b2.powi(t));
                p[i] -= c.lr * m_hat / (v_hat.sqrt() + c.eps);
            }
        }
    }
    fn set_lr(&mut self, lr: f64) {
        self.c.lr = lr;
    }
}

/// Run `opt` and `oracle` side by side over the plans; after every step each parameter must
/// match the oracle, and a parameter without a gradient must be bit-for-bit unchanged.
fn against_oracle(name: &str, opt: &mut dyn Optimizer, oracle: &mut dyn Oracle, plans: &[Plan]) {
    let mut pr = problem();
    let start = to_f64(&values(&pr));
    let mut expected = start.clone();
    for (s, &plan) in plans.iter().enumerate() {
        if let Some(lr) = plan.lr {
            opt.set_lr(lr);
            assert_eq!(opt.lr(), lr, "{name}: lr() after set_lr");
            oracle.set_lr(lr);
        }
        let grads = gradients(&mut pr, s, plan);
        let before = values(&pr);
        oracle.step(&mut expected, &grads);
        opt.step(&mut pr.g.params);
        let after = values(&pr);
        for k in 0..4 {
            if grads[k].is_none() {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&after[k]),
                    bits(&before[k]),
                    "{name}: step {s}: parameter {k} has no gradient, yet changed"
                );
            }
            for (i, (&a, &e)) in after[k].iter().zip(&expected[k]).enumerate() {
                let err = (a as f64 - e).abs();
                assert!(
                    err <= 2e-6 * (1.0 + e.abs()),
                    "{name}: step {s}: parameter {k}[{i}] = {a}, PyTorch's rule gives {e} (|diff| {err:e})"
                );
            }
        }
    }
    // the run moved every parameter far beyond the tolerance (the comparison means something)
    for k in 0..4 {
        let moved = expected[k]
            .iter()
            .zip(&start[k])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(moved > 1e-3, "{name}: parameter {k} moved only {moved:e}");
    }
}

/// Six steps with changing gradients; p gets no gradient at step 2, q none at steps 0 and 3.
const PLANS: [Plan; 6] = [
    Plan { q: false, ..ALL },
    ALL,
    Plan { p: false, ..ALL },
    Plan { q: false, ..ALL },
    ALL,
    ALL,
];

fn sgd(c: SgdConfig) -> (Sgd, SgdOracle) {
    (
        Sgd::new(problem().ids.to_vec(), c).unwrap(),
        SgdOracle::new(c),
    )
}

fn adam(c: AdamConfig) -> (Adam, AdamOracle) {
    (Adam::new(problem().ids.to_vec(), c), AdamOracle::new(c))
}

#[test]
fn sgd_plain() {
    let c = SgdConfig {
        lr: 0.1,
        ..Default::default()
    };
    let (mut o, mut r) = sgd(c);
    against_oracle("sgd", &mut o, &mut r, &PLANS);
}

#[test]
fn sgd_momentum() {
    let c = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..Default::default()
    };
    let (mut o, mut r) = sgd(c);
    against_oracle("sgd momentum", &mut o, &mut r, &PLANS);
}

#[test]
fn sgd_momentum_dampening() {
    let c = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        dampening: 0.3,
        ..Default::default()
    };
    let (mut o, mut r) = sgd(c);
    against_oracle("sgd momentum dampening", &mut o, &mut r, &PLANS);
}

#[test]
fn sgd_nesterov() {
    let c = SgdConfig {
        lr: 0.05,
        momentum: 0.8,
        nesterov: true,
        ..Default::default()
    };
    let (mut o, mut r) = sgd(c);
    against_oracle("sgd nesterov", &mut o, &mut r, &PLANS);
}

#[test]
fn sgd_weight_decay() {
    let c = SgdConfig {
        lr: 0.1,
        weight_decay: 0.05,
        ..Default::default()
    };
    let (mut o, mut r) = sgd(c);
    against_oracle("sgd weight decay", &mut o, &mut r, &PLANS);
}

#[test]
fn sgd_everything() {
    let c = SgdConfig {
        lr: 0.05,
        momentum: 0.7,
        dampening: 0.1,
        weight_decay: 0.02,
        nesterov: false,
    };
    let (mut o, mut r) = sgd(c);
    against_oracle(
        "sgd momentum dampening weight decay",
        &mut o,
        &mut r,
        &PLANS,
    );
    let c = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 0.02,
        nesterov: true,
    };
    let (mut o, mut r) = sgd(c);
    against_oracle("sgd nesterov weight decay", &mut o, &mut r, &PLANS);
}

#[test]
fn sgd_rejects_nesterov_without_momentum_or_with_dampening() {
    // PyTorch: "Nesterov momentum requires a momentum and zero dampening"
    let ids = problem().ids.to_vec();
    let bad = [
        SgdConfig {
            nesterov: true,
            ..Default::default()
        },
        SgdConfig {
            nesterov: true,
            momentum: 0.9,
            dampening: 0.1,
            ..Default::default()
        },
    ];
    for c in bad {
        let err = Sgd::new(ids.clone(), c)
            .err()
            .unwrap_or_else(|| panic!("{c:?} was accepted"));
        assert!(err.to_string().contains("Nesterov"), "message: {err}");
    }
    assert!(Sgd::new(
        ids,
        SgdConfig {
            nesterov: true,
            momentum: 0.9,
            ..Default::default()
        }
    )
    .is_ok());
}

#[test]
fn adam_default_betas_and_eps() {
    let c = AdamConfig {
        lr: 1e-2,
        ..Default::default()
    };
    let (mut o, mut r) = adam(c);
    against_oracle("adam", &mut o, &mut r, &PLANS);
}

#[test]
fn adam_weight_decay_and_other_hyperparameters() {
    let c = AdamConfig {
        lr: 2e-2,
        betas: (0.8, 0.99),
        eps: 1e-6,
        weight_decay: 0.1,
        decoupled: false,
    };
    let (mut o, mut r) = adam(c);
    against_oracle("adam weight decay", &mut o, &mut r, &PLANS);
}

#[test]
fn adamw() {
    let c = AdamConfig {
        lr: 1e-2,
        weight_decay: 0.1,
        ..AdamConfig::adamw()
    };
    let (mut o, mut r) = adam(c);
    against_oracle("adamw", &mut o, &mut r, &PLANS);
    let c = AdamConfig {
        lr: 1e-2,
        ..AdamConfig::adamw()
    };
    let (mut o, mut r) = adam(c);
    against_oracle("adamw default decay", &mut o, &mut r, &PLANS);
}

#[test]
fn defaults_are_pytorchs() {
    let a = AdamConfig::default();
    assert_eq!(
        (a.lr, a.betas, a.eps, a.weight_decay, a.decoupled),
        (1e-3, (0.9, 0.999), 1e-8, 0.0, false)
    );
    let w = AdamConfig::adamw();
    assert_eq!(
        (w.lr, w.betas, w.eps, w.weight_decay, w.decoupled),
        (1e-3, (0.9, 0.999), 1e-8, 1e-2, true)
    );
    let s = SgdConfig::default();
    assert_eq!(
        (s.momentum, s.dampening, s.weight_decay, s.nesterov),
        (0.0, 0.0, 0.0, false)
    );
}

#[test]
fn set_lr_takes_effect() {
    let mut plans = PLANS;
    plans[2].lr = Some(0.2);
    plans[4].lr = Some(0.001);
    let (mut o, mut r) = sgd(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..Default::default()
    });
    against_oracle("sgd with lr changes", &mut o, &mut r, &plans);
    plans[2].lr = Some(0.05);
    let (mut o, mut r) = adam(AdamConfig {
        lr: 1e-2,
        ..Default::default()
    });
    against_oracle("adam with lr changes", &mut o, &mut r, &plans);
    let (mut o, mut r) = adam(AdamConfig {
        lr: 1e-2,
        ..AdamConfig::adamw()
    });
    against_oracle("adamw with lr changes", &mut o, &mut r, &plans);
}

/// The first step's update of an Adam parameter is lr * sign(g) (for |g| >> eps), whatever the
/// gradient's size: a closed-form check that needs no oracle.
#[test]
fn adam_first_step_is_lr_times_sign() {
    let mut pr = problem();
    let lr = 0.01;
    let mut opt = Adam::new(
        pr.ids.to_vec(),
        AdamConfig {
            lr,
            ..Default::default()
        },
    );
    let grads = gradients(&mut pr, 0, ALL);
    let before = values(&pr);
    opt.step(&mut pr.g.params);
    let after = values(&pr);
    for k in 0..4 {
        for i in 0..before[k].len() {
            let g = grads[k].as_ref().unwrap()[i];
            let step = (before[k][i] - after[k][i]) as f64;
            let want = lr * g.signum() * g.abs() / (g.abs() + 1e-8);
            assert!(
                (step - want).abs() < 1.5e-7,
                "param {k}[{i}]: step {step}, expected {want}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// state round trip

/// Plans for the round trip: q first gets a gradient after the checkpoint at step 4, so its
/// state is still empty when saved; p skips a step before it.
const RESUME_PLANS: [Plan; 8] = [
    Plan { q: false, ..ALL },
    Plan { q: false, ..ALL },
    Plan {
        p: false,
        q: false,
        lr: None,
    },
    Plan { q: false, ..ALL },
    ALL,
    Plan { p: false, ..ALL },
    ALL,
    ALL,
];
const CHECKPOINT: usize = 4;

/// Builds an optimizer over the given parameters.
type MakeOptimizer = dyn Fn(Vec<ParamId>) -> Box<dyn Optimizer>;

fn run(pr: &mut Problem, opt: &mut dyn Optimizer, steps: std::ops::Range<usize>) {
    for s in steps {
        gradients(pr, s, RESUME_PLANS[s]);
        opt.step(&mut pr.g.params);
    }
}

fn bits(pr: &Problem) -> Vec<Vec<u32>> {
    values(pr)
        .iter()
        .map(|v| v.iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// An uninterrupted run, against one that stops at the checkpoint, keeps only the parameter
/// values and `state()`, and continues with a new problem and a new optimizer after `load_state`.
/// With `used`, the optimizer that loads the state has already taken steps of its own (rolling
/// back to a checkpoint): as with PyTorch's `load_state_dict`, the loaded state replaces its own.
fn resume_is_bit_identical(name: &str, used: bool, make: &MakeOptimizer) {
    let n = RESUME_PLANS.len();
    let mut a = problem();
    let mut opt_a = make(a.ids.to_vec());
    run(&mut a, opt_a.as_mut(), 0..n);

    let mut b = problem();
    let mut opt_b = make(b.ids.to_vec());
    run(&mut b, opt_b.as_mut(), 0..CHECKPOINT);
    let saved_values = values(&b);
    let saved_state = opt_b.state(&b.g.params);
    drop(opt_b);
    drop(b);

    let mut c = problem();
    for (&id, v) in c.ids.iter().zip(&saved_values) {
        let shape = c.g.params.shape(id).to_vec();
        c.g.params
            .set(id, &Tensor::new(&shape, v.clone()).unwrap())
            .unwrap();
    }
    let mut opt_c = make(c.ids.to_vec());
    if used {
        run(&mut problem(), opt_c.as_mut(), 0..n);
    }
    opt_c
        .load_state(&saved_state, &c.g.params)
        .unwrap_or_else(|e| panic!("{name}: load_state: {e}"));
    assert_eq!(
        opt_c.state(&c.g.params),
        saved_state,
        "{name}: state() after load_state differs from what was loaded"
    );
    run(&mut c, opt_c.as_mut(), CHECKPOINT..n);

    assert_eq!(
        bits(&c),
        bits(&a),
        "{name}: resumed run differs from the uninterrupted run"
    );
    assert_eq!(
        opt_c.state(&c.g.params),
        opt_a.state(&a.g.params),
        "{name}: optimizer state differs after the resumed run"
    );
    // and resuming without the state would not have matched (the state carries information)
    let mut d = problem();
    for (&id, v) in d.ids.iter().zip(&saved_values) {
        d.g.params.value_mut(id).copy_from_slice(v);
    }
    let mut opt_d = make(d.ids.to_vec());
    run(&mut d, opt_d.as_mut(), CHECKPOINT..n);
    assert_ne!(
        bits(&d),
        bits(&a),
        "{name}: a fresh optimizer gave the same result, so this test shows nothing"
    );
}

#[test]
fn adam_state_round_trip() {
    resume_is_bit_identical("adam", false, &|ids| {
        Box::new(Adam::new(
            ids,
            AdamConfig {
                lr: 1e-2,
                weight_decay: 0.01,
                ..Default::default()
            },
        ))
    });
}

#[test]
fn adamw_state_round_trip() {
    resume_is_bit_identical("adamw", false, &|ids| {
        Box::new(Adam::new(
            ids,
            AdamConfig {
                lr: 1e-2,
                ..AdamConfig::adamw()
            },
        ))
    });
}

#[test]
fn sgd_state_round_trip() {
    resume_is_bit_identical("sgd nesterov", false, &|ids| {
        Box::new(
            Sgd::new(
                ids,
                SgdConfig {
                    lr: 0.05,
                    momentum: 0.9,
                    nesterov: true,
                    weight_decay: 0.01,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    });
    resume_is_bit_identical("sgd dampening", false, &|ids| {
        Box::new(
            Sgd::new(
                ids,
                SgdConfig {
                    lr: 0.05,
                    momentum: 0.5,
                    dampening: 0.5,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    });
}

#[test]
fn adam_state_loads_into_a_used_optimizer() {
    resume_is_bit_identical("adam", true, &|ids| {
        Box::new(Adam::new(
            ids,
            AdamConfig {
                lr: 1e-2,
                weight_decay: 0.01,
                ..Default::default()
            },
        ))
    });
}

#[test]
fn adamw_state_loads_into_a_used_optimizer() {
    resume_is_bit_identical("adamw", true, &|ids| {
        Box::new(Adam::new(
            ids,
            AdamConfig {
                lr: 1e-2,
                ..AdamConfig::adamw()
            },
        ))
    });
}

#[test]
fn sgd_state_loads_into_a_used_optimizer() {
    resume_is_bit_identical("sgd nesterov", true, &|ids| {
        Box::new(
            Sgd::new(
                ids,
                SgdConfig {
                    lr: 0.05,
                    momentum: 0.9,
                    nesterov: true,
                    weight_decay: 0.01,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    });
    resume_is_bit_identical("sgd dampening", true, &|ids| {
        Box::new(
            Sgd::new(
                ids,
                SgdConfig {
                    lr: 0.05,
                    momentum: 0.5,
                    dampening: 0.5,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    });
}

#[test]
fn load_state_rejects_state_of_another_optimizer() {
    let ids = problem().ids.to_vec();
    let mut pr = problem();
    let mut sgd = Sgd::new(
        ids.clone(),
        SgdConfig {
            momentum: 0.9,
            ..Default::default()
        },
    )
    .unwrap();
    let mut adam = Adam::new(ids.clone(), AdamConfig::default());
    gradients(&mut pr, 0, ALL);
    sgd.step(&mut pr.g.params);
    adam.step(&mut pr.g.params);
    assert!(Adam::new(ids.clone(), AdamConfig::default())
        .load_state(&sgd.state(&pr.g.params), &pr.g.params)
        .is_err());
    assert!(Sgd::new(ids.clone(), SgdConfig::default())
        .unwrap()
        .load_state(&adam.state(&pr.g.params), &pr.g.params)
        .is_err());
    // a state for fewer parameters
    assert!(Adam::new(ids.clone(), AdamConfig::default())
        .load_state(&adam.state(&pr.g.params)[3..], &pr.g.params)
        .is_err());
}

#[test]
fn failed_load_state_leaves_the_optimizer_unchanged() {
    // a state whose last entry is bad must be rejected before anything is replaced
    // (PyTorch's load_state_dict validates the whole dict before it updates the state)
    let makers: [(&str, &MakeOptimizer); 2] = [
        ("adam", &|ids| {
            Box::new(Adam::new(
                ids,
                AdamConfig {
                    lr: 1e-2,
                    ..Default::default()
                },
            ))
        }),
        ("sgd", &|ids| {
            Box::new(
                Sgd::new(
                    ids,
                    SgdConfig {
                        lr: 0.05,
                        momentum: 0.9,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        }),
    ];
    for (name, make) in makers {
        let mut pr = problem();
        let mut opt = make(pr.ids.to_vec());
        run(&mut pr, opt.as_mut(), 0..3);
        let own = opt.state(&pr.g.params);
        // another run's state (different values), with its last entry renamed
        let mut other_pr = problem();
        let mut other = make(other_pr.ids.to_vec());
        run(&mut other_pr, other.as_mut(), 0..RESUME_PLANS.len());
        let other_state = other.state(&other_pr.g.params);
        assert_ne!(other_state, own);
        let mut bad = other_state.clone();
        bad.last_mut().unwrap().0 = "bogus".into();
        assert!(
            opt.load_state(&bad, &pr.g.params).is_err(),
            "{name}: a state with a bogus key was accepted"
        );
        // a buffer that does not fit its parameter (silently cut short otherwise)
        let mut short = other_state;
        short[0].1.pop();
        let err = opt
            .load_state(&short, &pr.g.params)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&short[0].0), "{name}: {err}");
        assert_eq!(
            opt.state(&pr.g.params),
            own,
            "{name}: a failed load_state changed the optimizer's state"
        );
    }
}
