//! State dicts against PyTorch's: the seed model's keys in `model.state_dict()` order with their
//! shapes and dtypes, bit-exact save/load round trips, the golden file's `init.*` tensors,
//! strict loading (missing, unexpected, wrong shape, wrong dtype: an error naming the key, and
//! nothing changed), unreadable files (an error naming the file), and atomic saves.
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

use bnlab::io::{read_safetensors, write_safetensors, StateTensor};
use bnlab::nn::{set_training, visit_state, visit_state_mut, Forward, Net, StateRef};
use bnlab::presets::Preset;
use bnlab::state_dict::{load, load_state_dict, save, state_dict};
use bnlab::{Error, Graph, IncompatibleKeys, KeyMismatch, Rng, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The seed's BNModel, as the brief builds it.
fn seed_model(seed: u64) -> (Graph, Net) {
    let mut g = Graph::new(0);
    let model = Preset::Bn
        .build(&mut g.params, 1, 28, &mut Rng::seed(seed))
        .unwrap();
    (g, model)
}

/// One training-mode forward pass on a random batch: running statistics and
/// num_batches_tracked move away from their initial values.
fn train_forward(g: &mut Graph, model: &mut Net, seed: u64) {
    let mut rng = Rng::seed(seed);
    let x = Tensor::new(
        &[8, 1, 28, 28],
        (0..8 * 784).map(|_| rng.next_f32()).collect(),
    )
    .unwrap();
    set_training(model, true);
    g.reset();
    let xv = g.input(&x, false).unwrap();
    model.forward(g, xv).unwrap();
}

/// A comparable snapshot: name -> (dtype, shape, bits of every value).
type Snapshot = Vec<(String, &'static str, Vec<usize>, Vec<u64>)>;

fn snapshot_of(entries: &[(String, StateTensor)]) -> Snapshot {
    entries
        .iter()
        .map(|(k, t)| {
            let bits = match t {
                StateTensor::F32(t) => t.data.iter().map(|v| v.to_bits() as u64).collect(),
                StateTensor::I64 { data, .. } => data.iter().map(|&v| v as u64).collect(),
            };
            (k.clone(), t.dtype_name(), t.shape().to_vec(), bits)
        })
        .collect()
}

fn snapshot(g: &Graph, model: &mut Net) -> Snapshot {
    snapshot_of(&state_dict(model, &g.params))
}

fn as_map(entries: Vec<(String, StateTensor)>) -> BTreeMap<String, StateTensor> {
    entries.into_iter().collect()
}

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/golden/bnmodel_adam_3steps_b64.safetensors")
}

/// Files in a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// PyTorch's `BNModel().state_dict()`: keys in order, shapes, dtypes.
fn pytorch_keys() -> Vec<(String, Vec<usize>, &'static str)> {
    let mut out = Vec::new();
    for (block, (i, o)) in ["b1", "b2", "b3"]
        .iter()
        .zip([(784, 256), (256, 128), (128, 64)])
    {
        out.push((format!("{block}.0.weight"), vec![o, i], "F32"));
        out.push((format!("{block}.0.bias"), vec![o], "F32"));
        out.push((format!("{block}.1.weight"), vec![o], "F32"));
        out.push((format!("{block}.1.bias"), vec![o], "F32"));
        out.push((format!("{block}.1.running_mean"), vec![o], "F32"));
        out.push((format!("{block}.1.running_var"), vec![o], "F32"));
        out.push((format!("{block}.1.num_batches_tracked"), vec![], "I64"));
    }
    out.push(("output.weight".into(), vec![10, 64], "F32"));
    out.push(("output.bias".into(), vec![10], "F32"));
    out
}

#[test]
fn seed_model_keys_are_pytorchs_in_order() {
    let (g, model) = seed_model(0);
    let sd = state_dict(&model, &g.params);
    let got: Vec<(String, Vec<usize>, &str)> = sd
        .iter()
        .map(|(k, t)| (k.clone(), t.shape().to_vec(), t.dtype_name()))
        .collect();
    assert_eq!(got, pytorch_keys());
    // the parameters alone are torchinfo's 243,658
    let n_params: usize = sd
        .iter()
        .filter(|(k, _)| !k.contains("running_") && !k.contains("num_batches"))
        .map(|(_, t)| t.shape().iter().product::<usize>())
        .sum();
    assert_eq!(n_params, 243_658);
}

#[test]
fn saved_file_holds_pytorchs_keys_dtypes_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let (mut g, mut model) = seed_model(0);
    train_forward(&mut g, &mut model, 1);
    save(&model, &g.params, &path).unwrap();
    let file = read_safetensors(&path).unwrap();
    assert_eq!(
        file.metadata.get("format").map(String::as_str),
        Some("pt"),
        "safetensors.torch expects format=pt"
    );
    let mut keys: Vec<&String> = file.tensors.keys().collect();
    keys.sort();
    let mut want: Vec<String> = pytorch_keys().into_iter().map(|k| k.0).collect();
    want.sort();
    assert_eq!(keys, want.iter().collect::<Vec<_>>());
    for (k, shape, dtype) in pytorch_keys() {
        let t = &file.tensors[&k];
        assert_eq!(
            (t.shape(), t.dtype_name()),
            (shape.as_slice(), dtype),
            "{k}"
        );
    }
    assert_eq!(
        file.tensors["b2.1.num_batches_tracked"],
        StateTensor::I64 {
            shape: vec![],
            data: vec![1]
        }
    );
    // the file's values are the model's, bit for bit
    let from_file: Vec<(String, StateTensor)> = pytorch_keys()
        .into_iter()
        .map(|(k, _, _)| (k.clone(), file.tensors[&k].clone()))
        .collect();
    assert_eq!(snapshot_of(&from_file), snapshot(&g, &mut model));
}

