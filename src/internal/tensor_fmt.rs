//! Tensors printed the way PyTorch prints them (`tensor([0.4685, 0.5811])`), for the demo and
//! for users comparing with a notebook: 4 decimals, scientific notation when the magnitudes call
//! for it, every element padded to one width, rows aligned under `tensor([`.

use crate::tensor::Tensor;

/// PyTorch's choice between fixed and scientific notation (torch/_tensor_str.py): scientific
/// when the nonzero magnitudes span more than 1000x, or any is above 1e8 or below 1e-4.
fn scientific(values: &[f32]) -> bool {
    let nz: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite() && **v != 0.0)
        .map(|v| v.abs() as f64)
        .collect();
    if nz.is_empty() {
        return false;
    }
    let max = nz.iter().cloned().fold(f64::MIN, f64::max);
    let min = nz.iter().cloned().fold(f64::MAX, f64::min);
    max / min > 1000.0 || max > 1e8 || min < 1e-4
}

/// `3.5763e-08`: 4 decimals, a signed exponent of at least two digits.
fn sci(v: f32) -> String {
    let s = format!("{v:.4e}");
    let (mantissa, exp) = s.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// `t` as PyTorch prints it, e.g. `tensor([0.4685, 0.5811])`. With two or more dimensions each
/// run of the last dimension is one `[...]` line; that is PyTorch's output for 2-D, but 3-D
/// and more are not nested by their outer dimensions as PyTorch nests them.
pub fn format_tensor(t: &Tensor) -> String {
    let sci_mode = scientific(&t.data);
    let items: Vec<String> = t
        .data
        .iter()
        .map(|&v| if sci_mode { sci(v) } else { format!("{v:.4}") })
        .collect();
    let width = items.iter().map(String::len).max().unwrap_or(0);
    let padded: Vec<String> = items.iter().map(|s| format!("{s:>width$}")).collect();
    match t.shape.len() {
        0 | 1 => format!("tensor([{}])", padded.join(", ")),
        _ => {
            let cols = *t.shape.last().unwrap();
            let rows: Vec<String> = padded
                .chunks(cols.max(1))
                .map(|r| format!("[{}]", r.join(", ")))
                .collect();
            format!("tensor([{}])", rows.join(",\n        "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pytorch_printing() {
        // the seed's outputs, as PyTorch printed them
        let a = Tensor::new(&[5], vec![0.4685, 0.5811, 0.48, 0.5975, 0.4469]).unwrap();
        assert_eq!(
            format_tensor(&a),
            "tensor([0.4685, 0.5811, 0.4800, 0.5975, 0.4469])"
        );
        let b = Tensor::new(&[2], vec![3.5763e-08, 1.1921e-07]).unwrap();
        assert_eq!(format_tensor(&b), "tensor([3.5763e-08, 1.1921e-07])");
        let m = Tensor::new(&[2, 2], vec![0.5523, -0.7729, 0.8276, 1.2611]).unwrap();
        assert_eq!(
            format_tensor(&m),
            "tensor([[ 0.5523, -0.7729],\n        [ 0.8276,  1.2611]])"
        );
    }
}
