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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::command::{
    ClientId, ClientRequest, ClientResponse, CommandKind, Outcome, Rejection, Seq,
};
use crate::kv::hash::Hash64;
use crate::kv::{StateMachine, StateMachineConfig};
use crate::lease::{LeaseAcceptor, LeaseConfig, LeaseProposer, ProposerAction};
use crate::msg::*;
use crate::mutant::{self, Mutant};
use crate::snapshot::{SnapshotAssembly, SnapshotImage};
use crate::storage::{DurableState, StorageWrite};
use crate::types::{majority, Ballot, Nanos, NodeId, Slot, NANOS_PER_MILLI};

/// Most chosen values one [`CatchupReply`] carries.
pub const CATCHUP_ENTRIES_MAX: usize = 256;
/// How many recent (slot, state hash) pairs a replica keeps to check checkpoints against; a
/// checkpoint names a slot at most one window behind its own.
pub const STATE_HASHES_KEPT_MAX: usize = 1024;

/// Everything that tunes a replica. Identical on every replica but for `node_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaConfig {
    pub node_id: NodeId,
    /// Every replica's id, this one included.
    pub nodes: Vec<NodeId>,
    pub lease: LeaseConfig,
    /// How often unanswered prepares and accepts are sent again.
    pub retransmit_interval_ns: Nanos,
    /// How often the master tells followers what is chosen when nothing else does.
    pub heartbeat_interval_ns: Nanos,
    /// How long one lease attempt may take before it is abandoned.
    pub lease_attempt_timeout_ns: Nanos,
    /// Upper bound of the random wait before a lease attempt (spreads out contenders).
    pub lease_backoff_max_ns: Nanos,
    /// Most log slots in phase 2 at once.
    pub window_max: usize,
    /// Most client commands in one log entry.
    pub batch_commands_max: usize,
    /// Most bytes of keys and values in one log entry (one command larger than this still
    /// travels alone); keeps every entry far below the frame size limit.
    pub batch_bytes_max: usize,
    /// Most client requests waiting for a slot in the window.
    pub pending_requests_max: usize,
    /// A snapshot is taken once this many slots were applied since the last one.
    pub snapshot_interval_slots: u64,
    /// Chosen entries kept below the snapshot point, so a replica that lags a little catches up
    /// from the log instead of by snapshot transfer.
    pub log_retain_slots: u64,
    /// The master logs a checkpoint of its state hash once this many slots were applied since
    /// the last one; every replica compares (Paxos Made Live's consistency check).
    pub checkpoint_interval_slots: u64,
    pub state_machine: StateMachineConfig,
    /// Every member of this group is starting for the first time (etcd's
    /// `--initial-cluster-state new`): a replica with empty storage then skips the restart
    /// quiet period, since it has granted no lease. Empty storage alone cannot tell "brand new"
    /// from "wiped after granting", so only the operator can say this.
    #[serde(default)]
    pub new_cluster: bool,
    /// A deliberately wrong protocol variant; only with the `mutants` feature.
    pub mutant: Option<Mutant>,
}

impl ReplicaConfig {
    /// Production defaults for replica `node_id` of `nodes`.
    pub fn new(node_id: NodeId, nodes: Vec<NodeId>) -> Self {
        Self {
            node_id,
            nodes,
            lease: LeaseConfig {
                lease_duration_ns: 2_000 * NANOS_PER_MILLI,
                drift_rate_max_ppm: 10_000,
            },
            retransmit_interval_ns: 50 * NANOS_PER_MILLI,
            heartbeat_interval_ns: 100 * NANOS_PER_MILLI,
            lease_attempt_timeout_ns: 200 * NANOS_PER_MILLI,
            lease_backoff_max_ns: 300 * NANOS_PER_MILLI,
            window_max: 32,
            batch_commands_max: 1024,
            batch_bytes_max: 8 * 1024 * 1024,
            pending_requests_max: 16 * 1024,
            snapshot_interval_slots: 10_000,
            log_retain_slots: 1_000,
            checkpoint_interval_slots: 1_000,
            state_machine: StateMachineConfig::default(),
            new_cluster: false,
            mutant: None,
        }
    }

    /// Panics on a configuration the protocol cannot run safely with.
    pub fn validate(&self) {
        assert!(
            !self.nodes.is_empty(),
            "a cluster needs at least one replica"
        );
        assert!(
            self.nodes.contains(&self.node_id),
            "node_id must be in nodes"
        );
        let unique: BTreeSet<_> = self.nodes.iter().collect();
        assert_eq!(unique.len(), self.nodes.len(), "node ids must be unique");
        assert!(!self.nodes.contains(&0), "node ids start at 1");
        let holder_ns = self.lease.holder_duration_ns();
        assert!(
            holder_ns > 2 * self.lease_attempt_timeout_ns,
            "lease too short to extend"
        );
        assert!(self.window_max > 0 && self.batch_commands_max > 0);
        assert!(
            self.batch_commands_max <= crate::kv::ENTRY_REQUESTS_MAX,
            "batch_commands_max is above {}",
            crate::kv::ENTRY_REQUESTS_MAX
        );
        assert!(
            self.batch_bytes_max >= crate::command::REQUEST_MAX_BYTES,
            "a batch must fit the largest request"
        );
        assert!(self.pending_requests_max > 0);
        assert!(
            self.snapshot_interval_slots > 0,
            "snapshot interval must be positive"
        );
        assert!(
            self.checkpoint_interval_slots > 0,
            "checkpoint interval must be positive"
        );
        assert!(
            self.window_max < STATE_HASHES_KEPT_MAX,
            "checkpoints must stay checkable"
        );
        assert!(self.retransmit_interval_ns > 0 && self.heartbeat_interval_ns > 0);
        assert!(
            self.mutant.is_none() || Mutant::ENABLED,
            "mutants need the `mutants` feature"
        );
    }
}

/// Plain-data effects for the shell to carry out; see the module docs for the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send {
        to: NodeId,
        msg: Message,
    },
    Persist {
        token: u64,
        writes: Vec<StorageWrite>,
    },
    Reply(ClientResponse),
}

/// What part a replica plays right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Follower,
    /// Holds the lease and is running log phase 1 or finishing earlier ballots' slots.
    Recovering,
    /// Holds the lease, is up to date, serves reads and writes.
    Master,
}

struct InFlight {
    value: LogValue,
    acks: BTreeSet<NodeId>,
}

enum LeaderPhase {
    Preparing {
        from_slot: Slot,
        promises: BTreeMap<NodeId, Promise>,
    },
    Active,
}

/// A replica whose storage failed verification, finding out what it may have forgotten.
///
/// It neither promises nor accepts (it is as good as down to the log's quorums) until:
/// 1. every other replica has reported, and fewer than a majority (this one included) are
///    recovering. Any quorum this replica was part of then holds a trusted reporter, and every
///    proposer is a replica that raises its own promise to its ballot before asking anyone, so
///    the highest trusted promise covers any promise this replica gave and forgot; and
/// 2. it has learned as chosen every slot up to the highest trusted log end: a value it
///    accepted, forgot, and that may be chosen was accepted by a quorum, so by a trusted
///    reporter too, and a master elected without this replica finishes that slot.
///
/// Then it raises its promise to the highest trusted one and votes again. If a peer is down, or
/// a majority is recovering (more than the fault budget), this never completes: the replica
/// stays out rather than vote on state it cannot trust. (Paxos Made Live's rebuild as a
/// non-voter skips step 1 and is unsafe; see "Protocol-Aware Recovery for Consensus-Based
/// Storage", FAST'18.)
struct StorageRecovery {
    nonce: u64,
    reports: BTreeMap<NodeId, RecoveryReport>,
    /// Once every peer reported: the slot this replica must have learned through.
    horizon: Option<Slot>,
    query_at_ns: Nanos,
}

