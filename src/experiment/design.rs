//! An experiment as a design: a list of runs (an arm, a learning rate, a batch size...)
//! repeated at every seed, each run independent of the others and deterministic at its seed.
//! That is what lets the runs go side by side on threads, be spread over the machines of a
//! job array (`--shard`, [`super::shard`]) and be put back together bit for bit: the outcome
//! is made from the runs' results alone.

use super::outcome::Outcome;
use super::parallel::{run_all_reporting, Job};
use crate::data::Dataset;
use crate::{Error, Result};
use serde_json::Value;
use std::time::Instant;

/// One experiment's runs and how their results become an [`Outcome`].
pub trait Design: Sync {
    /// The command's name (`ioffe2015`).
    fn name(&self) -> &'static str;
    /// The options as JSON, recorded with a shard and compared by the merge.
    fn options(&self) -> Value;
    /// The names of the runs done at each seed, in the order they start.
    fn runs(&self) -> Vec<String>;
    /// Do run `run` (an index into [`Design::runs`]) at `seed`; its result as JSON.
    fn run(&self, run: usize, seed: u64, train: &Dataset, test: &Dataset) -> Result<Value>;
    /// The outcome of all runs: `results[s][r]` is run `r` at `seeds[s]`; `seconds` the
    /// experiment's wall-clock time.
    fn outcome(&self, seeds: &[u64], results: &[Vec<Value>], seconds: f64) -> Result<Outcome>;
}

/// One run's place in an experiment: its name and seed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct RunId {
    /// The run's name, one of [`Design::runs`].
    pub run: String,
    /// Its seed.
    pub seed: u64,
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {} at seed {}", self.run, self.seed)
    }
}

/// A run done: where it belongs, its result and its seconds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    /// Which run.
    #[serde(flatten)]
    pub id: RunId,
    /// Its wall-clock seconds.
    pub seconds: f64,
    /// Its result, as [`Design::run`] gave it.
    pub result: Value,
}

/// Every run of `d` over `seeds`, seed by seed, in the order [`run_ids`] gives them.
pub fn run_ids(d: &dyn Design, seeds: &[u64]) -> Vec<RunId> {
    let runs = d.runs();
    seeds
        .iter()
        .flat_map(|&seed| {
            runs.iter().map(move |r| RunId {
                run: r.clone(),
                seed,
            })
        })
        .collect()
}

/// Do the runs `ids` of `d` side by side, calling `done(finished, of)` as each ends.
pub fn do_runs(
    d: &dyn Design,
    ids: &[RunId],
    train: &Dataset,
    test: &Dataset,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<RunResult>> {
    let names = d.runs();
    let mut jobs: Vec<Job<Value>> = vec![];
    for id in ids {
        let r = names
            .iter()
            .position(|n| *n == id.run)
            .ok_or_else(|| Error::Invalid(format!("{}: no such run in {}", id, d.name())))?;
        let seed = id.seed;
        jobs.push(Box::new(move || d.run(r, seed, train, test)));
    }
    let results = run_all_reporting(jobs, done)?;
    Ok(ids
        .iter()
        .zip(results)
        .map(|(id, (result, seconds))| RunResult {
            id: id.clone(),
            seconds,
            result,
        })
        .collect())
}

/// The outcome of `d` from its runs' results, which must be every run at every seed exactly
/// once (in any order); `seconds` the experiment's time.
pub fn assemble(
    d: &dyn Design,
    seeds: &[u64],
    mut done: Vec<RunResult>,
    seconds: f64,
) -> Result<Outcome> {
    done.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(w) = done.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(Error::Invalid(format!("{} is present twice", w[0].id)));
    }
    let mut grid = vec![];
    for seed in seeds {
        let mut row = vec![];
        for run in d.runs() {
            let id = RunId { run, seed: *seed };
            let i = done
                .binary_search_by(|r| r.id.cmp(&id))
                .map_err(|_| Error::Invalid(format!("{id} is missing")))?;
            row.push(done[i].result.clone());
        }
        grid.push(row);
    }
    if done.len() != grid.len() * d.runs().len() {
        let extra = done
            .iter()
            .find(|r| !seeds.contains(&r.id.seed) || !d.runs().contains(&r.id.run))
            .map_or("an unknown run".to_string(), |r| r.id.to_string());
        return Err(Error::Invalid(format!(
            "{extra} is not part of this experiment's runs"
        )));
    }
    let mut outcome = d.outcome(seeds, &grid, seconds)?;
    say_precision(d, &mut outcome);
    Ok(outcome)
}

