//! `torchinfo.summary(model, input_size)`, character for character: the table of layers with
//! their output shapes and parameter counts, then the totals (parameters, mult-adds, memory).
//!
//! It follows torchinfo 1.8's rules with its default options (columns "Output Shape" and
//! "Param #", 25 wide, row setting "depth", depth 3):
//! - one row per module in forward order: the model itself (depth 0, no index), then each block
//!   and each layer inside a container, named `Type: depth-idx` where idx counts the modules of
//!   that depth across the whole model; modules deeper than 3 are not shown but still count;
//! - a layer with parameters shows their number, a container or a layer without parameters
//!   `--` (a container at the maximum depth shows the parameters of all it holds);
//! - the name column is 40 wide, or wider (a multiple of 5) when the longest name with its
//!   indentation (5 per level, plus 1) reaches 40; the rules are as wide as the table;
//! - totals count parameters only (BatchNorm's running buffers are buffers); mult-adds sum, over
//!   the layers that hold no other layer, batch x parameter elements (Linear, BatchNorm) or
//!   parameter elements x N x Ho x Wo (Conv2d), shown in M (G from 1e9, T from 1e12) with two
//!   decimals, or as an integer when the value is one;
//! - sizes in MB (bytes / 1e6, two decimals): the input (float32), twice the outputs of the
//!   layers that hold parameters (forward and backward), the parameters, and their sum (summed
//!   in bytes, then converted and rounded once).
//!
//! A model whose `forward` flattens its input inline (`nn.Flatten()(X)`, `Net::flatten_input`)
//! shows no row for that: torchinfo only sees registered modules.

use crate::graph::{ParamId, ParamStore};
use crate::nn::{parameters, Module};
use crate::{Error, Result};

/// torchinfo's default `depth`: modules deeper than this get no row.
const MAX_DEPTH: usize = 3;
/// torchinfo's default `col_width`.
const COL_WIDTH: usize = 25;
/// torchinfo's starting width of the name column.
const NAME_WIDTH: usize = 40;
/// Bytes per element: bnlab's tensors are float32.
const ELEM_BYTES: u64 = 4;

/// One module of the model, as torchinfo records it.
struct Row {
    type_name: String,
    depth: usize,
    /// `None` for the model itself (depth 0), which shows no `: depth-idx`.
    idx: Option<usize>,
    output: Vec<usize>,
    /// Parameter elements of this module and everything it holds.
    num_params: u64,
    /// Holds no other module.
    is_leaf: bool,
    macs: u64,
}

impl Row {
    fn title(&self) -> String {
        match self.idx {
            Some(i) if self.depth > 0 => format!("{}: {}-{}", self.type_name, self.depth, i),
            _ => self.type_name.clone(),
        }
    }

    fn output_bytes(&self) -> u64 {
        product(&self.output) * ELEM_BYTES
    }

    /// The "Param #" cell: containers hold no parameters of their own, so they show `--`
    /// unless the table stops at their depth.
    fn params_cell(&self) -> String {
        if self.num_params > 0 && (self.is_leaf || self.depth == MAX_DEPTH) {
            thousands(self.num_params)
        } else {
            "--".to_string()
        }
    }
}

/// torchinfo's summary of `model` for an input of shape `input` (batch dimension included), as
/// `torchinfo.summary(model, input)` prints it (without the final newline `print` adds).
///
/// Any [`Module`] can be described: a module's output shape is its own
/// [`crate::nn::Forward::output_shape`] when it tells one, or else its input passed through its
/// children in order (after [`crate::nn::Forward::children_input`]), as a Sequential or a model whose forward runs
/// its blocks one after another. Parameter counts come from `params`, the store the model's
/// parameters live in. An input the model cannot take gives [`Error::Shape`] naming the layer
/// and the shape it was given.
pub fn summary(model: &dyn Module, params: &ParamStore, input: &[usize]) -> Result<String> {
    let name = model.type_name().to_string();
    if input.is_empty() || input.contains(&0) {
        return Err(Error::Shape(format!(
            "summary of {name}: input shape {input:?} must have a batch dimension and no empty axis"
        )));
    }
    let mut walker = Walker {
        params,
        model: &name,
        counters: Vec::new(),
        rows: Vec::new(),
    };
    walker.walk(model, "", input, 0)?;
    Ok(render(&walker.rows, product(input) * ELEM_BYTES))
}

