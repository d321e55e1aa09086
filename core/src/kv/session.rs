//! Client sessions: what makes a retried write apply once and get its original reply.
//!
//! A session is keyed by `client_id` and remembers the highest `seq` applied and the replies of
//! the last [`SESSION_REPLIES_MAX`] seqs. The table is bounded and forgets sessions only as a
//! function of log positions, so every replica that applied the same log prefix holds the same
//! table.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::hash::{reply_hash, Hash64, TAG_SESSION};
use super::StateMachineConfig;
use crate::command::{ClientId, Reply, Seq, OPENED_SESSION_BIT, SESSION_REPLIES_MAX};
use crate::types::Slot;

/// Most idle sessions the sweep forgets per applied slot, so one apply does bounded work. A
/// session idle past its limit but not yet swept is still treated as expired when its client
/// next writes, so the bound changes memory use only, never a reply.
pub const SESSION_EXPIRIES_PER_SLOT_MAX: usize = 64;

/// What the session table says about a request, before the command is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Never applied: apply it, then `record` the reply.
    Apply,
    /// Applied before: this is its original reply; apply nothing.
    Duplicate(Reply),
    /// Too old to know whether it was applied (or seq 0, which clients never use): apply nothing.
    Stale,
}

/// One client's session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Highest seq applied; 0 before the first.
    highest_seq: Seq,
    /// Slot of the client's most recent request: the basis of idle expiry and LRU eviction.
    last_slot: Slot,
    /// Replies of applied seqs in the window `(highest_seq - SESSION_REPLIES_MAX, highest_seq]`.
    replies: BTreeMap<Seq, Reply>,
}

impl Session {
    /// Highest seq applied; 0 before the first.
    pub fn highest_seq(&self) -> Seq {
        self.highest_seq
    }

    /// Slot of the client's most recent request.
    pub fn last_slot(&self) -> Slot {
        self.last_slot
    }

    /// Number of replies kept for retries.
    pub fn replies_len(&self) -> usize {
        self.replies.len()
    }

    fn is_stale(&self, seq: Seq) -> bool {
        seq == 0 || seq.saturating_add(SESSION_REPLIES_MAX) <= self.highest_seq
    }

    fn admission(&self, seq: Seq) -> Admission {
        if self.is_stale(seq) {
            return Admission::Stale;
        }
        match self.replies.get(&seq) {
            Some(reply) => Admission::Duplicate(reply.clone()),
            None => Admission::Apply,
        }
    }

    /// Hash of everything but the replies, which are hashed one by one.
    fn header_hash(&self, client_id: ClientId) -> u64 {
        Hash64::new(TAG_SESSION)
            .word(client_id)
            .word(self.highest_seq)
            .word(self.last_slot)
            .finish()
    }
}

/// The bounded table of sessions, with an index by last use and a running hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionTable {
    sessions: BTreeMap<ClientId, Session>,
    /// `(last_slot, client_id)` of every session: its first element is the least recently used
    /// session (ties broken by the smaller client id) and the first to go idle.
    by_last_slot: BTreeSet<(Slot, ClientId)>,
    /// Wrapping sum of every session's header hash and every kept reply's hash.
    sessions_hash: u64,
}

impl SessionTable {
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn sessions_hash(&self) -> u64 {
        self.sessions_hash
    }

    pub(crate) fn get(&self, client_id: ClientId) -> Option<&Session> {
        self.sessions.get(&client_id)
    }

    /// Forgets, at the start of `slot`, sessions beyond `sessions_max` (the table may overflow
    /// by the new clients of one batch) and up to [`SESSION_EXPIRIES_PER_SLOT_MAX`] idle ones.
    pub(crate) fn begin_slot(&mut self, slot: Slot, config: &StateMachineConfig) {
        while self.sessions.len() > config.sessions_max {
            self.evict_least_recently_used();
        }
        assert!(self.sessions.len() <= config.sessions_max);
        for _ in 0..SESSION_EXPIRIES_PER_SLOT_MAX {
            match self.by_last_slot.first() {
                Some(&(last_slot, _)) if is_idle(last_slot, slot, config) => {
                    self.evict_least_recently_used();
                }
                _ => break,
            }
        }
    }

