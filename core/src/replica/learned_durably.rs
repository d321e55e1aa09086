//! How far this replica durably holds every chosen value, in its snapshot or its log: what a
//! full voter reports to the master, which lets witnesses compact their log through the lowest
//! such slot among the full voters (see docs/design.md, "Witnesses").
//!
//! The replica notes `(token, chosen_through)` after learning: everything that made those
//! slots chosen here (a `Learn` or `Chosen` record, an installed snapshot) was handed to storage
//! with a token no later than `token`, so once `token` is durable they all are. Two marks at
//! most are kept: the one waiting for its token, and the newest one noted since, which
//! replaces any older one waiting behind it. Under steady load the durable slot so moves once per
//! persist round trip instead of waiting for a moment when nothing is unsynced.

use crate::types::Slot;

/// One promise in waiting: once writes through `token` are durable, so is every chosen slot
/// through `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark {
    token: u64,
    slot: Slot,
}

pub(super) struct LearnedDurably {
    /// Every chosen slot through this one is durable here.
    through: Slot,
    /// The oldest mark not yet durable.
    waiting: Option<Mark>,
    /// The newest mark noted while `waiting` was; replaced by any newer one.
    next: Option<Mark>,
}

impl LearnedDurably {
    /// Nothing known durable yet.
    pub(super) fn new() -> Self {
        Self {
            through: 0,
            waiting: None,
            next: None,
        }
    }

    /// Every chosen slot through `slot` was read back from storage at start: durable.
    pub(super) fn restored(&mut self, slot: Slot) {
        self.through = self.through.max(slot);
        self.drop_covered();
    }

    /// The slot every chosen slot through which is durable here.
    pub(super) fn through(&self) -> Slot {
        self.through
    }

    /// Every slot through `chosen_through` is chosen here, by writes handed to storage with
    /// tokens up to `last_token`.
    pub(super) fn note(&mut self, last_token: u64, chosen_through: Slot) {
        let newest = self.next.or(self.waiting).map_or(self.through, |m| m.slot);
        if chosen_through <= newest {
            return;
        }
        let mark = Mark {
            token: last_token,
            slot: chosen_through,
        };
        match self.waiting {
            None => self.waiting = Some(mark),
            Some(_) => self.next = Some(mark),
        }
    }

    /// Writes through `persisted_token` are durable: so are the slots of the marks they cover.
    pub(super) fn on_persisted(&mut self, persisted_token: u64) {
        while let Some(mark) = self.waiting.filter(|m| m.token <= persisted_token) {
            self.through = self.through.max(mark.slot);
            self.waiting = self.next.take();
        }
    }

    /// Drops marks no higher than what is already durable.
    fn drop_covered(&mut self) {
        let covered = |m: &Option<Mark>| m.is_some_and(|m| m.slot <= self.through);
        if covered(&self.next) {
            self.next = None;
        }
        if covered(&self.waiting) {
            self.waiting = self.next.take();
        }
    }

    /// Marks are newer than what is durable and ordered by token and slot; nothing durable is
    /// beyond what this replica has chosen, nor is a mark's token one not issued yet.
    pub(super) fn check_invariants(&self, chosen_through: Slot, last_token: u64) {
        assert!(
            self.through <= chosen_through,
            "durable through {} beyond chosen through {chosen_through}",
            self.through
        );
        if let Some(waiting) = self.waiting {
            assert!(self.through < waiting.slot && waiting.slot <= chosen_through);
            assert!(waiting.token <= last_token, "a mark of a token not issued");
        }
        if let Some(next) = self.next {
            let waiting = self.waiting.expect("a next mark only behind a waiting one");
            assert!(waiting.slot < next.slot && next.slot <= chosen_through);
            assert!(waiting.token <= next.token && next.token <= last_token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_become_durable_only_with_the_token_of_their_writes() {
        let mut learned = LearnedDurably::new();
        learned.note(3, 10);
        learned.on_persisted(2);
        assert_eq!(learned.through(), 0, "token 3 is not durable yet");
        learned.on_persisted(3);
        assert_eq!(learned.through(), 10);
        learned.check_invariants(10, 3);
    }

    #[test]
    fn under_steady_load_the_durable_slot_moves_with_each_persist_round_trip() {
        let mut learned = LearnedDurably::new();
        learned.note(1, 5);
        learned.note(2, 8);
        learned.note(3, 12); // replaces the mark of token 2
        learned.check_invariants(12, 3);
        learned.on_persisted(2);
        assert_eq!(learned.through(), 5, "slot 12 waits for token 3");
        learned.note(4, 20);
        learned.on_persisted(3);
        assert_eq!(learned.through(), 12);
        learned.on_persisted(4);
        assert_eq!(learned.through(), 20);
        learned.check_invariants(20, 4);
    }

    #[test]
    fn what_storage_gave_back_at_start_is_durable_at_once() {
        let mut learned = LearnedDurably::new();
        learned.note(1, 4);
        learned.restored(7);
        assert_eq!(learned.through(), 7);
        learned.check_invariants(7, 1);
        learned.note(2, 7);
        learned.check_invariants(7, 2);
    }

    #[test]
    #[should_panic(expected = "beyond chosen through")]
    fn the_invariant_check_catches_a_durable_slot_beyond_what_is_chosen() {
        let mut learned = LearnedDurably::new();
        learned.restored(9);
        learned.check_invariants(8, 0);
    }
}
