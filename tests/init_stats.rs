//! Initialisation against PyTorch's definition and the statistics of U(-b, b).
//!
//! nn.Linear and nn.Conv2d call `kaiming_uniform_(weight, a=sqrt(5))` and draw the bias from
//! U(-1/sqrt(fan_in), 1/sqrt(fan_in)); with a = sqrt(5) the weight's bound is
//! gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + a^2)), which is again 1/sqrt(fan_in).
//! fan_in = in_features, or in_channels * kernel_h * kernel_w.
//!
//! For n independent draws of U(-b, b): mean 0 with standard error b / sqrt(3n); variance b^2/3,
//! and the sample variance has standard error b^2 sqrt((1/5 - 1/9) / n) (from the fourth moment
//! b^4/5); the Kolmogorov-Smirnov statistic sup |F_n - F| exceeds 1.95 / sqrt(n) with
//! probability 0.001. Tolerances are 5 standard errors, and the KS bound at 0.001.

use bnlab::graph::ParamStore;
use bnlab::nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear, LinearConfig, Module, StateView,
};
use bnlab::presets::Preset;
use bnlab::Rng;

/// PyTorch's bound for the given fan_in, from kaiming_uniform's own formula (not 1/sqrt).
fn kaiming_bound(fan_in: usize) -> f64 {
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    gain * (3.0 / fan_in as f64).sqrt()
}

/// Every value in [-bound, bound] (up to f32 rounding of the bound itself).
fn assert_in_bounds(what: &str, values: &[f32], bound: f64) {
    let b = bound * (1.0 + 1e-6);
    for (i, &v) in values.iter().enumerate() {
        assert!(
            (v as f64).abs() <= b,
            "{what}[{i}] = {v} is outside [-{bound}, {bound}]"
        );
    }
}

/// The moment and distribution checks of U(-bound, bound) for `values`.
fn assert_uniform(what: &str, values: &[f32], bound: f64) {
    let n = values.len() as f64;
    let xs: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    let mean = xs.iter().sum::<f64>() / n;
    let se_mean = bound / (3.0 * n).sqrt();
    assert!(
        mean.abs() <= 5.0 * se_mean,
        "{what}: mean {mean:e}, expected 0 within 5 x {se_mean:e}"
    );

    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let want_var = bound * bound / 3.0;
    let se_var = bound * bound * ((1.0 / 5.0 - 1.0 / 9.0) / n).sqrt();
    assert!(
        (var - want_var).abs() <= 5.0 * se_var,
        "{what}: variance {var:e}, expected bound^2/3 = {want_var:e} within 5 x {se_var:e}"
    );

    // Kolmogorov-Smirnov against F(x) = (x + b) / 2b
    let mut sorted = xs.clone();
    sorted.sort_by(f64::total_cmp);
    let d = sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = ((x + bound) / (2.0 * bound)).clamp(0.0, 1.0);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max);
    let crit = 1.95 / n.sqrt();
    assert!(
        d <= crit,
        "{what}: KS distance {d:e} from U(-{bound}, {bound}) exceeds {crit:e} (p = 0.001)"
    );

    // consecutive draws are uncorrelated (lag-1 autocorrelation, standard error 1/sqrt(n))
    let cov = xs
        .windows(2)
        .map(|w| (w[0] - mean) * (w[1] - mean))
        .sum::<f64>()
        / (n - 1.0);
    let r = cov / var;
    assert!(
        r.abs() <= 5.0 / n.sqrt(),
        "{what}: lag-1 autocorrelation {r:e}"
    );
}

fn values(params: &ParamStore, id: bnlab::ParamId) -> Vec<f32> {
    params.value(id).to_vec()
}

#[test]
fn kaiming_bound_is_one_over_sqrt_fan_in() {
    // the identity the layers rely on: gain(sqrt 5) * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
    for fan_in in [1, 3, 9, 64, 784, 3136] {
        let b = kaiming_bound(fan_in);
        assert!((b - 1.0 / (fan_in as f64).sqrt()).abs() < 1e-12 * b.max(1.0));
    }
}

#[test]
fn linear_weight_and_bias_are_uniform_in_the_bound() {
    // a large layer: 800,000 weights and 2,000 biases, bound 1/sqrt(400) = 0.05
    let (fan_in, out) = (400, 2000);
    let mut params = ParamStore::new();
    let l = Linear::new(&mut params, fan_in, out, &mut Rng::seed(1)).unwrap();
    assert_eq!(params.shape(l.weight), [out, fan_in]);
    assert_eq!(params.shape(l.bias.unwrap()), [out]);
    let b = kaiming_bound(fan_in);
    let (w, bias) = (values(&params, l.weight), values(&params, l.bias.unwrap()));
    assert_in_bounds("linear weight", &w, b);
    assert_in_bounds("linear bias", &bias, b);
    assert_uniform("linear weight", &w, b);
    assert_uniform("linear bias", &bias, b);
    // the whole range is used: the extremes of 800,000 draws are within 1e-3 b of the bounds
    let (lo, hi) = w
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    assert!(
        (lo as f64) < -b * (1.0 - 1e-3) && (hi as f64) > b * (1.0 - 1e-3),
        "range [{lo}, {hi}] for bound {b}"
    );
}

