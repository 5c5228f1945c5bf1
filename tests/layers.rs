//! Layer behaviour that the golden files do not show: PyTorch's errors for BatchNorm inputs,
//! BatchNorm in eval mode with a single sample, Dropout's statistics, and the state-dict keys
//! and class names of the built-in layers (which derive `Module`) against PyTorch's; sizes of
//! zero refused when a layer is built from code, as a model file refuses them.

use bnlab::nn::{
    set_training, visit_state, visit_state_mut, BatchNorm, BatchNormConfig, BatchNormKind, Conv2d,
    Conv2dConfig, Dropout, Flatten, Forward, GroupNorm, GroupNormConfig, Layer, LayerNorm,
    LayerNormConfig, Linear, LinearConfig, MaxPool2d, Module, ReLU, StateRef,
};
use bnlab::{Graph, Rng, Tensor};

fn input(g: &mut Graph, shape: &[usize]) -> bnlab::Var {
    let n: usize = shape.iter().product();
    let mut rng = Rng::seed(3);
    let t = Tensor::new(shape, (0..n).map(|_| rng.next_f32()).collect()).unwrap();
    g.input(&t, false).unwrap()
}

fn forward(
    kind: BatchNormKind,
    config: BatchNormConfig,
    training: bool,
    shape: &[usize],
) -> bnlab::Result<Vec<f32>> {
    let mut g = Graph::new(0);
    let mut bn = BatchNorm::with_config(&mut g.params, kind, shape[1], config).unwrap();
    set_training(&mut bn, training);
    let x = input(&mut g, shape);
    bn.forward(&mut g, x).map(|y| g.value(y).to_vec())
}

#[test]
fn one_value_per_channel_in_training_is_pytorchs_error() {
    let d1 = BatchNormKind::OneD;
    let err = forward(d1, Default::default(), true, &[1, 5])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Expected more than 1 value per channel when training, got input size [1, 5]"),
        "{err}"
    );
    // (N, C, L) with N * L = 1, and (N, C, H, W) with N * H * W = 1: the same error
    assert!(forward(d1, Default::default(), true, &[1, 3, 1]).is_err());
    assert!(forward(BatchNormKind::TwoD, Default::default(), true, &[1, 3, 1, 1]).is_err());
    // two values per channel are enough, in either dimension
    assert!(forward(d1, Default::default(), true, &[2, 5]).is_ok());
    assert!(forward(d1, Default::default(), true, &[1, 3, 2]).is_ok());
    // without running statistics, eval mode uses batch statistics too, so it is refused as well
    let no_stats = BatchNormConfig {
        track_running_stats: false,
        ..Default::default()
    };
    assert!(forward(d1, no_stats, false, &[1, 5]).is_err());
}

#[test]
fn eval_mode_normalises_a_single_sample_with_the_running_statistics() {
    // fresh running statistics are mean 0 and variance 1: y = x / sqrt(1 + eps)
    let y = forward(BatchNormKind::OneD, Default::default(), false, &[1, 5]).unwrap();
    let mut g = Graph::new(0);
    let x = input(&mut g, &[1, 5]);
    for (y, &x) in y.iter().zip(g.value(x)) {
        assert!((y - x / (1.0f32 + 1e-5).sqrt()).abs() < 1e-7);
    }
}

#[test]
fn input_ranks_and_channels_are_checked() {
    let d1 = BatchNormKind::OneD;
    let err = forward(d1, Default::default(), true, &[4, 5, 2, 2])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BatchNorm1d") && err.contains("2D or 3D"),
        "{err}"
    );
    let err = forward(BatchNormKind::TwoD, Default::default(), true, &[4, 5])
        .unwrap_err()
        .to_string();
    assert!(err.contains("BatchNorm2d") && err.contains("4D"), "{err}");
    let mut g = Graph::new(0);
    let mut bn = BatchNorm::d1(&mut g.params, 3).unwrap();
    let x = input(&mut g, &[4, 5]);
    let err = bn.forward(&mut g, x).unwrap_err().to_string();
    assert!(
        err.contains("BatchNorm1d(3)") && err.contains("[4, 5]"),
        "{err}"
    );
}

