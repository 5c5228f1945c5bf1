//! The `bnlab` command: train, evaluate, summarise, demonstrate and compare BatchNorm networks.

mod cli;

use clap::Parser;

fn main() {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return;
        }
        Err(e) => {
            // clap's first line names the argument and what is wrong; the rest is usage
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("invalid arguments"));
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
