//! The learner: which values are chosen, how far they are applied to the key-value state
//! machine, and the hash chain over the applied log.
//!
//! Chosen values arrive in any order (from the master's quorums, commits, catch-up); they are
//! applied strictly in slot order, every one as soon as the slots below it are chosen, so when
//! an input has been handled, everything chosen through [`Learner::chosen_through`] is applied.

use std::collections::{BTreeMap, VecDeque};

use crate::command::{ClientResponse, Command, Reply};
use crate::kv::hash::Hash64;
use crate::kv::{StateMachine, StateMachineConfig};
use crate::membership::Reconfigure;
use crate::msg::{LogValue, SlotReport};
use crate::mutant::{self, Mutant};
use crate::snapshot::SnapshotMeta;
use crate::types::Slot;

/// How many recent (slot, state hash) pairs a replica keeps to check checkpoints against; a
/// checkpoint names a slot at most one window behind its own.
pub const STATE_HASHES_KEPT_MAX: usize = 1024;

/// What applying one slot did.
pub(super) struct Applied {
    pub(super) slot: Slot,
    pub(super) responses: Vec<ClientResponse>,
    pub(super) reconfigure: Option<Reconfigure>,
}

pub(super) struct Learner {
    /// Values known chosen above `compacted_through`: every slot through `chosen_through`, and
    /// some beyond it learned out of order.
    chosen: BTreeMap<Slot, LogValue>,
    /// How many entries of `chosen` lie above `chosen_through` (kept so that the contiguity of
    /// the rest is checked without a walk of the log).
    chosen_above: usize,
    chosen_through: Slot,
    applied_through: Slot,
    /// Hash chain over every applied slot's value.
    applied_chain: u64,
    /// Chosen entries at or below this slot are no longer kept: a snapshot covers them.
    compacted_through: Slot,
    state: StateMachine,
    /// Recent (slot, state hash after it), oldest first, to check checkpoints against.
    state_hashes: VecDeque<(Slot, u64)>,
    /// False on a witness: it applies no command to its store, which stays empty (only the
    /// applied slot moves), and compares no checkpoint.
    keeps_state: bool,
    mutant: Option<Mutant>,
}

impl Learner {
    /// A learner that has applied nothing yet, holding the chosen values storage recovered.
    pub(super) fn new(
        config: StateMachineConfig,
        mutant: Option<Mutant>,
        chosen: BTreeMap<Slot, LogValue>,
        keeps_state: bool,
    ) -> Self {
        assert!(!chosen.contains_key(&0), "slot 0 is never chosen");
        let mut state = StateMachine::new(config);
        state.set_mutant(mutant);
        Self {
            chosen_above: chosen.len(),
            chosen,
            chosen_through: 0,
            applied_through: 0,
            applied_chain: 0,
            compacted_through: 0,
            state,
            state_hashes: VecDeque::new(),
            keeps_state,
            mutant,
        }
    }

    pub(super) fn chosen_through(&self) -> Slot {
        self.chosen_through
    }

    pub(super) fn applied_through(&self) -> Slot {
        self.applied_through
    }

    pub(super) fn applied_chain(&self) -> u64 {
        self.applied_chain
    }

    pub(super) fn compacted_through(&self) -> Slot {
        self.compacted_through
    }

    pub(super) fn state(&self) -> &StateMachine {
        &self.state
    }

    /// The state, for turning propagation on and off and taking its effects (nothing else
    /// changes it outside applying the log).
    pub(super) fn state_mut(&mut self) -> &mut StateMachine {
        &mut self.state
    }

    pub(super) fn read(&self, command: &Command) -> Reply {
        self.state.read(command)
    }

    /// A read judging expiry at `now_ms` (or the state's time, if later).
    pub(super) fn read_at(&self, command: &Command, now_ms: u64) -> Reply {
        let now_ms = crate::kv::UnixMs::try_from(now_ms).unwrap_or(crate::kv::UnixMs::MAX);
        self.state.read_at(command, now_ms)
    }

    pub(super) fn chosen(&self, slot: Slot) -> Option<&LogValue> {
        self.chosen.get(&slot)
    }

