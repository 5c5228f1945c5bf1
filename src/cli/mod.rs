//! Command-line arguments and their commands.

mod args;
mod bench;
mod compare;
mod data;
mod demo;
mod eval;
mod experiment;
mod export;
mod fold;
mod model;
mod observe;
mod pause;
mod predict;
mod resume;
mod run_folder;
mod run_page;
mod summary;
mod train;

pub use args::Cli;
use args::Command;
use clap::{CommandFactory, FromArgMatches};

/// Parse the command line, keeping which arguments were given on it (`train --resume` refuses
/// the options it cannot change instead of ignoring them).
pub fn parse() -> Result<Cli, clap::Error> {
    let matches = Cli::command().try_get_matches()?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    // a global argument given at any level: clap propagates its value to every level
    let mut level = Some(&matches);
    while let Some(m) = level {
        for (id, flag) in args::Settings::FLAGS {
            let given = m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
            if given && !cli.settings.given.contains(&flag) {
                cli.settings.given.push(flag);
            }
        }
        level = m.subcommand().map(|(_, sub)| sub);
    }
    if let (Command::Train(a), Some(("train", sub))) = (&mut cli.command, matches.subcommand()) {
        let command = Cli::command();
        let train = command.find_subcommand("train").expect("a train command");
        // the arguments only: argument groups (a flattened struct's) have ids too
        a.given = train
            .get_arguments()
            .map(|arg| arg.get_id().as_str())
            .filter(|id| sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
            .map(str::to_string)
            .collect();
    }
    Ok(cli)
}

/// The thread count to run with: `requested` (0: every core), at most the cores this process
/// may use. More threads than cores only slow a run down: the pool's workers poll for work
/// and take turns on the cores (`--threads 1000` did not finish an epoch in a minute), so the
/// count is capped, with a one-line notice on stderr.
fn thread_count(requested: usize) -> usize {
    let cores = bnlab::runtime::cores();
    if requested > cores {
        eprintln!(
            "note: --threads {requested} is more than the {cores} cores this machine gives bnlab; using {cores}"
        );
        cores
    } else {
        requested
    }
}

/// Run a command inside a thread pool of the size the process settings ask for (--threads; 0 is
/// all cores). The pool's workers are kept polling only inside the training and evaluation
/// loops.
pub fn run(cli: Cli) -> bnlab::Result<()> {
    let settings = cli.settings;
    refuse_unused_settings(&cli.command, &settings)?;
    bnlab::runtime::with_threads(thread_count(settings.threads), move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match cli.command {
            Command::Train(a) => train::run(&a, &settings, &mut out),
            Command::Eval(a) => eval::run(&a, &settings, &mut out),
            Command::Demo(a) => demo::run(&a, &mut out),
            Command::Bench(a) => bench::run(&a, &settings, &mut out),
            Command::Summary(a) => summary::run(&a, &mut out),
            Command::Compare(a) => compare::run(&a, &settings, &mut out),
            Command::Fold(a) => fold::run(&a, &mut out),
            Command::Predict(a) => predict::run(&a, &mut out),
            Command::Export(a) => export::run(&a, &mut out),
            Command::Experiment(a) => experiment::run(&a, &settings, &mut out),
            Command::Report(a) => run_page::run(&a, &mut out),
        }
    })?
}

/// The process settings a command has a use for: `--threads` where it computes more than a
/// trifle, `--data-dir` where it reads a dataset, `--quiet` where it draws a progress bar.
fn settings_used(command: &Command) -> &'static [&'static str] {
    match command {
        Command::Train(_) | Command::Compare(_) | Command::Experiment(_) => {
            &["--threads", "--data-dir", "--quiet"]
        }
        Command::Eval(_) | Command::Bench(_) => &["--threads", "--data-dir"],
        Command::Predict(_) => &["--threads"],
        Command::Demo(_)
        | Command::Summary(_)
        | Command::Fold(_)
        | Command::Export(_)
        | Command::Report(_) => &[],
    }
}

/// Refuse a process setting given to a command that would ignore it (no option is silently
/// ignored), naming each.
fn refuse_unused_settings(command: &Command, settings: &args::Settings) -> bnlab::Result<()> {
    let used = settings_used(command);
    let unused: Vec<&str> = settings
        .given
        .iter()
        .copied()
        .filter(|flag| !used.contains(flag))
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    let name = command_name(command);
    let (verb, them) = if unused.len() == 1 {
        ("does", "it")
    } else {
        ("do", "them")
    };
    let takes = if used.is_empty() {
        "none of the process settings".to_string()
    } else {
        used.join(", ")
    };
    Err(bnlab::Error::Invalid(format!(
        "{} {verb} nothing for bnlab {name} (it takes {takes}); leave {them} out",
        unused.join(", ")
    )))
}

/// The command's name, as the command line spells it.
fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Train(_) => "train",
        Command::Eval(_) => "eval",
        Command::Demo(_) => "demo",
        Command::Summary(_) => "summary",
        Command::Compare(_) => "compare",
        Command::Bench(_) => "bench",
        Command::Fold(_) => "fold",
        Command::Predict(_) => "predict",
        Command::Export(_) => "export",
        Command::Experiment(_) => "experiment",
        Command::Report(_) => "report",
    }
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
