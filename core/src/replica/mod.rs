//! One replica: PaxosLease, the Multi-Paxos log and the key-value state machine behind a
//! sans-IO interface.
//!
//! # Driving a replica (the contract every shell follows)
//!
//! Inputs: [`Replica::handle_message`], [`Replica::handle_timeout`],
//! [`Replica::handle_request`] and [`Replica::handle_persisted`], each with the replica's local
//! monotonic time. After every input the shell drains [`Replica::poll_output`] until `None`, in
//! order, then asks [`Replica::poll_timeout`] when to call `handle_timeout` next.
//!
//! - `Output::Persist { token, writes }`: append `writes` to durable storage in order. Once they
//!   (and every earlier token's writes) are durable, call `handle_persisted(token)`. Tokens
//!   increase; one call may cover many tokens (group commit).
//! - `Output::Send { to, msg }`: send best-effort; loss, duplication and reordering are tolerated.
//!   A message that promises durable state (a promise, an accept) is only ever emitted *after*
//!   the `handle_persisted` call that covers the write behind it: the replica holds it until
//!   then. The shell needs no ordering of its own between persists and sends.
//! - `Output::Reply(response)`: deliver to the client that sent the request.
//!
//! On restart the shell replays the writes that were durable into a [`DurableState`] and passes
//! it to [`Replica::new`]; writes that never became durable are simply gone.
//!
//! # Components
//!
//! Each part of the replica is a type that owns its state and asserts its invariants; the
//! `route_*` modules pass every input between them. After every input (and at construction)
//! the replica checks all of them, in release builds too, at O(log n) cost:
//!
//! - `LogAcceptor` (acceptor): no accepted ballot above the promise, no promise above the
//!   highest ballot seen.
//! - `Learner` (learner): compacted ≤ applied = chosen-through, chosen slots contiguous up to
//!   chosen-through, the state machine and the last state hash at the applied slot.
//! - `Leader` (leader): the window within `window_max`, the queues within
//!   `pending_requests_max`, slots handed out in order; its ballot is the acceptor's promise.
//! - `MasterLease` (master_lease): a held lease ends within `H` of now (see [`crate::lease`]),
//!   the restart quiet period and the next attempt within their bounds.
//! - `Snapshots` (snapshots): the log compacted no further than the snapshot, the snapshot in
//!   flight newer than the durable one and behind a token not yet durable.
//! - `CatchUp` (catchup) and `StorageRecovery` (recovery): a retry only for a target, reports
//!   only from members, a recovering replica never leads.
//! - `Outbox` (outbox): held messages only behind tokens not yet durable, in token order.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::command::ClientRequest;
use crate::kv::StateMachine;
use crate::membership::{Configuration, MemberProgress};
use crate::msg::*;
use crate::mutant::{self, Mutant};
use crate::snapshot::SnapshotImage;
use crate::storage::DurableState;
use crate::types::{Ballot, Nanos, NodeId, Slot};

mod acceptor;
mod catchup;
mod config;
mod leader;
mod learned_durably;
mod learner;
mod master_lease;
mod members;
mod outbox;
mod recovery;
mod route_client;
mod route_lease;
mod route_log;
mod route_sync;
mod snapshots;

use catchup::CatchUp;
pub use catchup::CATCHUP_ENTRIES_MAX;
use recovery::StorageRecovery;
use snapshots::Snapshots;

use acceptor::LogAcceptor;
pub use config::ReplicaConfig;
use leader::Leader;
use learned_durably::LearnedDurably;
use learner::Learner;
pub use learner::STATE_HASHES_KEPT_MAX;
use master_lease::MasterLease;
use members::Members;
use outbox::Outbox;
pub use outbox::Output;

/// What part a replica plays right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Follower,
    /// Holds the lease and is running log phase 1 or finishing earlier ballots' slots.
    Recovering,
    /// Holds the lease, is up to date, serves reads and writes.
    Master,
}

