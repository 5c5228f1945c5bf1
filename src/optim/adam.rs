//! Adam and AdamW, as torch.optim.Adam / AdamW compute them (single-tensor path).

use super::{import, restore, Optimizer};
use crate::graph::{ParamId, ParamStore};
use multiversion::multiversion;
use rayon::prelude::*;

/// Adam's and AdamW's hyperparameters, with torch.optim.Adam's defaults (see
/// [`AdamConfig::adamw`] for AdamW's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate. Default 1e-3.
    pub lr: f64,
    /// Decay of the first and second moment averages. Default (0.9, 0.999).
    pub betas: (f64, f64),
    /// Added to the denominator, outside the square root. Default 1e-8.
    pub eps: f64,
    /// Adam: L2 penalty added to the gradient; AdamW: decoupled decay of the weights.
    /// Default 0 (Adam) and 1e-2 (AdamW, as PyTorch).
    pub weight_decay: f64,
    /// true for AdamW (decoupled weight decay).
    pub decoupled: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

impl AdamConfig {
    /// AdamW's defaults (weight_decay 1e-2).
    pub fn adamw() -> AdamConfig {
        AdamConfig {
            weight_decay: 1e-2,
            decoupled: true,
            ..Default::default()
        }
    }
}

/// The per-step constants of the update.
struct UpdateConsts {
    step_size: f32,
    bc2_sqrt: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    wd: f32,
    decay: f32,
    decoupled: bool,
}

/// The update of one slice of a parameter (see `Adam::step`).
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &UpdateConsts) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if !k.decoupled && k.wd != 0.0 {
            g + k.wd * *p
        } else {
            g
        };
        if k.decoupled {
            *p *= k.decay;
        }
        *m += (g - *m) * (1.0 - k.b1); // torch: exp_avg.lerp_(grad, 1 - beta1)
        *v = *v * k.b2 + (1.0 - k.b2) * g * g;
        let denom = v.sqrt() / k.bc2_sqrt + k.eps;
        *p -= k.step_size * *m / denom;
    }
}

/// torch.optim.Adam, or AdamW with `config.decoupled`, over a fixed list of parameters.
pub struct Adam {
    /// The hyperparameters; `set_lr` changes `lr` here, and changes take effect at the next step.
    pub config: AdamConfig,
    params: Vec<ParamId>,
    /// Per parameter: exp_avg (m), exp_avg_sq (v); empty until the first step.
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    steps: Vec<u64>,
}

impl Adam {
    /// An optimizer for `params` (usually `nn::parameters(model)`), with no state until the
    /// first step.
    pub fn new(params: Vec<ParamId>, config: AdamConfig) -> Adam {
        let n = params.len();
        Adam {
            config,
            params,
            m: vec![Vec::new(); n],
            v: vec![Vec::new(); n],
            steps: vec![0; n],
        }
    }
}

impl Optimizer for Adam {
    /// For each parameter p with gradient g, at step t:
    ///   Adam:  g <- g + wd p          AdamW: p <- p (1 - lr wd)
    ///   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
    ///   p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    /// The bias corrections are computed in f64 (they are Python floats in PyTorch).
    fn step(&mut self, store: &mut ParamStore) {
        let c = self.config;
        let (b1, b2) = c.betas;
        for (k, &id) in self.params.iter().enumerate() {
            let (p, g) = store.value_and_grad(id);
            let Some(g) = g else { continue };
            if self.m[k].is_empty() {
                self.m[k] = vec![0.0; p.len()];
                self.v[k] = vec![0.0; p.len()];
            }
            self.steps[k] += 1;
            let t = self.steps[k] as i32;
            let step_size = (c.lr / (1.0 - b1.powi(t))) as f32;
            let bc2_sqrt = (1.0 - b2.powi(t)).sqrt() as f32;
            let (b1f, b2f, eps, wd) = (b1 as f32, b2 as f32, c.eps as f32, c.weight_decay as f32);
            let decay = (1.0 - c.lr * c.weight_decay) as f32;
            let consts = UpdateConsts {
                step_size,
                bc2_sqrt,
                b1: b1f,
                b2: b2f,
                eps,
                wd,
                decay,
                decoupled: c.decoupled,
            };
            let (m, v) = (&mut self.m[k], &mut self.v[k]);
            // elementwise, so any split over threads gives the same result
            const CHUNK: usize = 1 << 15;
            if p.len() <= CHUNK {
                update(p, g, m, v, &consts);
            } else {
                p.par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .zip(m.par_chunks_mut(CHUNK))
                    .zip(v.par_chunks_mut(CHUNK))
                    .for_each(|(((p, g), m), v)| update(p, g, m, v, &consts));
            }
        }
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn state(&self, _params: &ParamStore) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        for k in 0..self.params.len() {
            out.push((format!("{k}.exp_avg"), self.m[k].clone()));
            out.push((format!("{k}.exp_avg_sq"), self.v[k].clone()));
            // step counts are exact in f32 up to 2^24 steps; stored as two halves to be safe
            let s = self.steps[k];
            out.push((
                format!("{k}.step"),
                vec![(s >> 24) as f32, (s & 0xFF_FFFF) as f32],
            ));
        }
        out
    }

    fn load_state(
        &mut self,
        state: &[(String, Vec<f32>)],
        params: &ParamStore,
    ) -> crate::Result<()> {
        let n = self.params.len();
        let mut steps: Vec<Vec<f32>> = vec![Vec::new(); n];
        let mut names = Vec::new();
        let mut bufs: Vec<&mut Vec<f32>> = Vec::new();
        for ((m, v), s) in self
            .m
            .iter_mut()
            .zip(self.v.iter_mut())
            .zip(steps.iter_mut())
        {
            let k = bufs.len() / 3;
            names.extend([
                format!("{k}.exp_avg"),
                format!("{k}.exp_avg_sq"),
                format!("{k}.step"),
            ]);
            bufs.extend([m, v, s]);
        }
        let ids = &self.params;
        // per parameter: exp_avg, exp_avg_sq (checked and laid out as the parameter), step
        restore(&mut bufs, &names, state, |i, name, v| match i % 3 {
            2 => Ok(v.to_vec()),
            _ => import(params, ids[i / 3], name, v),
        })?;
        for (k, s) in steps.iter().enumerate() {
            self.steps[k] = match s.as_slice() {
                [hi, lo] => ((*hi as u64) << 24) | *lo as u64,
                _ => 0,
            };
        }
        Ok(())
    }
}
