//! `bnlab::data::augment` and `bnlab train --augment` (project issue 22).
//!
//! Oracles: invariants of the transforms (identity parameters change nothing; a shift moves
//! the centre of mass by exactly the shift; a flip twice is no flip; a crop of the padded image
//! keeps every value it shows, at the place it says; a quarter turn is a transpose and a
//! mirror), the ranges torchvision draws from, determinism (two runs at one seed alike to the
//! bit, a resumed run alike to a straight one), and the default run unchanged (its stdout as
//! before augmentation existed: the same as a run with augmentation switched off by hand).

mod common;
use bnlab::data::augment::{
    affine, crop_flip, AffineParams, Augmentation, CropParams, Drawn, RandomAffine,
};
use bnlab::Rng;
use common::bnlab_cli::*;
use common::run_files::{assert_same_run, finished};
use common::{assert_ok, stdout};

/// An image of (c, h, w) with distinct nonzero values.
fn ramp(c: usize, h: usize, w: usize) -> Vec<f32> {
    (0..c * h * w).map(|i| 1.0 + i as f32).collect()
}

fn centre_of_mass(img: &[f32], h: usize, w: usize) -> (f64, f64) {
    let (mut m, mut x, mut y) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in img.iter().enumerate().take(h * w) {
        m += v as f64;
        x += v as f64 * (i % w) as f64;
        y += v as f64 * (i / w) as f64;
    }
    (x / m, y / m)
}

#[test]
fn identity_parameters_change_nothing() {
    let src = ramp(3, 28, 28);
    let mut dst = vec![0.0; src.len()];
    affine(&src, &mut dst, [3, 28, 28], &AffineParams::IDENTITY);
    assert_eq!(dst, src);
    // a crop at the padding's own offset, unflipped, is the image
    let p = CropParams {
        top: 4,
        left: 4,
        flip: false,
    };
    crop_flip(&src, &mut dst, [3, 28, 28], 4, &p);
    assert_eq!(dst, src);
}

#[test]
fn a_shift_moves_the_centre_of_mass_by_the_shift() {
    // a blob well inside the field, so nothing falls off
    let (h, w) = (28, 28);
    let mut src = vec![0.0f32; h * w];
    for y in 10..16 {
        for x in 11..15 {
            src[y * w + x] = (x + 2 * y) as f32;
        }
    }
    let (cx, cy) = centre_of_mass(&src, h, w);
    for (tx, ty) in [(3, 0), (0, -2), (-3, 3), (2, 1)] {
        let mut dst = vec![0.0; src.len()];
        let p = AffineParams {
            translate: (tx, ty),
            ..AffineParams::IDENTITY
        };
        affine(&src, &mut dst, [1, h, w], &p);
        let (dx, dy) = centre_of_mass(&dst, h, w);
        assert!((dx - cx - tx as f64).abs() < 1e-9, "{tx}: {dx} vs {cx}");
        assert!((dy - cy - ty as f64).abs() < 1e-9, "{ty}: {dy} vs {cy}");
        // nearest interpolation moves values, never mixes them
        let mut a: Vec<f32> = src.clone();
        let mut b: Vec<f32> = dst.clone();
        a.sort_by(f32::total_cmp);
        b.sort_by(f32::total_cmp);
        assert_eq!(a, b);
    }
}

#[test]
fn a_quarter_turn_is_a_transpose_and_a_mirror() {
    // an even side turns about the centre between pixels exactly onto the grid
    let (h, w) = (6, 6);
    let src = ramp(1, h, w);
    let mut dst = vec![0.0; src.len()];
    let p = AffineParams {
        angle: 90.0,
        ..AffineParams::IDENTITY
    };
    affine(&src, &mut dst, [1, h, w], &p);
    // counter-clockwise on the screen: the top row becomes the left column, read upwards
    for y in 0..h {
        for x in 0..w {
            assert_eq!(dst[y * w + x], src[x * w + (w - 1 - y)], "({x}, {y})");
        }
    }
}

