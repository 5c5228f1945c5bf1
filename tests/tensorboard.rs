//! TensorBoard event files (`bnlab::tensorboard`), read back and checked against oracles that
//! do not come from the code under test: CRC-32C's published check values (RFC 3720's and the
//! catalogue's "123456789"), a bit-by-bit CRC-32C and TFRecord's mask written out here, the
//! protobuf wire bytes TensorFlow's field numbers give (worked out by hand), and each
//! histogram's statistics and buckets recomputed with plain loops. That TensorBoard itself reads
//! the files is checked by hand: `scripts/tensorboard_check.py`.
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

use bnlab::tensorboard::proto::{event::What, summary::value::Value, Event, HistogramProto};
use bnlab::tensorboard::{histogram, masked_crc32c, read_records, record, EventWriter};
use bnlab::Rng;
use prost::Message;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

// ---- oracles, written independently of the crate ----

/// CRC-32C bit by bit: reflected Castagnoli polynomial 0x82F63B78, init and final xor all ones.
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// TFRecord's mask, by the formula as TensorFlow writes it (shifts, not the library's rotate).
#[allow(clippy::manual_rotate)]
fn mask(crc: u32) -> u32 {
    ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn events(path: &Path) -> Vec<Event> {
    read_records(path)
        .unwrap()
        .iter()
        .map(|r| Event::decode(&r[..]).unwrap())
        .collect()
}

/// A summary event's only value: its tag and value.
fn value(e: &Event) -> (&str, &Value) {
    let Some(What::Summary(s)) = &e.what else {
        panic!("not a summary: {e:?}")
    };
    assert_eq!(s.value.len(), 1);
    (&s.value[0].tag, s.value[0].value.as_ref().unwrap())
}

// ---- CRC ----

#[test]
fn crc32c_matches_published_check_values() {
    // The catalogue's check value for CRC-32/ISCSI.
    assert_eq!(record::crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
    // RFC 3720, B.4: 32 bytes of zeros, of ones, ascending and descending.
    let asc: Vec<u8> = (0..32).collect();
    let desc: Vec<u8> = (0..32).rev().collect();
    for (data, want) in [
        (vec![0u8; 32], 0x8A91_36AAu32),
        (vec![0xFF; 32], 0x62A8_AB43),
        (asc, 0x46DD_794E),
        (desc, 0x113F_DB5C),
    ] {
        assert_eq!(record::crc32c(&data), want);
    }
    // The mask by the formula, on the check value computed by hand above.
    assert_eq!(masked_crc32c(b"123456789"), mask(0xE306_9283));
    // And on arbitrary data, against the bit-by-bit CRC.
    let mut rng = Rng::seed(3);
    for len in [0usize, 1, 7, 8, 64, 1000] {
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        assert_eq!(
            masked_crc32c(&data),
            mask(crc32c_bitwise(&data)),
            "len {len}"
        );
    }
}

// ---- the protobuf messages: TensorFlow's field numbers, in wire bytes worked out by hand ----

#[test]
fn messages_use_tensorflows_field_numbers() {
    // Event: wall_time = 1 (fixed64, key 0x09), step = 2 (varint, 0x10), file_version = 3
    // (length-delimited, 0x1a).
    let e = Event {
        wall_time: 1.5,
        step: 7,
        what: Some(What::FileVersion("x".into())),
    };
    let mut want = vec![0x09];
    want.extend(1.5f64.to_le_bytes());
    want.extend([0x10, 7, 0x1a, 1, b'x']);
    assert_eq!(e.encode_to_vec(), want);

    // Event.summary = 5 (0x2a) > Summary.value = 1 (0x0a) > Value.tag = 1 (0x0a),
    // Value.simple_value = 2 (fixed32 float, 0x15).
    let e = Event {
        wall_time: 0.0,
        step: 0,
        what: Some(What::Summary(bnlab::tensorboard::proto::Summary {
            value: vec![bnlab::tensorboard::proto::summary::Value {
                tag: "a".into(),
                value: Some(Value::SimpleValue(2.0)),
            }],
        })),
    };
    let mut want = vec![0x2a, 10, 0x0a, 8, 0x0a, 1, b'a', 0x15];
    want.extend(2.0f32.to_le_bytes());
    assert_eq!(e.encode_to_vec(), want);

    // Value.histo = 5 (0x2a); HistogramProto min..sum_squares = 1..5 (0x09, 0x11, 0x19, 0x21,
    // 0x29), bucket_limit = 6 and bucket = 7 packed (length-delimited: 0x32, 0x3a).
    let h = HistogramProto {
        min: 1.0,
        max: 2.0,
        num: 3.0,
        sum: 4.0,
        sum_squares: 5.0,
        bucket_limit: vec![1.5, 2.0],
        bucket: vec![1.0, 2.0],
    };
    let mut want = Vec::new();
    for (key, v) in [
        (0x09u8, 1.0f64),
        (0x11, 2.0),
        (0x19, 3.0),
        (0x21, 4.0),
        (0x29, 5.0),
    ] {
        want.push(key);
        want.extend(v.to_le_bytes());
    }
    for (key, vs) in [(0x32u8, [1.5f64, 2.0]), (0x3a, [1.0, 2.0])] {
        want.extend([key, 16]);
        vs.iter().for_each(|v| want.extend(v.to_le_bytes()));
    }
    assert_eq!(h.encode_to_vec(), want);
    let v = bnlab::tensorboard::proto::summary::Value {
        tag: String::new(),
        value: Some(Value::Histo(HistogramProto::default())),
    };
    assert_eq!(v.encode_to_vec(), [0x2a, 0]);
}

// ---- framing ----

#[test]
fn first_record_framing_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(dir.path()).unwrap();
    w.add_scalar("s", 1, 0.5).unwrap();
    w.flush().unwrap();
    let bytes = std::fs::read(w.path()).unwrap();

    // Walk every record by hand: u64 LE length, masked CRC of those 8 bytes, data, masked CRC.
    let mut at = 0;
    let mut datas = Vec::new();
    while at < bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(len_crc, mask(crc32c_bitwise(len_bytes)), "record at {at}");
        let data = &bytes[at + 12..at + 12 + len];
        let data_crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(data_crc, mask(crc32c_bitwise(data)), "record at {at}");
        datas.push(data.to_vec());
        at += 16 + len;
    }
    assert_eq!(at, bytes.len());
    assert_eq!(datas.len(), 2);
    // The first record is the header event; read_records agrees with the walk.
    let first = Event::decode(&datas[0][..]).unwrap();
    assert_eq!(first.what, Some(What::FileVersion("brain.Event:2".into())));
    assert_eq!(read_records(w.path()).unwrap(), datas);

    // write_record on its own: 3 bytes of data give 8 + 4 + 3 + 4 bytes.
    let mut buf = Vec::new();
    record::write_record(&mut buf, b"abc").unwrap();
    let mut want = 3u64.to_le_bytes().to_vec();
    want.extend(mask(crc32c_bitwise(&3u64.to_le_bytes())).to_le_bytes());
    want.extend(b"abc");
    want.extend(mask(crc32c_bitwise(b"abc")).to_le_bytes());
    assert_eq!(buf, want);
}