/// State a replica keeps only while it holds the lease.
struct Leader {
    ballot: Ballot,
    phase: LeaderPhase,
    /// The no-op slot that opens this mastership; reads wait until it is applied.
    ready_slot: Slot,
    next_slot: Slot,
    /// Slots to (re)propose before any new command: earlier ballots' values, then the no-op.
    recovery: VecDeque<(Slot, LogValue)>,
    inflight: BTreeMap<Slot, InFlight>,
    pending: VecDeque<ClientRequest>,
    pending_reads: VecDeque<ClientRequest>,
    /// Requests put in the log under this mastership and not yet answered.
    awaiting: BTreeSet<(ClientId, Seq)>,
    /// The slot the last checkpoint this mastership proposed was taken at.
    last_checkpoint: Slot,
    retransmit_at_ns: Nanos,
    heartbeat_at_ns: Nanos,
}

/// One replica of the cluster.
pub struct Replica {
    config: ReplicaConfig,
    rng: ChaCha8Rng,
    // PaxosLease
    lease_acceptor: LeaseAcceptor,
    lease_proposer: LeaseProposer,
    quiet_until_ns: Nanos,
    next_lease_attempt_ns: Nanos,
    last_master_contact_ns: Option<Nanos>,
    master_hint: Option<NodeId>,
    // Log acceptor (durable)
    promised: Ballot,
    log_highest_seen: Ballot,
    accepted: BTreeMap<Slot, (Ballot, LogValue)>,
    // Learner and state machine
    chosen: BTreeMap<Slot, LogValue>,
    chosen_through: Slot,
    applied_through: Slot,
    applied_chain: u64,
    state: StateMachine,
    /// Recent (slot, state hash after it), oldest first, to check checkpoints against.
    state_hashes: VecDeque<(Slot, u64)>,
    catchup_retry_at_ns: Option<Nanos>,
    /// A replica known to have chosen through a slot beyond this one's `chosen_through`.
    catchup_target: Option<(NodeId, Slot)>,
    // Snapshots and compaction
    /// The newest snapshot known durable (kept to serve transfers).
    snapshot: Option<Arc<SnapshotImage>>,
    /// A snapshot written but not yet durable, with its persist token.
    snapshot_in_flight: Option<(u64, Arc<SnapshotImage>)>,
    /// Chosen entries at or below this slot are no longer kept.
    compacted_through: Slot,
    /// A snapshot being received, and from whom.
    incoming_snapshot: Option<(NodeId, SnapshotAssembly)>,
    /// Present while this replica recovers from damaged storage (and does not vote).
    recovery: Option<StorageRecovery>,
    // Master
    leader: Option<Leader>,
    // Outputs
    outputs: VecDeque<Output>,
    loopback: VecDeque<Message>,
    held: VecDeque<(u64, NodeId, Message)>,
    next_token: u64,
    persisted_token: u64,
}

// ---- construction and the public interface ------------------------------------------------

impl Replica {
    /// Starts (or restarts) a replica from what its storage holds. It stays out of the lease
    /// protocol for one lease duration, since it forgot any lease grant it gave before, unless
    /// it is a member of a brand-new cluster with empty storage.
    pub fn new(config: ReplicaConfig, durable: DurableState, now_ns: Nanos, seed: u64) -> Self {
        config.validate();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let quiet_until_ns = now_ns + Self::start_quiet_ns(&config, &durable);
        let backoff_ns = rng.gen_range(0..=config.lease_backoff_max_ns);
        let proposer = Self::lease_proposer(&config);
        let mut replica = Self {
            state: StateMachine::new(config.state_machine),
            rng,
            lease_acceptor: LeaseAcceptor::default(),
            lease_proposer: proposer,
            quiet_until_ns,
            next_lease_attempt_ns: quiet_until_ns + backoff_ns,
            last_master_contact_ns: None,
            master_hint: None,
            promised: durable.promised,
            log_highest_seen: durable.promised,
            accepted: BTreeMap::new(),
            chosen: BTreeMap::new(),
            chosen_through: 0,
            applied_through: 0,
            applied_chain: 0,
            state_hashes: VecDeque::new(),
            catchup_retry_at_ns: None,
            catchup_target: None,
            snapshot: None,
            snapshot_in_flight: None,
            compacted_through: 0,
            incoming_snapshot: None,
            recovery: None,
            leader: None,
            outputs: VecDeque::new(),
            loopback: VecDeque::new(),
            held: VecDeque::new(),
            next_token: 1,
            persisted_token: 0,
            config,
        };
        replica.state.set_mutant(replica.config.mutant);
        replica.recover(durable, now_ns);
        replica
    }

    /// How long a starting replica sits out the lease protocol: nothing when the operator says
    /// the whole group is new and its storage holds nothing (so it cannot have granted a lease
    /// and lost the record), one lease duration otherwise.
    fn start_quiet_ns(config: &ReplicaConfig, durable: &DurableState) -> Nanos {
        let new = config.new_cluster || mutant::is(config.mutant, Mutant::RestartSkipsQuietPeriod);
        if new && durable.is_empty() {
            0
        } else {
            config.lease.restart_quiet_ns()
        }
    }

    /// Rebuilds the state from storage: the snapshot (verified), then the log after it.
    fn recover(&mut self, durable: DurableState, now_ns: Nanos) {
        let DurableState {
            accepted,
            chosen,
            snapshot,
            mut damaged,
            ..
        } = durable;
        self.accepted = accepted;
        self.chosen = chosen;
        if let Some(image) = snapshot {
            match image.restore() {
                Ok(state) => self.adopt_snapshot(image, state),
                // What it covered was compacted away: learn it again from the peers.
                Err(_) => damaged = true,
            }
        }
        if damaged && !mutant::is(self.config.mutant, Mutant::TrustCorruptPromise) {
            self.recovery = Some(StorageRecovery {
                nonce: self.rng.gen(),
                reports: BTreeMap::new(),
                horizon: None,
                query_at_ns: now_ns,
            });
        }
        self.advance_chosen();
    }

    fn lease_proposer(config: &ReplicaConfig) -> LeaseProposer {
        let n = config.nodes.len();
        let mut holder_ns = config.lease.holder_duration_ns();
        if mutant::is(config.mutant, Mutant::StaleLeaseRead) {
            // Wrong on purpose: trusts more than the acceptors' own duration, ignoring drift.
            holder_ns = config.lease.lease_duration_ns + config.lease.lease_duration_ns / 4;
        }
        LeaseProposer::with_holder_duration(config.node_id, n, config.lease, holder_ns)
    }

    pub fn handle_message(&mut self, now_ns: Nanos, from: NodeId, msg: Message) {
        assert!(
            self.config.nodes.contains(&from),
            "message from unknown node {from}"
        );
        self.dispatch(now_ns, from, msg);
        self.drain_loopback(now_ns);
    }

    pub fn handle_timeout(&mut self, now_ns: Nanos) {
        self.tick_recovery(now_ns);
        self.tick_lease(now_ns);
        self.tick_leader(now_ns);
        self.tick_catchup(now_ns);
        self.drain_loopback(now_ns);
    }

