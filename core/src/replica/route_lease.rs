//! How the replica routes PaxosLease messages and timers to its lease component, and what
//! it does when the lease is won or lost.
//!
//! Across membership changes: a proposer counts the voters of the configuration it has
//! applied (and, while it accepted a change not yet known chosen, of the one that change makes)
//! and names the latest epoch; an acceptor that knows a later configuration (applied, or
//! accepted in a `Reconfigure` not yet known chosen) refuses with [`Outdated`]. A change to epoch `e + 1` is accepted by a majority of the voters
//! of epoch `e`, so a proposer still counting epoch `e` meets a refusal in every majority it
//! can gather.
//!
//! A release needs no epoch: forgetting a grant its owner no longer acts on is safe in any
//! configuration, and the acceptor matches the grant exactly (see [`crate::lease`]).

use std::collections::BTreeSet;

use super::Replica;
use crate::lease::{ProposerAction, Quorum};
use crate::msg::{
    LeaseAccepted, LeasePrepare, LeasePromise, LeasePropose, LeaseRelease, Message, Outdated,
};
use crate::mutant::{self, Mutant};
use crate::types::{Nanos, NodeId};
use rand::Rng;

impl Replica {
    /// The highest epoch this replica knows of: applied, or accepted in a change.
    pub(super) fn epoch_floor(&self) -> u64 {
        self.members
            .epoch()
            .max(self.acceptor.reconfigure_epoch_max())
    }

    /// Whether this replica answers a lease message of `epoch`: it knows of no later
    /// configuration (else it tells the sender so), and it is not recovering damaged storage.
    /// A replica that does not vote in its own view answers too: it may be a voter of the
    /// proposer's later configuration, not yet learned, and a grant counts only where the
    /// proposer counts it.
    ///
    /// A recovering replica may have forgotten a change it accepted, and the refusal that
    /// change owes a stale proposer is what makes every majority of the older configuration
    /// meet one: its epoch floor is a lower bound it cannot trust, so it grants nothing until
    /// recovery has taught it every change a majority accepted (as it votes in no log quorum).
    fn answers_lease(&mut self, from: NodeId, epoch: u64) -> bool {
        if epoch < self.epoch_floor() {
            self.send_outdated(from);
            return false;
        }
        self.recovery.is_none() || mutant::is(self.config.mutant, Mutant::RecoveringGrantsLease)
    }

    pub(super) fn send_outdated(&mut self, to: NodeId) {
        let pending = self.acceptor.pending_change_at();
        let outdated = Outdated {
            epoch: self.members.epoch(),
            chosen_through: self.learner.chosen_through(),
            pending: pending.map(|(slot, change)| (slot, change.clone())),
        };
        self.outbox.send(to, Message::Outdated(outdated));
    }

    /// A peer knows a later configuration: catch up from it, and count the voters of a change
    /// it accepted beyond this replica's configuration in the next lease attempts.
    pub(super) fn on_outdated(&mut self, now_ns: Nanos, from: NodeId, msg: Outdated) {
        if msg.epoch > self.members.epoch() && msg.chosen_through > self.learner.chosen_through() {
            self.note_chosen_elsewhere(now_ns, from, msg.chosen_through);
        }
        if let Some((slot, change)) = msg.pending {
            self.lease.note_change_heard(slot, change);
        }
    }

    pub(super) fn on_lease_prepare(&mut self, now_ns: Nanos, from: NodeId, msg: LeasePrepare) {
        if !self.answers_lease(from, msg.epoch) {
            return;
        }
        if let Some(reply) = self.lease.on_prepare(now_ns, &msg) {
            self.outbox.send(from, Message::LeasePromise(reply));
        }
    }

    pub(super) fn on_lease_propose(&mut self, now_ns: Nanos, from: NodeId, msg: LeasePropose) {
        if !self.answers_lease(from, msg.epoch) {
            return;
        }
        if let Some(reply) = self.lease.on_propose(now_ns, &msg) {
            self.outbox.send(from, Message::LeaseAccepted(reply));
        }
    }

    /// The owner of a grant gave it up. Honoured whatever the epoch and while recovering: it
    /// only ever clears a grant nobody acts on.
    pub(super) fn on_lease_release(&mut self, now_ns: Nanos, from: NodeId, msg: LeaseRelease) {
        self.lease.on_release(now_ns, from, &msg);
    }

    /// Stops holding and extending the lease, then tells every member to forget the grants
    /// this replica may have open, naming `successor`, if any, to ask for the lease at once.
    /// The members of the configuration applied are every voter a proposer counts now (a
    /// pending change adds a voter only by promoting a member); a voter removed since the lease
    /// was granted counts in no majority any more.
    pub(super) fn give_up_lease(&mut self, successor: Option<NodeId>) {
        let grants = self.lease.release();
        let mut to = self.members.member_ids();
        to.extend(successor.filter(|id| !to.contains(id)));
        for grant in grants {
            let release = LeaseRelease { grant, successor };
            self.outbox.broadcast(&to, Message::LeaseRelease(release));
        }
    }

