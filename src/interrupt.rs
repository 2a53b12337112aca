//! Ctrl-C and SIGTERM for the commands that must clean up after themselves (`scan --copy`,
//! `sweep`, `publish`): the handler sets a flag the library watches (it then deletes the
//! temporary copy, or stops taking new images); a second signal while the flag is set exits at
//! once with status 130, without cleanup. Other commands keep the default: the signal ends the
//! process.

use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Install SIGINT and SIGTERM handlers that set the returned flag; a second signal while the flag
/// is set exits at once with status [`Exit::Interrupted`](amiscan::model::Exit) (130, no cleanup).
pub fn install_interrupt_handler() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(
            sig,
            amiscan::model::Exit::Interrupted.code().into(),
            flag.clone(),
        )
        .and_then(|_| signal_hook::flag::register(sig, flag.clone()))
        .context("AWS runtime error: cannot install a signal handler")?;
    }
    Ok(flag)
}
