//! Model files (project issue 13): a model written as PyTorch prints it.
//!
//! Oracles: each preset's file in `examples/models/` gives the same bits as the preset (the
//! same initial draws, and the same weights after training through the same kernels); the
//! state dict's names are the ones PyTorch gives the printed module; shapes and arguments are
//! checked before training, with the file's line and column.
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

mod common;
use bnlab::model_file::ModelFile;
use bnlab::nn::{set_training, Forward, Net};
use bnlab::presets::Preset;
use bnlab::{Graph, Rng};
use common::bnlab_cli::*;
use common::run_files::with_commas;
use common::{assert_ok, stdout};
use std::path::Path;

fn example(name: &str) -> ModelFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/models/{name}.txt"));
    ModelFile::read(&path).unwrap()
}

fn from_text(text: &str) -> bnlab::Result<ModelFile> {
    ModelFile::from_text(text.to_string(), Path::new("m.txt"))
}

fn build(text: &str, input: &[usize]) -> bnlab::Result<(Graph, Net)> {
    let mut g = Graph::new(0);
    let net = from_text(text)?.build(input, &mut g.params, &mut Rng::seed(0))?;
    Ok((g, net))
}

/// A few training steps of Adam on fixed batches, then the state dict.
fn trained(mut net: Net, mut g: Graph) -> Vec<(String, bnlab::io::StateTensor)> {
    use bnlab::optim::{Adam, AdamConfig, Optimizer};
    let mut opt = Adam::new(bnlab::nn::parameters(&net), AdamConfig::default());
    set_training(&mut net, true);
    for step in 0..3u64 {
        let mut rng = Rng::seed(10 + step);
        // mostly zeros, like images
        let x: Vec<f32> = (0..16 * 784)
            .map(|_| {
                let v = rng.uniform(0.0, 1.0);
                if v < 0.8 {
                    0.0
                } else {
                    v
                }
            })
            .collect();
        let labels: Vec<u32> = (0..16).map(|i| i % 10).collect();
        g.reset();
        let xv = g
            .input_with(&[16, 1, 28, 28], |b| b.copy_from_slice(&x))
            .unwrap();
        let logits = net.forward(&mut g, xv).unwrap();
        let loss = g.cross_entropy(logits, &labels).unwrap();
        g.params.zero_grad();
        g.backward(loss).unwrap();
        opt.step(&mut g.params);
    }
    bnlab::state_dict::state_dict(&net, &g.params)
}

#[test]
fn each_preset_file_gives_the_presets_bits() {
    for preset in [
        Preset::Bn,
        Preset::Plain,
        Preset::Dropout,
        Preset::BnDropout,
        Preset::BnAfterRelu,
        Preset::CnnBn,
        Preset::CnnPlain,
    ] {
        let mut gp = Graph::new(1);
        let from_preset = preset
            .build(&mut gp.params, 1, 28, &mut Rng::seed(3))
            .unwrap();
        let mut gf = Graph::new(1);
        let from_file = example(&preset.to_string())
            .build(&[1, 1, 28, 28], &mut gf.params, &mut Rng::seed(3))
            .unwrap();
        assert_eq!(from_file.name, from_preset.name, "{preset}");
        let (a, b) = (
            bnlab::state_dict::state_dict(&from_preset, &gp.params),
            bnlab::state_dict::state_dict(&from_file, &gf.params),
        );
        assert!(a == b, "{preset}: the initial state dicts differ");
        // the same layers keep their weights the same way (a Linear reading the input keeps
        // W^T), so the graph gives both the same kernels
        let stored = |g: &Graph| -> Vec<Vec<usize>> {
            g.params
                .ids()
                .map(|id| g.params.shape(id).to_vec())
                .collect()
        };
        assert_eq!(stored(&gf), stored(&gp), "{preset}: stored layouts differ");
        let (a, b) = (trained(from_preset, gp), trained(from_file, gf));
        assert!(a == b, "{preset}: trained weights differ");
    }
}

