//! Every case in the golden folder (`../shared/golden`, or `BNLAB_GOLDEN_DIR`) against bnlab.
//!
//! Each `*.safetensors` file is interpreted from its metadata (see ../shared/golden/README.md):
//! `fold` = linear_bn | conv_bn | model first, then `layer` = BatchNorm1d | BatchNorm2d | Conv2d
//! | MaxPool2d | Sigmoid | Tanh | LeakyReLU | GELU | LayerNorm | GroupNorm, then `model` =
//! BNModel | PlainModel | CNNModel | SigmoidMLP, or a bare `loss` = CrossEntropyLoss(mean), in
//! the folder and every subfolder (`extended/`, see its README). A file that fits none of these,
//! lacks a tensor its case needs, or holds a value outside the README's tolerances fails the
//! test.

mod golden {
    pub mod check;
    pub mod extended;
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
    if let Some(kind) = meta("fold") {
        return match kind {
            "linear_bn" | "conv_bn" => golden::extended::fold_layer(&file, path, report),
            "model" => golden::extended::fold_model(&file, path, report),
            other => Err(format!("unknown fold case '{other}'")),
        };
    }
    match (meta("layer"), meta("model"), meta("loss")) {
        (Some("Sigmoid" | "Tanh" | "LeakyReLU" | "GELU"), _, _) => {
            golden::extended::activation(&file, path, report)
        }
        (Some("LayerNorm" | "GroupNorm"), _, _) => golden::extended::norm(&file, path, report),
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

/// Every `*.safetensors` under `dir`, its subfolders included.
fn cases_under(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("golden folder {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("readable folder entry").path();
        if path.is_dir() {
            cases_under(&path, files);
        } else if path.extension().is_some_and(|x| x == "safetensors") {
            files.push(path);
        }
    }
}

#[test]
fn golden() {
    let dir = golden_dir();
    let mut files = Vec::new();
    cases_under(&dir, &mut files);
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.safetensors cases in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &files {
        let mut report = Report::default();
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
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
