//! How the replica routes client requests: writes to the leader's batches, linearizable
//! reads to the master's memory (or to wait for its mastership to be ready), dirty reads to
//! the local state.

use super::Replica;
use crate::command::{ClientRequest, Command, CommandError, CommandKind, Outcome, Rejection};
use crate::membership::{Change, ChangeError, Configuration, Reconfigure};
use crate::mutant::{self, Mutant};
use crate::types::{Nanos, NodeId};

/// How far ahead the `expiry-reads-ahead` mutant judges reads.
const EXPIRY_READS_AHEAD_MS: u64 = 1_000;

impl Replica {
    pub(super) fn route_request(&mut self, now_ns: Nanos, request: ClientRequest) {
        if let Err(error) = request.command.validate() {
            let invalid = Rejection::Invalid(error);
            return self.outbox.reply(&request, Outcome::Rejected(invalid));
        }
        if let Command::Member(change) = &request.command {
            let change = change.clone();
            return self.request_member_change(now_ns, request, change);
        }
        match request.command.kind() {
            // A witness holds no state to read: the client goes to the master.
            CommandKind::DirtyRead if self.config.witness => self.refuse_not_master(&request),
            CommandKind::DirtyRead => {
                let reply = self.learner.read(&request.command);
                self.outbox.reply(&request, Outcome::Done(reply));
            }
            CommandKind::LinearizableRead => self.request_read(now_ns, request),
            CommandKind::Write => self.request_write(request),
        }
    }

    pub(super) fn refuse_not_master(&mut self, request: &ClientRequest) {
        let hint = self.master_hint();
        self.outbox.reply(
            request,
            Outcome::Rejected(Rejection::NotMaster { master_hint: hint }),
        );
    }

    pub(super) fn request_write(&mut self, request: ClientRequest) {
        let pending_max = self.config.pending_requests_max;
        let Some(leader) = &mut self.leader else {
            return self.refuse_not_master(&request);
        };
        if let Err(request) = leader.enqueue_write(request, pending_max) {
            return self
                .outbox
                .reply(&request, Outcome::Rejected(Rejection::Busy));
        }
        self.fill_window();
    }

    /// The clock the master judges its linearizable reads' expiry by: its wall clock (the
    /// state machine takes the later of it and the applied time).
    fn read_clock_ms(&self) -> u64 {
        // Wrong on purpose under the mutant: a second ahead, beyond any drift bound.
        match mutant::is(self.config.mutant, Mutant::ExpiryReadsAhead) {
            true => self.wall_ms + EXPIRY_READS_AHEAD_MS,
            false => self.wall_ms,
        }
    }

    pub(super) fn request_read(&mut self, now_ns: Nanos, request: ClientRequest) {
        if self.serves_reads(now_ns) {
            let reply = self.learner.read_at(&request.command, self.read_clock_ms());
            return self.outbox.reply(&request, Outcome::Done(reply));
        }
        let pending_max = self.config.pending_requests_max;
        let Some(leader) = &mut self.leader else {
            return self.refuse_not_master(&request);
        };
        // Served once the mastership is ready.
        if let Err(request) = leader.enqueue_read(request, pending_max) {
            self.outbox
                .reply(&request, Outcome::Rejected(Rejection::Busy));
        }
    }

    /// Serves reads that waited for this mastership to become ready. Called after applying;
    /// reads are only served while the lease is held, which `tick_lease` enforces by stepping
    /// down (and refusing them) once it is not.
    pub(super) fn serve_pending_reads(&mut self) {
        let Some(leader) = &mut self.leader else {
            return;
        };
        for request in leader.take_ready_reads(self.learner.applied_through()) {
            let reply = self.learner.read_at(&request.command, self.read_clock_ms());
            self.outbox.reply(&request, Outcome::Done(reply));
        }
    }
}

impl Replica {
    /// A membership change: the master checks it against the configuration applied and the
    /// members' progress, and puts it in the log once the window drains; the client hears the
    /// new epoch once it is applied, or why it was refused.
    fn request_member_change(&mut self, now_ns: Nanos, request: ClientRequest, change: Change) {
        if self.leader.is_none() {
            return self.refuse_not_master(&request);
        }
        let checked = self.check_member_change(now_ns, &change);
        let mutant = self.config.mutant;
        let leader = self.leader.as_mut().expect("checked above");
        let queued = checked.and_then(|r| leader.queue_change(&request, r, mutant));
        match queued {
            Ok(()) => self.fill_window(),
            Err(error) => {
                if error == ChangeError::MasterRemovesItself {
                    self.hand_over(now_ns);
                }
                let refused = Rejection::Invalid(CommandError::MemberChange(error));
                self.outbox.reply(&request, Outcome::Rejected(refused));
            }
        }
    }