#[test]
fn layers_built_with_a_size_of_zero_are_refused_naming_it() {
    // before, these were built and the zero reached the kernels: a model with a Linear of
    // zero outputs panicked on its first batch (a parallel chunk of zero values)
    let (mut g, mut rng) = (Graph::new(0), Rng::seed(0));
    let p = &mut g.params;
    let message = |r: bnlab::Result<String>| r.unwrap_err().to_string();
    let linear = |p: &mut _, i, o, rng: &mut _| Linear::new(p, i, o, rng).map(|_| String::new());
    assert_eq!(
        message(linear(p, 784, 0, &mut rng)),
        "Linear: out_features=0 must be at least 1"
    );
    assert_eq!(
        message(linear(p, 0, 10, &mut rng)),
        "Linear: in_features=0 must be at least 1"
    );
    let transposed = LinearConfig {
        stored_transpose: true,
        ..LinearConfig::new(784, 0)
    };
    let err = message(Linear::with_config(p, transposed, &mut rng).map(|_| String::new()));
    assert!(err.contains("out_features=0"), "{err}");
    for kind in [BatchNormKind::OneD, BatchNormKind::TwoD] {
        let built = BatchNorm::with_config(p, kind, 0, BatchNormConfig::default());
        assert_eq!(
            message(built.map(|_| String::new())),
            format!("{}: num_features=0 must be at least 1", kind.type_name())
        );
    }
    for (config, name) in [
        (Conv2dConfig::new(0, 4, 3), "in_channels"),
        (Conv2dConfig::new(1, 0, 3), "out_channels"),
        (Conv2dConfig::new(1, 4, 0), "kernel_size"),
        (
            Conv2dConfig {
                stride: 0,
                ..Conv2dConfig::new(1, 4, 3)
            },
            "stride",
        ),
    ] {
        let err = message(Conv2d::with_config(p, config, &mut rng).map(|_| String::new()));
        assert_eq!(err, format!("Conv2d: {name}=0 must be at least 1"));
    }
    // MaxPool2d is built without a Result (its fields are public): its shape check says so,
    // where a summary used to divide by the zero stride
    let err = Forward::output_shape(&MaxPool2d::new(0), &[1, 1, 4, 4]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "MaxPool2d: kernel_size=0 must be at least 1"
    );
    // a preset with a hidden width of zero, through the same constructors
    let dims = [784, 256, 0, 64, 10];
    let preset = bnlab::presets::Preset::Bn;
    let err = message(bnlab::presets::mlp(p, preset, &dims, &mut rng).map(|_| String::new()));
    assert!(err.contains("=0 must be at least 1"), "{err}");
}

#[test]
fn dropout_keeps_each_value_with_probability_1_minus_p_and_scales_it() {
    let (n, p) = (200_000, 0.3f32);
    let mut g = Graph::new(11);
    let mut drop = Dropout::new(p).unwrap();
    let x = g.input(&Tensor::full(&[n], 2.0), false).unwrap();
    let y = drop.forward(&mut g, x).unwrap();
    let kept = g.value(y).iter().filter(|&&v| v != 0.0).count();
    // binomial(n, 0.7): standard deviation sqrt(n p (1 - p)) = 205; allow 5 of them
    let expected = n as f64 * (1.0 - p as f64);
    assert!(
        (kept as f64 - expected).abs() < 5.0 * 205.0,
        "kept {kept} of {n}"
    );
    assert!(g
        .value(y)
        .iter()
        .all(|&v| v == 0.0 || (v - 2.0 / (1.0 - p)).abs() < 1e-6));
    // eval mode: the identity
    set_training(&mut drop, false);
    let y = drop.forward(&mut g, x).unwrap();
    assert!(g.value(y).iter().all(|&v| v == 2.0));
    // p = 1 drops everything, p outside [0, 1] is refused
    let mut all = Dropout::new(1.0).unwrap();
    let y = all.forward(&mut g, x).unwrap();
    assert!(g.value(y).iter().all(|&v| v == 0.0));
    assert!(Dropout::new(1.5).is_err() && Dropout::new(-0.1).is_err());
}

/// The batch variance stays accurate when the mean dwarfs the spread (a sum-of-squares formula
/// loses it all in f32 here): against a two-pass computation in f64.
#[test]
fn batch_variance_is_accurate_when_the_mean_dwarfs_the_spread() {
    let shape = [5, 2, 6, 7];
    let n: usize = shape.iter().product();
    let mut rng = Rng::seed(9);
    let data: Vec<f32> = (0..n).map(|_| 1000.0 + rng.uniform(-0.01, 0.01)).collect();
    let mut g = Graph::new(0);
    let x = g
        .input(&Tensor::new(&shape, data.clone()).unwrap(), false)
        .unwrap();
    let y = g
        .batch_norm(x, None, None, bnlab::BnStats::Batch { eps: 1e-5 })
        .unwrap();
    let (mean, var) = g.batch_stats(y).unwrap();
    for ch in 0..2 {
        let vals: Vec<f64> = data
            .chunks(2 * 42)
            .flat_map(|s| s[ch * 42..(ch + 1) * 42].iter().map(|&v| v as f64))
            .collect();
        let mu = vals.iter().sum::<f64>() / vals.len() as f64;
        let v = vals.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / vals.len() as f64;
        assert!(
            (mean[ch] as f64 - mu).abs() < 1e-4,
            "mean {} vs {mu}",
            mean[ch]
        );
        assert!(
            (var[ch] as f64 - v).abs() < 1e-2 * v,
            "channel {ch}: variance {} vs {v}",
            var[ch]
        );
    }
}

