//! The replicas and how the world drives them: each one's core, local clock and storage (the
//! node's log engine on a fault-injecting device, see [`crate::storage`]); inputs in, outputs
//! carried out, timers armed, writes synced; crashes and restarts. Every use of a replica's
//! storage is in this module.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_core::drive::{self, Input};
use keyspace_core::{
    majority, Ballot, Message, Mutant, Nanos, NodeId, Output, Replica, ReplicaConfig, Slot,
    StorageWrite,
};
use keyspace_storage::{LogConfig, StorageLimits};

use std::collections::BTreeMap;

use keyspace_core::Configuration;

use super::events::Event;
use super::membership::MEMBER_CLIENT_ID;
use super::{safety, World};
use crate::checks::{check_acceptor_write, check_durable_before_send};
use crate::clock::Clock;
use crate::guard::guarded;
use crate::plan::{FaultPlan, NANOS_PER_SEC};
use crate::storage::{NodeStorage, StorageFault};
use crate::Failure;

/// A timer never fires earlier than this after the input that set it (no busy loops).
const TIMER_MIN_NS: Nanos = 1_000;

pub(super) struct Node {
    pub(super) id: NodeId,
    pub(super) replica: Option<Replica>,
    clock: Clock,
    storage: NodeStorage,
    pub(super) incarnation: u32,
    pub(super) timer_gen: u64,
    timer_at: Option<Nanos>,
    pub(super) paused_until: Nanos,
    applied_seen: Slot,
    /// Highest log ballot this incarnation promised or accepted (durable ones included).
    ballot_floor: Ballot,
    /// Left down by the liveness phase.
    pub(super) stay_down: bool,
    /// The epoch of the configuration this incarnation was last seen to apply.
    pub(super) epoch_seen: Option<u64>,
    /// Runs as a witness (a spare the simulator added as one).
    pub(super) witness: bool,
}

impl Node {
    fn new(i: usize, plan: &FaultPlan, log: LogConfig) -> Node {
        Node {
            id: (i + 1) as NodeId,
            replica: None,
            clock: Clock::new(plan.clock_offset_ns[i], plan.drift_ppm[i]),
            storage: NodeStorage::new(log),
            incarnation: 0,
            timer_gen: 0,
            timer_at: None,
            paused_until: 0,
            applied_seen: 0,
            ballot_floor: Ballot::ZERO,
            stay_down: false,
            epoch_seen: None,
            witness: false,
        }
    }

    pub(super) fn is_up(&self) -> bool {
        self.replica.is_some()
    }

    /// Whether the replica believes it holds the lease at true time `now`.
    fn holds_lease(&self, now: Nanos) -> bool {
        self.replica
            .as_ref()
            .is_some_and(|r| r.lease_held_until(self.clock.local(now)).is_some())
    }

    /// A fault at rest of `kind` in what its storage holds, placed by `rng`. Returns whether
    /// it hit something.
    pub(super) fn corrupt_at_rest(&mut self, kind: StorageFault, rng: &mut ChaCha8Rng) -> bool {
        let mut pick = |n: usize| rng.gen_range(0..n.max(1));
        self.storage.fault(kind, &mut pick)
    }

    /// Syncs this replica's storage finished so far (see [`Node::damage_since`]).
    pub(super) fn syncs(&self) -> u64 {
        self.storage.syncs()
    }

    /// A burst of faults at rest: a bit flips in every write made durable since the storage
    /// had finished `syncs_mark` syncs, and in two before (a sync may have written across a
    /// segment boundary). Returns how many flipped.
    pub(super) fn damage_since(&mut self, syncs_mark: u64, rng: &mut ChaCha8Rng) -> usize {
        let since = (self.storage.syncs() - syncs_mark) as usize;
        let mut pick = |n: usize| rng.gen_range(0..n.max(1));
        self.storage.flip_latest(since + 2, &mut pick)
    }
}

/// Every replica, with the random streams of their disks and of their incarnations.
pub(super) struct Replicas {
    pub(super) nodes: Vec<Node>,
    /// Sync latencies and what a crash keeps of the unsynced writes.
    disk_rng: ChaCha8Rng,
    /// Each incarnation's own seed.
    seed_rng: ChaCha8Rng,
    /// Outputs being carried out (kept to reuse its allocation).
    out: Vec<Output>,
}

