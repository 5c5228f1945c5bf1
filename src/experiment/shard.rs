//! An experiment spread over the tasks of a job array: `--shard K/N` does the K-th of N
//! disjoint parts of its runs (every N-th run, so that each part gets runs of every kind) and
//! writes them to `shard.json`; [`merge`] checks that the parts belong together and are whole,
//! and makes the outcome one unsharded run makes, from the same numbers.
//!
//! `--shard auto` reads the part from the scheduler: Slurm job arrays give
//! `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_COUNT`, Kubernetes
//! Indexed Jobs `JOB_COMPLETION_INDEX` (their count is given as `--shard auto/N`). Index 0 is
//! shard 1.

use super::design::{assemble, run_ids, Design, RunId, RunResult};
use super::named::design_of;
use super::outcome::Outcome;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A shard's file name inside its folder.
pub const SHARD: &str = "shard.json";

/// The K-th (from 1) of N parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which part, from 1.
    pub index: usize,
    /// Of how many.
    pub count: usize,
}

impl Shard {
    /// The runs of this part: every `count`-th run of `all`, from the `index`-th.
    pub fn pick(&self, all: &[RunId]) -> Vec<RunId> {
        all.iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index - 1)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// `--shard`: `K/N`, `auto` (Slurm) or `auto/N` (Kubernetes), the environment read through
/// `env`; an error says what is wrong with the value or which variable is missing.
pub fn parse_shard(spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard> {
    let bad = |why: String| Error::Invalid(format!("--shard {spec}: {why}"));
    let number = |name: &str, v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| bad(format!("{name} is {v:?}, not a whole number ≥ 0")))
    };
    let var = |name: &str| {
        env(name).ok_or_else(|| bad(format!("{name} is not set (not in a job array?)")))
    };
    let (index0, count) = match spec.split_once('/') {
        Some(("auto", n)) => {
            let count = number("the count", n)?;
            (number("JOB_COMPLETION_INDEX", &var("JOB_COMPLETION_INDEX")?)?, count)
        }
        None if spec == "auto" => {
            let id = number("SLURM_ARRAY_TASK_ID", &var("SLURM_ARRAY_TASK_ID")?)?;
            let min = match env("SLURM_ARRAY_TASK_MIN") {
                Some(m) => number("SLURM_ARRAY_TASK_MIN", &m)?,
                None => 0,
            };
            let count = number("SLURM_ARRAY_TASK_COUNT", &var("SLURM_ARRAY_TASK_COUNT")?)?;
            let index0 = id.checked_sub(min).ok_or_else(|| {
                bad(format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"))
            })?;
            (index0, count)
        }
        Some((k, n)) => {
            let k = number("K", k)?;
            if k == 0 {
                return Err(bad("shards count from 1 (K/N with 1 ≤ K ≤ N)".into()));
            }
            (k - 1, number("N", n)?)
        }
        None => {
            return Err(bad(
                "give K/N (the K-th of N parts), auto (a Slurm job array) or auto/N (a Kubernetes Indexed Job)".into(),
            ))
        }
    };
    if count == 0 {
        return Err(bad("the number of parts must be at least 1".into()));
    }
    if index0 >= count {
        return Err(bad(format!(
            "part {} of {count} does not exist (index {index0} from 0)",
            index0 + 1
        )));
    }
    Ok(Shard {
        index: index0 + 1,
        count,
    })
}

/// What a shard's folder holds: enough to check it against the others and to make the
/// outcome without running anything again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardFile {
    /// The version of bnlab that ran it.
    pub bnlab: String,
    /// The experiment's name.
    pub experiment: String,
    /// Its options ([`Design::options`]).
    pub options: Value,
    /// All seeds of the experiment (not only this part's).
    pub seeds: Vec<u64>,
    /// Which part.
    pub shard: Shard,
    /// The runs of this part, done.
    pub runs: Vec<RunResult>,
}

impl ShardFile {
    /// The record of part `shard` of `d` over `seeds`, with its runs done.
    pub fn new(d: &dyn Design, seeds: &[u64], shard: Shard, runs: Vec<RunResult>) -> ShardFile {
        ShardFile {
            bnlab: env!("CARGO_PKG_VERSION").to_string(),
            experiment: d.name().to_string(),
            options: d.options(),
            seeds: seeds.to_vec(),
            shard,
            runs,
        }
    }

    /// Write it as `dir/shard.json`, atomically.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(SHARD);
        let json = serde_json::to_string_pretty(self).expect("a shard serialises");
        crate::io::write_atomic(&path, json.as_bytes())?;
        Ok(path)
    }

    /// Read `dir/shard.json`.
    pub fn read(dir: &Path) -> Result<ShardFile> {
        let path = dir.join(SHARD);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a shard of a bnlab experiment ({e})",
                path.display()
            ))
        })
    }
}

/// The first option (by name) whose value differs between `a` and `b`, with both values.
fn differing_option(a: &Value, b: &Value) -> Option<(String, String, String)> {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return (a != b).then(|| ("options".into(), a.to_string(), b.to_string()));
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().find_map(|k| {
        let (x, y) = (a.get(k), b.get(k));
        (x != y).then(|| {
            let show = |v: Option<&Value>| v.map_or("nothing".into(), Value::to_string);
            (format!("--{}", k.replace('_', "-")), show(x), show(y))
        })
    })
}

