//! `bnlab::summary::summary` against torchinfo: the seed chapter's table is the oracle for the
//! `bn` preset; the other presets follow the same rules, checked against numbers worked out by
//! hand here.
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

use bnlab::nn::{BatchNorm, Layer, Linear, Net, ReLU, Sequential};
use bnlab::presets::Preset;
use bnlab::summary::summary;
use bnlab::{Error, Graph, Rng};
mod common;
use common::run_files::with_commas;

/// The seed chapter's `torchinfo.summary(bn_model, (1, 28, 28))`, copied from
/// seed/batch-normalization.md (without the notebook's four-space indentation).
const SEED_TABLE: &str = "\
==========================================================================================\n\
Layer (type:depth-idx)                   Output Shape              Param #\n\
==========================================================================================\n\
BNModel                                  [1, 10]                   --\n\
├─Sequential: 1-1                        [1, 256]                  --\n\
│    └─Linear: 2-1                       [1, 256]                  200,960\n\
│    └─BatchNorm1d: 2-2                  [1, 256]                  512\n\
│    └─ReLU: 2-3                         [1, 256]                  --\n\
├─Sequential: 1-2                        [1, 128]                  --\n\
│    └─Linear: 2-4                       [1, 128]                  32,896\n\
│    └─BatchNorm1d: 2-5                  [1, 128]                  256\n\
│    └─ReLU: 2-6                         [1, 128]                  --\n\
├─Sequential: 1-3                        [1, 64]                   --\n\
│    └─Linear: 2-7                       [1, 64]                   8,256\n\
│    └─BatchNorm1d: 2-8                  [1, 64]                   128\n\
│    └─ReLU: 2-9                         [1, 64]                   --\n\
├─Linear: 1-4                            [1, 10]                   650\n\
==========================================================================================\n\
Total params: 243,658\n\
Trainable params: 243,658\n\
Non-trainable params: 0\n\
Total mult-adds (M): 0.24\n\
==========================================================================================\n\
Input size (MB): 0.00\n\
Forward/backward pass size (MB): 0.01\n\
Params size (MB): 0.97\n\
Estimated Total Size (MB): 0.99\n\
==========================================================================================";

/// A table in torchinfo's layout, written out from hand-worked rows and totals: the name column
/// `width` wide, the others 25, rules as wide as the table. The seed test checks this helper
/// against the oracle before the other tests rely on it.
struct Expected<'a> {
    width: usize,
    rows: &'a [(&'a str, &'a str, &'a str)],
    params: &'a str,
    mult_adds: &'a str,
    /// Input, forward/backward pass, params and estimated total size, in MB.
    sizes: [&'a str; 4],
}

impl Expected<'_> {
    fn render(&self) -> String {
        let rule = "=".repeat(self.width + 50);
        let w = self.width;
        let row =
            |a: &str, b: &str, c: &str| format!("{}\n", format!("{a:<w$} {b:<25} {c}").trim_end());
        let mut s = format!("{rule}\n");
        s += &row("Layer (type:depth-idx)", "Output Shape", "Param #");
        s += &format!("{rule}\n");
        for (a, b, c) in self.rows {
            s += &row(a, b, c);
        }
        s += &format!("{rule}\n");
        s += &format!("Total params: {}\n", self.params);
        s += &format!("Trainable params: {}\n", self.params);
        s += "Non-trainable params: 0\n";
        s += &format!("Total mult-adds {}\n", self.mult_adds);
        s += &format!("{rule}\n");
        s += &format!("Input size (MB): {}\n", self.sizes[0]);
        s += &format!("Forward/backward pass size (MB): {}\n", self.sizes[1]);
        s += &format!("Params size (MB): {}\n", self.sizes[2]);
        s += &format!("Estimated Total Size (MB): {}\n", self.sizes[3]);
        s + &rule
    }
}

fn preset_summary(preset: Preset, input: &[usize]) -> bnlab::Result<String> {
    let mut g = Graph::new(0);
    let net = preset.build(&mut g.params, 1, 28, &mut Rng::seed(0))?;
    summary(&net, &g.params, input)
}