// ---- what the writer writes ----

#[test]
fn scalars_and_histograms_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let before = now();
    let mut w = EventWriter::create(dir.path()).unwrap();
    let scalars = [
        ("loss/train", 0i64, std::f64::consts::LN_10), // ln 10: 10 classes at chance
        ("loss/train", 1, 0.25),
        ("accuracy/test", 1, 0.9731),
        ("loss/train", -3, -1e-30),
        ("big", i64::MAX, 1e300), // beyond f32: stored as inf
    ];
    for &(tag, step, v) in &scalars {
        w.add_scalar(tag, step, v).unwrap();
    }
    let mut rng = Rng::seed(11);
    let mut with_nan: Vec<f32> = (0..5000).map(|_| rng.uniform(-3.0, 5.0)).collect();
    with_nan[10] = f32::NAN;
    with_nan[20] = f32::INFINITY;
    with_nan[30] = f32::NEG_INFINITY;
    let histos: Vec<(&str, Vec<f32>)> = vec![
        ("weights", with_nan),
        ("integers", (0..=30).map(|i| i as f32).collect()),
        ("constant", vec![-0.125; 17]),
        ("one", vec![4.0]),
        ("empty", vec![]),
        ("all_nan", vec![f32::NAN, f32::INFINITY]),
        ("extremes", vec![f32::MAX, -f32::MAX, 0.0, 1e-45]),
        ("tiny_range", vec![1.0, 1.0 + f32::EPSILON, 1.0]),
    ];
    for (i, (tag, values)) in histos.iter().enumerate() {
        w.add_histogram(tag, 100 + i as i64, values).unwrap();
    }
    w.flush().unwrap();
    let after = now();

    let evs = events(w.path());
    assert_eq!(evs.len(), 1 + scalars.len() + histos.len());
    assert_eq!(evs[0].what, Some(What::FileVersion("brain.Event:2".into())));
    for e in &evs {
        assert!(
            before <= e.wall_time && e.wall_time <= after,
            "{}",
            e.wall_time
        );
    }
    for (e, &(tag, step, v)) in evs[1..].iter().zip(&scalars) {
        assert_eq!(e.step, step);
        assert_eq!(value(e), (tag, &Value::SimpleValue(v as f32)));
    }
    for (i, (e, (tag, values))) in evs[1 + scalars.len()..].iter().zip(&histos).enumerate() {
        assert_eq!(e.step, 100 + i as i64);
        let (got_tag, v) = value(e);
        assert_eq!(got_tag, *tag);
        let Value::Histo(h) = v else {
            panic!("{tag}: not a histogram")
        };
        check_histogram(tag, values, h);
        // The library's own function gives what was written.
        assert_eq!(&histogram(values), h, "{tag}");
    }
}