#[test]
fn save_then_load_round_trips_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (a_path, b_path) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    let (mut ga, mut a) = seed_model(0);
    train_forward(&mut ga, &mut a, 1);
    train_forward(&mut ga, &mut a, 2);
    // values a text format or a lossy path would change: -0.0, a subnormal, a NaN payload,
    // infinities, and a count beyond 32 bits
    let b1w = a_weight(&mut a, "b1.0.weight");
    let specials = [
        -0.0f32,
        f32::from_bits(1),
        f32::from_bits(0x7fc0_1234),
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
    ];
    ga.params.value_mut(b1w)[..specials.len()].copy_from_slice(&specials);
    set_counter(&mut a, "b3.1.num_batches_tracked", (1i64 << 40) + 3);
    save(&a, &ga.params, &a_path).unwrap();

    let (mut gb, mut b) = seed_model(1);
    assert_ne!(snapshot(&gb, &mut b), snapshot(&ga, &mut a));
    load(&mut b, &mut gb.params, &a_path).unwrap();
    assert_eq!(
        snapshot(&gb, &mut b),
        snapshot(&ga, &mut a),
        "loaded values differ from the saved model's"
    );
    save(&b, &gb.params, &b_path).unwrap();
    assert_eq!(
        std::fs::read(&a_path).unwrap(),
        std::fs::read(&b_path).unwrap(),
        "a re-save of the loaded model differs byte for byte"
    );
}

/// The parameter id of a model's state entry by name.
fn a_weight(model: &mut Net, key: &str) -> bnlab::ParamId {
    let mut found = None;
    visit_state(model, "", &mut |name, s| {
        if let (true, Some(id)) = (name == key, s.param()) {
            found = Some(id);
        }
    });
    found.unwrap_or_else(|| panic!("no parameter {key}"))
}

fn set_counter(model: &mut Net, key: &str, value: i64) {
    let mut done = false;
    visit_state_mut(model, "", &mut |name, s| {
        if let (true, StateRef::Counter(c)) = (name == key, s) {
            *c = value;
            done = true;
        }
    });
    assert!(done, "no counter {key}");
}

#[test]
fn golden_init_tensors_load_unchanged() {
    let path = golden_path();
    let file = read_safetensors(&path).unwrap_or_else(|e| panic!("{e}"));
    let (mut g, mut model) = seed_model(5);
    load_state_dict(&mut model, &mut g.params, &file.tensors, "init.")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut compared = 0;
    for (k, dtype, shape, bits) in snapshot(&g, &mut model) {
        let t = file
            .tensors
            .get(&format!("init.{k}"))
            .unwrap_or_else(|| panic!("the golden file has no init.{k}"));
        let want = snapshot_of(&[(k.clone(), t.clone())]).remove(0);
        assert_eq!(
            (dtype, shape, bits),
            (want.1, want.2, want.3),
            "init.{k} changed on loading"
        );
        compared += 1;
    }
    let in_file = file
        .tensors
        .keys()
        .filter(|k| k.starts_with("init."))
        .count();
    assert_eq!(
        compared, in_file,
        "every init.* tensor has a place in the model"
    );
    assert_eq!(compared, 23);
}

