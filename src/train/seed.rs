//! How a seed starts a model: one generator for its initialisation, and a graph whose dropout
//! generator is seeded by that generator's first draw. `bnlab train`, the experiments and the
//! tests build models this way, so that equal seeds give equal runs.

use crate::graph::Graph;
use crate::rng::Rng;

/// The graph and the initialisation generator of a model seeded with `seed`: `Rng::seed(seed)`,
/// then `Graph::new` from its first draw. Build the model's layers from the returned generator.
pub fn seeded(seed: u64) -> (Graph, Rng) {
    let mut rng = Rng::seed(seed);
    let g = Graph::new(rng.next_u64());
    (g, rng)
}
