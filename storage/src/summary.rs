//! What the records of one segment hold, as far as deleting the segment is concerned.

use keyspace_core::{Ballot, Slot, StorageWrite};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Highest slot of an Accept, Learn or Chosen record.
    pub max_slot: Option<Slot>,
    /// Highest ballot of a Promise or Accept record.
    pub max_ballot: Ballot,
    /// Highest slot an intact snapshot covers.
    pub snapshot_slot: Option<Slot>,
    /// Highest compaction point.
    pub compact_through: Option<Slot>,
    /// Something in it failed verification at open.
    pub damaged: bool,
}

impl Summary {
    pub fn note(&mut self, write: &StorageWrite) {
        match write {
            StorageWrite::Promise { ballot } => self.max_ballot = self.max_ballot.max(*ballot),
            StorageWrite::Accept { slot, ballot, .. } => {
                self.max_ballot = self.max_ballot.max(*ballot);
                self.max_slot = self.max_slot.max(Some(*slot));
            }
            StorageWrite::Learn { slot, .. } | StorageWrite::Chosen { slot, .. } => {
                self.max_slot = self.max_slot.max(Some(*slot));
            }
            StorageWrite::Snapshot(image) => {
                self.snapshot_slot = self.snapshot_slot.max(Some(image.meta.slot));
            }
            StorageWrite::Compact { through_slot } => {
                self.compact_through = self.compact_through.max(Some(*through_slot));
            }
        }
    }

    pub fn join(&mut self, other: Summary) {
        let before = *self;
        self.max_slot = self.max_slot.max(other.max_slot);
        self.max_ballot = self.max_ballot.max(other.max_ballot);
        self.snapshot_slot = self.snapshot_slot.max(other.snapshot_slot);
        self.compact_through = self.compact_through.max(other.compact_through);
        self.damaged |= other.damaged;
        assert!(
            self.max_ballot >= before.max_ballot && self.max_slot >= before.max_slot,
            "a summary only grows"
        );
    }

    /// Whether replaying the log without this segment gives the same state, given the
    /// compaction point and what the segments kept after it hold: its log entries are all
    /// compacted, a later snapshot covers them and its own, a later record holds its ballot.
    pub fn redundant(&self, through: Slot, later: &Summary) -> bool {
        let covered = |slot: Option<Slot>| slot.is_none_or(|s| s <= through);
        let superseded = later
            .snapshot_slot
            .is_some_and(|s| s >= through && self.snapshot_slot.is_none_or(|own| own <= s));
        covered(self.max_slot)
            && covered(self.compact_through)
            && superseded
            && self.max_ballot <= later.max_ballot
    }
}
