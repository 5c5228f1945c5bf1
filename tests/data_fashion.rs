//! Fashion-MNIST: loading small IDX files the tests write through `DatasetKind::FashionMnist`,
//! and downloading them from a local HTTP server with injected checksums (nothing here leaves
//! the machine).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;

use bnlab::data::{
    checksums, download, ensure_available, ensure_available_with, file_stems, load, missing_files,
    Checksum, DatasetKind, Split,
};
use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};

mod common;
use common::entries;

const K: DatasetKind = DatasetKind::FashionMnist;

/// IDX bytes of unsigned bytes with the given dimensions.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pixel of image `i` at (`y`, `x`).
fn pixel(i: usize, y: usize, x: usize) -> u8 {
    (i * 31 + y * 5 + x) as u8
}

fn images(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        for y in 0..28 {
            for x in 0..28 {
                v.push(pixel(i, y, x));
            }
        }
    }
    v
}

const TRAIN_LABELS: [u8; 5] = [9, 0, 0, 3, 7];
const TEST_LABELS: [u8; 3] = [9, 2, 1];

/// The four files, uncompressed IDX: 5 training and 3 test images of 28 x 28.
fn raw_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "train-images-idx3-ubyte",
            idx_bytes(&[5, 28, 28], &images(5)),
        ),
        ("train-labels-idx1-ubyte", idx_bytes(&[5], &TRAIN_LABELS)),
        (
            "t10k-images-idx3-ubyte",
            idx_bytes(&[3, 28, 28], &images(3)),
        ),
        ("t10k-labels-idx1-ubyte", idx_bytes(&[3], &TEST_LABELS)),
    ]
}

fn all_gz_names() -> Vec<String> {
    let mut v: Vec<String> = file_stems().iter().map(|s| format!("{s}.gz")).collect();
    v.sort();
    v
}

fn check_loaded(dir: &Path) {
    let train = load(K, Split::Train, dir).unwrap();
    assert_eq!(train.len, 5);
    assert_eq!((train.channels, train.height, train.width), (1, 28, 28));
    assert_eq!(train.num_classes, 10);
    assert_eq!(train.labels, TRAIN_LABELS);
    assert_eq!(train.image(3)[7 * 28 + 20], pixel(3, 7, 20));
    let test = load(K, Split::Test, dir).unwrap();
    assert_eq!(test.labels, TEST_LABELS);
    assert_eq!(test.image(2), &images(3)[2 * 784..]);
}

mod loading {
    use super::*;

    #[test]
    fn kind_names_and_classes() {
        for s in ["fashion-mnist", "Fashion-MNIST", "fashion_mnist"] {
            assert_eq!(s.parse::<DatasetKind>().unwrap(), K, "{s}");
        }
        assert_eq!(K.to_string(), "fashion-mnist");
        assert_eq!(K.num_classes(), 10);
        assert_eq!(
            K.class_names(),
            &[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot"
            ]
        );
        assert!(K.is_idx());
        assert_eq!(K.image_shape(), [1, 28, 28]);
        assert_eq!(K.files(), &file_stems());
        assert_eq!(
            K.split_files(Split::Test),
            &["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        );
        assert_eq!(download::mirror_env_var(K), "BNLAB_FASHION_MNIST_MIRROR");
    }

    /// Raw files, gzip files, and a mix of both load the same.
    #[test]
    fn raw_and_gzip_files_load() {
        let raw = tempfile::tempdir().unwrap();
        let gz = tempfile::tempdir().unwrap();
        for (i, (stem, bytes)) in raw_files().into_iter().enumerate() {
            std::fs::write(raw.path().join(stem), &bytes).unwrap();
            let name = if i % 2 == 0 {
                format!("{stem}.gz")
            } else {
                stem.to_string()
            };
            let content = if i % 2 == 0 { gzip(&bytes) } else { bytes };
            std::fs::write(gz.path().join(name), content).unwrap();
        }
        check_loaded(raw.path());
        check_loaded(gz.path());
        assert_eq!(
            load(K, Split::Train, raw.path()).unwrap(),
            load(K, Split::Train, gz.path()).unwrap()
        );
        assert!(missing_files(K, raw.path()).is_empty());
    }

    #[test]
    fn label_out_of_range_and_missing_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (stem, bytes) in raw_files() {
            std::fs::write(dir.path().join(stem), bytes).unwrap();
        }
        let labels = dir.path().join("t10k-labels-idx1-ubyte");
        std::fs::write(&labels, idx_bytes(&[3], &[1, 10, 2])).unwrap();
        let err = load(K, Split::Test, dir.path()).unwrap_err().to_string();
        assert!(err.contains(&labels.display().to_string()), "{err}");
        assert!(
            err.contains("label 10") && err.contains("fashion-mnist"),
            "{err}"
        );

        std::fs::remove_file(dir.path().join("train-images-idx3-ubyte")).unwrap();
        assert_eq!(
            missing_files(K, dir.path()),
            vec!["train-images-idx3-ubyte"]
        );
        let err = load(K, Split::Train, dir.path()).unwrap_err().to_string();
        assert!(err.contains("train-images-idx3-ubyte"), "{err}");
    }
}

mod http {
    //! Downloads from the tests' local HTTP server (tests/common) serving the files the tests
    //! make, under `/fashion/` (other names get 404).