    /// Looks up (creating or renewing) the client's session at `slot` and says whether to apply.
    pub(crate) fn admit(
        &mut self,
        slot: Slot,
        client_id: ClientId,
        seq: Seq,
        config: &StateMachineConfig,
        restart_forgotten: bool,
    ) -> Admission {
        if let Some(session) = self.sessions.get(&client_id) {
            if is_idle(session.last_slot, slot, config) {
                self.remove(client_id);
            }
        }
        if !self.sessions.contains_key(&client_id) {
            // An opened session the table does not hold was forgotten: nothing under it may
            // apply. A client-chosen one starts at seq 1 and pipelines at most a window of
            // requests, so a higher seq means its session expired: whether that request was
            // applied is no longer known, so it must not be applied again.
            let opened = client_id & OPENED_SESSION_BIT != 0 && !restart_forgotten;
            if opened || seq == 0 || seq > SESSION_REPLIES_MAX {
                return Admission::Stale;
            }
            self.make_room(slot, config.sessions_max);
            self.insert(client_id, slot);
        }
        self.touch(client_id, slot);
        self.check_sizes();
        self.sessions[&client_id].admission(seq)
    }

    /// Starts the session `client_id` (an id [`opened_session_id`] made, never used before) at
    /// `slot`, making room as a client-chosen session's first write does.
    pub(crate) fn open(&mut self, slot: Slot, client_id: ClientId, config: &StateMachineConfig) {
        assert!(
            client_id & OPENED_SESSION_BIT != 0 && !self.sessions.contains_key(&client_id),
            "session {client_id} opened twice"
        );
        self.make_room(slot, config.sessions_max);
        self.insert(client_id, slot);
    }

    /// Keeps the reply of a request `admit` said to apply, and slides the window.
    pub(crate) fn record(&mut self, client_id: ClientId, seq: Seq, reply: Reply) {
        let old_header = self.header_hash(client_id);
        let session = self.sessions.get_mut(&client_id).expect("admitted session");
        assert!(!session.is_stale(seq), "recording stale seq {seq}");
        let added = reply_hash(client_id, seq, &reply);
        let previous = session.replies.insert(seq, reply);
        assert!(
            previous.is_none(),
            "seq {seq} of client {client_id} applied twice"
        );
        session.highest_seq = session.highest_seq.max(seq);
        let mut removed = 0u64;
        while let Some((&oldest_seq, _)) = session.replies.first_key_value() {
            if !session.is_stale(oldest_seq) {
                break;
            }
            let (old_seq, old_reply) = session.replies.pop_first().expect("not empty");
            removed = removed.wrapping_add(reply_hash(client_id, old_seq, &old_reply));
        }
        // The window slid: what is kept is within it (assert_invariants, for this session).
        assert!(
            session.replies.len() <= window_len(),
            "reply window overfull"
        );
        let oldest = session.replies.keys().next().copied();
        assert!(oldest.is_some_and(|s| !session.is_stale(s) && s <= session.highest_seq));
        let new_header = session.header_hash(client_id);
        self.sessions_hash = self
            .sessions_hash
            .wrapping_sub(old_header)
            .wrapping_sub(removed)
            .wrapping_add(new_header)
            .wrapping_add(added);
    }

    /// Evicts the least recently used session if the table is full, unless every session was
    /// used in this very slot: then it overflows until `begin_slot` of the next slot, so a
    /// session never disappears between two requests of one batch.
    fn make_room(&mut self, slot: Slot, sessions_max: usize) {
        if self.sessions.len() < sessions_max {
            return;
        }
        match self.by_last_slot.first() {
            Some(&(last_slot, _)) if last_slot < slot => self.evict_least_recently_used(),
            _ => {}
        }
    }

    fn evict_least_recently_used(&mut self) {
        let &(_, client_id) = self.by_last_slot.first().expect("table is not empty");
        self.remove(client_id);
    }