/// One replica of the cluster: components that each own their part of the state and its
/// invariants, and the routing of every input between them (the `route_*` modules).
pub struct Replica {
    config: ReplicaConfig,
    /// Seeded by the caller: the lease backoffs and the storage recovery's nonce.
    rng: ChaCha8Rng,
    /// PaxosLease: when to ask for or extend the lease, and what is known of the master.
    lease: MasterLease,
    /// The log acceptor's promise and accepted values (durable).
    acceptor: LogAcceptor,
    /// Chosen values, applied to the state machine in slot order.
    learner: Learner,
    /// How far every chosen value is durable here (what a full voter reports to the master).
    learned: LearnedDurably,
    /// The configuration in force after the applied slot.
    members: Members,
    catchup: CatchUp,
    snapshots: Snapshots,
    /// Present while this replica recovers from damaged storage (and does not vote).
    recovery: Option<StorageRecovery>,
    /// Present while this replica leads the log.
    leader: Option<Leader>,
    outbox: Outbox,
    /// The local time of the latest input.
    last_input_ns: Nanos,
    /// When this replica may next tell the master its progress.
    progress_due_ns: Nanos,
    /// The highest reading of the replica's wall clock given (Unix milliseconds; see
    /// [`Replica::set_wall_clock_ms`]): what the master stamps on entries and judges its reads'
    /// expiry by. Never goes back.
    wall_ms: u64,
}

// ---- construction and the public interface ------------------------------------------------

impl Replica {
    /// Starts (or restarts) a replica from what its storage holds. It stays out of the lease
    /// protocol for one lease duration, since it forgot any lease grant it gave before, unless
    /// it is a member of a brand-new cluster with empty storage.
    pub fn new(config: ReplicaConfig, durable: DurableState, now_ns: Nanos, seed: u64) -> Self {
        config.validate();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let lease = MasterLease::new(&config, durable.is_empty(), now_ns, &mut rng);
        let DurableState {
            promised,
            accepted,
            chosen,
            snapshot,
            damaged,
        } = durable;
        let mut replica = Self {
            rng,
            lease,
            acceptor: LogAcceptor::new(promised, accepted),
            learner: Learner::new(config.state_machine, config.mutant, chosen, !config.witness),
            learned: LearnedDurably::new(),
            members: Members::new(&config),
            catchup: CatchUp::new(config.retransmit_interval_ns),
            snapshots: Snapshots::new(&config),
            recovery: None,
            leader: None,
            outbox: Outbox::new(config.node_id, config.mutant),
            last_input_ns: now_ns,
            progress_due_ns: now_ns,
            wall_ms: 0,
            config,
        };
        replica.recover(snapshot, damaged, now_ns);
        // What storage gave back is durable: the snapshot and the chosen log above it.
        replica.learned.restored(replica.learner.chosen_through());
        replica.check_invariants(now_ns);
        replica
    }

    /// Rebuilds the state from storage: the snapshot (verified), then the log after it.
    fn recover(&mut self, snapshot: Option<Arc<SnapshotImage>>, damaged: bool, now_ns: Nanos) {
        let mut damaged = damaged;
        if let Some(image) = snapshot {
            match image.restore_configured() {
                Ok((state, members)) => self.adopt_snapshot(image, state, members, false),
                // What it covered was compacted away: learn it again from the peers.
                Err(_) => damaged = true,
            }
        }
        if damaged && !mutant::is(self.config.mutant, Mutant::TrustCorruptPromise) {
            self.recovery = Some(StorageRecovery::new(self.rng.gen(), now_ns));
        }
        self.advance_chosen();
    }

    /// A message from replica `from`. One from a replica this one knows was removed is
    /// answered only with [`Outdated`] (so it learns it was removed), and a replica that was
    /// removed itself takes no further part.
    pub fn handle_message(&mut self, now_ns: Nanos, from: NodeId, msg: Message) {
        self.note_input_time(now_ns);
        assert!(from != 0, "a message from node 0");
        if self.members.removed_self() {
            self.answer_as_removed(from, msg);
            return;
        }
        match msg {
            // Served: the log it reads teaches a removed replica that it was removed.
            Message::CatchupRequest(m) => self.on_catchup_request(from, m),
            Message::LeasePrepare(_) if self.members.is_removed(from) => self.send_outdated(from),
            _ if self.members.is_removed(from) => {}
            msg => self.dispatch(now_ns, from, msg),
        }
        self.drain_loopback(now_ns);
        self.check_invariants(now_ns);
    }