/// Goes through the model in forward order, as torchinfo's hooks see it.
struct Walker<'a> {
    params: &'a ParamStore,
    model: &'a str,
    /// Modules seen so far per depth: the `idx` of `depth-idx`.
    counters: Vec<usize>,
    rows: Vec<Row>,
}

impl Walker<'_> {
    /// Add the rows of `module` (at `depth`, named `path` in the state dict) and of everything
    /// it holds; gives its output shape and its parameter elements.
    fn walk(
        &mut self,
        module: &dyn Module,
        path: &str,
        input: &[usize],
        depth: usize,
    ) -> Result<(Vec<usize>, u64)> {
        if self.counters.len() <= depth {
            self.counters.resize(depth + 1, 0);
        }
        self.counters[depth] += 1;
        let idx = self.counters[depth];
        let row = self.rows.len();
        let type_name = module.type_name().to_string();
        self.rows.push(Row {
            type_name: type_name.clone(),
            depth,
            idx: (depth > 0).then_some(idx),
            output: Vec::new(),
            num_params: 0,
            is_leaf: true,
            macs: 0,
        });
        let here = || {
            if depth == 0 {
                "the model's input".to_string()
            } else {
                format!("{path} ({type_name}: {depth}-{idx})")
            }
        };
        let children = module.children();
        let (output, num_params) = if children.is_empty() {
            let output = module
                .output_shape(input)
                .map_err(|e| shape_error(self.model, &here(), e))?;
            let num_params = parameters(module)
                .into_iter()
                .map(|id| elements(self.params, id, &here()))
                .sum::<Result<u64>>()?;
            self.rows[row].macs = leaf_macs(&type_name, &output, num_params);
            (output, num_params)
        } else {
            let mut shape = module
                .children_input(input)
                .map_err(|e| shape_error(self.model, &here(), e))?;
            let mut total = 0;
            for (name, child) in &children {
                let child_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                let (out, n) = self.walk(*child, &child_path, &shape, depth + 1)?;
                shape = out;
                total += n;
            }
            self.rows[row].is_leaf = false;
            // a module that tells its own output shape (a residual block) overrides the chain
            (module.output_shape(input).unwrap_or(shape), total)
        };
        self.rows[row].output = output.clone();
        self.rows[row].num_params = num_params;
        Ok((output, num_params))
    }
}

/// torchinfo's mult-adds of a layer that holds no other: its weight and bias elements times the
/// batch, and for a convolution also times every output position (the channels left out).
fn leaf_macs(type_name: &str, output: &[usize], num_params: u64) -> u64 {
    if type_name.contains("Conv") {
        num_params * product(&output[..1]) * product(&output[2..])
    } else {
        output.first().map_or(0, |&n| n as u64 * num_params)
    }
}

fn elements(params: &ParamStore, id: ParamId, layer: &str) -> Result<u64> {
    if id.index() >= params.len() {
        return Err(Error::Invalid(format!(
            "summary: {layer} has parameter #{} but the parameter store holds {}",
            id.index(),
            params.len()
        )));
    }
    Ok(product(params.shape(id)))
}

fn shape_error(model: &str, layer: &str, e: Error) -> Error {
    match e {
        Error::Shape(msg) => Error::Shape(format!(
            "summary of {model}: {layer} cannot take its input: {msg}"
        )),
        other => other,
    }
}

fn product(shape: &[usize]) -> u64 {
    shape.iter().map(|&d| d as u64).product()
}