#[test]
fn the_state_dict_has_pytorchs_names_for_the_printed_module() {
    // the example, as PyTorch 2.15 prints it
    let text = "Net(\n  (features): Sequential(\n    (0): Flatten(start_dim=1, end_dim=-1)\n    (1): Linear(in_features=784, out_features=300, bias=True)\n    (2): BatchNorm1d(300, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n    (3): ReLU()\n  )\n  (head): Linear(in_features=300, out_features=10, bias=False)\n)\n";
    let (g, net) = build(text, &[1, 1, 28, 28]).unwrap();
    let names: Vec<String> = bnlab::state_dict::state_dict(&net, &g.params)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        names,
        [
            "features.1.weight",
            "features.1.bias",
            "features.2.weight",
            "features.2.bias",
            "features.2.running_mean",
            "features.2.running_var",
            "features.2.num_batches_tracked",
            "head.weight"
        ]
    );
}

#[test]
fn arguments_take_pytorchs_defaults_and_every_printed_form() {
    // positional, keyword and left out; tuples for square sizes
    let text = "M(\n  (c): Conv2d(1, 4, 3, padding=(1, 1), bias=False)\n  (n): BatchNorm2d(4, momentum=None, eps=0.001)\n  (p): MaxPool2d(2)\n  (f): Flatten()\n  (l): Linear(784, 10)\n)";
    let (g, net) = build(text, &[2, 1, 28, 28]).unwrap();
    let sd = bnlab::state_dict::state_dict(&net, &g.params);
    assert!(!sd.iter().any(|(k, _)| k == "c.bias"), "bias=False");
    let bnlab::nn::Layer::BatchNorm(bn) = &net.blocks[1].1 else {
        panic!("n is not a BatchNorm")
    };
    assert_eq!(bn.config.momentum, None);
    assert_eq!(bn.config.eps, 0.001);
    let bnlab::nn::Layer::MaxPool2d(p) = &net.blocks[2].1 else {
        panic!("p is not a MaxPool2d")
    };
    assert_eq!(
        (p.kernel_size, p.stride),
        (2, 2),
        "stride defaults to the kernel"
    );
}

