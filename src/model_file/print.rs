//! A model written back as PyTorch prints it (`print(model)`), so that a model bnlab changed
//! (a folded one) is a model file again: for eval, export, and PyTorch.

use crate::nn::{Layer, Net};

/// The text of `print(model)` for `net`, ending in a newline.
pub fn print_net(net: &Net) -> String {
    let mut out = String::new();
    container(
        &mut out,
        &net.name,
        net.blocks.iter().map(|(n, l)| (n.clone(), l)),
        0,
    );
    out.push('\n');
    out
}

fn container<'a>(
    out: &mut String,
    class: &str,
    children: impl Iterator<Item = (String, &'a Layer)>,
    indent: usize,
) {
    out.push_str(class);
    out.push('(');
    let pad = " ".repeat(indent + 2);
    let mut any = false;
    for (name, layer) in children {
        any = true;
        out.push('\n');
        out.push_str(&format!("{pad}({name}): "));
        module(out, layer, indent + 2);
    }
    if any {
        out.push('\n');
        out.push_str(&" ".repeat(indent));
    }
    out.push(')');
}

fn module(out: &mut String, layer: &Layer, indent: usize) {
    match layer {
        Layer::Sequential(s) => container(
            out,
            "Sequential",
            s.layers.iter().enumerate().map(|(i, l)| (i.to_string(), l)),
            indent,
        ),
        Layer::Net(n) => container(
            out,
            &n.name,
            n.blocks.iter().map(|(k, l)| (k.clone(), l)),
            indent,
        ),
        leaf => out.push_str(&leaf_repr(leaf)),
    }
}

/// PyTorch's `repr` of a layer that holds no other.
pub fn leaf_repr(layer: &Layer) -> String {
    let b = |v: bool| if v { "True" } else { "False" };
    match layer {
        Layer::Linear(l) => format!(
            "Linear(in_features={}, out_features={}, bias={})",
            l.in_features,
            l.out_features,
            b(l.bias.is_some())
        ),
        Layer::BatchNorm(bn) => format!(
            // PyTorch 2.15's text, with its BatchNorm `bias` (the example)
            "{}({}, eps={}, momentum={}, affine={}, bias={}, track_running_stats={})",
            bn.type_name(),
            bn.num_features,
            python_float(bn.config.eps),
            bn.config.momentum.map_or("None".into(), python_float),
            b(bn.config.affine),
            b(bn.config.affine),
            b(bn.config.track_running_stats)
        ),
        Layer::Conv2d(c) => {
            let (k, s, p) = (c.kernel_size, c.stride, c.padding);
            let mut t = format!(
                "Conv2d({}, {}, kernel_size=({k}, {k}), stride=({s}, {s})",
                c.in_channels, c.out_channels
            );
            if p != 0 {
                t += &format!(", padding=({p}, {p})");
            }
            if c.bias.is_none() {
                t += ", bias=False";
            }
            t + ")"
        }
        Layer::MaxPool2d(m) => format!(
            "MaxPool2d(kernel_size={}, stride={}, padding=0, dilation=1, ceil_mode=False)",
            m.kernel_size, m.stride
        ),
        Layer::AvgPool2d(a) => format!(
            "AvgPool2d(kernel_size={}, stride={}, padding=0)",
            pair(a.kernel_size),
            pair(a.stride)
        ),
        Layer::ReLU(_) => "ReLU()".into(),
        Layer::Sigmoid(_) => "Sigmoid()".into(),
        Layer::Tanh(_) => "Tanh()".into(),
        Layer::Identity(_) => "Identity()".into(),
        Layer::LeakyReLU(l) => format!(
            "LeakyReLU(negative_slope={})",
            python_float(l.negative_slope)
        ),
        Layer::Gelu(g) => format!("GELU(approximate='{}')", g.approximate_name()),
        Layer::Dropout(d) => format!("Dropout(p={}, inplace=False)", python_float(d.p)),
        Layer::Flatten(_) => "Flatten(start_dim=1, end_dim=-1)".into(),
        Layer::LayerNorm(l) => {
            let dims: Vec<String> = l.normalized_shape.iter().map(usize::to_string).collect();
            let shape = if dims.len() == 1 {
                format!("({},)", dims[0])
            } else {
                format!("({})", dims.join(", "))
            };
            format!(
                "LayerNorm({shape}, eps={}, elementwise_affine={}, bias={})",
                python_float(l.config.eps),
                b(l.config.elementwise_affine),
                b(l.config.bias)
            )
        }
        Layer::GroupNorm(g) => format!(
            "GroupNorm({}, {}, eps={}, affine={}, bias={})",
            g.num_groups,
            g.num_channels,
            python_float(g.config.eps),
            b(g.config.affine),
            b(g.config.bias)
        ),
        Layer::Custom(m) => format!("{}()", m.type_name()),
        Layer::Sequential(_) | Layer::Net(_) => unreachable!("containers are printed by module"),
    }
}

/// `k` for a square size, `(kh, kw)` otherwise, as PyTorch prints a size given either way.
fn pair((a, b): (usize, usize)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("({a}, {b})")
    }
}

/// An f32 as Python's `repr` prints the float it came from: the shortest digits that read back
/// the same, positional between 1e-4 and 1e16 (`0.1`, `1.0`), else `1e-05`.
pub fn python_float(v: f32) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{v:e}"); // shortest round-trip digits: "1e-5", "1.5e0"
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    if (-4..16).contains(&exp) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::python_float;

    #[test]
    fn a_preset_file_prints_back_as_it_was_written() {
        for name in [
            "bn",
            "plain",
            "dropout",
            "bn-dropout",
            "bn-after-relu",
            "cnn-bn",
            "cnn-plain",
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("examples/models/{name}.txt"));
            let file = crate::model_file::ModelFile::read(&path).unwrap();
            let mut g = crate::Graph::new(0);
            let net = file
                .build(&[1, 1, 28, 28], &mut g.params, &mut crate::Rng::seed(0))
                .unwrap();
            assert_eq!(super::print_net(&net), file.text, "{name}");
        }
    }

    #[test]
    fn floats_print_as_python_prints_them() {
        for (v, want) in [
            (1e-5, "1e-05"),
            (0.1, "0.1"),
            (1.0, "1.0"),
            (0.001, "0.001"),
            (0.5, "0.5"),
            (1e-4, "0.0001"),
            (2.5e-7, "2.5e-07"),
            (1e20, "1e+20"),
        ] {
            assert_eq!(python_float(v), want);
        }
    }
}