/// A module's own state-dict keys, in order (what `model.state_dict().keys()` lists).
fn keys(m: &dyn Module) -> Vec<String> {
    let mut names = Vec::new();
    visit_state(m, "", &mut |name, _| names.push(name.to_string()));
    names
}

#[test]
fn batch_norm_keys_follow_affine_and_track_running_stats_as_in_pytorch() {
    // torch.nn.BatchNorm1d(3, affine=a, track_running_stats=t).state_dict().keys()
    let all = [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ];
    for (affine, track, want) in [
        (true, true, &all[..]),
        (true, false, &all[..2]),
        (false, true, &all[2..]),
        (false, false, &all[..0]),
    ] {
        let mut g = Graph::new(0);
        let config = BatchNormConfig {
            affine,
            track_running_stats: track,
            ..Default::default()
        };
        let mut bn = BatchNorm::with_config(&mut g.params, BatchNormKind::OneD, 3, config).unwrap();
        assert_eq!(keys(&bn), want, "affine {affine}, track {track}");
        // the same entries to change, and num_batches_tracked is the int64 counter
        let mut changed = Vec::new();
        visit_state_mut(&mut bn, "", &mut |name, entry| {
            if let StateRef::Counter(c) = entry {
                *c = 7;
            }
            changed.push(name.to_string());
        });
        assert_eq!(changed, want);
        if track {
            assert_eq!(bn.num_batches_tracked, 7);
        }
    }
}

#[test]
fn built_in_layers_have_pytorchs_keys_and_class_names() {
    let mut g = Graph::new(0);
    let (p, rng) = (&mut g.params, &mut Rng::seed(0));
    let bn2 = BatchNorm::d2(p, 4).unwrap();
    assert_eq!(bn2.type_name(), "BatchNorm2d");
    let no_bias = Linear::with_config(
        p,
        LinearConfig {
            bias: false,
            ..LinearConfig::new(3, 2)
        },
        rng,
    )
    .unwrap();
    let cases: Vec<(Layer, &str, &[&str])> = vec![
        (
            Linear::new(p, 3, 2, rng).unwrap().into(),
            "Linear",
            &["weight", "bias"],
        ),
        (no_bias.into(), "Linear", &["weight"]),
        (
            Conv2d::new(p, 1, 2, 3, rng).unwrap().into(),
            "Conv2d",
            &["weight", "bias"],
        ),
        (
            LayerNorm::with_config(p, &[4], Default::default())
                .unwrap()
                .into(),
            "LayerNorm",
            &["weight", "bias"],
        ),
        (
            // nn.LayerNorm(4, bias=False)
            LayerNorm::with_config(
                p,
                &[4],
                LayerNormConfig {
                    bias: false,
                    ..Default::default()
                },
            )
            .unwrap()
            .into(),
            "LayerNorm",
            &["weight"],
        ),
        (
            GroupNorm::with_config(p, 2, 4, Default::default())
                .unwrap()
                .into(),
            "GroupNorm",
            &["weight", "bias"],
        ),
        (
            // nn.GroupNorm(2, 4, affine=False)
            GroupNorm::with_config(
                p,
                2,
                4,
                GroupNormConfig {
                    affine: false,
                    ..Default::default()
                },
            )
            .unwrap()
            .into(),
            "GroupNorm",
            &[],
        ),
        (
            bn2.into(),
            "BatchNorm2d",
            &[
                "weight",
                "bias",
                "running_mean",
                "running_var",
                "num_batches_tracked",
            ],
        ),
        (ReLU.into(), "ReLU", &[]),
        (Flatten.into(), "Flatten", &[]),
        (Dropout::new(0.5).unwrap().into(), "Dropout", &[]),
        (MaxPool2d::new(2).into(), "MaxPool2d", &[]),
    ];
    for (layer, name, want) in cases {
        assert_eq!(Module::type_name(&layer), name);
        assert_eq!(keys(&layer), want, "{name}");
        assert!(layer.children().is_empty(), "{name} has no children");
    }
}
