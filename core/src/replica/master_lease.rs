//! The replica's side of PaxosLease ([`crate::lease`] holds the proposer and acceptor): when to
//! ask for the lease or extend it, when to stay out, and what this replica knows of the master.
//!
//! A (re)started replica stays out of the lease protocol for one lease duration, since it forgot
//! any grant it gave before (see [`quiet_until_ns`]). It asks for the lease only when no grant of
//! another replica is open on it and no master was heard from within a lease duration, after a
//! random backoff that spreads out contenders; the holder extends halfway through its lease.
//! A holder that gives the lease up releases its grants; the successor it names asks at once.

use rand::Rng;

use super::config::ReplicaConfig;
use crate::lease::{LeaseAcceptor, LeaseConfig, LeaseProposer, ProposerAction, Quorum};
use crate::membership::Reconfigure;
use crate::msg::{
    LeaseAccepted, LeaseGrant, LeasePrepare, LeasePromise, LeasePropose, LeaseRelease,
};
use crate::mutant::{self, Mutant};
use crate::types::{Nanos, NodeId, Slot};

/// The local time until which a replica started at `now_ns` stays out of the lease protocol:
/// at once when the operator says the whole group is new and its storage holds nothing (so it
/// cannot have granted a lease and lost the record), one lease duration later otherwise.
pub(super) fn quiet_until_ns(config: &ReplicaConfig, storage_empty: bool, now_ns: Nanos) -> Nanos {
    let new = config.new_cluster || mutant::is(config.mutant, Mutant::RestartSkipsQuietPeriod);
    if new && storage_empty {
        now_ns
    } else {
        now_ns + config.lease.restart_quiet_ns()
    }
}

pub(super) struct MasterLease {
    me: NodeId,
    config: LeaseConfig,
    /// `H`, the holder's duration ([`LeaseConfig::holder_duration_ns`]).
    holder_ns: Nanos,
    attempt_timeout_ns: Nanos,
    backoff_max_ns: Nanos,
    retransmit_interval_ns: Nanos,
    acceptor: LeaseAcceptor,
    proposer: LeaseProposer,
    quiet_until_ns: Nanos,
    next_attempt_ns: Nanos,
    last_master_contact_ns: Option<Nanos>,
    master_hint: Option<NodeId>,
    /// Extend the held lease at the next chance, not halfway through it.
    extend_now: bool,
    /// A change another voter accepted beyond this replica's configuration, with its slot
    /// (see [`MasterLease::change_heard`]).
    change_heard: Option<(Slot, Reconfigure)>,
    mutant: Option<Mutant>,
}

impl MasterLease {
    /// The lease side of a replica (re)started at `now_ns`: quiet for a lease duration (unless
    /// it is a member of a brand-new cluster with empty storage), then a random backoff drawn
    /// from `rng` before its first attempt.
    pub(super) fn new(
        config: &ReplicaConfig,
        storage_empty: bool,
        now_ns: Nanos,
        rng: &mut impl Rng,
    ) -> Self {
        let quiet_until_ns = quiet_until_ns(config, storage_empty, now_ns);
        let backoff_ns = rng.gen_range(0..=config.lease_backoff_max_ns);
        Self {
            me: config.node_id,
            config: config.lease,
            holder_ns: config.lease.holder_duration_ns(),
            attempt_timeout_ns: config.lease_attempt_timeout_ns,
            backoff_max_ns: config.lease_backoff_max_ns,
            retransmit_interval_ns: config.retransmit_interval_ns,
            acceptor: LeaseAcceptor::default(),
            proposer: proposer(config),
            quiet_until_ns,
            next_attempt_ns: quiet_until_ns + backoff_ns,
            last_master_contact_ns: None,
            master_hint: None,
            extend_now: false,
            change_heard: None,
            mutant: config.mutant,
        }
    }

    fn in_quiet_period(&self, now_ns: Nanos) -> bool {
        now_ns < self.quiet_until_ns
    }

    /// Whether this replica stands behind `owner`'s lease at `now_ns`: its grant to `owner`
    /// still runs, or it sits out its quiet period and grants nothing.
    pub(super) fn backs_lease_of(&self, owner: NodeId, now_ns: Nanos) -> bool {
        self.in_quiet_period(now_ns)
            || matches!(self.acceptor.open_grant(now_ns), Some(g) if g.owner == owner)
    }

    /// The acceptor's answer to a prepare; none in the quiet period.
    pub(super) fn on_prepare(&mut self, now_ns: Nanos, msg: &LeasePrepare) -> Option<LeasePromise> {
        if self.in_quiet_period(now_ns) {
            return None;
        }
        Some(self.acceptor.on_prepare(now_ns, msg))
    }

    /// The acceptor's answer to a proposal; none in the quiet period. A grant to another
    /// replica names the master.
    pub(super) fn on_propose(
        &mut self,
        now_ns: Nanos,
        msg: &LeasePropose,
    ) -> Option<LeaseAccepted> {
        if self.in_quiet_period(now_ns) {
            return None;
        }
        let reply = self.acceptor.on_propose(now_ns, msg);
        if reply.accepted && msg.owner != self.me {
            self.note_master(now_ns, msg.owner);
        }
        Some(reply)
    }