#[test]
fn linear_bias_bound_uses_fan_in_not_fan_out() {
    // Linear(1000, 10): bound 1/sqrt(1000) ~ 0.0316 for the bias too (1/sqrt(10) ~ 0.316 would be wrong)
    let mut params = ParamStore::new();
    let l = Linear::new(&mut params, 1000, 10, &mut Rng::seed(2)).unwrap();
    let b = kaiming_bound(1000);
    assert_in_bounds("bias", &values(&params, l.bias.unwrap()), b);
    assert_in_bounds("weight", &values(&params, l.weight), b);
    // and for a wide-out layer, the weight's bound is not 1/sqrt(out)
    let l = Linear::new(&mut params, 10, 1000, &mut Rng::seed(3)).unwrap();
    let b = kaiming_bound(10);
    let w = values(&params, l.weight);
    assert_in_bounds("weight", &w, b);
    assert_uniform("weight (10 -> 1000)", &w, b);
}

#[test]
fn linear_without_bias_has_no_bias() {
    let mut params = ParamStore::new();
    let l = Linear::with_config(
        &mut params,
        LinearConfig {
            bias: false,
            ..LinearConfig::new(5, 3)
        },
        &mut Rng::seed(4),
    )
    .unwrap();
    assert!(l.bias.is_none());
    assert_eq!(params.len(), 1);
    assert_in_bounds("weight", &values(&params, l.weight), kaiming_bound(5));
}

#[test]
fn conv2d_weight_and_bias_are_uniform_in_the_bound() {
    // fan_in = in_channels * k * k = 16 * 5 * 5 = 400; 102,400 weights, 256 biases
    let (cin, cout, k) = (16, 256, 5);
    let mut params = ParamStore::new();
    let c = Conv2d::with_config(
        &mut params,
        Conv2dConfig {
            stride: 1,
            padding: 0,
            bias: true,
            ..Conv2dConfig::new(cin, cout, k)
        },
        &mut Rng::seed(5),
    )
    .unwrap();
    assert_eq!(params.shape(c.weight), [cout, cin, k, k]);
    assert_eq!(params.shape(c.bias.unwrap()), [cout]);
    let b = kaiming_bound(cin * k * k);
    let (w, bias) = (values(&params, c.weight), values(&params, c.bias.unwrap()));
    assert_in_bounds("conv weight", &w, b);
    assert_in_bounds("conv bias", &bias, b);
    assert_uniform("conv weight", &w, b);
    assert_uniform("conv bias", &bias, b);
}

#[test]
fn conv2d_bound_counts_the_kernel_area() {
    // Conv2d(1, 32, 3): fan_in 9, bound 1/3 (not 1/sqrt(in_channels) = 1)
    let mut params = ParamStore::new();
    let c = Conv2d::with_config(
        &mut params,
        Conv2dConfig {
            stride: 1,
            padding: 1,
            bias: true,
            ..Conv2dConfig::new(1, 32, 3)
        },
        &mut Rng::seed(6),
    )
    .unwrap();
    let b = kaiming_bound(9);
    let w = values(&params, c.weight);
    assert_in_bounds("weight", &w, b);
    assert_in_bounds("bias", &values(&params, c.bias.unwrap()), b);
    assert_uniform("conv(1, 32, 3) weight", &w, b);
    let c = Conv2d::with_config(
        &mut params,
        Conv2dConfig {
            stride: 2,
            padding: 0,
            bias: false,
            ..Conv2dConfig::new(4, 8, 3)
        },
        &mut Rng::seed(7),
    )
    .unwrap();
    assert!(c.bias.is_none());
    assert_in_bounds("weight", &values(&params, c.weight), kaiming_bound(36));
}

#[test]
fn same_seed_same_weights_different_seed_different_weights() {
    let build = |seed: u64| {
        let mut params = ParamStore::new();
        let mut rng = Rng::seed(seed);
        let l = Linear::new(&mut params, 30, 20, &mut rng).unwrap();
        let c = Conv2d::with_config(
            &mut params,
            Conv2dConfig {
                stride: 1,
                padding: 1,
                bias: true,
                ..Conv2dConfig::new(3, 4, 3)
            },
            &mut rng,
        )
        .unwrap();
        [l.weight, l.bias.unwrap(), c.weight, c.bias.unwrap()].map(|id| values(&params, id))
    };
    let (a, b, c) = (build(11), build(11), build(12));
    for k in 0..4 {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&a[k]),
            bits(&b[k]),
            "tensor {k}: same seed, different values"
        );
        let same = a[k].iter().zip(&c[k]).filter(|(x, y)| x == y).count();
        assert!(
            same <= a[k].len() / 100,
            "tensor {k}: seeds 11 and 12 agree on {same} of {} values",
            a[k].len()
        );
    }
}