#[test]
fn a_flip_twice_is_no_flip_and_a_crop_keeps_its_values() {
    let shape = [3, 32, 32];
    let src = ramp(3, 32, 32);
    let flip = CropParams {
        top: 4,
        left: 4,
        flip: true,
    };
    let mut once = vec![0.0; src.len()];
    let mut twice = vec![0.0; src.len()];
    crop_flip(&src, &mut once, shape, 4, &flip);
    assert_ne!(once, src);
    crop_flip(&once, &mut twice, shape, 4, &flip);
    assert_eq!(twice, src);
    // a crop from the padded image's corner: the image shifted down and right by the padding
    // left over, zeros where the padding shows
    let corner = CropParams {
        top: 1,
        left: 6,
        flip: false,
    };
    let mut dst = vec![0.0; src.len()];
    crop_flip(&src, &mut dst, shape, 4, &corner);
    for c in 0..3 {
        for y in 0..32usize {
            for x in 0..32usize {
                let (sy, sx) = (y as isize - 3, x as isize + 2);
                let want = if sy >= 0 && sx < 32 {
                    src[(c * 32 + sy as usize) * 32 + sx as usize]
                } else {
                    0.0
                };
                assert_eq!(dst[(c * 32 + y) * 32 + x], want, "({c}, {y}, {x})");
            }
        }
    }
}

#[test]
fn draws_stay_in_torchvisions_ranges_and_repeat_with_the_seed() {
    let mut rng = Rng::seed(4);
    let (mut angles, mut shifts, mut scales) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..2000 {
        let p = RandomAffine::MNIST.sample(&mut rng, 28, 28);
        angles.push(p.angle);
        shifts.push(p.translate.0);
        shifts.push(p.translate.1);
        scales.push(p.scale);
    }
    assert!(angles.iter().all(|a| a.abs() <= 10.0));
    assert!(angles.iter().any(|&a| a > 9.0) && angles.iter().any(|&a| a < -9.0));
    // 10% of 28 is 2.8: whole shifts of -3 to 3
    assert!(shifts.iter().all(|t| t.abs() <= 3));
    for t in -3..=3 {
        assert!(shifts.contains(&t), "shift {t} never drawn");
    }
    assert!(scales.iter().all(|&s| (0.9..=1.1).contains(&s)));
    let mut tops = [0usize; 9];
    let mut flips = 0;
    for _ in 0..2000 {
        let p = CropParams::sample(&mut rng, 4);
        tops[p.top] += 1;
        assert!(p.left <= 8);
        flips += p.flip as usize;
    }
    assert!(tops.iter().all(|&n| n > 150), "{tops:?}");
    assert!((900..1100).contains(&flips), "{flips}");
    // one seed, one stream: a batch augmented twice from equal generators is equal
    let aug = Augmentation::for_dataset(bnlab::data::DatasetKind::Mnist);
    let batch = ramp(1, 28 * 8, 28);
    let (mut a, mut b) = (batch.clone(), batch.clone());
    aug.apply_batch(&mut a, [1, 28, 28], &mut Rng::seed(9));
    aug.apply_batch(&mut b, [1, 28, 28], &mut Rng::seed(9));
    assert_eq!(a, b);
    assert_ne!(a, batch);
    // each image its own parameters: the same as one at a time
    let mut rng = Rng::seed(9);
    let drawn: Vec<Drawn> = (0..8).map(|_| aug.sample(&mut rng, 28, 28)).collect();
    for (i, d) in drawn.iter().enumerate() {
        let mut one = vec![0.0; 784];
        d.apply(&batch[i * 784..(i + 1) * 784], &mut one, [1, 28, 28]);
        assert_eq!(&a[i * 784..(i + 1) * 784], &one[..], "image {i}");
    }
}

