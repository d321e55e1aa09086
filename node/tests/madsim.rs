//! The node shell's real async code as simulated nodes under madsim: three replicas and a
//! client node on a simulated network, with replicas killed and restarted, partitioned (clog),
//! one-way links cut, periods of packet loss, and network latency drawn from the seed; and, in
//! a second test, membership changes under the same client load (a learner and a witness added
//! and promoted, a follower removed, a dead replica replaced, the master removed). The
//! client history is judged by the checker. Build and run with `RUSTFLAGS="--cfg madsim"`;
//! `KEYSPACE_MADSIM_SEEDS` sets how many seeds (default 24) and `KEYSPACE_MADSIM_SEED` runs one.
//!
//! What packet loss does here (madsim 0.2's `sim/net`): a TCP stream is a reliable, ordered
//! channel. Each flushed write tests the link when it is sent; a lost one is not dropped but
//! tested again by the receiving side after 1 ms, 2 ms, 4 ms, ... (capped at 10 s), each test
//! lost again at the same rate, and everything written after it waits behind it. A lost
//! connection request fails with `ConnectionRefused`. So on the peer links loss shows up as
//! stalls with head-of-line blocking and as failed dials, never as missing, reordered or
//! corrupted bytes. The schedule injects it two ways: network-wide, through `NetSim`'s
//! `packet_loss_rate`, and on one direction of one replica-to-replica link, by clogging that
//! link in a random share of a period's short ticks.
//!
//! The node draws its entropy through `keyspace_node::random`, which is the simulation's seeded
//! generator under madsim, so `KEYSPACE_MADSIM_SEED=N` replays seed N's run exactly (same fault
//! schedule, same operations, same verdict).
#![cfg(madsim)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyspace_checker::{check_kv, CheckOptions, CheckResult, Recorder};
use keyspace_core::NodeId;
use keyspace_node::resp_client::{info_field, workload_op, workload_reply, Client, Value};
use keyspace_node::{run_node, NodeConfig, NodeError};
use madsim::net::NetSim;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::{Handle, NodeHandle, Runtime};
use madsim::time::{sleep, Instant};

const NODES: u16 = 3;
const CLIENTS: u64 = 3;
const KEYS: u64 = 3;
/// Snapshot interval of the simulated replicas: a run applies a few hundred slots.
const SNAPSHOT_INTERVAL_SLOTS: u64 = 20;
const FAULT_STEPS: usize = 6;
/// One operation in this many is a pipeline of SETs.
const PIPELINE_ONE_IN: u32 = 4;
/// Most SETs in one pipeline.
const PIPELINE_SETS_MAX: usize = 4;
/// Longest pause between one client's operations.
const THINK_TIME_MAX_MS: u64 = 50;
/// Simulated time the healed cluster gets to serve every client again.
const HEAL_PROGRESS_MAX: Duration = Duration::from_secs(20);
/// Bound on a seed's simulated time.
const SIMULATED_TIME_MAX: Duration = Duration::from_secs(300);
/// Range of a seed's worst packet loss rate (swarm testing: each seed draws its own). Above
/// about 0.4 madsim's doubling retry turns one unlucky packet into stalls of many seconds.
const LOSS_RATE_MAX: std::ops::Range<f64> = 0.05..0.4;
/// How often a lossy link redraws whether it passes packets.
const LOSSY_LINK_TICK: Duration = Duration::from_millis(2);

fn replica_ip(id: NodeId) -> IpAddr {
    IpAddr::from([10, 0, 0, id as u8])
}

