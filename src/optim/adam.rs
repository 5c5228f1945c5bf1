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
#[derive(Clone, Copy)]
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
        // Every parameter's update cut into pieces of at most CHUNK values, all in one parallel
        // pass that the threads take pieces of in turn. Updating parameter after parameter, the
        // large weight's chunks ran in parallel and every small tensor after them on the
        // calling thread alone: at batch 32 (perf, AMD Zen 4) the calling thread did 63% of
        // Adam while the other waited. The update is elementwise, so any split of the values
        // gives the same result.
        const CHUNK: usize = 1 << 14;
        let mut pieces = Vec::new();
        let params = store.values_and_grads(&self.params);
        let state = self
            .m
            .iter_mut()
            .zip(self.v.iter_mut())
            .zip(self.steps.iter_mut());
        for ((p, g), ((m, v), steps)) in params.into_iter().zip(state) {
            let Some(g) = g else { continue };
            if m.is_empty() {
                *m = vec![0.0; p.len()];
                *v = vec![0.0; p.len()];
            }
            *steps += 1;
            let t = *steps as i32;
            let consts = UpdateConsts {
                step_size: (c.lr / (1.0 - b1.powi(t))) as f32,
                bc2_sqrt: (1.0 - b2.powi(t)).sqrt() as f32,
                b1: b1 as f32,
                b2: b2 as f32,
                eps: c.eps as f32,
                wd: c.weight_decay as f32,
                decay: (1.0 - c.lr * c.weight_decay) as f32,
                decoupled: c.decoupled,
            };
            let chunks = p
                .chunks_mut(CHUNK)
                .zip(g.chunks(CHUNK))
                .zip(m.chunks_mut(CHUNK))
                .zip(v.chunks_mut(CHUNK));
            pieces.extend(chunks.map(|(((p, g), m), v)| (p, g, m, v, consts)));
        }
        if pieces.len() == 1 || crate::runtime::threads() == 1 {
            pieces
                .into_iter()
                .for_each(|(p, g, m, v, k)| update(p, g, m, v, &k));
        } else {
            pieces
                .into_par_iter()
                .with_max_len(1)
                .for_each(|(p, g, m, v, k)| update(p, g, m, v, &k));
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
