//! A reader of our output that goes away (`micro history | head -1`): the command ends
//! the way any Unix tool does, killed by SIGPIPE, with nothing on stderr.
//!
//! SIGPIPE itself stays ignored (Rust's default). With its default action restored, a
//! server closing a connection while the CLI still writes a request killed the CLI
//! silently (exit 141, no message) where the user needs the server's answer or an error.

/// Print nothing for std's panic on a closed stdout (`println!` after the reader left)
/// and die of SIGPIPE instead; every other panic is reported as before.
pub fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        // std's own wording for a failed print!/println!.
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            die_of_sigpipe();
        }
        report(info)
    }));
}

/// Whether a command failed because its output's reader went away: a write to stdout
/// returned `BrokenPipe` and was passed up with `?`. Socket errors arrive wrapped in the
/// HTTP client's own error type, so they are not taken for this.
pub fn is_closed_stdout(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Ends the process as SIGPIPE's default action would.
#[allow(unsafe_code)]
pub fn die_of_sigpipe() -> ! {
    use nix::sys::signal::{SigHandler, Signal, raise, signal};
    // SAFETY: restores the default disposition and installs no handler code; the
    // process is ending, so no thread relies on SIGPIPE being ignored any more.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let _ = raise(Signal::SIGPIPE);
    std::process::exit(141)
}
