//! What the process does for the run: the interrupt handler that cancels it, and the limit
//! on open files that deep trees need.

/// The token every run of this process stops by; the signal handler cancels it.
static INTERRUPT: std::sync::OnceLock<flatten::Cancel> = std::sync::OnceLock::new();

pub(super) fn interrupt_token() -> flatten::Cancel {
    INTERRUPT.get_or_init(flatten::Cancel::new).clone()
}

/// The signal that stopped the run, for the exit code (128 + N, as shells report it).
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

pub(super) fn interrupt_signal() -> Option<i32> {
    match SIGNAL.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        n => Some(n),
    }
}

extern "C" fn on_interrupt(sig: libc::c_int) {
    // Set before the handler is installed; atomic loads and stores only.
    let _ = SIGNAL.compare_exchange(
        0,
        sig,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    );
    if let Some(token) = INTERRUPT.get() {
        token.cancel();
    }
}

/// Deep trees need a file handle per level while they are written: allow as many as we may.
/// (The library leaves process-wide limits to its caller.)
pub(super) fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// SIGINT and SIGTERM stop the run between entries so that the error says what state TARGET
/// is in, instead of dying mid-write.
pub(super) fn install_interrupt_handler() {
    interrupt_token();
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // Safety: the handler only loads and stores atomics.
        let _ = unsafe { sigaction(sig, &action) };
    }
}
