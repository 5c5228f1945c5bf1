//! `bnlab export`: a trained model as an ONNX file, BatchNorm folded first with `--fold`.

use super::args::ExportArgs;
use super::model::{parse_model, ModelSpec};
use super::summary::parse_shape;
use bnlab::model_file::BuildOptions;
use bnlab::nn::set_training;
use bnlab::{state_dict, Error, Graph, Result, Rng};
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
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(0);
    let mut net = match &model {
        ModelSpec::Preset(p) => match input[..] {
            [_, c, h, w] if h == w => p.build(&mut g.params, c, h, &mut rng)?,
            _ => {
                return Err(Error::Invalid(format!(
                    "--input {input:?}: {p} takes (N, C, H, W) images with H = W"
                )))
            }
        },
        ModelSpec::File(f) => f.build(
            &input,
            &mut g.params,
            &mut rng,
            BuildOptions {
                sparse_input: false,
            },
        )?,
    };
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