    /// The replica's wall clock now, in Unix milliseconds: the shell gives it before every
    /// input (a reading below an earlier one is ignored, so it never goes back). Only expiry
    /// uses it: the master stamps it on the entries it proposes, and judges its linearizable
    /// reads' expiry by it. Its error against true time is the drift bound of expiry (see
    /// docs/design.md, "Expiry").
    pub fn set_wall_clock_ms(&mut self, wall_ms: u64) {
        self.wall_ms = self.wall_ms.max(wall_ms);
    }

    /// A removed replica votes no more, but what it knows stays true, and it may be the only
    /// one that knows its removal was chosen (the master that proposed it): the remaining
    /// members need that slot to form quorums of the new configuration. So it answers a peer
    /// recovering damaged storage with its acceptor state, serves catch-up from its log, and
    /// answers anything else with [`Outdated`], so that a peer still in an older configuration
    /// catches up from it. A peer that knows of the removal drops these answers.
    fn answer_as_removed(&mut self, from: NodeId, msg: Message) {
        assert!(self.members.removed_self());
        match msg {
            Message::RecoveryQuery(m) => self.on_recovery_query(from, m),
            Message::CatchupRequest(m) => self.on_catchup_request(from, m),
            Message::Outdated(_) | Message::CatchupReply(_) => {}
            _ => self.send_outdated(from),
        }
    }

    pub fn handle_timeout(&mut self, now_ns: Nanos) {
        self.note_input_time(now_ns);
        if self.members.removed_self() {
            return;
        }
        self.tick_recovery(now_ns);
        self.tick_lease(now_ns);
        self.tick_leader(now_ns);
        self.tick_catchup(now_ns);
        self.drain_loopback(now_ns);
        self.check_invariants(now_ns);
    }

    pub fn handle_request(&mut self, now_ns: Nanos, request: ClientRequest) {
        self.note_input_time(now_ns);
        self.route_request(now_ns, request);
        self.drain_loopback(now_ns);
        self.check_invariants(now_ns);
    }

    /// Everything emitted with a token up to `token` is durable.
    pub fn handle_persisted(&mut self, now_ns: Nanos, token: u64) {
        self.note_input_time(now_ns);
        if self.outbox.mark_persisted(token) {
            self.on_persisted(token);
            self.drain_loopback(now_ns);
        }
        self.check_invariants(now_ns);
    }

    fn on_persisted(&mut self, token: u64) {
        self.learned.on_persisted(token);
        if self.snapshots.on_persisted(token) {
            self.compact();
        }
        self.outbox.release_held();
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outbox.poll()
    }

    /// The local time at which `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Nanos> {
        if self.members.removed_self() {
            return None;
        }
        let stays_out = self.recovery.is_some() || !self.members.may_lead();
        let mut next = self.lease.deadline_ns(stays_out);
        let mut consider = |t: Option<Nanos>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Nanos| n.min(t)));
            }
        };
        consider(self.lease.grant_expiry_ns());
        consider(self.catchup.retry_at_ns());
        consider(self.recovery.as_ref().and_then(|r| r.query_at_ns()));
        if let Some(leader) = &self.leader {
            for deadline_ns in leader.deadlines_ns() {
                consider(Some(deadline_ns));
            }
        }
        next
    }
}

// ---- invariants ----------------------------------------------------------------------------

impl Replica {
    /// Notes the local time of an input, which never goes back.
    fn note_input_time(&mut self, now_ns: Nanos) {
        assert!(
            now_ns >= self.last_input_ns,
            "local time went back from {} to {now_ns}",
            self.last_input_ns
        );
        self.last_input_ns = now_ns;
    }