    /// Refuses a change while another is pending, before this mastership has a value of its
    /// own ballot chosen or a lease granted under the configuration applied, for the master
    /// itself, or when its configuration would lack a connected, caught-up majority.
    fn check_member_change(
        &self,
        now_ns: Nanos,
        change: &Change,
    ) -> Result<Reconfigure, ChangeError> {
        let leader = self
            .leader
            .as_ref()
            .expect("only the master checks changes");
        let current = self.members.current();
        let settled = !leader.change_pending()
            && leader.is_ready(self.learner.applied_through())
            && self.lease_epoch(now_ns) == Some(current.epoch);
        if !settled && !mutant::is(self.config.mutant, Mutant::SecondChangeWhilePending) {
            return Err(ChangeError::InProgress);
        }
        if matches!(change, Change::Remove { id } if *id == self.config.node_id) {
            return Err(ChangeError::MasterRemovesItself);
        }
        let next = current.apply(change)?;
        // A mastership younger than the window may not have heard the members' progress yet
        // (right after a hand-over): "retry", not "repair them".
        let young = leader.is_younger_than(self.config.member_heard_window_ns, now_ns);
        self.check_caught_up(now_ns, change, &next)
            .map_err(|error| {
                if young {
                    ChangeError::InProgress
                } else {
                    error
                }
            })?;
        Ok(Reconfigure {
            epoch: next.epoch,
            change: change.clone(),
        })
    }

    /// A replica to promote is within `promote_lag_max_slots` of this master's chosen slot,
    /// and a majority of `next`'s voters was heard from within `member_heard_window_ns`, that
    /// close behind.
    fn check_caught_up(
        &self,
        now_ns: Nanos,
        change: &Change,
        next: &Configuration,
    ) -> Result<(), ChangeError> {
        let leader = self
            .leader
            .as_ref()
            .expect("only the master checks changes");
        let me = self.config.node_id;
        let chosen = self.learner.chosen_through();
        let allowed_slots = self.config.promote_lag_max_slots;
        let window_ns = self.config.member_heard_window_ns;
        let behind = |id| -> Option<u64> {
            if id == me {
                return Some(0);
            }
            let progress = leader.progress().get(&id)?;
            let recent = now_ns.saturating_sub(progress.heard_ns) <= window_ns;
            recent.then(|| chosen.saturating_sub(progress.chosen_through))
        };
        if let Change::Promote { id } = change {
            match behind(*id) {
                Some(slots) if slots <= allowed_slots => {}
                slots => {
                    return Err(ChangeError::NotCaughtUp {
                        id: *id,
                        behind_slots: slots.unwrap_or(chosen),
                        allowed_slots,
                    })
                }
            }
        }
        let caught_up = |id: &crate::types::NodeId| behind(*id).is_some_and(|s| s <= allowed_slots);
        let reachable = next.voters().filter(caught_up).count();
        if reachable < next.quorum() {
            return Err(ChangeError::NoReachableMajority);
        }
        Ok(())
    }

    /// The master was asked to remove itself: it stops leading, releases its lease naming the
    /// most caught-up full voter as its successor (who asks for the lease at once) and asks for
    /// none itself for a lease duration, so the successor takes over and can carry the
    /// removal out.
    fn hand_over(&mut self, now_ns: Nanos) {
        let wait_ns = self.config.lease.lease_duration_ns;
        let successor = self.successor(now_ns);
        self.step_down(successor);
        self.give_up_lease(successor);
        self.lease.abstain(now_ns, wait_ns);
    }

    /// The full voter other than this master that was heard from within
    /// `member_heard_window_ns` and has the most chosen (the lowest id among equals).
    fn successor(&self, now_ns: Nanos) -> Option<NodeId> {
        let leader = self.leader.as_ref()?;
        let me = self.config.node_id;
        let window_ns = self.config.member_heard_window_ns;
        let current = self.members.current();
        current
            .full_voters()
            .filter(|id| *id != me)
            .filter_map(|id| {
                let progress = leader.progress().get(&id)?;
                let recent = now_ns.saturating_sub(progress.heard_ns) <= window_ns;
                recent.then_some((progress.chosen_through, std::cmp::Reverse(id)))
            })
            .max()
            .map(|(_, std::cmp::Reverse(id))| id)
    }
}