#[test]
fn errors_name_the_place_the_layer_and_what_is_wrong() {
    let err = |text: &str| {
        build(text, &[1, 1, 28, 28])
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    // the shape mismatch, found before training
    let e = err("Net(\n  (features): Sequential(\n    (0): Flatten(start_dim=1, end_dim=-1)\n    (1): Linear(in_features=784, out_features=300)\n    (2): BatchNorm1d(300)\n    (3): ReLU()\n  )\n  (head): Linear(in_features=256, out_features=10)\n)");
    assert!(
        e.starts_with(
            "m.txt:8:11: head: Linear(in_features=256) receives 300 features from features.3"
        ),
        "{e}"
    );
    let e = err("Net(\n  (a): Conv3d(1, 2, 3)\n)");
    assert!(
        e.starts_with("m.txt:2:8: a: Conv3d: unknown layer 'Conv3d'"),
        "{e}"
    );
    assert!(
        e.contains("LayerNorm") && e.contains("Sequential"),
        "lists the layers: {e}"
    );
    let e = err("Net(\n  (a): Linear(784, 10, biass=True)\n)");
    assert!(
        e.contains("m.txt:2:8: a: Linear: unknown argument 'biass'"),
        "{e}"
    );
    let e = err("Net(\n  (a): Conv2d(1, 2, kernel_size=(3, 5))\n)");
    assert!(e.contains("kernel_size=(3, 5) is not square"), "{e}");
    let e = err("Net(\n  (a): Conv2d(1, 2, 3, dilation=(2, 2))\n)");
    assert!(e.contains("dilation=(2, 2) is not supported"), "{e}");
    let e = err("Net(\n  (a): BatchNorm2d(3)\n)");
    assert!(
        e.contains("a: BatchNorm2d receives [1, 1, 28, 28] from the input"),
        "{e}"
    );
    let e = err("Net(\n  (a): Dropout(p=1.5)\n)");
    assert!(e.contains("p=1.5 must be between 0 and 1"), "{e}");
    let e = err("Net(\n  (a): GroupNorm(3, 4)\n)");
    assert!(e.contains("num_groups=3 does not divide"), "{e}");
    let e = err("Net(\n  (a): Linear(784)\n)");
    assert!(e.contains("missing the argument 'out_features'"), "{e}");
    let e = err("Linear(784, 10)");
    assert!(e.contains("a module with children"), "{e}");
    let e = err("Net(\n  (s): Sequential(\n    (1): ReLU()\n  )\n)");
    assert!(e.contains("numbered 0, 1"), "{e}");
}

#[test]
fn models_with_the_new_layers_build_train_and_count_like_torchinfo() {
    let text = "Mixed(\n  (conv): Sequential(\n    (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n    (1): GroupNorm(4, 8, eps=1e-05, affine=True)\n    (2): GELU(approximate='tanh')\n    (3): AvgPool2d(kernel_size=2, stride=2, padding=0)\n  )\n  (head): Sequential(\n    (0): Flatten(start_dim=1, end_dim=-1)\n    (1): Linear(in_features=1568, out_features=32, bias=True)\n    (2): LayerNorm((32,), eps=1e-05, elementwise_affine=True)\n    (3): LeakyReLU(negative_slope=0.1)\n    (4): Identity()\n    (5): Linear(in_features=32, out_features=16, bias=True)\n    (6): Tanh()\n    (7): Linear(in_features=16, out_features=10, bias=True)\n    (8): Sigmoid()\n  )\n)";
    let (g, net) = build(text, &[1, 1, 28, 28]).unwrap();
    let table = bnlab::summary::summary(&net, &g.params, &[1, 1, 28, 28]).unwrap();
    // conv 8*9+8, GroupNorm 8+8, Linear 1568*32+32, LayerNorm 32+32, 32*16+16, 16*10+10
    let total = 80 + 16 + 50208 + 64 + 528 + 170;
    assert!(
        table.contains(&format!("Total params: {}", with_commas(total as u64))),
        "{table}"
    );
    for row in [
        "GroupNorm: 2-2",
        "GELU: 2-3",
        "AvgPool2d: 2-4",
        "LayerNorm: 2-7",
        "Identity: 2-9",
    ] {
        assert!(table.contains(row), "no {row} row:\n{table}");
    }
    let sd = trained(net, g);
    let init = build(text, &[1, 1, 28, 28]).unwrap();
    let before = bnlab::state_dict::state_dict(&init.1, &init.0.params);
    for ((k, a), (_, b)) in before.iter().zip(&sd) {
        if k.ends_with("weight") {
            assert!(a != b, "{k} did not train");
        }
    }
}

#[test]
fn the_command_line_trains_evaluates_and_resumes_a_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    let d = path_str(&data);
    let model = dir.path().join("mine.txt");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/models/bn.txt"),
        &model,
    )
    .unwrap();
    let (by_name, by_file) = (dir.path().join("by-name"), dir.path().join("by-file"));
    assert_ok(&run(
        &train_args(&by_name, 2, &["--data-dir", d]),
        dir.path(),
    ));
    let o = run(
        &train_args(&by_file, 1, &["--data-dir", d, "--model", path_str(&model)]),
        dir.path(),
    );
    assert_ok(&o);
    // the run keeps the model's text: it resumes with the file gone
    std::fs::remove_file(&model).unwrap();
    let mut resume = resume_args(&by_file);
    resume.extend(strings(&["--epochs", "2"]));
    assert_ok(&run(&resume, dir.path()));
    let read = |p: &Path| std::fs::read(p.join("last.safetensors")).unwrap();
    assert!(
        read(&by_name) == read(&by_file),
        "the file's run differs from the preset's"
    );
    // eval and summary take the file too
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/models/bn.txt"),
        &model,
    )
    .unwrap();
    let weights = by_file.join("last.safetensors");
    let eval = |m: &str| {
        let o = run(
            &strings(&[
                "eval",
                "--model",
                m,
                "--weights",
                path_str(&weights),
                "--data-dir",
                d,
                "--json",
            ]),
            dir.path(),
        );
        assert_ok(&o);
        stdout(&o)
    };
    assert_eq!(eval(path_str(&model)), eval("bn"));
    let summary = |m: &str| {
        let o = run(&strings(&["summary", "--model", m]), dir.path());
        assert_ok(&o);
        stdout(&o)
    };
    assert_eq!(summary(path_str(&model)), summary("bn"));
    // a bad file is one line naming it
    std::fs::write(&model, "BNModel(\n  (b1): Linear(784, 10, bias=Maybe)\n)\n").unwrap();
    let o = run(
        &train_args(
            &dir.path().join("bad"),
            1,
            &["--data-dir", d, "--model", path_str(&model)],
        ),
        dir.path(),
    );
    let e = assert_clean_error(&o, &["mine.txt:2:30", "'Maybe' is not a value"]);
    assert!(
        !dir.path().join("bad").join("last.safetensors").exists(),
        "{e}"
    );
}

