//! CIFAR-10 (binary version): loading batch files the tests write, their validation, and
//! downloading and extracting an archive the tests build, served from a local HTTP server
//! (nothing here leaves the machine).
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bnlab::data::{
    checksums, cifar, download, ensure_available, ensure_available_with, load, missing_files,
    Checksum, DatasetKind, Split,
};
use flate2::write::GzEncoder;
use flate2::Compression;

mod common;
use common::assert_err_names;
use common::entries;

const K: DatasetKind = DatasetKind::Cifar10;

/// The pixel a test record holds at channel `c`, row `y`, column `x`: different in every
/// channel, row, column and record (`seed`), so a layout mistake shows.
fn pixel(seed: u8, c: usize, y: usize, x: usize) -> u8 {
    (seed as usize * 7 + c * 101 + y * 13 + x * 3) as u8
}

/// One 3073-byte record: the label, then the R, G and B planes, each row-major 32 x 32.
fn record(label: u8, seed: u8) -> Vec<u8> {
    let mut r = vec![label];
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                r.push(pixel(seed, c, y, x));
            }
        }
    }
    assert_eq!(r.len(), 3073);
    r
}

/// A batch file's bytes: one record per `(label, seed)`.
fn batch(records: &[(u8, u8)]) -> Vec<u8> {
    records.iter().flat_map(|&(l, s)| record(l, s)).collect()
}

/// The fixture: five training batches of 2, 3, 1, 2 and 2 records (labels and seeds given
/// here, seeds 0..10 in order), and a test batch of 3.
fn fixture() -> Vec<(&'static str, Vec<u8>)> {
    let train_labels: [&[u8]; 5] = [&[6, 9], &[9, 4, 1], &[1], &[2, 7], &[8, 3]];
    let mut seed = 0u8;
    let mut files = Vec::new();
    for (name, labels) in cifar::TRAIN_FILES.iter().zip(train_labels) {
        let recs: Vec<(u8, u8)> = labels
            .iter()
            .map(|&l| {
                seed += 1;
                (l, seed - 1)
            })
            .collect();
        files.push((*name, batch(&recs)));
    }
    files.push(("test_batch.bin", batch(&[(3, 100), (8, 101), (0, 102)])));
    files
}

const TRAIN_LABELS: [u8; 10] = [6, 9, 9, 4, 1, 1, 2, 7, 8, 3];