/// A small MNIST in `dir`: the first 2,000 training and 500 test images of the real one
/// (eight steps of 256 an epoch: room to stop a run in the middle of one).
fn small_mnist(dir: &std::path::Path) {
    use bnlab::data::{load, DatasetKind, Split};
    let mnist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    std::fs::create_dir_all(dir).unwrap();
    for (split, stem, n) in [(Split::Train, "train", 2000u32), (Split::Test, "t10k", 500)] {
        let ds = load(DatasetKind::Mnist, split, &mnist).unwrap();
        let images = &ds.images[..n as usize * 784];
        let labels = &ds.labels[..n as usize];
        std::fs::write(
            dir.join(format!("{stem}-images-idx3-ubyte.gz")),
            gzip(&idx(&[n, 28, 28], images)),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{stem}-labels-idx1-ubyte.gz")),
            gzip(&idx(&[n], labels)),
        )
        .unwrap();
    }
}

/// `train` for 2 epochs of batches of 256 on the small MNIST in `data`, into `out`.
fn small_run(data: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v = train_args(out, 2, extra);
    let bs = v.iter().position(|a| a == "--batch-size").unwrap();
    v[bs + 1] = "256".into();
    v.extend(["--data-dir".to_string(), path_str(data).to_string()]);
    v
}

#[test]
fn augmented_runs_repeat_resume_exactly_and_leave_the_default_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_mnist(&data);
    let go = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let o = run(&small_run(&data, &out, extra), dir.path());
        assert_ok(&o);
        (stdout(&o), finished(&out, 2))
    };
    let (a_out, a) = go("a", &["--augment"]);
    let (b_out, b) = go("b", &["--augment"]);
    let (plain_out, plain) = go("plain", &[]);
    let (_, other_seed) = go("seed1", &["--augment", "--seed", "1"]);
    assert_same_run(&b, &a, "a second augmented run at the same seed");
    let epochs = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("Epoch["))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(epochs(&a_out), epochs(&b_out));
    // augmentation changes what is trained on: not the plain run, not another seed's
    assert_ne!(epochs(&a_out), epochs(&plain_out));
    assert_ne!(a.weights, plain.weights);
    assert_ne!(a.weights, other_seed.weights);
    // the run records it; a run without records nothing new
    assert!(a.history.contains("\"augment\": true"), "{}", a.history);
    assert!(!plain.history.contains("augment"), "{}", plain.history);
    // interrupted in the middle of epoch 2, then resumed: the same run as never stopped
    let out = dir.path().join("paused");
    let mut paused = spawn_paused(&small_run(&data, &out, &["--augment"]), dir.path(), "2:3");
    paused.signal("INT");
    paused.go_on();
    let o = paused.finish();
    assert_eq!(o.status.code(), Some(130), "{}", common::stderr(&o));
    let o = run(&resume_args(&out), dir.path());
    assert_ok(&o);
    assert_same_run(&finished(&out, 2), &a, "an augmented run resumed mid-epoch");
}

/// The evaluation is never augmented: a run's reported accuracies are those `bnlab eval` finds
/// for its weights on plain test images.
#[test]
fn evaluation_sees_the_images_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_mnist(&data);
    let out = dir.path().join("run");
    assert_ok(&run(&small_run(&data, &out, &["--augment"]), dir.path()));
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    let last = &history["epochs"][1];
    let o = run(
        &strings(&[
            "eval",
            "--weights",
            path_str(&out.join("last.safetensors")),
            "--data-dir",
            path_str(&data),
            "--json",
        ]),
        dir.path(),
    );
    assert_ok(&o);
    let eval: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        eval["accuracy"].as_f64(),
        last["val_accuracy"].as_f64(),
        "{eval}"
    );
}

#[test]
fn augment_on_a_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    std::fs::write(&table, "a,y\n1,0\n2,1\n").unwrap();
    let o = run(
        &train_args(
            &dir.path().join("run"),
            1,
            &[
                "--dataset",
                "csv",
                "--train-csv",
                path_str(&table),
                "--target",
                "y",
                "--augment",
            ],
        ),
        dir.path(),
    );
    assert_clean_error(&o, &["--augment", "csv"]);
    assert!(!dir.path().join("run").exists());
}