fn config(id: NodeId, dir: &Path) -> NodeConfig {
    let peers: BTreeMap<NodeId, SocketAddr> = (1..=NODES)
        .map(|i| (i, SocketAddr::new(replica_ip(i), 7000)))
        .collect();
    NodeConfig {
        id,
        peers,
        peer_addr: None,
        known_members: BTreeMap::new(),
        client_addr: SocketAddr::new(replica_ip(id), 6379),
        data_dir: dir.join(format!("node-{id}")),
        cluster_key: "madsim-key".into(),
        password: None,
        lease_ms: 1000,
        max_log_bytes: None,
        // Small, so that every run takes snapshots (synced on a blocking task) and compacts.
        snapshot_interval_slots: SNAPSHOT_INTERVAL_SLOTS,
        // Simulated syncs take no time, so without this no sync but a snapshot's would leave
        // the loop: odd replicas send every busy turn's sync to a blocking task.
        sync_inline_max_us: if id % 2 == 1 { 0 } else { 1_000_000 },
        new_cluster: false,
        witness: false,
    }
}

struct History {
    recorder: Mutex<Recorder>,
    start: Instant,
    acked: Mutex<u64>,
    /// Set when the fault schedule is over; clients keep working until then.
    healed: AtomicBool,
    /// The replicas clients connect to, ascending: the full members that are neither removed
    /// nor dead for good.
    targets: Mutex<Vec<NodeId>>,
}

impl History {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// Runs operations until at least `ops_min` are done and the cluster is healed, so that the
/// whole fault schedule meets a working client.
async fn client_loop(client: u64, history: Arc<History>, ops_min: u64) {
    let mut conn: Option<Client> = None;
    let mut target = client as u16;
    for op in 0.. {
        if op >= ops_min && history.healed.load(Ordering::Relaxed) {
            break;
        }
        sleep(Duration::from_millis(
            thread_rng().gen_range(0..THINK_TIME_MAX_MS),
        ))
        .await;
        if conn.is_none() {
            target = next_target(&history.targets.lock().unwrap(), target);
            let addr = SocketAddr::new(replica_ip(target), 6379);
            match madsim::time::timeout(Duration::from_secs(2), Client::connect(addr)).await {
                Ok(Ok(c)) => conn = Some(c),
                _ => {
                    sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        // Now and then a pipeline of SETs, which the node stores as one log command.
        let ops = match thread_rng().gen_range(0..PIPELINE_ONE_IN) {
            0 => (0..thread_rng().gen_range(2..=PIPELINE_SETS_MAX))
                .map(|i| workload_op(0, random_key(), format!("c{client}-{op}-{i}").into_bytes()))
                .collect(),
            _ => {
                let value = format!("c{client}-{op}").into_bytes();
                vec![workload_op(
                    thread_rng().gen_range(0..3),
                    random_key(),
                    value,
                )]
            }
        };
        if !run_ops(&history, client, conn.as_mut().unwrap(), ops).await {
            conn = None;
        }
    }
}

/// The first of `targets` above `after`, else the first of all.
fn next_target(targets: &[NodeId], after: NodeId) -> NodeId {
    let above = targets.iter().copied().find(|t| *t > after);
    above.unwrap_or_else(|| *targets.first().expect("a replica to connect to"))
}

fn random_key() -> Vec<u8> {
    format!("k{}", thread_rng().gen_range(0..KEYS)).into_bytes()
}

/// Sends `ops` in one write and records each in the history; false when the connection failed.
async fn run_ops(
    history: &History,
    client: u64,
    conn: &mut Client,
    ops: Vec<(keyspace_core::Command, Vec<Vec<u8>>)>,
) -> bool {
    let invoked: Vec<_> =
        ops.iter()
            .map(|(command, _)| {
                let id = history.recorder.lock().unwrap().invoke(
                    client,
                    history.now_ns(),
                    command.clone(),
                );
                (id, command.is_write())
            })
            .collect();
    let args: Vec<Vec<&[u8]>> = ops
        .iter()
        .map(|(_, args)| args.iter().map(Vec::as_slice).collect())
        .collect();
    let commands: Vec<&[&[u8]]> = args.iter().map(Vec::as_slice).collect();
    let result = madsim::time::timeout(Duration::from_secs(15), conn.pipeline(&commands)).await;
    let now = history.now_ns();
    let connected = matches!(result, Ok(Ok(_)));
    let replies: Vec<_> = match result {
        Ok(Ok(values)) => values.into_iter().map(workload_reply).collect(),
        _ => vec![None; invoked.len()],
    };
    let mut recorder = history.recorder.lock().unwrap();
    for ((id, is_write), reply) in invoked.into_iter().zip(replies) {
        match reply {
            Some(reply) => {
                recorder.ok(id, now, reply);
                *history.acked.lock().unwrap() += 1;
            }
            None if !is_write => recorder.fail(id, now),
            None => recorder.unknown(id),
        }
    }
    connected
}

/// What the fault schedule did in one seed, for its summary line.
#[derive(Default)]
struct FaultCount {
    kills: u32,
    isolations: u32,
    link_cuts: u32,
    network_loss_periods: u32,
    link_loss_periods: u32,
    loss_ms: u64,
    /// Packets lost network-wide: madsim counts only delivered ones, so this is estimated from
    /// the deliveries during each period and its rate.
    network_lost_packets_estimate: u64,
    /// Ticks in which a lossy link dropped everything sent on it.
    lossy_link_dropping_ticks: u64,
    /// Membership changes applied.
    member_changes: u32,
}

impl FaultCount {
    fn loss_periods(&self) -> u32 {
        self.network_loss_periods + self.link_loss_periods
    }

    fn add(&mut self, other: &FaultCount) {
        self.kills += other.kills;
        self.isolations += other.isolations;
        self.link_cuts += other.link_cuts;
        self.network_loss_periods += other.network_loss_periods;
        self.link_loss_periods += other.link_loss_periods;
        self.loss_ms += other.loss_ms;
        self.network_lost_packets_estimate += other.network_lost_packets_estimate;
        self.lossy_link_dropping_ticks += other.lossy_link_dropping_ticks;
        self.member_changes += other.member_changes;
    }
}

impl std::fmt::Display for FaultCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} kills, {} isolations, {} link cuts, {} loss periods ({} network-wide, {} on a link; \
             {:.1} s; ~{} packets lost network-wide (est.), {} dropping link ticks), {} membership \
             changes",
            self.kills,
            self.isolations,
            self.link_cuts,
            self.loss_periods(),
            self.network_loss_periods,
            self.link_loss_periods,
            self.loss_ms as f64 / 1000.0,
            self.network_lost_packets_estimate,
            self.lossy_link_dropping_ticks,
            self.member_changes,
        )
    }
}