    pub(super) fn on_promise(&mut self, from: NodeId, msg: &LeasePromise) -> ProposerAction {
        self.proposer.on_promise(from, msg)
    }

    pub(super) fn on_accepted(&mut self, from: NodeId, msg: &LeaseAccepted) -> ProposerAction {
        self.proposer.on_accepted(from, msg)
    }

    /// Picks when to try again after a failed attempt: soon while the lease is still held
    /// (to extend it), after a random backoff otherwise.
    pub(super) fn schedule_attempt(&mut self, now_ns: Nanos, rng: &mut impl Rng) {
        let max_ns = if self.proposer.held_until(now_ns).is_some() {
            self.retransmit_interval_ns // holding: retry the extension soon
        } else {
            self.backoff_max_ns
        };
        let wait_ns = rng.gen_range(0..=max_ns);
        self.next_attempt_ns = now_ns + wait_ns;
    }

    /// When the master extends its lease: halfway through its holding time.
    fn extend_at_ns(&self, held_until_ns: Nanos) -> Nanos {
        held_until_ns.saturating_sub(self.holder_ns / 2)
    }

    /// The earliest local time at which the lease side has something to do.
    pub(super) fn deadline_ns(&self, recovering_storage: bool) -> Option<Nanos> {
        if let Some(started) = self.proposer.attempt_started_ns() {
            return Some(started + self.attempt_timeout_ns);
        }
        if let Some(until) = self.proposer.holding_until_ns() {
            let extend_at_ns = if self.extend_now {
                self.next_attempt_ns
            } else {
                self.extend_at_ns(until)
            };
            let extend_ns = extend_at_ns.max(self.next_attempt_ns);
            return Some(extend_ns.min(until));
        }
        // Recovering storage: no attempt until recovery ends (a message ends it, and the
        // shell polls the timeout again after every input). A deadline here would be in the
        // past and fire in a busy loop.
        if recovering_storage {
            return None;
        }
        // Not holding: the first moment every time condition of an attempt is met.
        let mut at_ns = self.next_attempt_ns.max(self.quiet_until_ns);
        if let Some(contact_ns) = self.last_master_contact_ns {
            at_ns = at_ns.max(contact_ns.saturating_add(self.config.lease_duration_ns));
        }
        if let Some(expiry_ns) = self.acceptor.grant_expiry_ns() {
            if self.acceptor.grant_owner() != Some(self.me) {
                at_ns = at_ns.max(expiry_ns);
            }
        }
        Some(at_ns)
    }

    /// When the acceptor's grant runs out, if it holds one.
    pub(super) fn grant_expiry_ns(&self) -> Option<Nanos> {
        self.acceptor.grant_expiry_ns()
    }

    /// Lets grants, a held lease and a timed-out attempt run out at `now_ns`.
    pub(super) fn expire(&mut self, now_ns: Nanos, rng: &mut impl Rng) {
        self.acceptor.expire(now_ns);
        if let Some(started) = self.proposer.attempt_started_ns() {
            if now_ns >= started + self.attempt_timeout_ns {
                self.proposer.abandon();
                self.schedule_attempt(now_ns, rng);
            }
        }
        self.proposer.expire(now_ns);
    }

    /// Whether to start an attempt at `now_ns`: to extend a held lease when it is time, or to
    /// acquire one when nobody else holds or recently held it.
    pub(super) fn should_start(&self, now_ns: Nanos, recovering_storage: bool) -> bool {
        if recovering_storage
            || self.in_quiet_period(now_ns)
            || self.proposer.is_attempting()
            || now_ns < self.next_attempt_ns
        {
            return false;
        }
        if let Some(until) = self.proposer.held_until(now_ns) {
            return self.extend_now || now_ns >= self.extend_at_ns(until);
        }
        let someone_else_holds = matches!(
            self.acceptor.open_grant(now_ns), Some(g) if g.owner != self.me
        );
        let heard_master_recently = self
            .last_master_contact_ns
            .is_some_and(|t| now_ns < t.saturating_add(self.config.lease_duration_ns));
        !someone_else_holds && !heard_master_recently
    }

    /// Starts an attempt that a majority of `quorum`'s voters must grant, named by an id drawn
    /// from `rng`.
    pub(super) fn start(
        &mut self,
        now_ns: Nanos,
        quorum: Quorum,
        rng: &mut impl Rng,
    ) -> ProposerAction {
        self.extend_now = false;
        self.proposer.start(now_ns, quorum, rng.gen())
    }

    /// Whom the running attempt asks.
    pub(super) fn attempt_voters(&self) -> Vec<NodeId> {
        self.proposer.attempt_voters()
    }

    /// The voters whose majorities granted the lease held at `now_ns`, and their epoch.
    pub(super) fn held_quorum(&self, now_ns: Nanos) -> Option<&Quorum> {
        self.proposer.held_quorum(now_ns)
    }

