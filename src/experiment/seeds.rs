//! An experiment's numbers over seeds: each arm's metrics at each seed, their summaries (mean,
//! standard deviation, 95% interval) for `results.json`'s `"summary"` and the table, and the
//! sentences that compare two arms, paired by seed, with the t-test's verdict in words.

use super::statistics::{paired_t_test, PairedTest, Summary};
use serde_json::Value;
use std::collections::BTreeMap;

/// The significance level of every comparison (two-sided).
pub const ALPHA: f64 = 0.05;

/// Each arm's metrics at each seed (NaN where a run has no value, e.g. it diverged).
#[derive(Clone, Debug, Default)]
pub struct Observations {
    seeds: Vec<u64>,
    values: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
}

impl Observations {
    /// No observations yet, for these seeds.
    pub fn new(seeds: &[u64]) -> Observations {
        Observations {
            seeds: seeds.to_vec(),
            values: BTreeMap::new(),
        }
    }

    /// How many seeds.
    pub fn seeds(&self) -> usize {
        self.seeds.len()
    }

    /// Record `arm`'s `metric` at the `s`-th seed; None for a run without a value.
    pub fn record(&mut self, s: usize, arm: &str, metric: &str, value: Option<f64>) {
        let n = self.seeds.len();
        let v = self
            .values
            .entry(arm.to_string())
            .or_default()
            .entry(metric.to_string())
            .or_insert_with(|| vec![f64::NAN; n]);
        v[s] = value.unwrap_or(f64::NAN);
    }

    /// The values of `arm`'s `metric` by seed (NaN: none); empty when never recorded.
    pub fn values(&self, arm: &str, metric: &str) -> &[f64] {
        self.values
            .get(arm)
            .and_then(|m| m.get(metric))
            .map_or(&[], Vec::as_slice)
    }

    /// The summary of `arm`'s `metric` over the seeds that have a value.
    pub fn summary(&self, arm: &str, metric: &str) -> Option<Summary> {
        Summary::of(self.values(arm, metric))
    }

    /// `{arm: {metric: {"mean", "std", "ci95", "n"}}}`, null for a metric no seed has.
    pub fn summary_json(&self) -> Value {
        let mut arms = serde_json::Map::new();
        for (arm, metrics) in &self.values {
            let mut m = serde_json::Map::new();
            for (metric, v) in metrics {
                m.insert(
                    metric.clone(),
                    serde_json::to_value(Summary::of(v)).expect("a summary serialises"),
                );
            }
            arms.insert(arm.clone(), Value::Object(m));
        }
        Value::Object(arms)
    }

    /// A table cell: `mean ± half-width` (just the value for one seed) times `scale`, with
    /// `decimals`, and how many seeds had no value; `none` when no seed had one.
    pub fn cell(&self, arm: &str, metric: &str, scale: f64, decimals: usize, none: &str) -> String {
        let v = self.values(arm, metric);
        match Summary::of(v) {
            None => none.to_string(),
            Some(s) if s.n < v.len() => format!(
                "{} ({} of {} {none})",
                s.text(scale, decimals),
                v.len() - s.n,
                v.len()
            ),
            Some(s) => s.text(scale, decimals),
        }
    }

    /// The paired two-sided t-test of arm `a` against arm `b` on `metric`.
    pub fn compare(&self, a: &str, b: &str, metric: &str) -> Option<PairedTest> {
        paired_t_test(self.values(a, metric), self.values(b, metric))
    }

    /// How `a` stands against `b` on `metric`: what the seeds allow one to say.
    pub fn verdict(&self, a: &str, b: &str, metric: &str) -> Verdict {
        let (sa, sb) = (self.summary(a, metric), self.summary(b, metric));
        let (Some(sa), Some(sb)) = (sa, sb) else {
            return Verdict::Missing;
        };
        if self.seeds.len() < 2 {
            return Verdict::OneSeed {
                difference: sa.mean - sb.mean,
            };
        }
        match self.compare(a, b, metric) {
            None => Verdict::Missing,
            Some(t) if t.significant(ALPHA) => Verdict::Significant(t),
            Some(t) => Verdict::NotSignificant(t),
        }
    }