/// Two different replicas, drawn from the seed.
fn two_replicas(replicas: &[NodeHandle]) -> (&NodeHandle, &NodeHandle) {
    let first = thread_rng().gen_range(0..replicas.len());
    let second = (first + thread_rng().gen_range(1..replicas.len())) % replicas.len();
    (&replicas[first], &replicas[second])
}

/// Every packet anywhere is lost at `rate` for `hold`.
async fn lose_packets_everywhere(net: &NetSim, rate: f64, hold: Duration, count: &mut FaultCount) {
    let delivered_before = net.stat().msg_count;
    net.update_config(|config| config.packet_loss_rate = rate);
    sleep(hold).await;
    net.update_config(|config| config.packet_loss_rate = 0.0);
    let delivered = net.stat().msg_count - delivered_before;
    tracing::info!(rate, ?hold, delivered, "packet loss everywhere ended");
    count.network_loss_periods += 1;
    count.loss_ms += hold.as_millis() as u64;
    count.network_lost_packets_estimate += (delivered as f64 * rate / (1.0 - rate)).round() as u64;
}

/// Packets from `from` to `to` are lost at `rate` for `hold`: in each tick the link drops
/// everything with probability `rate`.
async fn lose_packets_on_link(
    net: &NetSim,
    (from, to): (&NodeHandle, &NodeHandle),
    rate: f64,
    hold: Duration,
    count: &mut FaultCount,
) {
    let until = Instant::now() + hold;
    while Instant::now() < until {
        if thread_rng().gen_bool(rate) {
            net.clog_link(from.id(), to.id());
            count.lossy_link_dropping_ticks += 1;
        } else {
            net.unclog_link(from.id(), to.id());
        }
        sleep(LOSSY_LINK_TICK).await;
    }
    net.unclog_link(from.id(), to.id());
    count.link_loss_periods += 1;
    count.loss_ms += hold.as_millis() as u64;
}