    /// Whether `slot` is known chosen, however it was learned: covered by a snapshot (own or
    /// installed), or learned from a commit, a catch-up or a promise.
    pub(super) fn is_chosen(&self, slot: Slot) -> bool {
        slot <= self.compacted_through || self.chosen.contains_key(&slot)
    }

    /// Whether `value` for `slot` is known already: compacted away, or chosen (then it must be
    /// this very value: two values chosen for one slot stop the replica).
    pub(super) fn knows(&self, slot: Slot, value: &LogValue) -> bool {
        if slot <= self.compacted_through {
            return true; // covered by a snapshot already
        }
        let Some(known) = self.chosen.get(&slot) else {
            return false;
        };
        assert_eq!(known, value, "two values chosen for slot {slot}");
        true
    }

    /// Records that `value` is chosen for `slot`, which it did not know (see [`Self::knows`]).
    pub(super) fn insert(&mut self, slot: Slot, value: LogValue) {
        assert!(
            slot > self.chosen_through,
            "slot {slot} learned again below chosen-through {}",
            self.chosen_through
        );
        assert!(self.chosen.insert(slot, value).is_none());
        self.chosen_above += 1;
    }

    /// Moves `chosen_through` over the slots that became contiguous.
    pub(super) fn advance(&mut self) {
        while self.chosen.contains_key(&(self.chosen_through + 1)) {
            self.chosen_through += 1;
            self.chosen_above -= 1;
        }
    }

    /// Applies the next chosen slot, if one is not applied yet; returns its responses, and the
    /// change of membership it carries, if any (the replica's membership applies it).
    pub(super) fn apply_next(&mut self, wall_ms: u64) -> Option<Applied> {
        if self.applied_through >= self.chosen_through {
            return None;
        }
        let slot = self.applied_through + 1;
        let value = self.chosen.get(&slot).expect("chosen slot to apply");
        self.applied_chain = chain_hash(self.applied_chain, slot, value);
        self.applied_through = slot;
        let responses = match value {
            LogValue::Batch(requests) if self.keeps_state => self.state.apply_batch(slot, requests),
            LogValue::TimedBatch { now_ms, requests } if self.keeps_state => {
                // Wrong on purpose under the mutant: the replica's own clock, not the log's.
                let own_clock = mutant::is(self.mutant, Mutant::ReplicaClockExpiry);
                let now_ms = if own_clock { wall_ms } else { *now_ms };
                self.state.apply_timed_batch(slot, now_ms, requests)
            }
            LogValue::Checkpoint {
                at_slot,
                state_hash,
            } if self.keeps_state => {
                verify_checkpoint(&self.state_hashes, *at_slot, *state_hash, slot);
                self.state.apply_noop(slot);
                Vec::new()
            }
            LogValue::Noop
            | LogValue::Reconfigure(_)
            | LogValue::Batch(_)
            | LogValue::TimedBatch { .. }
            | LogValue::Checkpoint { .. } => {
                self.state.apply_noop(slot);
                Vec::new()
            }
        };
        let reconfigure = match value {
            LogValue::Reconfigure(change) => Some(change.clone()),
            _ => None,
        };
        self.remember_state_hash(slot);
        Some(Applied {
            slot,
            responses,
            reconfigure,
        })
    }

    fn remember_state_hash(&mut self, slot: Slot) {
        if self.state_hashes.len() == STATE_HASHES_KEPT_MAX {
            self.state_hashes.pop_front();
        }
        self.state_hashes.push_back((slot, self.state.state_hash()));
    }

    /// The last applied slot and the state hash after it (what a checkpoint carries).
    pub(super) fn last_state_hash(&self) -> Option<(Slot, u64)> {
        self.state_hashes.back().copied()
    }

    /// Drops chosen entries at or below `through`, which must be applied.
    pub(super) fn drop_through(&mut self, through: Slot) {
        assert!(
            through <= self.applied_through,
            "only applied entries are dropped"
        );
        self.chosen = self.chosen.split_off(&(through + 1));
        self.compacted_through = self.compacted_through.max(through);
    }

