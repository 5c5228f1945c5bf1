//! `bnlab predict`: the top classes of a trained model for image files of any size.

use super::args::PredictArgs;
use super::data;
use super::model::{build_for_input, parse_model};
use bnlab::nn::{set_training, Forward};
use bnlab::predict::{open_image, prepare, softmax, top_k};
use bnlab::{state_dict, Error, Result};
use std::io::Write;

pub fn run(a: &PredictArgs, out: &mut dyn Write) -> Result<()> {
    if a.images.is_empty() {
        return Err(Error::Invalid("predict: name at least one image".into()));
    }
    let model = parse_model(&a.model, "--model")?;
    let kind = data::parse_kind(&a.dataset)?;
    // every image read and checked before the model runs: a bad file is named at once
    let inputs: Vec<Vec<f32>> = a
        .images
        .iter()
        .map(|p| open_image(p).map(|img| prepare(&img, kind)))
        .collect::<Result<_>>()?;
    let [c, h, w] = kind.image_shape();
    let (mut g, mut net) = build_for_input(&model, &[1, c, h, w])?;
    state_dict::load(&mut net, &mut g.params, &a.weights)?;
    set_training(&mut net, false);
    g.set_grad_enabled(false);
    let names = kind.class_names();
    for chunk in inputs.chunks(256).zip(a.images.chunks(256)) {
        let (xs, paths) = chunk;
        g.reset();
        let x = g.input_with(&[xs.len(), c, h, w], |buf| {
            for (dst, src) in buf.chunks_exact_mut(c * h * w).zip(xs) {
                dst.copy_from_slice(src);
            }
        })?;
        let logits = net.forward(&mut g, x)?;
        let classes = g.shape(logits)[1];
        for (row, path) in g.value(logits).chunks_exact(classes).zip(paths) {
            let top = top_k(&softmax(row), 3);
            let name = |c: usize| names.get(c).copied().unwrap_or("?");
            let line = if a.json {
                let top: Vec<serde_json::Value> = top
                    .iter()
                    .map(|&(c, p)| serde_json::json!({ "class": c, "name": name(c), "probability": p }))
                    .collect();
                serde_json::json!({ "file": path.display().to_string(), "top": top }).to_string()
            } else {
                let best: Vec<String> = top
                    .iter()
                    .map(|&(c, p)| format!("{} ({:.1}%)", name(c), 100.0 * p))
                    .collect();
                format!("{}: {}", path.display(), best.join(", "))
            };
            writeln!(out, "{line}").map_err(super::stdout_err)?;
        }
    }
    Ok(())
}
