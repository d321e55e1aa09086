//! How the replica routes PaxosLease messages and timers to its lease component, and what
//! it does when the lease is won or lost.

use super::Replica;
use crate::lease::ProposerAction;
use crate::msg::{LeaseAccepted, LeasePrepare, LeasePromise, LeasePropose, Message};
use crate::types::{Nanos, NodeId};

impl Replica {
    pub(super) fn on_lease_prepare(&mut self, now_ns: Nanos, from: NodeId, msg: LeasePrepare) {
        if let Some(reply) = self.lease.on_prepare(now_ns, &msg) {
            self.outbox.send(from, Message::LeasePromise(reply));
        }
    }

    pub(super) fn on_lease_propose(&mut self, now_ns: Nanos, from: NodeId, msg: LeasePropose) {
        if let Some(reply) = self.lease.on_propose(now_ns, &msg) {
            self.outbox.send(from, Message::LeaseAccepted(reply));
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

    pub(super) fn on_proposer_action(&mut self, now_ns: Nanos, action: ProposerAction) {
        match action {
            ProposerAction::None => {}
            ProposerAction::Prepare(m) => self
                .outbox
                .broadcast(&self.config.nodes, Message::LeasePrepare(m)),
            ProposerAction::Propose(m) => self
                .outbox
                .broadcast(&self.config.nodes, Message::LeasePropose(m)),
            ProposerAction::Acquired { .. } => {
                self.lease.set_master_hint(Some(self.config.node_id));
                if self.leader.is_none() {
                    self.become_leader(now_ns);
                }
            }
            ProposerAction::Failed => self.lease.schedule_attempt(now_ns, &mut self.rng),
        }
    }

    /// Lets the lease run out or extends it; a master whose lease ran out steps down.
    pub(super) fn tick_lease(&mut self, now_ns: Nanos) {
        self.lease.expire(now_ns, &mut self.rng);
        if self.leader.is_some() && self.lease.held_until(now_ns).is_none() {
            self.step_down(None);
        }
        if self.lease.should_start(now_ns, self.recovery.is_some()) {
            let action = self.lease.start(now_ns);
            self.on_proposer_action(now_ns, action);
        }
    }
}
