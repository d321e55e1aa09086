//! The simulated cluster: replicas, their clocks and disks, the network, the clients, and the
//! event loop that drives them in true time.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::hash::Hasher;

use rand::Rng;

use keyspace_checker::Recorder;
use keyspace_core::{
    Ballot, ClientId, ClientRequest, ClientResponse, Command, CommandError, Message, Mutant, Nanos,
    NodeId, Outcome, Output, Rejection, Replica, ReplicaConfig, Reply, Seq, Slot,
    OPENED_SESSION_BIT,
};

use crate::checks::{check_acceptor_write, check_durable_before_send, Ledger};
use crate::clock::Clock;
use crate::disk::{Disk, StorageFault};
use crate::guard::guarded;
use crate::plan::{chance, FaultPlan, Streams, NANOS_PER_MILLI, NANOS_PER_SEC};
use crate::trace::{message_digest, request_digest, response_digest, Fx};
use crate::workload::{random_command, Client, Pending};
use crate::{Failure, FailureKind, SimOptions, Stats};

/// How long after the faults stop, and every message sent before then was delivered, a
/// majority must complete [`LIVENESS_WRITES`] writes.
pub const LIVENESS_BOUND_NS: Nanos = 10 * NANOS_PER_SEC;
/// Writes the liveness phase requires.
pub const LIVENESS_WRITES: u64 = 3;
/// Quiet time after the liveness writes, for followers to catch up before the final checks.
const SETTLE_NS: Nanos = NANOS_PER_SEC;
/// A client gives up on an attempt after this long and tries another replica.
const CLIENT_TIMEOUT_NS: Nanos = 500 * NANOS_PER_MILLI;
/// A client gives up on a request after this many attempts or this long.
const CLIENT_ATTEMPTS_MAX: u32 = 10;
const CLIENT_BUDGET_NS: Nanos = 5 * NANOS_PER_SEC;
/// Think time between a client's requests.
const THINK_MIN_NS: Nanos = 20 * NANOS_PER_MILLI;
const THINK_MAX_NS: Nanos = 150 * NANOS_PER_MILLI;
/// Wait before retrying when no replica said where the master is.
const BACKOFF_MAX_NS: Nanos = 100 * NANOS_PER_MILLI;
/// Events one run may process; healthy runs of the default size take well under 100,000.
const EVENTS_MAX: u64 = 3_000_000;
/// Master hints a client follows in a row before it tries a random replica.
const HINT_HOPS_MAX: u32 = 2;
/// A timer never fires earlier than this after the input that set it (no busy loops).
const TIMER_MIN_NS: Nanos = 1_000;

#[derive(Debug)]
enum Event {
    Peer {
        from: usize,
        to: usize,
        msg: Message,
    },
    Request {
        client: usize,
        to: usize,
        request: ClientRequest,
    },
    /// `id` names one reply a replica sent; a duplicate on the wire has the same id.
    Response {
        from: usize,
        client: usize,
        id: u64,
        response: ClientResponse,
    },
    Timer {
        node: usize,
        gen: u64,
    },
    Synced {
        node: usize,
        incarnation: u32,
        token: u64,
    },
    Restart {
        node: usize,
        incarnation: u32,
    },
    ClientWake {
        client: usize,
    },
    ClientTimer {
        client: usize,
        gen: u64,
        retry: bool,
    },
    Partition,
    Heal {
        gen: u64,
    },
    Crash,
    Pause,
    /// A fault at rest on a replica of the fault atlas.
    StorageFault,
    /// The `ack-before-fsync` mutant: the disk reports `token` durable before its sync.
    EarlyAck {
        node: usize,
        incarnation: u32,
        token: u64,
    },
    PhaseEnd,
    LivenessDeadline,
    End,
}

impl Event {
    /// The replica an event is for, if it must wait while that replica is paused.
    fn target(&self) -> Option<usize> {
        match self {
            Event::Peer { to, .. } | Event::Request { to, .. } => Some(*to),
            Event::Timer { node, .. }
            | Event::Synced { node, .. }
            | Event::EarlyAck { node, .. } => Some(*node),
            _ => None,
        }
    }

    fn tag(&self) -> u64 {
        match self {
            Event::Peer { .. } => 1,
            Event::Request { .. } => 2,
            Event::Response { .. } => 3,
            Event::Timer { .. } => 4,
            Event::Synced { .. } => 5,
            Event::Restart { .. } => 6,
            Event::ClientWake { .. } => 7,
            Event::ClientTimer { .. } => 8,
            Event::Partition => 9,
            Event::Heal { .. } => 10,
            Event::Crash => 11,
            Event::Pause => 12,
            Event::PhaseEnd => 13,
            Event::LivenessDeadline => 14,
            Event::End => 15,
            Event::StorageFault => 16,
            Event::EarlyAck { .. } => 17,
        }
    }
}

