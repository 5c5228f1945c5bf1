//! `bnlab::figure::history`: the training curves' PNG, its edge cases and its errors.

use bnlab::figure::history::{write as write_history, SIZE};
use bnlab::train::{EpochRecord, History};
use std::io::Read;
use std::path::{Path, PathBuf};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn history(n: usize, loss0: f64, acc0: f64) -> History {
    let epochs = (1..=n)
        .map(|epoch| {
            let t = epoch as f64;
            EpochRecord {
                epoch,
                train_loss: loss0 / t,
                train_accuracy: 1.0 - (1.0 - acc0) / t,
                val_loss: loss0 / t + 0.1 + 0.02 * t,
                val_accuracy: 1.0 - (1.0 - acc0) / t - 0.03,
                lr: 0.01,
                seconds: 1.0,
            }
        })
        .collect();
    History {
        epochs,
        ..Default::default()
    }
}

/// Where the sample pictures go, to be looked at after `cargo test`.
fn keep(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Width and height from the IHDR chunk, which must come first, right after the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(PNG_SIGNATURE), "no PNG signature");
    assert_eq!(&bytes[8..12], &13u32.to_be_bytes(), "IHDR length");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

/// The pixels of an 8-bit RGB, non-interlaced PNG (what `figure::history::write` writes), as RGB bytes.
fn png_pixels(bytes: &[u8]) -> Vec<u8> {
    let (w, h) = png_size(bytes);
    assert_eq!(&bytes[24..29], &[8, 2, 0, 0, 0], "8-bit RGB, no interlace");
    let mut pos = 8;
    let mut idat = vec![];
    let mut seen_end = false;
    while pos + 12 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        let stored = u32::from_be_bytes(bytes[pos + 8 + len..pos + 12 + len].try_into().unwrap());
        assert_eq!(
            crc.sum(),
            stored,
            "CRC of chunk {:?}",
            String::from_utf8_lossy(kind)
        );
        match kind {
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => seen_end = true,
            _ => {}
        }
        pos += 12 + len;
    }
    assert!(seen_end && pos == bytes.len(), "the file ends with IEND");
    let mut raw = vec![];
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let row = w as usize * 3;
    assert_eq!(raw.len(), (row + 1) * h as usize);
    let mut out = vec![0u8; row * h as usize];
    for r in 0..h as usize {
        let filter = raw[r * (row + 1)];
        let line = &raw[r * (row + 1) + 1..(r + 1) * (row + 1)];
        for i in 0..row {
            let a = if i >= 3 {
                out[r * row + i - 3] as i16
            } else {
                0
            };
            let b = if r > 0 {
                out[(r - 1) * row + i] as i16
            } else {
                0
            };
            let c = if r > 0 && i >= 3 {
                out[(r - 1) * row + i - 3] as i16
            } else {
                0
            };
            let pred = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("unknown filter {f}"),
            };
            out[r * row + i] = line[i].wrapping_add(pred as u8);
        }
    }
    out
}

/// How many pixels are clearly coloured (curves and markers; the frame, grid and text are grey).
fn coloured_pixels(rgb: &[u8]) -> usize {
    rgb.chunks_exact(3)
        .filter(|p| {
            let (lo, hi) = (p.iter().min().unwrap(), p.iter().max().unwrap());
            hi - lo > 60
        })
        .count()
}

/// How many pixels are dark (text, axes).
fn dark_pixels(rgb: &[u8]) -> usize {
    rgb.chunks_exact(3)
        .filter(|p| p.iter().all(|&c| c < 80))
        .count()
}

/// Checks the file is a PNG of the plot's size and returns its pixels.
fn check_png(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(PNG_SIGNATURE));
    assert_eq!(png_size(&bytes), SIZE);
    assert_eq!(SIZE, (1200, 500));
    let rgb = png_pixels(&bytes);
    assert!(dark_pixels(&rgb) > 2000, "text and axes are drawn");
    rgb
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.png");
    let h = history(60, 2.3, 0.3); // long enough to be drawn without markers
    write_history(&[("bn", &h)], &path).unwrap();
    let rgb = check_png(&path);
    assert!(coloured_pixels(&rgb) > 2000, "the curves are drawn");
    assert!(leftovers(dir.path()).is_empty());
    std::fs::copy(&path, keep("plot-1-run.png")).unwrap();

    // Writing again replaces the file.
    write_history(&[("bn", &history(3, 1.0, 0.5))], &path).unwrap();
    check_png(&path);
}