#[test]
fn successive_layers_draw_fresh_values() {
    // two layers from one generator are not copies of each other
    let mut params = ParamStore::new();
    let mut rng = Rng::seed(13);
    let l1 = Linear::new(&mut params, 8, 8, &mut rng).unwrap();
    let l2 = Linear::new(&mut params, 8, 8, &mut rng).unwrap();
    assert_ne!(values(&params, l1.weight), values(&params, l2.weight));
    assert_ne!(
        values(&params, l1.weight)[..8],
        values(&params, l1.bias.unwrap())[..]
    );
}

/// weight, bias, running_mean, running_var, num_batches_tracked from the module's state.
fn bn_state(bn: &mut BatchNorm, params: &ParamStore) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let mut out = Vec::new();
    for (name, s) in bn.own_state() {
        let (shape, vals) = match s {
            StateView::Param(_) | StateView::MappedParam(..) => {
                let t = s.torch_param(params).unwrap();
                (t.shape, t.data.iter().map(|&v| v as f64).collect())
            }
            StateView::Buffer(t) => (t.shape.clone(), t.data.iter().map(|&v| v as f64).collect()),
            StateView::Counter(c) => (vec![], vec![c as f64]),
        };
        out.push((name.to_string(), shape, vals));
    }
    out
}

#[test]
fn batch_norm_starts_at_weight_1_bias_0_mean_0_var_1_count_0() {
    let mut params = ParamStore::new();
    for (mut bn, c) in [
        (BatchNorm::d1(&mut params, 7).unwrap(), 7),
        (BatchNorm::d2(&mut params, 5).unwrap(), 5),
    ] {
        assert_eq!(bn.num_batches_tracked, 0);
        let state = bn_state(&mut bn, &params);
        let names: Vec<&str> = state.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "weight",
                "bias",
                "running_mean",
                "running_var",
                "num_batches_tracked"
            ]
        );
        let want = [1.0, 0.0, 0.0, 1.0];
        for ((name, shape, vals), w) in state.iter().zip(want) {
            assert_eq!(shape, &[c], "{name} shape");
            assert!(
                vals.iter().all(|&v| v == w),
                "{name} = {vals:?}, expected all {w}"
            );
        }
        let (_, shape, count) = &state[4];
        assert!(shape.is_empty());
        assert_eq!(count, &[0.0]);
    }
}

#[test]
fn batch_norm_defaults_are_pytorchs() {
    // eps 1e-5, momentum 0.1, affine, track_running_stats
    let c = BatchNormConfig::default();
    assert_eq!(c.eps, 1e-5);
    assert_eq!(c.momentum, Some(0.1));
    assert!(c.affine && c.track_running_stats);
    let mut params = ParamStore::new();
    let mut bn = BatchNorm::with_config(
        &mut params,
        bnlab::nn::BatchNormKind::OneD,
        3,
        BatchNormConfig { affine: false, ..c },
    )
    .unwrap();
    assert!(bn.weight.is_none() && bn.bias.is_none());
    assert_eq!(params.len(), 0);
    let names: Vec<String> = bn_state(&mut bn, &params)
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(
        names,
        ["running_mean", "running_var", "num_batches_tracked"]
    );
}

#[test]
fn seed_model_preset_initialises_every_layer_as_pytorch() {
    let mut params = ParamStore::new();
    let model = Preset::Bn
        .build(&mut params, 1, 28, &mut Rng::seed(0))
        .unwrap();
    let mut checked = 0;
    let mut bounds_of_linear = std::collections::HashMap::new();
    bnlab::nn::visit_state(&model, "", &mut |name, s| {
        checked += 1;
        match s {
            StateView::Param(id) | StateView::MappedParam(id, _) => {
                let v = params.value(id);
                let layer = &name[..name.rfind('.').unwrap()];
                if name.ends_with(".1.weight") {
                    assert!(v.iter().all(|&x| x == 1.0), "{name}");
                } else if name.ends_with(".1.bias") {
                    assert!(v.iter().all(|&x| x == 0.0), "{name}");
                } else if name.ends_with(".weight") {
                    // Linear weight (out, in) in PyTorch's layout: fan_in = in
                    let fan_in = s.torch_param(&params).unwrap().shape[1];
                    bounds_of_linear.insert(layer.to_string(), fan_in);
                    assert_in_bounds(name, v, kaiming_bound(fan_in));
                    assert_uniform(name, v, kaiming_bound(fan_in));
                } else {
                    let fan_in = bounds_of_linear[layer];
                    assert_in_bounds(name, v, kaiming_bound(fan_in));
                }
            }
            StateView::Buffer(t) => {
                let want = if name.ends_with("running_var") {
                    1.0
                } else {
                    0.0
                };
                assert!(t.data.iter().all(|&x| x == want), "{name}");
            }
            StateView::Counter(c) => assert_eq!(c, 0, "{name}"),
        }
    });
    assert_eq!(checked, 23);
    assert_eq!(bounds_of_linear.len(), 4);
    assert_eq!(bounds_of_linear["b1.0"], 784);
    assert_eq!(bounds_of_linear["output"], 64);
}
