//! The `bnlab` command: train, evaluate, summarise, demonstrate and compare BatchNorm networks.

mod cli;

fn main() {
    // the command's allocator settings (the library leaves the process's allocator alone)
    bnlab::internal::alloc_tuning::keep_freed_memory();
    let args = match cli::parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return;
        }
        Err(e) => {
            // clap's first line names the argument and what is wrong; the rest is usage
            eprintln!("{}", first_line(&e.to_string()));
            std::process::exit(2);
        }
    };
    if let Err(e) = cli::run(args) {
        if cli::is_broken_pipe(&e) {
            return;
        }
        eprintln!("error: {e}");
        std::process::exit(cli::exit_code(&e));
    }
}

/// clap's message in one line: its first line, with the indented lines that complete it when
/// it ends in a colon ("the following required arguments were not provided:" and the list).
fn first_line(text: &str) -> String {
    let mut lines = text.lines();
    let mut line = lines.next().unwrap_or("invalid arguments").to_string();
    if line.ends_with(':') {
        let rest: Vec<&str> = lines
            .take_while(|l| l.starts_with(' '))
            .map(str::trim)
            .collect();
        line = format!("{line} {}", rest.join(", "));
    }
    line
}
