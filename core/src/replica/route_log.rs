//! How the replica routes the Multi-Paxos log: mastership (phase 1 and 2 as proposer), the
//! log acceptor, and learning and applying chosen values.

use std::collections::BTreeSet;

use super::leader::{Leader, PrepareStatus};
use super::Replica;
use crate::membership::Reconfigure;
use crate::msg::{
    Accept, Accepted, Commit, LogValue, Message, Nack, Prepare, Progress, Promise, SlotReport,
};
use crate::mutant::{self, Mutant};
use crate::storage::StorageWrite;
use crate::types::{Ballot, Nanos, NodeId, Slot};

use super::leader::Stamp;

impl Replica {
    /// Starts log phase 1 over every slot not known to be chosen.
    pub(super) fn become_leader(&mut self, now_ns: Nanos) {
        assert!(self.leader.is_none());
        let ballot = self.acceptor.next_ballot(self.config.node_id);
        let from_slot = self.learner.chosen_through() + 1;
        let applied_through = self.learner.applied_through();
        let base = self.members.current();
        let (leader, prepare) = Leader::start(
            ballot,
            from_slot,
            applied_through,
            now_ns,
            &self.config,
            base,
        );
        self.leader = Some(leader);
        let voters = self.members.voters();
        self.outbox.broadcast(&voters, Message::Prepare(prepare));
    }

    /// Gives up mastership, answering every request it still holds.
    pub(super) fn step_down(&mut self, hint: Option<NodeId>) {
        let Some(leader) = self.leader.take() else {
            return;
        };
        for response in leader.step_down(hint) {
            self.outbox.push_reply(response);
        }
        self.lease.set_master_hint(hint);
    }

    /// Another replica leads with a higher ballot: stop leading, and stop extending a lease
    /// this replica no longer acts on (giving up a lease early is always safe).
    pub(super) fn yield_to(&mut self, master: NodeId) {
        self.step_down(Some(master));
        self.give_up_lease(None);
    }

    pub(super) fn on_promise(&mut self, now_ns: Nanos, from: NodeId, msg: Promise) {
        let Some(leader) = &mut self.leader else {
            return;
        };
        let prepare = Prepare {
            ballot: msg.ballot,
            from_slot: msg.from_slot,
        };
        let compacted = msg.compacted_through;
        match leader.on_promise(from, msg) {
            PrepareStatus::Waiting { ask } => {
                // Voters of a configuration a change found makes: they must promise too.
                for to in ask {
                    self.outbox.send(to, Message::Prepare(prepare.clone()));
                }
            }
            PrepareStatus::Outdated => {
                // A change this replica never applied hides in compacted slots: learn it
                // first; the next lease extension starts a mastership over.
                self.step_down(None);
                self.note_chosen_elsewhere(now_ns, from, compacted);
            }
            PrepareStatus::Done => {
                let (compacted, holder, learned) =
                    leader.finish_prepare(self.config.node_id, self.config.mutant);
                for (slot, value) in learned {
                    self.learn(slot, value);
                }
                if compacted > self.learner.chosen_through() {
                    self.note_chosen_elsewhere(now_ns, holder, compacted);
                }
                self.fill_window();
            }
        }
    }

    /// Proposes recovery slots, then batches of pending writes, while the window has room.
    pub(super) fn fill_window(&mut self) {
        let Some(leader) = &mut self.leader else {
            return;
        };
        let last_state_hash = self.learner.last_state_hash();
        let applied_through = self.learner.applied_through();
        let members = self.members.member_ids();
        let stamp = stamp(self.wall_ms, self.learner.state());
        while let Some(accept) =
            leader.next_accept(last_state_hash, &self.config, applied_through, stamp)
        {
            self.outbox.broadcast(&members, Message::Accept(accept));
        }
    }

    pub(super) fn on_accepted(&mut self, now_ns: Nanos, from: NodeId, msg: Accepted) {
        let Some(leader) = &mut self.leader else {
            return;
        };
        if msg.ballot == leader.ballot() {
            leader.note_progress(from, now_ns, (0, 0));
        }
        let in_force = self.members.current();
        let Some((slot, value)) = leader.on_accepted(from, &msg, in_force, self.config.mutant)
        else {
            return;
        };
        let ballot = leader.ballot();
        // A member a change at this slot removes hears of it too.
        let mut to: BTreeSet<NodeId> = self.members.member_ids().into_iter().collect();
        self.learn(slot, value);
        to.extend(self.members.member_ids());
        let chosen_through = self.learner.chosen_through();
        let commit = Commit {
            ballot,
            chosen_through,
            durable_floor: self.durable_floor(),
        };
        let to: Vec<NodeId> = to.into_iter().collect();
        self.outbox
            .broadcast_to_others(&to, Message::Commit(commit));
        self.fill_window();
    }

