//! What a replica keeps on durable storage, as plain data.
//!
//! The replica emits [`StorageWrite`]s in `Output::Persist`; the shell makes them durable in
//! order and then calls `handle_persisted`. On restart the shell replays every write that was
//! durable into a [`DurableState`] (with [`DurableState::apply`]) and hands it to
//! `Replica::new`. Record framing and checksums belong to the storage format, not to this type.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::msg::LogValue;
use crate::snapshot::SnapshotImage;
use crate::types::{Ballot, Slot};

/// One durable change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageWrite {
    /// The log acceptor promised `ballot`.
    Promise { ballot: Ballot },
    /// The log acceptor accepted `value` for `slot` in `ballot`.
    Accept {
        slot: Slot,
        ballot: Ballot,
        value: LogValue,
    },
    /// The replica learned that `value` is chosen for `slot`.
    Learn { slot: Slot, value: LogValue },
    /// The value this replica accepted for `slot` in `ballot` (an earlier `Accept` record) is
    /// chosen. Saves writing the value twice on the common path. The ballot binds the record
    /// to that one accept: if a later accept record of the slot was lost to corruption, an
    /// older accepted value must not be taken for the chosen one.
    Chosen { slot: Slot, ballot: Ballot },
    /// A snapshot of the applied state; replaces any older one. Shared, not copied: the
    /// replica keeps the same image to serve catch-up from.
    Snapshot(Arc<SnapshotImage>),
    /// Log entries at or below `through_slot` are covered by the durable snapshot: drop them.
    Compact { through_slot: Slot },
}

/// Everything a replica recovers from its own storage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableState {
    pub promised: Ballot,
    /// Accepted but not known to be chosen.
    pub accepted: BTreeMap<Slot, (Ballot, LogValue)>,
    /// Known to be chosen.
    pub chosen: BTreeMap<Slot, LogValue>,
    /// The newest durable snapshot, if any.
    pub snapshot: Option<Arc<SnapshotImage>>,
    /// Set by the loader when anything failed verification other than a torn tail (a record
    /// cut short by a crash mid-write, which was never acknowledged): a checksum mismatch, a
    /// read error, a snapshot that does not verify. The replica may then have forgotten promises
    /// or accepted values, and must not vote until it has recovered them from its peers.
    pub damaged: bool,
}

impl DurableState {
    /// Nothing was ever durable: no promise, no accept, nothing chosen, no snapshot, no damage.
    pub fn is_empty(&self) -> bool {
        self.promised == Ballot::ZERO
            && self.accepted.is_empty()
            && self.chosen.is_empty()
            && self.snapshot.is_none()
            && !self.damaged
    }

    /// The slot the durable snapshot covers through, if there is one.
    pub fn snapshot_slot(&self) -> Option<Slot> {
        self.snapshot.as_ref().map(|image| image.meta.slot)
    }

    /// Replays one write. Replaying a prefix of the writes a replica emitted yields the state it
    /// had when that prefix was durable.
    pub fn apply(&mut self, write: &StorageWrite) {
        match write {
            StorageWrite::Promise { ballot } => {
                self.promised = self.promised.max(*ballot);
            }
            StorageWrite::Accept {
                slot,
                ballot,
                value,
            } => {
                if !self.chosen.contains_key(slot) {
                    self.accepted.insert(*slot, (*ballot, value.clone()));
                }
                self.promised = self.promised.max(*ballot);
            }
            StorageWrite::Learn { slot, value } => {
                self.accepted.remove(slot);
                self.chosen.insert(*slot, value.clone());
            }
            StorageWrite::Chosen { slot, ballot } => match self.accepted.get(slot) {
                Some((accepted, _)) if accepted == ballot => {
                    let (_, value) = self.accepted.remove(slot).expect("present");
                    self.chosen.insert(*slot, value);
                }
                // The accept record it names was lost to corruption: what it said is gone.
                _ => self.damaged = true,
            },
            StorageWrite::Snapshot(image) => {
                let newer = self.snapshot_slot().is_none_or(|s| image.meta.slot > s);
                if newer {
                    self.snapshot = Some(image.clone());
                }
            }
            StorageWrite::Compact { through_slot } => {
                self.chosen = self.chosen.split_off(&(through_slot + 1));
                self.accepted = self.accepted.split_off(&(through_slot + 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(slot: Slot, round: u64, value: LogValue) -> StorageWrite {
        let ballot = Ballot { round, node: 1 };
        StorageWrite::Accept {
            slot,
            ballot,
            value,
        }
    }

    #[test]
    fn state_is_empty_only_when_nothing_was_written_and_nothing_failed_verification() {
        assert!(DurableState::default().is_empty());
        let mut promised = DurableState::default();
        promised.apply(&StorageWrite::Promise {
            ballot: Ballot { round: 1, node: 2 },
        });
        assert!(!promised.is_empty());
        let mut accepted = DurableState::default();
        accepted.apply(&accept(1, 1, LogValue::Noop));
        assert!(!accepted.is_empty());
        let damaged = DurableState {
            damaged: true,
            ..DurableState::default()
        };
        assert!(!damaged.is_empty());
    }

    #[test]
    fn a_chosen_record_takes_the_value_of_the_accept_it_names() {
        let mut state = DurableState::default();
        state.apply(&accept(3, 1, LogValue::Noop));
        let chosen = StorageWrite::Chosen {
            slot: 3,
            ballot: Ballot { round: 1, node: 1 },
        };
        state.apply(&chosen);
        assert_eq!(state.chosen.get(&3), Some(&LogValue::Noop));
        assert!(!state.damaged);
    }

    #[test]
    fn a_chosen_record_whose_accept_was_lost_marks_damage_instead_of_taking_an_older_value() {
        let mut state = DurableState::default();
        state.apply(&accept(3, 1, LogValue::Batch(Vec::new().into())));
        // The accept of round 2 (a different value) was lost to corruption.
        let chosen = StorageWrite::Chosen {
            slot: 3,
            ballot: Ballot { round: 2, node: 1 },
        };
        state.apply(&chosen);
        assert_eq!(state.chosen.get(&3), None);
        assert!(state.damaged);
    }
}
