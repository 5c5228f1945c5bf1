//! Helpers shared by the integration tests (each test file includes this module and uses part
//! of it, hence the allowance for what one file leaves unused).
#![allow(dead_code)]

/// The course's epoch line, as the brief gives it.
pub const EPOCH_LINE: &str = r"^Epoch\[[0-9]+/[0-9]+\] - Train loss: [0-9]\.[0-9]{5} Train Accuracy: [0-9]\.[0-9]{5} \|\| Validation Loss: [0-9]\.[0-9]{5} Validation Accuracy: [0-9]\.[0-9]{5}$";

/// Whether a line is exactly one of the course's epoch lines.
pub fn is_epoch_line(line: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(EPOCH_LINE).expect("a valid pattern"))
        .is_match(line)
}

/// A command's standard output and error, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command succeeded (or the test fails showing both of its outputs).
#[track_caller]
pub fn assert_ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}