/// The seed's widths: Linear 784-256-128-64-10, BatchNorm1d on the three hidden widths.
const LINEAR_PARAMS: [u64; 4] = [
    784 * 256 + 256,
    256 * 128 + 128,
    128 * 64 + 64,
    64 * 10 + 10,
];
const BN_PARAMS: u64 = 2 * (256 + 128 + 64);

/// The rows of an MLP preset whose blocks hold `kinds` (in order) after their Linear, batch 1.
fn mlp_rows(model: &str, kinds: &[&str], batch: usize) -> Vec<(String, String, String)> {
    let widths = [256, 128, 64];
    let mut rows = vec![(
        model.to_string(),
        format!("[{batch}, 10]"),
        "--".to_string(),
    )];
    let mut idx = 0;
    for (b, &w) in widths.iter().enumerate() {
        rows.push((
            format!("├─Sequential: 1-{}", b + 1),
            format!("[{batch}, {w}]"),
            "--".into(),
        ));
        idx += 1;
        rows.push((
            format!("│    └─Linear: 2-{idx}"),
            format!("[{batch}, {w}]"),
            with_commas(LINEAR_PARAMS[b]),
        ));
        for kind in kinds {
            idx += 1;
            let params = if *kind == "BatchNorm1d" {
                with_commas(2 * w as u64)
            } else {
                "--".into()
            };
            rows.push((
                format!("│    └─{kind}: 2-{idx}"),
                format!("[{batch}, {w}]"),
                params,
            ));
        }
    }
    rows.push((
        "├─Linear: 1-4".into(),
        format!("[{batch}, 10]"),
        "650".into(),
    ));
    rows
}

fn check_mlp(
    preset: Preset,
    model: &str,
    kinds: &[&str],
    params: &str,
    mult_adds: &str,
    sizes: [&str; 4],
) {
    let rows = mlp_rows(model, kinds, 1);
    let rows: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let expected = Expected {
        width: 40,
        rows: &rows,
        params,
        mult_adds,
        sizes,
    }
    .render();
    assert_eq!(
        preset_summary(preset, &[1, 28, 28]).unwrap(),
        expected,
        "{preset}"
    );
}

#[test]
fn bn_preset_is_the_seed_table() {
    let got = preset_summary(Preset::Bn, &[1, 28, 28]).unwrap();
    assert_eq!(got, SEED_TABLE);
    assert!(!got.starts_with('\n') && got.ends_with(&"=".repeat(90)));
}

#[test]
fn helper_reproduces_the_seed_table() {
    let rows = mlp_rows("BNModel", &["BatchNorm1d", "ReLU"], 1);
    let rows: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let expected = Expected {
        width: 40,
        rows: &rows,
        params: "243,658",
        mult_adds: "(M): 0.24",
        sizes: ["0.00", "0.01", "0.97", "0.99"],
    };
    assert_eq!(expected.render(), SEED_TABLE);
}

#[test]
fn hand_worked_totals_of_the_seed_model() {
    // Every count and size below the rows, from the layer widths alone.
    let params: u64 = LINEAR_PARAMS.iter().sum::<u64>() + BN_PARAMS;
    assert_eq!(params, 243_658);
    // Batch 1: mult-adds = 1 x the parameter elements of each Linear and BatchNorm, the same
    // 243,658 = 0.243658 M -> 0.24.
    let input = 784 * 4; // 3,136 B -> 0.00 MB
    let pass = 2 * 4 * 2 * (256 + 128 + 64) + 2 * 4 * 10; // Linear and BatchNorm outputs, x2: 7,248 B -> 0.01
    let param_bytes = 4 * params; // 974,632 B -> 0.97
    assert_eq!((input, pass, param_bytes), (3136, 7248, 974_632));
    // Summed in bytes, then rounded once: 985,016 B -> 0.99 (rounding first would give 0.98).
    assert_eq!(input + pass + param_bytes, 985_016);
}

#[test]
fn plain_preset() {
    let params = 243_658 - BN_PARAMS;
    assert_eq!(params, 242_762);
    // input 3,136 B; Linear outputs x2: 8 x (256 + 128 + 64 + 10) = 3,664 B; params 971,048 B;
    // total 977,848 B.
    assert_eq!(8 * (256 + 128 + 64 + 10) + 3136 + 4 * params, 977_848);
    check_mlp(
        Preset::Plain,
        "PlainModel",
        &["ReLU"],
        "242,762",
        "(M): 0.24",
        ["0.00", "0.00", "0.97", "0.98"],
    );
}

