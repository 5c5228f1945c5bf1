//! The sparse first layer: a batch handed over with its CSR (as training does, from the
//! dataset's nonzeros) gives exactly what the same batch gives as dense values, and both agree
//! with the dense matrix product within float rounding.

use bnlab::data::{gather_batch, Dataset};
use bnlab::nn::{Linear, Module};
use bnlab::{Graph, Rng, Tensor};

/// A small dataset of 6 x 6 byte images, about 80% zeros.
fn dataset(n: usize, rng: &mut Rng) -> Dataset {
    let images = (0..n * 36)
        .map(|_| {
            if rng.next_f32() < 0.8 {
                0
            } else {
                1 + (rng.next_f32() * 254.0) as u8
            }
        })
        .collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::new(images, labels, [1, 6, 6], 10).unwrap()
}

/// Outputs and weight gradient of a Linear(36, 5) on the batch, its input given three ways.
fn run(ds: &Dataset, indices: &[u32], how: &str) -> (Vec<f32>, Vec<f32>) {
    let mut g = Graph::new(0);
    let mut lin = Linear::new(&mut g.params, 36, 5, &mut Rng::seed(7)).unwrap();
    let n = indices.len();
    let mut labels = vec![0u32; n];
    let x = match how {
        "csr" => g
            .input_with_csr(&[n, 1, 6, 6], |buf, csr| {
                gather_batch(ds, indices, buf, &mut labels).unwrap();
                ds.nonzeros().gather(indices, csr);
            })
            .unwrap(),
        "dense-sparse-kernels" => g
            .input_with(&[n, 1, 6, 6], |buf| {
                gather_batch(ds, indices, buf, &mut labels).unwrap()
            })
            .unwrap(),
        _ => {
            // an input that needs a gradient always takes the dense GEMM
            let mut buf = vec![0.0; n * 36];
            gather_batch(ds, indices, &mut buf, &mut labels).unwrap();
            g.input(&Tensor::new(&[n, 1, 6, 6], buf).unwrap(), true)
                .unwrap()
        }
    };
    let flat = g.flatten(x).unwrap();
    let y = lin.forward(&mut g, flat).unwrap();
    let upstream: Vec<f32> = (0..n * 5).map(|i| (i as f32 * 0.37).sin()).collect();
    g.backward_from(y, &upstream).unwrap();
    (
        g.value(y).to_vec(),
        g.params.grad(lin.weight).unwrap().to_vec(),
    )
}

#[test]
fn csr_from_the_dataset_equals_dense_input_and_the_dense_product() {
    let mut rng = Rng::seed(1);
    let ds = dataset(40, &mut rng);
    let indices: Vec<u32> = vec![3, 17, 0, 39, 22, 8, 8, 31];
    let (y_csr, dw_csr) = run(&ds, &indices, "csr");
    let (y_sparse, dw_sparse) = run(&ds, &indices, "dense-sparse-kernels");
    let (y_gemm, dw_gemm) = run(&ds, &indices, "gemm");
    assert_eq!(
        y_csr, y_sparse,
        "the dataset's CSR and a CSR built from dense values must agree exactly"
    );
    assert_eq!(dw_csr, dw_sparse);
    for (a, b) in y_csr.iter().zip(&y_gemm).chain(dw_csr.iter().zip(&dw_gemm)) {
        assert!(
            (a - b).abs() <= 1e-5 + 1e-5 * b.abs(),
            "sparse {a} against dense {b}"
        );
    }
}
