//! `bnlab export`: a trained model as an ONNX file, BatchNorm folded first with `--fold`.

use super::args::ExportArgs;
use super::model::{build_for_input, parse_model};
use super::summary::parse_shape;
use bnlab::nn::set_training;
use bnlab::{state_dict, Error, Result};
use std::io::Write;

pub fn run(a: &ExportArgs, out: &mut dyn Write) -> Result<()> {
    let model = parse_model(&a.model, "--model")?;
    let input = parse_shape(a.input.as_deref().unwrap_or("1,1,28,28"))?;
    if a.onnx.exists() && !a.overwrite {
        return Err(Error::Invalid(format!(
            "--onnx {}: the file exists (--overwrite replaces it)",
            a.onnx.display()
        )));
    }
    let (mut g, mut net) = build_for_input(&model, &input)?;
    state_dict::load(&mut net, &mut g.params, &a.weights)?;
    set_training(&mut net, false);
    if a.fold {
        let report = bnlab::fold::fold(&mut net, &mut g.params)?;
        for (bn, why) in &report.kept {
            writeln!(out, "kept {bn}: {why}").map_err(super::stdout_err)?;
        }
        writeln!(out, "folded {} BatchNorms", report.folded.len()).map_err(super::stdout_err)?;
    }
    let onnx = bnlab::onnx::export(&net, &g.params, &input)?;
    bnlab::onnx::write(&onnx, &a.onnx)?;
    let graph = onnx.graph.as_ref().expect("export writes a graph");
    writeln!(
        out,
        "Wrote {} (opset {}, {} nodes, {} initializers; input `input`, output `logits`, batch `N`)",
        a.onnx.display(),
        bnlab::onnx::OPSET,
        graph.node.len(),
        graph.initializer.len()
    )
    .map_err(super::stdout_err)
}
