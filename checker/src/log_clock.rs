//! How the store's time relates to a history's clock, for the timed model and the options of a
//! check.

use crate::history::{Operation, Outcome};

/// How the store's time relates to a history's clock: at history time `t_ns` every replica's
/// wall clock reads within `error_max_ms` of `epoch_ms + floor(t_ns / 1e6)` (Unix ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogClock {
    /// The store time (Unix ms) at history time 0.
    pub epoch_ms: i64,
    /// The drift bound `E`: how far any replica's wall clock may be from true time.
    pub error_max_ms: i64,
}

/// Far enough in the future for any deadline, with room to add a TTL.
pub const FOREVER_MS: i64 = i64::MAX / 4;

impl LogClock {
    /// The store times at which `op` may have taken effect.
    pub fn window<I, O>(&self, op: &Operation<I, O>) -> Window {
        let at_ms = |ns: u64| self.epoch_ms.saturating_add((ns / 1_000_000) as i64);
        let earliest_ms = at_ms(op.invoke_ns).saturating_sub(self.error_max_ms);
        let latest_ms = match op.outcome {
            Outcome::Returned { at_ns, .. } => at_ms(at_ns).saturating_add(self.error_max_ms),
            Outcome::Unknown => FOREVER_MS,
        };
        assert!(
            earliest_ms <= latest_ms,
            "an operation returns after its invoke"
        );
        Window {
            earliest_ms,
            latest_ms,
        }
    }
}

/// The store times (ms) an operation may have taken effect at, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub earliest_ms: i64,
    pub latest_ms: i64,
}
