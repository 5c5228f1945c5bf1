//! `BNLAB_PAUSE_AT=EPOCH:STEP`: hold a training run right after a given step.
//!
//! A run that is stopped (Ctrl-C, SIGKILL) or raced (a reader of its checkpoint, a second run
//! into its folder) at a known point is how the robustness tests check what a run does then,
//! and how a user can try it by hand. Waiting a fixed time to land in the middle of an epoch
//! depends on the machine's speed; this does not. When the run has done step STEP of epoch
//! EPOCH (both from 1) it prints one line on stderr,
//!
//! ```text
//! Paused at epoch 2, step 3 (BNLAB_PAUSE_AT): press Enter to go on, Ctrl-C to stop here
//! ```
//!
//! and waits until a line (or the end) arrives on standard input, or until Ctrl-C, which then
//! stops the run at that very step. A step beyond the epoch's last never pauses.

use bnlab::train::StepHook;
use bnlab::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The environment variable's name.
pub const PAUSE_VAR: &str = "BNLAB_PAUSE_AT";

/// Parse `EPOCH:STEP` (both at least 1).
fn parse(text: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::Invalid(format!(
            "{PAUSE_VAR}={text}: expected EPOCH:STEP with both at least 1, like 2:3"
        ))
    };
    let (e, s) = text.split_once(':').ok_or_else(bad)?;
    let e: usize = e.trim().parse().map_err(|_| bad())?;
    let s: usize = s.trim().parse().map_err(|_| bad())?;
    if e == 0 || s == 0 {
        return Err(bad());
    }
    Ok((e, s))
}

/// The hook that pauses the run where `BNLAB_PAUSE_AT` says; None when it is not set.
/// `interrupt` is the run's Ctrl-C flag: it ends the pause.
pub fn pause_hook(interrupt: Option<Arc<AtomicBool>>) -> Result<Option<StepHook>> {
    let Ok(text) = std::env::var(PAUSE_VAR) else {
        return Ok(None);
    };
    let (at_epoch, at_step) = parse(&text)?;
    Ok(Some(Box::new(move |epoch, step| {
        if (epoch, step) == (at_epoch, at_step) {
            eprintln!(
                "Paused at epoch {epoch}, step {step} ({PAUSE_VAR}): press Enter to go on, Ctrl-C to stop here"
            );
            wait_for_input_or(interrupt.as_deref());
        }
    })))
}

/// Block until standard input gives a line or ends, or until `interrupt` is set.
fn wait_for_input_or(interrupt: Option<&AtomicBool>) {
    let (tx, rx) = mpsc::channel();
    // a thread of its own: a read cannot be woken by the signal handler's flag
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.send(());
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if interrupt.is_some_and(|f| f.load(Ordering::SeqCst)) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_epoch_and_step_and_rejects_the_rest() {
        assert_eq!(parse("2:3").unwrap(), (2, 3));
        for bad in ["", "2", "0:1", "1:0", "a:b", "2:3:4"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("BNLAB_PAUSE_AT"), "{bad}: {e}");
        }
    }
}