fn write_fixture(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in fixture() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn sorted_bin_names() -> Vec<String> {
    let mut v: Vec<String> = cifar::FILES.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

mod kind {
    use super::*;

    #[test]
    fn names_classes_and_shape() {
        for s in ["cifar10", "CIFAR-10", "cifar_10", " Cifar10 "] {
            assert_eq!(s.parse::<DatasetKind>().unwrap(), K, "{s}");
        }
        assert_eq!(K.to_string(), "cifar10");
        assert_eq!(K.num_classes(), 10);
        assert_eq!(K.class_names()[0], "airplane");
        assert_eq!(K.class_names()[9], "truck");
        assert_eq!(K.image_shape(), [3, 32, 32]);
        assert!(!K.is_idx());
        assert_eq!(K.files().len(), 6);
        assert_eq!(K.split_files(Split::Test), &["test_batch.bin"]);
        assert_eq!(K.split_files(Split::Train)[4], "data_batch_5.bin");
        assert!(DatasetKind::ALL.contains(&K));
        let msg = "cifar100".parse::<DatasetKind>().unwrap_err().to_string();
        assert!(msg.contains("cifar10"), "{msg}");
        // MNIST's names are unchanged.
        assert_eq!(DatasetKind::Mnist.files(), &bnlab::data::file_stems());
        assert_eq!(DatasetKind::FashionMnist.image_shape(), [1, 28, 28]);
    }

    #[test]
    fn published_checksum_and_mirror() {
        assert_eq!(
            checksums::expected(K, cifar::ARCHIVE),
            Some(Checksum::md5("c32a1d4ab5d03f1284b67883e8d87530"))
        );
        assert_eq!(checksums::expected(K, "data_batch_1.bin"), None);
        assert_eq!(download::mirror_env_var(K), "BNLAB_CIFAR10_MIRROR");
        assert_eq!(
            download::CIFAR10_MIRRORS,
            ["https://www.cs.toronto.edu/~kriz/"]
        );
        assert_eq!(cifar::ARCHIVE, "cifar-10-binary.tar.gz");
        // The MD5 implementation on known values.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            checksums::md5_file(&p).unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert!(Checksum::md5("900150983CD24FB0D6963F7D28E17F72")
            .matches(&checksums::md5_file(&p).unwrap()));
    }
}

mod loading {
    use super::*;

    #[test]
    fn train_split_labels_layout_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path());
        let ds = load(K, Split::Train, dir.path()).unwrap();
        assert_eq!(ds.len, 10);
        assert_eq!((ds.channels, ds.height, ds.width), (3, 32, 32));
        assert_eq!(ds.item_size(), 3072);
        assert_eq!(ds.num_classes, 10);
        assert_eq!(ds.images.len(), 10 * 3072);
        assert_eq!(ds.labels, TRAIN_LABELS);
        // Record i has seed i: batches are concatenated in order, records in file order.
        for i in 0..10 {
            let img = ds.image(i);
            for (c, y, x) in [(0, 0, 0), (0, 5, 17), (1, 0, 0), (1, 31, 2), (2, 9, 31)] {
                assert_eq!(
                    img[c * 1024 + y * 32 + x],
                    pixel(i as u8, c, y, x),
                    "record {i}, channel {c}, ({y}, {x})"
                );
            }
        }
        // One known pixel per channel, written out: record 4 (the third record of
        // data_batch_2.bin, seed 4, label 1), row 2, column 7.
        let img = ds.image(4);
        assert_eq!(ds.labels[4], 1);
        assert_eq!(img[2 * 32 + 7], 75); // R: 4*7 + 0*101 + 2*13 + 7*3
        assert_eq!(img[1024 + 2 * 32 + 7], 176); // G: 75 + 101
        assert_eq!(img[2048 + 2 * 32 + 7], 21); // B: 75 + 202 = 277 mod 256
                                                // The whole image is the record's bytes after the label.
        assert_eq!(img, &record(1, 4)[1..]);
    }

    #[test]
    fn test_split() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path());
        let ds = load(K, Split::Test, dir.path()).unwrap();
        assert_eq!(ds.len, 3);
        assert_eq!(ds.labels, vec![3, 8, 0]);
        assert_eq!(ds.image(2), &record(0, 102)[1..]);
        assert_eq!(ds.image(1)[1024 + 32 + 1], pixel(101, 1, 1, 1));
    }

    /// The files may sit in the `cifar-10-batches-bin` folder the archive unpacks to.
    #[test]
    fn subfolder_of_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(&dir.path().join("cifar-10-batches-bin"));
        assert!(missing_files(K, dir.path()).is_empty());
        let ds = load(K, Split::Train, dir.path()).unwrap();
        assert_eq!(ds.labels, TRAIN_LABELS);
        assert_eq!(load(K, Split::Test, dir.path()).unwrap().len, 3);
        // A file directly in the folder wins over the subfolder's.
        std::fs::write(dir.path().join("test_batch.bin"), batch(&[(5, 9)])).unwrap();
        assert_eq!(load(K, Split::Test, dir.path()).unwrap().labels, vec![5]);
    }

    #[test]
    fn missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path());
        std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
        assert_eq!(missing_files(K, dir.path()), vec!["data_batch_4.bin"]);
        assert_err_names(
            load(K, Split::Train, dir.path()),
            &dir.path().join("data_batch_4.bin"),
            &["not found", "cifar-10-batches-bin"],
        );
        // The test split does not need the training files.
        assert_eq!(load(K, Split::Test, dir.path()).unwrap().len, 3);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(missing_files(K, empty.path()).len(), 6);
    }

    #[test]
    fn bad_size_names_the_file_and_size() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path());
        let p = dir.path().join("data_batch_3.bin");
        let mut bytes = batch(&[(1, 1), (2, 2)]);
        bytes.truncate(2 * 3073 - 10); // 6136 bytes
        std::fs::write(&p, &bytes).unwrap();
        assert_err_names(
            load(K, Split::Train, dir.path()),
            &p,
            &["6136", "3073", "multiple"],
        );
        // Trailing bytes too, and an empty file.
        let mut bytes = batch(&[(1, 1)]);
        bytes.push(0);
        std::fs::write(&p, &bytes).unwrap();
        assert_err_names(load(K, Split::Train, dir.path()), &p, &["3074"]);
        std::fs::write(&p, b"").unwrap();
        assert_err_names(load(K, Split::Train, dir.path()), &p, &["empty"]);
    }

    #[test]
    fn bad_label_names_the_file_record_and_value() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path());
        let p = dir.path().join("test_batch.bin");
        std::fs::write(&p, batch(&[(0, 0), (9, 1), (10, 2), (255, 3)])).unwrap();
        assert_err_names(
            load(K, Split::Test, dir.path()),
            &p,
            &["label 10", "record 2"],
        );
        let p = dir.path().join("data_batch_5.bin");
        std::fs::write(&p, batch(&[(200, 0)])).unwrap();
        assert_err_names(
            load(K, Split::Train, dir.path()),
            &p,
            &["label 200", "record 0"],
        );
    }

    /// The pure parser never panics on damaged input.
    #[test]
    fn parser_never_panics() {
        let p = Path::new("fuzz.bin");
        let good = batch(&[(1, 1), (2, 2)]);
        for cut in (0..good.len()).step_by(97) {
            assert!(cifar::parse_batch(&good[..cut], p).is_err(), "prefix {cut}");
        }
        let (images, labels) = cifar::parse_batch(&good, p).unwrap();
        assert_eq!(labels, vec![1, 2]);
        assert_eq!(images.len(), 2 * 3072);
        assert_eq!(&images[3072..], &record(2, 2)[1..]);
    }

    /// `verify` says honestly that the `.bin` files have no published checksum.
    #[test]
    fn verify_cannot_check_bin_files() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path());
        let err = bnlab::data::verify(K, dir.path()).unwrap_err().to_string();
        assert!(err.contains("cannot verify"), "{err}");
    }
}

