//! Client verbs die quietly on a closed stdout, as Unix tools do
//! (`wasmless function ls | head -1`), instead of panicking in `println!`.

/// Restores the default action of SIGPIPE, which the Rust runtime ignores
/// so that a write to a closed pipe fails. Only for verbs that print and
/// exit: a server (`up`, `host`, `operator`) keeps ignoring it, so that a
/// child process or client that goes away is an error it handles.
#[allow(unsafe_code)]
pub(super) fn die_on_closed_stdout() {
    // SAFETY: setting a signal's disposition to its default is
    // async-signal-safe, and nothing else in the process has installed a
    // handler for SIGPIPE that this would undo.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
