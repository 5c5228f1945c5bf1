//! Tests of `bnlab::data` against the published facts about MNIST (../shared/data/mnist/README.md),
//! against hand-made malformed files, and of downloading from a local HTTP server (nothing here
//! leaves the machine).
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

use std::io::Write;
use std::path::{Path, PathBuf};

use bnlab::data::{
    checksums, download, gather_batch, load, parse_idx, read_idx, Dataset, DatasetKind, Loader,
    Split,
};
use flate2::write::GzEncoder;
use flate2::Compression;

mod common;
use common::assert_err_names;
use common::entries;

/// The shared MNIST folder (gzip IDX files with a README of facts).
fn shared_mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")
}

/// The copy vendored in this repository, so a fresh clone trains offline.
fn vendored_mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

/// IDX bytes with the given type code, dimensions and data (data need not fit the dims).
fn idx_bytes(type_code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, type_code, dims.len() as u8];
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

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

mod facts {
    use super::*;

    /// Known: first ten training labels, class counts, and mean/std of the scaled pixels.
    #[test]
    fn mnist_train_matches_published_facts() {
        let ds = load(DatasetKind::Mnist, Split::Train, &shared_mnist()).unwrap();
        assert_eq!(ds.len, 60_000);
        assert_eq!((ds.channels, ds.height, ds.width), (1, 28, 28));
        assert_eq!(ds.item_size(), 784);
        assert_eq!(ds.images.len(), 47_040_000); // 47,040,016 minus the 16-byte header
        assert_eq!(ds.labels.len(), 60_000);
        assert_eq!(ds.num_classes, 10);
        assert_eq!(&ds.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);

        let mut counts = [0usize; 10];
        for &l in &ds.labels {
            counts[l as usize] += 1;
        }
        assert_eq!(
            counts,
            [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        );
    }

    /// The mean and std are computed from what `gather_batch` produces for whole epochs, so they
    /// test the scaling and the gathering together, and the labels it gathers are counted too.
    #[test]
    fn gathered_batches_have_published_mean_std_and_counts() {
        let ds = load(DatasetKind::Mnist, Split::Train, &shared_mnist()).unwrap();
        let mut loader = Loader::new(1000, true, false, 7).unwrap();
        let order = loader.epoch_indices(ds.len);
        let mut x = vec![0f32; 1000 * ds.item_size()];
        let mut y = vec![0u32; 1000];
        let (mut sum, mut sum_sq, mut n) = (0f64, 0f64, 0usize);
        let mut counts = [0usize; 10];
        for r in loader.batches(ds.len) {
            let idx = &order[r];
            let (xb, yb) = (&mut x[..idx.len() * ds.item_size()], &mut y[..idx.len()]);
            gather_batch(&ds, idx, xb, yb).unwrap();
            for &v in xb.iter() {
                assert!((0.0..=1.0).contains(&v));
                sum += v as f64;
                sum_sq += (v as f64) * (v as f64);
            }
            n += xb.len();
            for &l in yb.iter() {
                counts[l as usize] += 1;
            }
        }
        assert_eq!(n, 47_040_000);
        let mean = sum / n as f64;
        let std = (sum_sq / n as f64 - mean * mean).sqrt();
        assert_eq!((mean * 1e4).round(), 1307.0, "mean {mean}");
        assert_eq!((std * 1e4).round(), 3081.0, "std {std}");
        assert_eq!(
            counts,
            [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        );
    }

    #[test]
    fn mnist_test_split_sizes() {
        let ds = load(DatasetKind::Mnist, Split::Test, &shared_mnist()).unwrap();
        assert_eq!(ds.len, 10_000);
        assert_eq!((ds.channels, ds.height, ds.width), (1, 28, 28));
        assert_eq!(ds.images.len(), 7_840_000);
        assert_eq!(ds.labels.len(), 10_000);
        assert_eq!(ds.image(9_999).len(), 784);
    }

    /// The content hashes in the README, computed by the library's streaming hasher.
    #[test]
    fn content_hashes_match_readme() {
        let readme = [
            (
                "train-images-idx3-ubyte",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            (
                "train-labels-idx1-ubyte",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            (
                "t10k-images-idx3-ubyte",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            (
                "t10k-labels-idx1-ubyte",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ];
        for (stem, hash) in readme {
            let gz = shared_mnist().join(format!("{stem}.gz"));
            assert_eq!(checksums::sha256_idx(&gz).unwrap(), hash, "{stem}");
            assert_eq!(
                checksums::expected(DatasetKind::Mnist, stem).unwrap().hex(),
                hash
            );
        }
        bnlab::data::verify(DatasetKind::Mnist, &shared_mnist()).unwrap();
    }

    /// The vendored copy is byte-identical to the shared one (its SHA256SUMS, per file).
    #[test]
    fn vendored_copy_is_complete_and_intact() {
        let sums = std::fs::read_to_string(vendored_mnist().join("SHA256SUMS")).unwrap();
        let mut n = 0;
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let (hash, name) = line.split_once("  ").unwrap();
            let path = vendored_mnist().join(name.trim());
            assert_eq!(checksums::sha256_file(&path).unwrap(), hash, "{name}");
            n += 1;
        }
        assert_eq!(n, 4);
        assert!(vendored_mnist().join("README.md").is_file());
        bnlab::data::verify(DatasetKind::Mnist, &vendored_mnist()).unwrap();
    }

    /// Raw and gzip files give the same bytes, and gzip is detected by content, not by name.
    #[test]
    fn raw_and_gzip_agree() {
        let dir = tempfile::tempdir().unwrap();
        for stem in bnlab::data::file_stems() {
            let gz_bytes = std::fs::read(shared_mnist().join(format!("{stem}.gz"))).unwrap();
            std::fs::write(dir.path().join(stem), gunzip(&gz_bytes)).unwrap();
        }
        for split in Split::ALL {
            let raw = load(DatasetKind::Mnist, split, dir.path()).unwrap();
            let gz = load(DatasetKind::Mnist, split, &shared_mnist()).unwrap();
            assert_eq!(raw, gz, "{split}");
        }
        // A gzip file without `.gz` and a raw file named `.gz` both read correctly.
        let gz_src = shared_mnist().join("t10k-labels-idx1-ubyte.gz");
        let expected = read_idx(&gz_src).unwrap();
        let gz_noext = dir.path().join("labels-gzip-without-extension");
        std::fs::copy(&gz_src, &gz_noext).unwrap();
        assert_eq!(read_idx(&gz_noext).unwrap(), expected);
        let raw_as_gz = dir.path().join("labels-raw.gz");
        std::fs::copy(dir.path().join("t10k-labels-idx1-ubyte"), &raw_as_gz).unwrap();
        assert_eq!(read_idx(&raw_as_gz).unwrap(), expected);
        assert_eq!(expected.dims, vec![10_000]);
        assert_eq!(&expected.data[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    }
}

mod malformed {
    use super::*;

    /// A gzip bomb behind an IDX header: the reader inflates only as much as the header claims
    /// (plus one byte), so 64 MiB of compressed zeros behind a header for 7,840 bytes are never
    /// inflated, and a header claiming more than bnlab reads is refused before any data.
    ///
    /// The oracle is the stream itself, not a clock: the bomb's compressed bytes are cut in half,
    /// so a reader that inflated all of it would fail on the cut ("truncated gzip data"); one
    /// that stops where the header says sees only the one byte too many ("trailing bytes").
    #[test]
    fn gzip_bombs_are_not_inflated() {
        let zeros = vec![0u8; 64 << 20];
        let mut small = idx_bytes(0x08, &[10, 28, 28], &[]);
        small.extend_from_slice(&zeros);
        let path = Path::new("bomb.gz");
        let whole = gzip(&small);
        // the whole bomb is a valid stream: only the cut can tell the two readers apart
        let cut = &whole[..whole.len() / 2];
        let err = parse_idx(cut, path).unwrap_err().to_string();
        assert!(
            err.contains("bomb.gz") && err.contains("trailing bytes"),
            "{err}"
        );
        let mut huge = idx_bytes(0x08, &[1 << 16, 1 << 15], &[]);
        huge.extend_from_slice(&zeros[..1 << 20]);
        let err = parse_idx(&gzip(&huge)[..], path).unwrap_err().to_string();
        assert!(err.contains("bomb.gz") && err.contains("claims"), "{err}");
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A folder with a well-formed test split of `n` 2x3 images and the given labels file bytes.
    fn split_dir(images: &[u8], labels: &[u8]) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let i = write(dir.path(), "t10k-images-idx3-ubyte", images);
        let l = write(dir.path(), "t10k-labels-idx1-ubyte.gz", &gzip(labels));
        (dir, i, l)
    }

    #[test]
    fn truncated_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let full = std::fs::read(shared_mnist().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let p = write(dir.path(), "cut.gz", &full[..full.len() / 2]);
        assert_err_names(read_idx(&p), &p, &["truncated gzip"]);
        // Cut just before the 8-byte CRC/length trailer: all data present, trailer missing.
        let p = write(dir.path(), "no-trailer.gz", &full[..full.len() - 8]);
        assert_err_names(read_idx(&p), &p, &["gzip"]);
    }

    #[test]
    fn corrupt_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = gzip(&idx_bytes(8, &[100], &[3; 100]));
        let last = bytes.len() - 5; // inside the CRC32 of the trailer
        bytes[last] ^= 0xff;
        let p = write(dir.path(), "crc.gz", &bytes);
        assert_err_names(read_idx(&p), &p, &["corrupt gzip"]);
    }

    #[test]
    fn wrong_magic() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = idx_bytes(8, &[3], &[1, 2, 3]);
        bytes[0] = 1;
        let p = write(dir.path(), "magic", &bytes);
        assert_err_names(read_idx(&p), &p, &["magic"]);
        let p = write(dir.path(), "tiny", &[0, 0]);
        assert_err_names(read_idx(&p), &p, &["not an IDX file"]);
        // The same through gzip, and through the pure parser.
        let p = write(dir.path(), "magic.gz", &gzip(&bytes));
        assert_err_names(read_idx(&p), &p, &["magic"]);
        assert_err_names(
            parse_idx(&bytes, Path::new("x.idx")),
            Path::new("x.idx"),
            &["magic"],
        );
    }

    #[test]
    fn wrong_type_code() {
        let dir = tempfile::tempdir().unwrap();
        // 0x0D is IDX's float type: valid IDX, but not unsigned bytes.
        let p = write(dir.path(), "float", &idx_bytes(0x0D, &[1], &[0, 0, 0, 0]));
        assert_err_names(read_idx(&p), &p, &["type code 0x0d", "32-bit float"]);
    }

    #[test]
    fn wrong_ndim() {
        // Images with 2 dimensions (N x 784), as some MNIST exports have.
        let (dir, images, _) = split_dir(
            &idx_bytes(8, &[2, 6], &[0; 12]),
            &idx_bytes(8, &[2], &[0, 1]),
        );
        assert_err_names(
            load(DatasetKind::Mnist, Split::Test, dir.path()),
            &images,
            &["dimensions", "2x6"],
        );
        // Labels with 2 dimensions.
        let (dir, _, labels) = split_dir(
            &idx_bytes(8, &[2, 2, 3], &[0; 12]),
            &idx_bytes(8, &[2, 1], &[0, 1]),
        );
        assert_err_names(
            load(DatasetKind::Mnist, Split::Test, dir.path()),
            &labels,
            &["dimensions"],
        );
        // Zero dimensions, and a header cut short of its dimensions.
        let p = dir.path().join("x");
        assert_err_names(parse_idx(&[0, 0, 8, 0], &p), &p, &["0 dimensions"]);
        assert_err_names(
            parse_idx(&[0, 0, 8, 3, 0, 0, 0, 1], &p),
            &p,
            &["truncated IDX header"],
        );
    }

    #[test]
    fn short_and_long_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "short", &idx_bytes(8, &[2, 2, 3], &[0; 11]));
        assert_err_names(read_idx(&p), &p, &["truncated", "2x2x3", "12", "11"]);
        let p = write(dir.path(), "long", &idx_bytes(8, &[4], &[0; 5]));
        assert_err_names(read_idx(&p), &p, &["trailing bytes"]);
        let p = write(dir.path(), "short.gz", &gzip(&idx_bytes(8, &[10], &[0; 9])));
        assert_err_names(read_idx(&p), &p, &["truncated"]);
        // Dimensions whose product overflows are rejected, not allocated.
        let huge = idx_bytes(8, &[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(parse_idx(&huge, &p).is_err());
    }

    #[test]
    fn count_mismatch() {
        let (dir, _, labels) = split_dir(
            &idx_bytes(8, &[3, 2, 3], &[0; 18]),
            &idx_bytes(8, &[2], &[0, 1]),
        );
        assert_err_names(
            load(DatasetKind::Mnist, Split::Test, dir.path()),
            &labels,
            &["2 labels", "3 images"],
        );
    }

    #[test]
    fn label_out_of_range() {
        let (dir, _, labels) = split_dir(
            &idx_bytes(8, &[5, 2, 3], &[0; 30]),
            &idx_bytes(8, &[5], &[0, 9, 1, 10, 2]),
        );
        assert_err_names(
            load(DatasetKind::FashionMnist, Split::Test, dir.path()),
            &labels,
            &["label 10", "index 3"],
        );
    }

    #[test]
    fn missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let expected = dir.path().join("train-images-idx3-ubyte");
        assert_err_names(
            load(DatasetKind::Mnist, Split::Train, dir.path()),
            &expected,
            &["not found"],
        );
    }

    #[test]
    fn well_formed_small_split_loads() {
        let pixels: Vec<u8> = (0..30).collect();
        let (dir, _, _) = split_dir(
            &idx_bytes(8, &[5, 2, 3], &pixels),
            &idx_bytes(8, &[5], &[0, 9, 1, 8, 2]),
        );
        let ds = load(DatasetKind::Mnist, Split::Test, dir.path()).unwrap();
        assert_eq!((ds.len, ds.height, ds.width, ds.channels), (5, 2, 3, 1));
        assert_eq!(ds.image(1), &[6, 7, 8, 9, 10, 11]);
        assert_eq!(ds.labels, vec![0, 9, 1, 8, 2]);
    }

    /// The parser never panics: every prefix of a valid file, and bytes flipped in its header.
    #[test]
    fn parser_never_panics_on_damaged_input() {
        let p = Path::new("fuzz");
        let good = idx_bytes(8, &[3, 2, 2], &[7; 12]);
        for cut in 0..good.len() {
            assert!(parse_idx(&good[..cut], p).is_err(), "prefix {cut}");
        }
        let gz = gzip(&good);
        for cut in 0..gz.len() {
            assert!(parse_idx(&gz[..cut], p).is_err(), "gzip prefix {cut}");
        }
        for i in 0..16 {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                let _ = parse_idx(&b, p); // must return, Ok or Err
            }
        }
        assert_eq!(parse_idx(&good, p).unwrap().dims, vec![3, 2, 2]);
    }

    #[test]
    fn dataset_kind_names() {
        assert_eq!("mnist".parse::<DatasetKind>().unwrap(), DatasetKind::Mnist);
        assert_eq!(
            "Fashion-MNIST".parse::<DatasetKind>().unwrap(),
            DatasetKind::FashionMnist
        );
        assert_eq!(DatasetKind::FashionMnist.to_string(), "fashion-mnist");
        let msg = "cifar".parse::<DatasetKind>().unwrap_err().to_string();
        assert!(
            msg.contains("cifar") && msg.contains("mnist, fashion-mnist"),
            "{msg}"
        );
        assert_eq!("test".parse::<Split>().unwrap(), Split::Test);
        assert!("val".parse::<Split>().is_err());
    }
}

mod http {
    //! Downloads from the tests' local HTTP server (tests/common) serving ../shared/data/mnist.

    use super::*;
    use common::http::{refused_url, Reply};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Serves the shared MNIST files under `/mnist/`, each with the reply `alter` makes of its
    /// name and bytes; other names get 404. Returns the base URL and a counter of requests served.
    fn start_server(alter: impl Fn(&str, Vec<u8>) -> Reply) -> (String, Arc<AtomicUsize>) {
        let files = bnlab::data::file_stems().into_iter().map(|s| {
            let name = format!("{s}.gz");
            let reply = alter(&name, std::fs::read(shared_mnist().join(&name)).unwrap());
            (name, reply)
        });
        common::http::start_server("mnist", files)
    }

    fn all_gz_names() -> Vec<String> {
        let mut v: Vec<String> = bnlab::data::file_stems()
            .iter()
            .map(|s| format!("{s}.gz"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn download_verifies_and_loads() {
        let (base, count) = start_server(|_, b| Reply::Body(b));
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache/mnist"); // created by the download
        let got = bnlab::data::ensure_available(
            DatasetKind::Mnist,
            &dir,
            Some(std::slice::from_ref(&base)),
        )
        .unwrap();
        assert_eq!(got, dir);
        assert_eq!(entries(&dir), all_gz_names());
        assert_eq!(count.load(Ordering::SeqCst), 4);
        let train = load(DatasetKind::Mnist, Split::Train, &dir).unwrap();
        assert_eq!(train.len, 60_000);
        assert_eq!(&train.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
        assert_eq!(
            load(DatasetKind::Mnist, Split::Test, &dir).unwrap().len,
            10_000
        );
        bnlab::data::verify(DatasetKind::Mnist, &dir).unwrap();

        // Present files are used as they are: no further request.
        bnlab::data::ensure_available(DatasetKind::Mnist, &dir, Some(&[base])).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }

    /// Only missing files are fetched, and a dead first mirror falls through to the next.
    #[test]
    fn missing_files_only_and_mirror_fallback() {
        let dead = refused_url("mnist"); // connections are refused
        let (base, count) = start_server(|_, b| Reply::Body(b));
        let tmp = tempfile::tempdir().unwrap();
        for stem in bnlab::data::file_stems().into_iter().skip(1) {
            let name = format!("{stem}.gz");
            std::fs::copy(shared_mnist().join(&name), tmp.path().join(&name)).unwrap();
        }
        bnlab::data::ensure_available(DatasetKind::Mnist, tmp.path(), Some(&[dead, base])).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(entries(tmp.path()), all_gz_names());
    }

    /// A valid gzip of altered content: the checksum catches it, naming the URL and both hashes.
    #[test]
    fn corrupted_content_is_rejected_and_not_kept() {
        use sha2::Digest;
        let bad_name = "t10k-labels-idx1-ubyte.gz";
        let mut idx = gunzip(&std::fs::read(shared_mnist().join(bad_name)).unwrap());
        idx[8] = (idx[8] + 1) % 10; // first test label, still a valid class
        let bad_hash: String = sha2::Sha256::digest(&idx)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let bad_gz = gzip(&idx);
        let (base, _) = start_server(move |name, b| {
            Reply::Body(if name == bad_name { bad_gz.clone() } else { b })
        });
        let tmp = tempfile::tempdir().unwrap();
        let err = bnlab::data::ensure_available(
            DatasetKind::Mnist,
            tmp.path(),
            Some(std::slice::from_ref(&base)),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(&format!("{base}{bad_name}")), "{err}");
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(err.contains(&bad_hash), "{err}");
        assert!(
            err.contains("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
            "{err}"
        );
        // The three good files are kept; nothing under the bad name, no temporary left over.
        let mut expected = all_gz_names();
        expected.retain(|n| n != bad_name);
        assert_eq!(entries(tmp.path()), expected);
    }

    /// Damaged gzip bytes (not a valid stream) are rejected the same way.
    #[test]
    fn damaged_gzip_is_rejected_and_not_kept() {
        let (base, _) = start_server(|_, b| Reply::corrupted(b));
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("t10k-labels-idx1-ubyte.gz");
        let checksum = checksums::expected(DatasetKind::Mnist, "t10k-labels-idx1-ubyte").unwrap();
        let url = format!("{base}t10k-labels-idx1-ubyte.gz");
        let err = download::download_file(&url, &dest, checksum)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&url), "{err}");
        assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    }

    /// The connection drops after half the announced body: no file under the final name.
    #[test]
    fn dropped_connection_leaves_no_file() {
        let (base, _) = start_server(|_, body| {
            let sent = body.len() / 2;
            Reply::Drop { body, sent }
        });
        let tmp = tempfile::tempdir().unwrap();
        let err = bnlab::data::ensure_available(
            DatasetKind::Mnist,
            tmp.path(),
            Some(std::slice::from_ref(&base)),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("{base}train-images-idx3-ubyte.gz")),
            "{err}"
        );
        assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    }

    #[test]
    fn not_found_everywhere_is_an_error() {
        let (base, _) = start_server(|_, _| Reply::NotFound);
        let tmp = tempfile::tempdir().unwrap();
        let err = bnlab::data::ensure_available(
            DatasetKind::Mnist,
            tmp.path(),
            Some(&[base.clone(), base]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("404") && err.contains("every mirror failed"),
            "{err}"
        );
        assert!(entries(tmp.path()).is_empty());
    }
}

mod batching {
    use super::*;

    #[test]
    fn same_seed_same_order_different_seed_different_order() {
        let mut a = Loader::new(32, true, false, 42).unwrap();
        let mut b = Loader::new(32, true, false, 42).unwrap();
        let mut c = Loader::new(32, true, false, 43).unwrap();
        let (ea, eb, ec) = (
            a.epoch_indices(1000),
            b.epoch_indices(1000),
            c.epoch_indices(1000),
        );
        assert_eq!(ea, eb);
        assert_ne!(ea, ec);
        // The next epoch is a different permutation, again equal across equal seeds.
        let (ea2, eb2) = (a.epoch_indices(1000), b.epoch_indices(1000));
        assert_eq!(ea2, eb2);
        assert_ne!(ea, ea2);
    }

    #[test]
    fn shuffled_epoch_is_a_permutation() {
        let mut l = Loader::new(7, true, false, 1).unwrap();
        for n in [0usize, 1, 2, 10, 60_000] {
            let mut order = l.epoch_indices(n);
            assert_eq!(order.len(), n);
            order.sort_unstable();
            assert!(
                order.iter().enumerate().all(|(i, &v)| v as usize == i),
                "n = {n}"
            );
        }
        let id = Loader::new(7, false, false, 1).unwrap().epoch_indices(5);
        assert_eq!(id, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn drop_last_and_partial_last_batch() {
        let keep = Loader::new(4, false, false, 0).unwrap();
        assert_eq!(
            keep.batches(10).collect::<Vec<_>>(),
            vec![0..4, 4..8, 8..10]
        );
        assert_eq!(keep.num_batches(10), 3);
        let drop = Loader::new(4, false, true, 0).unwrap();
        assert_eq!(drop.batches(10).collect::<Vec<_>>(), vec![0..4, 4..8]);
        assert_eq!(drop.num_batches(3), 0);
        // Exact multiples have no partial batch either way; no examples, no batches.
        assert_eq!(keep.batches(8).collect::<Vec<_>>(), vec![0..4, 4..8]);
        assert_eq!(keep.batches(0).count(), 0);
        // MNIST at 256: 234 full batches and one of 96 (60000 = 234 * 256 + 96).
        let mnist = Loader::new(256, true, false, 0).unwrap();
        let b: Vec<_> = mnist.batches(60_000).collect();
        assert_eq!(b.len(), 235);
        assert_eq!(b[234], 59_904..60_000);
        assert_eq!(
            Loader::new(256, true, true, 0)
                .unwrap()
                .batches(60_000)
                .count(),
            234
        );
        assert!(Loader::new(0, true, false, 0).is_err());
    }

    /// The RNG state round-trips through serde, so a resumed run draws the same next epoch.
    #[test]
    fn resumes_exactly_after_serialization() {
        let mut l = Loader::new(64, true, false, 9).unwrap();
        l.epoch_indices(500);
        let saved = serde_json::to_string(&l).unwrap();
        let mut resumed: Loader = serde_json::from_str(&saved).unwrap();
        assert_eq!(resumed.epoch_indices(500), l.epoch_indices(500));
    }

    #[test]
    fn gather_scales_like_torchvision_to_tensor() {
        // Two 1x1x3 images covering 0, 255 and a value where x/255 != x*(1/255) in f32.
        let ds = Dataset::new(vec![0, 255, 1, 7, 8, 9], vec![3, 1], [1, 1, 3], 10).unwrap();
        let mut x = [f32::NAN; 6];
        let mut y = [99u32; 2];
        gather_batch(&ds, &[1, 0], &mut x, &mut y).unwrap();
        assert_eq!(y, [1, 3]);
        assert_eq!(x[3..], [0.0, 1.0, 1.0 / 255.0]);
        // 7/255 correctly rounded is 0x3CE0E0E1 (0.027450980...); 7 * (1/255) rounds differently.
        assert_eq!(x[0].to_bits(), 0x3CE0_E0E1);
        assert_ne!(x[0].to_bits(), (7.0f32 * (1.0f32 / 255.0)).to_bits());

        // Wrong buffer sizes and bad indices fail without writing.
        let mut x2 = [0f32; 5];
        assert!(gather_batch(&ds, &[0, 1], &mut x2, &mut y).is_err());
        let mut x3 = [-1f32; 3];
        let mut y1 = [5u32; 1];
        assert!(gather_batch(&ds, &[2], &mut x3, &mut y1).is_err());
        assert_eq!((x3, y1), ([-1.0; 3], [5]));
        // Public fields edited out of agreement are an error, not a panic.
        let mut broken = ds.clone();
        broken.labels.pop();
        assert!(gather_batch(&broken, &[0], &mut x3, &mut y1).is_err());
    }

    #[test]
    fn dataset_new_checks_parts() {
        assert!(Dataset::new(vec![0; 5], vec![0, 1], [1, 1, 3], 10).is_err());
        assert!(Dataset::new(vec![0; 6], vec![0, 10], [1, 1, 3], 10).is_err());
    }
}