    pub(super) fn on_nack(&mut self, now_ns: Nanos, msg: Nack) {
        self.acceptor.observe(msg.highest);
        let Some(leader) = &self.leader else {
            return;
        };
        if msg.ballot != leader.ballot() || msg.highest <= leader.ballot() {
            return;
        }
        // A higher ballot exists: this mastership's phase 1 or 2 cannot finish. Start over
        // with a higher ballot if the lease is still ours.
        self.step_down(None);
        if self.lease.held_until(now_ns).is_some() {
            self.become_leader(now_ns);
        }
    }

    /// Sends a due heartbeat, then whatever prepares and accepts are due to be sent again.
    pub(super) fn tick_leader(&mut self, now_ns: Nanos) {
        let durable_floor = self.durable_floor();
        let Some(leader) = &mut self.leader else {
            return;
        };
        let chosen_through = self.learner.chosen_through();
        let interval_ns = self.config.heartbeat_interval_ns;
        let members = self.members.member_ids();
        if let Some(commit) = leader.heartbeat(now_ns, interval_ns, chosen_through, durable_floor) {
            self.outbox
                .broadcast_to_others(&members, Message::Commit(commit));
        }
        let interval_ns = self.config.retransmit_interval_ns;
        for (to, msg) in leader.retransmissions(now_ns, interval_ns, &members) {
            self.outbox.send(to, msg);
        }
        // Keys may have come due since the last entry: their reclaiming entry goes out now.
        self.fill_window();
    }
}

/// The time the master stamps on what it proposes now: its clock, but never below the time
/// of the state it applied (a previous master's clock may have been ahead), so stamps do not
/// go back across masters; and whether a key is due by then (an entry should reclaim it).
fn stamp(wall_ms: u64, state: &crate::kv::StateMachine) -> Stamp {
    let applied_ms = u64::try_from(state.now_ms()).expect("the state's time is not negative");
    let now_ms = wall_ms.max(applied_ms);
    let due = state
        .next_deadline_ms()
        .is_some_and(|at| u64::try_from(at).map_or(true, |at| at < now_ms));
    assert!(now_ms >= applied_ms, "a stamp below the applied time");
    Stamp {
        now_ms,
        expiry_due: due,
    }
}

impl Replica {
    /// Notes `ballot`, and answers a `Nack` if it is below this acceptor's promise.
    pub(super) fn refuse_lower_ballot(&mut self, from: NodeId, ballot: Ballot) -> bool {
        let Some(nack) = self.acceptor.refuses(ballot, self.config.mutant) else {
            return false;
        };
        self.outbox.send(from, Message::Nack(nack));
        true
    }

    pub(super) fn on_prepare(&mut self, from: NodeId, msg: Prepare) {
        assert!(msg.from_slot > 0, "a prepare from slot 0");
        if self.recovery.is_some() {
            return; // not voting until recovered
        }
        if self.refuse_lower_ballot(from, msg.ballot) {
            return;
        }
        if from != self.config.node_id && self.leader.is_some() {
            self.yield_to(from); // a newer master is taking over
        }
        let write = self.acceptor.promise(msg.ballot);
        let token = self.outbox.persist(vec![write]);
        let promise = Promise {
            ballot: msg.ballot,
            from_slot: msg.from_slot,
            slots: self.slot_reports(msg.from_slot),
            compacted_through: self.learner.compacted_through(),
            epoch: self.members.epoch(),
        };
        self.outbox
            .send_after(token, from, Message::Promise(promise));
    }

    /// Every slot from `from_slot` on that this replica knows chosen or has accepted.
    pub(super) fn slot_reports(&self, from_slot: Slot) -> Vec<SlotReport> {
        let chosen = self.learner.reports_from(from_slot);
        chosen
            .chain(self.acceptor.reports_from(from_slot))
            .collect()
    }

    pub(super) fn on_accept(&mut self, now_ns: Nanos, from: NodeId, msg: Accept) {
        if self.recovery.is_some() {
            return; // not voting until recovered
        }
        if self.refuse_lower_ballot(from, msg.ballot) {
            return;
        }
        if from != self.config.node_id {
            self.note_master_contact(now_ns, from, msg.ballot);
        }
        if let LogValue::Reconfigure(change) = &msg.value {
            if mutant::is(self.config.mutant, Mutant::ChangeBeforeChosen) {
                self.members.apply_before_chosen(change);
            }
        }
        let chosen = self.learner.is_chosen(msg.slot);
        let write = self
            .acceptor
            .accept(msg.slot, msg.ballot, msg.value, chosen);
        let token = self.outbox.persist(vec![write]);
        let accepted = Accepted {
            ballot: msg.ballot,
            slot: msg.slot,
        };
        self.outbox
            .send_after(token, from, Message::Accepted(accepted));
    }

    pub(super) fn note_master_contact(&mut self, now_ns: Nanos, master: NodeId, ballot: Ballot) {
        if self.leader.as_ref().is_some_and(|l| l.ballot() < ballot) {
            self.yield_to(master);
        }
        self.lease.note_master(now_ns, master);
    }
}