#[test]
fn dropout_preset() {
    check_mlp(
        Preset::Dropout,
        "DropoutModel",
        &["ReLU", "Dropout"],
        "242,762",
        "(M): 0.24",
        ["0.00", "0.00", "0.97", "0.98"],
    );
}

#[test]
fn bn_dropout_preset() {
    check_mlp(
        Preset::BnDropout,
        "BNDropoutModel",
        &["BatchNorm1d", "ReLU", "Dropout"],
        "243,658",
        "(M): 0.24",
        ["0.00", "0.01", "0.97", "0.99"],
    );
}

#[test]
fn bn_after_relu_preset() {
    check_mlp(
        Preset::BnAfterRelu,
        "BNAfterReLUModel",
        &["ReLU", "BatchNorm1d"],
        "243,658",
        "(M): 0.24",
        ["0.00", "0.01", "0.97", "0.99"],
    );
}

#[test]
fn cnn_bn_preset() {
    // Conv2d(1, 32, 3): 288 + 32; Conv2d(32, 64, 3): 18,432 + 64; Linear(64*7*7, 128):
    // 401,408 + 128; BatchNorm2d(32), BatchNorm2d(64), BatchNorm1d(128); Linear(128, 10).
    let params = [320u64, 64, 18_496, 128, 401_536, 256, 1_290];
    assert_eq!(params.iter().sum::<u64>(), 422_090);
    // Conv: parameters x N x Ho x Wo; the others: N x parameters.
    let macs = 320 * 28 * 28 + 64 + 18_496 * 14 * 14 + 128 + 401_536 + 256 + 1_290;
    assert_eq!(macs, 4_279_370); // 4.28 M
                                 // Outputs of the layers with parameters, x2: 2 x 4 x (2 x 32x28x28 + 2 x 64x14x14 + 2 x 128 + 10).
    let pass = 8 * (2 * 32 * 28 * 28 + 2 * 64 * 14 * 14 + 2 * 128 + 10);
    assert_eq!(pass, 604_240); // 0.60 MB
    assert_eq!(3136 + pass + 4 * 422_090, 2_295_736); // params 1.69 MB, total 2.30 MB

    let rows = [
        ("CNNModel", "[1, 10]", "--"),
        ("├─Sequential: 1-1", "[1, 32, 14, 14]", "--"),
        ("│    └─Conv2d: 2-1", "[1, 32, 28, 28]", "320"),
        ("│    └─BatchNorm2d: 2-2", "[1, 32, 28, 28]", "64"),
        ("│    └─ReLU: 2-3", "[1, 32, 28, 28]", "--"),
        ("│    └─MaxPool2d: 2-4", "[1, 32, 14, 14]", "--"),
        ("├─Sequential: 1-2", "[1, 64, 7, 7]", "--"),
        ("│    └─Conv2d: 2-5", "[1, 64, 14, 14]", "18,496"),
        ("│    └─BatchNorm2d: 2-6", "[1, 64, 14, 14]", "128"),
        ("│    └─ReLU: 2-7", "[1, 64, 14, 14]", "--"),
        ("│    └─MaxPool2d: 2-8", "[1, 64, 7, 7]", "--"),
        ("├─Sequential: 1-3", "[1, 128]", "--"),
        ("│    └─Flatten: 2-9", "[1, 3136]", "--"),
        ("│    └─Linear: 2-10", "[1, 128]", "401,536"),
        ("│    └─BatchNorm1d: 2-11", "[1, 128]", "256"),
        ("│    └─ReLU: 2-12", "[1, 128]", "--"),
        ("├─Linear: 1-4", "[1, 10]", "1,290"),
    ];
    let expected = Expected {
        width: 40,
        rows: &rows,
        params: "422,090",
        mult_adds: "(M): 4.28",
        sizes: ["0.00", "0.60", "1.69", "2.30"],
    }
    .render();
    let got = preset_summary(Preset::CnnBn, &[1, 1, 28, 28]).unwrap();
    assert!(got.contains("Total params: 422,090\n"), "{got}");
    assert!(got.contains("Total mult-adds (M): 4.28\n"), "{got}");
    assert_eq!(got, expected);
}