    /// Extends a held lease at the next chance (the configuration changed under it).
    pub(super) fn extend_soon(&mut self) {
        self.extend_now = true;
    }

    /// Asks for no lease for `wait_ns`: hands the mastership over to another replica.
    pub(super) fn abstain(&mut self, now_ns: Nanos, wait_ns: Nanos) {
        assert!(self.proposer.held_until(now_ns).is_none() || self.keeps_released_lease());
        self.next_attempt_ns = self.next_attempt_ns.max(now_ns + wait_ns);
    }

    /// Local time until which this replica holds the lease, if it does at `now_ns`.
    pub(super) fn held_until(&self, now_ns: Nanos) -> Option<Nanos> {
        self.proposer.held_until(now_ns)
    }

    /// Stops holding and extending the lease (giving it up early is always safe), first;
    /// returns the grants the acceptors should now forget.
    pub(super) fn release(&mut self) -> Vec<LeaseGrant> {
        if self.keeps_released_lease() {
            // Wrong on purpose: tells the acceptors, but goes on as holder.
            return self.proposer.grants_to_release();
        }
        self.proposer.release()
    }

    fn keeps_released_lease(&self) -> bool {
        mutant::is(self.mutant, Mutant::ReleaseKeepsLease)
    }

    /// `from` released a grant: the acceptor forgets it if it runs exactly that one. The
    /// successor it names, if this replica, asks for the lease at once, above the released
    /// ballot (when it still took `from` for the master: a release that arrives late changes
    /// nothing more).
    pub(super) fn on_release(&mut self, now_ns: Nanos, from: NodeId, msg: &LeaseRelease) {
        self.acceptor.on_release(from, msg);
        self.proposer.note_ballot(msg.grant.ballot);
        if msg.successor == Some(self.me) && self.master_hint == Some(from) {
            self.last_master_contact_ns = None;
            self.master_hint = None;
            self.next_attempt_ns = self.next_attempt_ns.min(now_ns);
        }
    }

    /// A voter refused a lease naming the change it accepted at `slot` and does not know
    /// chosen: the latest one heard is kept (one at most).
    pub(super) fn note_change_heard(&mut self, slot: Slot, change: Reconfigure) {
        self.change_heard = Some((slot, change));
    }

    /// The change heard of that makes epoch `next_epoch`, while its slot is above
    /// `applied_through` (once applied here, the log says what that slot holds).
    pub(super) fn change_heard(
        &self,
        applied_through: Slot,
        next_epoch: u64,
    ) -> Option<&Reconfigure> {
        match &self.change_heard {
            Some((slot, change)) if *slot > applied_through && change.epoch == next_epoch => {
                Some(change)
            }
            _ => None,
        }
    }

    /// `master` was heard from at `now_ns` as the master.
    pub(super) fn note_master(&mut self, now_ns: Nanos, master: NodeId) {
        self.master_hint = Some(master);
        self.last_master_contact_ns = Some(now_ns);
    }

    pub(super) fn set_master_hint(&mut self, hint: Option<NodeId>) {
        self.master_hint = hint;
    }

    pub(super) fn master_hint(&self) -> Option<NodeId> {
        self.master_hint
    }

    /// The lease arithmetic as of `now_ns`: a held lease ends within `H` of now (the holder's
    /// timer started before it asked, at or before now), the quiet period within one restart
    /// wait, and the next attempt within a backoff after it.
    pub(super) fn check_invariants(&self, now_ns: Nanos) {
        let holder_ns = self.holder_ns;
        if let Some(until) = self.proposer.holding_until_ns() {
            let longer_on_purpose = mutant::is(self.mutant, Mutant::StaleLeaseRead);
            assert!(
                until <= now_ns.saturating_add(holder_ns) || longer_on_purpose,
                "lease held until {until}, more than {holder_ns} ns after {now_ns}"
            );
        }
        if let Some(started) = self.proposer.attempt_started_ns() {
            assert!(started <= now_ns, "a lease attempt started in the future");
        }
        let quiet_ns = self.config.restart_quiet_ns();
        assert!(self.quiet_until_ns <= now_ns.saturating_add(quiet_ns));
        let wait_ns = self.backoff_max_ns.max(self.retransmit_interval_ns);
        let latest_ns = now_ns.saturating_add(quiet_ns).saturating_add(wait_ns);
        assert!(
            self.next_attempt_ns <= latest_ns,
            "lease attempt too far off"
        );
    }
}

/// The lease proposer of this replica, holding for `H` of its own clock.
fn proposer(config: &ReplicaConfig) -> LeaseProposer {
    let mut holder_ns = config.lease.holder_duration_ns();
    if mutant::is(config.mutant, Mutant::StaleLeaseRead) {
        // Wrong on purpose: trusts more than the acceptors' own duration, ignoring drift.
        holder_ns = config.lease.lease_duration_ns + config.lease.lease_duration_ns / 4;
    }
    LeaseProposer::with_holder_duration(config.node_id, config.lease, holder_ns)
}
