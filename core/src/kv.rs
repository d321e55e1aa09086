//! The replicated key-value state machine, with exactly-once client sessions.
//!
//! Every replica applies the same chosen log entries in slot order through [`StateMachine`]; what
//! it promises:
//!
//! - Determinism: the state after applying a log prefix depends only on that prefix. There is no
//!   clock, no randomness and no unordered iteration; sessions expire by log position.
//! - Exactly once: a write retried with the same `(client_id, seq)` (after a timeout or a master
//!   change) is applied at most once and answered with its original reply, provided the client
//!   keeps at most [`SESSION_REPLIES_MAX`] requests in flight and its session has not expired.
//!   A request whose fate the table no longer knows is answered `StaleRequest` and not applied.
//! - Boundedness: at most `sessions_max` sessions (plus the new clients of the batch being
//!   applied), each keeping at most [`SESSION_REPLIES_MAX`] replies.
//! - Comparability: [`StateMachine::state_hash`] covers the data, the sessions and the applied
//!   slot, is the same on every platform, and costs O(1) to read.

mod collections;
mod databases;
mod deadlines;
mod expiry;
pub mod glob;
pub(crate) mod hash;
mod list_items;
mod lists;
mod objects;
mod propagate;
mod scripts;
mod session;
mod sorted;

mod sort;
mod store;
mod strings;
mod transaction;
mod zsets;

#[cfg(test)]
mod collections_tests;
#[cfg(test)]
mod expiry_tests;
#[cfg(test)]
mod function_restore_tests;
#[cfg(test)]
mod lists_tests;
#[cfg(test)]
mod propagate_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod scripts_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod strings_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod zsets_tests;

use serde::{Deserialize, Serialize};

use crate::command::{
    ClientRequest, ClientResponse, Command, CommandError, Db, Outcome, Reply, DATABASES,
    KEYS_VISIT_MAX, SCAN_COUNT_MAX, VALUE_MAX_BYTES,
};
use crate::mutant::{self, Mutant};
use crate::types::Slot;
use databases::Databases;
use hash::{Hash64, TAG_STATE};
pub use propagate::{Effect, Propagated, PROPAGATED_EFFECTS_MAX};
use session::{Admission, SessionTable};
use store::{list_count_clamped, Store};
use transaction::Changes;
pub use transaction::CHANGED_KEYS_KEPT_MAX;

pub use crate::command::SESSION_REPLIES_MAX;
pub use session::{Session, SESSION_EXPIRIES_PER_SLOT_MAX};
/// Most requests one log entry may hold (opened session ids number them in 20 bits).
pub const ENTRY_REQUESTS_MAX: usize = 1 << session::OPENED_INDEX_BITS;
pub use crate::integer::parse_integer;
pub use deadlines::UnixMs;
pub use objects::{
    ValueKind, HASH_LISTPACK_ENTRIES_MAX, HASH_LISTPACK_VALUE_MAX_BYTES, SET_INTSET_ENTRIES_MAX,
};
/// Most expired keys one log entry reclaims (before its commands apply): the work expiry adds
/// to one entry is bounded, and the master proposes entries while keys are due.
pub const EXPIRED_REAPED_PER_ENTRY_MAX: usize = 200;

/// Limits of the session table. Every replica must use the same values: they decide which
/// sessions are forgotten, which is part of the replicated state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachineConfig {
    /// Most sessions kept; past it, the least recently used (by log slot) is evicted.
    pub sessions_max: usize,
    /// A session with no request for more than this many slots expires.
    pub session_idle_slots_max: u64,
}

impl Default for StateMachineConfig {
    fn default() -> Self {
        StateMachineConfig {
            sessions_max: 10_000,
            session_idle_slots_max: 1_000_000,
        }
    }
}

