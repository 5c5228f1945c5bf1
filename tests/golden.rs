//! Every case in the golden folder (`../shared/golden`, or `BNLAB_GOLDEN_DIR`) against bnlab.
//!
//! Each `*.safetensors` file is interpreted from its metadata (see ../shared/golden/README.md):
//! `layer` = BatchNorm1d | BatchNorm2d | Conv2d | MaxPool2d, `model` = BNModel | PlainModel |
//! CNNModel, or a bare `loss` = CrossEntropyLoss(mean). A file that fits none of these, lacks a
//! tensor its case needs, or holds a value outside the README's tolerances fails the test.

mod golden {
    pub mod check;
    pub mod layers;
    pub mod models;
}

use bnlab::io::read_safetensors;
use golden::check::Report;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    match std::env::var_os("BNLAB_GOLDEN_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden"),
    }
}

fn run_case(path: &Path, report: &mut Report) -> Result<(), String> {
    let file = read_safetensors(path).map_err(|e| e.to_string())?;
    let meta = |k: &str| file.metadata.get(k).map(String::as_str);
    match (meta("layer"), meta("model"), meta("loss")) {
        (Some("BatchNorm1d" | "BatchNorm2d"), _, _) => {
            golden::layers::batch_norm(&file, path, report)
        }
        (Some("Conv2d"), _, _) => golden::layers::conv2d(&file, path, report),
        (Some("MaxPool2d"), _, _) => golden::layers::max_pool2d(&file, path, report),
        (Some(other), _, _) => Err(format!("unknown layer '{other}'")),
        (None, Some(model), _) => golden::models::model(&file, path, model, report),
        (None, None, Some("CrossEntropyLoss(mean)")) => {
            golden::layers::cross_entropy(&file, path, report)
        }
        _ => Err(format!(
            "cannot tell what case this is from its metadata {:?}",
            file.metadata
        )),
    }
}

#[test]
fn golden() {
    let dir = golden_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("golden folder {}: {e}", dir.display()))
        .map(|e| e.expect("readable folder entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.safetensors cases in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &files {
        let mut report = Report::default();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match run_case(path, &mut report) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok(()) if !report.failures.is_empty() => {
                failures.push(format!("{name}: {}", report.failures.join("\n    ")))
            }
            Ok(()) => println!("{name}: {} comparisons passed", report.checked),
        }
        assert!(
            report.checked > 0 || !failures.is_empty(),
            "{name}: nothing was compared"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n  {}",
        failures.len(),
        files.len(),
        failures.join("\n  ")
    );
}