    pub fn handle_request(&mut self, now_ns: Nanos, request: ClientRequest) {
        if let Err(error) = request.command.validate() {
            self.reply(&request, Outcome::Rejected(Rejection::Invalid(error)));
            return;
        }
        match request.command.kind() {
            CommandKind::DirtyRead => {
                let reply = self.state.read(&request.command);
                self.reply(&request, Outcome::Done(reply));
            }
            CommandKind::LinearizableRead => self.request_read(now_ns, request),
            CommandKind::Write => self.request_write(request),
        }
        self.drain_loopback(now_ns);
    }

    /// Everything emitted with a token up to `token` is durable.
    pub fn handle_persisted(&mut self, now_ns: Nanos, token: u64) {
        assert!(
            token < self.next_token,
            "persisted token {token} was never issued"
        );
        if token <= self.persisted_token {
            return;
        }
        self.persisted_token = token;
        if self
            .snapshot_in_flight
            .as_ref()
            .is_some_and(|(t, _)| *t <= token)
        {
            let (_, image) = self.snapshot_in_flight.take().expect("checked");
            self.snapshot = Some(image);
            self.compact();
        }
        while let Some((t, _, _)) = self.held.front() {
            if *t > token {
                break;
            }
            let (_, to, msg) = self.held.pop_front().expect("front exists");
            self.send_now(to, msg);
        }
        self.drain_loopback(now_ns);
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The local time at which `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Nanos> {
        let mut next = self.lease_deadline();
        let mut consider = |t: Option<Nanos>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Nanos| n.min(t)));
            }
        };
        consider(self.lease_acceptor.grant_expiry_ns());
        consider(self.catchup_retry_at_ns);
        consider(
            self.recovery
                .as_ref()
                .filter(|r| r.horizon.is_none())
                .map(|r| r.query_at_ns),
        );
        if let Some(leader) = &self.leader {
            consider(Some(leader.retransmit_at_ns));
            consider(Some(leader.heartbeat_at_ns));
        }
        next
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
        self.lease_proposer.held_until(now_ns)
    }

    /// Whether this replica stands behind `owner`'s lease at `now_ns`: its grant to `owner`
    /// still runs, or it sits out its restart quiet period and grants nothing. Throughout a
    /// lease, a majority does this or is down (the simulator checks it).
    pub fn backs_lease_of(&self, owner: NodeId, now_ns: Nanos) -> bool {
        self.in_quiet_period(now_ns)
            || matches!(self.lease_acceptor.open_grant(now_ns), Some(g) if g.owner == owner)
    }

    /// Whether linearizable reads would be served from memory at `now_ns`.
    pub fn serves_reads(&self, now_ns: Nanos) -> bool {
        let Some(leader) = &self.leader else {
            return false;
        };
        matches!(leader.phase, LeaderPhase::Active)
            && self.applied_through >= leader.ready_slot
            && self.lease_proposer.held_until(now_ns).is_some()
    }

    /// True while this replica recovers from damaged storage and does not vote.
    pub fn is_recovering_storage(&self) -> bool {
        self.recovery.is_some()
    }

    pub fn master_hint(&self) -> Option<NodeId> {
        if self.leader.is_some() {
            return Some(self.config.node_id);
        }
        self.master_hint
    }

    /// The log ballot this replica leads with, or has promised.
    pub fn log_ballot(&self) -> Ballot {
        self.leader.as_ref().map_or(self.promised, |l| l.ballot)
    }

    pub fn chosen_through(&self) -> Slot {
        self.chosen_through
    }

    pub fn applied_through(&self) -> Slot {
        self.applied_through
    }

    /// Hash chain over every applied slot's value: equal on replicas that applied equal logs.
    pub fn applied_chain(&self) -> u64 {
        self.applied_chain
    }

    pub fn chosen(&self, slot: Slot) -> Option<&LogValue> {
        self.chosen.get(&slot)
    }

    pub fn state_machine(&self) -> &StateMachine {
        &self.state
    }
}

// ---- outputs -------------------------------------------------------------------------------

impl Replica {
    fn send_now(&mut self, to: NodeId, msg: Message) {
        if to == self.config.node_id {
            self.loopback.push_back(msg);
        } else {
            self.outputs.push_back(Output::Send { to, msg });
        }
    }

    fn broadcast(&mut self, msg: Message) {
        for i in 0..self.config.nodes.len() {
            let to = self.config.nodes[i];
            self.send_now(to, msg.clone());
        }
    }

    /// Emits `writes` and returns their token; sends made with [`Self::send_after`] for this
    /// token leave only once it is durable.
    fn persist(&mut self, writes: Vec<StorageWrite>) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.outputs.push_back(Output::Persist { token, writes });
        token
    }

    fn send_after(&mut self, token: u64, to: NodeId, msg: Message) {
        if mutant::is(self.config.mutant, Mutant::AckBeforePersist) {
            self.send_now(to, msg); // wrong on purpose: the answer races the disk
            return;
        }
        if token <= self.persisted_token {
            self.send_now(to, msg);
        } else {
            self.held.push_back((token, to, msg));
        }
    }

    fn reply(&mut self, request: &ClientRequest, outcome: Outcome) {
        self.outputs.push_back(Output::Reply(ClientResponse {
            client_id: request.client_id,
            seq: request.seq,
            outcome,
        }));
    }

    fn drain_loopback(&mut self, now_ns: Nanos) {
        let me = self.config.node_id;
        // Bounded: each message handled here can only cause a bounded number of others.
        while let Some(msg) = self.loopback.pop_front() {
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
            Message::Accepted(m) => self.on_accepted(from, m),
            Message::Nack(m) => self.on_nack(now_ns, m),
            Message::Commit(m) => self.on_commit(now_ns, from, m),
            Message::CatchupRequest(m) => self.on_catchup_request(from, m),
            Message::CatchupReply(m) => self.on_catchup_reply(now_ns, from, m),
            Message::RecoveryQuery(m) => self.on_recovery_query(from, m),
            Message::RecoveryReport(m) => self.on_recovery_report(now_ns, from, m),
        }
    }
}

// ---- PaxosLease ----------------------------------------------------------------------------

impl Replica {
    fn in_quiet_period(&self, now_ns: Nanos) -> bool {
        now_ns < self.quiet_until_ns
    }

    fn on_lease_prepare(&mut self, now_ns: Nanos, from: NodeId, msg: LeasePrepare) {
        if self.in_quiet_period(now_ns) {
            return;
        }
        let reply = self.lease_acceptor.on_prepare(now_ns, &msg);
        self.send_now(from, Message::LeasePromise(reply));
    }

    fn on_lease_propose(&mut self, now_ns: Nanos, from: NodeId, msg: LeasePropose) {
        if self.in_quiet_period(now_ns) {
            return;
        }
        let reply = self.lease_acceptor.on_propose(now_ns, &msg);
        if reply.accepted && msg.owner != self.config.node_id {
            self.master_hint = Some(msg.owner);
            self.last_master_contact_ns = Some(now_ns);
        }
        self.send_now(from, Message::LeaseAccepted(reply));
    }

    fn on_lease_promise(&mut self, now_ns: Nanos, from: NodeId, msg: LeasePromise) {
        let action = self.lease_proposer.on_promise(from, &msg);
        self.on_proposer_action(now_ns, action);
    }

    fn on_lease_accepted(&mut self, now_ns: Nanos, from: NodeId, msg: LeaseAccepted) {
        let action = self.lease_proposer.on_accepted(from, &msg);
        self.on_proposer_action(now_ns, action);
    }

    fn on_proposer_action(&mut self, now_ns: Nanos, action: ProposerAction) {
        match action {
            ProposerAction::None => {}
            ProposerAction::Prepare(m) => self.broadcast(Message::LeasePrepare(m)),
            ProposerAction::Propose(m) => self.broadcast(Message::LeasePropose(m)),
            ProposerAction::Acquired { .. } => {
                self.master_hint = Some(self.config.node_id);
                if self.leader.is_none() {
                    self.become_leader(now_ns);
                }
            }
            ProposerAction::Failed => self.schedule_lease_attempt(now_ns),
        }
    }

    fn schedule_lease_attempt(&mut self, now_ns: Nanos) {
        let max_ns = if self.lease_proposer.held_until(now_ns).is_some() {
            self.config.retransmit_interval_ns // holding: retry the extension soon
        } else {
            self.config.lease_backoff_max_ns
        };
        let wait_ns = self.rng.gen_range(0..=max_ns);
        self.next_lease_attempt_ns = now_ns + wait_ns;
    }

    /// When the master extends its lease: halfway through its holding time.
    fn extend_at_ns(&self, held_until_ns: Nanos) -> Nanos {
        held_until_ns.saturating_sub(self.config.lease.holder_duration_ns() / 2)
    }

    /// The earliest local time at which the lease side has something to do.
    fn lease_deadline(&self) -> Option<Nanos> {
        if let Some(started) = self.lease_proposer.attempt_started_ns() {
            return Some(started + self.config.lease_attempt_timeout_ns);
        }
        if let Some(until) = self.lease_proposer.holding_until_ns() {
            let extend_ns = self.extend_at_ns(until).max(self.next_lease_attempt_ns);
            return Some(extend_ns.min(until));
        }
        // Recovering storage: no attempt until recovery ends (a message ends it, and the
        // shell polls the timeout again after every input). A deadline here would be in the
        // past and fire in a busy loop.
        if self.recovery.is_some() {
            return None;
        }
        // Not holding: the first moment every time condition of an attempt is met.
        let me = self.config.node_id;
        let mut at_ns = self.next_lease_attempt_ns.max(self.quiet_until_ns);
        if let Some(contact_ns) = self.last_master_contact_ns {
            at_ns = at_ns.max(contact_ns.saturating_add(self.config.lease.lease_duration_ns));
        }
        if let Some(expiry_ns) = self.lease_acceptor.grant_expiry_ns() {
            if self.lease_acceptor.grant_owner() != Some(me) {
                at_ns = at_ns.max(expiry_ns);
            }
        }
        Some(at_ns)
    }

    fn tick_lease(&mut self, now_ns: Nanos) {
        self.lease_acceptor.expire(now_ns);
        if let Some(started) = self.lease_proposer.attempt_started_ns() {
            if now_ns >= started + self.config.lease_attempt_timeout_ns {
                self.lease_proposer.abandon();
                self.schedule_lease_attempt(now_ns);
            }
        }
        self.lease_proposer.expire(now_ns);
        if self.leader.is_some() && self.lease_proposer.held_until(now_ns).is_none() {
            self.step_down(None);
        }
        if self.should_start_lease_attempt(now_ns) {
            let action = self.lease_proposer.start(now_ns);
            self.on_proposer_action(now_ns, action);
        }
    }

    fn should_start_lease_attempt(&self, now_ns: Nanos) -> bool {
        if self.recovery.is_some()
            || self.in_quiet_period(now_ns)
            || self.lease_proposer.is_attempting()
            || now_ns < self.next_lease_attempt_ns
        {
            return false;
        }
        if let Some(until) = self.lease_proposer.held_until(now_ns) {
            return now_ns >= self.extend_at_ns(until);
        }
        let me = self.config.node_id;
        let someone_else_holds = matches!(
            self.lease_acceptor.open_grant(now_ns), Some(g) if g.owner != me
        );
        let heard_master_recently = self
            .last_master_contact_ns
            .is_some_and(|t| now_ns < t.saturating_add(self.config.lease.lease_duration_ns));
        !someone_else_holds && !heard_master_recently
    }
}

// ---- mastership of the log -----------------------------------------------------------------

impl Replica {
    /// Starts log phase 1 over every slot not known to be chosen.
    fn become_leader(&mut self, now_ns: Nanos) {
        assert!(self.leader.is_none());
        let ballot = Ballot::next_above(self.log_highest_seen, self.config.node_id);
        self.log_highest_seen = ballot;
        let from_slot = self.chosen_through + 1;
        self.leader = Some(Leader {
            ballot,
            phase: LeaderPhase::Preparing {
                from_slot,
                promises: BTreeMap::new(),
            },
            ready_slot: Slot::MAX,
            next_slot: from_slot,
            recovery: VecDeque::new(),
            inflight: BTreeMap::new(),
            pending: VecDeque::new(),
            pending_reads: VecDeque::new(),
            awaiting: BTreeSet::new(),
            last_checkpoint: self.applied_through,
            retransmit_at_ns: now_ns + self.config.retransmit_interval_ns,
            heartbeat_at_ns: now_ns + self.config.heartbeat_interval_ns,
        });
        self.broadcast(Message::Prepare(Prepare { ballot, from_slot }));
    }

    /// Gives up mastership. Requests already in the log may still be chosen: their clients
    /// hear `Indeterminate`; requests never logged are refused outright.
    fn step_down(&mut self, hint: Option<NodeId>) {
        let Some(leader) = self.leader.take() else {
            return;
        };
        for (client_id, seq) in leader.awaiting {
            let response = ClientResponse {
                client_id,
                seq,
                outcome: Outcome::Indeterminate,
            };
            self.outputs.push_back(Output::Reply(response));
        }
        let refused = Outcome::Rejected(Rejection::NotMaster { master_hint: hint });
        for request in leader.pending.iter().chain(leader.pending_reads.iter()) {
            self.reply(request, refused.clone());
        }
        self.master_hint = hint;
    }

    /// Another replica leads with a higher ballot: stop leading, and stop extending a lease
    /// this replica no longer acts on (giving up a lease early is always safe).
    fn yield_to(&mut self, master: NodeId) {
        self.step_down(Some(master));
        self.lease_proposer.release();
    }

    fn on_promise(&mut self, now_ns: Nanos, from: NodeId, msg: Promise) {
        let quorum = majority(self.config.nodes.len());
        let Some(leader) = &mut self.leader else {
            return;
        };
        let LeaderPhase::Preparing { promises, .. } = &mut leader.phase else {
            return;
        };
        if msg.ballot != leader.ballot {
            return;
        }
        promises.insert(from, msg);
        if promises.len() >= quorum {
            self.finish_prepare(now_ns);
        }
    }

    /// Phase 1 reached a majority: re-propose whatever earlier ballots may have chosen, fill
    /// gaps with no-ops, and open the mastership with a no-op of its own.
    fn finish_prepare(&mut self, now_ns: Nanos) {
        let leader = self.leader.as_mut().expect("preparing leader");
        let phase = std::mem::replace(&mut leader.phase, LeaderPhase::Active);
        let LeaderPhase::Preparing {
            from_slot,
            promises,
        } = phase
        else {
            unreachable!("finish_prepare outside phase 1");
        };
        // Slots some acceptor compacted away are chosen already: never propose in them.
        let (compacted, holder) = promises
            .iter()
            .map(|(node, p)| (p.compacted_through, *node))
            .max()
            .unwrap_or((0, self.config.node_id));
        let mut found: BTreeMap<Slot, (Option<Ballot>, LogValue)> = BTreeMap::new();
        for report in promises.into_values().flat_map(|p| p.slots) {
            merge_report(&mut found, report);
        }
        if mutant::is(self.config.mutant, Mutant::SkipRecovery) {
            found.clear(); // wrong on purpose: forgets what earlier ballots may have chosen
        }
        let first_slot = from_slot.max(compacted + 1);
        let last_found = found.keys().next_back().copied().unwrap_or(0);
        let end_slot = last_found.max(first_slot - 1);
        for slot in first_slot..=end_slot {
            let value = found.remove(&slot).map_or(LogValue::Noop, |(_, v)| v);
            leader.recovery.push_back((slot, value));
        }
        leader.ready_slot = end_slot + 1;
        leader.recovery.push_back((end_slot + 1, LogValue::Noop));
        leader.next_slot = end_slot + 2;
        if compacted > self.chosen_through {
            self.note_chosen_elsewhere(now_ns, holder, compacted);
        }
        self.fill_window();
    }

    /// Proposes recovery slots, then batches of pending writes, while the window has room.
    fn fill_window(&mut self) {
        let window_max = self.config.window_max;
        let batch_max = self.config.batch_commands_max;
        loop {
            let Some(leader) = &mut self.leader else {
                return;
            };
            if !matches!(leader.phase, LeaderPhase::Active) || leader.inflight.len() >= window_max {
                return;
            }
            let interval = self.config.checkpoint_interval_slots;
            let checkpoint = checkpoint_due(&self.state_hashes, interval, leader.last_checkpoint);
            let (slot, value) = if let Some(next) = leader.recovery.pop_front() {
                next
            } else if let Some(checkpoint) = checkpoint {
                if let LogValue::Checkpoint { at_slot, .. } = &checkpoint {
                    leader.last_checkpoint = *at_slot;
                }
                let slot = leader.next_slot;
                leader.next_slot += 1;
                (slot, checkpoint)
            } else if !leader.pending.is_empty() {
                let take = batch_len(&leader.pending, batch_max, self.config.batch_bytes_max);
                let batch: Vec<ClientRequest> = leader.pending.drain(..take).collect();
                for request in &batch {
                    leader.awaiting.insert((request.client_id, request.seq));
                }
                let slot = leader.next_slot;
                leader.next_slot += 1;
                (slot, LogValue::Batch(batch.into()))
            } else {
                return;
            };
            let ballot = leader.ballot;
            let acks = BTreeSet::new();
            leader.inflight.insert(
                slot,
                InFlight {
                    value: value.clone(),
                    acks,
                },
            );
            self.broadcast(Message::Accept(Accept {
                ballot,
                slot,
                value,
            }));
        }
    }

    fn on_accepted(&mut self, from: NodeId, msg: Accepted) {
        let quorum = if mutant::is(self.config.mutant, Mutant::MinorityCommit) {
            1 // wrong on purpose: one acceptor is not a majority
        } else {
            majority(self.config.nodes.len())
        };
        let Some(leader) = &mut self.leader else {
            return;
        };
        if msg.ballot != leader.ballot {
            return;
        }
        let Some(entry) = leader.inflight.get_mut(&msg.slot) else {
            return;
        };
        entry.acks.insert(from);
        if entry.acks.len() < quorum {
            return;
        }
        let entry = leader.inflight.remove(&msg.slot).expect("entry exists");
        let ballot = leader.ballot;
        self.learn(msg.slot, entry.value);
        let chosen_through = self.chosen_through;
        self.broadcast_to_followers(Message::Commit(Commit {
            ballot,
            chosen_through,
        }));
        self.fill_window();
    }

    fn broadcast_to_followers(&mut self, msg: Message) {
        for i in 0..self.config.nodes.len() {
            let to = self.config.nodes[i];
            if to != self.config.node_id {
                self.send_now(to, msg.clone());
            }
        }
    }

    fn on_nack(&mut self, now_ns: Nanos, msg: Nack) {
        self.log_highest_seen = self.log_highest_seen.max(msg.highest);
        let Some(leader) = &self.leader else {
            return;
        };
        if msg.ballot != leader.ballot || msg.highest <= leader.ballot {
            return;
        }
        // A higher ballot exists: this mastership's phase 1 or 2 cannot finish. Start over
        // with a higher ballot if the lease is still ours.
        self.step_down(None);
        if self.lease_proposer.held_until(now_ns).is_some() {
            self.become_leader(now_ns);
        }
    }

    fn tick_leader(&mut self, now_ns: Nanos) {
        let Some(leader) = &mut self.leader else {
            return;
        };
        if now_ns >= leader.heartbeat_at_ns {
            leader.heartbeat_at_ns = now_ns + self.config.heartbeat_interval_ns;
            let commit = Commit {
                ballot: leader.ballot,
                chosen_through: self.chosen_through,
            };
            self.broadcast_to_followers(Message::Commit(commit));
        }
        let Some(leader) = &mut self.leader else {
            return;
        };
        if now_ns >= leader.retransmit_at_ns {
            leader.retransmit_at_ns = now_ns + self.config.retransmit_interval_ns;
            self.retransmit();
        }
    }

    /// Sends unanswered prepares and accepts again, to the replicas that have not answered.
    fn retransmit(&mut self) {
        let Some(leader) = &self.leader else {
            return;
        };
        let ballot = leader.ballot;
        let mut sends = Vec::new();
        match &leader.phase {
            LeaderPhase::Preparing {
                from_slot,
                promises,
            } => {
                let msg = Message::Prepare(Prepare {
                    ballot,
                    from_slot: *from_slot,
                });
                for to in self
                    .config
                    .nodes
                    .iter()
                    .filter(|n| !promises.contains_key(n))
                {
                    sends.push((*to, msg.clone()));
                }
            }
            LeaderPhase::Active => {
                for (slot, entry) in &leader.inflight {
                    let accept = Accept {
                        ballot,
                        slot: *slot,
                        value: entry.value.clone(),
                    };
                    for to in self.config.nodes.iter().filter(|n| !entry.acks.contains(n)) {
                        sends.push((*to, Message::Accept(accept.clone())));
                    }
                }
            }
        }
        for (to, msg) in sends {
            self.send_now(to, msg);
        }
    }
}

/// How many requests from the front of `pending` make the next batch: at least one, at most
/// `commands_max`, and no more than `bytes_max` of payload unless the first alone exceeds it.
fn batch_len(pending: &VecDeque<ClientRequest>, commands_max: usize, bytes_max: usize) -> usize {
    let mut bytes = 0usize;
    let fitting = pending.iter().take(commands_max).take_while(|request| {
        bytes += request.command.payload_bytes();
        bytes <= bytes_max
    });
    fitting.count().max(1)
}

/// Keeps, per slot, a value known chosen over any merely accepted one, and among accepted
/// ones the one with the highest ballot.
fn merge_report(found: &mut BTreeMap<Slot, (Option<Ballot>, LogValue)>, report: SlotReport) {
    let replace = match found.get(&report.slot) {
        None => true,
        Some((None, existing)) => {
            if report.accepted_ballot.is_none() {
                assert_eq!(existing, &report.value, "two chosen values for one slot");
            }
            false
        }
        Some((Some(b), _)) => report.accepted_ballot.is_none_or(|r| r > *b),
    };
    if replace {
        found.insert(report.slot, (report.accepted_ballot, report.value));
    }
}

// ---- log acceptor --------------------------------------------------------------------------

impl Replica {
    /// Notes `ballot`, and answers a `Nack` if it is below this acceptor's promise.
    fn refuse_lower_ballot(&mut self, from: NodeId, ballot: Ballot) -> bool {
        self.log_highest_seen = self.log_highest_seen.max(ballot);
        let accepts =
            ballot >= self.promised || mutant::is(self.config.mutant, Mutant::AcceptLowerBallot);
        if !accepts {
            let highest = self.promised;
            self.send_now(from, Message::Nack(Nack { ballot, highest }));
        }
        !accepts
    }

    fn on_prepare(&mut self, from: NodeId, msg: Prepare) {
        if self.recovery.is_some() {
            return; // not voting until recovered
        }
        if self.refuse_lower_ballot(from, msg.ballot) {
            return;
        }
        if from != self.config.node_id && self.leader.is_some() {
            self.yield_to(from); // a newer master is taking over
        }
        self.promised = self.promised.max(msg.ballot);
        let token = self.persist(vec![StorageWrite::Promise { ballot: msg.ballot }]);
        let promise = Promise {
            ballot: msg.ballot,
            from_slot: msg.from_slot,
            slots: self.slot_reports(msg.from_slot),
            compacted_through: self.compacted_through,
        };
        self.send_after(token, from, Message::Promise(promise));
    }

    /// Every slot from `from_slot` on that this replica knows chosen or has accepted.
    fn slot_reports(&self, from_slot: Slot) -> Vec<SlotReport> {
        let chosen = self
            .chosen
            .range(from_slot..)
            .map(|(slot, value)| SlotReport {
                slot: *slot,
                accepted_ballot: None,
                value: value.clone(),
            });
        let accepted = self
            .accepted
            .range(from_slot..)
            .map(|(slot, (b, value))| SlotReport {
                slot: *slot,
                accepted_ballot: Some(*b),
                value: value.clone(),
            });
        chosen.chain(accepted).collect()
    }

    fn on_accept(&mut self, now_ns: Nanos, from: NodeId, msg: Accept) {
        if self.recovery.is_some() {
            return; // not voting until recovered
        }
        if self.refuse_lower_ballot(from, msg.ballot) {
            return;
        }
        if from != self.config.node_id {
            self.note_master_contact(now_ns, from, msg.ballot);
        }
        self.promised = self.promised.max(msg.ballot);
        if !self.chosen.contains_key(&msg.slot) {
            self.accepted
                .insert(msg.slot, (msg.ballot, msg.value.clone()));
        }
        let write = StorageWrite::Accept {
            slot: msg.slot,
            ballot: msg.ballot,
            value: msg.value,
        };
        let token = self.persist(vec![write]);
        let accepted = Accepted {
            ballot: msg.ballot,
            slot: msg.slot,
        };
        self.send_after(token, from, Message::Accepted(accepted));
    }

    fn note_master_contact(&mut self, now_ns: Nanos, master: NodeId, ballot: Ballot) {
        if self.leader.as_ref().is_some_and(|l| l.ballot < ballot) {
            self.yield_to(master);
        }
        self.master_hint = Some(master);
        self.last_master_contact_ns = Some(now_ns);
    }
}

// ---- learning and applying -----------------------------------------------------------------

impl Replica {
    fn on_commit(&mut self, now_ns: Nanos, from: NodeId, msg: Commit) {
        self.note_master_contact(now_ns, from, msg.ballot);
        let mut slot = self.chosen_through + 1;
        while slot <= msg.chosen_through {
            if !self.chosen.contains_key(&slot) {
                match self.accepted.get(&slot) {
                    Some((b, value)) if *b == msg.ballot => {
                        let value = value.clone();
                        self.learn(slot, value);
                    }
                    _ => break,
                }
            }
            slot += 1;
        }
        if self.chosen_through < msg.chosen_through {
            self.note_chosen_elsewhere(now_ns, from, msg.chosen_through);
        }
    }

    /// `peer` has chosen through `through`, beyond this replica: catch up from it.
    fn note_chosen_elsewhere(&mut self, now_ns: Nanos, peer: NodeId, through: Slot) {
        // The latest report wins even if an earlier one named a higher slot: this peer was
        // just heard from, the earlier one may since be cut off or down, and asking it forever
        // would stall (a new master behind a follower's compaction point never caught up).
        self.catchup_target = Some((peer, through));
        if self.catchup_retry_at_ns.is_none_or(|t| now_ns >= t) {
            self.request_catchup(now_ns); // one request in flight at a time
        }
    }

    fn request_catchup(&mut self, now_ns: Nanos) {
        let Some((peer, through)) = self.catchup_target else {
            return;
        };
        if self.chosen_through >= through {
            self.catchup_target = None;
            self.catchup_retry_at_ns = None;
            return;
        }
        self.catchup_retry_at_ns = Some(now_ns + self.config.retransmit_interval_ns);
        let resume = self
            .incoming_snapshot
            .as_ref()
            .map(|(_, a)| SnapshotResume {
                slot: a.meta().slot,
                offset: a.next_offset(),
            });
        let from_slot = self.chosen_through + 1;
        let request = CatchupRequest { from_slot, resume };
        self.send_now(peer, Message::CatchupRequest(request));
    }

    /// Asks again when a request or its answer was lost.
    fn tick_catchup(&mut self, now_ns: Nanos) {
        if self.catchup_retry_at_ns.is_some_and(|t| now_ns >= t) {
            self.request_catchup(now_ns);
        }
    }

    fn on_catchup_request(&mut self, from: NodeId, msg: CatchupRequest) {
        let mut reply = CatchupReply {
            from_slot: msg.from_slot,
            values: Vec::new(),
            chosen_through: self.chosen_through,
            snapshot: None,
        };
        if msg.from_slot > self.compacted_through {
            reply.values = (msg.from_slot..)
                .map_while(|slot| self.chosen.get(&slot).cloned())
                .take(CATCHUP_ENTRIES_MAX)
                .collect();
        } else if let Some(image) = &self.snapshot {
            let offset = msg
                .resume
                .filter(|r| r.slot == image.meta.slot)
                .map_or(0, |r| r.offset);
            let bytes = image.chunk_at(offset).to_vec();
            let meta = image.meta;
            reply.snapshot = Some(SnapshotPiece {
                meta,
                offset,
                bytes,
            });
        }
        self.send_now(from, Message::CatchupReply(reply));
    }

    fn on_catchup_reply(&mut self, now_ns: Nanos, from: NodeId, msg: CatchupReply) {
        assert!(
            msg.values.len() <= CATCHUP_ENTRIES_MAX,
            "oversized catch-up reply"
        );
        let before = self.catchup_progress();
        if let Some(piece) = msg.snapshot {
            self.on_snapshot_piece(from, piece);
        }
        for (i, value) in msg.values.into_iter().enumerate() {
            let slot = msg.from_slot + i as Slot;
            if slot > self.compacted_through {
                self.learn(slot, value);
            }
        }
        if self.catchup_progress() == before {
            // A duplicate or a stale answer. Asking again now would let every duplicated
            // reply start a chain of its own; the retry timer asks instead.
            return;
        }
        self.catchup_retry_at_ns = None;
        if self.chosen_through < msg.chosen_through {
            self.note_chosen_elsewhere(now_ns, from, msg.chosen_through);
        }
    }

    /// How far catch-up has come: chosen slots, and bytes of a snapshot in transfer.
    fn catchup_progress(&self) -> (Slot, Option<u64>) {
        let offset = self
            .incoming_snapshot
            .as_ref()
            .map(|(_, a)| a.next_offset());
        (self.chosen_through, offset)
    }

    /// Records that `value` is chosen for `slot`, durably (without holding anything for it),
    /// and applies whatever has become contiguous.
    fn learn(&mut self, slot: Slot, value: LogValue) {
        if slot <= self.compacted_through {
            return; // covered by a snapshot already
        }
        if let Some(known) = self.chosen.get(&slot) {
            assert_eq!(known, &value, "two values chosen for slot {slot}");
            return;
        }
        let write = match self.accepted.remove(&slot) {
            Some((ballot, accepted)) if accepted == value => StorageWrite::Chosen { slot, ballot },
            _ => StorageWrite::Learn {
                slot,
                value: value.clone(),
            },
        };
        self.persist(vec![write]);
        self.chosen.insert(slot, value);
        self.advance_chosen();
    }

    fn advance_chosen(&mut self) {
        while self.chosen.contains_key(&(self.chosen_through + 1)) {
            self.chosen_through += 1;
        }
        while self.applied_through < self.chosen_through {
            self.apply_next();
        }
        self.serve_pending_reads();
        self.maybe_snapshot();
        self.finish_recovery_if_caught_up();
    }

    fn apply_next(&mut self) {
        let slot = self.applied_through + 1;
        let value = self.chosen.get(&slot).expect("chosen slot to apply");
        self.applied_chain = chain_hash(self.applied_chain, slot, value);
        self.applied_through = slot;
        let responses = match value {
            LogValue::Batch(requests) => self.state.apply_batch(slot, requests),
            LogValue::Checkpoint {
                at_slot,
                state_hash,
            } => {
                verify_checkpoint(&self.state_hashes, *at_slot, *state_hash, slot);
                self.state.apply_noop(slot);
                Vec::new()
            }
            LogValue::Noop => {
                self.state.apply_noop(slot);
                Vec::new()
            }
        };
        self.remember_state_hash(slot);
        let Some(leader) = &mut self.leader else {
            return;
        };
        for response in responses {
            if leader.awaiting.remove(&(response.client_id, response.seq)) {
                self.outputs.push_back(Output::Reply(response));
            }
        }
    }
}

impl Replica {
    fn remember_state_hash(&mut self, slot: Slot) {
        if self.state_hashes.len() == STATE_HASHES_KEPT_MAX {
            self.state_hashes.pop_front();
        }
        self.state_hashes.push_back((slot, self.state.state_hash()));
    }
}

/// The checkpoint the master proposes next, when one is due: its state hash after the last
/// slot it applied, once `interval` slots passed since `last_checkpoint`.
fn checkpoint_due(hashes: &VecDeque<(Slot, u64)>, interval: u64, last: Slot) -> Option<LogValue> {
    let (at_slot, state_hash) = hashes.back().copied()?;
    let due = at_slot >= last + interval;
    due.then_some(LogValue::Checkpoint {
        at_slot,
        state_hash,
    })
}

/// Compares a checkpoint with this replica's own state hash after `at_slot`. A mismatch means
/// two replicas applied the same log and hold different states: a bug or undetected corruption.
/// Stop rather than serve or extend diverged data.
fn verify_checkpoint(hashes: &VecDeque<(Slot, u64)>, at_slot: Slot, master_hash: u64, slot: Slot) {
    // A replica that installed a snapshot past `at_slot` has no hash for it: nothing to compare.
    let Some((_, own)) = hashes.iter().find(|(s, _)| *s == at_slot) else {
        return;
    };
    assert_eq!(
        *own, master_hash,
        "state divergence: after slot {at_slot} this replica's state hash is {own:#018x}, \
         the master's is {master_hash:#018x} (checkpoint in slot {slot})"
    );
}

/// One link of the applied-log hash chain: the previous link, the slot and the value.
fn chain_hash(previous: u64, slot: Slot, value: &LogValue) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = WordHasher(Hash64::new(previous).word(slot));
    value.hash(&mut hasher);
    hasher.finish()
}

/// `std::hash::Hasher` over the state machine's deterministic word hash.
struct WordHasher(Hash64);

impl std::hash::Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = self.0.bytes(bytes);
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = self.0.word(word);
    }

    fn write_usize(&mut self, word: usize) {
        self.0 = self.0.word(word as u64);
    }
}

// ---- snapshots and compaction -------------------------------------------------------------

impl Replica {
    /// Takes a snapshot once the next slot of this replica's schedule has been applied.
    fn maybe_snapshot(&mut self) {
        let in_flight = self.snapshot_in_flight.as_ref().map(|(_, i)| i.meta.slot);
        let last = in_flight
            .or(self.snapshot.as_ref().map(|i| i.meta.slot))
            .unwrap_or(0);
        let due = self.applied_through >= self.next_snapshot_slot(last);
        if !due || self.snapshot_in_flight.is_some() {
            return;
        }
        let image = Arc::new(SnapshotImage::capture(
            &self.state,
            self.applied_chain,
            self.promised,
        ));
        let token = self.persist(vec![StorageWrite::Snapshot(image.clone())]);
        self.snapshot_in_flight = Some((token, image));
    }

    /// The first slot above `last` in this replica's snapshot schedule: every
    /// `snapshot_interval_slots`, shifted by the replica's place among the members times
    /// interval / members. Taking and writing a snapshot holds a replica's event loop for a while
    /// (about 0.3 s with 500,000 keys); staggered, no two replicas of a cluster take theirs at
    /// the same slot, so a majority keeps accepting while one is busy.
    fn next_snapshot_slot(&self, last: Slot) -> Slot {
        let interval = self.config.snapshot_interval_slots;
        let members = self.config.nodes.len() as u64;
        let place = self
            .config
            .nodes
            .iter()
            .position(|&n| n == self.config.node_id)
            .expect("a replica is one of the members") as u64;
        let phase = place * interval / members;
        if last < phase {
            return phase; // above 0, since last is not below 0
        }
        ((last - phase) / interval + 1) * interval + phase
    }

    /// Drops log entries the durable snapshot covers, keeping `log_retain_slots` below it.
    fn compact(&mut self) {
        let covered = self.snapshot.as_ref().map_or(0, |i| i.meta.slot);
        let mut through = covered.saturating_sub(self.config.log_retain_slots);
        if mutant::is(self.config.mutant, Mutant::TruncateWithoutSnapshot) {
            through = self.applied_through; // wrong on purpose: beyond what the snapshot covers
        }
        if through <= self.compacted_through {
            return;
        }
        self.drop_log_through(through);
        self.persist(vec![StorageWrite::Compact {
            through_slot: through,
        }]);
    }

    fn drop_log_through(&mut self, through: Slot) {
        assert!(
            through <= self.applied_through,
            "only applied entries are dropped"
        );
        self.chosen = self.chosen.split_off(&(through + 1));
        self.accepted = self.accepted.split_off(&(through + 1));
        self.compacted_through = self.compacted_through.max(through);
    }

    fn on_snapshot_piece(&mut self, from: NodeId, piece: SnapshotPiece) {
        if piece.meta.slot <= self.chosen_through {
            self.incoming_snapshot = None; // already past it
            return;
        }
        let same = matches!(&self.incoming_snapshot, Some((_, a)) if *a.meta() == piece.meta);
        if !same {
            self.incoming_snapshot = Some((from, SnapshotAssembly::new(piece.meta)));
        }
        let (_, assembly) = self.incoming_snapshot.as_mut().expect("set above");
        if assembly.offer(piece.offset, &piece.bytes).is_err() {
            self.incoming_snapshot = None; // start over
            return;
        }
        if !assembly.is_complete() {
            return; // the caller asks for the next chunk
        }
        let (_, assembly) = self.incoming_snapshot.take().expect("set above");
        let verified = assembly.finish().and_then(|i| i.restore().map(|s| (i, s)));
        if let Ok((image, state)) = verified {
            self.install_snapshot(Arc::new(image), state);
        }
    }

    /// Replaces this replica's state with a verified snapshot from a peer.
    fn install_snapshot(&mut self, image: Arc<SnapshotImage>, state: crate::kv::StateMachine) {
        assert!(image.meta.slot > self.chosen_through);
        self.persist(vec![
            StorageWrite::Snapshot(image.clone()),
            StorageWrite::Compact {
                through_slot: image.meta.slot,
            },
        ]);
        self.snapshot_in_flight = None;
        self.adopt_snapshot(image, state);
        self.advance_chosen();
    }

    /// Makes `state` (restored from `image`) the applied state; entries it covers are dropped.
    fn adopt_snapshot(&mut self, image: Arc<SnapshotImage>, state: crate::kv::StateMachine) {
        let slot = image.meta.slot;
        assert_eq!(state.applied_slot(), slot);
        self.state = state;
        self.state.set_mutant(self.config.mutant);
        self.applied_through = slot;
        self.chosen_through = self.chosen_through.max(slot);
        self.applied_chain = image.meta.applied_chain;
        self.state_hashes.clear();
        self.remember_state_hash(slot);
        self.drop_log_through(slot);
        self.snapshot = Some(image);
    }
}

// ---- recovery from damaged storage --------------------------------------------------------

impl Replica {
    fn tick_recovery(&mut self, now_ns: Nanos) {
        let Some(recovery) = &mut self.recovery else {
            return;
        };
        if recovery.horizon.is_some() || now_ns < recovery.query_at_ns {
            return;
        }
        recovery.query_at_ns = now_ns + self.config.retransmit_interval_ns;
        let query = RecoveryQuery {
            nonce: recovery.nonce,
        };
        // Ask again whoever has not answered, or answered while recovering itself.
        let trusted = |n: &NodeId| recovery.reports.get(n).is_some_and(|r| r.trusted);
        let silent: Vec<NodeId> = self
            .config
            .nodes
            .iter()
            .filter(|n| **n != self.config.node_id && !trusted(n))
            .copied()
            .collect();
        for to in silent {
            self.send_now(to, Message::RecoveryQuery(query.clone()));
        }
    }

    fn on_recovery_query(&mut self, from: NodeId, msg: RecoveryQuery) {
        let last = |m: Option<Slot>| m.unwrap_or(0);
        let log_end_slot = last(self.chosen.keys().next_back().copied())
            .max(last(self.accepted.keys().next_back().copied()))
            .max(self.chosen_through)
            .max(self.compacted_through);
        let report = RecoveryReport {
            nonce: msg.nonce,
            trusted: self.recovery.is_none(),
            promised: self.promised,
            log_end_slot,
            chosen_through: self.chosen_through,
        };
        self.send_now(from, Message::RecoveryReport(report));
    }

    fn on_recovery_report(&mut self, now_ns: Nanos, from: NodeId, msg: RecoveryReport) {
        let others = self.config.nodes.len() - 1;
        let quorum = majority(self.config.nodes.len());
        let Some(recovery) = &mut self.recovery else {
            return;
        };
        if msg.nonce != recovery.nonce || recovery.horizon.is_some() {
            return;
        }
        recovery.reports.insert(from, msg);
        let untrusted = recovery.reports.values().filter(|r| !r.trusted).count();
        if recovery.reports.len() < others || untrusted + 1 >= quorum {
            return;
        }
        let trusted = || recovery.reports.iter().filter(|(_, r)| r.trusted);
        let horizon = trusted().map(|(_, r)| r.log_end_slot).max();
        let promised = trusted().map(|(_, r)| r.promised).max();
        let ahead = trusted().map(|(n, r)| (r.chosen_through, *n)).max();
        recovery.horizon = horizon;
        if let Some(promised) = promised.filter(|p| *p > self.promised) {
            self.promised = promised;
            self.log_highest_seen = self.log_highest_seen.max(promised);
            self.persist(vec![StorageWrite::Promise { ballot: promised }]);
        }
        if let Some((through, peer)) = ahead.filter(|(t, _)| *t > self.chosen_through) {
            self.note_chosen_elsewhere(now_ns, peer, through);
        }
        self.finish_recovery_if_caught_up();
    }

    fn finish_recovery_if_caught_up(&mut self) {
        let horizon = self.recovery.as_ref().and_then(|r| r.horizon);
        if horizon.is_some_and(|h| self.chosen_through >= h) {
            self.recovery = None;
        }
    }
}

// ---- client requests -----------------------------------------------------------------------

impl Replica {
    fn refuse_not_master(&mut self, request: &ClientRequest) {
        let hint = self.master_hint();
        self.reply(
            request,
            Outcome::Rejected(Rejection::NotMaster { master_hint: hint }),
        );
    }

    fn request_write(&mut self, request: ClientRequest) {
        let pending_max = self.config.pending_requests_max;
        let Some(leader) = &mut self.leader else {
            return self.refuse_not_master(&request);
        };
        if leader.pending.len() >= pending_max {
            return self.reply(&request, Outcome::Rejected(Rejection::Busy));
        }
        leader.pending.push_back(request);
        self.fill_window();
    }

    fn request_read(&mut self, now_ns: Nanos, request: ClientRequest) {
        if self.serves_reads(now_ns) {
            let reply = self.state.read(&request.command);
            return self.reply(&request, Outcome::Done(reply));
        }
        let pending_max = self.config.pending_requests_max;
        match &mut self.leader {
            Some(leader) if leader.pending_reads.len() < pending_max => {
                leader.pending_reads.push_back(request); // served once the mastership is ready
            }
            Some(_) => self.reply(&request, Outcome::Rejected(Rejection::Busy)),
            None => self.refuse_not_master(&request),
        }
    }

    /// Serves reads that waited for this mastership to become ready. Called after applying;
    /// reads are only served while the lease is held, which `tick_lease` enforces by stepping
    /// down (and refusing them) once it is not.
    fn serve_pending_reads(&mut self) {
        let Some(leader) = &mut self.leader else {
            return;
        };
        if !matches!(leader.phase, LeaderPhase::Active) || self.applied_through < leader.ready_slot
        {
            return;
        }
        let reads: Vec<ClientRequest> = leader.pending_reads.drain(..).collect();
        for request in reads {
            let reply = self.state.read(&request.command);
            self.reply(&request, Outcome::Done(reply));
        }
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