/// The key-value data of every database, the session table, and the last applied slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMachine {
    config: StateMachineConfig,
    data: Databases,
    sessions: SessionTable,
    /// Last slot applied; 0 before any.
    applied_slot: Slot,
    /// A deliberately wrong rule to run (see [`Mutant`]); not part of the state.
    mutant: Option<Mutant>,
    /// The slots of recent changes, for WATCH.
    changes: Changes,
    /// Under [`Mutant::TransactionSplit`] only: transaction commands left for the next entry.
    deferred: Vec<Vec<Command>>,
    /// The time of the latest timed entry applied (the highest stamp: it never goes back);
    /// commands judge expiry at it.
    now_ms: UnixMs,
    /// The script cache and function libraries (EVAL, SCRIPT, FUNCTION).
    scripts: scripts::ScriptRegistry,
    /// What applied writes propagate to a replication stream, while the node asks for it
    /// (see `propagate`); not part of the state.
    propagation: Option<propagate::Propagation>,
}

impl StateMachine {
    pub fn new(config: StateMachineConfig) -> Self {
        assert!(config.sessions_max >= 1, "sessions_max must be at least 1");
        assert!(
            config.session_idle_slots_max >= 1,
            "session_idle_slots_max must be at least 1"
        );
        StateMachine {
            config,
            data: Databases::default(),
            sessions: SessionTable::default(),
            applied_slot: 0,
            mutant: None,
            changes: Changes::forgotten_through(0),
            deferred: Vec::new(),
            now_ms: 0,
            scripts: scripts::ScriptRegistry::default(),
            propagation: None,
        }
    }

    /// Runs `mutant`'s wrong rule from now on (the replica sets its own after every restore).
    pub fn set_mutant(&mut self, mutant: Option<Mutant>) {
        self.mutant = mutant;
    }

    /// Applies one chosen log entry's batch of client write requests, in order, at `slot` (which
    /// must be above every slot applied before). Returns one response per request, in order;
    /// a duplicate gets its original reply and changes nothing.
    ///
    /// Panics if a request holds a read: the replica never logs reads.
    pub fn apply_batch(&mut self, slot: Slot, requests: &[ClientRequest]) -> Vec<ClientResponse> {
        assert!(
            requests.len() <= ENTRY_REQUESTS_MAX,
            "{} requests in the entry at slot {slot}",
            requests.len()
        );
        for request in requests {
            assert!(
                request.command.is_write(),
                "read command in the log at slot {slot}: {:?}",
                request.command
            );
            assert!(
                !matches!(request.command, Command::Member(_)),
                "a membership change batched at slot {slot}"
            );
        }
        self.begin_slot(slot);
        requests
            .iter()
            .enumerate()
            .map(|(index, request)| ClientResponse {
                client_id: request.client_id,
                seq: request.seq,
                outcome: Outcome::Done(self.apply_request(slot, index, request)),
            })
            .collect()
    }

    /// Applies a log entry the master stamped with its time `stamp_ms`: the state's time moves
    /// to it (never back: a stamp below an earlier one counts as the earlier), up to
    /// [`EXPIRED_REAPED_PER_ENTRY_MAX`] keys expired at that time are reclaimed, then the batch
    /// applies as [`StateMachine::apply_batch`] does, every command judging expiry at that time.
    pub fn apply_timed_batch(
        &mut self,
        slot: Slot,
        stamp_ms: u64,
        requests: &[ClientRequest],
    ) -> Vec<ClientResponse> {
        let stamp_ms = UnixMs::try_from(stamp_ms).unwrap_or(UnixMs::MAX);
        let before_ms = self.now_ms;
        self.now_ms = self.now_ms.max(stamp_ms);
        assert!(self.now_ms >= before_ms, "the state's time never goes back");
        self.reap_due();
        self.apply_batch(slot, requests)
    }

    /// The time commands are judged at: that of the latest timed entry applied.
    pub fn now_ms(&self) -> UnixMs {
        self.now_ms
    }

    /// The earliest deadline of any key, if one has one: the master proposes an entry once its
    /// clock passes it, so expired keys are reclaimed.
    pub fn next_deadline_ms(&self) -> Option<UnixMs> {
        self.data.first_deadline_ms()
    }

    /// Keys with a deadline in database `db` (INFO's `expires=`).
    pub fn db_expires(&self, db: Db) -> usize {
        self.data.db(db).deadlines.len()
    }