struct Queued {
    at: Nanos,
    seq: u64,
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    /// Reversed: the heap pops the earliest event, ties in insertion order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What a client does after an answer that was not `Done`.
enum Next {
    Now,
    Backoff,
    GiveUp,
}

enum Input {
    Message(NodeId, Message),
    Request(ClientRequest),
    Timeout,
    Persisted(u64),
}

struct Node {
    id: NodeId,
    replica: Option<Replica>,
    clock: Clock,
    disk: Disk,
    incarnation: u32,
    timer_gen: u64,
    timer_at: Option<Nanos>,
    paused_until: Nanos,
    applied_seen: Slot,
    /// Highest log ballot this incarnation promised or accepted (durable ones included).
    ballot_floor: Ballot,
    /// Left down by the liveness phase.
    stay_down: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Faults,
    Liveness,
    Settle,
}

pub struct World {
    opts: SimOptions,
    pub plan: FaultPlan,
    now: Nanos,
    queue: BinaryHeap<Queued>,
    next_seq: u64,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    /// `blocked[from * n + to]`: messages from `from` to `to` are dropped.
    blocked: Vec<bool>,
    partition_gen: u64,
    rng: Streams,
    pub recorder: Recorder,
    /// Writes answered `Done`: they must never be lost.
    acked: Vec<(ClientId, Seq)>,
    /// The client each opened session belongs to (replies carry the session's id).
    session_clients: BTreeMap<ClientId, usize>,
    ledger: Ledger,
    trace: Fx,
    pub stats: Stats,
    phase: Phase,
    calm: bool,
    liveness_left: u64,
    next_response_id: u64,
    out: Vec<Output>,
}

impl World {
    pub fn new(opts: &SimOptions) -> World {
        let mut rng = Streams::new(opts.seed);
        let mut plan = FaultPlan::draw(opts.faults, opts.nodes, &mut rng.plan);
        if opts.storage_beyond_budget {
            plan.exceed_storage_budget();
        }
        let n = opts.nodes;
        let nodes = (0..n)
            .map(|i| Node {
                id: (i + 1) as NodeId,
                replica: None,
                clock: Clock::new(plan.clock_offset_ns[i], plan.drift_ppm[i]),
                disk: Disk::default(),
                incarnation: 0,
                timer_gen: 0,
                timer_at: None,
                paused_until: 0,
                applied_seen: 0,
                ballot_floor: Ballot::ZERO,
                stay_down: false,
            })
            .collect();
        // Every second client opens its sessions through the log, as node connections do, and
        // every client does where the store forgets sessions: a retry under a client-chosen id
        // the store forgot would start the session again and apply a second time.
        let opened =
            |c: usize| !opts.client_chosen_sessions && (c % 2 == 1 || plan.forgets_sessions());
        let mut clients: Vec<Client> = (0..opts.clients)
            .map(|c| Client::new(c as ClientId + 1, false, opened(c)))
            .collect();
        let liveness_id = opts.clients as ClientId + 1;
        let liveness_opens = !opts.client_chosen_sessions && plan.forgets_sessions();
        clients.push(Client::new(liveness_id, true, liveness_opens));
        World {
            opts: opts.clone(),
            plan,
            now: 0,
            queue: BinaryHeap::with_capacity(1024),
            next_seq: 0,
            nodes,
            clients,
            blocked: vec![false; n * n],
            partition_gen: 0,
            rng,
            recorder: Recorder::with_capacity(2048),
            acked: Vec::new(),
            session_clients: BTreeMap::new(),
            ledger: Ledger::default(),
            trace: Fx::new(),
            stats: Stats::default(),
            phase: Phase::Faults,
            calm: false,
            liveness_left: LIVENESS_WRITES,
            next_response_id: 0,
            out: Vec::new(),
        }
    }

    pub fn trace_hash(&self) -> u64 {
        self.trace.finish()
    }