    fn insert(&mut self, client_id: ClientId, slot: Slot) {
        let session = Session {
            highest_seq: 0,
            last_slot: slot,
            replies: BTreeMap::new(),
        };
        self.sessions_hash = self
            .sessions_hash
            .wrapping_add(session.header_hash(client_id));
        assert!(self.by_last_slot.insert((slot, client_id)));
        assert!(self.sessions.insert(client_id, session).is_none());
    }

    fn remove(&mut self, client_id: ClientId) {
        let session = self.sessions.remove(&client_id).expect("session exists");
        assert!(self.by_last_slot.remove(&(session.last_slot, client_id)));
        self.sessions_hash = self
            .sessions_hash
            .wrapping_sub(session_hash(client_id, &session));
    }

    fn touch(&mut self, client_id: ClientId, slot: Slot) {
        let old_header = self.header_hash(client_id);
        let session = self.sessions.get_mut(&client_id).expect("session exists");
        assert!(session.last_slot <= slot, "slots go forward");
        assert!(self.by_last_slot.remove(&(session.last_slot, client_id)));
        session.last_slot = slot;
        assert!(self.by_last_slot.insert((slot, client_id)));
        let new_header = session.header_hash(client_id);
        self.sessions_hash = self
            .sessions_hash
            .wrapping_sub(old_header)
            .wrapping_add(new_header);
    }

    fn header_hash(&self, client_id: ClientId) -> u64 {
        self.sessions[&client_id].header_hash(client_id)
    }

    /// The part of [`Self::assert_invariants`] that costs O(1): the index by last use holds
    /// exactly one entry per session.
    fn check_sizes(&self) {
        assert_eq!(
            self.sessions.len(),
            self.by_last_slot.len(),
            "session index out of step"
        );
    }

    /// Checks the index and the running hash against the sessions; O(size of the table).
    pub(crate) fn assert_invariants(&self) {
        assert_eq!(self.sessions.len(), self.by_last_slot.len());
        let mut sum = 0u64;
        for (&client_id, session) in &self.sessions {
            assert!(self.by_last_slot.contains(&(session.last_slot, client_id)));
            assert!(session.replies.len() <= window_len());
            for &seq in session.replies.keys() {
                assert!(!session.is_stale(seq) && seq <= session.highest_seq);
            }
            sum = sum.wrapping_add(session_hash(client_id, session));
        }
        assert_eq!(sum, self.sessions_hash, "session hash drifted");
    }
}

/// Bits of an opened session's id that hold the request's place in its log entry.
pub(crate) const OPENED_INDEX_BITS: u32 = 20;

/// The id of the session the `index`th request of the entry at `slot` opens: unique, as one slot
/// is applied once and holds fewer than 2^20 requests, and it never has bit 63 set.
pub(crate) fn opened_session_id(slot: Slot, index: usize) -> ClientId {
    let index = u64::try_from(index).expect("index fits in u64");
    assert!(
        index < 1 << OPENED_INDEX_BITS,
        "request {index} of slot {slot}: entry too long"
    );
    assert!(
        slot < OPENED_SESSION_BIT >> OPENED_INDEX_BITS,
        "slot {slot} is past the opened-session id space"
    );
    OPENED_SESSION_BIT | slot << OPENED_INDEX_BITS | index
}

/// Idle means no request for more than `session_idle_slots_max` slots.
fn is_idle(last_slot: Slot, slot: Slot, config: &StateMachineConfig) -> bool {
    slot.saturating_sub(last_slot) > config.session_idle_slots_max
}

fn window_len() -> usize {
    usize::try_from(SESSION_REPLIES_MAX).expect("window fits in usize")
}

/// A session's full contribution to the table's hash.
fn session_hash(client_id: ClientId, session: &Session) -> u64 {
    session
        .replies
        .iter()
        .fold(session.header_hash(client_id), |sum, (&seq, reply)| {
            sum.wrapping_add(reply_hash(client_id, seq, reply))
        })
}