// ---------------------------------------------------------------------------------------------
// strict loading

/// The state of another model (seed 1, after a training pass), to load into the seed-0 model:
/// all values differ, so a partial load would show.
fn other_state() -> BTreeMap<String, StateTensor> {
    let (mut g, mut m) = seed_model(1);
    train_forward(&mut g, &mut m, 3);
    as_map(state_dict(&m, &g.params))
}

/// Load `dict` into a fresh seed-0 model: it must fail with a message containing every one of
/// `needles`, and leave the model's state as it was. Also through a file with `load`, whose
/// error must name the file too.
fn assert_rejected(what: &str, dict: &BTreeMap<String, StateTensor>, needles: &[&str]) {
    let (mut g, mut model) = seed_model(0);
    train_forward(&mut g, &mut model, 4);
    let before = snapshot(&g, &mut model);
    let err = load_state_dict(&mut model, &mut g.params, dict, "")
        .err()
        .unwrap_or_else(|| panic!("{what}: accepted"));
    let msg = err.to_string();
    for n in needles {
        assert!(
            msg.contains(n),
            "{what}: the message does not mention {n:?}: {msg}"
        );
    }
    assert_eq!(
        snapshot(&g, &mut model),
        before,
        "{what}: a failed load changed the model"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-state.safetensors");
    let entries: Vec<(String, StateTensor)> =
        dict.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    write_safetensors(&path, &entries, &HashMap::new()).unwrap();
    let err = load(&mut model, &mut g.params, &path)
        .err()
        .unwrap_or_else(|| panic!("{what}: accepted from a file"));
    let msg = err.to_string();
    assert!(
        msg.contains("bad-state.safetensors"),
        "{what}: the message does not name the file: {msg}"
    );
    for n in needles {
        assert!(
            msg.contains(n),
            "{what}: the message does not mention {n:?}: {msg}"
        );
    }
    assert_eq!(
        snapshot(&g, &mut model),
        before,
        "{what}: a failed load from a file changed the model"
    );
}

#[test]
fn a_complete_state_of_another_model_loads() {
    // the control for the rejections below: the unmodified dict is accepted
    let dict = other_state();
    let (mut g, mut model) = seed_model(0);
    load_state_dict(&mut model, &mut g.params, &dict, "").unwrap();
    let want: Vec<(String, StateTensor)> = pytorch_keys()
        .into_iter()
        .map(|(k, _, _)| (k.clone(), dict[&k].clone()))
        .collect();
    assert_eq!(snapshot(&g, &mut model), snapshot_of(&want));
}

#[test]
fn missing_key_is_an_error_naming_it() {
    let mut dict = other_state();
    dict.remove("b2.1.running_var");
    assert_rejected("missing running_var", &dict, &["b2.1.running_var"]);
    let mut dict = other_state();
    dict.remove("output.bias");
    assert_rejected("missing output.bias", &dict, &["output.bias"]);
}

#[test]
fn unexpected_key_is_an_error_naming_it() {
    let mut dict = other_state();
    dict.insert(
        "b4.0.weight".into(),
        StateTensor::F32(Tensor::zeros(&[2, 2])),
    );
    assert_rejected("unexpected key", &dict, &["b4.0.weight"]);
}

#[test]
fn wrong_shape_is_an_error_naming_the_key_and_both_shapes() {
    let mut dict = other_state();
    dict.insert(
        "b2.0.weight".into(),
        StateTensor::F32(Tensor::zeros(&[128, 255])),
    );
    assert_rejected(
        "wrong shape",
        &dict,
        &["b2.0.weight", "[128, 255]", "[128, 256]"],
    );
    // same number of values, transposed: still the wrong shape
    let mut dict = other_state();
    dict.insert(
        "output.weight".into(),
        StateTensor::F32(Tensor::zeros(&[64, 10])),
    );
    assert_rejected(
        "transposed shape",
        &dict,
        &["output.weight", "[64, 10]", "[10, 64]"],
    );
    // num_batches_tracked is a 0-d tensor, not [1]
    let mut dict = other_state();
    dict.insert(
        "b1.1.num_batches_tracked".into(),
        StateTensor::I64 {
            shape: vec![1],
            data: vec![5],
        },
    );
    assert_rejected(
        "counter shape",
        &dict,
        &["b1.1.num_batches_tracked", "[1]", "[]"],
    );
}

#[test]
fn wrong_dtype_is_an_error_naming_the_key() {
    let mut dict = other_state();
    dict.insert(
        "b1.1.num_batches_tracked".into(),
        StateTensor::F32(Tensor::zeros(&[])),
    );
    assert_rejected(
        "float counter",
        &dict,
        &["b1.1.num_batches_tracked", "F32", "I64"],
    );
    let mut dict = other_state();
    dict.insert(
        "b3.1.bias".into(),
        StateTensor::I64 {
            shape: vec![64],
            data: vec![0; 64],
        },
    );
    assert_rejected("integer bias", &dict, &["b3.1.bias"]);
}

#[test]
fn prefixed_keys_must_match_too() {
    // with prefix "init.", a key under the prefix that the model lacks is unexpected, and keys
    // without the prefix are ignored
    let mut dict: BTreeMap<String, StateTensor> = other_state()
        .into_iter()
        .map(|(k, v)| (format!("init.{k}"), v))
        .collect();
    dict.insert(
        "final.whatever".into(),
        StateTensor::F32(Tensor::zeros(&[3])),
    );
    let (mut g, mut model) = seed_model(0);
    load_state_dict(&mut model, &mut g.params, &dict, "init.").unwrap();
    dict.insert(
        "init.b9.weight".into(),
        StateTensor::F32(Tensor::zeros(&[3])),
    );
    let before = snapshot(&g, &mut model);
    let err = load_state_dict(&mut model, &mut g.params, &dict, "init.")
        .unwrap_err()
        .to_string();
    assert!(err.contains("b9.weight"), "{err}");
    assert_eq!(snapshot(&g, &mut model), before);
}

/// The typed error of a failed load: (the file it names, what did not fit).
fn incompatible(e: Error) -> (Option<PathBuf>, IncompatibleKeys) {
    match e {
        Error::StateDict { file, keys } => (file, keys),
        other => panic!("not a state-dict mismatch: {other}"),
    }
}

#[test]
fn a_mismatch_lists_missing_unexpected_and_mismatched_keys() {
    // one of each kind, made here, so the lists the error must give are known
    let mut dict = other_state();
    dict.remove("b3.1.running_mean");
    dict.remove("b1.0.bias");
    dict.insert("extra.weight".into(), StateTensor::F32(Tensor::zeros(&[2])));
    dict.insert(
        "b2.0.weight".into(),
        StateTensor::F32(Tensor::zeros(&[128, 255])),
    );
    dict.insert(
        "b1.1.num_batches_tracked".into(),
        StateTensor::F32(Tensor::zeros(&[])),
    );
    let (mut g, mut model) = seed_model(0);
    let err = load_state_dict(&mut model, &mut g.params, &dict, "").unwrap_err();
    let (file, keys) = incompatible(err);
    assert_eq!(file, None);
    // in the model's (state-dict) order
    assert_eq!(keys.missing, ["b1.0.bias", "b3.1.running_mean"]);
    assert_eq!(keys.unexpected, ["extra.weight"]);
    assert_eq!(
        keys.mismatched,
        [
            KeyMismatch {
                key: "b1.1.num_batches_tracked".into(),
                expected: vec![],
                found: vec![],
                expected_dtype: "I64",
                found_dtype: "F32",
            },
            KeyMismatch {
                key: "b2.0.weight".into(),
                expected: vec![128, 256],
                found: vec![128, 255],
                expected_dtype: "F32",
                found_dtype: "F32",
            },
        ]
    );

    // from a file: the same lists, and the file
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let entries: Vec<(String, StateTensor)> = dict.into_iter().collect();
    write_safetensors(&path, &entries, &HashMap::new()).unwrap();
    let (file, from_file) = incompatible(load(&mut model, &mut g.params, &path).unwrap_err());
    assert_eq!(file, Some(path));
    assert_eq!(from_file, keys);
}

#[test]
fn a_long_list_is_summarised_in_one_line() {
    // an empty state dict: every one of the model's keys is missing
    let (mut g, mut model) = seed_model(0);
    let err = load_state_dict(&mut model, &mut g.params, &BTreeMap::new(), "").unwrap_err();
    let msg = err.to_string();
    let (_, keys) = incompatible(err);
    let all: Vec<String> = pytorch_keys().into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys.missing, all);
    assert!(keys.unexpected.is_empty() && keys.mismatched.is_empty());
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.contains(&format!("{} missing keys", all.len())),
        "{msg}"
    );
    assert!(msg.contains(&all[0]) && msg.contains(&all[2]), "{msg}");
    assert!(!msg.contains(&all[3]), "only the first few names: {msg}");
    assert!(
        msg.contains(&format!("and {} more", all.len() - 3)),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// unreadable files

/// Loading `bytes` from a file must fail, name the file, and change nothing.
fn assert_unreadable(what: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken-model.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let (mut g, mut model) = seed_model(0);
    let before = snapshot(&g, &mut model);
    let err = load(&mut model, &mut g.params, &path)
        .err()
        .unwrap_or_else(|| panic!("{what}: loaded"));
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{what}: the error does not name the file: {msg}"
    );
    assert_eq!(
        snapshot(&g, &mut model),
        before,
        "{what}: a failed load changed the model"
    );
    assert!(
        read_safetensors(&path).is_err(),
        "{what}: read_safetensors accepted it"
    );
}

