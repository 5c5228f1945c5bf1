//! Where a command's data comes from: --data-dir, the repository's copy of MNIST, or a cache
//! folder that missing files are downloaded into.

use super::args::{ModeName, TrainOptions};
use super::run_folder::STANDARDIZE;
use bnlab::data::table::{self, Standardizer};
use bnlab::data::{self, Dataset, DatasetKind, Split};
use bnlab::{Error, Result};
use std::path::{Path, PathBuf};

// MNIST as shipped in this repository, so that a fresh clone trains offline.
use bnlab::data::BUNDLED_MNIST;

/// The folder to read `kind` from. An explicit --data-dir must hold the files (for CIFAR-10,
/// directly or in its `cifar-10-batches-bin` subfolder); otherwise the bundled MNIST, else the
/// cache folder (downloading what is missing; the mirrors can be set with the dataset's
/// environment variable, e.g. BNLAB_MNIST_MIRROR or BNLAB_CIFAR10_MIRROR).
pub fn data_dir(kind: DatasetKind, explicit: Option<&Path>, splits: &[Split]) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        if !dir.is_dir() {
            return Err(Error::Invalid(format!(
                "--data-dir {}: no such folder",
                dir.display()
            )));
        }
        // only the files of the splits this command reads (eval needs no training set)
        let wanted: Vec<&str> = splits
            .iter()
            .flat_map(|&s| kind.split_files(s).iter().copied())
            .collect();
        let missing: Vec<&str> = data::missing_files(kind, dir)
            .into_iter()
            .filter(|f| wanted.contains(f))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Invalid(missing_message(kind, dir, &missing)));
        }
        return Ok(dir.to_path_buf());
    }
    if kind == DatasetKind::Mnist && Path::new(BUNDLED_MNIST).is_dir() {
        return Ok(PathBuf::from(BUNDLED_MNIST));
    }
    let cache = data::default_cache_dir(kind)?;
    if !data::missing_files(kind, &cache).is_empty() {
        // the library prints nothing; a download can take a while, so say what is happening
        eprintln!(
            "Downloading {kind} into {} (checked by checksum)...",
            cache.display()
        );
    }
    // No mirrors given: the library reads the dataset's mirror variable, else its built-in list.
    data::ensure_available(kind, &cache, None)
}

/// `--data-dir DIR: train-images-idx3-ubyte(.gz) is missing`, naming every missing file.
fn missing_message(kind: DatasetKind, dir: &Path, missing: &[&str]) -> String {
    let names: Vec<String> = missing
        .iter()
        .map(|name| {
            if kind.is_idx() {
                format!("{name}(.gz)")
            } else {
                name.to_string()
            }
        })
        .collect();
    let verb = if names.len() == 1 { "is" } else { "are" };
    let mut msg = format!(
        "--data-dir {}: {} {verb} missing",
        dir.display(),
        names.join(", ")
    );
    if !kind.is_idx() {
        msg.push_str(&format!(
            " (looked in the folder and its {} subfolder)",
            data::cifar::SUBDIR
        ));
    }
    msg
}

pub fn parse_kind(name: &str) -> Result<DatasetKind> {
    name.parse()
        .map_err(|e: Error| Error::Invalid(format!("--dataset: {e}")))
}

/// The training and test sets.
pub fn load_both(kind: DatasetKind, explicit: Option<&Path>) -> Result<(Dataset, Dataset)> {
    let dir = data_dir(kind, explicit, &[Split::Train, Split::Test])?;
    Ok((
        data::load(kind, Split::Train, &dir)?,
        data::load(kind, Split::Test, &dir)?,
    ))
}

pub fn load_test(kind: DatasetKind, explicit: Option<&Path>) -> Result<Dataset> {
    let dir = data_dir(kind, explicit, &[Split::Test])?;
    data::load(kind, Split::Test, &dir)
}

/// A run's data: the two splits, and for a table the standardisation its features got.
pub struct RunData {
    pub train: Dataset,
    pub test: Dataset,
    pub standardizer: Option<Standardizer>,
    /// For a table: the SHA-256 of each file read (`{"train_csv": .., "test_csv": ..}`), recorded
    /// with the run so that `--resume` can check a table that moved is the same table.
    pub csv_sha256: Option<serde_json::Value>,
}

/// The key of a run's configuration that records [`RunData::csv_sha256`].
pub const CSV_SHA256: &str = "csv_sha256";

/// `opts` with its tables' paths made absolute (a run records them, and `--resume` from
/// another folder must find them).
pub fn absolute_csv_paths(mut opts: TrainOptions) -> Result<TrainOptions> {
    for (path, flag) in [
        (&mut opts.train_csv, "--train-csv"),
        (&mut opts.test_csv, "--test-csv"),
    ] {
        if let Some(p) = path {
            *p = std::path::absolute(&*p)
                .map_err(|e| Error::Invalid(format!("{flag} {}: {e}", p.display())))?;
        }
    }
    Ok(opts)
}

/// Check that the tables `opts` names are the ones a run recorded (`recorded`: its
/// [`CSV_SHA256`]), before a resumed run reads them: a file that is gone names the flag that
/// gives its new place, one that changed says so.
pub fn check_csv_sha256(opts: &TrainOptions, recorded: &serde_json::Value) -> Result<()> {
    for (path, key, flag) in [
        (&opts.train_csv, "train_csv", "--train-csv"),
        (&opts.test_csv, "test_csv", "--test-csv"),
    ] {
        let (Some(path), Some(want)) = (path, recorded[key].as_str()) else {
            continue;
        };
        if !path.is_file() {
            return Err(Error::Invalid(format!(
                "{}: the run's table is not there any more; give its new place with --resume DIR {flag} FILE",
                path.display()
            )));
        }
        let got = data::checksums::sha256_file(path)?;
        if got != want {
            return Err(Error::Invalid(format!(
                "{flag} {}: not the table the run was started on (SHA-256 {got}, the run recorded {want})",
                path.display()
            )));
        }
    }
    Ok(())
}

