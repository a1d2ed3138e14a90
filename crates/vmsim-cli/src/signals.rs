//! SIGINT, SIGTERM and SIGHUP: remove the temporary files this process made
//! (the `.vmsim-*.tmp` of an output being written, a recording's raw logs,
//! the built-in trace), then die of the signal as if it had not been caught,
//! so the parent shell sees the usual status (130 for Ctrl-C, 143 for
//! SIGTERM).
//!
//! The files are those on the list of [`vmsim_trace::output`]; a swap file
//! is not on it on Unix, because it is unlinked as soon as it is open. The
//! handler runs on a thread of its own (signal-hook's iterator), so it may
//! take locks and call anything; no `unsafe` is needed here.

/// Starts the handler thread. Without it (non-Unix, or the thread could not
/// start) a signal kills the process the default way.
pub fn install() {
    #[cfg(unix)]
    unix::install();
}

#[cfg(unix)]
mod unix {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;

    pub fn install() {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("vmsim-signals".to_owned())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    vmsim_trace::output::remove_registered();
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                    // The default action of these signals ends the process;
                    // should it not, end with the shell's status for it.
                    std::process::exit(128 + sig);
                }
            });
    }
}