    pub(super) fn on_lease_promise(&mut self, now_ns: Nanos, from: NodeId, msg: LeasePromise) {
        let action = self.lease.on_promise(from, &msg);
        self.on_proposer_action(now_ns, action);
    }

    pub(super) fn on_lease_accepted(&mut self, now_ns: Nanos, from: NodeId, msg: LeaseAccepted) {
        let action = self.lease.on_accepted(from, &msg);
        self.on_proposer_action(now_ns, action);
    }

    /// The voters a lease attempt counts: those of the configuration applied and, while this
    /// replica has accepted a change to the next epoch not yet known chosen, those of the
    /// configuration it makes too (a lease then meets every lease of either). None while it
    /// accepted a change further ahead: it catches up first.
    fn catch_up_with_accepted_change(&mut self, now_ns: Nanos) {
        let me = self.config.node_id;
        let others: Vec<NodeId> = self
            .members
            .voters()
            .into_iter()
            .filter(|id| *id != me)
            .collect();
        let (Some(through), false) = (self.acceptor.last_accepted_slot(), others.is_empty()) else {
            return;
        };
        let peer = others[self.rng.gen_range(0..others.len())];
        self.note_chosen_elsewhere(now_ns, peer, through);
    }

    pub(super) fn lease_quorum(&self) -> Option<Quorum> {
        let current = self.members.current();
        if mutant::is(self.config.mutant, Mutant::LeaseOldMajority) {
            // Wrong on purpose: the founding voters, whatever changed since.
            let founding: BTreeSet<NodeId> = self.config.nodes.iter().copied().collect();
            return Some(Quorum {
                epoch: current.epoch,
                voter_sets: vec![founding],
            });
        }
        let mut quorum = Quorum {
            epoch: current.epoch,
            voter_sets: vec![current.voters().collect()],
        };
        // A tracked change is never one known chosen (asserted after every input), so its slot
        // is above the applied one. Defence, not a fix: one whose epoch is in force already was
        // accepted from a master of an older view and can never be chosen there (every chosen
        // change makes the epoch after the one in force: `Members::apply` asserts it), so it
        // adds no voters; without this rule the replica would ask for no lease until that slot
        // is learned, which may need a master.
        let pending = self.acceptor.pending_change();
        if let Some(pending) = pending.filter(|p| p.epoch > current.epoch) {
            if pending.epoch != current.epoch + 1 {
                return None;
            }
            let next = current.apply(&pending.change).ok()?;
            quorum.epoch = next.epoch;
            quorum.voter_sets.push(next.voters().collect());
        }
        // A change another voter accepted (and refused this replica's lease for) that this
        // replica never accepted: counted like its own, while its slot is not applied here.
        let applied = self.learner.applied_through();
        let heard = self.lease.change_heard(applied, current.epoch + 1);
        if let Some(next) = heard.and_then(|change| current.apply(&change.change).ok()) {
            let voters: BTreeSet<NodeId> = next.voters().collect();
            if !quorum.voter_sets.contains(&voters) {
                quorum.epoch = next.epoch;
                quorum.voter_sets.push(voters);
            }
        }
        Some(quorum)
    }

    pub(super) fn on_proposer_action(&mut self, now_ns: Nanos, action: ProposerAction) {
        match action {
            ProposerAction::None => {}
            ProposerAction::Prepare(m) => {
                let to = self.lease.attempt_voters();
                self.outbox.broadcast(&to, Message::LeasePrepare(m));
            }
            ProposerAction::Propose(m) => {
                let to = self.lease.attempt_voters();
                self.outbox.broadcast(&to, Message::LeasePropose(m));
            }
            ProposerAction::Acquired { .. } => {
                self.lease.set_master_hint(Some(self.config.node_id));
                if self.leader.is_none() {
                    self.become_leader(now_ns);
                }
            }
            ProposerAction::Failed => self.lease.schedule_attempt(now_ns, &mut self.rng),
        }
    }

    /// Lets the lease run out or extends it; a master whose lease ran out steps down. Only a
    /// full voter asks for the lease.
    pub(super) fn tick_lease(&mut self, now_ns: Nanos) {
        self.lease.expire(now_ns, &mut self.rng);
        if self.leader.is_some() && self.lease.held_until(now_ns).is_none() {
            self.step_down(None);
        }
        let may_lead = self.members.may_lead();
        if may_lead && self.lease.should_start(now_ns, self.recovery.is_some()) {
            let Some(quorum) = self.lease_quorum() else {
                // Not caught up with the changes it accepted: learn them, and try again after a
                // backoff. It asks a voter at random each time: no master may be left to tell
                // it (the only replicas that know may be witnesses, which never lead).
                self.lease.schedule_attempt(now_ns, &mut self.rng);
                self.catch_up_with_accepted_change(now_ns);
                return;
            };
            let action = self.lease.start(now_ns, quorum, &mut self.rng);
            self.on_proposer_action(now_ns, action);
        }
    }
}
