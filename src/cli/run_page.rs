//! `bnlab report RUN_DIR [--out FILE]`: the run page, one self-contained HTML page about a
//! training run's folder: the run's settings, its model's torchinfo table, the history of every
//! epoch, every plot in the folder and the list of its files. The page embeds its pictures and
//! links to nothing outside itself, so it can be mailed or archived alone.

mod folder;
mod format;
mod model;

use super::args::ReportArgs;
use super::run_folder::{HISTORY_JSON, HISTORY_PNG};
use bnlab::html_page::Page;
use bnlab::train::History;
use bnlab::{Error, Result};
use folder::{check_out, list_files, read_history, read_png, Entry};
use format::{duration, json_value, short, thousands};
use std::io::Write;
use std::path::Path;

/// The report's file name inside the run's folder, without `--out`.
pub const REPORT: &str = "report.html";

pub fn run(a: &ReportArgs, out: &mut dyn Write) -> Result<()> {
    let dir = &a.run_dir;
    let history = read_history(dir)?;
    if let Some(out) = &a.out {
        check_out(out, a.overwrite)?;
    }
    let target = a.out.clone().unwrap_or_else(|| dir.join(REPORT));
    let files = list_files(dir, &target)?;
    let page = build_page(dir, &history, &files)?;
    page.write(&target)?;
    writeln!(out, "Wrote {}", target.display()).map_err(super::stdout_err)
}

fn build_page(dir: &Path, history: &History, files: &[Entry]) -> Result<Page> {
    let mut page = Page::new(&format!("bnlab run: {}", dir.display()));
    let written = files
        .iter()
        .find(|f| f.name == HISTORY_JSON)
        .and_then(|f| f.modified)
        .and_then(format::utc);
    page.subtitle(&match written {
        Some(when) => format!(
            "Made by bnlab {} from the files in {} (history.json written {when}).",
            env!("CARGO_PKG_VERSION"),
            dir.display()
        ),
        None => format!(
            "Made by bnlab {} from the files in {}.",
            env!("CARGO_PKG_VERSION"),
            dir.display()
        ),
    });
    run_section(&mut page, history);
    model_section(&mut page, dir, &history.config);
    history_section(&mut page, history);
    plots_section(&mut page, dir, files)?;
    files_section(&mut page, files);
    Ok(page)
}

/// What was trained, on what, how long, and how well; then every option as a flag.
fn run_section(page: &mut Page, h: &History) {
    let config = &h.config;
    let options = &config["options"];
    let mut facts: Vec<(String, String)> = Vec::new();
    let model = json_value(&config["model"]);
    let model = if config["model_text"].is_string() {
        format!("{model} (a model file; its text is under Model)")
    } else {
        model
    };
    facts.push(("Model".into(), model));
    facts.push(("Dataset".into(), dataset(options)));
    facts.push(("Precision".into(), precision(options)));
    let planned = options["epochs"].as_u64();
    let mut epochs = match planned {
        Some(n) => format!("{} of {n}", h.epochs.len()),
        None => h.epochs.len().to_string(),
    };
    if h.stopped_early {
        epochs += " (stopped early: the validation loss stopped improving)";
    }
    facts.push(("Epochs trained".into(), epochs));
    if let Some(best) = h.best_epoch {
        let text = match h.epochs.iter().find(|e| e.epoch == best) {
            Some(e) => format!(
                "{best}: the lowest validation loss, {:.5} (accuracy {:.5})",
                e.val_loss, e.val_accuracy
            ),
            None => best.to_string(),
        };
        facts.push(("Best epoch".into(), text));
    }
    if let Some(last) = h.epochs.last() {
        facts.push((
            "Last epoch".into(),
            format!(
                "train loss {:.5}, accuracy {:.5}; validation loss {:.5}, accuracy {:.5}",
                last.train_loss, last.train_accuracy, last.val_loss, last.val_accuracy
            ),
        ));
    }
    facts.push(("Time".into(), duration(h.elapsed_seconds)));
    if !config["threads"].is_null() {
        facts.push(("Threads".into(), json_value(&config["threads"])));
    }
    page.section("The run").definition_list(&facts);
    if let Some(map) = options.as_object() {
        let flags: Vec<(String, String)> = map
            .iter()
            .map(|(k, v)| match (k.as_str(), v.as_u64()) {
                ("threads", Some(0)) => (flag(k), "0 (every core)".to_string()),
                _ => (flag(k), json_value(v)),
            })
            .collect();
        page.heading(3, "Options").definition_grid(&flags, 3);
    }
}

