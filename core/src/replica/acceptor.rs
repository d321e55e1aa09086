//! The log acceptor: what this replica promised and accepted in the Multi-Paxos log.
//!
//! All of it is durable. Every change returns the [`StorageWrite`] that records it, and the
//! replica holds any answer that relies on the change until that write is durable.

use std::collections::BTreeMap;

use crate::msg::{LogValue, Nack, SlotReport};
use crate::mutant::{self, Mutant};
use crate::storage::StorageWrite;
use crate::types::{Ballot, NodeId, Slot};

pub(super) struct LogAcceptor {
    /// The highest ballot promised; it never decreases.
    promised: Ballot,
    /// The highest log ballot seen in any message, at least `promised`: a mastership this
    /// replica starts takes a ballot above it.
    highest_seen: Ballot,
    /// Values accepted and not known to be chosen, with the ballot of each.
    accepted: BTreeMap<Slot, (Ballot, LogValue)>,
    /// At least the ballot of every value in `accepted` (the highest ever accepted), so that
    /// "no accepted ballot is above the promise" is checked without a walk of the log.
    accepted_ballot_max: Ballot,
    /// The epoch each accepted `Reconfigure` not known chosen would make, by slot: a lease
    /// proposer of an older epoch is refused (see `route_lease`).
    reconfigures: BTreeMap<Slot, u64>,
}

impl LogAcceptor {
    /// The acceptor as storage recovered it.
    pub(super) fn new(promised: Ballot, accepted: BTreeMap<Slot, (Ballot, LogValue)>) -> Self {
        let accepted_ballot_max = accepted.values().map(|(b, _)| *b).max();
        let reconfigures = accepted
            .iter()
            .filter_map(|(slot, (_, value))| reconfigure_epoch(value).map(|e| (*slot, e)))
            .collect();
        let acceptor = Self {
            promised,
            highest_seen: promised,
            accepted,
            accepted_ballot_max: accepted_ballot_max.unwrap_or(Ballot::ZERO),
            reconfigures,
        };
        acceptor.check_invariants();
        acceptor
    }

    pub(super) fn promised(&self) -> Ballot {
        self.promised
    }

    /// Notes a ballot seen in a message, so a later mastership of this replica outranks it.
    pub(super) fn observe(&mut self, ballot: Ballot) {
        self.highest_seen = self.highest_seen.max(ballot);
    }

    /// Notes `ballot`, and returns the `Nack` to answer if it is below the promise.
    pub(super) fn refuses(&mut self, ballot: Ballot, active: Option<Mutant>) -> Option<Nack> {
        self.observe(ballot);
        let accepts = ballot >= self.promised || mutant::is(active, Mutant::AcceptLowerBallot);
        let highest = self.promised;
        (!accepts).then_some(Nack { ballot, highest })
    }

    /// The ballot a new mastership of replica `me` leads with: above every ballot seen.
    pub(super) fn next_ballot(&mut self, me: NodeId) -> Ballot {
        let ballot = Ballot::next_above(self.highest_seen, me);
        self.highest_seen = ballot;
        ballot
    }

    /// Promises `ballot` (one this acceptor does not refuse).
    pub(super) fn promise(&mut self, ballot: Ballot) -> StorageWrite {
        self.observe(ballot);
        self.promised = self.promised.max(ballot);
        StorageWrite::Promise { ballot }
    }

    /// Accepts `value` for `slot` in `ballot` (one this acceptor does not refuse). A slot known
    /// to be chosen (`chosen`: learned, or covered by a snapshot) keeps its chosen value and is
    /// not tracked, so no change chosen already is ever pending here; the write is recorded all
    /// the same (a restart drops it with the slots its snapshot covers).
    pub(super) fn accept(
        &mut self,
        slot: Slot,
        ballot: Ballot,
        value: LogValue,
        chosen: bool,
    ) -> StorageWrite {
        assert!(slot > 0, "slot 0 is never proposed");
        self.observe(ballot);
        self.promised = self.promised.max(ballot);
        if !chosen {
            match reconfigure_epoch(&value) {
                Some(epoch) => self.reconfigures.insert(slot, epoch),
                None => self.reconfigures.remove(&slot),
            };
            self.accepted.insert(slot, (ballot, value.clone()));
            self.accepted_ballot_max = self.accepted_ballot_max.max(ballot);
        }
        StorageWrite::Accept {
            slot,
            ballot,
            value,
        }
    }

    /// Raises the promise to `ballot`, the highest a recovery found among trusted peers.
    pub(super) fn adopt_recovered_promise(&mut self, ballot: Ballot) -> Option<StorageWrite> {
        if ballot <= self.promised {
            return None;
        }
        self.promised = ballot;
        self.observe(ballot);
        Some(StorageWrite::Promise { ballot })
    }

    /// The value accepted for `slot` if it was accepted in `ballot`.
    pub(super) fn accepted_in(&self, slot: Slot, ballot: Ballot) -> Option<&LogValue> {
        match self.accepted.get(&slot) {
            Some((b, value)) if *b == ballot => Some(value),
            _ => None,
        }
    }

