//! This replica's own snapshots: when to take one, the one being written, and the newest
//! durable one, which bounds how far the log may be compacted and is what a lagging peer gets
//! when it asks for slots compacted away.

use std::sync::Arc;

use super::config::ReplicaConfig;
use crate::msg::{SnapshotPiece, SnapshotResume};
use crate::mutant::{self, Mutant};
use crate::snapshot::SnapshotImage;
use crate::types::Slot;

/// Largest image a witness keeps: an empty store and a configuration of at most
/// `MEMBERS_MAX` members and `REMOVED_MAX` removed ids.
const WITNESS_IMAGE_BYTES_MAX: u64 = 64 * 1024;

/// How many snapshots a witness takes per snapshot interval of the full replicas, once the
/// compaction floor allows: its image is a configuration only, cheap to write, and each one
/// lets it drop the log below the floor (so it keeps about a hundredth of an interval above it).
const WITNESS_SNAPSHOTS_PER_INTERVAL: u64 = 100;

pub(super) struct Snapshots {
    /// The newest snapshot adopted: written (or being written, when a peer's was installed)
    /// and kept to serve transfers.
    durable: Option<Arc<SnapshotImage>>,
    /// A snapshot written but not yet durable, with its persist token.
    in_flight: Option<(u64, Arc<SnapshotImage>)>,
    interval_slots: u64,
    /// Where this replica's schedule starts within each interval (see [`Self::next_slot`]).
    phase_slots: u64,
    log_retain_slots: u64,
    /// On a witness: its own snapshots hold the configuration and an empty store, never key-value
    /// state, so it serves none to peers and compacts its log only through `full_floor_slot`.
    witness: bool,
    /// The highest slot the master reported every full voter durably holds every chosen value
    /// through, in its snapshot or its log (witnesses only use it).
    full_floor_slot: Slot,
    mutant: Option<Mutant>,
}

impl Snapshots {
    pub(super) fn new(config: &ReplicaConfig) -> Self {
        let interval_slots = config.snapshot_interval_slots;
        let members = config.nodes.len() as u64;
        let place = config.place() as u64;
        assert!(place < members);
        Self {
            durable: None,
            in_flight: None,
            interval_slots,
            phase_slots: place * interval_slots / members,
            log_retain_slots: config.log_retain_slots,
            witness: config.witness,
            full_floor_slot: 0,
            mutant: config.mutant,
        }
    }

    /// The slot the newest adopted snapshot covers through; 0 without one.
    pub(super) fn durable_slot(&self) -> Slot {
        self.durable.as_ref().map_or(0, |i| i.meta.slot)
    }

    /// Whether a snapshot is due once `applied_through` is applied: the next slot of the
    /// schedule is reached (on a witness, by the compaction floor too: a snapshot lets it
    /// compact no further than the floor) and no snapshot is being written.
    pub(super) fn is_due(&self, applied_through: Slot) -> bool {
        let in_flight = self.in_flight.as_ref().map(|(_, i)| i.meta.slot);
        let last = in_flight.unwrap_or(self.durable_slot());
        let reached = match self.witness {
            true => applied_through.min(self.floor_slot()),
            false => applied_through,
        };
        reached >= self.next_slot(last) && self.in_flight.is_none()
    }

    /// The first slot above `last` in this replica's snapshot schedule: every
    /// `snapshot_interval_slots`, shifted by the replica's place among the members times
    /// interval / members. Taking and writing a snapshot holds a replica's event loop for a while
    /// (about 0.3 s with 500,000 keys); staggered, no two replicas of a cluster take theirs at
    /// the same slot, so a majority keeps accepting while one is busy.
    /// A witness's schedule is every hundredth of the interval (at least every slot).
    fn next_slot(&self, last: Slot) -> Slot {
        if self.witness {
            return last + (self.interval_slots / WITNESS_SNAPSHOTS_PER_INTERVAL).max(1);
        }
        let (interval, phase) = (self.interval_slots, self.phase_slots);
        if last < phase {
            return phase; // above 0, since last is not below 0
        }
        ((last - phase) / interval + 1) * interval + phase
    }

    /// `image` is being written with persist `token`.
    pub(super) fn start(&mut self, token: u64, image: Arc<SnapshotImage>) {
        assert!(self.in_flight.is_none(), "one snapshot written at a time");
        assert!(
            image.meta.slot > self.durable_slot(),
            "a snapshot older than the last"
        );
        self.in_flight = Some((token, image));
    }

    /// Every write through `persisted_token` is durable: true if that finished the snapshot
    /// being written, which is now the durable one.
    pub(super) fn on_persisted(&mut self, persisted_token: u64) -> bool {
        let done = |(t, _): &(u64, _)| *t <= persisted_token;
        if !self.in_flight.as_ref().is_some_and(done) {
            return false;
        }
        let (_, image) = self.in_flight.take().expect("checked");
        self.durable = Some(image);
        true
    }