/// The dataset and, for a table, where it came from and how it was split.
fn dataset(options: &serde_json::Value) -> String {
    let name = json_value(&options["dataset"]);
    if name != "csv" {
        return name;
    }
    let mut parts = vec![format!("csv table {}", json_value(&options["train_csv"]))];
    parts.push(format!("target {}", json_value(&options["target"])));
    parts.push(format!("mode {}", json_value(&options["mode"])));
    match options["test_csv"].as_str() {
        Some(test) => parts.push(format!("tested on {test}")),
        None => parts.push(format!(
            "test fraction {}",
            options["test_fraction"].as_f64().unwrap_or(0.2)
        )),
    }
    parts.join(", ")
}

/// The run's `--precision`, said in words (a run from before the option trained in float32).
fn precision(options: &serde_json::Value) -> String {
    match options["precision"].as_str() {
        Some("bf16") => "bf16: the matrix products and convolutions took bfloat16 operands and \
                         summed in float32; everything else, and the saved weights, float32"
            .to_string(),
        Some(other) if other != "f32" => other.to_string(),
        _ => "f32".to_string(),
    }
}

/// An option's name as the command line spells it (`batch_size` -> `--batch-size`); the one
/// field that is not a flag keeps its name.
fn flag(key: &str) -> String {
    match key {
        "cosine_t_max" => "cosine period (a resumed run's)".to_string(),
        k => format!("--{}", k.replace('_', "-")),
    }
}

fn model_section(page: &mut Page, dir: &Path, config: &serde_json::Value) {
    page.section("Model");
    match model::run_model(dir, config) {
        Ok(m) => {
            let input: Vec<String> = m.input.iter().map(usize::to_string).collect();
            page.paragraph(&format!(
                "torchinfo's summary for an input of shape ({}), as bnlab summary prints it:",
                input.join(", ")
            ))
            .preformatted(&m.table);
            if let Some(why) = m.mismatch {
                page.note(&format!(
                    "The run's last.safetensors does not fit this model, so the table may not \
                     describe what was trained: {why}"
                ));
            }
        }
        Err(e) => {
            page.note(&format!(
                "The model could not be rebuilt from the run's configuration: {e}"
            ));
        }
    }
    if let Some(text) = config["model_text"].as_str() {
        page.heading(3, "Model file").preformatted(text);
    }
}

fn history_section(page: &mut Page, h: &History) {
    page.section("History");
    if h.epochs.is_empty() {
        page.note("The history holds no epoch.");
        return;
    }
    let rows: Vec<Vec<String>> = h
        .epochs
        .iter()
        .map(|e| {
            vec![
                e.epoch.to_string(),
                format!("{:.5}", e.train_loss),
                format!("{:.5}", e.train_accuracy),
                format!("{:.5}", e.val_loss),
                format!("{:.5}", e.val_accuracy),
                short(e.lr),
                format!("{:.2}", e.seconds),
            ]
        })
        .collect();
    page.table(
        &[
            "epoch",
            "train loss",
            "train accuracy",
            "validation loss",
            "validation accuracy",
            "learning rate",
            "seconds",
        ],
        &rows,
    );
    page.note(
        "Losses are means over the batches and accuracies fractions of the set, both measured \
         in eval mode after each epoch's training; the seconds include both evaluations.",
    );
}

/// Every PNG of the folder, history.png first, each captioned with its file name; one left out
/// (see [`read_png`]) is named with the reason, on the page and on stderr.
fn plots_section(page: &mut Page, dir: &Path, files: &[Entry]) -> Result<()> {
    let mut pngs: Vec<&Entry> = files
        .iter()
        .filter(|f| f.size.is_some() && f.name.to_ascii_lowercase().ends_with(".png"))
        .collect();
    pngs.sort_by_key(|f| f.name != HISTORY_PNG);
    page.section("Plots");
    if pngs.is_empty() {
        page.note("The folder holds no PNG file.");
    }
    for f in pngs {
        let bytes = match read_png(dir, f)? {
            Ok(bytes) => bytes,
            Err(why) => {
                let line = format!("{} is left out: {why}", f.name);
                eprintln!("note: {}: {why}; left out of the report", f.path.display());
                page.note(&line);
                continue;
            }
        };
        let alt = if f.name == HISTORY_PNG {
            format!(
                "{}: loss and accuracy per epoch, training and validation",
                f.name
            )
        } else {
            f.name.clone()
        };
        page.image(&alt, &f.name, &bytes)
            .map_err(|e| Error::bad_file(&f.path, e.to_string().replace('\n', " ")))?;
    }
    Ok(())
}

fn files_section(page: &mut Page, files: &[Entry]) {
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            let name = if f.is_dir {
                format!("{}/", f.name)
            } else {
                f.name.clone()
            };
            vec![name, f.size.map_or("-".to_string(), thousands)]
        })
        .collect();
    page.section("Files")
        .paragraph("The run's folder holds (the report itself aside):")
        .table(&["file", "bytes"], &rows);
}
