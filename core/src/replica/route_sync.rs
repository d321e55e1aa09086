//! How the replica routes catching up with peers, its own snapshots and compaction, and
//! recovery from damaged storage.

use std::sync::Arc;

use rand::Rng;

use super::catchup::CATCHUP_ENTRIES_MAX;
use super::Replica;
use crate::kv::StateMachine;
use crate::membership::Configuration;
use crate::msg::{CatchupReply, CatchupRequest, Message, RecoveryQuery, RecoveryReport};
use crate::snapshot::SnapshotImage;
use crate::storage::StorageWrite;
use crate::types::{Nanos, NodeId, Slot};

impl Replica {
    /// `peer` has chosen through `through`, beyond this replica: catch up from it.
    pub(super) fn note_chosen_elsewhere(&mut self, now_ns: Nanos, peer: NodeId, through: Slot) {
        if self.catchup.note_target(now_ns, peer, through) {
            self.request_catchup(now_ns);
        }
    }

    pub(super) fn request_catchup(&mut self, now_ns: Nanos) {
        let chosen_through = self.learner.chosen_through();
        if let Some((peer, request)) = self.catchup.request(now_ns, chosen_through) {
            self.outbox.send(peer, Message::CatchupRequest(request));
        }
    }

    /// A witness had compacted the slots this replica lacks, and has no snapshot to give
    /// instead: catch up from a full voter other than this replica (one at random each time),
    /// at the next retry.
    fn catch_up_from_full(&mut self, now_ns: Nanos, through: Slot) {
        let config = self.members.current();
        let me = self.config.node_id;
        let full: Vec<NodeId> = config.full_voters().filter(|id| *id != me).collect();
        if full.is_empty() {
            return;
        }
        let source = full[self.rng.gen_range(0..full.len())];
        assert!(!config.is_witness(source), "a full voter is a witness");
        self.catchup.note_target(now_ns, source, through);
    }

    /// Asks again when a request or its answer was lost.
    pub(super) fn tick_catchup(&mut self, now_ns: Nanos) {
        if self.catchup.is_due(now_ns) {
            self.request_catchup(now_ns);
        }
    }

    /// Answers with chosen values while the log still holds `from_slot`, else with a piece of
    /// the snapshot that covers it.
    pub(super) fn on_catchup_request(&mut self, from: NodeId, msg: CatchupRequest) {
        assert!(msg.from_slot > 0, "catch-up asked from slot 0");
        let mut reply = CatchupReply {
            from_slot: msg.from_slot,
            values: Vec::new(),
            chosen_through: self.learner.chosen_through(),
            snapshot: None,
        };
        if msg.from_slot > self.learner.compacted_through() {
            reply.values = self.learner.values_from(msg.from_slot, CATCHUP_ENTRIES_MAX);
        } else {
            reply.snapshot = self.snapshots.piece(msg.resume);
        }
        self.outbox.send(from, Message::CatchupReply(reply));
    }

    pub(super) fn on_catchup_reply(&mut self, now_ns: Nanos, from: NodeId, msg: CatchupReply) {
        assert!(
            msg.values.len() <= CATCHUP_ENTRIES_MAX,
            "oversized catch-up reply"
        );
        assert!(msg.from_slot > 0, "catch-up values from slot 0");
        let before = self.catchup.progress(self.learner.chosen_through());
        // A witness sends no snapshot (it has none of the state); never take one from it.
        let from_witness = self.members.current().is_witness(from);
        let behind = msg.chosen_through > self.learner.chosen_through();
        if from_witness && behind && msg.values.is_empty() && msg.snapshot.is_none() {
            return self.catch_up_from_full(now_ns, msg.chosen_through);
        }
        if let Some(piece) = msg.snapshot.filter(|_| !from_witness) {
            let chosen_through = self.learner.chosen_through();
            if let Some((image, state, members)) =
                self.catchup.on_piece(from, piece, chosen_through)
            {
                self.install_snapshot(image, state, members);
            }
        }
        for (i, value) in msg.values.into_iter().enumerate() {
            let slot = msg.from_slot + i as Slot;
            if slot > self.learner.compacted_through() {
                self.learn(slot, value);
            }
        }
        if self.catchup.progress(self.learner.chosen_through()) == before {
            // A duplicate or a stale answer. Asking again now would let every duplicated
            // reply start a chain of its own; the retry timer asks instead.
            return;
        }
        self.catchup.answered();
        if self.learner.chosen_through() < msg.chosen_through {
            self.note_chosen_elsewhere(now_ns, from, msg.chosen_through);
        }
    }
}

impl Replica {
    /// Takes a snapshot once the next slot of this replica's schedule has been applied.
    pub(super) fn maybe_snapshot(&mut self) {
        if !self.snapshots.is_due(self.learner.applied_through()) {
            return;
        }
        let image = Arc::new(SnapshotImage::capture_configured(
            self.learner.state(),
            self.learner.applied_chain(),
            self.acceptor.promised(),
            Some(self.members.current()),
        ));
        let token = self
            .outbox
            .persist(vec![StorageWrite::Snapshot(image.clone())]);
        self.snapshots.start(token, image);
    }