async fn faults(handle: &Handle, replicas: &[NodeHandle]) -> FaultCount {
    let net = NetSim::current();
    let loss_rate_max = thread_rng().gen_range(LOSS_RATE_MAX);
    let mut count = FaultCount::default();
    for step in 0..FAULT_STEPS {
        sleep(Duration::from_millis(thread_rng().gen_range(300..2000))).await;
        let victim = &replicas[thread_rng().gen_range(0..replicas.len())];
        let hold = Duration::from_millis(thread_rng().gen_range(200..3000));
        let loss_rate = thread_rng().gen_range(0.01..loss_rate_max);
        match thread_rng().gen_range(0..5) {
            0 => {
                tracing::info!(step, node = ?victim.id(), ?hold, "kill and restart");
                handle.kill(victim.id());
                sleep(hold).await;
                handle.restart(victim.id());
                count.kills += 1;
            }
            1 => {
                tracing::info!(step, node = ?victim.id(), ?hold, "isolate");
                net.clog_node(victim.id());
                sleep(hold).await;
                net.unclog_node(victim.id());
                count.isolations += 1;
            }
            2 => {
                let (from, to) = two_replicas(replicas);
                tracing::info!(step, from = ?from.id(), to = ?to.id(), ?hold, "one-way link cut");
                net.clog_link(from.id(), to.id());
                sleep(hold).await;
                net.unclog_link(from.id(), to.id());
                count.link_cuts += 1;
            }
            3 => {
                tracing::info!(step, loss_rate, ?hold, "packet loss everywhere");
                lose_packets_everywhere(&net, loss_rate, hold, &mut count).await;
            }
            _ => {
                let link = two_replicas(replicas);
                let (from, to) = (link.0.id(), link.1.id());
                tracing::info!(step, ?from, ?to, loss_rate, ?hold, "packet loss on a link");
                lose_packets_on_link(&net, link, loss_rate, hold, &mut count).await;
            }
        }
    }
    count
}

/// Replica ids the membership scenario starts after the founders: a learner, a witness, and
/// the replacement of a dead replica.
const LEARNER: NodeId = NODES + 1;
const WITNESS: NodeId = NODES + 2;
const REPLACEMENT: NodeId = NODES + 3;
/// Acknowledged client operations to wait for after each membership change: the load goes on.
const OPS_PER_CHANGE: u64 = 15;
/// Longest a change may take to be applied, retries included (a master may be elected).
const CHANGE_TIME_MAX: Duration = Duration::from_secs(60);
/// Pause between two attempts of a refused or failed change.
const CHANGE_RETRY_PAUSE: Duration = Duration::from_millis(200);

fn peer_addr(id: NodeId) -> SocketAddr {
    SocketAddr::new(replica_ip(id), 7000)
}

fn client_addr(id: NodeId) -> SocketAddr {
    SocketAddr::new(replica_ip(id), 6379)
}

/// What the membership schedule works with.
struct World<'a> {
    handle: &'a Handle,
    dir: &'a Path,
    history: &'a Arc<History>,
    removed: &'a Arc<Mutex<BTreeSet<NodeId>>>,
    /// The node the operator's `MEMBER` and `INFO` calls come from.
    operator: NodeHandle,
}