impl RunData {
    /// Write the table's standardisation into a run's folder (`STANDARDIZE`), before training,
    /// so that no weights file there is ever without it; nothing for images.
    pub fn write_standardizer(&self, dir: &Path) -> Result<()> {
        match &self.standardizer {
            Some(s) => {
                let json = serde_json::to_vec_pretty(s).expect("statistics serialise");
                bnlab::io::atomic::write_atomic(&dir.join(STANDARDIZE), &json)
            }
            None => Ok(()),
        }
    }
}

/// The data `opts` asks for: an image dataset (from `data_dir`, `--data-dir`, when given), or a
/// CSV table split and standardised.
pub fn load_run_data(opts: &TrainOptions, data_dir: Option<&Path>) -> Result<RunData> {
    if opts.dataset != "csv" {
        for (given, flag) in [
            (opts.train_csv.is_some(), "--train-csv"),
            (opts.test_csv.is_some(), "--test-csv"),
            (opts.test_fraction.is_some(), "--test-fraction"),
            (opts.target.is_some(), "--target"),
        ] {
            if given {
                return Err(Error::Invalid(format!(
                    "{flag} applies to --dataset csv only"
                )));
            }
        }
        if opts.mode == ModeName::Binary {
            return Err(Error::Invalid(format!(
                "--mode binary needs targets 0 or 1, and {} has {} classes: use --dataset csv",
                opts.dataset,
                parse_kind(&opts.dataset)?.num_classes()
            )));
        }
        let (train, test) = load_both(parse_kind(&opts.dataset)?, data_dir)?;
        return Ok(RunData {
            train,
            test,
            standardizer: None,
            csv_sha256: None,
        });
    }
    if data_dir.is_some() {
        return Err(Error::Invalid(
            "--data-dir applies to the image datasets; --dataset csv reads --train-csv".into(),
        ));
    }
    let path = opts
        .train_csv
        .as_deref()
        .ok_or_else(|| Error::Invalid("--dataset csv needs --train-csv FILE".into()))?;
    let target = opts
        .target
        .as_deref()
        .ok_or_else(|| Error::Invalid("--dataset csv needs --target COLUMN".into()))?;
    let binary = opts.mode == ModeName::Binary;
    let table = table::read_csv(path, target)?;
    let (train, test, test_path) = match &opts.test_csv {
        Some(test_path) => (
            table,
            table::read_csv(test_path, target)?,
            test_path.clone(),
        ),
        None => {
            let fraction = opts.test_fraction.unwrap_or(0.2);
            let (tr, te) = table::split(table.rows(), fraction, opts.seed, path)?;
            (table.select(&tr), table.select(&te), path.to_path_buf())
        }
    };
    let standardizer = Standardizer::fit(&train);
    let (train_labels, test_labels) = (
        table::labels(&train, binary, path)?,
        table::labels(&test, binary, &test_path)?,
    );
    let classes = if binary {
        2
    } else {
        1 + *train_labels.iter().chain(&test_labels).max().unwrap_or(&0) as usize
    };
    let width = train.columns.len();
    let mut sums = serde_json::json!({ "train_csv": data::checksums::sha256_file(path)? });
    if let Some(test_path) = &opts.test_csv {
        sums["test_csv"] = data::checksums::sha256_file(test_path)?.into();
    }
    Ok(RunData {
        train: Dataset::tabular(
            standardizer.apply(&train, path)?,
            train_labels,
            width,
            classes,
        )?,
        test: Dataset::tabular(
            standardizer.apply(&test, &test_path)?,
            test_labels,
            width,
            classes,
        )?,
        standardizer: Some(standardizer),
        csv_sha256: Some(sums),
    })
}

/// A table to evaluate saved weights on, standardised as their training data was (the
/// statistics in `standardize`, else in `standardize.json` beside the weights).
pub fn load_eval_table(
    test_csv: &Path,
    target: &str,
    binary: bool,
    weights: &Path,
    standardize: Option<&Path>,
) -> Result<Dataset> {
    let stats_path = standardize
        .map(Path::to_path_buf)
        .unwrap_or_else(|| weights.with_file_name(STANDARDIZE));
    let text = std::fs::read_to_string(&stats_path).map_err(|e| {
        let hint = if standardize.is_none() {
            " (weights moved from their run's folder: name its standardize.json with --standardize FILE)"
        } else {
            ""
        };
        Error::Invalid(format!(
            "{}: the weights' standardisation is needed to evaluate on a table ({e}){hint}",
            stats_path.display()
        ))
    })?;
    let standardizer: Standardizer = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&stats_path, format!("not a standardisation ({e})")))?;
    let table = table::read_csv(test_csv, target)?;
    let labels = table::labels(&table, binary, test_csv)?;
    let classes = if binary {
        2
    } else {
        1 + *labels.iter().max().unwrap_or(&0) as usize
    };
    let features = standardizer.apply(&table, test_csv)?;
    Dataset::tabular(features, labels, table.columns.len(), classes)
}