    /// Drops log entries the durable snapshot covers, keeping `log_retain_slots` below it.
    pub(super) fn compact(&mut self) {
        let through = self
            .snapshots
            .compaction_point(self.learner.applied_through());
        if through <= self.learner.compacted_through() {
            return;
        }
        self.learner.drop_through(through);
        self.acceptor.drop_through(through);
        self.outbox.persist(vec![StorageWrite::Compact {
            through_slot: through,
        }]);
    }

    /// Replaces this replica's state with a verified snapshot from a peer.
    pub(super) fn install_snapshot(
        &mut self,
        image: Arc<SnapshotImage>,
        state: StateMachine,
        members: Option<Configuration>,
    ) {
        assert!(image.meta.slot > self.learner.chosen_through());
        let (image, state) = match self.config.witness {
            true => self.witness_image(&image, members.as_ref()),
            false => (image, state),
        };
        self.outbox.persist(vec![
            StorageWrite::Snapshot(image.clone()),
            StorageWrite::Compact {
                through_slot: image.meta.slot,
            },
        ]);
        self.adopt_snapshot(image, state, members, true);
        self.advance_chosen();
    }

    /// What a witness keeps of a full replica's image: the slot, chain and configuration,
    /// over an empty store (it holds no key-value state, so it never serves or keeps any).
    fn witness_image(
        &self,
        image: &SnapshotImage,
        members: Option<&Configuration>,
    ) -> (Arc<SnapshotImage>, StateMachine) {
        let mut empty = StateMachine::new(self.config.state_machine);
        empty.apply_noop(image.meta.slot);
        let kept = SnapshotImage::capture_configured(
            &empty,
            image.meta.applied_chain,
            image.meta.promised,
            members,
        );
        assert_eq!(kept.meta.slot, image.meta.slot);
        (Arc::new(kept), empty)
    }

    /// Makes `state` (restored from `image`) the applied state, and `members` (the
    /// configuration the image carries, if any) the one in force; entries it covers are
    /// dropped.
    pub(super) fn adopt_snapshot(
        &mut self,
        image: Arc<SnapshotImage>,
        state: StateMachine,
        members: Option<Configuration>,
        installed: bool,
    ) {
        if let Some(members) = members {
            self.members.adopt(members, image.meta.slot);
        }
        self.learner.adopt(&image.meta, state, !installed);
        self.acceptor.drop_through(image.meta.slot);
        self.snapshots.adopt(image, installed);
    }
}

impl Replica {
    pub(super) fn tick_recovery(&mut self, now_ns: Nanos) {
        let Some(recovery) = &mut self.recovery else {
            return;
        };
        let (voters, me) = (self.members.voters(), self.config.node_id);
        let retry_ns = self.config.retransmit_interval_ns;
        let Some((silent, query)) = recovery.queries(now_ns, retry_ns, &voters, me) else {
            return;
        };
        for to in silent {
            self.outbox.send(to, Message::RecoveryQuery(query.clone()));
        }
    }

    pub(super) fn on_recovery_query(&mut self, from: NodeId, msg: RecoveryQuery) {
        let last = |m: Option<Slot>| m.unwrap_or(0);
        let log_end_slot = last(self.learner.last_chosen_slot())
            .max(last(self.acceptor.last_accepted_slot()))
            .max(self.learner.chosen_through())
            .max(self.learner.compacted_through());
        let report = RecoveryReport {
            nonce: msg.nonce,
            trusted: self.recovery.is_none(),
            promised: self.acceptor.promised(),
            log_end_slot,
            chosen_through: self.learner.chosen_through(),
            epoch: self.members.epoch(),
        };
        self.outbox.send(from, Message::RecoveryReport(report));
    }

    pub(super) fn on_recovery_report(&mut self, now_ns: Nanos, from: NodeId, msg: RecoveryReport) {
        let (voters, me) = (self.members.voters(), self.config.node_id);
        let Some(recovery) = &mut self.recovery else {
            return;
        };
        let epoch = self.members.epoch();
        let Some(findings) = recovery.on_report(from, msg, &voters, me, epoch) else {
            return;
        };
        let promised = findings.promised;
        if let Some(write) = promised.and_then(|p| self.acceptor.adopt_recovered_promise(p)) {
            self.outbox.persist(vec![write]);
        }
        let chosen_through = self.learner.chosen_through();
        if let Some((through, peer)) = findings.ahead.filter(|(t, _)| *t > chosen_through) {
            self.note_chosen_elsewhere(now_ns, peer, through);
        }
        self.finish_recovery_if_caught_up();
    }

    pub(super) fn finish_recovery_if_caught_up(&mut self) {
        let chosen_through = self.learner.chosen_through();
        if self
            .recovery
            .as_ref()
            .is_some_and(|r| r.is_caught_up(chosen_through))
        {
            self.recovery = None;
        }
    }
}