    /// One sentence comparing `a` with `b` on `metric`: both arms' values (`scale` times,
    /// `decimals`, then `unit`), their difference and whether it is significant, in words.
    /// `names` are the arms as the sentence calls them.
    #[allow(clippy::too_many_arguments)]
    pub fn sentence(
        &self,
        what: &str,
        (a, a_name): (&str, &str),
        (b, b_name): (&str, &str),
        metric: &str,
        scale: f64,
        decimals: usize,
        unit: &str,
    ) -> String {
        let cell = |arm| self.cell(arm, metric, scale, decimals, "no value");
        // a difference of two percentages is in points, not percent
        let d_unit = if unit == "%" { " points" } else { unit };
        let head = format!(
            "{what}: {a_name} {}{unit}, {b_name} {}{unit}",
            cell(a),
            cell(b)
        );
        match self.verdict(a, b, metric) {
            Verdict::Missing => format!(
                "{head}; too few seeds have a value for both to compare them."
            ),
            Verdict::OneSeed { difference } => format!(
                "{head}: a difference of {:+.decimals$}{d_unit} from one seed, which cannot tell a finding from noise (run with --seeds 5 or more).",
                difference * scale
            ),
            Verdict::Significant(t) => format!(
                "{head}: the difference of {:+.decimals$}{d_unit} ({a_name} minus {b_name}) is significant (paired t-test over {} seeds, {}).",
                t.mean_difference * scale,
                t.n,
                p_text(t.p)
            ),
            Verdict::NotSignificant(t) => format!(
                "{head}: the difference of {:+.decimals$}{d_unit} is not significant (paired t-test over {} seeds, {}); these seeds do not tell the two apart.",
                t.mean_difference * scale,
                t.n,
                p_text(t.p)
            ),
        }
    }
}

/// What the seeds say about a difference between two arms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// One of the arms has no value at any seed, or no seed has both.
    Missing,
    /// One seed: a difference, but no test.
    OneSeed {
        /// a − b.
        difference: f64,
    },
    /// Significant at [`ALPHA`].
    Significant(PairedTest),
    /// Not significant at [`ALPHA`].
    NotSignificant(PairedTest),
}

impl Verdict {
    /// Whether the data support "a is larger than b": significantly so over seeds, or (one
    /// seed) in that run, which the caller must say is one run.
    pub fn a_larger(&self) -> bool {
        match self {
            Verdict::OneSeed { difference } => *difference > 0.0,
            Verdict::Significant(t) => t.mean_difference > 0.0,
            _ => false,
        }
    }

    /// Whether the data support "a is smaller than b" (as [`Verdict::a_larger`]).
    pub fn a_smaller(&self) -> bool {
        match self {
            Verdict::OneSeed { difference } => *difference < 0.0,
            Verdict::Significant(t) => t.mean_difference < 0.0,
            _ => false,
        }
    }

    /// Words for how sure that is: "in this one run", "significantly (p = 0.003)", or "".
    pub fn how_sure(&self) -> String {
        match self {
            Verdict::OneSeed { .. } => "in this one run".into(),
            Verdict::Significant(t) => {
                format!("significantly over {} seeds ({})", t.n, p_text(t.p))
            }
            Verdict::NotSignificant(t) => {
                format!("not significantly over {} seeds ({})", t.n, p_text(t.p))
            }
            Verdict::Missing => "untested (too few values)".into(),
        }
    }
}

/// "seed 0", or "each run at seeds 0, 1, 2" for the protocol.
pub fn seeds_text(seeds: &[u64]) -> String {
    let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
    if seeds.len() == 1 {
        format!("seed {}", list[0])
    } else {
        format!("each run at {} seeds ({})", seeds.len(), list.join(", "))
    }
}

/// "p = 0.034", or "p < 0.001".
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

/// `results.json`: with one seed, that seed's result as it always was; with more,
/// `{"seeds", "runs": {"<seed>": result}, "summary"}`.
pub fn results_json(seeds: &[u64], per_seed: Vec<Value>, obs: &Observations) -> Value {
    if seeds.len() == 1 {
        return per_seed.into_iter().next().expect("one seed's result");
    }
    let runs: serde_json::Map<String, Value> =
        seeds.iter().map(|s| s.to_string()).zip(per_seed).collect();
    serde_json::json!({
        "seeds": seeds,
        "runs": runs,
        "summary": obs.summary_json(),
    })
}