    /// Records that `slot` held no client commands (a no-op entry): log positions still advance
    /// session expiry.
    pub fn apply_noop(&mut self, slot: Slot) {
        self.begin_slot(slot);
    }

    /// Serves a read command from the current state, judging expiry at the state's time.
    /// Panics on a write.
    pub fn read(&self, command: &Command) -> Reply {
        self.read_at(command, self.now_ms)
    }

    /// Serves a read command judging expiry at `now_ms`, or at the state's time if that is
    /// later (a read never sees a key an applied command already judged expired). Panics on a
    /// write.
    pub fn read_at(&self, command: &Command, now_ms: UnixMs) -> Reply {
        assert!(!command.is_write(), "read() given a write: {command:?}");
        let now_ms = now_ms.max(self.now_ms);
        if let Err(error) = command.validate() {
            return Reply::Error(error);
        }
        let (db, command) = command.db_and_command();
        let store = self.data.db(db);
        let wrong_type = (command.string_keys().into_iter()).any(|key| {
            store
                .live_kind(key, now_ms)
                .is_some_and(|k| k != ValueKind::String)
        });
        if wrong_type {
            return Reply::Error(CommandError::WrongType);
        }
        if let Some(reply) = collections::read(store, command, now_ms) {
            return reply;
        }
        if let Some(reply) = zsets::read(store, command, now_ms) {
            return reply;
        }
        if let Some(reply) = lists::read(store, command, now_ms) {
            return reply;
        }
        if let Some(reply) = sort::read(store, command, now_ms) {
            return reply;
        }
        match command {
            Command::Get { key } | Command::DirtyGet { key } => {
                Reply::Value(store.live(key, now_ms).cloned())
            }
            Command::MultiGet { keys } => Reply::Values(
                keys.iter()
                    .map(|k| store.live(k, now_ms).cloned())
                    .collect(),
            ),
            Command::TimeToLive { key, unit } => expiry::time_to_live(store, key, *unit, now_ms),
            Command::ListKeys {
                prefix,
                start,
                count,
            } => Reply::Keys(
                (list(store, prefix, start, *count, now_ms))
                    .map(|(key, _)| key.clone())
                    .collect(),
            ),
            Command::ListKeyValues {
                prefix,
                start,
                count,
            } => Reply::KeyValues(
                (list(store, prefix, start, *count, now_ms))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect(),
            ),
            Command::Count { prefix } => Reply::Int(int_from_count(store.count(prefix))),
            Command::Keys { pattern } => keys_matching(store, pattern, now_ms),
            Command::Scan {
                cursor,
                pattern,
                count,
                type_name,
            } => scan(
                store,
                *cursor,
                (pattern.as_deref(), type_name.as_deref()),
                *count,
                now_ms,
            ),
            Command::RandomKey { seed } => {
                Reply::Value(store.key_at_or_after(*seed, now_ms).cloned())
            }
            Command::Watch { keys } => self.watch(db, keys, now_ms),
            _ => unreachable!("checked above: {command:?} is a read"),
        }
    }

    pub fn applied_slot(&self) -> Slot {
        self.applied_slot
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.len() == 0
    }

    pub fn config(&self) -> &StateMachineConfig {
        &self.config
    }

    /// Number of client sessions kept.
    pub fn sessions_len(&self) -> usize {
        self.sessions.len()
    }

    pub fn session(&self, client_id: crate::command::ClientId) -> Option<&Session> {
        self.sessions.get(client_id)
    }

    /// Number of keys in database `db`.
    pub fn db_len(&self, db: Db) -> usize {
        self.data.db(db).len()
    }

    /// A hash of the whole replicated state (data, sessions, applied slot): equal on replicas
    /// that applied the same log prefix, the same on every platform and build, O(1) to read.
    pub fn state_hash(&self) -> u64 {
        let keys = u64::try_from(self.data.len()).expect("key count fits in u64");
        Hash64::new(TAG_STATE)
            .word(self.applied_slot)
            .word(keys)
            .word(self.data.entries_hash())
            .word(self.sessions.sessions_hash())
            .word(hash::clock_hash(self.now_ms, self.data.deadlines_hash()))
            .finish()
    }