#[test]
fn cnn_plain_preset_totals() {
    let params = 422_090 - (64 + 128 + 256);
    let got = preset_summary(Preset::CnnPlain, &[1, 1, 28, 28]).unwrap();
    assert!(got.starts_with(&format!("{}\nLayer (type:depth-idx)", "=".repeat(90))));
    assert!(
        got.contains(&format!("Total params: {}\n", with_commas(params))),
        "{got}"
    );
    // 4,279,370 - (64 + 128 + 256) = 4,278,922 -> 4.28
    assert!(got.contains("Total mult-adds (M): 4.28\n"), "{got}");
    // Outputs x2 without the BatchNorm layers: 8 x (32x28x28 + 64x14x14 + 128 + 10) = 302,160 B.
    assert!(
        got.contains("Forward/backward pass size (MB): 0.30\n"),
        "{got}"
    );
    assert!(
        got.contains("│    └─ReLU: 2-2                         [1, 32, 28, 28]           --\n"),
        "{got}"
    );
}

#[test]
fn batch_scales_mult_adds_and_sizes() {
    // Batch 256: mult-adds 256 x 243,658 = 62,376,448; input 256 x 3,136 = 802,816 B;
    // passes 256 x 7,248 = 1,855,488 B; total 802,816 + 1,855,488 + 974,632 = 3,632,936 B.
    let got = preset_summary(Preset::Bn, &[256, 28, 28]).unwrap();
    assert!(got.contains("BNModel                                  [256, 10]                 --\n"));
    assert!(got
        .contains("│    └─Linear: 2-1                       [256, 256]                200,960\n"));
    let tail = "Total params: 243,658\n\
                Trainable params: 243,658\n\
                Non-trainable params: 0\n\
                Total mult-adds (M): 62.38\n";
    assert!(got.contains(tail), "{got}");
    let sizes = "Input size (MB): 0.80\n\
                 Forward/backward pass size (MB): 1.86\n\
                 Params size (MB): 0.97\n\
                 Estimated Total Size (MB): 3.63\n";
    assert!(got.contains(sizes), "{got}");

    // Batch 8,192: 1,996,046,336 mult-adds switch to G.
    let got = preset_summary(Preset::Bn, &[8192, 28, 28]).unwrap();
    assert!(got.contains("Total mult-adds (G): 2.00\n"), "{got}");
    // 8,192 x 3,136 = 25,690,112 B; 8,192 x 7,248 = 59,375,616 B; total 86,040,360 B.
    assert!(
        got.contains("Input size (MB): 25.69\nForward/backward pass size (MB): 59.38\n"),
        "{got}"
    );
    assert!(got.contains("Estimated Total Size (MB): 86.04\n"), "{got}");
}

#[test]
fn whole_mult_adds_print_as_an_integer() {
    // torchinfo prints a whole number of units without decimals: Linear(999, 1000) has
    // 999,000 + 1,000 = 1,000,000 parameters, so 1,000,000 mult-adds at batch 1.
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(0);
    let net = Net {
        name: "OneMillion".into(),
        flatten_input: false,
        blocks: vec![(
            "fc".into(),
            Linear::new(&mut g.params, 999, 1000, &mut rng)
                .unwrap()
                .into(),
        )],
    };
    let expected = Expected {
        width: 40,
        rows: &[
            ("OneMillion", "[1, 1000]", "--"),
            ("├─Linear: 1-1", "[1, 1000]", "1,000,000"),
        ],
        params: "1,000,000",
        mult_adds: "(M): 1",
        // 3,996 B; 2 x 4,000 B; 4,000,000 B; 4,011,996 B.
        sizes: ["0.00", "0.01", "4.00", "4.01"],
    };
    assert_eq!(
        summary(&net, &g.params, &[1, 999]).unwrap(),
        expected.render()
    );
}

