//! Replays the committed fuzz corpora (fuzz/corpus/<target>/ and fuzz/regressions/<target>/)
//! through the same calls as the cargo-fuzz targets in fuzz/fuzz_targets/, on stable and
//! without libFuzzer: the IDX reader, the safetensors reader plus strict state-dict loading
//! into the seed's BNModel, the model-file reader and builder, and the CSV table reader must
//! return `Ok` or `Err` for every file, never panic.
//!
//! Each replay also checks it saw at least as many files as were committed (and that some of
//! them parse), so an emptied or moved folder fails instead of passing on nothing.

use bnlab::data::parse_idx;
use bnlab::io::read_safetensors_bytes;
use bnlab::presets::Preset;
use bnlab::state_dict::load_state_dict;
use bnlab::{Graph, Rng};
use std::path::{Path, PathBuf};

/// Files committed: 160 under fuzz/corpus/idx plus 1 under fuzz/regressions/idx.
const MIN_IDX_FILES: usize = 161;
/// Files committed: 316 under fuzz/corpus/state_dict (there is no fuzz/regressions/state_dict).
const MIN_STATE_DICT_FILES: usize = 316;
/// Files committed: 572 under fuzz/corpus/model_file (11 hand-made seeds, the rest kept by the
/// fuzzer's merge).
const MIN_MODEL_FILES: usize = 572;
/// Files committed: 522 under fuzz/corpus/csv (5 hand-made seeds, the rest from the merge).
const MIN_CSV_FILES: usize = 522;

/// Every regular file in fuzz/corpus/<target> and, if present, fuzz/regressions/<target>,
/// sorted so that failures name the same file on every run.
fn corpus_files(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in [
        fuzz.join("corpus").join(target),
        fuzz.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read corpus folder entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// As fuzz/fuzz_targets/idx.rs: `parse_idx` on the bytes, and on success the data holds exactly
/// the product of the dimensions.
#[test]
fn idx_corpus_replays_without_panic() {
    let files = corpus_files("idx");
    assert!(
        files.len() >= MIN_IDX_FILES,
        "expected at least {MIN_IDX_FILES} IDX corpus files, found {}",
        files.len()
    );
    let mut parsed = 0;
    for path in &files {
        let bytes = read(path);
        eprintln!("idx: {} ({} bytes)", path.display(), bytes.len());
        if let Ok(idx) = parse_idx(&bytes, Path::new("fuzz.idx")) {
            let n: usize = idx.dims.iter().product();
            assert_eq!(idx.data.len(), n, "{}: dims {:?}", path.display(), idx.dims);
            parsed += 1;
        }
    }
    // The hand-made seeds include valid raw and gzip files.
    assert!(parsed >= 5, "only {parsed} IDX corpus files parsed");
}

/// As fuzz/fuzz_targets/state_dict.rs: `read_safetensors_bytes`, and when it parses, a strict
/// `load_state_dict` into the seed's BNModel (784-256-128-64-10).
#[test]
fn state_dict_corpus_replays_without_panic() {
    let files = corpus_files("state_dict");
    assert!(
        files.len() >= MIN_STATE_DICT_FILES,
        "expected at least {MIN_STATE_DICT_FILES} state-dict corpus files, found {}",
        files.len()
    );
    let mut g = Graph::new(0);
    let mut net = Preset::Bn
        .build(&mut g.params, 1, 28, &mut Rng::seed(0))
        .unwrap();
    let (mut parsed, mut loaded) = (0, 0);
    for path in &files {
        let bytes = read(path);
        eprintln!("state_dict: {} ({} bytes)", path.display(), bytes.len());
        let Ok(file) = read_safetensors_bytes(&bytes, Path::new("fuzz.safetensors")) else {
            continue;
        };
        parsed += 1;
        if load_state_dict(&mut net, &mut g.params, &file.tensors, "").is_ok() {
            loaded += 1;
        }
    }
    assert!(parsed >= 5, "only {parsed} state-dict corpus files parsed");
    // fuzz/corpus/state_dict/seed-bn-valid.safetensors is the seed model's own state dict.
    assert!(
        loaded >= 1,
        "no state-dict corpus file loaded into the seed model"
    );
}

/// As fuzz/fuzz_targets/model_file.rs: parse the text, build what parses for MNIST-shaped
/// input, and summarise what builds.
#[test]
fn model_file_corpus_replays_without_panic() {
    use bnlab::model_file::ModelFile;
    let files = corpus_files("model_file");
    assert!(
        files.len() >= MIN_MODEL_FILES,
        "expected at least {MIN_MODEL_FILES} model-file corpus files, found {}",
        files.len()
    );
    let mut built = 0;
    for path in &files {
        let bytes = read(path);
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let Ok(model) = ModelFile::from_text(text, Path::new("fuzz.txt")) else {
            continue;
        };
        let mut g = Graph::new(0);
        if let Ok(net) = model.build(&[1, 1, 28, 28], &mut g.params, &mut Rng::seed(0)) {
            let _ = bnlab::summary::summary(&net, &g.params, &[1, 1, 28, 28]);
            built += 1;
        }
    }
    // the hand-made seeds include the seven presets' files
    assert!(built >= 7, "only {built} model-file corpus files built");
}

/// As fuzz/fuzz_targets/csv.rs: parse the table; what parses standardises to finite values,
/// and labels and splits without a panic.
#[test]
fn csv_corpus_replays_without_panic() {
    use bnlab::data::table::{labels, parse_csv, split, Standardizer};
    let files = corpus_files("csv");
    assert!(
        files.len() >= MIN_CSV_FILES,
        "expected at least {MIN_CSV_FILES} CSV corpus files, found {}",
        files.len()
    );
    let mut parsed = 0;
    for path in &files {
        let bytes = read(path);
        let p = Path::new("fuzz.csv");
        let Ok(table) = parse_csv(&bytes, p, "y") else {
            continue;
        };
        parsed += 1;
        let x = Standardizer::fit(&table).apply(&table, p).unwrap();
        assert!(x.iter().all(|v| v.is_finite()), "{}", path.display());
        let _ = (labels(&table, false, p), labels(&table, true, p));
        let _ = split(table.rows(), 0.2, 0, p);
    }
    assert!(parsed >= 2, "only {parsed} CSV corpus files parsed");
}