/// An experiment run in bfloat16 says so, in results.json (`"precision": "bf16"`) and in its
/// report's protocol. Float32, the default, adds nothing (its options leave the precision out),
/// so its files are as they always were.
fn say_precision(d: &dyn Design, o: &mut Outcome) {
    if d.options()["precision"] != "bf16" {
        return;
    }
    if let Some(results) = o.results.as_object_mut() {
        results.insert("precision".into(), "bf16".into());
    }
    o.protocol.push(
        "Every run's matrix products and convolutions took bfloat16 operands and summed in \
         float32 (--precision bf16, PyTorch's autocast split); everything else was float32."
            .into(),
    );
}

/// Run every run of `d` at every seed and make its outcome; `done(finished, of)` after each.
pub fn run_design(
    d: &dyn Design,
    seeds: &[u64],
    train: &Dataset,
    test: &Dataset,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Result<Outcome> {
    let started = Instant::now();
    let ids = run_ids(d, seeds);
    let results = do_runs(d, &ids, train, test, done)?;
    assemble(d, seeds, results, started.elapsed().as_secs_f64())
}

/// A run's typed result from its JSON.
pub fn from_result<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T> {
    T::deserialize(v).map_err(|e| Error::Invalid(format!("a run's result does not read back: {e}")))
}

/// Every run's typed result: `results[s][r]` read back as `T` (see [`from_result`]).
pub fn from_results<T: serde::de::DeserializeOwned>(results: &[Vec<Value>]) -> Result<Vec<Vec<T>>> {
    results
        .iter()
        .map(|row| row.iter().map(from_result).collect())
        .collect()
}

/// A run's typed result as JSON.
pub fn to_result<T: serde::Serialize>(t: &T) -> Result<Value> {
    serde_json::to_value(t).map_err(|e| Error::Invalid(format!("a run's result: {e}")))
}

/// An experiment's options as JSON without their `seed`: the seeds are the design's, given
/// apart (`--seeds`).
pub fn without_seed<T: serde::Serialize>(o: &T) -> Value {
    let mut v = serde_json::to_value(o).expect("options serialise");
    if let Some(m) = v.as_object_mut() {
        m.remove("seed");
    }
    v
}

/// Reads a number written by serde_json, where NaN was written as null, back: null is NaN.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    let v: Option<f64> = serde::Deserialize::deserialize(d)?;
    Ok(v.unwrap_or(f64::NAN))
}

/// The seeds of `--seeds`: `N` (seeds 0 to N − 1) or a comma-separated list, no seed twice.
pub fn parse_seeds(s: &str) -> std::result::Result<Vec<u64>, String> {
    let s = s.trim();
    let seeds: Vec<u64> = if s.contains(',') {
        s.split(',')
            .map(|x| {
                x.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{:?} is not a seed (a whole number ≥ 0)", x.trim()))
            })
            .collect::<std::result::Result<_, _>>()?
    } else {
        let n: u64 = s
            .parse()
            .map_err(|_| format!("{s:?} is neither a number of seeds nor a list like 0,3,7"))?;
        if n == 0 {
            return Err("give at least one seed".into());
        }
        (0..n).collect()
    };
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("seed {} is given twice", w[0]));
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::parse_seeds;

    #[test]
    fn seeds_are_a_count_or_a_list() {
        assert_eq!(parse_seeds("3").unwrap(), [0, 1, 2]);
        assert_eq!(parse_seeds("0,3,7").unwrap(), [0, 3, 7]);
        assert_eq!(
            parse_seeds("5,").unwrap_err(),
            "\"\" is not a seed (a whole number ≥ 0)"
        );
        assert!(parse_seeds("0").unwrap_err().contains("at least one"));
        assert!(parse_seeds("1,2,1")
            .unwrap_err()
            .contains("seed 1 is given twice"));
        assert!(parse_seeds("x").unwrap_err().contains("\"x\""));
        assert!(parse_seeds("-1,2").unwrap_err().contains("\"-1\""));
    }
}
