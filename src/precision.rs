//! The arithmetic of a graph's matrix products: float32, or bfloat16 operands with float32 sums
//! (PyTorch's `torch.autocast("cpu", dtype=torch.bfloat16)` split).
//!
//! Under [`Precision::Bf16`] the products of Linear layers and convolutions, forward and
//! backward, round their two operands to bfloat16 and accumulate in float32 on the CPU's
//! bfloat16 units (`crate::internal::bf16`); each product's output stays float32 (autocast
//! rounds it to bfloat16: keeping it is more accurate and costs nothing here). Everything else
//! stays float32 as under autocast: BatchNorm and the other normalisations, activations,
//! pooling, losses, the optimizer and the parameters themselves (the master weights, saved as
//! float32). A Linear reading a mostly-zero model input (`kernels::sparse_linear`, MNIST's first
//! layer) keeps its float32 sparse kernels, which add up rows of the weight by the input's
//! nonzeros exactly, except on AMX from 256 outputs: there the dense bfloat16 product is
//! faster, and it is taken, as autocast does (`Graph::linear`'s decision).
//!
//! Set it with [`crate::Graph::set_precision`], which refuses bfloat16 on a CPU without a
//! bfloat16 kernel (AVX512-BF16 or AMX) in one line, rather than run slowly.

/// How a graph's matrix products compute. Default float32.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Float32 operands and sums: PyTorch's default.
    #[default]
    F32,
    /// bfloat16 operands (rounded to nearest even), float32 sums and outputs.
    Bf16,
}

impl Precision {
    /// Whether this is float32 (the default: a record may leave it out).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    /// The name the command line and the run's files use: `f32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = crate::Error;

    /// `f32` or `bf16`.
    fn from_str(s: &str) -> crate::Result<Precision> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(crate::Error::Invalid(format!(
                "precision {other:?}: expected f32 or bf16"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_others_are_refused() {
        for p in [Precision::F32, Precision::Bf16] {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
        assert_eq!(Precision::default(), Precision::F32);
        let e = "fp8".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("fp8") && e.contains("f32 or bf16"), "{e}");
    }
}
