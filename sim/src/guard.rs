//! Runs core code so that a violated assertion becomes a reported failure, not a crash of the
//! simulator, and without the panic message cluttering a sweep's output.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    static LOCATION: Cell<Option<String>> = const { Cell::new(None) };
}

/// Installs (once per process) a panic hook that stays quiet inside [`guarded`] and behaves as
/// before everywhere else.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                LOCATION.with(|l| l.set(info.location().map(|at| at.to_string())));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it comes back as its message and location.
pub fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install_hook();
    GUARDED.with(|g| g.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        match LOCATION.with(|l| l.take()) {
            Some(at) => format!("{message} (at {at})"),
            None => message,
        }
    })
}