    fn schedule(&mut self, at: Nanos, event: Event) {
        self.next_seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.next_seq,
            event,
        });
    }

    fn safety(message: String) -> Failure {
        Failure {
            kind: FailureKind::Safety,
            message,
        }
    }

    /// Runs both phases; the first failure ends the run.
    pub fn run(&mut self) -> Result<(), Failure> {
        self.start()?;
        while let Some(Queued { at, event, .. }) = self.queue.pop() {
            debug_assert!(at >= self.now);
            self.now = at;
            if let Some(node) = event.target() {
                if self.nodes[node].paused_until > at {
                    let until = self.nodes[node].paused_until;
                    self.schedule(until, event);
                    continue;
                }
            }
            if self.is_stale(&event) {
                continue;
            }
            self.record_event(&event);
            if self.stats.events > EVENTS_MAX {
                return Err(self.storm());
            }
            let end = matches!(event, Event::End);
            self.stats.sim_ns = self.now;
            self.stats.slots = self.ledger.slots_applied() as u64;
            self.handle(event)?;
            self.check_lease_holders()?;
            if end {
                self.stats.sim_ns = self.now;
                return self.final_checks();
            }
        }
        unreachable!("the event queue never empties before the end event")
    }

    /// The run processed far more events than any healthy run: messages multiply.
    fn storm(&self) -> Failure {
        Failure {
            kind: FailureKind::Liveness,
            message: format!(
                "no end in sight: {EVENTS_MAX} events processed by simulated time {:.3}s (a message storm?)",
                self.now as f64 / 1e9
            ),
        }
    }

    fn start(&mut self) -> Result<(), Failure> {
        for i in 0..self.nodes.len() {
            self.restart(i)?;
        }
        for c in 0..self.opts.clients {
            let at = self.rng.workload.gen_range(0..=THINK_MAX_NS);
            self.schedule(at, Event::ClientWake { client: c });
        }
        let duration = self.opts.duration_s * NANOS_PER_SEC;
        self.schedule(duration, Event::PhaseEnd);
        for (every, event) in [
            (self.plan.partition_every_ns, Event::Partition),
            (self.plan.crash_every_ns, Event::Crash),
            (self.plan.pause_every_ns, Event::Pause),
            (self.plan.storage_fault_every_ns, Event::StorageFault),
        ] {
            if every > 0 {
                let at = self.rng.faults.gen_range(0..=2 * every);
                self.schedule(at, event);
            }
        }
        Ok(())
    }

    fn is_stale(&self, event: &Event) -> bool {
        match event {
            Event::Timer { node, gen } => self.nodes[*node].timer_gen != *gen,
            Event::Synced {
                node, incarnation, ..
            }
            | Event::EarlyAck {
                node, incarnation, ..
            } => self.nodes[*node].incarnation != *incarnation,
            Event::ClientTimer { client, gen, .. } => self.clients[*client].timer_gen != *gen,
            _ => false,
        }
    }

    fn record_event(&mut self, event: &Event) {
        self.stats.events += 1;
        let (node, digest) = match event {
            Event::Peer { from, to, msg } => ((from * 8 + to) as u64, message_digest(msg)),
            Event::Request {
                client,
                to,
                request,
            } => ((client * 8 + to) as u64, request_digest(request)),
            Event::Response {
                from,
                client,
                response,
                ..
            } => ((client * 8 + from) as u64, response_digest(response)),
            Event::Timer { node, .. } | Event::Restart { node, .. } => (*node as u64, 0),
            Event::Synced { node, token, .. } | Event::EarlyAck { node, token, .. } => {
                (*node as u64, *token)
            }
            Event::ClientWake { client } | Event::ClientTimer { client, .. } => (*client as u64, 0),
            _ => (0, 0),
        };
        self.trace.write_u64(self.now);
        self.trace.write_u64(event.tag());
        self.trace.write_u64(node);
        self.trace.write_u64(digest);
        if self.opts.trace {
            eprintln!("{:>14.9} {:?}", self.now as f64 / 1e9, event);
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), Failure> {
        match event {
            Event::Peer { from, to, msg } => {
                if self.is_blocked(from, to) {
                    return Ok(()); // a partition began while it was in flight
                }
                self.stats.messages_delivered += 1;
                self.drive(to, Input::Message(self.nodes[from].id, msg))
            }
            Event::Request {
                client,
                to,
                request,
            } => self.deliver_request(client, to, request),
            Event::Response {
                from,
                client,
                id,
                response,
            } => {
                self.client_response(client, from, id, response);
                Ok(())
            }
            Event::Timer { node, .. } => {
                self.nodes[node].timer_at = None;
                self.drive(node, Input::Timeout)
            }
            Event::Synced { node, token, .. } => self.synced(node, token),
            Event::Restart { node, incarnation } => {
                let n = &self.nodes[node];
                if n.replica.is_none() && n.incarnation == incarnation && !n.stay_down {
                    self.restart(node)?;
                }
                Ok(())
            }
            Event::ClientWake { client } => {
                self.client_wake(client);
                Ok(())
            }
            Event::ClientTimer { client, retry, .. } => {
                self.client_timer(client, retry);
                Ok(())
            }
            Event::Partition => {
                self.fault_partition();
                Ok(())
            }
            Event::Heal { gen } => {
                if gen == self.partition_gen && self.phase == Phase::Faults {
                    self.blocked.fill(false);
                }
                Ok(())
            }
            Event::Crash => {
                self.fault_crash();
                Ok(())
            }
            Event::Pause => {
                self.fault_pause();
                Ok(())
            }
            Event::StorageFault => {
                self.fault_storage();
                Ok(())
            }
            Event::EarlyAck { node, token, .. } => self.drive(node, Input::Persisted(token)),
            Event::PhaseEnd => self.end_faults(),
            Event::LivenessDeadline => self.liveness_deadline(),
            Event::End => Ok(()),
        }
    }

    // ---- driving replicas ---------------------------------------------------------------

    /// Hands `input` to replica `i` (if it is up), carries out every output, re-arms its timer
    /// and checks what it applied.
    fn drive(&mut self, i: usize, input: Input) -> Result<(), Failure> {
        let local = self.nodes[i].clock.local(self.now);
        let node = &mut self.nodes[i];
        let Some(replica) = node.replica.as_mut() else {
            return Ok(());
        };
        let mut out = std::mem::take(&mut self.out);
        let result = guarded(|| {
            match input {
                Input::Message(from, msg) => replica.handle_message(local, from, msg),
                Input::Request(request) => replica.handle_request(local, request),
                Input::Timeout => replica.handle_timeout(local),
                Input::Persisted(token) => replica.handle_persisted(local, token),
            }
            while let Some(output) = replica.poll_output() {
                out.push(output);
            }
            replica.poll_timeout()
        });
        let deadline = result.map_err(|panic| {
            Self::safety(format!(
                "replica {} stopped on a violated invariant: {panic}",
                i + 1
            ))
        })?;
        self.arm_timer(i, deadline);
        for output in out.drain(..) {
            self.carry_out(i, output)?;
        }
        self.out = out;
        self.observe(i)
    }

    fn arm_timer(&mut self, i: usize, deadline: Option<Nanos>) {
        let node = &mut self.nodes[i];
        let at = deadline.map(|d| node.clock.true_at(d).max(self.now + TIMER_MIN_NS));
        if at == node.timer_at {
            return;
        }
        node.timer_gen += 1;
        node.timer_at = at;
        let gen = node.timer_gen;
        if let Some(at) = at {
            self.schedule(at, Event::Timer { node: i, gen });
        }
    }

    fn carry_out(&mut self, i: usize, output: Output) -> Result<(), Failure> {
        let early_ack = self.mutant(Mutant::AckBeforeFsync);
        let node = &mut self.nodes[i];
        match output {
            Output::Send { to, msg } => {
                check_durable_before_send(node.disk.durable(), &msg, node.id)
                    .map_err(Self::safety)?;
                self.send_peer(i, to as usize - 1, msg);
            }
            Output::Persist { token, writes } => {
                for write in &writes {
                    check_acceptor_write(&mut node.ballot_floor, write, node.id)
                        .map_err(Self::safety)?;
                }
                node.disk.write(token, writes);
                if early_ack {
                    // Wrong on purpose: durable as far as the replica knows, not yet synced.
                    let incarnation = node.incarnation;
                    self.schedule(
                        self.now,
                        Event::EarlyAck {
                            node: i,
                            incarnation,
                            token,
                        },
                    );
                }
                if !self.nodes[i].disk.syncing {
                    self.start_sync(i);
                }
            }
            Output::Reply(response) => {
                let client = self.client_of(response.client_id);
                self.send_response(i, client, response);
            }
        }
        Ok(())
    }

    /// The client a reply to `client_id` goes to: a client's own id is its index plus one.
    fn client_of(&self, client_id: ClientId) -> usize {
        if client_id & OPENED_SESSION_BIT == 0 {
            return client_id as usize - 1;
        }
        *self
            .session_clients
            .get(&client_id)
            .unwrap_or_else(|| panic!("a reply to session {client_id}, which no client opened"))
    }

    fn start_sync(&mut self, i: usize) {
        let Some(token) = self.nodes[i].disk.newest_unsynced() else {
            return;
        };
        let latency = self.plan.sync_min_ns + self.rng.disk.gen_range(0..=self.plan.sync_jitter_ns);
        let node = &mut self.nodes[i];
        node.disk.syncing = true;
        let incarnation = node.incarnation;
        self.schedule(
            self.now + latency,
            Event::Synced {
                node: i,
                incarnation,
                token,
            },
        );
    }

    fn synced(&mut self, i: usize, token: u64) -> Result<(), Failure> {
        let disk = &mut self.nodes[i].disk;
        disk.synced(token);
        disk.syncing = false;
        if !self.mutant(Mutant::AckBeforeFsync) {
            self.drive(i, Input::Persisted(token))?;
        }
        if !self.nodes[i].disk.syncing {
            self.start_sync(i);
        }
        Ok(())
    }

    fn observe(&mut self, i: usize) -> Result<(), Failure> {
        let node = &mut self.nodes[i];
        let Some(replica) = &node.replica else {
            return Ok(());
        };
        node.applied_seen = self
            .ledger
            .observe(replica, node.applied_seen)
            .map_err(Self::safety)?;
        Ok(())
    }

    /// At most one replica believes it holds the lease at this instant of true time.
    fn check_lease_holders(&self) -> Result<(), Failure> {
        let mut holder: Option<usize> = None;
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(replica) = &node.replica else {
                continue;
            };
            let local = node.clock.local(self.now);
            if replica.lease_held_until(local).is_none() {
                continue;
            }
            if let Some(other) = holder {
                return Err(Self::safety(format!(
                    "two lease holders at true time {}ns: replicas {} and {}",
                    self.now,
                    other + 1,
                    i + 1
                )));
            }
            holder = Some(i);
        }
        Ok(())
    }

    fn mutant(&self, mutant: Mutant) -> bool {
        keyspace_core::mutant::is(self.opts.mutant, mutant)
    }

    fn crash(&mut self, i: usize) {
        let keep_max = self.nodes[i].disk.unsynced_records();
        let keep = if self.plan.crash_keeps_unsynced_prefix {
            self.rng.disk.gen_range(0..=keep_max)
        } else {
            0
        };
        // A torn write: part of the record after the kept ones reached the disk.
        let mut torn_bytes = 0;
        if self.plan.torn_writes && self.rng.disk.gen_bool(0.5) {
            if let Some(len) = self.nodes[i].disk.unsynced_record_bytes(keep) {
                torn_bytes = self.rng.disk.gen_range(1..len);
                self.stats.torn_writes += 1;
            }
        }
        let node = &mut self.nodes[i];
        node.replica = None;
        node.incarnation += 1;
        node.timer_gen += 1;
        node.timer_at = None;
        node.paused_until = 0;
        node.applied_seen = 0;
        node.disk.crash(keep, torn_bytes);
        self.stats.crashes += 1;
    }

    fn restart(&mut self, i: usize) -> Result<(), Failure> {
        let config = self.replica_config(i);
        let seed = self.rng.node_seeds.gen();
        let verify = !self.mutant(Mutant::SkipReadVerify);
        let node = &mut self.nodes[i];
        let durable = node.disk.load(verify);
        self.stats.loads_damaged += durable.damaged as u64;
        let floor = durable.promised;
        let local = node.clock.local(self.now);
        let replica = guarded(|| Replica::new(config, durable, local, seed)).map_err(|panic| {
            Self::safety(format!("replica {} failed to restart: {panic}", i + 1))
        })?;
        node.replica = Some(replica);
        node.incarnation += 1;
        node.ballot_floor = floor;
        self.drive(i, Input::Timeout)
    }

    fn replica_config(&self, i: usize) -> ReplicaConfig {
        let nodes = (1..=self.nodes.len() as NodeId).collect();
        let mut config = ReplicaConfig::new(self.nodes[i].id, nodes);
        config.lease.lease_duration_ns = NANOS_PER_SEC;
        config.lease.drift_rate_max_ppm = self.plan.drift_bound_ppm;
        config.snapshot_interval_slots = self.plan.snapshot_interval_slots;
        config.log_retain_slots = self.plan.log_retain_slots;
        config.checkpoint_interval_slots = self.plan.checkpoint_interval_slots;
        config.state_machine.sessions_max = self.plan.sessions_max;
        config.state_machine.session_idle_slots_max = self.plan.session_idle_slots_max;
        config.mutant = self.opts.mutant;
        config
    }

    // ---- network ------------------------------------------------------------------------

    fn is_blocked(&self, from: usize, to: usize) -> bool {
        self.blocked[from * self.nodes.len() + to]
    }

    fn delay(&mut self) -> Nanos {
        let plan = &self.plan;
        let rng = &mut self.rng.net;
        let mut delay = plan.delay_min_ns + rng.gen_range(0..=plan.delay_jitter_ns);
        if !self.calm && chance(rng, plan.tail_ppm) {
            delay += rng.gen_range(0..=plan.tail_max_ns);
        }
        delay
    }

    /// Extra delay of a duplicate: networks replay stale packets long after the original.
    fn duplicate_lag(&mut self) -> Nanos {
        let max = self.plan.tail_max_ns.max(NANOS_PER_SEC);
        self.rng.net.gen_range(0..=max)
    }

    /// How many copies of a message the network delivers: 0 (lost), 1, or 2 (duplicated).
    fn copies(&mut self) -> u32 {
        if self.calm {
            return 1;
        }
        if chance(&mut self.rng.net, self.plan.loss_ppm) {
            return 0;
        }
        1 + chance(&mut self.rng.net, self.plan.dup_ppm) as u32
    }

    fn send_peer(&mut self, from: usize, to: usize, msg: Message) {
        self.stats.messages_sent += 1;
        if self.is_blocked(from, to) {
            return;
        }
        let copies = self.copies();
        if copies == 2 {
            let at = self.now + self.delay() + self.duplicate_lag();
            self.schedule(
                at,
                Event::Peer {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
        if copies >= 1 {
            let at = self.now + self.delay();
            self.schedule(at, Event::Peer { from, to, msg });
        }
    }

    fn send_request(&mut self, client: usize, to: usize, request: ClientRequest) {
        let copies = self.copies();
        if let Some(pending) = &mut self.clients[client].pending {
            pending.copies_in_flight += copies;
        }
        for _ in 0..copies {
            let at = self.now + self.delay();
            let request = request.clone();
            self.schedule(
                at,
                Event::Request {
                    client,
                    to,
                    request,
                },
            );
        }
    }

    fn send_response(&mut self, from: usize, client: usize, response: ClientResponse) {
        let copies = self.copies();
        self.next_response_id += 1;
        let id = self.next_response_id;
        for _ in 0..copies {
            let at = self.now + self.delay();
            let response = response.clone();
            self.schedule(
                at,
                Event::Response {
                    from,
                    client,
                    id,
                    response,
                },
            );
        }
    }

    fn deliver_request(
        &mut self,
        c: usize,
        to: usize,
        request: ClientRequest,
    ) -> Result<(), Failure> {
        let up = self.nodes[to].replica.is_some();
        let client = &mut self.clients[c];
        if let Some(pending) = &mut client.pending {
            if pending.request_id == (request.client_id, request.seq) {
                pending.copies_in_flight -= 1;
                pending.copies_delivered += up as u32;
            }
        }
        self.drive(to, Input::Request(request))
    }

    // ---- clients ------------------------------------------------------------------------

    fn client_wake(&mut self, c: usize) {
        let client = &self.clients[c];
        let active = if client.liveness {
            self.phase == Phase::Liveness
        } else {
            self.phase == Phase::Faults
        };
        if !active || client.pending.is_some() {
            return;
        }
        let command = if client.liveness {
            let value = format!("{}", client.seq + 1).into_bytes();
            Command::Set {
                key: b"live".to_vec(),
                value,
            }
        } else {
            let command = random_command(&mut self.rng.workload);
            client.first_needed(command)
        };
        let client = &mut self.clients[c];
        let request_id = client.next_request_id(&command);
        let op = self.recorder.invoke(client.id, self.now, command.clone());
        client.pending = Some(Pending {
            op,
            command,
            request_id,
            invoked_ns: self.now,
            attempts: 0,
            copies_in_flight: 0,
            copies_delivered: 0,
            rejections: 0,
            indeterminate: false,
            answers: Vec::new(),
            hint_hops: 0,
        });
        self.stats.ops_invoked += 1;
        self.send_attempt(c);
    }

    fn send_attempt(&mut self, c: usize) {
        let n = self.nodes.len();
        let target = match self.clients[c].master {
            Some(m) => m,
            None => self.rng.workload.gen_range(0..n),
        };
        let client = &mut self.clients[c];
        let pending = client.pending.as_mut().expect("an attempt needs a request");
        pending.attempts += 1;
        let (client_id, seq) = pending.request_id;
        let request = ClientRequest {
            client_id,
            seq,
            command: pending.command.clone(),
        };
        self.send_request(c, target, request);
        self.set_client_timer(c, CLIENT_TIMEOUT_NS, false);
    }

    fn set_client_timer(&mut self, c: usize, after: Nanos, retry: bool) {
        let client = &mut self.clients[c];
        client.timer_gen += 1;
        let gen = client.timer_gen;
        self.schedule(
            self.now + after,
            Event::ClientTimer {
                client: c,
                gen,
                retry,
            },
        );
    }

    fn client_timer(&mut self, c: usize, retry: bool) {
        if self.clients[c].pending.is_none() {
            return;
        }
        if !retry {
            self.clients[c].master = None; // no answer: try someone else
        }
        self.retry_or_give_up(c, 0);
    }

    fn retry_or_give_up(&mut self, c: usize, backoff: Nanos) {
        let client = &self.clients[c];
        let pending = client.pending.as_ref().expect("retrying a request");
        let exhausted = pending.attempts >= CLIENT_ATTEMPTS_MAX
            || self.now >= pending.invoked_ns + CLIENT_BUDGET_NS;
        if exhausted && !client.liveness {
            return self.give_up(c);
        }
        if backoff == 0 {
            self.send_attempt(c);
        } else {
            self.set_client_timer(c, backoff, true);
        }
    }

    fn give_up(&mut self, c: usize) {
        let pending = self.clients[c].pending.take().expect("giving up a request");
        if pending.certainly_not_applied() {
            self.recorder.fail(pending.op, self.now);
            self.stats.ops_failed += 1;
        } else {
            self.stats.ops_unknown += 1; // never completed: may take effect any time, or never
        }
        self.next_op_later(c);
    }

    fn next_op_later(&mut self, c: usize) {
        self.clients[c].timer_gen += 1;
        let think = if self.clients[c].liveness {
            0
        } else {
            self.rng.workload.gen_range(THINK_MIN_NS..=THINK_MAX_NS)
        };
        self.schedule(self.now + think, Event::ClientWake { client: c });
    }

    fn client_response(&mut self, c: usize, from: usize, id: u64, response: ClientResponse) {
        let client = &mut self.clients[c];
        let Some(pending) = client.pending.as_mut() else {
            return;
        };
        let answers_this = pending.request_id == (response.client_id, response.seq);
        if !answers_this || pending.answers.contains(&id) {
            return; // an answer to an earlier request, or a copy of one already handled
        }
        pending.answers.push(id);
        let next = match response.outcome {
            Outcome::Done(reply) => return self.client_done(c, reply),
            Outcome::Rejected(Rejection::NotMaster { master_hint }) => {
                pending.rejections += 1;
                // Hints can be stale: two cut-off replicas may name each other. Follow at
                // most HINT_HOPS_MAX in a row, then back off and pick a replica at random.
                pending.hint_hops += 1;
                let hint = master_hint.map(|id| id as usize - 1).filter(|m| *m != from);
                client.master = hint.filter(|_| pending.hint_hops <= HINT_HOPS_MAX);
                if client.master.is_some() {
                    Next::Now
                } else {
                    pending.hint_hops = 0;
                    Next::Backoff
                }
            }
            Outcome::Rejected(Rejection::Busy) => {
                pending.rejections += 1;
                Next::Backoff
            }
            Outcome::Rejected(Rejection::Invalid(_)) => {
                pending.rejections += 1;
                Next::GiveUp
            }
            Outcome::Indeterminate => {
                pending.indeterminate = true;
                client.master = None;
                Next::Backoff
            }
        };
        match next {
            Next::Now => self.retry_or_give_up(c, 0),
            Next::Backoff => {
                let backoff = self.rng.workload.gen_range(1..=BACKOFF_MAX_NS);
                self.retry_or_give_up(c, backoff);
            }
            Next::GiveUp => self.give_up(c),
        }
    }

    fn client_done(&mut self, c: usize, reply: Reply) {
        let client = &mut self.clients[c];
        let mut pending = client.pending.take().expect("a request to complete");
        let stale = matches!(reply, Reply::Error(CommandError::StaleRequest { .. }));
        if pending.command.is_write() && !stale {
            self.acked.push(pending.request_id);
        }
        if let Some(session) = client.learn(&pending.command, &reply) {
            self.session_clients.insert(session, c);
            self.stats.sessions_opened += 1;
        }
        // A `StaleRequest` refuses the copy it answers (the store forgot the session, so that
        // copy was not applied); an earlier copy may still have been applied, its answer lost,
        // and then the op is recorded with its StaleRequest reply, which the checker reads as
        // unknown (applied or not).
        pending.rejections += stale as u32;
        if stale && pending.certainly_not_applied() {
            self.recorder.fail(pending.op, self.now);
            self.stats.ops_failed += 1;
        } else {
            self.recorder.ok(pending.op, self.now, reply);
            self.stats.ops_ok += 1;
        }
        if client.liveness {
            self.liveness_left -= 1;
            if self.liveness_left == 0 {
                self.phase = Phase::Settle;
                self.stats.liveness_ns = Some(self.now - self.opts.duration_s * NANOS_PER_SEC);
                self.schedule(self.now + SETTLE_NS, Event::End);
                return;
            }
        }
        self.next_op_later(c);
    }

    // ---- faults -------------------------------------------------------------------------

    fn next_fault(&mut self, every: Nanos, event: Event) {
        let at = self.now + self.rng.faults.gen_range(1..=2 * every);
        self.schedule(at, event);
    }

    /// The replica that believes it holds the lease, if any.
    fn lease_holder(&self) -> Option<usize> {
        self.nodes.iter().position(|node| {
            node.replica
                .as_ref()
                .is_some_and(|r| r.lease_held_until(node.clock.local(self.now)).is_some())
        })
    }

    fn random_subset(&mut self, size: usize) -> Vec<bool> {
        let n = self.nodes.len();
        let mut order: Vec<usize> = (0..n).collect();
        for i in 0..n {
            let j = self.rng.faults.gen_range(i..n);
            order.swap(i, j);
        }
        let mut set = vec![false; n];
        for &i in &order[..size] {
            set[i] = true;
        }
        set
    }

    fn fault_partition(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let n = self.nodes.len();
        let minority = (n - 1) / 2;
        let side: Vec<bool> = match self.rng.faults.gen_range(0..5) {
            0 => match self.lease_holder() {
                Some(m) => (0..n).map(|i| i == m).collect(), // isolate the master
                None => self.random_subset(1),
            },
            1 => self.random_subset(minority.max(1)), // minority / majority split
            _ => {
                let size = self.rng.faults.gen_range(1..n);
                self.random_subset(size)
            }
        };
        // Symmetric, or one way only (the side can send but not hear, or the reverse).
        let direction = self.rng.faults.gen_range(0..4);
        self.blocked.fill(false);
        for a in 0..n {
            for b in 0..n {
                if side[a] && !side[b] {
                    self.blocked[a * n + b] = direction != 1;
                    self.blocked[b * n + a] = direction != 2;
                }
            }
        }
        self.stats.partitions += 1;
        self.partition_gen += 1;
        let gen = self.partition_gen;
        let lasts = self.rng.faults.gen_range(1..=self.plan.partition_max_ns);
        self.schedule(self.now + lasts, Event::Heal { gen });
        self.next_fault(self.plan.partition_every_ns, Event::Partition);
    }

    fn fault_crash(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].replica.is_some())
            .collect();
        if !up.is_empty() {
            let i = up[self.rng.faults.gen_range(0..up.len())];
            self.crash(i);
            let down = self.rng.faults.gen_range(1..=self.plan.downtime_max_ns);
            let incarnation = self.nodes[i].incarnation;
            self.schedule(
                self.now + down,
                Event::Restart {
                    node: i,
                    incarnation,
                },
            );
        }
        self.next_fault(self.plan.crash_every_ns, Event::Crash);
    }

    fn fault_pause(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let holder = if self.rng.faults.gen_bool(0.5) {
            self.lease_holder()
        } else {
            None
        };
        let i = holder.unwrap_or_else(|| self.rng.faults.gen_range(0..self.nodes.len()));
        if self.nodes[i].replica.is_some() && self.nodes[i].paused_until <= self.now {
            let pause = self.rng.faults.gen_range(1..=self.plan.pause_max_ns);
            self.nodes[i].paused_until = self.now + pause;
            self.stats.pauses += 1;
        }
        self.next_fault(self.plan.pause_every_ns, Event::Pause);
    }

    /// A fault at rest on a replica of the fault atlas: a bit flip, a misdirected write or a
    /// latent read error in one of its durable records. Seen at its next restart.
    fn fault_storage(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let atlas: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.plan.storage_faulty[i])
            .collect();
        let kinds: Vec<StorageFault> = [
            (self.plan.bit_flips, StorageFault::BitFlip),
            (self.plan.misdirected_writes, StorageFault::Misdirected),
            (self.plan.read_errors, StorageFault::ReadError),
        ]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
        .collect();
        if !atlas.is_empty() && !kinds.is_empty() {
            let rng = &mut self.rng.storage;
            let i = atlas[rng.gen_range(0..atlas.len())];
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let records = self.nodes[i].disk.durable_records();
            if records > 0 {
                let index = rng.gen_range(0..records);
                let pick = |n: usize| rng.gen_range(0..n.max(1));
                if self.nodes[i].disk.corrupt(kind, index, pick) {
                    self.stats.storage_faults += 1;
                }
            }
        }
        self.next_storage_fault();
    }

    fn next_storage_fault(&mut self) {
        let every = self.plan.storage_fault_every_ns;
        let at = self.now + self.rng.storage.gen_range(1..=2 * every);
        self.schedule(at, Event::StorageFault);
    }

    // ---- phases and final checks --------------------------------------------------------

    /// Ends the fault phase: heals the network and restarts replicas, leaving at most a
    /// minority down or cut off, then requires progress within [`LIVENESS_BOUND_NS`].
    fn end_faults(&mut self) -> Result<(), Failure> {
        self.phase = Phase::Liveness;
        self.calm = true;
        self.blocked.fill(false);
        self.partition_gen += 1;
        let n = self.nodes.len();
        let minority = (n - 1) / 2;
        let mut down = vec![false; n];
        if self.plan.liveness_minority_down && minority > 0 {
            let size = self.rng.faults.gen_range(1..=minority);
            down = self.random_subset(size);
            // Within the budget: replicas down or with faulty storage form at most a minority
            // (a recovering replica needs every peer's report), so leave faulty ones down.
            let faulty = self.plan.storage_faulty.iter().filter(|f| **f).count();
            if (1..=minority).contains(&faulty) {
                down.clone_from(&self.plan.storage_faulty);
            }
        }
        for i in 0..n {
            if down[i] && self.rng.faults.gen_bool(0.5) {
                for j in (0..n).filter(|&j| !down[j]) {
                    self.blocked[i * n + j] = true;
                    self.blocked[j * n + i] = true;
                }
            } else if down[i] {
                if self.nodes[i].replica.is_some() {
                    self.crash(i);
                }
                self.nodes[i].stay_down = true;
            } else if self.nodes[i].replica.is_none() {
                self.restart(i)?;
            }
        }
        let liveness_client = self.clients.len() - 1;
        self.schedule(
            self.now,
            Event::ClientWake {
                client: liveness_client,
            },
        );
        let deadline = self.now + self.in_flight_max_ns() + LIVENESS_BOUND_NS;
        self.schedule(deadline, Event::LivenessDeadline);
        Ok(())
    }

    /// How long a message sent before healing may still be on the wire after it: a long-tail
    /// delay plus a duplicate's lag. Until then a dead master's stale lease proposals and
    /// commits can still arrive and look current (no clocks are shared), so the liveness
    /// bound starts once they are all delivered.
    fn in_flight_max_ns(&self) -> Nanos {
        let plan = &self.plan;
        plan.delay_min_ns
            + plan.delay_jitter_ns
            + plan.tail_max_ns
            + plan.tail_max_ns.max(NANOS_PER_SEC)
    }

    fn count_recovering(&mut self) {
        self.stats.recovering_at_end = self
            .nodes
            .iter()
            .filter_map(|node| node.replica.as_ref())
            .filter(|r| r.is_recovering_storage())
            .count() as u64;
    }

    fn liveness_deadline(&mut self) -> Result<(), Failure> {
        if self.phase != Phase::Liveness {
            return Ok(());
        }
        self.count_recovering();
        let done = LIVENESS_WRITES - self.liveness_left;
        Err(Failure {
            kind: FailureKind::Liveness,
            message: format!(
                "no progress: {done} of {LIVENESS_WRITES} writes completed within {}s of healing a majority (after the {} ms messages sent before healing may still travel)",
                LIVENESS_BOUND_NS / NANOS_PER_SEC,
                self.in_flight_max_ns() / NANOS_PER_MILLI
            ),
        })
    }

    /// No acknowledged write lost: every write answered `Done` was applied (and so chosen, by
    /// the ledger's check) in a slot that the replica furthest ahead has applied.
    fn final_checks(&mut self) -> Result<(), Failure> {
        self.count_recovering();
        let top = self
            .nodes
            .iter()
            .filter_map(|node| node.replica.as_ref())
            .max_by_key(|r| r.applied_through())
            .expect("a majority is up after the liveness phase");
        let (top_id, top_through) = (top.node_id(), top.applied_through());
        for i in 0..self.acked.len() {
            let (client, seq) = self.acked[i];
            match self.ledger.slot_of(client, seq) {
                Some(slot) if slot <= top_through => {}
                found => {
                    let place = found.map_or("in no replica's log".to_string(), |s| {
                        format!("in slot {s}")
                    });
                    return Err(Self::safety(format!(
                        "acknowledged write lost: client {client} request {seq} is {place}; replica {top_id} applied through slot {top_through}"
                    )));
                }
            }
        }
        Ok(())
    }
}
