//! ONNX export (project issue 15), decoded again with the same protobuf messages.
//!
//! Oracles: the model's own state dict (every float tensor an initializer of the same name,
//! shape and bytes), the layers in order (one node each, the ops ONNX names them by), and the
//! interface the issue fixes (`input`, `logits`, a dynamic batch `N`, one opset). onnxruntime's
//! numbers are checked by hand with `scripts/onnx_check.py`.

mod common;
use bnlab::io::StateTensor;
use bnlab::nn::{set_training, BatchNorm, BatchNormConfig, BatchNormKind, Layer, Linear, Net};
use bnlab::onnx::proto::ModelProto;
use bnlab::presets::Preset;
use bnlab::{Graph, Rng};
use common::bnlab_cli::*;
use common::{assert_ok, stdout};

fn preset(p: Preset) -> (Graph, Net) {
    let mut g = Graph::new(0);
    let mut net = p.build(&mut g.params, 1, 28, &mut Rng::seed(1)).unwrap();
    set_training(&mut net, false);
    (g, net)
}

/// Export, write and read back.
fn round_trip(net: &Net, g: &Graph) -> ModelProto {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let model = bnlab::onnx::export(net, &g.params, &[1, 1, 28, 28]).unwrap();
    bnlab::onnx::write(&model, &path).unwrap();
    let back = bnlab::onnx::read(&path).unwrap();
    assert_eq!(back, model);
    back
}

fn ops(m: &ModelProto) -> Vec<String> {
    m.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect()
}

#[test]
fn the_seed_model_exports_with_its_weights_names_and_interface() {
    let (g, net) = preset(Preset::Bn);
    let m = round_trip(&net, &g);
    assert_eq!(m.opset_import[0].version, bnlab::onnx::OPSET);
    assert_eq!(m.opset_import[0].domain, "");
    let graph = m.graph.as_ref().unwrap();
    let dims = |v: &bnlab::onnx::proto::ValueInfoProto| -> Vec<String> {
        let shape = v
            .r#type
            .as_ref()
            .unwrap()
            .tensor_type
            .as_ref()
            .unwrap()
            .shape
            .as_ref()
            .unwrap();
        shape
            .dim
            .iter()
            .map(|d| {
                d.dim_param
                    .clone()
                    .unwrap_or_else(|| d.dim_value.unwrap().to_string())
            })
            .collect()
    };
    assert_eq!(graph.input[0].name, "input");
    assert_eq!(dims(&graph.input[0]), ["N", "1", "28", "28"]);
    assert_eq!(graph.output[0].name, "logits");
    assert_eq!(dims(&graph.output[0]), ["N", "10"]);
    let block = ["Gemm", "BatchNormalization", "Relu"];
    let want: Vec<&str> = std::iter::once("Flatten")
        .chain(block.iter().copied().cycle().take(9))
        .chain(["Gemm", "Identity"])
        .collect();
    assert_eq!(ops(&m), want);
    // every float tensor of the state dict, by name, shape and bytes
    let sd = bnlab::state_dict::state_dict(&net, &g.params);
    let floats: Vec<_> = sd
        .iter()
        .filter_map(|(k, t)| match t {
            StateTensor::F32(t) => Some((k, t)),
            _ => None,
        })
        .collect();
    assert_eq!(graph.initializer.len(), floats.len());
    for (name, t) in floats {
        let init = graph
            .initializer
            .iter()
            .find(|i| &i.name == name)
            .unwrap_or_else(|| panic!("no {name}"));
        let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
        assert_eq!(init.dims, shape, "{name}");
        let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(init.raw_data == bytes, "{name}: values differ");
    }
    // the first Gemm reads the flattened input and the first layer's weights, transposed
    let gemm = &graph.node[1];
    assert_eq!(gemm.input[1..], ["b1.0.weight", "b1.0.bias"]);
    assert_eq!(
        (gemm.attribute[0].name.as_str(), gemm.attribute[0].i),
        ("transB", 1)
    );
    let bn = &graph.node[2];
    assert_eq!(
        bn.input[1..],
        [
            "b1.1.weight",
            "b1.1.bias",
            "b1.1.running_mean",
            "b1.1.running_var"
        ]
    );
}

#[test]
fn every_preset_exports_and_folding_removes_the_batch_norms() {
    for p in [
        Preset::Bn,
        Preset::Plain,
        Preset::Dropout,
        Preset::BnDropout,
        Preset::BnAfterRelu,
        Preset::CnnBn,
        Preset::CnnPlain,
    ] {
        let (mut g, mut net) = preset(p);
        let plain = ops(&round_trip(&net, &g));
        assert!(
            !plain.contains(&"Dropout".to_string()),
            "{p}: dropout is dropped at inference"
        );
        if p.is_cnn() {
            assert!(
                plain.contains(&"Conv".into()) && plain.contains(&"MaxPool".into()),
                "{p}: {plain:?}"
            );
        }
        bnlab::fold::fold(&mut net, &mut g.params).unwrap();
        let folded = ops(&round_trip(&net, &g));
        assert!(
            !folded.contains(&"BatchNormalization".to_string()),
            "{p}: {folded:?}"
        );
    }
}

#[test]
fn what_onnx_cannot_express_is_an_error_naming_the_layer() {
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(0);
    let config = BatchNormConfig {
        track_running_stats: false,
        ..Default::default()
    };
    let net = Net {
        name: "M".into(),
        flatten_input: true,
        blocks: vec![
            (
                "fc".into(),
                Linear::new(&mut g.params, 784, 4, &mut rng).unwrap().into(),
            ),
            (
                "norm".into(),
                BatchNorm::with_config(&mut g.params, BatchNormKind::OneD, 4, config)
                    .unwrap()
                    .into(),
            ),
        ],
    };
    let e = bnlab::onnx::export(&net, &g.params, &[1, 1, 28, 28])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("norm") && e.contains("running statistics"),
        "{e}"
    );
    let net = Net {
        name: "M".into(),
        flatten_input: true,
        blocks: vec![("mine".into(), Layer::custom(bnlab::nn::Flatten))],
    };
    let e = bnlab::onnx::export(&net, &g.params, &[1, 1, 28, 28])
        .unwrap_err()
        .to_string();
    assert!(e.contains("mine") && e.contains("of your own"), "{e}");
}

#[test]
fn the_command_line_exports_and_keeps_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    let run_dir = dir.path().join("run");
    assert_ok(&run(
        &train_args(&run_dir, 1, &["--data-dir", path_str(&data)]),
        dir.path(),
    ));
    let weights = run_dir.join("last.safetensors");
    let onnx = dir.path().join("bn.onnx");
    let export = |extra: &[&str]| {
        let mut a = strings(&[
            "export",
            "--weights",
            path_str(&weights),
            "--onnx",
            path_str(&onnx),
        ]);
        a.extend(strings(extra));
        run(&a, dir.path())
    };
    let o = export(&["--fold"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("folded 3 BatchNorms"), "{}", stdout(&o));
    let m = bnlab::onnx::read(&onnx).unwrap();
    assert!(!ops(&m).contains(&"BatchNormalization".to_string()));
    let before = std::fs::read(&onnx).unwrap();
    let o = export(&[]);
    assert_clean_error(&o, &["--onnx", "--overwrite"]);
    assert_eq!(
        std::fs::read(&onnx).unwrap(),
        before,
        "the existing file was changed"
    );
    assert_ok(&export(&["--overwrite"]));
}
