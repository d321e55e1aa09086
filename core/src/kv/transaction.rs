//! Transactions (MULTI/EXEC) and WATCH's record of recent changes.
//!
//! A transaction is one log entry: its commands run one after another in a single step of the
//! state machine, so no other client's command falls between them, on any replica. WATCH is
//! optimistic: it reads the slot the state was at (`Command::Watch`), and EXEC carries that slot
//! for each watched key; the transaction applies only if no watched key changed in a later slot.
//!
//! What a change costs: the state machine keeps the slot of the last change of the
//! [`CHANGED_KEYS_KEPT_MAX`] most recently changed keys (a bounded window, evicted oldest
//! first), and per database the slot of its last FLUSHDB, FLUSHALL or SWAPDB. A key never
//! watched costs one ordered-map update per write while it is in the window and nothing after;
//! memory is bounded whatever the number of keys. A watch older than the window's oldest
//! remembered change cannot be judged and counts as changed: the client sees a nil EXEC and
//! retries, as after any conflict.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::StateMachine;
use crate::command::{Command, Db, Reply, Watched, DATABASES};
use crate::mutant::{self, Mutant};
use crate::types::Slot;

/// Most keys whose last change the window remembers.
pub const CHANGED_KEYS_KEPT_MAX: usize = 65_536;

/// The slots of recent changes, as WATCH needs them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Changes {
    /// The slot of each remembered key's last change.
    #[serde(skip)]
    last: BTreeMap<(Db, Vec<u8>), Slot>,
    /// The same entries by slot, oldest first: the eviction order (encoded; `last` is rebuilt).
    by_slot: BTreeSet<(Slot, Db, Vec<u8>)>,
    /// A change in this slot or earlier may have been forgotten.
    forgotten_through: Slot,
    /// Per database, the last slot that flushed it or swapped it with another.
    reset_slot: Vec<Slot>,
}

impl Changes {
    /// A window that remembers nothing up to `slot`: every watch of an earlier slot counts as
    /// changed (a state decoded from an encoding without the window).
    pub(crate) fn forgotten_through(slot: Slot) -> Self {
        Changes {
            last: BTreeMap::new(),
            by_slot: BTreeSet::new(),
            forgotten_through: slot,
            reset_slot: vec![0; usize::from(DATABASES)],
        }
    }

    /// Rebuilds the by-key index after decoding, and checks the encoded window.
    pub(crate) fn rebuilt(mut self) -> Result<Self, String> {
        if self.reset_slot.len() != usize::from(DATABASES)
            || self.by_slot.len() > CHANGED_KEYS_KEPT_MAX
        {
            return Err("malformed record of recent changes".into());
        }
        self.last = self
            .by_slot
            .iter()
            .map(|(slot, db, key)| ((*db, key.clone()), *slot))
            .collect();
        if self.last.len() != self.by_slot.len() {
            return Err("a key twice in the record of recent changes".into());
        }
        Ok(self)
    }

    fn record(&mut self, slot: Slot, db: Db, key: Vec<u8>) {
        if let Some(old) = self.last.insert((db, key.clone()), slot) {
            assert!(old <= slot, "a change at slot {slot} after one at {old}");
            let indexed = self.by_slot.remove(&(old, db, key.clone()));
            assert!(indexed, "a remembered change is in the slot order");
        }
        self.by_slot.insert((slot, db, key));
        while self.by_slot.len() > CHANGED_KEYS_KEPT_MAX {
            let (old, db, key) = self.by_slot.pop_first().expect("over the limit: not empty");
            self.last.remove(&(db, key)).expect("indexed by key");
            self.forgotten_through = self.forgotten_through.max(old);
        }
        assert!(
            self.by_slot.len() <= CHANGED_KEYS_KEPT_MAX && self.last.len() == self.by_slot.len(),
            "the window of recent changes is bounded and indexed both ways"
        );
    }

    fn reset(&mut self, slot: Slot, db: Db) {
        let old = self.reset_slot[usize::from(db)];
        assert!(
            old <= slot,
            "database {db} reset at slot {slot} after {old}"
        );
        self.reset_slot[usize::from(db)] = slot;
    }