fn render(rows: &[Row], input_bytes: u64) -> String {
    // torchinfo widens the name column when the longest name with its indentation reaches it,
    // counting every module, shown or not.
    let longest = rows
        .iter()
        .map(|r| r.title().chars().count() + r.depth * 5 + 1)
        .max()
        .unwrap_or(0);
    let name_width = if longest >= NAME_WIDTH {
        longest.div_ceil(5) * 5
    } else {
        NAME_WIDTH
    };
    let rule = "=".repeat(name_width + 2 * COL_WIDTH);
    let line = |name: &str, shape: &str, params: &str| {
        let row = format!("{name:<name_width$} {shape:<COL_WIDTH$} {params:<COL_WIDTH$}");
        format!("{}\n", row.trim_end())
    };

    let mut s = format!("{rule}\n");
    s += &line("Layer (type:depth-idx)", "Output Shape", "Param #");
    s += &format!("{rule}\n");
    for r in rows.iter().filter(|r| r.depth <= MAX_DEPTH) {
        let name = format!("{}{}", indent(r.depth), r.title());
        s += &line(&name, &format!("{:?}", r.output), &r.params_cell());
    }

    let leaves = || rows.iter().filter(|r| r.is_leaf);
    let total_params: u64 = leaves().map(|r| r.num_params).sum();
    let macs: u64 = leaves().map(|r| r.macs).sum();
    let pass_bytes: u64 = leaves()
        .filter(|r| r.num_params > 0)
        .map(|r| 2 * r.output_bytes())
        .sum();
    let param_bytes = total_params * ELEM_BYTES;
    let total_bytes = input_bytes + pass_bytes + param_bytes;
    let mb = |bytes: u64| format!("{:.2}", bytes as f64 / 1e6);

    s += &format!("{rule}\n");
    s += &format!("Total params: {}\n", thousands(total_params));
    s += &format!("Trainable params: {}\n", thousands(total_params));
    s += "Non-trainable params: 0\n";
    s += &format!("Total mult-adds {}\n", mult_adds(macs));
    s += &format!("{rule}\n");
    s += &format!("Input size (MB): {}\n", mb(input_bytes));
    s += &format!("Forward/backward pass size (MB): {}\n", mb(pass_bytes));
    s += &format!("Params size (MB): {}\n", mb(param_bytes));
    s += &format!("Estimated Total Size (MB): {}\n", mb(total_bytes));
    s += &rule;
    s
}

/// The tree drawing before a name: `├─` at depth 1, `│    ` per level and `└─` deeper.
fn indent(depth: usize) -> String {
    match depth {
        0 => String::new(),
        1 => "├─".to_string(),
        d => format!("{}└─", "│    ".repeat(d - 1)),
    }
}

/// `(M): 0.24`: millions, or billions / trillions from 1e9 / 1e12, two decimals with thousands
/// separators, or an integer when the value is a whole number (as torchinfo prints it).
fn mult_adds(macs: u64) -> String {
    let m = macs as f64;
    let (unit, value) = if m >= 1e12 {
        ("T", m / 1e12)
    } else if m >= 1e9 {
        ("G", m / 1e9)
    } else {
        ("M", m / 1e6)
    };
    let digits = if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    };
    let (int, frac) = digits
        .split_once('.')
        .map_or((digits.as_str(), None), |(i, f)| (i, Some(f)));
    let int = thousands(int.parse().unwrap_or(0));
    match frac {
        Some(f) => format!("({unit}): {int}.{f}"),
        None => format!("({unit}): {int}"),
    }
}

/// `243658` -> `243,658`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(650), "650");
        assert_eq!(thousands(8256), "8,256");
        assert_eq!(thousands(243_658), "243,658");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn mult_adds_units() {
        assert_eq!(mult_adds(0), "(M): 0");
        assert_eq!(mult_adds(243_658), "(M): 0.24");
        assert_eq!(mult_adds(4_279_370), "(M): 4.28");
        assert_eq!(mult_adds(2_000_000), "(M): 2");
        assert_eq!(mult_adds(999_999_999), "(M): 1,000.00");
        assert_eq!(mult_adds(1_996_046_336), "(G): 2.00");
        assert_eq!(mult_adds(3_000_000_000), "(G): 3");
        assert_eq!(mult_adds(1_234_567_000_000_000), "(T): 1,234.57");
    }

    #[test]
    fn indents() {
        assert_eq!(indent(0), "");
        assert_eq!(indent(1), "├─");
        assert_eq!(indent(2), "│    └─");
        assert_eq!(indent(3), "│    │    └─");
    }
}