    use super::*;
    use common::http::start_server;

    /// The `.gz` files as served, by file name.
    fn gz_files() -> HashMap<String, Vec<u8>> {
        raw_files()
            .into_iter()
            .map(|(stem, bytes)| (format!("{stem}.gz"), gzip(&bytes)))
            .collect()
    }

    /// Fashion-MNIST's kind of checksum (SHA-256 of the `.gz` as served), of the test's files.
    fn gz_checksums(files: &HashMap<String, Vec<u8>>) -> HashMap<String, Checksum> {
        files
            .iter()
            .map(|(name, bytes)| {
                let stem = name.trim_end_matches(".gz").to_string();
                (stem, Checksum::gz(sha256_hex(bytes)))
            })
            .collect()
    }

    #[test]
    fn download_with_injected_checksums_loads() {
        let files = gz_files();
        let sums = gz_checksums(&files);
        let (base, count) = start_server("fashion", files);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache/fashion-mnist"); // created by the download
        let got = ensure_available_with(K, &dir, Some(std::slice::from_ref(&base)), |stem| {
            sums.get(stem).cloned()
        })
        .unwrap();
        assert_eq!(got, dir);
        assert_eq!(entries(&dir), all_gz_names());
        assert_eq!(count.load(Ordering::SeqCst), 4);
        check_loaded(&dir);

        // Present files are used as they are: no further request.
        ensure_available_with(K, &dir, Some(&[base]), |stem| sums.get(stem).cloned()).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }

    /// Content checksums (of the decompressed IDX bytes, MNIST's kind) can be injected too.
    #[test]
    fn download_with_injected_content_checksums() {
        let sums: HashMap<&str, Checksum> = raw_files()
            .into_iter()
            .map(|(stem, bytes)| (stem, Checksum::idx(sha256_hex(&bytes))))
            .collect();
        let (base, _) = start_server("fashion", gz_files());
        let tmp = tempfile::tempdir().unwrap();
        ensure_available_with(K, tmp.path(), Some(&[base]), |stem| sums.get(stem).cloned())
            .unwrap();
        assert_eq!(entries(tmp.path()), all_gz_names());
        check_loaded(tmp.path());
    }

    /// A file that does not match its injected checksum is not kept; the others are.
    #[test]
    fn mismatch_is_rejected_and_not_kept() {
        let files = gz_files();
        let mut sums = gz_checksums(&files);
        let bad = "t10k-images-idx3-ubyte";
        sums.insert(bad.to_string(), Checksum::gz("00".repeat(32)));
        let (base, _) = start_server("fashion", files);
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_available_with(K, tmp.path(), Some(std::slice::from_ref(&base)), |s| {
            sums.get(s).cloned()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(&format!("{base}{bad}.gz")), "{err}");
        assert!(err.contains("checksum mismatch"), "{err}");
        let mut want = all_gz_names();
        want.retain(|n| n != &format!("{bad}.gz"));
        // Files are fetched in order: the ones before the bad one are kept.
        want.retain(|n| n.starts_with("train"));
        assert_eq!(entries(tmp.path()), want);
    }

    /// Without injection the published checksums apply, which the test's files do not match:
    /// nothing is kept, and the error names the URL and what was hashed.
    #[test]
    fn published_checksums_reject_other_files() {
        let (base, _) = start_server("fashion", gz_files());
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_available(K, tmp.path(), Some(std::slice::from_ref(&base)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{base}train-images-idx3-ubyte.gz")),
            "{err}"
        );
        assert!(err.contains("SHA-256 of the .gz file"), "{err}");
        assert!(
            err.contains(
                checksums::expected(K, "train-images-idx3-ubyte")
                    .unwrap()
                    .hex()
            ),
            "{err}"
        );
        assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    }

    /// A stem with no checksum (none injected) is an error before anything is fetched.
    #[test]
    fn unknown_checksum_is_an_error() {
        let (base, count) = start_server("fashion", gz_files());
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_available_with(K, tmp.path(), Some(&[base]), |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no known checksum"), "{err}");
        assert_eq!(count.load(Ordering::SeqCst), 0);
        assert!(entries(tmp.path()).is_empty());
    }
}
