//! `bnlab = { default-features = false }` builds the trainer alone: cargo's own dependency tree
//! of the library without default features holds none of the command line's crates, and the
//! default tree (the control) holds each of them.

/// The crates of `cargo tree` for bnlab's normal dependencies, with `extra` arguments.
fn tree(extra: &[&str]) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "bnlab",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

const COMMAND_ONLY: [&str; 4] = ["clap", "ureq", "indicatif", "ctrlc"];

#[test]
fn the_library_without_default_features_has_none_of_the_command_lines_crates() {
    let library = tree(&["--no-default-features"]);
    assert!(library.iter().any(|c| c == "gemm"), "{library:?}");
    for name in COMMAND_ONLY {
        assert!(!library.iter().any(|c| c == name), "{name} in {library:?}");
    }
    let command = tree(&[]);
    for name in COMMAND_ONLY {
        assert!(
            command.iter().any(|c| c == name),
            "{name} not in {command:?}"
        );
    }
}
