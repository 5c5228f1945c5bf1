//! The seeded random generator behind every draw bnlab makes (initialisation, shuffling,
//! dropout). It is serialisable so that a resumed run continues the same stream.

use rand::{Rng as _, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

/// PCG-64 in its MCG variant (`rand_pcg::Pcg64Mcg`): equal seeds give the same stream on
/// every platform, and the state serialises, position included, into checkpoints.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rng(Pcg64Mcg);

impl Rng {
    /// A generator seeded from `seed`; equal seeds give equal streams.
    pub fn seed(seed: u64) -> Rng {
        Rng(Pcg64Mcg::seed_from_u64(seed))
    }

    /// A uniform draw from [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        self.0.gen::<f32>()
    }

    /// A uniform draw from [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// A draw from N(mean, std²), by Box–Muller on two uniform draws (one value per pair, so
    /// the stream's position depends only on the number of draws).
    pub fn normal(&mut self, mean: f32, std: f32) -> f32 {
        // 1 − u lies in (0, 1]: its logarithm is finite
        let u1 = 1.0 - self.0.gen::<f64>();
        let u2 = self.0.gen::<f64>();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        mean + std * z as f32
    }

    /// A uniform draw of 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.gen::<u64>()
    }

    /// Shuffle a slice in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        use rand::seq::SliceRandom;
        items.shuffle(&mut self.0);
    }
}