/// The mean over seeds of the values at each position of the seeds' curves (a curve cut short,
/// by divergence, counts only where it has points). `curves[s]` is seed `s`'s curve.
pub fn mean_curve(curves: &[Vec<(f64, f64)>]) -> Vec<(f64, f64)> {
    let longest = curves.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .map(|i| {
            let at: Vec<(f64, f64)> = curves.iter().filter_map(|c| c.get(i).copied()).collect();
            let ys: Vec<f64> = at.iter().map(|p| p.1).filter(|y| y.is_finite()).collect();
            let y = if ys.is_empty() {
                f64::NAN
            } else {
                ys.iter().sum::<f64>() / ys.len() as f64
            };
            (at[0].0, y)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_follow_the_test() {
        let mut o = Observations::new(&[0, 1, 2, 3, 4]);
        // a is b plus 0.01 with a little noise: significant; c is b with noise of both signs
        let b = [0.90, 0.91, 0.92, 0.89, 0.90];
        let noise = [0.001, -0.002, 0.0015, 0.0, -0.001];
        for s in 0..5 {
            o.record(s, "a", "acc", Some(b[s] + 0.01 + noise[s]));
            o.record(s, "b", "acc", Some(b[s]));
            o.record(s, "c", "acc", Some(b[s] + noise[s]));
        }
        let sig = o.sentence("accuracy", ("a", "A"), ("b", "B"), "acc", 100.0, 2, "%");
        assert!(sig.contains(" is significant"), "{sig}");
        assert!(o.verdict("a", "b", "acc").a_larger());
        let not = o.sentence("accuracy", ("c", "C"), ("b", "B"), "acc", 100.0, 2, "%");
        assert!(not.contains("is not significant"), "{not}");
        assert!(not.contains("do not tell the two apart"), "{not}");
        assert!(!o.verdict("c", "b", "acc").a_larger() && !o.verdict("c", "b", "acc").a_smaller());
        // one seed: no test, and the sentence says so
        let mut one = Observations::new(&[7]);
        one.record(0, "a", "acc", Some(0.9784));
        one.record(0, "b", "acc", Some(0.9770));
        let s = one.sentence("accuracy", ("a", "A"), ("b", "B"), "acc", 100.0, 2, "%");
        assert!(s.contains("one seed") && s.contains("97.84%"), "{s}");
        assert!(one.verdict("a", "b", "acc").a_larger());
    }

    #[test]
    fn a_diverged_seed_is_counted_and_left_out() {
        let mut o = Observations::new(&[0, 1, 2]);
        o.record(0, "a", "acc", Some(0.5));
        o.record(1, "a", "acc", None);
        o.record(2, "a", "acc", Some(0.7));
        let s = o.summary("a", "acc").unwrap();
        assert_eq!((s.n, s.mean), (2, 0.6));
        assert_eq!(
            o.cell("a", "acc", 1.0, 2, "diverged"),
            format!("{} (1 of 3 diverged)", s.text(1.0, 2))
        );
        let j = o.summary_json();
        assert_eq!(j["a"]["acc"]["n"], 2);
    }

    #[test]
    fn one_seed_keeps_the_result_as_it_was_and_more_add_runs_and_summary() {
        let mut o = Observations::new(&[3]);
        o.record(0, "a", "acc", Some(1.0));
        let r = serde_json::json!({"a": 1});
        assert_eq!(results_json(&[3], vec![r.clone()], &o), r);
        let mut o = Observations::new(&[3, 5]);
        o.record(0, "a", "acc", Some(1.0));
        o.record(1, "a", "acc", Some(0.0));
        let j = results_json(&[3, 5], vec![r.clone(), r.clone()], &o);
        assert_eq!(j["seeds"], serde_json::json!([3, 5]));
        assert_eq!(j["runs"]["5"], r);
        assert_eq!(j["summary"]["a"]["acc"]["mean"], 0.5);
    }
}