    /// How far the log may be compacted: on a full replica, `log_retain_slots` below the
    /// durable snapshot (a peer that lags a little catches up from the log, not a snapshot);
    /// on a witness, through its durable snapshot and the floor, whichever is lower: every full
    /// voter durably holds what lies at or below the floor, so one that lags needs from the
    /// witness only what lies above it (and a witness serves no snapshot).
    pub(super) fn compaction_point(&self, applied_through: Slot) -> Slot {
        if mutant::is(self.mutant, Mutant::TruncateWithoutSnapshot) {
            return applied_through; // wrong on purpose: beyond what the snapshot covers
        }
        match self.witness {
            true => self.durable_slot().min(self.floor_slot()),
            false => self.durable_slot().saturating_sub(self.log_retain_slots),
        }
    }

    /// The floor a witness compacts to (see [`Self::compaction_point`]).
    fn floor_slot(&self) -> Slot {
        if mutant::is(self.mutant, Mutant::WitnessIgnoresFloor) {
            return Slot::MAX; // wrong on purpose: as if every full voter held everything
        }
        self.full_floor_slot
    }

    /// The master reports that every full voter durably holds every chosen value through
    /// `floor_slot`; true when that lets a witness compact (or snapshot) further.
    pub(super) fn note_full_floor(&mut self, floor_slot: Slot) -> bool {
        if !self.witness || floor_slot <= self.full_floor_slot {
            return false;
        }
        self.full_floor_slot = floor_slot;
        true
    }

    /// Makes `image` the snapshot to serve from (restored at start, or installed from a peer,
    /// which supersedes any snapshot being written).
    pub(super) fn adopt(&mut self, image: Arc<SnapshotImage>, installed: bool) {
        if installed {
            self.in_flight = None;
        }
        self.durable = Some(image);
    }

    /// The piece of the durable snapshot a catch-up request asks for: from where `resume` left
    /// off if it names this snapshot, else from the start.
    /// A witness serves none: its images hold no key-value state.
    pub(super) fn piece(&self, resume: Option<SnapshotResume>) -> Option<SnapshotPiece> {
        if self.witness {
            return None;
        }
        let image = self.durable.as_ref()?;
        let offset = resume
            .filter(|r| r.slot == image.meta.slot)
            .map_or(0, |r| r.offset);
        let bytes = image.chunk_at(offset).to_vec();
        Some(SnapshotPiece {
            meta: image.meta,
            offset,
            bytes,
        })
    }

    /// Snapshots cover only applied slots, the one written is newer than the durable one and
    /// its token not yet durable, and the log is compacted no further than the snapshot.
    pub(super) fn check_invariants(&self, persisted_token: u64, applied: Slot, compacted: Slot) {
        let durable = self.durable_slot();
        assert!(durable <= applied, "a snapshot ahead of the applied state");
        if let Some((token, image)) = &self.in_flight {
            assert!(
                *token > persisted_token,
                "a durable snapshot still in flight"
            );
            assert!(durable < image.meta.slot && image.meta.slot <= applied);
        }
        if self.witness {
            let state_len = self.durable.as_ref().map_or(0, |i| i.meta.body_len);
            assert!(
                state_len <= WITNESS_IMAGE_BYTES_MAX,
                "a witness's snapshot of {state_len} bytes holds more than a configuration"
            );
        }
        let truncates_on_purpose = mutant::is(self.mutant, Mutant::TruncateWithoutSnapshot);
        assert!(
            compacted <= durable || truncates_on_purpose,
            "log compacted through {compacted}, beyond the snapshot at {durable}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{StateMachine, StateMachineConfig};
    use crate::types::Ballot;

    fn image_at(slot: Slot) -> Arc<SnapshotImage> {
        let mut state = StateMachine::new(StateMachineConfig::default());
        state.apply_noop(slot);
        Arc::new(SnapshotImage::capture(&state, 0, Ballot::ZERO))
    }

    fn snapshots(node: u16) -> Snapshots {
        let mut config = ReplicaConfig::new(node, vec![1, 2, 3]);
        config.snapshot_interval_slots = 30;
        config.log_retain_slots = 5;
        Snapshots::new(&config)
    }

    #[test]
    fn each_member_takes_its_snapshots_at_its_own_place_in_the_interval() {
        for (node, first) in [(1, 30), (2, 10), (3, 20)] {
            let snapshots = snapshots(node);
            assert!(!snapshots.is_due(first - 1), "replica {node}");
            assert!(snapshots.is_due(first), "replica {node}");
        }
    }

    #[test]
    fn a_snapshot_becomes_durable_with_its_token_and_then_bounds_compaction() {
        let mut snapshots = snapshots(2);
        snapshots.start(7, image_at(10));
        assert!(!snapshots.is_due(100), "one snapshot written at a time");
        assert_eq!(snapshots.compaction_point(10), 0, "nothing durable yet");
        assert!(!snapshots.on_persisted(6));
        assert!(snapshots.on_persisted(7));
        assert_eq!(snapshots.compaction_point(10), 5);
        snapshots.check_invariants(7, 10, 5);
        assert!(!snapshots.is_due(39) && snapshots.is_due(40));
    }

    #[test]
    #[should_panic(expected = "beyond the snapshot")]
    fn the_invariant_check_catches_a_log_compacted_past_the_snapshot() {
        let mut snapshots = snapshots(2);
        snapshots.start(1, image_at(10));
        snapshots.on_persisted(1);
        snapshots.check_invariants(1, 12, 11);
    }
}