    /// Whether a value accepted for `slot` is kept (it is then not known chosen).
    pub(super) fn holds(&self, slot: Slot) -> bool {
        self.accepted.contains_key(&slot)
    }

    /// The slots of the accepted changes not known chosen, lowest first.
    pub(super) fn tracked_change_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.reconfigures.keys().copied()
    }

    /// Forgets what was accepted for `slot` (it is chosen now), returning it.
    pub(super) fn take(&mut self, slot: Slot) -> Option<(Ballot, LogValue)> {
        self.reconfigures.remove(&slot);
        self.accepted.remove(&slot)
    }

    /// The accepted change not known chosen in the highest slot, if any.
    pub(super) fn pending_change(&self) -> Option<&crate::membership::Reconfigure> {
        self.pending_change_at().map(|(_, change)| change)
    }

    /// The accepted change not known chosen in the highest slot, with its slot, if any.
    pub(super) fn pending_change_at(&self) -> Option<(Slot, &crate::membership::Reconfigure)> {
        let (slot, _) = self.reconfigures.last_key_value()?;
        match self.accepted.get(slot) {
            Some((_, LogValue::Reconfigure(change))) => Some((*slot, change)),
            _ => unreachable!("a tracked change is accepted"),
        }
    }

    /// The highest epoch an accepted change not known chosen would make (0 if none).
    pub(super) fn reconfigure_epoch_max(&self) -> u64 {
        self.reconfigures.values().copied().max().unwrap_or(0)
    }

    /// Every accepted slot from `from_slot` on, as a promise reports it.
    pub(super) fn reports_from(&self, from_slot: Slot) -> impl Iterator<Item = SlotReport> + '_ {
        self.accepted
            .range(from_slot..)
            .map(|(slot, (b, value))| SlotReport {
                slot: *slot,
                accepted_ballot: Some(*b),
                value: value.clone(),
            })
    }

    /// The highest slot with an accepted value, if any.
    pub(super) fn last_accepted_slot(&self) -> Option<Slot> {
        self.accepted.keys().next_back().copied()
    }

    /// Drops what was accepted at or below `through` (a snapshot covers it).
    pub(super) fn drop_through(&mut self, through: Slot) {
        self.accepted = self.accepted.split_off(&(through + 1));
        self.reconfigures = self.reconfigures.split_off(&(through + 1));
    }

    /// No accepted ballot is above the promise, no promise above what was seen, and every
    /// tracked change is an accepted one.
    pub(super) fn check_invariants(&self) {
        assert!(
            self.reconfigures.len() <= self.accepted.len(),
            "changes tracked beyond the accepted values"
        );
        if let Some((slot, _)) = self.reconfigures.last_key_value() {
            assert!(
                self.accepted.contains_key(slot),
                "a change tracked at slot {slot} unaccepted"
            );
        }
        assert!(
            self.accepted_ballot_max <= self.promised,
            "accepted ballot {} above the promise {}",
            self.accepted_ballot_max,
            self.promised
        );
        assert!(
            self.promised <= self.highest_seen,
            "promised {} above the highest ballot seen {}",
            self.promised,
            self.highest_seen
        );
    }
}

/// The epoch a `Reconfigure` value makes, if `value` is one.
fn reconfigure_epoch(value: &LogValue) -> Option<u64> {
    match value {
        LogValue::Reconfigure(change) => Some(change.epoch),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ballot(round: u64) -> Ballot {
        Ballot { round, node: 2 }
    }

    #[test]
    fn a_ballot_below_the_promise_is_refused_and_still_outranked_by_the_next_mastership() {
        let mut acceptor = LogAcceptor::new(Ballot::ZERO, BTreeMap::new());
        acceptor.promise(ballot(5));
        let nack = acceptor.refuses(ballot(4), None).expect("refused");
        assert_eq!(nack.highest, ballot(5));
        assert_eq!(acceptor.refuses(ballot(6), None), None);
        acceptor.observe(Ballot { round: 9, node: 3 });
        assert_eq!(acceptor.next_ballot(1), Ballot { round: 10, node: 1 });
        acceptor.check_invariants();
    }

    #[test]
    fn accepting_raises_the_promise_but_a_chosen_slot_keeps_its_value() {
        let mut acceptor = LogAcceptor::new(Ballot::ZERO, BTreeMap::new());
        acceptor.accept(1, ballot(3), LogValue::Noop, false);
        acceptor.accept(2, ballot(3), LogValue::Noop, true);
        assert_eq!(acceptor.promised(), ballot(3));
        assert_eq!(acceptor.accepted_in(1, ballot(3)), Some(&LogValue::Noop));
        assert_eq!(acceptor.accepted_in(1, ballot(2)), None);
        assert_eq!(acceptor.last_accepted_slot(), Some(1));
        acceptor.check_invariants();
    }

    #[test]
    #[should_panic(expected = "above the promise")]
    fn storage_holding_an_accept_above_its_promise_is_refused() {
        let accepted = BTreeMap::from([(1, (ballot(4), LogValue::Noop))]);
        LogAcceptor::new(ballot(3), accepted);
    }
}