/// The command line finds CIFAR-10 in --data-dir, and names the folder and missing file.
mod cli {
    use super::*;
    use std::process::Command;

    fn eval(data_dir: &Path, dataset: &str) -> (bool, String) {
        let cwd = tempfile::tempdir().unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_bnlab"))
            .args(["eval", "--weights", "no-such-weights.safetensors"])
            .args(["--dataset", dataset, "--data-dir"])
            .arg(data_dir)
            .current_dir(cwd.path())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// eval reads only the test split: its missing file is named, and the training files are
    /// not asked for.
    #[test]
    fn data_dir_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path());
        std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
        std::fs::remove_file(dir.path().join("data_batch_2.bin")).unwrap();
        let (ok, err) = eval(dir.path(), "cifar10");
        assert!(!ok);
        assert!(err.contains("--data-dir"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("test_batch.bin"), "{err}");
        assert!(!err.contains("data_batch_2.bin"), "{err}");
    }

    /// With every file present (here in the subfolder) the data is accepted and loaded: the
    /// command gets as far as the missing weights.
    #[test]
    fn data_dir_with_the_files_loads() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(&dir.path().join("cifar-10-batches-bin"));
        let (ok, err) = eval(dir.path(), "cifar-10");
        assert!(!ok);
        assert!(err.contains("no-such-weights.safetensors"), "{err}");
        assert!(!err.contains("--data-dir"), "{err}");
    }
}

mod http {
    //! Downloads from the tests' local HTTP server (tests/common) serving archives the tests
    //! build.

    use super::*;
    use common::http::{refused_url, start_server, Reply};

    /// Serves `reply` for the archive under `/cifar/`; other names get 404. Returns the base
    /// URL and a counter of requests served.
    fn serve_reply(reply: Reply) -> (String, Arc<AtomicUsize>) {
        start_server("cifar", [(cifar::ARCHIVE, reply)])
    }

    fn serve(archive: Vec<u8>) -> (String, Arc<AtomicUsize>) {
        serve_reply(Reply::Body(archive))
    }

