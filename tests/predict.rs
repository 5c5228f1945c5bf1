//! `bnlab predict` on images it has never seen in MNIST's form (project issue 15).
//!
//! Oracle: MNIST's own test labels. 1,000 test digits are redrawn as 64 x 64 dark-on-light PNGs
//! (scaled up and inverted, so the MNIST preparation must invert, crop, rescale and centre them
//! back), and the seed's model trained on MNIST (12 epochs) must get at least 97% of them right,
//! as the issue asks (977 at this commit).
//! Errors name the file.

mod common;
use common::bnlab_cli::*;
use common::{assert_ok, stdout};
use std::path::{Path, PathBuf};

const DIGITS: usize = 1000;

/// MNIST test digit `i` as a 64 x 64 dark-on-light PNG; returns its label.
fn redraw(images: &bnlab::data::Dataset, i: usize, path: &Path) -> u8 {
    let src = image::GrayImage::from_raw(28, 28, images.image(i).to_vec()).unwrap();
    let mut big = image::imageops::resize(&src, 64, 64, image::imageops::FilterType::Triangle);
    image::imageops::invert(&mut big);
    big.save(path).unwrap();
    images.labels[i]
}

#[test]
fn predict_reads_redrawn_digits_as_mnist_digits() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let test = bnlab::data::load(
        bnlab::data::DatasetKind::Mnist,
        bnlab::data::Split::Test,
        &mnist,
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    let mut args = train_args(&run_dir, 12, &[]);
    let bs = args.iter().position(|a| a == "--batch-size").unwrap();
    args[bs + 1] = "256".into();
    assert_ok(&run(&args, dir.path()));
    let weights = run_dir.join("last.safetensors");
    let mut files: Vec<PathBuf> = Vec::new();
    let mut labels = Vec::new();
    for i in 0..DIGITS {
        let path = dir.path().join(format!("digit-{i}.png"));
        labels.push(redraw(&test, i * 10, &path));
        files.push(path);
    }
    let mut args = strings(&[
        "predict",
        "--model",
        "bn",
        "--weights",
        path_str(&weights),
        "--json",
    ]);
    args.extend(files.iter().map(|f| path_str(f).to_string()));
    let o = run(&args, dir.path());
    assert_ok(&o);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), DIGITS);
    let mut correct = 0;
    for ((line, file), &label) in lines.iter().zip(&files).zip(&labels) {
        assert_eq!(line["file"], path_str(file));
        let top = line["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        let p: Vec<f64> = top
            .iter()
            .map(|t| t["probability"].as_f64().unwrap())
            .collect();
        assert!(p[0] >= p[1] && p[1] >= p[2] && p.iter().sum::<f64>() <= 1.0 + 1e-9);
        assert_eq!(top[0]["name"], top[0]["class"].to_string());
        if top[0]["class"] == label as u64 {
            correct += 1;
        }
    }
    eprintln!("{correct} of {DIGITS} redrawn digits right");
    assert!(
        correct * 100 >= DIGITS * 97,
        "{correct} of {DIGITS} redrawn digits right"
    );
    // plain text: the top three with percentages
    let o = run(
        &strings(&[
            "predict",
            "--weights",
            path_str(&weights),
            path_str(&files[0]),
        ]),
        dir.path(),
    );
    assert_ok(&o);
    let line = stdout(&o);
    assert!(
        line.starts_with(&format!("{}: ", path_str(&files[0]))) && line.matches('%').count() == 3,
        "{line}"
    );
}

#[test]
fn bad_images_are_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.safetensors");
    std::fs::write(&weights, b"unused").unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"this is not an image").unwrap();
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("missing.png");
    for (file, what) in [
        (&text, "is not a PNG or JPEG image"),
        (&empty, "is empty"),
        (&missing, "No such file"),
    ] {
        let o = run(
            &strings(&["predict", "--weights", path_str(&weights), path_str(file)]),
            dir.path(),
        );
        assert_clean_error(&o, &[path_str(file), what]);
    }
}
