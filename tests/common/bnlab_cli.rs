//! Running the `bnlab` binary from the tests: its command line, its clean errors, a run held
//! at a known step (`BNLAB_PAUSE_AT`), and a tiny MNIST to train on in a blink.
//!
//! A test that needs a run to be at some point (in the middle of epoch 2, say) never waits a
//! fixed time for it: the run pauses there itself and says so on stderr, and the test acts
//! while it is held. So the tests pass on a machine of any speed, loaded or not.

use super::stderr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_bnlab");

/// bnlab with `args`, run in `cwd` (a temporary folder, so that default output folders never
/// land in the repository), with backtraces on.
pub fn command(args: &[String], cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    c
}

pub fn run(args: &[String], cwd: &Path) -> Output {
    command(args, cwd).output().unwrap()
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `train` with two threads, no progress bar, batches of 512, `epochs` epochs into `out`.
pub fn train_args(out: &Path, epochs: usize, extra: &[&str]) -> Vec<String> {
    let mut v = strings(&["train", "--threads", "2", "--quiet", "--batch-size", "512"]);
    v.extend(["--epochs".to_string(), epochs.to_string()]);
    v.extend(["--out".to_string(), path_str(out).to_string()]);
    v.extend(strings(extra));
    v
}

/// `train --resume out` with the same thread count.
pub fn resume_args(out: &Path) -> Vec<String> {
    strings(&[
        "train",
        "--resume",
        path_str(out),
        "--threads",
        "2",
        "--quiet",
    ])
}

#[track_caller]
pub fn assert_no_panic(err: &str) {
    let lower = err.to_ascii_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "a panic on stderr:\n{err}"
    );
}

/// A failure as a user should see it: a non-zero exit code (not a panic's 101, not a signal),
/// exactly one line on stderr, mentioning each of `names`, and no panic or backtrace. Returns
/// the line.
#[track_caller]
pub fn assert_clean_error(o: &Output, names: &[&str]) -> String {
    let err = stderr(o);
    assert!(
        matches!(o.status.code(), Some(c) if c != 0 && c != 101),
        "exit {:?}, stderr:\n{err}",
        o.status
    );
    assert_no_panic(&err);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{err}");
    assert!(!lines[0].trim().is_empty());
    for n in names {
        assert!(lines[0].contains(n), "stderr should name {n:?}:\n{err}");
    }
    lines[0].to_string()
}

/// An IDX file of unsigned bytes.
pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Pixels that do not compress to nothing (so that a gzip file has a middle to corrupt).
pub fn pixels(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

pub const TINY: u32 = 20;

/// The four files of a tiny MNIST (20 training and 20 test images of 28x28), all gzip.
pub fn tiny_mnist(dir: &Path) -> [(&'static str, Vec<u8>); 4] {
    std::fs::create_dir_all(dir).unwrap();
    let n = TINY as usize;
    let labels: Vec<u8> = (0..TINY as u8).map(|i| i % 10).collect();
    let files = [
        (
            "train-images-idx3-ubyte.gz",
            gzip(&idx(&[TINY, 28, 28], &pixels(n * 784, 1))),
        ),
        ("train-labels-idx1-ubyte.gz", gzip(&idx(&[TINY], &labels))),
        (
            "t10k-images-idx3-ubyte.gz",
            gzip(&idx(&[TINY, 28, 28], &pixels(n * 784, 2))),
        ),
        ("t10k-labels-idx1-ubyte.gz", gzip(&idx(&[TINY], &labels))),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    files
}

/// A `bnlab` run held by `BNLAB_PAUSE_AT` right after a given step.
pub struct Paused {
    /// The process (its stdin and stdout piped; stderr is read here).
    pub child: Child,
    stderr: BufReader<ChildStderr>,
    /// What the run printed on stderr up to the pause line (included).
    pub stderr_so_far: String,
}

/// Start `args` with `BNLAB_PAUSE_AT=at` (`EPOCH:STEP`) and return once the run says it is
/// paused there. Fails, with what the run printed, if it ends first.
#[track_caller]
#[allow(clippy::zombie_processes)] // the child is waited for in `Paused::finish`
pub fn spawn_paused(args: &[String], cwd: &Path, at: &str) -> Paused {
    let mut child = command(args, cwd)
        .env("BNLAB_PAUSE_AT", at)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut so_far = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        so_far.push_str(&line);
        if n == 0 {
            let status = child.wait().unwrap();
            panic!("the run ended ({status}) before pausing at {at}; stderr:\n{so_far}");
        }
        if line.starts_with("Paused at") {
            let (epoch, step) = at.split_once(':').unwrap();
            assert!(
                line.contains(&format!("epoch {epoch}, step {step} ")),
                "paused elsewhere: {line}"
            );
            return Paused {
                child,
                stderr,
                stderr_so_far: so_far,
            };
        }
    }
}

impl Paused {
    /// Let the run go on (a line on its standard input).
    pub fn go_on(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Send a signal (`INT`, `KILL`, ...) to the run.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Wait for the run to end: its exit status, stdout and the whole of its stderr. Its
    /// standard input stays open until then: closing it would end a pause as a line does, and
    /// a run held for a signal must still be held when the signal arrives.
    pub fn finish(mut self) -> Output {
        let stdin = self.child.stdin.take();
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        let mut o = self.child.wait_with_output().unwrap();
        drop(stdin);
        o.stderr = format!("{}{rest}", self.stderr_so_far).into_bytes();
        o
    }
}