    /// A `.tar.gz` laid out like the published archive: a `cifar-10-batches-bin/` folder
    /// with `files` and the metadata files that must not be extracted.
    fn archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let gz = GzEncoder::new(Vec::new(), Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        tar.append_data(&mut dir, "cifar-10-batches-bin/", std::io::empty())
            .unwrap();
        let extras = [
            ("batches.meta.txt", b"airplane\nautomobile\n".to_vec()),
            ("readme.html", b"<html></html>".to_vec()),
        ];
        for (name, bytes) in files.iter().cloned().chain(extras) {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            tar.append_data(
                &mut h,
                format!("cifar-10-batches-bin/{name}"),
                bytes.as_slice(),
            )
            .unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn good_archive() -> Vec<u8> {
        archive(&fixture())
    }

    /// The MD5 of `bytes` as the expected checksum of the archive (and nothing else).
    fn md5_of(bytes: &[u8]) -> impl Fn(&str) -> Option<Checksum> {
        let hex = md5_hex(bytes);
        move |name| (name == cifar::ARCHIVE).then(|| Checksum::md5(hex.clone()))
    }

    #[test]
    fn download_checks_md5_extracts_and_loads() {
        let bytes = good_archive();
        let expected = md5_of(&bytes);
        let (base, count) = serve(bytes);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache/cifar10"); // created by the download
        let mirrors = [base];
        let got = ensure_available_with(K, &dir, Some(&mirrors), &expected).unwrap();
        assert_eq!(got, dir);
        // Only the six batch files: no archive, no metadata, no temporary file.
        assert_eq!(entries(&dir), sorted_bin_names());
        assert_eq!(count.load(Ordering::SeqCst), 1);
        for (name, bytes) in fixture() {
            assert_eq!(std::fs::read(dir.join(name)).unwrap(), bytes, "{name}");
        }
        let train = load(K, Split::Train, &dir).unwrap();
        assert_eq!(train.labels, TRAIN_LABELS);
        assert_eq!(train.image(7), &record(7, 7)[1..]);
        assert_eq!(load(K, Split::Test, &dir).unwrap().labels, vec![3, 8, 0]);

        // Present files are used as they are: no further request.
        ensure_available_with(K, &dir, Some(&mirrors), &expected).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    /// Only the missing files are extracted; the others are left as they are.
    #[test]
    fn only_missing_files_are_extracted() {
        let bytes = good_archive();
        let expected = md5_of(&bytes);
        let (base, count) = serve(bytes);
        let tmp = tempfile::tempdir().unwrap();
        let own = batch(&[(0, 200)]);
        for name in cifar::FILES {
            if name != "data_batch_2.bin" {
                std::fs::write(tmp.path().join(name), &own).unwrap();
            }
        }
        ensure_available_with(K, tmp.path(), Some(&[base]), expected).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(entries(tmp.path()), sorted_bin_names());
        let fixture: HashMap<_, _> = fixture().into_iter().collect();
        for name in cifar::FILES {
            let got = std::fs::read(tmp.path().join(name)).unwrap();
            if name == "data_batch_2.bin" {
                assert_eq!(got, fixture[name]);
            } else {
                assert_eq!(got, own, "{name} was overwritten");
            }
        }
    }

    /// With the published MD5 (what the command line uses), the test's archive is rejected
    /// before anything is extracted: the error names the URL and both hashes.
    #[test]
    fn published_md5_rejects_another_archive() {
        let bytes = good_archive();
        let actual = md5_hex(&bytes);
        let (base, _) = serve(bytes);
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_available(K, tmp.path(), Some(std::slice::from_ref(&base)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{base}cifar-10-binary.tar.gz")),
            "{err}"
        );
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(err.contains("MD5"), "{err}");
        assert!(err.contains(&actual), "{err}");
        assert!(err.contains("c32a1d4ab5d03f1284b67883e8d87530"), "{err}");
        assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    }

    /// A corrupted archive fails the MD5: no `.bin` file and no archive is left.
    #[test]
    fn corrupted_archive_leaves_nothing() {
        let good = good_archive();
        let expected = md5_of(&good);
        let (base, _) = serve_reply(Reply::corrupted(good));
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_available_with(K, tmp.path(), Some(&[base]), expected)
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    }

    /// An archive whose checksum matches but whose content is damaged (cut short): extraction
    /// fails part way, after some files were unpacked to temporary files, and still leaves no
    /// `.bin` file and no archive.
    #[test]
    fn truncated_archive_with_matching_md5_leaves_nothing() {
        let good = good_archive();
        let cut = good[..good.len() * 3 / 4].to_vec();
        let expected = md5_of(&cut);
        let (base, _) = serve(cut);
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_available_with(K, tmp.path(), Some(std::slice::from_ref(&base)), expected)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&base), "{err}");
        assert!(err.contains("extracting"), "{err}");
        assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    }

    /// An archive lacking a batch, or with a batch of a bad size, is rejected as a whole.
    #[test]
    fn incomplete_archive_leaves_nothing() {
        let mut files = fixture();
        files.retain(|(n, _)| *n != "test_batch.bin");
        let bytes = archive(&files);
        let expected = md5_of(&bytes);
        let (base, _) = serve(bytes);
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_available_with(K, tmp.path(), Some(&[base]), expected)
            .unwrap_err()
            .to_string();
        assert!(err.contains("test_batch.bin"), "{err}");
        assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));

        let mut files = fixture();
        files[2].1.pop();
        let bytes = archive(&files);
        let expected = md5_of(&bytes);
        let (base, _) = serve(bytes);
        let err = ensure_available_with(K, tmp.path(), Some(&[base]), expected)
            .unwrap_err()
            .to_string();
        assert!(err.contains("data_batch_3.bin"), "{err}");
        assert!(err.contains("multiple"), "{err}");
        assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    }