impl World<'_> {
    /// Starts replica `id` as `keyspace node --join` does: it knows the founders and dials
    /// `members`, and is not a member until a `MEMBER ADD` makes it one.
    fn start_joiner(
        &self,
        id: NodeId,
        witness: bool,
        members: &BTreeMap<NodeId, SocketAddr>,
    ) -> NodeHandle {
        let config = NodeConfig {
            peer_addr: Some(peer_addr(id)),
            known_members: members.clone(),
            witness,
            ..config(id, self.dir)
        };
        start_replica(self.handle, config, self.removed.clone())
    }

    fn targets(&self) -> Vec<NodeId> {
        self.history.targets.lock().unwrap().clone()
    }

    fn set_target(&self, id: NodeId, serve: bool) {
        let mut targets = self.history.targets.lock().unwrap();
        targets.retain(|t| *t != id);
        if serve {
            targets.push(id);
            targets.sort_unstable();
        }
    }

    /// Waits until the clients have `count` more operations acknowledged.
    async fn load(&self, count: u64, during: &str) {
        let before = *self.history.acked.lock().unwrap();
        let began = Instant::now();
        while *self.history.acked.lock().unwrap() < before + count {
            assert!(
                began.elapsed() < CHANGE_TIME_MAX,
                "{count} operations did not complete within {CHANGE_TIME_MAX:?} {during}"
            );
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// The client target that says it is the master, once one does.
    async fn master(&self) -> NodeId {
        let began = Instant::now();
        loop {
            for id in self.targets() {
                let info = ask(&self.operator, id, &[b"INFO", b"replication"]).await;
                let role = info.as_ref().and_then(|i| info_field(i, "keyspace_role"));
                if role.as_deref() == Some("master") {
                    return id;
                }
            }
            assert!(began.elapsed() < CHANGE_TIME_MAX, "no master named");
            sleep(CHANGE_RETRY_PAUSE).await;
        }
    }

    /// Sends `args` (a `MEMBER` change) to the client targets in turn until `done` holds for
    /// the `MEMBER LIST` rows of one of them: an answer lost with its connection, or a change
    /// refused while another finishes or a master is elected, is retried; one applied already
    /// is not asked again.
    async fn change(&self, args: &[&[u8]], done: impl Fn(&[String]) -> bool) {
        let what: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into())
            .collect();
        let began = Instant::now();
        for attempt in 0.. {
            let targets = self.targets();
            let via = targets[attempt % targets.len()];
            if let Some(rows) = member_rows(&self.operator, via).await {
                if done(&rows) {
                    tracing::info!(?what, via, "membership change applied");
                    return;
                }
            }
            let answer = ask(&self.operator, via, args).await;
            tracing::info!(?what, via, ?answer, "membership change asked");
            assert!(
                began.elapsed() < CHANGE_TIME_MAX,
                "{what:?} not applied within {CHANGE_TIME_MAX:?}: last answer {answer:?}"
            );
            if !matches!(answer, Some(Value::Int(_))) {
                sleep(CHANGE_RETRY_PAUSE).await;
            }
        }
    }

    /// Adds replica `id` (started already) as a learner or a witness, then makes it a voter.
    async fn add_and_promote(&self, id: NodeId, witness: bool) {
        let (peer, client) = (peer_addr(id).to_string(), client_addr(id).to_string());
        let id_text = id.to_string();
        let kind: &[u8] = if witness { b"WITNESS" } else { b"LEARNER" };
        let add = [
            b"MEMBER".as_slice(),
            b"ADD",
            id_text.as_bytes(),
            peer.as_bytes(),
            client.as_bytes(),
            kind,
        ];
        self.change(&add, |rows| row_of(rows, id).is_some()).await;
        let voter = if witness {
            "kind=witness"
        } else {
            "kind=voter"
        };
        let promote = [b"MEMBER".as_slice(), b"PROMOTE", id_text.as_bytes()];
        self.change(&promote, |rows| {
            row_of(rows, id).is_some_and(|r| r.contains(voter))
        })
        .await;
    }

    /// Removes replica `id`; clients stop using it first, and it may stop as removed.
    async fn remove(&self, id: NodeId) {
        self.set_target(id, false);
        self.removed.lock().unwrap().insert(id);
        let id_text = id.to_string();
        let remove = [b"MEMBER".as_slice(), b"REMOVE", id_text.as_bytes()];
        self.change(&remove, |rows| row_of(rows, id).is_none())
            .await;
    }
}