    /// Makes `state`, restored from a snapshot described by `meta`, the applied state. The
    /// entries it covers are dropped, except, when `keep_log` (its own snapshot, restored at
    /// start), the run of chosen entries storage still holds up to its slot: a witness compacts
    /// only what every full voter's snapshot covers, and a full voter behind its snapshot can
    /// learn those slots from no one else (a witness serves no snapshot).
    pub(super) fn adopt(&mut self, meta: &SnapshotMeta, state: StateMachine, keep_log: bool) {
        let slot = meta.slot;
        let kept_from = match keep_log {
            true => self.contiguous_run_start(slot),
            false => slot + 1,
        };
        assert_eq!(state.applied_slot(), slot);
        assert!(
            slot > self.compacted_through,
            "a snapshot older than the log"
        );
        let mut state = state;
        state.replace_propagating(&self.state);
        self.state = state;
        self.state.set_mutant(self.mutant);
        self.applied_through = slot;
        self.chosen_through = self.chosen_through.max(slot);
        self.applied_chain = meta.applied_chain;
        self.state_hashes.clear();
        self.remember_state_hash(slot);
        self.drop_through(kept_from - 1);
        self.chosen_above = self.chosen.range(self.chosen_through + 1..).count();
        assert!(self.compacted_through <= slot && self.compacted_through == kept_from - 1);
    }

    /// The lowest slot from which every slot through `slot` is kept chosen (`slot + 1` if
    /// `slot` itself is not), never at or below the compaction point.
    fn contiguous_run_start(&self, slot: Slot) -> Slot {
        let mut from = slot + 1;
        while from - 1 > self.compacted_through && self.chosen.contains_key(&(from - 1)) {
            from -= 1;
        }
        assert!(from > self.compacted_through);
        from
    }

    /// Every chosen slot from `from_slot` on, as a promise reports it.
    pub(super) fn reports_from(&self, from_slot: Slot) -> impl Iterator<Item = SlotReport> + '_ {
        self.chosen
            .range(from_slot..)
            .map(|(slot, value)| SlotReport {
                slot: *slot,
                accepted_ballot: None,
                value: value.clone(),
            })
    }

    /// Up to `count_max` chosen values, consecutive from `from_slot`.
    pub(super) fn values_from(&self, from_slot: Slot, count_max: usize) -> Vec<LogValue> {
        (from_slot..)
            .map_while(|slot| self.chosen.get(&slot).cloned())
            .take(count_max)
            .collect()
    }

    /// The highest slot known chosen, if any is kept.
    pub(super) fn last_chosen_slot(&self) -> Option<Slot> {
        self.chosen.keys().next_back().copied()
    }

    /// Indexes in order, chosen entries contiguous through `chosen_through`, and the state and
    /// the last remembered state hash at `applied_through`. O(log n), no walk of the log.
    pub(super) fn check_invariants(&self) {
        let (compacted, applied, chosen) = (
            self.compacted_through,
            self.applied_through,
            self.chosen_through,
        );
        assert!(
            compacted <= applied && applied <= chosen,
            "compacted {compacted}, applied {applied}, chosen {chosen} out of order"
        );
        // Applying is synchronous: nothing chosen waits for the next input.
        assert_eq!(applied, chosen, "chosen slots left unapplied");
        assert_eq!(self.state.applied_slot(), applied);
        let through_kept = usize::try_from(chosen - compacted).expect("fits in usize");
        assert_eq!(
            self.chosen.len(),
            through_kept + self.chosen_above,
            "chosen slots {compacted}..={chosen} are not contiguous"
        );
        // First and last keys cost a walk down one edge of the tree, a search costs compares
        // at every level: search only when slots above chosen-through are kept.
        let first = self.chosen.first_key_value().map(|(s, _)| *s);
        assert!(first.is_none_or(|s| s > compacted));
        if self.chosen_above == 0 {
            let last = self.chosen.last_key_value().map(|(s, _)| *s);
            assert!(
                last.is_none_or(|s| s == chosen),
                "slots kept above chosen-through"
            );
        } else {
            let lags = self.chosen.contains_key(&(chosen + 1));
            assert!(!lags, "chosen-through lags");
        }
        assert!(self.state_hashes.len() <= STATE_HASHES_KEPT_MAX);
        assert!(
            self.keeps_state || self.state.is_empty(),
            "a witness holds key-value state"
        );
        match self.state_hashes.back() {
            None => assert_eq!(applied, 0, "no state hash after applying"),
            Some(&(slot, hash)) => {
                assert_eq!(slot, applied, "last state hash is not of the applied slot");
                assert_eq!(hash, self.state.state_hash(), "state changed outside apply");
            }
        }
    }
}