    /// The connection drops half way: no archive under its final name, nothing extracted.
    #[test]
    fn dropped_connection_leaves_nothing() {
        let body = good_archive();
        let expected = md5_of(&body);
        let sent = body.len() / 2;
        let (base, _) = serve_reply(Reply::Drop { body, sent });
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_available_with(K, tmp.path(), Some(std::slice::from_ref(&base)), expected)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&base), "{err}");
        assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    }

    /// A dead mirror falls through to the next; 404 everywhere is an error naming every mirror.
    #[test]
    fn mirror_fallback_and_not_found() {
        let dead = refused_url("cifar"); // connections are refused
        let bytes = good_archive();
        let expected = md5_of(&bytes);
        let (base, count) = serve(bytes);
        let tmp = tempfile::tempdir().unwrap();
        ensure_available_with(K, tmp.path(), Some(&[dead, base]), &expected).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(entries(tmp.path()), sorted_bin_names());

        let (empty, _) = start_server("cifar", HashMap::<String, Reply>::new());
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_available_with(K, tmp.path(), Some(&[empty.clone(), empty]), &expected)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("404") && err.contains("every mirror failed"),
            "{err}"
        );
        assert!(entries(tmp.path()).is_empty());
    }

    /// An archive already in the folder (downloaded by hand) is checked and extracted, without
    /// any mirror, and kept; a damaged one is an error naming it.
    #[test]
    fn archive_in_the_folder_is_used() {
        let bytes = good_archive();
        let expected = md5_of(&bytes);
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join(cifar::ARCHIVE);
        std::fs::write(&local, &bytes).unwrap();
        ensure_available_with(K, tmp.path(), Some(&[]), &expected).unwrap();
        let mut want = sorted_bin_names();
        want.push(cifar::ARCHIVE.to_string());
        want.sort();
        assert_eq!(entries(tmp.path()), want);
        assert_eq!(load(K, Split::Train, tmp.path()).unwrap().len, 10);

        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join(cifar::ARCHIVE);
        std::fs::write(&local, &bytes[..bytes.len() - 1]).unwrap();
        assert_err_names(
            ensure_available_with(K, tmp.path(), Some(&[]), &expected),
            &local,
            &["checksum mismatch"],
        );
        assert_eq!(entries(tmp.path()), vec![cifar::ARCHIVE.to_string()]);
    }

    /// `extract_batches` directly: only the requested names, wherever they are in the archive.
    #[test]
    fn extract_requested_names_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.tar.gz");
        std::fs::write(&path, good_archive()).unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        cifar::extract_batches(&path, &out, &["test_batch.bin"]).unwrap();
        assert_eq!(entries(&out), vec!["test_batch.bin"]);
        let not_gzip = tmp.path().join("b.tar.gz");
        std::fs::write(&not_gzip, b"plain text, not an archive").unwrap();
        assert_err_names(
            cifar::extract_batches(&not_gzip, &out, &["data_batch_1.bin"]),
            &not_gzip,
            &["archive"],
        );
        assert_eq!(entries(&out), vec!["test_batch.bin"]);
    }
}