/// `h` against statistics and buckets recomputed from `values` with plain loops.
fn check_histogram(tag: &str, values: &[f32], h: &HistogramProto) {
    let finite: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| v as f64)
        .collect();
    assert_eq!(h.num, finite.len() as f64, "{tag}: num");
    assert_eq!(h.bucket.len(), h.bucket_limit.len(), "{tag}");
    assert!(!h.bucket.is_empty(), "{tag}: no bucket");
    if finite.is_empty() {
        assert_eq!(
            (h.min, h.max, h.sum, h.sum_squares),
            (0.0, 0.0, 0.0, 0.0),
            "{tag}"
        );
        assert!(h.bucket.iter().all(|&c| c == 0.0), "{tag}");
        return;
    }
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    let (mut sum, mut sq) = (0.0f64, 0.0f64);
    for &v in &finite {
        min = min.min(v);
        max = max.max(v);
        sum += v;
        sq += v * v;
    }
    assert_eq!((h.min, h.max), (min, max), "{tag}: min, max");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    assert!(close(h.sum, sum), "{tag}: sum {} vs {sum}", h.sum);
    assert!(
        close(h.sum_squares, sq),
        "{tag}: sum_squares {} vs {sq}",
        h.sum_squares
    );

    assert_eq!(*h.bucket_limit.last().unwrap(), max, "{tag}: last limit");
    for w in h.bucket_limit.windows(2) {
        assert!(
            w[0] < w[1],
            "{tag}: limits not increasing: {:?}",
            h.bucket_limit
        );
    }
    assert_eq!(h.bucket.iter().sum::<f64>(), h.num, "{tag}: counts");
    if min == max {
        assert_eq!(h.bucket_limit, [max], "{tag}");
    } else {
        assert_eq!(h.bucket.len(), 30, "{tag}");
        assert!(h.bucket_limit[0] > min, "{tag}");
    }
    // Each value in (limit[i-1], limit[i]], bucket 0 starting at min: count them one by one.
    let mut counts = vec![0.0; h.bucket.len()];
    for &v in &finite {
        let mut found = None;
        for i in 0..h.bucket_limit.len() {
            let left_ok = if i == 0 {
                v >= h.min
            } else {
                v > h.bucket_limit[i - 1]
            };
            if left_ok && v <= h.bucket_limit[i] {
                assert!(found.is_none(), "{tag}: {v} in two buckets");
                found = Some(i);
            }
        }
        counts[found.unwrap_or_else(|| panic!("{tag}: {v} in no bucket"))] += 1.0;
    }
    assert_eq!(counts, h.bucket, "{tag}: bucket counts");
}

#[test]
fn integer_values_on_the_edges_go_left() {
    // 0..=30: width exactly 1, limits 1, 2, ..., 30. A value on an edge belongs to the bucket
    // it closes, so bucket 0 holds 0 and 1, every other bucket one value.
    let values: Vec<f32> = (0..=30).map(|i| i as f32).collect();
    let h = histogram(&values);
    let limits: Vec<f64> = (1..=30).map(|i| i as f64).collect();
    assert_eq!(h.bucket_limit, limits);
    let mut want = vec![1.0; 30];
    want[0] = 2.0;
    assert_eq!(h.bucket, want);
    assert_eq!((h.num, h.sum, h.sum_squares), (31.0, 465.0, 9455.0));
}

// ---- damaged files ----

/// A small event file: the header, a scalar and a histogram.
fn small_file(dir: &Path) -> std::path::PathBuf {
    let mut w = EventWriter::create(dir).unwrap();
    w.add_scalar("s", 3, 1.25).unwrap();
    w.add_histogram("h", 3, &[1.0, 2.0, 3.0]).unwrap();
    w.flush().unwrap();
    w.path().to_path_buf()
}