impl Replicas {
    pub(super) fn new(
        n: usize,
        plan: &FaultPlan,
        mutant: Option<Mutant>,
        disk_rng: ChaCha8Rng,
        seed_rng: ChaCha8Rng,
    ) -> Replicas {
        let log = LogConfig {
            limits: StorageLimits {
                segment_bytes: plan.segment_bytes,
                max_bytes: None,
            },
            mutant,
        };
        let nodes = (0..n).map(|i| Node::new(i, plan, log)).collect();
        Replicas {
            nodes,
            disk_rng,
            seed_rng,
            out: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The replica that believes it holds the lease at true time `now`, if any.
    pub(super) fn lease_holder(&self, now: Nanos) -> Option<usize> {
        self.nodes.iter().position(|node| node.holds_lease(now))
    }

    /// At most one replica believes it holds the lease at true time `now`, and a majority of
    /// the voters of the configuration that granted it stands behind it.
    pub(super) fn check_lease_holders(
        &self,
        now: Nanos,
        configs: &BTreeMap<u64, Configuration>,
    ) -> Result<(), Failure> {
        let mut holders = (0..self.len()).filter(|&i| self.nodes[i].holds_lease(now));
        match (holders.next(), holders.next()) {
            (Some(first), Some(second)) => Err(safety(format!(
                "two lease holders at true time {now}ns: replicas {} and {}",
                first + 1,
                second + 1
            ))),
            (Some(holder), None) => self.check_lease_backing(holder, now, configs),
            _ => Ok(()),
        }
    }

    /// For each voter set whose majority granted the holder's lease (the configuration it
    /// applied, and the next while a change was pending), a majority still runs its grant to
    /// the holder, sits out its restart quiet period, or is down; and no configuration two
    /// epochs past the lease's was applied anywhere (its majorities need not meet the
    /// lease's). Fewer, and the others could grant a second lease now (the two-holder check
    /// sees that only if they also get to).
    fn check_lease_backing(
        &self,
        holder: usize,
        now: Nanos,
        configs: &BTreeMap<u64, Configuration>,
    ) -> Result<(), Failure> {
        let node = &self.nodes[holder];
        let owner = node.id;
        let replica = node.replica.as_ref().expect("a holder is up");
        let local = node.clock.local(now);
        let epoch = replica.lease_epoch(local).expect("a holder has an epoch");
        let latest = configs.keys().next_back().copied().unwrap_or(0);
        if latest > epoch + 1 {
            return Err(safety(format!(
                "replica {owner} holds a lease granted under epoch {epoch} while epoch {latest} is in force"
            )));
        }
        for voters in replica.lease_voter_sets(local) {
            let backing = voters
                .iter()
                .filter(|&&id| {
                    let node = &self.nodes[id as usize - 1];
                    match &node.replica {
                        Some(replica) => replica.backs_lease_of(owner, node.clock.local(now)),
                        None => true,
                    }
                })
                .count();
            if backing < majority(voters.len()) {
                return Err(safety(format!(
                    "replica {owner} holds the lease at true time {now}ns, but only {backing} of the voters {voters:?} (epoch {epoch}) stand behind it (a running grant, the restart wait, or down)"
                )));
            }
        }
        Ok(())
    }

    /// Replicas up and still recovering damaged storage.
    pub(super) fn recovering(&self) -> u64 {
        self.nodes
            .iter()
            .filter_map(|node| node.replica.as_ref())
            .filter(|r| r.is_recovering_storage())
            .count() as u64
    }

    /// The replica up that applied the most.
    pub(super) fn furthest_applied(&self) -> Option<&Replica> {
        self.nodes
            .iter()
            .filter_map(|node| node.replica.as_ref())
            .max_by_key(|r| r.applied_through())
    }
}

impl World {
    /// Hands `input` to replica `i` (if it is up), carries out every output, re-arms its timer
    /// and checks what it applied.
    pub(super) fn drive(&mut self, i: usize, input: Input) -> Result<(), Failure> {
        let local = self.replicas.nodes[i].clock.local(self.now);
        let wall_ms = self.plan.wall_ms(i, self.now);
        let node = &mut self.replicas.nodes[i];
        let Some(replica) = node.replica.as_mut() else {
            return Ok(());
        };
        replica.set_wall_clock_ms(wall_ms);
        let mut out = std::mem::take(&mut self.replicas.out);
        let result = guarded(|| drive::step(replica, local, input, &mut out));
        let deadline = result.map_err(|panic| {
            safety(format!(
                "replica {} stopped on a violated invariant: {panic}",
                i + 1
            ))
        })?;
        self.arm_timer(i, deadline);
        let granted = out
            .iter()
            .any(|o| is_lease_grant_to_another(o, self.replicas.nodes[i].id));
        for output in out.drain(..) {
            self.carry_out(i, output)?;
        }
        self.replicas.out = out;
        self.observe(i)?;
        if granted {
            self.crash_after_first_grant(i);
        }
        Ok(())
    }

    fn arm_timer(&mut self, i: usize, deadline: Option<Nanos>) {
        let node = &mut self.replicas.nodes[i];
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

    /// The timer of replica `i` fired.
    pub(super) fn timer_fired(&mut self, i: usize) -> Result<(), Failure> {
        self.replicas.nodes[i].timer_at = None;
        self.drive(i, Input::Timeout)
    }

    fn carry_out(&mut self, i: usize, output: Output) -> Result<(), Failure> {
        match output {
            Output::Send { to, msg } => {
                let node = &self.replicas.nodes[i];
                check_durable_before_send(node.storage.durable(), &msg, node.id).map_err(safety)?;
                self.send_peer(i, to as usize - 1, msg);
            }
            Output::Persist { token, writes } => self.persist(i, token, writes)?,
            Output::Reply(response) if response.client_id == MEMBER_CLIENT_ID => {
                self.member_response(&response);
            }
            Output::Reply(response) => {
                let client = self.clients.client_of(response.client_id);
                self.send_response(i, client, response);
            }
        }
        Ok(())
    }

    fn persist(&mut self, i: usize, token: u64, writes: Vec<StorageWrite>) -> Result<(), Failure> {
        let early_ack = self.mutant(Mutant::AckBeforeFsync);
        let node = &mut self.replicas.nodes[i];
        for write in &writes {
            check_acceptor_write(&mut node.ballot_floor, write, node.id).map_err(safety)?;
        }
        node.storage.append(token, writes);
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
        self.start_sync(i)
    }

    /// Unless a sync is running, writes what replica `i` appended and starts syncing it.
    fn start_sync(&mut self, i: usize) -> Result<(), Failure> {
        let storage = &mut self.replicas.nodes[i].storage;
        let Some(token) = storage.start_write().map_err(|e| storage_failed(i, e))? else {
            return Ok(());
        };
        let jitter = self
            .replicas
            .disk_rng
            .gen_range(0..=self.plan.sync_jitter_ns);
        let latency = self.plan.sync_min_ns + jitter;
        self.write_started(i, latency);
        let incarnation = self.replicas.nodes[i].incarnation;
        self.schedule(
            self.now + latency,
            Event::Synced {
                node: i,
                incarnation,
                token,
            },
        );
        Ok(())
    }

    /// The sync of replica `i` covering `token` finished.
    pub(super) fn synced(&mut self, i: usize, token: u64) -> Result<(), Failure> {
        let storage = &mut self.replicas.nodes[i].storage;
        storage.synced(token).map_err(|e| storage_failed(i, e))?;
        if !self.mutant(Mutant::AckBeforeFsync) {
            self.drive(i, Input::Persisted { token })?;
        }
        self.start_sync(i)
    }

    fn observe(&mut self, i: usize) -> Result<(), Failure> {
        let node = &mut self.replicas.nodes[i];
        let Some(replica) = &node.replica else {
            return Ok(());
        };
        node.applied_seen = self
            .ledger
            .observe(replica, node.applied_seen)
            .map_err(safety)?;
        self.observe_configuration(i)
    }

    fn mutant(&self, mutant: Mutant) -> bool {
        keyspace_core::mutant::is(self.opts.mutant, mutant)
    }

    /// Replica `i` dies: its unsynced writes are lost, or a prefix of them survives and the
    /// next one may be torn at a sector boundary.
    pub(super) fn crash(&mut self, i: usize) {
        let rng = &mut self.replicas.disk_rng;
        let sectors = self.replicas.nodes[i].storage.unsynced_sectors();
        let keep = if self.plan.crash_keeps_unsynced_prefix {
            rng.gen_range(0..=sectors.len())
        } else {
            0
        };
        let mut kept_sectors: usize = sectors[..keep].iter().sum();
        // A torn write: the first sectors of the write after the kept ones reached the disk.
        let next = sectors.get(keep).copied().unwrap_or(0);
        if self.plan.torn_writes && rng.gen_bool(0.5) && next > 1 {
            kept_sectors += rng.gen_range(1..next);
            self.stats.torn_writes += 1;
        }
        let node = &mut self.replicas.nodes[i];
        node.replica = None;
        node.incarnation += 1;
        node.timer_gen += 1;
        node.timer_at = None;
        node.paused_until = 0;
        node.applied_seen = 0;
        node.epoch_seen = None;
        node.storage.crash(kept_sectors);
        self.stats.crashes += 1;
    }

    /// Replica `i` starts from what its disk holds.
    pub(super) fn restart(&mut self, i: usize) -> Result<(), Failure> {
        let config = self.replica_config(i);
        let seed = self.replicas.seed_rng.gen();
        let node = &mut self.replicas.nodes[i];
        let durable = node.storage.open().map_err(|e| storage_failed(i, e))?;
        self.stats.loads_damaged += durable.damaged as u64;
        if durable.damaged && !self.plan.storage_faulty[i] {
            return Err(crash_taken_for_damage(i));
        }
        let floor = durable.promised;
        let local = node.clock.local(self.now);
        let replica = guarded(|| Replica::new(config, durable, local, seed))
            .map_err(|panic| safety(format!("replica {} failed to restart: {panic}", i + 1)))?;
        node.replica = Some(replica);
        node.incarnation += 1;
        node.ballot_floor = floor;
        self.drive(i, Input::Timeout)
    }

    /// A crashed replica's downtime ended: it restarts, unless it came back already or the
    /// liveness phase leaves it down.
    pub(super) fn restart_after_crash(
        &mut self,
        i: usize,
        incarnation: u32,
    ) -> Result<(), Failure> {
        let node = &self.replicas.nodes[i];
        if !node.is_up() && node.incarnation == incarnation && !node.stay_down {
            self.restart(i)?;
        }
        Ok(())
    }

    fn replica_config(&self, i: usize) -> ReplicaConfig {
        // The founding voters; a spare joins later and learns the rest from the log.
        let nodes = (1..=self.opts.nodes as NodeId).collect();
        let mut config = ReplicaConfig::new(self.replicas.nodes[i].id, nodes);
        config.lease.lease_duration_ns = NANOS_PER_SEC;
        config.lease.drift_rate_max_ppm = self.plan.drift_bound_ppm;
        config.snapshot_interval_slots = self.plan.snapshot_interval_slots;
        config.log_retain_slots = self.plan.log_retain_slots;
        config.checkpoint_interval_slots = self.plan.checkpoint_interval_slots;
        config.state_machine.sessions_max = self.plan.sessions_max;
        config.state_machine.session_idle_slots_max = self.plan.session_idle_slots_max;
        // The first start at time 0 is a brand-new cluster's; a restart may follow a grant.
        config.new_cluster = self.replicas.nodes[i].incarnation == 0;
        config.witness = self.replicas.nodes[i].witness;
        config.mutant = self.opts.mutant;
        config
    }
}

/// The failure of a replica whose log engine refused to go on (a device error, or a newer
/// format): the node would stop, and no fault the simulator injects should make it.
fn storage_failed(i: usize, error: keyspace_storage::StorageError) -> Failure {
    safety(format!("replica {} stopped: {error}", i + 1))
}

/// A replica outside the fault atlas saw only crash faults, which lose only writes never
/// acknowledged (a torn tail is cut off): damage there would send it into recovery for nothing,
/// and with an atlas replica recovering too, a group of three would stall.
fn crash_taken_for_damage(i: usize) -> Failure {
    safety(format!(
        "replica {} found its storage damaged with no fault at rest on it: a crash was taken for damage",
        i + 1
    ))
}

/// Whether `output` tells another replica that this one granted it the lease.
fn is_lease_grant_to_another(output: &Output, me: NodeId) -> bool {
    matches!(output, Output::Send { to, msg: Message::LeaseAccepted(reply) } if reply.accepted && *to != me)
}