    /// The state's encoding: what a snapshot image holds.
    pub fn encode(&self) -> Vec<u8> {
        databases::encode(
            &self.config,
            &self.data,
            &self.sessions,
            self.applied_slot,
            &self.changes,
            self.now_ms,
            &self.scripts,
        )
    }

    /// Decodes a state [`StateMachine::encode`] wrote, or one encoded before there were
    /// databases (its keys go to database 0). Runs no mutant.
    pub fn decode(body: &[u8]) -> Result<StateMachine, String> {
        Self::decode_prefix(body).map(|(state, _)| state)
    }

    /// Like [`StateMachine::decode`] for a state at the start of `body`, with the bytes after
    /// it (a snapshot image carries the configuration there).
    pub fn decode_prefix(body: &[u8]) -> Result<(StateMachine, &[u8]), String> {
        let (parts, after) = databases::decode(body)?;
        let state = StateMachine {
            config: parts.config,
            data: parts.data,
            sessions: parts.sessions,
            applied_slot: parts.applied_slot,
            mutant: None,
            changes: parts.changes,
            deferred: Vec::new(),
            now_ms: parts.now_ms,
            scripts: parts.scripts,
            propagation: None,
        };
        Ok((state, after))
    }

    /// Checks that `body` encodes exactly this state without decoding a second copy of it: the
    /// key-value pairs are read as borrowed slices, counted and hashed afresh; the config, the
    /// session table and the slot are decoded and compared. O(body) time, no per-key memory, so
    /// a snapshot of millions of keys is checked before it is written at a fraction of the cost
    /// of restoring it.
    pub fn verify_encoding(&self, body: &[u8]) -> Result<(), String> {
        let (digest, scripts) = databases::decode_digest(body)?;
        let stores = &digest.stores;
        let stored_hashes_match = stores
            .iter()
            .all(|s| s.pairs.entries_hash == s.entries_hash);
        let keys: u64 = stores.iter().map(|s| s.pairs.len + s.objects.len).sum();
        let checks = [
            (digest.config == self.config, "config differs"),
            (
                digest.applied_slot == self.applied_slot,
                "applied slot differs",
            ),
            (keys == self.data.len() as u64, "key count differs"),
            (stored_hashes_match, "pairs differ from their stored hash"),
            (
                databases::digest_entries_hash(stores) == self.data.entries_hash(),
                "pairs differ from the state's",
            ),
            (digest.sessions == self.sessions, "session table differs"),
            (
                digest.changes == self.changes,
                "record of recent changes differs",
            ),
            (digest.now_ms == self.now_ms, "time differs"),
            (
                digest.deadlines_hash == self.data.deadlines_hash(),
                "deadlines differ",
            ),
            (scripts == self.scripts, "scripts differ"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err((*what).to_string()),
            None => Ok(()),
        }
    }

    /// Checks the running hashes and indexes against the state they summarize; O(state size).
    /// Meant for tests and for a state just read back from a snapshot (which
    /// `SnapshotImage::restore` runs it on); applying checks the O(1) parts as it goes.
    pub fn assert_invariants(&self) {
        assert_eq!(
            self.data.entries_hash(),
            self.data.recompute_entries_hash(),
            "data hash drifted"
        );
        self.data.assert_invariants();
        self.sessions.assert_invariants();
        self.changes.assert_invariants();
        self.scripts.assert_invariants();
        assert!(self.config.sessions_max >= 1 && self.config.session_idle_slots_max >= 1);
    }
    fn begin_slot(&mut self, slot: Slot) {
        assert!(
            slot > self.applied_slot,
            "slot {slot} applied after slot {}",
            self.applied_slot
        );
        self.applied_slot = slot;
        self.sessions.begin_slot(slot, &self.config);
        self.apply_deferred();
    }

    /// Applies the `index`th request of the entry at `slot`.
    fn apply_request(&mut self, slot: Slot, index: usize, request: &ClientRequest) -> Reply {
        if request.command == Command::OpenSession {
            let client_id = session::opened_session_id(slot, index);
            self.sessions.open(slot, client_id, &self.config);
            return Reply::Int(i64::try_from(client_id).expect("bit 63 is clear"));
        }
        let (client_id, seq) = (request.client_id, request.seq);
        let restart = mutant::is(self.mutant, Mutant::ForgottenSessionRestarts);
        match self
            .sessions
            .admit(slot, client_id, seq, &self.config, restart)
        {
            Admission::Duplicate(reply) => reply,
            Admission::Stale => Reply::Error(CommandError::StaleRequest { seq }),
            Admission::Apply => {
                let reply = self.apply_write(&request.command);
                self.record_changes(&request.command, &reply);
                self.sessions.record(client_id, seq, reply.clone());
                self.propagate_end_request();
                reply
            }
        }
    }

    /// Applies one write command; a command that breaks a size limit changes nothing. The keys
    /// it names that expired are reclaimed first, so it sees them absent.
    fn apply_write(&mut self, command: &Command) -> Reply {
        if let Err(error) = command.validate() {
            return Reply::Error(error);
        }
        let (db, command) = command.db_and_command();
        self.reap_named(db, command);
        let now_ms = self.now_ms;
        match command {
            Command::FlushAll => {
                self.data.flush_all();
                Reply::Ok
            }
            Command::SwapDb { a, b } => {
                self.data.swap(*a, *b);
                Reply::Ok
            }
            Command::Publish { .. } => Reply::Int(0),
            Command::Move { key, to } => self.move_key(db, key, *to),
            Command::Copy {
                from,
                to,
                to_db,
                replace,
            } => strings::copy(&mut self.data, db, (from, to), *to_db, *replace),
            Command::Transaction { commands, watched } => self.apply_transaction(commands, watched),
            Command::Script(script) => self.apply_script(db, script),
            _ => {
                let store = self.data.db_mut(db);
                let wrong_type = (command.string_keys().into_iter())
                    .any(|key| store.kind(key).is_some_and(|k| k != ValueKind::String));
                if wrong_type {
                    return Reply::Error(CommandError::WrongType);
                }
                let applied = collections::apply(store, command, self.applied_slot)
                    .or_else(|| zsets::apply(store, command))
                    .or_else(|| lists::apply(store, command))
                    .or_else(|| sort::apply(store, command, now_ms));
                applied.unwrap_or_else(|| apply_in_store(store, command, now_ms))
            }
        }
    }

    /// Reclaims the expired keys `command` names in `db` (and MOVE's in its target database,
    /// PRUNE's under its prefix); a transaction's commands reclaim theirs one by one.
    fn reap_named(&mut self, db: Db, command: &Command) {
        let now_ms = self.now_ms;
        match command {
            Command::Transaction { .. } => {}
            Command::Move { key, to } => {
                for at in [*to, db] {
                    if self.data.db_mut(at).reap(key, now_ms) {
                        self.propagate_expired(at, key);
                    }
                }
                assert!(!self.data.db(db).is_expired(key, now_ms), "reaped");
            }
            Command::Prune { prefix } => {
                let store = self.data.db_mut(db);
                let expired: Vec<Vec<u8>> = store
                    .prefix_range(prefix, None)
                    .filter(|(key, _)| store.is_expired(key, now_ms))
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in &expired {
                    assert!(store.reap(key, now_ms));
                }
                for key in &expired {
                    self.propagate_expired(db, key);
                }
            }
            _ => {
                let store = self.data.db_mut(db);
                let keys = command.keys();
                let reaped: Vec<&[u8]> =
                    keys.into_iter().filter(|k| store.reap(k, now_ms)).collect();
                for key in reaped {
                    self.propagate_expired(db, key);
                }
            }
        }
    }

    /// Reclaims up to [`EXPIRED_REAPED_PER_ENTRY_MAX`] keys expired at the state's time,
    /// earliest deadline first, from every database.
    fn reap_due(&mut self) {
        let now_ms = self.now_ms;
        let mut budget = EXPIRED_REAPED_PER_ENTRY_MAX;
        for db in 0..DATABASES {
            let store = self.data.db_mut(db);
            let due = store.deadlines.due(now_ms, budget);
            budget -= due.len();
            due.iter().for_each(|key| assert!(store.reap(key, now_ms)));
            due.iter().for_each(|key| self.propagate_expired(db, key));
        }
        // Reclaiming is no change for WATCH: an expired key was already absent.
        assert!(
            self.data.take_touched().is_empty(),
            "reaping touches no key"
        );
    }

    fn move_key(&mut self, from: Db, key: &[u8], to: Db) -> Reply {
        if from == to {
            return Reply::Error(CommandError::SameObject);
        }
        if self.data.db(to).exists(key) {
            return Reply::Bool(false);
        }
        let deadline_ms = self.data.db(from).deadlines.get(key);
        match self.data.db_mut(from).remove(key) {
            Some(value) => {
                (self.data.db_mut(to)).put_with_deadline(key.to_vec(), value, deadline_ms);
                assert!(
                    !self.data.db(from).exists(key),
                    "MOVE leaves no copy behind"
                );
                Reply::Bool(true)
            }
            None => Reply::Bool(false),
        }
    }
}

/// Applies a write that acts on one database's keys at time `now_ms` (its expired keys were
/// reclaimed already).
fn apply_in_store(store: &mut Store, command: &Command, now_ms: UnixMs) -> Reply {
    match command {
        Command::Set { key, value } => {
            store.put(key.clone(), value.clone());
            Reply::Ok
        }
        Command::TestAndSet { key, expected, new } => {
            let matches = store.get(key) == Some(expected);
            if matches {
                store.put(key.clone(), new.clone());
            }
            Reply::Bool(matches)
        }
        Command::Add { key, delta } => add(store, key, *delta),
        Command::Delete { key } => Reply::Bool(store.remove(key).is_some()),
        Command::MultiDelete { keys } => {
            let removed = keys.iter().filter(|k| store.remove(k).is_some()).count();
            Reply::Int(int_from_count(removed))
        }
        Command::Remove { key } => Reply::Value(store.remove(key).map(store::Entry::into_string)),
        Command::Rename { from, to } => rename(store, from, to),
        Command::Prune { prefix } => Reply::Int(int_from_count(store.prune(prefix))),
        Command::MultiSet { pairs } => {
            for (key, value) in pairs {
                store.put(key.clone(), value.clone());
            }
            Reply::Ok
        }
        Command::FlushDb => {
            store.clear();
            Reply::Ok
        }
        Command::SetIf {
            key,
            value,
            condition,
            get,
        } => {
            let options = (*condition, *get);
            let clear = crate::command::TtlChange::Clear;
            expiry::set_expiring(store, key, value, options, clear, now_ms)
        }
        Command::Append { key, value } => append(store, key, value),
        Command::MultiSetIfAbsent { pairs } => {
            let none_exists = pairs.iter().all(|(key, _)| !store.exists(key));
            if none_exists {
                for (key, value) in pairs {
                    store.put(key.clone(), value.clone());
                }
            }
            Reply::Bool(none_exists)
        }
        _ => apply_string_write(store, command, now_ms),
    }
}

/// Applies a string or bit write (see `strings`).
fn apply_string_write(store: &mut Store, command: &Command, now_ms: UnixMs) -> Reply {
    match command {
        Command::SetRange { key, offset, value } => strings::set_range(store, key, *offset, value),
        Command::AddFloat { key, delta } => strings::add_float(store, key, delta),
        Command::SetBit { key, offset, bit } => strings::set_bit(store, key, *offset, *bit),
        Command::BitOp { op, dest, keys } => strings::bit_op(store, *op, dest, keys),
        Command::RenameIfAbsent { from, to } => strings::rename_if_absent(store, from, to),
        _ => apply_expiry_in_store(store, command, now_ms),
    }
}

/// The expiry commands' writes (see `expiry`).
fn apply_expiry_in_store(store: &mut Store, command: &Command, now_ms: UnixMs) -> Reply {
    match command {
        Command::SetExpiring {
            key,
            value,
            condition,
            get,
            ttl,
        } => expiry::set_expiring(store, key, value, (*condition, *get), *ttl, now_ms),
        Command::Expire {
            key,
            deadline,
            condition,
            name,
        } => expiry::expire(store, key, *deadline, (*condition, *name), now_ms),
        Command::Persist { key } => expiry::persist(store, key),
        Command::GetEx { key, ttl } => expiry::get_ex(store, key, *ttl, now_ms),
        _ => unreachable!("not a write of one database's keys: {command:?}"),
    }
}

fn add(store: &mut Store, key: &[u8], delta: i64) -> Reply {
    let old = match store.get(key) {
        None => 0,
        Some(value) => match parse_integer(value) {
            Some(old) => old,
            None => return Reply::Error(CommandError::NotAnInteger),
        },
    };
    match old.checked_add(delta) {
        Some(new) => {
            store.insert(key.to_vec(), new.to_string().into_bytes());
            Reply::Int(new)
        }
        None => Reply::Error(CommandError::Overflow),
    }
}

fn append(store: &mut Store, key: &[u8], suffix: &[u8]) -> Reply {
    let mut value = store.get(key).cloned().unwrap_or_default();
    let len = value.len() + suffix.len();
    if len > VALUE_MAX_BYTES {
        return Reply::Error(CommandError::ValueTooLarge { len });
    }
    value.extend_from_slice(suffix);
    store.insert(key.to_vec(), value);
    Reply::Int(int_from_count(len))
}

fn rename(store: &mut Store, from: &[u8], to: &[u8]) -> Reply {
    if !store.exists(from) {
        return Reply::Error(CommandError::NoSuchKey);
    }
    if from != to {
        let deadline_ms = store.deadlines.get(from);
        let value = store.remove(from).expect("present: checked above");
        store.put_with_deadline(to.to_vec(), value, deadline_ms);
    }
    Reply::Ok
}

/// The pairs a ListKeys or ListKeyValues names.
fn list<'a>(
    store: &'a Store,
    prefix: &'a [u8],
    start: &Option<Vec<u8>>,
    count: Option<u64>,
    now_ms: UnixMs,
) -> impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> + 'a {
    (store.prefix_range(prefix, start.as_deref()))
        .filter(move |(key, _)| !store.is_expired(key, now_ms))
        .take(list_count_clamped(count))
}

