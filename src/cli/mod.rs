//! Command-line arguments and their commands.

mod args;
mod bench;
mod compare;
mod data;
mod demo;
mod eval;
mod summary;
mod train;

pub use args::Cli;
use args::Command;

/// Run a command inside a thread pool of the size it asks for (--threads; 0 is all cores).
pub fn run(cli: Cli) -> bnlab::Result<()> {
    let threads = match &cli.command {
        Command::Train(a) => a.opts.threads,
        Command::Compare(a) => a.opts.threads,
        Command::Eval(a) => a.threads,
        Command::Bench(a) => a.threads,
        Command::Demo(_) | Command::Summary(_) => 1,
    };
    bnlab::matmul::with_threads(threads, move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match cli.command {
            Command::Train(a) => train::run(&a, &mut out),
            Command::Eval(a) => eval::run(&a, &mut out),
            Command::Demo(a) => demo::run(&a, &mut out),
            Command::Bench(a) => bench::run(&a, &mut out),
            Command::Summary(a) => summary::run(&a, &mut out),
            Command::Compare(a) => compare::run(&a, &mut out),
        }
    })?
}

fn stdout_err(e: std::io::Error) -> bnlab::Error {
    bnlab::Error::io("<stdout>", e)
}

/// Whether an error is only a closed standard output (`bnlab demo | head`): not worth a message.
pub fn is_broken_pipe(e: &bnlab::Error) -> bool {
    matches!(e, bnlab::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// 130 for an interrupted run (as a shell reports Ctrl-C), 1 for every other error.
pub fn exit_code(e: &bnlab::Error) -> i32 {
    match e {
        bnlab::Error::Interrupted(_) => 130,
        _ => 1,
    }
}