    /// Whether `watched` changed after its slot; `present` says whether the key exists now.
    fn changed(&self, watched: &Watched, present: bool) -> bool {
        let after = |slot: Slot| slot > watched.slot;
        let last = self.last.get(&(watched.db, watched.key.clone()));
        last.is_some_and(|&slot| after(slot))
            || watched.slot < self.forgotten_through
            || (after(self.reset_slot[usize::from(watched.db)]) && (watched.existed || present))
    }

    pub(crate) fn assert_invariants(&self) {
        assert_eq!(
            self.last.len(),
            self.by_slot.len(),
            "window indexes differ in size"
        );
        assert!(self.by_slot.len() <= CHANGED_KEYS_KEPT_MAX);
        for (slot, db, key) in &self.by_slot {
            assert_eq!(
                self.last.get(&(*db, key.clone())),
                Some(slot),
                "window indexes differ"
            );
        }
        assert_eq!(self.reset_slot.len(), usize::from(DATABASES));
    }
}

impl StateMachine {
    /// Notes the keys the write just applied changed, and the databases it reset (none if it
    /// was refused: `reply` is an error).
    pub(super) fn record_changes(&mut self, command: &Command, reply: &Reply) {
        let slot = self.applied_slot;
        let touched = self.data.take_touched();
        self.propagate_write(command, reply, &touched);
        for (db, key) in touched {
            self.changes.record(slot, db, key);
        }
        if matches!(reply, Reply::Error(_)) {
            return;
        }
        match command.db_and_command() {
            (_, Command::FlushAll) => (0..DATABASES).for_each(|db| self.changes.reset(slot, db)),
            (_, Command::SwapDb { a, b }) => {
                self.changes.reset(slot, *a);
                self.changes.reset(slot, *b);
            }
            (db, Command::FlushDb) => self.changes.reset(slot, db),
            _ => {}
        }
    }

    /// `Watch`: the slot the state is at and each key's value at `now_ms`.
    pub(super) fn watch(&self, db: Db, keys: &[Vec<u8>], now_ms: i64) -> Reply {
        assert!(db < DATABASES, "validation refuses database {db}");
        let store = self.data.db(db);
        Reply::Watched {
            slot: self.applied_slot,
            values: keys
                .iter()
                .map(|key| watched_value(store, key, now_ms))
                .collect(),
        }
    }

    /// EXEC: every command in order in this one step, or none if a watched key changed.
    pub(super) fn apply_transaction(&mut self, commands: &[Command], watched: &[Watched]) -> Reply {
        // A key that existed at WATCH and expired since changed (Redis 7.0); one already
        // expired then did not.
        let changed = watched.iter().any(|w| {
            let present = self.data.db(w.db).is_live(&w.key, self.now_ms);
            self.changes.changed(w, present) || (w.existed && !present)
        });
        if changed {
            return Reply::Transaction(None);
        }
        if mutant::is(self.mutant, Mutant::TransactionSplit) && commands.len() > 1 {
            // Wrong on purpose: the replies are those of one step, but only the first command
            // applies now; the rest waits for the next entry, as if it were one of its own.
            let replies = self.replies_in_one_step(commands);
            self.apply_in_transaction(&commands[0]);
            self.deferred.push(commands[1..].to_vec());
            return Reply::Transaction(Some(replies));
        }
        let replies: Vec<Reply> = commands
            .iter()
            .map(|c| self.apply_in_transaction(c))
            .collect();
        assert_eq!(
            replies.len(),
            commands.len(),
            "one reply per queued command"
        );
        Reply::Transaction(Some(replies))
    }

    /// One command of a transaction: a read answered from the state as it is now, or a write.
    pub(super) fn apply_in_transaction(&mut self, command: &Command) -> Reply {
        assert!(
            !matches!(
                command.db_and_command().1,
                Command::Transaction { .. } | Command::OpenSession | Command::Member(_)
            ),
            "validation refuses a transaction holding {command:?}"
        );
        if !command.is_write() {
            return self.read(command);
        }
        let reply = self.apply_write(command);
        self.record_changes(command, &reply);
        reply
    }
}

impl StateMachine {
    /// Under [`Mutant::TransactionSplit`]: runs the transaction commands an earlier entry left.
    pub(super) fn apply_deferred(&mut self) {
        for commands in std::mem::take(&mut self.deferred) {
            for command in &commands {
                self.apply_in_transaction(command);
            }
        }
        self.propagate_end_request();
    }