#[test]
fn deep_nesting_and_a_wide_name() {
    // body = Sequential(Sequential(Sequential(Linear(4, 3)), ReLU), BatchNorm1d(3)), head = Linear(3, 2).
    // torchinfo shows depth 3 at most: the innermost Sequential stands for its Linear (15
    // parameters) and the Linear (4-1) gets no row, but still counts. The model's name, 42
    // characters (+ 1), widens the name column to 45.
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(0);
    let p = &mut g.params;
    let inner = Sequential::new(vec![Linear::new(p, 4, 3, &mut rng).unwrap().into()]);
    let middle = Sequential::new(vec![inner.into(), ReLU.into()]);
    let body = Sequential::new(vec![middle.into(), BatchNorm::d1(p, 3).unwrap().into()]);
    let name = "AModelNameLongEnoughToWidenTheNameColumnXY";
    assert_eq!(name.len(), 42);
    let net = Net {
        name: name.into(),
        flatten_input: false,
        blocks: vec![
            ("body".into(), Layer::from(body)),
            (
                "head".into(),
                Linear::new(p, 3, 2, &mut rng).unwrap().into(),
            ),
        ],
    };
    let expected = Expected {
        width: 45,
        rows: &[
            (name, "[2, 2]", "--"),
            ("├─Sequential: 1-1", "[2, 3]", "--"),
            ("│    └─Sequential: 2-1", "[2, 3]", "--"),
            ("│    │    └─Sequential: 3-1", "[2, 3]", "15"),
            ("│    │    └─ReLU: 3-2", "[2, 3]", "--"),
            ("│    └─BatchNorm1d: 2-2", "[2, 3]", "6"),
            ("├─Linear: 1-2", "[2, 2]", "8"),
        ],
        // 15 + 6 + 8 parameters; 2 x 29 = 58 mult-adds; input 32 B, passes 2 x (24 + 24 + 16) B,
        // params 116 B.
        params: "29",
        mult_adds: "(M): 0.00",
        sizes: ["0.00", "0.00", "0.00", "0.00"],
    };
    let got = summary(&net, &g.params, &[2, 4]).unwrap();
    assert_eq!(got, expected.render());
    assert!(got.lines().all(|l| l.chars().count() <= 95));
}

fn shape_error(result: bnlab::Result<String>) -> String {
    match result {
        Err(Error::Shape(msg)) => msg,
        other => panic!("expected a shape error, got {other:?}"),
    }
}

#[test]
fn an_input_the_model_cannot_take_is_a_shape_error() {
    // 27 x 27 flattens to 729 features; the first Linear wants 784.
    let msg = shape_error(preset_summary(Preset::Bn, &[1, 27, 27]));
    assert!(msg.contains("Linear") && msg.contains("[1, 729]"), "{msg}");
    assert!(msg.contains("b1.0"), "{msg}");

    // Three channels into Conv2d(1, 32, 3).
    let msg = shape_error(preset_summary(Preset::CnnBn, &[1, 3, 28, 28]));
    assert!(
        msg.contains("Conv2d") && msg.contains("[1, 3, 28, 28]"),
        "{msg}"
    );

    // An image without its batch dimension.
    let msg = shape_error(preset_summary(Preset::CnnBn, &[1, 28, 28]));
    assert!(
        msg.contains("Conv2d") && msg.contains("[1, 28, 28]"),
        "{msg}"
    );

    // Too small for the second pooling window.
    let msg = shape_error(preset_summary(Preset::CnnBn, &[1, 1, 2, 2]));
    assert!(
        msg.contains("MaxPool2d") && msg.contains("[1, 64, 1, 1]"),
        "{msg}"
    );

    // No shape at all, or an empty axis.
    let msg = shape_error(preset_summary(Preset::Bn, &[]));
    assert!(msg.contains("[]"), "{msg}");
    shape_error(preset_summary(Preset::Bn, &[0, 28, 28]));
}

#[test]
fn parameters_from_another_store_are_an_error_not_a_panic() {
    let mut g = Graph::new(0);
    let net = Preset::Bn
        .build(&mut g.params, 1, 28, &mut Rng::seed(0))
        .unwrap();
    let empty = bnlab::ParamStore::new();
    assert!(matches!(
        summary(&net, &empty, &[1, 28, 28]),
        Err(Error::Invalid(_))
    ));
}