/// One call to replica `id`'s client port from the operator's node, bounded in time; `None`
/// if it failed.
async fn ask(operator: &NodeHandle, id: NodeId, args: &[&[u8]]) -> Option<Value> {
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
    let call = operator.spawn(async move {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut client = Client::connect(client_addr(id)).await.ok()?;
        client.call(&args).await.ok()
    });
    let answer = madsim::time::timeout(Duration::from_secs(5), call).await;
    answer.ok()?.ok().flatten()
}

/// The `MEMBER LIST` rows replica `id` answers with, if it answers with rows.
async fn member_rows(operator: &NodeHandle, id: NodeId) -> Option<Vec<String>> {
    let Some(Value::Array(rows)) = ask(operator, id, &[b"MEMBER", b"LIST"]).await else {
        return None;
    };
    let rows = rows.into_iter().map(|row| match row {
        Value::Bulk(line) => String::from_utf8_lossy(&line).into_owned(),
        other => panic!("a MEMBER LIST row is {other:?}"),
    });
    Some(rows.collect())
}

fn row_of(rows: &[String], id: NodeId) -> Option<&String> {
    rows.iter()
        .find(|row| row.starts_with(&format!("id={id} ")))
}

/// The membership schedule, each step under client load: a learner is added and promoted; a
/// witness is added and promoted; a follower is removed; a full voter other than the master
/// dies for good (its data deleted) and is replaced by a new replica, added, promoted, and
/// then removed; the master is removed (it hands over). Five voters at most, four alive at
/// the replacement: every step keeps a majority.
async fn membership_changes(world: &World<'_>, founders: &[NodeHandle]) -> FaultCount {
    let mut count = FaultCount::default();
    let mut members: BTreeMap<NodeId, SocketAddr> =
        (1..=NODES).map(|i| (i, peer_addr(i))).collect();
    let mut joiners = Vec::new();
    world.load(OPS_PER_CHANGE, "before the first change").await;

    for (id, witness) in [(LEARNER, false), (WITNESS, true)] {
        joiners.push((id, world.start_joiner(id, witness, &members)));
        world.add_and_promote(id, witness).await;
        members.insert(id, peer_addr(id));
        world.set_target(id, !witness);
        count.member_changes += 2;
        world
            .load(OPS_PER_CHANGE, &format!("after replica {id} was promoted"))
            .await;
    }

    let master = world.master().await;
    let followers: Vec<NodeId> = (1..=NODES).filter(|id| *id != master).collect();
    let follower = followers[thread_rng().gen_range(0..followers.len())];
    world.remove(follower).await;
    members.remove(&follower);
    count.member_changes += 1;
    world
        .load(
            OPS_PER_CHANGE,
            &format!("after follower {follower} was removed"),
        )
        .await;

    let master = world.master().await;
    let full: Vec<NodeId> = world
        .targets()
        .into_iter()
        .filter(|id| *id != master)
        .collect();
    let dead = full[thread_rng().gen_range(0..full.len())];
    let handle = match dead {
        id if id <= NODES => &founders[usize::from(id - 1)],
        id => {
            &joiners
                .iter()
                .find(|(j, _)| *j == id)
                .expect("a started joiner")
                .1
        }
    };
    world.set_target(dead, false);
    world.handle.kill(handle.id());
    std::fs::remove_dir_all(world.dir.join(format!("node-{dead}"))).unwrap();
    tracing::info!(dead, "replica killed for good, its data deleted");
    joiners.push((
        REPLACEMENT,
        world.start_joiner(REPLACEMENT, false, &members),
    ));
    world.add_and_promote(REPLACEMENT, false).await;
    members.insert(REPLACEMENT, peer_addr(REPLACEMENT));
    world.set_target(REPLACEMENT, true);
    world.remove(dead).await;
    members.remove(&dead);
    count.member_changes += 3;
    world
        .load(
            OPS_PER_CHANGE,
            &format!("after dead replica {dead} was replaced"),
        )
        .await;

    let master = world.master().await;
    world.remove(master).await;
    count.member_changes += 1;
    world
        .load(
            OPS_PER_CHANGE,
            &format!("after master {master} was removed"),
        )
        .await;
    count
}

