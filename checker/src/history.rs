//! The history model shared by every checker: operations with an invoke time and, when the
//! caller saw one, a return time and an output. Also the store's operations as recorded
//! ([`Recorded`]), failed ones included, which the recorder keeps and the JSON-lines format
//! reads and writes.

use keyspace_core::{Command, Reply};

/// One operation of a history.
///
/// An operation whose outcome is [`Outcome::Unknown`] may have taken effect at any instant after
/// its invoke, or never. Operations that certainly did not take effect are not part of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client (process) that issued the operation.
    pub client: u64,
    /// When the client invoked it, in nanoseconds on one clock shared by the whole history (for
    /// logs without clock readings, the position of the line in the file).
    pub invoke_ns: u64,
    pub input: I,
    pub outcome: Outcome<O>,
}

/// What the client learned about an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<O> {
    /// The operation completed at `at_ns` with `output`.
    Returned { at_ns: u64, output: O },
    /// The client never learned the outcome (a timeout, a lost connection, a crash).
    Unknown,
}

impl<I, O> Operation<I, O> {
    /// The output, if the operation returned.
    pub fn output(&self) -> Option<&O> {
        match &self.outcome {
            Outcome::Returned { output, .. } => Some(output),
            Outcome::Unknown => None,
        }
    }

    /// The return time, if the operation returned.
    pub fn return_ns(&self) -> Option<u64> {
        match &self.outcome {
            Outcome::Returned { at_ns, .. } => Some(*at_ns),
            Outcome::Unknown => None,
        }
    }
}

/// An operation as recorded, including ones that certainly did not take effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub client: u64,
    pub invoke_ns: u64,
    pub command: Command,
    pub end: End,
}

/// How a recorded operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Completed with this reply.
    Ok { at_ns: u64, reply: Reply },
    /// Certainly not applied; left out of the history.
    Fail { at_ns: u64 },
    /// Outcome unknown: it may have taken effect at any time after its invoke, or never.
    Unknown,
}