    /// Asserts what the components claim, after every input. Cheap: O(log n) lookups and
    /// bounded walks (of the cluster's members), no walk of the key space or of the log.
    fn check_invariants(&self, now_ns: Nanos) {
        let applied = self.learner.applied_through();
        let compacted = self.learner.compacted_through();
        self.outbox.check_invariants();
        self.acceptor.check_invariants();
        self.learner.check_invariants();
        let last_token = self.outbox.last_token();
        self.learned
            .check_invariants(self.learner.chosen_through(), last_token);
        self.lease.check_invariants(now_ns);
        self.catchup.check_invariants();
        let persisted = self.outbox.persisted_token();
        self.snapshots
            .check_invariants(persisted, applied, compacted);
        self.members.check_invariants(applied);
        // An accepted change is pending only while its slot is not known chosen (a change
        // applied already must not block lease attempts or be reported as pending).
        for slot in self.acceptor.tracked_change_slots() {
            assert!(
                !self.learner.is_chosen(slot),
                "the change at slot {slot} is known chosen and still tracked as pending"
            );
        }
        if let Some(recovery) = &self.recovery {
            recovery.check_invariants(self.config.node_id);
            assert!(self.leader.is_none(), "a replica recovering storage leads");
        }
        if self.members.removed_self() || !self.members.may_lead() {
            assert!(self.leader.is_none(), "a replica that may not lead leads");
        }
        if let Some(leader) = &self.leader {
            leader.check_invariants(&self.config, applied);
            // Its own acceptor promised its ballot in the same input, and anything higher
            // since would have deposed it.
            let lower_on_purpose = mutant::is(self.config.mutant, Mutant::AcceptLowerBallot);
            assert!(
                leader.ballot() == self.acceptor.promised() || lower_on_purpose,
                "leading with {} while promised {}",
                leader.ballot(),
                self.acceptor.promised()
            );
        }
    }
}

// ---- observation (for shells, the simulator's checks, and INFO) ---------------------------

impl Replica {
    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    pub fn config(&self) -> &ReplicaConfig {
        &self.config
    }

    pub fn role(&self, now_ns: Nanos) -> Role {
        match &self.leader {
            Some(_) if self.serves_reads(now_ns) => Role::Master,
            Some(_) => Role::Recovering,
            None => Role::Follower,
        }
    }

    /// Local time until which this replica holds the lease, if it does at `now_ns`.
    pub fn lease_held_until(&self, now_ns: Nanos) -> Option<Nanos> {
        self.lease.held_until(now_ns)
    }

    /// Whether this replica stands behind `owner`'s lease at `now_ns`: its grant to `owner`
    /// still runs, or it sits out its restart quiet period and grants nothing. Throughout a
    /// lease, a majority does this or is down (the simulator checks it).
    pub fn backs_lease_of(&self, owner: NodeId, now_ns: Nanos) -> bool {
        self.lease.backs_lease_of(owner, now_ns)
    }

    /// Whether linearizable reads would be served from memory at `now_ns`.
    pub fn serves_reads(&self, now_ns: Nanos) -> bool {
        let Some(leader) = &self.leader else {
            return false;
        };
        leader.is_ready(self.learner.applied_through()) && self.lease.held_until(now_ns).is_some()
    }

    /// True while this replica recovers from damaged storage and does not vote.
    pub fn is_recovering_storage(&self) -> bool {
        self.recovery.is_some()
    }

    pub fn master_hint(&self) -> Option<NodeId> {
        if self.leader.is_some() {
            return Some(self.config.node_id);
        }
        // A removed replica hears nothing more, so whatever it last knew is stale; and a hint
        // at a removed member sends the client where no master can be.
        if self.members.removed_self() {
            return None;
        }
        self.lease
            .master_hint()
            .filter(|&id| !self.members.is_removed(id))
    }

    /// The log ballot this replica leads with, or has promised.
    pub fn log_ballot(&self) -> Ballot {
        self.leader
            .as_ref()
            .map_or(self.acceptor.promised(), |l| l.ballot())
    }

    /// The configuration in force after the applied slot: the members, with their addresses
    /// (the shell dials peers from it), kinds and votes, and the ids removed.
    pub fn configuration(&self) -> &Configuration {
        self.members.current()
    }