/// What runs beside the client load in a seed.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    /// Kills, restarts, isolation, link cuts and packet loss among three fixed replicas.
    Faults,
    /// Membership changes: a learner added and promoted, a witness added and promoted, a
    /// follower removed, a dead replica replaced, the master removed.
    Membership,
}

/// Starts replica `config.id` as a simulated node. It may stop only by being removed, and only
/// once the test has put it in `removed` (it asks for that removal).
fn start_replica(
    handle: &Handle,
    config: NodeConfig,
    removed: Arc<Mutex<BTreeSet<NodeId>>>,
) -> NodeHandle {
    let id = config.id;
    handle
        .create_node()
        .name(format!("replica-{id}"))
        .ip(replica_ip(id))
        .init(move || {
            let (config, removed) = (config.clone(), removed.clone());
            async move {
                match run_node(config).await {
                    Ok(()) => {}
                    Err(NodeError::Removed { epoch, .. }) => {
                        assert!(
                            removed.lock().unwrap().contains(&id),
                            "replica {id} stopped as removed (epoch {epoch}) unasked"
                        );
                        tracing::info!(id, epoch, "removed replica stopped");
                    }
                    Err(e) => panic!("replica {id} failed: {e}"),
                }
            }
        })
        .build()
}

fn run_seed(seed: u64, scenario: Scenario) -> FaultCount {
    let dir = std::env::temp_dir().join(format!(
        "keyspace-madsim-{}-{scenario:?}-{seed}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.set_time_limit(SIMULATED_TIME_MAX);
    let (history, fault_count) = runtime.block_on({
        let dir = dir.clone();
        async move {
            let handle = Handle::current();
            let removed = Arc::new(Mutex::new(BTreeSet::new()));
            let replicas: Vec<NodeHandle> = (1..=NODES)
                .map(|id| start_replica(&handle, config(id, &dir), removed.clone()))
                .collect();
            let history = Arc::new(History {
                recorder: Mutex::new(Recorder::new()),
                start: Instant::now(),
                acked: Mutex::new(0),
                healed: AtomicBool::new(false),
                targets: Mutex::new((1..=NODES).collect()),
            });
            let client_node = handle
                .create_node()
                .name("clients")
                .ip(IpAddr::from([10, 0, 1, 1]))
                .build();
            let workload = {
                let history = history.clone();
                client_node.spawn(async move {
                    let tasks: Vec<_> = (0..CLIENTS)
                        .map(|c| madsim::task::spawn(client_loop(c, history.clone(), 60)))
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                })
            };
            let fault_count = match scenario {
                Scenario::Faults => faults(&handle, &replicas).await,
                Scenario::Membership => {
                    let world = World {
                        handle: &handle,
                        dir: &dir,
                        history: &history,
                        removed: &removed,
                        operator: handle
                            .create_node()
                            .name("operator")
                            .ip(IpAddr::from([10, 0, 1, 2]))
                            .build(),
                    };
                    membership_changes(&world, &replicas).await
                }
            };
            history.healed.store(true, Ordering::Relaxed);
            // Healed: every client must now finish its operations within the bound.
            let healed_at = Instant::now();
            madsim::time::timeout(HEAL_PROGRESS_MAX * 3, workload)
                .await
                .expect("the healed cluster serves the clients")
                .unwrap();
            let acked_before = *history.acked.lock().unwrap();
            let probe = client_node.spawn({
                let history = history.clone();
                async move { client_loop(CLIENTS, history, 5).await }
            });
            madsim::time::timeout(HEAL_PROGRESS_MAX, probe)
                .await
                .expect("progress after healing")
                .unwrap();
            assert!(
                *history.acked.lock().unwrap() > acked_before,
                "no operation succeeded within {HEAL_PROGRESS_MAX:?} of healing (healed at {:?})",
                healed_at.duration_since(history.start)
            );
            (history, fault_count)
        }
    });
    let recorder = history.recorder.lock().unwrap();
    let verdict = judge(seed, scenario, &recorder);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "seed {seed} ({scenario:?}): {} operations, {verdict}; {fault_count}",
        recorder.len()
    );
    fault_count
}

/// The checker's verdict on a seed's history; a violation stops the test, leaving the history
/// in a file.
fn judge(seed: u64, scenario: Scenario, recorder: &Recorder) -> String {
    let options = CheckOptions {
        timeout: Some(Duration::from_secs(60)),
        threads: 1,
        ..CheckOptions::default()
    };
    match check_kv(&recorder.history(), &options) {
        CheckResult::Linearizable => "linearizable".to_string(),
        CheckResult::Unknown(reason) => format!("checker undecided: {reason}"),
        violation => {
            let path =
                std::env::temp_dir().join(format!("keyspace-madsim-{scenario:?}-{seed}.jsonl"));
            recorder
                .write_jsonl(&mut std::fs::File::create(&path).unwrap())
                .unwrap();
            panic!(
                "seed {seed}: history not linearizable ({}): {violation:?}",
                path.display()
            );
        }
    }
}

/// The seeds to run: `KEYSPACE_MADSIM_SEED` alone, or the first `KEYSPACE_MADSIM_SEEDS` (24).
fn seeds() -> Vec<u64> {
    match std::env::var("KEYSPACE_MADSIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("KEYSPACE_MADSIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("KEYSPACE_MADSIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(24);
            (1..=count).collect()
        }
    }
}

/// Runs every seed of [`seeds`] under `scenario`, each on a thread of its own (madsim can seed
/// std's HashMap keys only in a thread that has not made a HashMap yet); returns the totals.
fn run_seeds(scenario: Scenario) -> (usize, FaultCount) {
    let seeds = seeds();
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let mut total = FaultCount::default();
    for &seed in &seeds {
        eprintln!("seed {seed} ({scenario:?}): reproduce with KEYSPACE_MADSIM_SEED={seed}");
        let count = std::thread::spawn(move || run_seed(seed, scenario))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        total.add(&count);
    }
    eprintln!("{} seeds passed ({scenario:?}); {total}", seeds.len());
    (seeds.len(), total)
}

#[test]
fn node_shell_survives_kills_restarts_partitions_and_packet_loss_with_a_linearizable_history() {
    let (seeds, total) = run_seeds(Scenario::Faults);
    // Each seed draws five fault kinds six times: a sweep this long without loss means the
    // schedule lost it.
    if seeds >= 8 {
        assert!(total.network_loss_periods > 0 && total.link_loss_periods > 0);
        assert!(total.network_lost_packets_estimate > 0 && total.lossy_link_dropping_ticks > 0);
    }
}

#[test]
fn node_shell_adds_promotes_replaces_and_removes_members_under_load_with_a_linearizable_history() {
    let (seeds, total) = run_seeds(Scenario::Membership);
    // Nine changes a seed: a learner and a witness added and promoted, a follower removed, a
    // dead replica replaced (added, promoted, removed), the master removed.
    assert_eq!(total.member_changes as usize, 9 * seeds);
}