/// KEYS: the keys under the pattern's literal prefix that match it, visiting at most
/// [`KEYS_VISIT_MAX`].
fn keys_matching(store: &Store, pattern: &[u8], now_ms: UnixMs) -> Reply {
    let prefix = glob::literal_prefix(pattern);
    let mut keys = Vec::new();
    for (visited, key) in store.keys_with_prefix(prefix).enumerate() {
        if visited == KEYS_VISIT_MAX {
            return Reply::Error(CommandError::TooManyKeys {
                limit: KEYS_VISIT_MAX,
            });
        }
        if glob::glob_match(pattern, key) && !store.is_expired(key, now_ms) {
            keys.push(key.clone());
        }
    }
    Reply::Keys(keys)
}

/// SCAN: one step of at most `count` keys visited, filtered afterwards as Redis does (so a
/// step may return fewer keys than it visited, or none, and still not be the last).
fn scan(
    store: &Store,
    cursor: u64,
    (pattern, type_name): (Option<&[u8]>, Option<&[u8]>),
    count: u64,
    now_ms: UnixMs,
) -> Reply {
    let count = usize::try_from(count.clamp(1, SCAN_COUNT_MAX)).expect("fits in usize");
    let step = store.scan(cursor, count);
    let type_ok = |key: &[u8]| {
        let kind = store.kind(key).expect("a scanned key is present");
        type_name.is_none_or(|t| t.eq_ignore_ascii_case(kind.name().as_bytes()))
    };
    let keys = step
        .keys
        .into_iter()
        .filter(|key| type_ok(key) && pattern.is_none_or(|p| glob::glob_match(p, key)))
        .filter(|key| !store.is_expired(key, now_ms))
        .cloned()
        .collect();
    Reply::Scan {
        cursor: step.cursor,
        keys,
    }
}

fn int_from_count(count: usize) -> i64 {
    i64::try_from(count).expect("a key count fits in i64")
}