#[test]
fn any_flipped_byte_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = small_file(dir.path());
    let good = std::fs::read(&path).unwrap();
    let second = 16 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let bad = dir.path().join("bad.tfevents");
    for i in 0..good.len() {
        let mut bytes = good.clone();
        bytes[i] ^= 0x20;
        std::fs::write(&bad, &bytes).unwrap();
        let err = read_records(&bad)
            .expect_err(&format!("byte {i} flipped"))
            .to_string();
        assert!(err.contains(&bad.display().to_string()), "{err}");
        // The first record's length or its CRC: caught by the length CRC.
        if i < 12 {
            assert!(
                err.contains("TFRecord 0 at byte 0: bad length CRC"),
                "{i}: {err}"
            );
        } else if i < second - 4 {
            assert!(
                err.contains("TFRecord 0 at byte 0: bad data CRC"),
                "{i}: {err}"
            );
        } else if (second..second + 12).contains(&i) {
            let want = format!("TFRecord 1 at byte {second}: bad length CRC");
            assert!(err.contains(&want), "{i}: {err}");
        }
    }
}

#[test]
fn truncation_and_absurd_lengths_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = small_file(dir.path());
    let good = std::fs::read(&path).unwrap();
    // Where records end: a file cut there is whole, anywhere else it is truncated.
    let mut ends = vec![0];
    let mut at = 0;
    while at < good.len() {
        at += 16 + u64::from_le_bytes(good[at..at + 8].try_into().unwrap()) as usize;
        ends.push(at);
    }
    let cut = dir.path().join("cut.tfevents");
    for n in 0..good.len() {
        std::fs::write(&cut, &good[..n]).unwrap();
        match read_records(&cut) {
            Ok(_) => assert!(ends.contains(&n), "cut at {n} read as whole"),
            Err(e) => {
                assert!(!ends.contains(&n), "cut at {n}: {e}");
                let msg = e.to_string();
                assert!(msg.contains("truncated"), "{msg}");
                assert!(msg.contains(&cut.display().to_string()), "{msg}");
            }
        }
    }
    // A length with a valid CRC but far beyond the file (up to u64::MAX): no allocation, no
    // panic, an error.
    for len in [u64::MAX, u64::MAX - 3, 1 << 40, 100] {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend(mask(crc32c_bitwise(&len.to_le_bytes())).to_le_bytes());
        bytes.extend([0u8; 20]);
        std::fs::write(&cut, &bytes).unwrap();
        let msg = read_records(&cut).unwrap_err().to_string();
        assert!(msg.contains("TFRecord 0 at byte 0: truncated"), "{msg}");
    }
    let missing = dir.path().join("missing");
    assert!(read_records(&missing)
        .unwrap_err()
        .to_string()
        .contains(&missing.display().to_string()));
}

// ---- file names ----

/// The seconds field of an event file's name.
fn name_seconds(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    name.split('.').nth(3).unwrap().parse().unwrap()
}

#[test]
fn file_name_follows_tensorflows_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let before = now().floor() as u64;
    let nested = dir.path().join("runs/a/b");
    let w = EventWriter::create(&nested).unwrap();
    let after = now().ceil() as u64;
    assert_eq!(w.path().parent().unwrap(), nested);
    let name = w.path().file_name().unwrap().to_str().unwrap();
    let re =
        regex::Regex::new(r"^events\.out\.tfevents\.([0-9]{10})\.[A-Za-z0-9_-]+\.([0-9]+)\.bnlab$")
            .unwrap();
    let caps = re.captures(name).unwrap_or_else(|| panic!("{name}"));
    let secs: u64 = caps[1].parse().unwrap();
    assert!(before <= secs && secs <= after, "{secs}");
    assert_eq!(caps[2].parse::<u32>().unwrap(), std::process::id());

    // A folder that cannot be made: the error names it.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let under = file.join("run");
    let err = EventWriter::create(&under).err().unwrap().to_string();
    assert!(err.contains(&under.display().to_string()), "{err}");
}

#[test]
fn two_writers_in_one_second_get_two_files() {
    let dir = tempfile::tempdir().unwrap();
    // Retry if a second boundary falls between the two (then the test shows nothing).
    for _ in 0..5 {
        let mut a = EventWriter::create(dir.path()).unwrap();
        a.add_scalar("a", 1, 1.0).unwrap();
        a.flush().unwrap();
        let mut b = EventWriter::create(dir.path()).unwrap();
        b.add_scalar("b", 2, 2.0).unwrap();
        b.flush().unwrap();
        if name_seconds(a.path()) != name_seconds(b.path()) {
            continue;
        }
        assert_ne!(a.path(), b.path());
        // Neither truncated nor wrote into the other's file.
        let (ea, eb) = (events(a.path()), events(b.path()));
        assert_eq!(ea.len(), 2);
        assert_eq!(eb.len(), 2);
        assert_eq!(value(&ea[1]).0, "a");
        assert_eq!(value(&eb[1]).0, "b");
        // TensorBoard reads a folder's files in name order: the second sorts after the first.
        assert!(b.path() > a.path());
        return;
    }
    panic!("never two writers in the same second");
}
