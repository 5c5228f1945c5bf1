//! `bnlab predict`: the top classes of a trained model for image files of any size. Every good
//! image is answered, every bad one named on stderr; the command fails if any did.

use super::args::PredictArgs;
use super::data;
use super::model::{build_for_input, parse_model};
use bnlab::io::write_atomic;
use bnlab::nn::{set_training, Forward};
use bnlab::predict::{input_png, read_input, softmax, top_k};
use bnlab::{state_dict, Error, Result};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

pub fn run(a: &PredictArgs, out: &mut dyn Write) -> Result<()> {
    if a.images.is_empty() {
        return Err(Error::Invalid("predict: name at least one image".into()));
    }
    let model = parse_model(&a.model, "--model")?;
    let kind = data::parse_kind(&a.dataset)?;
    let [c, h, w] = kind.image_shape();
    // every image read before the model is built: a bad file is named at once (and a run of
    // bad files only is not hidden behind the model's own errors)
    let inputs: Vec<Result<Vec<f32>>> = a.images.iter().map(|p| read_input(p, kind)).collect();
    if let Some(dir) = &a.show_input {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut taken = HashSet::new();
        for (path, x) in a.images.iter().zip(&inputs) {
            if let Ok(x) = x {
                let file = dir.join(shown_name(path, &mut taken));
                write_atomic(&file, &input_png(x, [c, h, w])?)?;
            }
        }
    }
    let mut answers: Vec<Option<Vec<f64>>> = vec![None; inputs.len()];
    if inputs.iter().any(|x| x.is_ok()) {
        let (mut g, mut net) = build_for_input(&model, &[1, c, h, w])?;
        state_dict::load(&mut net, &mut g.params, &a.weights)?;
        set_training(&mut net, false);
        g.set_grad_enabled(false);
        let good: Vec<(usize, &Vec<f32>)> = inputs
            .iter()
            .enumerate()
            .filter_map(|(i, x)| x.as_ref().ok().map(|x| (i, x)))
            .collect();
        for chunk in good.chunks(256) {
            g.reset();
            let x = g.input_with(&[chunk.len(), c, h, w], |buf| {
                for (dst, (_, src)) in buf.chunks_exact_mut(c * h * w).zip(chunk) {
                    dst.copy_from_slice(src);
                }
            })?;
            let logits = net.forward(&mut g, x)?;
            let classes = g.shape(logits)[1];
            for (row, &(i, _)) in g.value(logits).chunks_exact(classes).zip(chunk) {
                answers[i] = Some(softmax(row));
            }
        }
    }
    let names = kind.class_names();
    let name = |c: usize| names.get(c).copied().unwrap_or("?");
    let mut failed: Vec<Error> = Vec::new();
    for ((path, input), answer) in a.images.iter().zip(inputs).zip(answers) {
        let file = path.display().to_string();
        let line = match (input, answer) {
            (Ok(_), Some(p)) => {
                let top = top_k(&p, 3);
                if a.json {
                    let top: Vec<serde_json::Value> = top
                        .iter()
                        .map(|&(c, p)| serde_json::json!({ "class": c, "name": name(c), "probability": p }))
                        .collect();
                    serde_json::json!({ "file": file, "top": top }).to_string()
                } else {
                    let best: Vec<String> = top
                        .iter()
                        .map(|&(c, p)| format!("{} ({:.1}%)", name(c), 100.0 * p))
                        .collect();
                    format!("{file}: {}", best.join(", "))
                }
            }
            (Err(e), _) => {
                let line = serde_json::json!({ "file": file, "error": e.to_string() }).to_string();
                failed.push(e);
                if !a.json {
                    continue;
                }
                line
            }
            (Ok(_), None) => unreachable!("every readable image is answered"),
        };
        writeln!(out, "{line}").map_err(super::stdout_err)?;
    }
    out.flush().map_err(super::stdout_err)?;
    // one image, bad: its own line is the error; otherwise each bad one named, then how many
    let total = a.images.len();
    match failed.len() {
        0 => Ok(()),
        1 if total == 1 => Err(failed.pop().expect("one error")),
        n => {
            for e in &failed {
                eprintln!("error: {e}");
            }
            Err(Error::Invalid(format!(
                "predict: {n} of {total} images could not be read (named above); the others were answered"
            )))
        }
    }
}

/// The file name for `image`'s input under --show-input: its stem with `.png`, `-2`, `-3`, ...
/// added when two images share a stem.
fn shown_name(image: &Path, taken: &mut HashSet<String>) -> String {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let mut name = format!("{stem}.png");
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{stem}-{n}.png");
        n += 1;
    }
    name
}