/// Compares a checkpoint with this replica's own state hash after `at_slot`. A mismatch means
/// two replicas applied the same log and hold different states: a bug or undetected corruption.
/// Stop rather than serve or extend diverged data.
fn verify_checkpoint(hashes: &VecDeque<(Slot, u64)>, at_slot: Slot, master_hash: u64, slot: Slot) {
    // A replica that installed a snapshot past `at_slot` has no hash for it: nothing to compare.
    let Some((_, own)) = hashes.iter().find(|(s, _)| *s == at_slot) else {
        return;
    };
    assert_eq!(
        *own, master_hash,
        "state divergence: after slot {at_slot} this replica's state hash is {own:#018x}, \
         the master's is {master_hash:#018x} (checkpoint in slot {slot})"
    );
}

/// One link of the applied-log hash chain: the previous link, the slot and the value.
fn chain_hash(previous: u64, slot: Slot, value: &LogValue) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = WordHasher(Hash64::new(previous).word(slot));
    value.hash(&mut hasher);
    hasher.finish()
}

/// `std::hash::Hasher` over the state machine's deterministic word hash.
struct WordHasher(Hash64);

impl std::hash::Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = self.0.bytes(bytes);
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = self.0.word(word);
    }

    fn write_usize(&mut self, word: usize) {
        self.0 = self.0.word(word as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learner() -> Learner {
        Learner::new(StateMachineConfig::default(), None, BTreeMap::new(), true)
    }

    #[test]
    fn slots_chosen_out_of_order_are_applied_once_the_gap_is_filled() {
        let mut learner = learner();
        learner.insert(2, LogValue::Noop);
        learner.advance();
        assert_eq!(learner.chosen_through(), 0);
        assert!(learner.apply_next(0).is_none());
        learner.check_invariants();
        learner.insert(1, LogValue::Noop);
        learner.advance();
        assert_eq!(learner.chosen_through(), 2);
        while learner.apply_next(0).is_some() {}
        assert_eq!(learner.applied_through(), 2);
        assert_eq!(learner.last_state_hash().map(|(s, _)| s), Some(2));
        learner.check_invariants();
    }

    #[test]
    fn a_value_already_chosen_is_known_and_a_different_one_stops_the_replica() {
        let mut learner = learner();
        learner.insert(1, LogValue::Noop);
        assert!(learner.knows(1, &LogValue::Noop));
        assert!(!learner.knows(2, &LogValue::Noop));
        let other = LogValue::Checkpoint {
            at_slot: 0,
            state_hash: 1,
        };
        let result = std::panic::catch_unwind(|| learner.knows(1, &other));
        assert!(result.is_err(), "two values chosen for one slot");
    }

    #[test]
    #[should_panic(expected = "not contiguous")]
    fn the_invariant_check_catches_a_hole_below_chosen_through() {
        let mut learner = learner();
        for slot in 1..=3 {
            learner.insert(slot, LogValue::Noop);
        }
        learner.advance();
        while learner.apply_next(0).is_some() {}
        learner.chosen.remove(&2);
        learner.check_invariants();
    }

    #[test]
    #[should_panic(expected = "chosen slots left unapplied")]
    fn the_invariant_check_catches_a_chosen_slot_left_unapplied() {
        let mut learner = learner();
        learner.insert(1, LogValue::Noop);
        learner.advance();
        learner.check_invariants();
    }
}
