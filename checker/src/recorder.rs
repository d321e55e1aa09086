//! Recording a history of the store's commands as clients see them.

use crate::formats::jsonl;
use crate::history::{End, Recorded};
use crate::models::keyspace::History;
use keyspace_core::{Command, Reply};
use std::io;

/// Names one recorded operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub(crate) u32);

impl OpId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Records invocations and their outcomes; cheap enough to call on every client operation.
///
/// ```
/// use keyspace_checker::{check_kv, CheckOptions, Recorder};
/// use keyspace_core::{Command, Reply};
///
/// let mut rec = Recorder::new();
/// let set = rec.invoke(1, 10, Command::Set { key: b"k".to_vec(), value: b"v".to_vec() });
/// let get = rec.invoke(2, 15, Command::Get { key: b"k".to_vec() });
/// rec.ok(set, 20, Reply::Ok);
/// rec.ok(get, 25, Reply::Value(Some(b"v".to_vec())));
/// assert!(check_kv(&rec.history(), &CheckOptions::default()).is_linearizable());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    ops: Vec<Recorded>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder::default()
    }

    pub fn with_capacity(ops: usize) -> Self {
        Recorder {
            ops: Vec::with_capacity(ops),
        }
    }

    /// Records that `client` invoked `command` at `time_ns`; its outcome is unknown until
    /// [`Recorder::ok`] or [`Recorder::fail`] says otherwise.
    pub fn invoke(&mut self, client: u64, time_ns: u64, command: Command) -> OpId {
        let id = u32::try_from(self.ops.len()).expect("fewer than 2^32 operations");
        self.ops.push(Recorded {
            client,
            invoke_ns: time_ns,
            command,
            end: End::Unknown,
        });
        OpId(id)
    }

    /// Records that `op` completed at `time_ns` with `reply`.
    pub fn ok(&mut self, op: OpId, time_ns: u64, reply: Reply) {
        self.end(
            op,
            End::Ok {
                at_ns: time_ns,
                reply,
            },
            time_ns,
        );
    }

    /// Records that `op` certainly did not take effect; it is left out of the history.
    pub fn fail(&mut self, op: OpId, time_ns: u64) {
        self.end(op, End::Fail { at_ns: time_ns }, time_ns);
    }

    /// Records that `op`'s outcome will never be known (the same as never completing it).
    pub fn unknown(&mut self, op: OpId) {
        let recorded = &mut self.ops[op.index()];
        assert!(
            recorded.end == End::Unknown,
            "op {} already completed",
            op.index()
        );
    }

    fn end(&mut self, op: OpId, end: End, time_ns: u64) {
        let recorded = &mut self.ops[op.index()];
        assert!(
            recorded.end == End::Unknown,
            "op {} completed twice",
            op.index()
        );
        assert!(
            time_ns >= recorded.invoke_ns,
            "op {} completed before its invoke",
            op.index()
        );
        recorded.end = end;
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every recorded operation, failed ones included, in invoke-call order.
    pub fn recorded(&self) -> &[Recorded] {
        &self.ops
    }

    /// Writes the recording in the JSON-lines history format (see the crate README).
    pub fn write_jsonl(&self, out: &mut impl io::Write) -> io::Result<()> {
        jsonl::write(&self.ops, out)
    }

    /// The history to check: failed operations left out.
    pub fn history(&self) -> History {
        History::from_recorded(self.ops.iter().cloned())
    }

    pub fn into_history(self) -> History {
        History::from_recorded(self.ops.into_iter())
    }

    pub fn from_recorded(ops: Vec<Recorded>) -> Self {
        Recorder { ops }
    }
}
