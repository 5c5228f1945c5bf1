//! The sparse kernels against dense products and against each other, to the bit where
//! they should agree.

use super::*;

#[test]
fn transpose_matches_the_definition_for_ragged_shapes() {
    for (r, c) in [
        (0, 5),
        (5, 0),
        (1, 1),
        (3, 5),
        (8, 8),
        (9, 17),
        (16, 67),
        (256, 784),
    ] {
        let src: Vec<f32> = (0..r * c).map(|v| v as f32).collect();
        let mut dst = vec![-1.0; r * c];
        transpose(&mut dst, &src, r, c);
        for i in 0..r {
            for j in 0..c {
                assert_eq!(dst[j * r + i], src[i * c + j], "({r}, {c}) at ({i}, {j})");
            }
        }
    }
}

#[test]
fn the_transposed_weight_gradient_equals_the_column_by_column_one_to_the_bit() {
    // outputs: whole register blocks (two with AVX-512; more, with a remainder, on targets
    // with fewer registers), a small and a tiny block and a tail; an odd number of columns
    // (one left over after the pairs); columns that share rows and columns that do not
    let (n, i, o) = (9, 37, 2 * BAND + SMALL_BLOCK + TINY_BLOCK + 3);
    let mut rng = crate::rng::Rng::seed(11);
    let x: Vec<f32> = (0..n * i)
        .map(|_| {
            if rng.next_f32() < 0.6 {
                0.0
            } else {
                rng.next_f32() - 0.5
            }
        })
        .collect();
    let dy: Vec<f32> = (0..n * o).map(|_| rng.next_f32() - 0.5).collect();
    let (mut csr, mut csc) = (Compressed::default(), Compressed::default());
    to_csr(&x, i, &mut csr);
    csr_to_csc(&csr, i, &mut csc);
    // each column on its own (the natural layout's kernel), into dw (O, I), then transposed
    let mut dw = vec![0.0; o * i];
    backward_weight(&mut dw, &dy, &csc, o, i, &mut Scratch::default());
    let mut want = vec![0.0; o * i];
    transpose(&mut want, &dw, o, i);
    let mut dwt = vec![f32::NAN; i * o];
    backward_weight_t(&mut dwt, &dy, &csc, o, true, &mut Scratch::default());
    assert_eq!(dwt, want, "overwritten");
    // accumulating adds the same gradient again
    backward_weight_t(&mut dwt, &dy, &csc, o, false, &mut Scratch::default());
    let twice: Vec<f32> = want.iter().map(|v| v + v).collect();
    assert_eq!(dwt, twice, "accumulated");
}

#[test]
fn sparse_kernels_match_dense_products() {
    let (n, i, o) = (5, 70, 67);
    let mut rng = crate::rng::Rng::seed(3);
    let x: Vec<f32> = (0..n * i)
        .map(|_| {
            if rng.next_f32() < 0.7 {
                0.0
            } else {
                rng.next_f32()
            }
        })
        .collect();
    let w: Vec<f32> = (0..o * i).map(|_| rng.next_f32() - 0.5).collect();
    let b: Vec<f32> = (0..o).map(|_| rng.next_f32()).collect();
    let dy: Vec<f32> = (0..n * o).map(|_| rng.next_f32() - 0.5).collect();
    let mut csr = Compressed::default();
    to_csr(&x, i, &mut csr);
    let mut wt = vec![0.0; o * i];
    transpose(&mut wt, &w, o, i);
    let mut y = vec![0.0; n * o];
    forward(&mut y, &csr, (&wt, &[]), Some(&b), o);
    let mut csc = Compressed::default();
    csr_to_csc(&csr, i, &mut csc);
    let mut dw = vec![1.0; o * i];
    backward_weight(&mut dw, &dy, &csc, o, i, &mut Scratch::default());
    for nn in 0..n {
        for oo in 0..o {
            let want: f32 = b[oo] + (0..i).map(|k| x[nn * i + k] * w[oo * i + k]).sum::<f32>();
            assert!((y[nn * o + oo] - want).abs() < 1e-4);
        }
    }
    for oo in 0..o {
        for k in 0..i {
            let want: f32 = 1.0
                + (0..n)
                    .map(|nn| dy[nn * o + oo] * x[nn * i + k])
                    .sum::<f32>();
            assert!((dw[oo * i + k] - want).abs() < 1e-4);
        }
    }
}

#[test]
fn a_wide_layers_banded_forward_sums_each_output_in_its_rows_order() {
    // full bands, then a small and a tiny block and a tail past them; rows that share
    // nonzeros, an empty row, more rows than a task takes (and a short last task)
    let (n, i, o) = (520, 37, 8 * BAND + SMALL_BLOCK + TINY_BLOCK + 3);
    assert!(banded(n, o));
    let mut rng = crate::rng::Rng::seed(5);
    let mut x: Vec<f32> = (0..n * i)
        .map(|_| {
            if rng.next_f32() < 0.3 {
                rng.next_f32() - 0.25
            } else {
                0.0
            }
        })
        .collect();
    x[7 * i..8 * i].fill(0.0);
    let wt: &[f32] = &(0..i * o).map(|_| rng.next_f32() - 0.5).collect::<Vec<_>>();
    let b: &[f32] = &(0..o).map(|_| rng.next_f32() - 0.5).collect::<Vec<_>>();
    let mut csr = Compressed::default();
    to_csr(&x, i, &mut csr);
    let mut bands = Vec::new();
    to_bands(wt, o, &mut bands);
    let mut y = vec![f32::NAN; n * o];
    forward(&mut y, &csr, (wt, &bands), Some(b), o);
    for r in 0..n {
        for j in 0..o {
            // the same sum, one term after the other in the row's order
            let mut want = b[j];
            for k in 0..i {
                let v = x[r * i + k];
                if v != 0.0 {
                    want += v * wt[k * o + j];
                }
            }
            assert_eq!(
                y[r * o + j].to_bits(),
                want.to_bits(),
                "row {r}, output {j}"
            );
        }
    }
}