impl Replica {
    pub(super) fn on_commit(&mut self, now_ns: Nanos, from: NodeId, msg: Commit) {
        self.note_master_contact(now_ns, from, msg.ballot);
        if self.snapshots.note_full_floor(msg.durable_floor) {
            self.maybe_snapshot();
            self.compact();
        }
        let mut slot = self.learner.chosen_through() + 1;
        while slot <= msg.chosen_through {
            if !self.learner.is_chosen(slot) {
                match self.acceptor.accepted_in(slot, msg.ballot) {
                    Some(value) => {
                        let value = value.clone();
                        self.learn(slot, value);
                    }
                    None => break,
                }
            }
            slot += 1;
        }
        if self.learner.chosen_through() < msg.chosen_through {
            self.note_chosen_elsewhere(now_ns, from, msg.chosen_through);
        }
        self.report_progress(now_ns, from, msg.ballot);
    }

    /// Tells the master how far this replica has learned, at most once per heartbeat interval.
    fn report_progress(&mut self, now_ns: Nanos, master: NodeId, ballot: Ballot) {
        if now_ns < self.progress_due_ns {
            return;
        }
        self.progress_due_ns = now_ns + self.config.heartbeat_interval_ns;
        let progress = Progress {
            ballot,
            chosen_through: self.learner.chosen_through(),
            durable_through: self.durable_through(),
        };
        self.outbox.send(master, Message::Progress(progress));
    }

    /// The slot through which this replica durably holds every chosen value: its durable
    /// snapshot, or the chosen log whose writes are durable. A promise about its disk: never
    /// ahead of it, and true after a restart (storage gives back what was durable).
    fn durable_through(&self) -> Slot {
        self.learned.through().max(self.snapshots.durable_slot())
    }

    /// What witnesses may compact to (0 unless this replica leads).
    fn durable_floor(&self) -> Slot {
        let Some(leader) = &self.leader else {
            return 0;
        };
        let (config, me) = (self.members.current(), self.config.node_id);
        leader.durable_floor(config, me, self.durable_through())
    }

    pub(super) fn on_progress(&mut self, now_ns: Nanos, from: NodeId, msg: Progress) {
        let Some(leader) = &mut self.leader else {
            return;
        };
        if msg.ballot == leader.ballot() {
            leader.note_progress(from, now_ns, (msg.chosen_through, msg.durable_through));
        }
    }

    /// Records that `value` is chosen for `slot`, durably (without holding anything for it),
    /// and applies whatever has become contiguous.
    pub(super) fn learn(&mut self, slot: Slot, value: LogValue) {
        if self.learner.knows(slot, &value) {
            // Whatever taught it first took the acceptor's value (`learn`, or a snapshot that
            // dropped what it covers), and `on_accept` keeps none for a slot known chosen.
            assert!(
                !self.acceptor.holds(slot),
                "slot {slot} is known chosen and still kept as accepted"
            );
            return;
        }
        let write = match self.acceptor.take(slot) {
            Some((ballot, accepted)) if accepted == value => StorageWrite::Chosen { slot, ballot },
            _ => StorageWrite::Learn {
                slot,
                value: value.clone(),
            },
        };
        self.outbox.persist(vec![write]);
        self.learner.insert(slot, value);
        self.advance_chosen();
    }

    pub(super) fn advance_chosen(&mut self) {
        self.learner.advance();
        let last_token = self.outbox.last_token();
        self.learned.note(last_token, self.learner.chosen_through());
        while let Some(applied) = self.learner.apply_next(self.wall_ms) {
            if let Some(reconfigure) = applied.reconfigure {
                self.reconfigured(applied.slot, reconfigure);
            }
            let Some(leader) = &mut self.leader else {
                continue;
            };
            for response in leader.answer(applied.responses) {
                self.outbox.push_reply(response);
            }
        }
        self.serve_pending_reads();
        self.maybe_snapshot();
        self.finish_recovery_if_caught_up();
    }
}

impl Replica {
    /// The change chosen at `slot` is applied: it governs every later slot. The master answers
    /// the client that asked for it and extends its lease under the new configuration at once
    /// (it proposes no further change before that); a replica it removed stops for good.
    fn reconfigured(&mut self, slot: Slot, reconfigure: Reconfigure) {
        let early = mutant::is(self.config.mutant, Mutant::ChangeBeforeChosen);
        if !(early && self.members.epoch() >= reconfigure.epoch) {
            self.members.apply(slot, &reconfigure);
        }
        if let Some(leader) = &mut self.leader {
            leader.retain_progress(self.members.current());
            if let Some(response) = leader.change_applied(slot, reconfigure.epoch) {
                self.outbox.push_reply(response);
            }
        }
        self.lease.extend_soon();
        if self.members.removed_self() || !self.members.may_lead() {
            self.step_down(None);
            self.give_up_lease(None);
        }
    }
}