fn valid_file_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let (g, model) = seed_model(2);
    save(&model, &g.params, &path).unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn truncated_file_is_an_error_naming_the_file() {
    let bytes = valid_file_bytes();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_unreadable("data cut in half", &bytes[..bytes.len() / 2]);
    assert_unreadable("last byte missing", &bytes[..bytes.len() - 1]);
    assert_unreadable("header cut", &bytes[..8 + header_len / 2]);
    assert_unreadable("only the length", &bytes[..8]);
    assert_unreadable("5 bytes", &bytes[..5]);
    assert_unreadable("empty", &[]);
}

#[test]
fn malformed_header_is_an_error_naming_the_file() {
    let with_header = |h: &[u8], data: &[u8]| {
        let mut v = (h.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(h);
        v.extend_from_slice(data);
        v
    };
    assert_unreadable("not JSON", &with_header(b"{this is not json", &[0; 16]));
    assert_unreadable("JSON of the wrong form", &with_header(b"[1, 2, 3]", &[]));
    assert_unreadable(
        "offsets beyond the data",
        &with_header(
            br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            &[0; 8],
        ),
    );
    assert_unreadable(
        "shape and offsets disagree",
        &with_header(
            br#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#,
            &[0; 16],
        ),
    );
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    assert_unreadable("header length beyond the file", &huge);
}

#[test]
fn missing_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-model.safetensors");
    let (mut g, mut model) = seed_model(0);
    let msg = load(&mut model, &mut g.params, &path)
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// atomic saves

#[test]
fn save_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let (mut g, mut model) = seed_model(0);
    save(&model, &g.params, &path).unwrap();
    assert_eq!(listing(dir.path()), ["model.safetensors"]);
    // overwriting: still one file, now holding the new state
    train_forward(&mut g, &mut model, 9);
    save(&model, &g.params, &path).unwrap();
    assert_eq!(listing(dir.path()), ["model.safetensors"]);
    let (mut g2, mut m2) = seed_model(3);
    load(&mut m2, &mut g2.params, &path).unwrap();
    assert_eq!(snapshot(&g2, &mut m2), snapshot(&g, &mut model));
}

#[test]
fn failed_save_leaves_no_partial_or_temporary_files() {
    // a save that cannot complete (the target is a folder) must not leave a partial file
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model.safetensors");
    std::fs::create_dir(&target).unwrap();
    let (g, model) = seed_model(0);
    let err = save(&model, &g.params, &target).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    assert_eq!(listing(dir.path()), ["model.safetensors"]);
    assert!(target.is_dir());
    // into a folder that does not exist: an error naming it, nothing created
    let missing = dir.path().join("nope").join("m.safetensors");
    let err = save(&model, &g.params, &missing).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
    assert!(!dir.path().join("nope").exists());
}