/// The outcome of the shards in `dirs`, as one unsharded run gives it: an error in one line
/// for shards of different experiments, versions, options or seeds (naming the option), a run
/// present twice (naming both folders) or a run missing (naming it).
pub fn merge(dirs: &[PathBuf]) -> Result<Outcome> {
    let Some(first_dir) = dirs.first() else {
        return Err(Error::Invalid(
            "merge: give the shards' folders (bnlab experiment merge DIR... --out DIR)".into(),
        ));
    };
    let first = ShardFile::read(first_dir)?;
    if first.seeds.is_empty() {
        return Err(Error::Invalid(format!(
            "merge: {}/{SHARD} lists no seeds",
            first_dir.display()
        )));
    }
    let mut all: Vec<(RunResult, &Path)> = vec![];
    for dir in dirs {
        let s = if dir == first_dir {
            first.clone()
        } else {
            ShardFile::read(dir)?
        };
        let (here, there) = (dir.display(), first_dir.display());
        if s.experiment != first.experiment {
            return Err(Error::Invalid(format!(
                "merge: {here} is a shard of {}, {there} of {}",
                s.experiment, first.experiment
            )));
        }
        if s.bnlab != first.bnlab {
            return Err(Error::Invalid(format!(
                "merge: {here} was made by bnlab {}, {there} by bnlab {}",
                s.bnlab, first.bnlab
            )));
        }
        if let Some((option, x, y)) = differing_option(&s.options, &first.options) {
            return Err(Error::Invalid(format!(
                "merge: {here} was run with {option} {x}, {there} with {option} {y}"
            )));
        }
        if s.seeds != first.seeds {
            return Err(Error::Invalid(format!(
                "merge: {here} was run with --seeds {}, {there} with --seeds {}",
                seed_list(&s.seeds),
                seed_list(&first.seeds)
            )));
        }
        for r in s.runs {
            if let Some((_, other)) = all.iter().find(|(o, _)| o.id == r.id) {
                return Err(Error::Invalid(format!(
                    "merge: {} is present twice, in {} and in {here}",
                    r.id,
                    other.display()
                )));
            }
            all.push((r, dir));
        }
    }
    let design = design_of(&first.experiment, &first.options, first.seeds[0])?;
    for id in run_ids(design.as_ref(), &first.seeds) {
        if !all.iter().any(|(r, _)| r.id == id) {
            return Err(Error::Invalid(format!(
                "merge: {id} is missing (no shard among the {} folders has it)",
                dirs.len()
            )));
        }
    }
    let seconds = all.iter().map(|(r, _)| r.seconds).sum();
    let runs = all.into_iter().map(|(r, _)| r).collect();
    assemble(design.as_ref(), &first.seeds, runs, seconds)
}

fn seed_list(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn shards_by_hand_and_from_the_schedulers_environment() {
        let none = env_of(&[]);
        assert_eq!(
            parse_shard("2/4", &none).unwrap(),
            Shard { index: 2, count: 4 }
        );
        for (spec, words) in [
            ("0/4", "count from 1"),
            ("5/4", "part 5 of 4"),
            ("1/0", "at least 1"),
            ("x/4", "\"x\""),
            ("4", "K/N"),
            ("auto", "SLURM_ARRAY_TASK_ID is not set"),
            ("auto/3", "JOB_COMPLETION_INDEX is not set"),
        ] {
            let e = parse_shard(spec, &none).unwrap_err().to_string();
            assert!(e.contains(words) && e.contains(spec), "{spec}: {e}");
        }
        // sbatch --array=0-3: task 2 of 4 is the third part
        let slurm = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            parse_shard("auto", &slurm).unwrap(),
            Shard { index: 3, count: 4 }
        );
        // --array=5-8: ids from 5, the minimum subtracted
        let slurm = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            parse_shard("auto", &slurm).unwrap(),
            Shard { index: 1, count: 4 }
        );
        let slurm = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(parse_shard("auto", &slurm)
            .unwrap_err()
            .to_string()
            .contains("part 5 of 4"));
        // Kubernetes: the index from 0, the count given
        let k8s = env_of(&[("JOB_COMPLETION_INDEX", "0")]);
        assert_eq!(
            parse_shard("auto/3", &k8s).unwrap(),
            Shard { index: 1, count: 3 }
        );
        let k8s = env_of(&[("JOB_COMPLETION_INDEX", "3")]);
        assert!(parse_shard("auto/3", &k8s).is_err());
    }

    #[test]
    fn the_parts_are_disjoint_and_cover_every_run() {
        let all: Vec<RunId> = (0..11)
            .map(|i| RunId {
                run: format!("r{}", i % 3),
                seed: i / 3,
            })
            .collect();
        let mut seen: Vec<RunId> = (1..=4)
            .flat_map(|k| Shard { index: k, count: 4 }.pick(&all))
            .collect();
        assert_eq!(seen.len(), all.len());
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_differing_option_is_named() {
        let a = serde_json::json!({"steps": 400, "every": 200});
        let b = serde_json::json!({"steps": 800, "every": 200});
        assert_eq!(
            differing_option(&a, &b),
            Some(("--steps".into(), "400".into(), "800".into()))
        );
        assert_eq!(differing_option(&a, &a), None);
    }
}
