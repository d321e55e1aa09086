//! The replica's view of the group: the configuration in force after its applied slot.
//!
//! It starts as the founding configuration (`ReplicaConfig::nodes`, epoch 0) or as the one a
//! snapshot carries, and follows every `Reconfigure` the learner applies, in slot order. A
//! replica whose own id the configuration names removed stops for good (see `Replica::is_removed`).

use super::config::ReplicaConfig;
use crate::membership::{voters_differ_by_at_most_one, Configuration, MemberKind, Reconfigure};
use crate::types::{NodeId, Slot};

pub(super) struct Members {
    me: NodeId,
    /// Whether this replica runs as a witness (its configuration must name it one).
    witness: bool,
    current: Configuration,
    /// The slot whose chosen change made `current`: 0 for the founding configuration, the
    /// image's slot for a snapshot's.
    since_slot: Slot,
}

impl Members {
    pub(super) fn new(config: &ReplicaConfig) -> Self {
        Self {
            me: config.node_id,
            witness: config.witness,
            current: Configuration::initial(&config.nodes),
            since_slot: 0,
        }
    }

    pub(super) fn current(&self) -> &Configuration {
        &self.current
    }

    pub(super) fn epoch(&self) -> u64 {
        self.current.epoch
    }

    /// The voters, to ask for promises and lease grants.
    pub(super) fn voters(&self) -> Vec<NodeId> {
        self.current.voters().collect()
    }

    /// Every member, to send the log to (learners receive it too).
    pub(super) fn member_ids(&self) -> Vec<NodeId> {
        self.current.member_ids().collect()
    }

    /// Whether this replica is a voter that may lead: a full member with a vote.
    pub(super) fn may_lead(&self) -> bool {
        let member = self.current.members.get(&self.me);
        member.is_some_and(|m| m.voting && m.kind == MemberKind::Full)
    }

    pub(super) fn is_removed(&self, id: NodeId) -> bool {
        self.current.is_removed(id)
    }

    /// This replica was removed from the group: it takes no further part.
    pub(super) fn removed_self(&self) -> bool {
        self.current.is_removed(self.me)
    }

    /// Takes the configuration a snapshot through `slot` carries.
    pub(super) fn adopt(&mut self, configuration: Configuration, slot: Slot) {
        assert!(
            configuration.epoch >= self.current.epoch,
            "a snapshot at slot {slot} carries epoch {} below epoch {} in force",
            configuration.epoch,
            self.current.epoch
        );
        configuration.check_invariants();
        self.current = configuration;
        self.since_slot = self.since_slot.max(slot);
    }

    /// Applies the change chosen at `slot`: it must make the epoch after the one in force, and
    /// alter the voters by at most one (so majorities of the two configurations intersect).
    pub(super) fn apply(&mut self, slot: Slot, reconfigure: &Reconfigure) {
        assert!(slot > self.since_slot, "a change applied out of slot order");
        assert_eq!(
            reconfigure.epoch,
            self.current.epoch + 1,
            "the change at slot {slot} makes epoch {} over epoch {} (two changes at once)",
            reconfigure.epoch,
            self.current.epoch
        );
        let next = match self.current.apply(&reconfigure.change) {
            Ok(next) => next,
            Err(error) => panic!("the change chosen at slot {slot} does not apply: {error}"),
        };
        assert!(voters_differ_by_at_most_one(&self.current, &next));
        self.current = next;
        self.since_slot = slot;
    }

    /// Wrong on purpose (the change-before-chosen mutant): takes the change accepted in some
    /// slot as the configuration in force before it is chosen.
    pub(super) fn apply_before_chosen(&mut self, reconfigure: &Reconfigure) {
        if reconfigure.epoch != self.current.epoch + 1 {
            return;
        }
        if let Ok(next) = self.current.apply(&reconfigure.change) {
            self.current = next;
        }
    }

    /// The configuration is well formed and governs the slots after the applied one.
    pub(super) fn check_invariants(&self, applied_through: Slot) {
        assert!(
            self.since_slot <= applied_through,
            "configuration of slot {} ahead of the applied slot {applied_through}",
            self.since_slot
        );
        self.current.check_invariants();
        assert!(
            !(self.current.is_member(self.me) && self.current.is_removed(self.me)),
            "member and removed at once"
        );
        let named = self.current.members.get(&self.me).map(|m| m.kind);
        assert!(
            named.is_none_or(|kind| (kind == MemberKind::Witness) == self.witness),
            "replica {} runs with witness={} but its configuration names it {named:?}",
            self.me,
            self.witness
        );
    }
}