#[test]
fn fold_writes_a_model_file_whose_eval_is_the_unfolded_models() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    let d = path_str(&data);
    for (preset, folded_lines) in [("bn", 3), ("bn-after-relu", 3), ("cnn-bn", 3)] {
        let run_dir = dir.path().join(preset);
        let o = run(
            &train_args(&run_dir, 1, &["--data-dir", d, "--model", preset]),
            dir.path(),
        );
        assert_ok(&o);
        let weights = run_dir.join("last.safetensors");
        let folded = dir.path().join(format!("{preset}-folded"));
        let o = run(
            &strings(&[
                "fold",
                "--model",
                preset,
                "--weights",
                path_str(&weights),
                "--out",
                path_str(&folded),
            ]),
            dir.path(),
        );
        assert_ok(&o);
        let said = stdout(&o);
        assert_eq!(
            said.lines().filter(|l| l.starts_with("folded ")).count(),
            folded_lines,
            "{said}"
        );
        if preset == "bn-after-relu" {
            // after the activation: into the next Linear, the last one into the output layer
            assert!(
                said.contains("folded b1.2 into b2.0") && said.contains("folded b3.2 into output"),
                "{said}"
            );
        }
        let model = folded.join("model.txt");
        let text = std::fs::read_to_string(&model).unwrap();
        assert!(!text.contains("BatchNorm"), "{text}");
        let eval = |m: &str, w: &Path| {
            let o = run(
                &strings(&[
                    "eval",
                    "--model",
                    m,
                    "--weights",
                    path_str(w),
                    "--data-dir",
                    d,
                    "--json",
                ]),
                dir.path(),
            );
            assert_ok(&o);
            serde_json::from_str::<serde_json::Value>(stdout(&o).trim()).unwrap()
        };
        let (before, after) = (
            eval(preset, &weights),
            eval(path_str(&model), &folded.join("folded.safetensors")),
        );
        assert_eq!(before["accuracy"], after["accuracy"], "{preset}");
        let (lb, la) = (
            before["loss"].as_f64().unwrap(),
            after["loss"].as_f64().unwrap(),
        );
        assert!(
            (lb - la).abs() <= 1e-4 * lb.abs().max(1.0),
            "{preset}: loss {lb} folded {la}"
        );
        // a second fold into the same folder is refused
        let o = run(
            &strings(&[
                "fold",
                "--model",
                preset,
                "--weights",
                path_str(&weights),
                "--out",
                path_str(&folded),
            ]),
            dir.path(),
        );
        assert_clean_error(&o, &["--overwrite"]);
    }
}