#[test]
fn three_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("compare.png");
    let (a, b, c) = (
        history(20, 2.3, 0.2),
        history(20, 3.0, 0.1),
        history(15, 1.5, 0.4),
    );
    write_history(&[("bn", &a), ("no bn", &b), ("bn lr 0.1", &c)], &path).unwrap();
    let rgb = check_png(&path);
    let one = {
        let p = dir.path().join("one.png");
        write_history(&[("bn", &a)], &p).unwrap();
        coloured_pixels(&check_png(&p))
    };
    assert!(coloured_pixels(&rgb) > one, "more runs, more curves");
    std::fs::copy(&path, keep("plot-3-runs.png")).unwrap();
}

#[test]
fn a_single_epoch_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-epoch.png");
    let h = history(1, 2.3, 0.3);
    write_history(&[("bn", &h)], &path).unwrap();
    let rgb = check_png(&path);
    // Two markers per panel: in the plotting area, plus the legend's samples.
    assert!(
        coloured_pixels(&rgb) > 150,
        "markers are drawn: {}",
        coloured_pixels(&rgb)
    );
    std::fs::copy(&path, keep("plot-1-epoch.png")).unwrap();
}

#[test]
fn non_finite_and_constant_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = history(10, 2.3, 0.3);
    h.epochs[2].train_loss = f64::NAN;
    h.epochs[3].val_loss = f64::INFINITY;
    h.epochs[5].val_accuracy = f64::NEG_INFINITY;
    for e in &mut h.epochs {
        e.train_accuracy = 1.0; // constant
        e.val_accuracy = if e.val_accuracy.is_finite() {
            1.0
        } else {
            e.val_accuracy
        };
    }
    let path = dir.path().join("odd.png");
    write_history(&[("odd", &h)], &path).unwrap();
    check_png(&path);
    std::fs::copy(&path, keep("plot-odd.png")).unwrap();

    // Every value missing: still a picture (axes, legend), not an error or a panic.
    let mut nan = history(4, 1.0, 0.5);
    for e in &mut nan.epochs {
        (e.train_loss, e.val_loss, e.train_accuracy, e.val_accuracy) =
            (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    let path = dir.path().join("nan.png");
    write_history(&[("nan", &nan)], &path).unwrap();
    check_png(&path);

    // Constant zero everywhere, and an empty run name.
    let mut zero = history(5, 1.0, 0.5);
    for e in &mut zero.epochs {
        (e.train_loss, e.val_loss, e.train_accuracy, e.val_accuracy) = (0.0, 0.0, 0.0, 0.0);
    }
    let path = dir.path().join("zero.png");
    write_history(&[("", &zero)], &path).unwrap();
    check_png(&path);
}

#[test]
fn unwritable_paths_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = history(3, 1.0, 0.5);

    // The folder does not exist.
    let missing = dir.path().join("no-such-folder").join("history.png");
    let err = write_history(&[("bn", &h)], &missing).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(!missing.exists());

    // The "folder" is a file.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("history.png");
    let err = write_history(&[("bn", &h)], &under_file).unwrap_err();
    assert!(
        err.to_string().contains(&under_file.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    // The path is a folder: nothing is written, nothing left behind.
    let folder = dir.path().join("history.png");
    std::fs::create_dir(&folder).unwrap();
    let err = write_history(&[("bn", &h)], &folder).unwrap_err();
    assert!(
        err.to_string().contains(&folder.display().to_string()),
        "{err}"
    );
    assert!(folder.is_dir());
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn empty_histories_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.png");
    let empty = History::default();
    let err = write_history(&[("bn", &empty)], &path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("bn"),
        "{msg}"
    );
    assert!(!path.exists());

    // One empty run among good ones is still an error.
    let good = history(3, 1.0, 0.5);
    let err = write_history(&[("bn", &good), ("no bn", &empty)], &path).unwrap_err();
    assert!(err.to_string().contains("no bn"), "{err}");
    assert!(!path.exists());

    // No runs at all.
    let err = write_history(&[], &path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(!path.exists());
}