    /// True once this replica applied its own removal: it takes no further part (the shell
    /// reports it and stops).
    pub fn is_removed(&self) -> bool {
        self.members.removed_self()
    }

    /// What the master last heard from each member (its local time, and how far the member
    /// had learned); empty unless this replica leads.
    pub fn member_progress(&self) -> Vec<(NodeId, MemberProgress)> {
        let Some(leader) = &self.leader else {
            return Vec::new();
        };
        leader.progress().iter().map(|(id, p)| (*id, *p)).collect()
    }

    /// The epoch of the latest configuration whose majority granted the lease held at
    /// `now_ns`.
    pub fn lease_epoch(&self, now_ns: Nanos) -> Option<u64> {
        self.lease.held_quorum(now_ns).map(|q| q.epoch)
    }

    /// The voter sets whose majorities granted the lease held at `now_ns` (two while a change
    /// was pending when it was granted).
    pub fn lease_voter_sets(&self, now_ns: Nanos) -> Vec<Vec<NodeId>> {
        let quorum = self.lease.held_quorum(now_ns);
        let sets = quorum.map(|q| q.voter_sets.iter().map(|v| v.iter().copied().collect()));
        sets.into_iter().flatten().collect()
    }

    pub fn chosen_through(&self) -> Slot {
        self.learner.chosen_through()
    }

    pub fn applied_through(&self) -> Slot {
        self.learner.applied_through()
    }

    /// Hash chain over every applied slot's value: equal on replicas that applied equal logs.
    pub fn applied_chain(&self) -> u64 {
        self.learner.applied_chain()
    }

    pub fn chosen(&self, slot: Slot) -> Option<&LogValue> {
        self.learner.chosen(slot)
    }

    pub fn state_machine(&self) -> &StateMachine {
        self.learner.state()
    }

    /// Starts or stops recording what applied writes propagate to a replication stream
    /// (`StateMachine::set_propagating`); changes nothing replicated.
    pub fn set_propagating(&mut self, on: bool) {
        self.learner.state_mut().set_propagating(on);
    }

    /// What the writes applied since the last call propagate (`StateMachine::take_propagated`).
    pub fn take_propagated(&mut self) -> crate::kv::Propagated {
        self.learner.state_mut().take_propagated()
    }
}

// ---- dispatch ------------------------------------------------------------------------------

impl Replica {
    fn drain_loopback(&mut self, now_ns: Nanos) {
        let me = self.config.node_id;
        // Bounded: each message handled here can only cause a bounded number of others.
        while let Some(msg) = self.outbox.pop_loopback() {
            self.dispatch(now_ns, me, msg);
        }
    }

    fn dispatch(&mut self, now_ns: Nanos, from: NodeId, msg: Message) {
        match msg {
            Message::LeasePrepare(m) => self.on_lease_prepare(now_ns, from, m),
            Message::LeasePromise(m) => self.on_lease_promise(now_ns, from, m),
            Message::LeasePropose(m) => self.on_lease_propose(now_ns, from, m),
            Message::LeaseAccepted(m) => self.on_lease_accepted(now_ns, from, m),
            Message::Prepare(m) => self.on_prepare(from, m),
            Message::Promise(m) => self.on_promise(now_ns, from, m),
            Message::Accept(m) => self.on_accept(now_ns, from, m),
            Message::Accepted(m) => self.on_accepted(now_ns, from, m),
            Message::Nack(m) => self.on_nack(now_ns, m),
            Message::Commit(m) => self.on_commit(now_ns, from, m),
            Message::CatchupRequest(m) => self.on_catchup_request(from, m),
            Message::CatchupReply(m) => self.on_catchup_reply(now_ns, from, m),
            Message::RecoveryQuery(m) => self.on_recovery_query(from, m),
            Message::RecoveryReport(m) => self.on_recovery_report(now_ns, from, m),
            Message::Progress(m) => self.on_progress(now_ns, from, m),
            Message::Outdated(m) => self.on_outdated(now_ns, from, m),
            Message::LeaseRelease(m) => self.on_lease_release(now_ns, from, m),
        }
    }
}

#[cfg(test)]
mod tests;