    /// Under [`Mutant::TransactionSplit`]: the replies `commands` give applied in one step,
    /// worked out on a copy of the state.
    fn replies_in_one_step(&self, commands: &[Command]) -> Vec<Reply> {
        let mut scratch = self.clone();
        scratch.mutant = None;
        commands
            .iter()
            .map(|c| scratch.apply_in_transaction(c))
            .collect()
    }
}

/// What WATCH records of `key` at `now_ms`: its string, an empty one for a hash or a set
/// (only whether it exists matters), `None` if absent.
fn watched_value(store: &super::store::Store, key: &[u8], now_ms: i64) -> Option<Vec<u8>> {
    match store.live(key, now_ms) {
        Some(value) => Some(value.clone()),
        None => store.is_live(key, now_ms).then(Vec::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ClientRequest;
    use crate::kv::StateMachineConfig;

    /// One client writing one request per slot, in database 0 unless told.
    struct Harness {
        machine: StateMachine,
        slot: Slot,
        seq: u64,
    }

    fn set(key: &str, value: &str) -> Command {
        Command::Set {
            key: key.into(),
            value: value.into(),
        }
    }

    fn get(key: &str) -> Command {
        Command::Get { key: key.into() }
    }

    impl Harness {
        fn new() -> Self {
            Harness {
                machine: StateMachine::new(StateMachineConfig::default()),
                slot: 0,
                seq: 0,
            }
        }

        fn write(&mut self, command: Command) -> Reply {
            self.slot += 1;
            self.seq += 1;
            let request = ClientRequest {
                client_id: 7,
                seq: self.seq,
                command,
            };
            let mut responses = self.machine.apply_batch(self.slot, &[request]);
            self.machine.assert_invariants();
            match responses.remove(0).outcome {
                crate::command::Outcome::Done(reply) => reply,
                other => panic!("{other:?}"),
            }
        }

        /// WATCH of `key` in `db`, as the node records it.
        fn watch(&self, db: Db, key: &str) -> Watched {
            let command = Command::Watch {
                keys: vec![key.into()],
            };
            match self.machine.read(&command.in_db(db)) {
                Reply::Watched { slot, values } => Watched {
                    db,
                    key: key.into(),
                    slot,
                    existed: values[0].is_some(),
                },
                other => panic!("{other:?}"),
            }
        }

        fn exec(&mut self, commands: Vec<Command>, watched: Vec<Watched>) -> Reply {
            self.write(Command::Transaction { commands, watched })
        }
    }

    fn applied(replies: Vec<Reply>) -> Reply {
        Reply::Transaction(Some(replies))
    }

    #[test]
    fn transaction_applies_every_command_in_order_and_reads_see_earlier_ones() {
        let mut h = Harness::new();
        let reply = h.exec(
            vec![
                set("a", "1"),
                get("a"),
                Command::Add {
                    key: "a".into(),
                    delta: 2,
                },
                Command::Add {
                    key: "s".into(),
                    delta: 1,
                }
                .in_db(3),
                get("b"),
            ],
            vec![],
        );
        let expected = vec![
            Reply::Ok,
            Reply::Value(Some("1".into())),
            Reply::Int(3),
            Reply::Int(1),
            Reply::Value(None),
        ];
        assert_eq!(reply, applied(expected));
        assert_eq!(h.machine.db_len(3), 1);
    }

    #[test]
    fn a_commands_error_does_not_stop_the_others() {
        let mut h = Harness::new();
        h.write(set("s", "text"));
        let incr = |key: &str| Command::Add {
            key: key.into(),
            delta: 1,
        };
        let reply = h.exec(vec![incr("s"), incr("n")], vec![]);
        let expected = vec![
            Reply::Error(crate::CommandError::NotAnInteger),
            Reply::Int(1),
        ];
        assert_eq!(reply, applied(expected));
    }

    #[test]
    fn exec_is_nil_and_changes_nothing_when_a_watched_key_changed_after_watch() {
        let mut h = Harness::new();
        h.write(set("x", "30"));
        let watched = h.watch(0, "x");
        h.write(set("x", "40"));
        assert_eq!(
            h.exec(vec![set("y", "1")], vec![watched]),
            Reply::Transaction(None)
        );
        assert_eq!(h.machine.len(), 1, "y was not set");
    }

    #[test]
    fn exec_applies_when_only_other_keys_changed() {
        let mut h = Harness::new();
        h.write(set("x", "30"));
        let watched = vec![h.watch(0, "x"), h.watch(0, "absent"), h.watch(1, "x")];
        h.write(set("other", "1"));
        h.write(set("x", "2").in_db(2));
        let reply = h.exec(vec![get("x")], watched);
        assert_eq!(reply, applied(vec![Reply::Value(Some("30".into()))]));
    }

    #[test]
    fn a_key_deleted_or_set_and_deleted_after_watch_counts_as_changed() {
        let mut h = Harness::new();
        h.write(set("x", "1"));
        let existed = h.watch(0, "x");
        let absent = h.watch(0, "y");
        h.write(Command::Delete { key: "x".into() });
        h.write(set("y", "1"));
        h.write(Command::Delete { key: "y".into() });
        assert_eq!(h.exec(vec![], vec![existed]), Reply::Transaction(None));
        assert_eq!(h.exec(vec![], vec![absent]), Reply::Transaction(None));
    }

    #[test]
    fn flushdb_touches_watched_keys_that_existed_and_no_others() {
        let mut h = Harness::new();
        h.write(set("x", "1").in_db(1));
        let existed = h.watch(1, "x");
        let absent = h.watch(1, "y");
        let other_db = h.watch(0, "x");
        h.write(Command::FlushDb.in_db(1));
        assert_eq!(h.exec(vec![], vec![existed]), Reply::Transaction(None));
        assert_eq!(h.exec(vec![], vec![absent, other_db]), applied(vec![]));
    }

    #[test]
    fn swapdb_touches_a_watched_key_that_exists_on_either_side() {
        let mut h = Harness::new();
        h.write(set("x", "1").in_db(2));
        let arrives = h.watch(1, "x");
        let nowhere = h.watch(1, "z");
        h.write(Command::SwapDb { a: 1, b: 2 });
        assert_eq!(h.exec(vec![], vec![arrives]), Reply::Transaction(None));
        assert_eq!(h.exec(vec![], vec![nowhere]), applied(vec![]));
        let leaves = h.watch(1, "x");
        h.write(Command::FlushAll);
        assert_eq!(h.exec(vec![], vec![leaves]), Reply::Transaction(None));
    }

    #[test]
    fn a_watch_older_than_the_window_counts_as_changed() {
        let mut h = Harness::new();
        let watched = h.watch(0, "x");
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..=CHANGED_KEYS_KEPT_MAX)
            .map(|i| (format!("k{i}").into_bytes(), b"v".to_vec()))
            .collect();
        h.write(Command::MultiSet { pairs });
        assert_eq!(h.exec(vec![], vec![watched]), Reply::Transaction(None));
        let fresh = h.watch(0, "x");
        assert_eq!(h.exec(vec![], vec![fresh]), applied(vec![]));
    }

    #[test]
    fn nested_session_or_membership_commands_are_refused_whole() {
        let mut h = Harness::new();
        for inner in [
            Command::OpenSession,
            Command::Watch { keys: vec![] },
            Command::Transaction {
                commands: vec![],
                watched: vec![],
            },
        ] {
            let command = Command::Transaction {
                commands: vec![set("a", "1"), inner],
                watched: vec![],
            };
            assert_eq!(
                command.validate(),
                Err(crate::CommandError::NotInTransaction)
            );
            assert_eq!(
                h.write(command),
                Reply::Error(crate::CommandError::NotInTransaction)
            );
        }
        assert!(h.machine.is_empty());
    }

    #[test]
    fn the_record_of_recent_changes_travels_in_the_encoding() {
        let mut h = Harness::new();
        h.write(set("x", "1"));
        let watched = h.watch(0, "x");
        h.write(set("x", "2"));
        let body = h.machine.encode();
        h.machine.verify_encoding(&body).expect("verifies");
        let restored = StateMachine::decode(&body).expect("decodes");
        restored.assert_invariants();
        assert_eq!(restored, h.machine);
        h.machine = restored;
        assert_eq!(h.exec(vec![], vec![watched]), Reply::Transaction(None));
    }
}
