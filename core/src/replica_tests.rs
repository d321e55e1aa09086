//! Replica tests over a tiny lossless in-memory cluster (the simulator covers faults).

use super::*;
use crate::command::{Command, Reply};

const MS: Nanos = NANOS_PER_MILLI;

/// A perfect network and instant disks; every replica shares true time.
struct Cluster {
    now_ns: Nanos,
    replicas: Vec<Replica>,
    disks: Vec<DurableState>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    replies: Vec<ClientResponse>,
    /// Persist tokens emitted but not yet reported durable, per replica.
    unsynced: Vec<Vec<(u64, Vec<StorageWrite>)>>,
    auto_sync: bool,
    /// Messages from or to this replica are dropped.
    isolated: Option<NodeId>,
}

impl Cluster {
    fn new(size: usize) -> Self {
        Self::with_config(size, config)
    }

    fn with_config(size: usize, config: fn(NodeId, &[NodeId]) -> ReplicaConfig) -> Self {
        let nodes: Vec<NodeId> = (1..=size as NodeId).collect();
        let replicas = nodes
            .iter()
            .map(|id| Replica::new(config(*id, &nodes), DurableState::default(), 0, *id as u64))
            .collect();
        Self {
            now_ns: 0,
            replicas,
            disks: vec![DurableState::default(); size],
            network: VecDeque::new(),
            replies: Vec::new(),
            unsynced: vec![Vec::new(); size],
            auto_sync: true,
            isolated: None,
        }
    }

    fn drain(&mut self, index: usize) {
        let from = self.replicas[index].node_id();
        let mut outputs = Vec::new();
        crate::drive::drain(&mut self.replicas[index], &mut outputs);
        for output in outputs {
            match output {
                Output::Send { to, msg } => self.network.push_back((from, to, msg)),
                Output::Persist { token, writes } => self.unsynced[index].push((token, writes)),
                Output::Reply(response) => self.replies.push(response),
            }
        }
    }

    fn sync(&mut self, index: usize) {
        let pending = std::mem::take(&mut self.unsynced[index]);
        let Some(last) = pending.last().map(|(t, _)| *t) else {
            return;
        };
        for (_, writes) in &pending {
            writes.iter().for_each(|w| self.disks[index].apply(w));
        }
        self.replicas[index].handle_persisted(self.now_ns, last);
        self.drain(index);
    }

    /// Delivers messages and fires timers until `until_ns`, in 1 ms steps.
    fn run_until(&mut self, until_ns: Nanos) {
        while self.now_ns < until_ns {
            self.step();
            self.now_ns += MS;
        }
    }

    fn step(&mut self) {
        for i in 0..self.replicas.len() {
            if self.replicas[i]
                .poll_timeout()
                .is_some_and(|t| t <= self.now_ns)
            {
                self.replicas[i].handle_timeout(self.now_ns);
            }
            self.drain(i);
        }
        for _ in 0..10_000 {
            if self.auto_sync {
                (0..self.replicas.len()).for_each(|i| self.sync(i));
            }
            let Some((from, to, msg)) = self.network.pop_front() else {
                break;
            };
            if self.isolated.is_some_and(|n| n == from || n == to) {
                continue;
            }
            let index = (to - 1) as usize;
            self.replicas[index].handle_message(self.now_ns, from, msg);
            self.drain(index);
        }
    }

    fn master(&self) -> Option<usize> {
        let masters: Vec<usize> = (0..self.replicas.len())
            .filter(|i| self.replicas[*i].role(self.now_ns) == Role::Master)
            .collect();
        assert!(masters.len() <= 1, "two masters at once: {masters:?}");
        masters.first().copied()
    }

    fn request(&mut self, index: usize, client_id: u64, seq: u64, command: Command) {
        let request = ClientRequest {
            client_id,
            seq,
            command,
        };
        self.replicas[index].handle_request(self.now_ns, request);
        self.drain(index);
    }

    fn reply_for(&self, client_id: u64, seq: u64) -> Option<&Outcome> {
        self.replies
            .iter()
            .rev()
            .find(|r| r.client_id == client_id && r.seq == seq)
            .map(|r| &r.outcome)
    }
}

fn config(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = ReplicaConfig::new(id, nodes.to_vec());
    c.lease.lease_duration_ns = 1_000 * MS;
    c
}

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: value.into(),
    }
}

fn get(key: &str) -> Command {
    Command::Get { key: key.into() }
}

#[test]
fn fresh_cluster_elects_one_master_after_the_restart_quiet_period() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(900 * MS);
    assert_eq!(
        cluster.master(),
        None,
        "nobody may lead during the quiet period"
    );
    cluster.run_until(2_500 * MS);
    assert!(cluster.master().is_some(), "a master within 2.5 s");
}

fn new_cluster_config(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = config(id, nodes);
    c.new_cluster = true;
    c
}

/// Whether `replica` answers a lease prepare from replica 2 at `now_ns`.
fn answers_lease_prepare(replica: &mut Replica, now_ns: Nanos) -> bool {
    let ballot = Ballot { round: 1, node: 2 };
    replica.handle_message(now_ns, 2, Message::LeasePrepare(LeasePrepare { ballot }));
    std::iter::from_fn(|| replica.poll_output()).any(|output| {
        matches!(
            output,
            Output::Send {
                msg: Message::LeasePromise(_),
                ..
            }
        )
    })
}

#[test]
fn a_new_cluster_elects_its_first_master_within_the_backoff_not_the_restart_wait() {
    let mut cluster = Cluster::with_config(3, new_cluster_config);
    // The random wait before the first attempt is at most 300 ms; the lease and log rounds
    // take a few 1 ms steps here. The restart wait alone would be 1,000 ms.
    cluster.run_until(400 * MS);
    assert!(cluster.master().is_some(), "a master within 400 ms");
}

#[test]
fn a_replica_restarted_with_the_new_cluster_flag_but_durable_state_waits_out_the_lease() {
    let mut cluster = Cluster::with_config(3, new_cluster_config);
    cluster.run_until(400 * MS);
    let m = cluster.master().expect("master");
    cluster.request(m, 3, 1, set("x", "1"));
    cluster.run_until(cluster.now_ns + 50 * MS);
    let restarted_ns = cluster.now_ns;
    for i in 0..3 {
        let durable = cluster.disks[i].clone();
        assert!(!durable.is_empty(), "replica {i} wrote to storage");
        let id = cluster.replicas[i].node_id();
        let replica = Replica::new(new_cluster_config(id, &[1, 2, 3]), durable, restarted_ns, 5);
        cluster.replicas[i] = replica;
        cluster.unsynced[i].clear();
    }
    cluster.network.clear();
    assert!(!answers_lease_prepare(
        &mut cluster.replicas[0],
        restarted_ns
    ));
    cluster.run_until(restarted_ns + 900 * MS);
    assert_eq!(cluster.master(), None, "nobody leads during the wait");
    cluster.run_until(restarted_ns + 2_500 * MS);
    assert!(cluster.master().is_some(), "a master after the wait");
}

#[test]
fn only_a_replica_with_the_new_cluster_flag_and_empty_storage_answers_lease_messages_at_once() {
    let nodes = [1, 2, 3];
    let empty = DurableState::default();
    let mut new = Replica::new(new_cluster_config(1, &nodes), empty.clone(), 0, 1);
    assert!(answers_lease_prepare(&mut new, 0));
    let mut flagless = Replica::new(config(1, &nodes), empty, 0, 1);
    assert!(!answers_lease_prepare(&mut flagless, 0));
    let damaged = DurableState {
        damaged: true,
        ..DurableState::default()
    };
    let mut damaged = Replica::new(new_cluster_config(1, &nodes), damaged, 0, 1);
    assert!(!answers_lease_prepare(&mut damaged, 0));
    let promised = DurableState {
        promised: Ballot { round: 4, node: 3 },
        ..DurableState::default()
    };
    let mut promised = Replica::new(new_cluster_config(1, &nodes), promised, 0, 1);
    assert!(!answers_lease_prepare(&mut promised, 999 * MS));
    assert!(answers_lease_prepare(&mut promised, 1_000 * MS));
}

#[test]
fn master_applies_writes_and_serves_linearizable_reads() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    cluster.request(m, 7, 1, set("a", "1"));
    cluster.run_until(cluster.now_ns + 10 * MS);
    assert_eq!(cluster.reply_for(7, 1), Some(&Outcome::Done(Reply::Ok)));
    cluster.request(m, 7, 2, get("a"));
    assert_eq!(
        cluster.reply_for(7, 2),
        Some(&Outcome::Done(Reply::Value(Some("1".into()))))
    );
}

#[test]
fn follower_refuses_reads_and_writes_with_a_master_hint() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    let follower = (m + 1) % 3;
    cluster.request(follower, 9, 1, set("a", "1"));
    let hint = Some(cluster.replicas[m].node_id());
    let refused = Outcome::Rejected(Rejection::NotMaster { master_hint: hint });
    assert_eq!(cluster.reply_for(9, 1), Some(&refused));
}

#[test]
fn followers_learn_chosen_entries_and_agree_on_the_applied_chain() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    for seq in 1..=50 {
        cluster.request(m, 1, seq, set("k", &seq.to_string()));
    }
    cluster.run_until(cluster.now_ns + 500 * MS);
    let chains: Vec<(Slot, u64)> = cluster
        .replicas
        .iter()
        .map(|r| (r.applied_through(), r.applied_chain()))
        .collect();
    assert!(chains.iter().all(|c| *c == chains[0]), "{chains:?}");
    let dirty = cluster.replicas[(m + 1) % 3]
        .state_machine()
        .read(&Command::DirtyGet { key: "k".into() });
    assert_eq!(dirty, Reply::Value(Some("50".into())));
}

#[test]
fn acceptor_answers_accept_only_after_it_is_durable() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    let follower = (m + 1) % 3;
    let ballot = cluster.replicas[m].log_ballot();
    let from = cluster.replicas[m].node_id();
    let accept = Accept {
        ballot,
        slot: 1_000,
        value: LogValue::Noop,
    };
    cluster.replicas[follower].handle_message(cluster.now_ns, from, Message::Accept(accept));
    let mut outputs = Vec::new();
    while let Some(o) = cluster.replicas[follower].poll_output() {
        outputs.push(o);
    }
    assert!(
        matches!(outputs.as_slice(), [Output::Persist { .. }]),
        "{outputs:?}"
    );
    let Output::Persist { token, .. } = outputs[0] else {
        unreachable!()
    };
    cluster.replicas[follower].handle_persisted(cluster.now_ns, token);
    let sent = cluster.replicas[follower].poll_output();
    assert!(
        matches!(
            sent,
            Some(Output::Send {
                msg: Message::Accepted(_),
                ..
            })
        ),
        "{sent:?}"
    );
}

#[test]
fn acceptor_refuses_accept_below_its_promise() {
    let mut replica = Replica::new(config(1, &[1, 2, 3]), DurableState::default(), 0, 1);
    let high = Ballot { round: 5, node: 2 };
    replica.handle_message(
        0,
        2,
        Message::Prepare(Prepare {
            ballot: high,
            from_slot: 1,
        }),
    );
    while replica.poll_output().is_some() {}
    let low = Ballot { round: 4, node: 3 };
    let accept = Accept {
        ballot: low,
        slot: 1,
        value: LogValue::Noop,
    };
    replica.handle_message(0, 3, Message::Accept(accept));
    let out = replica.poll_output();
    let nack = Nack {
        ballot: low,
        highest: high,
    };
    assert_eq!(
        out,
        Some(Output::Send {
            to: 3,
            msg: Message::Nack(nack)
        })
    );
}

#[test]
fn new_master_reproposes_the_highest_ballot_value_it_finds() {
    let mut found = BTreeMap::new();
    let report = |b: u64, v: LogValue| SlotReport {
        slot: 3,
        accepted_ballot: Some(Ballot { round: b, node: 1 }),
        value: v,
    };
    let batch = LogValue::Batch(Vec::new().into());
    merge_report(&mut found, report(2, LogValue::Noop));
    merge_report(&mut found, report(5, batch.clone()));
    merge_report(&mut found, report(4, LogValue::Noop));
    assert_eq!(found[&3].1, batch);
}

#[test]
fn restarted_replica_recovers_its_applied_state_from_storage() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    cluster.request(m, 3, 1, set("x", "42"));
    cluster.run_until(cluster.now_ns + 300 * MS);
    let follower = (m + 1) % 3;
    let before = cluster.replicas[follower].applied_chain();
    let durable = cluster.disks[follower].clone();
    let id = cluster.replicas[follower].node_id();
    let restarted = Replica::new(config(id, &[1, 2, 3]), durable, cluster.now_ns, 99);
    assert_eq!(restarted.applied_chain(), before);
    let value = restarted
        .state_machine()
        .read(&Command::DirtyGet { key: "x".into() });
    assert_eq!(value, Reply::Value(Some("42".into())));
}

#[test]
fn master_steps_down_and_a_new_one_serves_after_its_isolation() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(2_500 * MS);
    let old = cluster.master().expect("master");
    cluster.request(old, 5, 1, set("a", "old"));
    cluster.run_until(cluster.now_ns + 50 * MS);
    // Isolate the master by dropping everything it sends or receives.
    cluster.isolated = Some(cluster.replicas[old].node_id());
    cluster.run_until(cluster.now_ns + 4_000 * MS);
    let new = cluster.master().expect("a new master");
    assert_ne!(new, old);
    assert_eq!(cluster.replicas[old].role(cluster.now_ns), Role::Follower);
    cluster.request(new, 5, 2, get("a"));
    assert_eq!(
        cluster.reply_for(5, 2),
        Some(&Outcome::Done(Reply::Value(Some("old".into()))))
    );
}

fn snapshotting_config(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = config(id, nodes);
    c.snapshot_interval_slots = 10;
    c.log_retain_slots = 2;
    c
}

fn write_many(
    cluster: &mut Cluster,
    master: usize,
    client_id: u64,
    count: u64,
    value_bytes: usize,
) {
    for seq in 1..=count {
        let value = vec![b'a' + (seq % 26) as u8; value_bytes];
        let key = format!("k{}", seq % 40).into_bytes();
        let command = Command::Set { key, value };
        cluster.request(master, client_id, seq, command);
        cluster.run_until(cluster.now_ns + MS);
    }
    cluster.run_until(cluster.now_ns + 300 * MS);
}

/// A three-replica cluster snapshotting every 10 slots, after `count` writes through its
/// master; returns it with the master's index.
fn snapshotting_cluster_after_writes(count: u64) -> (Cluster, usize) {
    let mut cluster = Cluster::with_config(3, snapshotting_config);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    write_many(&mut cluster, m, 1, count, 10);
    (cluster, m)
}

#[test]
fn replica_snapshots_and_compacts_its_log_after_the_interval() {
    let (cluster, _) = snapshotting_cluster_after_writes(60);
    for (replica, disk) in cluster.replicas.iter().zip(&cluster.disks) {
        let snapshot_slot = disk.snapshot_slot().expect("a durable snapshot");
        assert!(snapshot_slot >= 50, "snapshot at {snapshot_slot}");
        let oldest_kept = disk.chosen.keys().next().copied().unwrap_or(Slot::MAX);
        assert!(
            oldest_kept > snapshot_slot - 2 - 1,
            "log kept from {oldest_kept}"
        );
        assert!(replica.chosen(1).is_none(), "slot 1 is compacted away");
    }
}

#[test]
fn replicas_take_their_snapshots_at_staggered_slots() {
    let (cluster, _) = snapshotting_cluster_after_writes(60);
    // Interval 10 among 3 members: places 0, 1 and 2 snapshot at slots 10k, 10k+3, 10k+6.
    for (replica, disk) in cluster.replicas.iter().zip(&cluster.disks) {
        let snapshot_slot = disk.snapshot_slot().expect("a durable snapshot");
        let place = u64::from(replica.node_id() - 1);
        assert_eq!(
            snapshot_slot % 10,
            place * 10 / 3,
            "replica {} snapshot at {snapshot_slot}",
            replica.node_id()
        );
    }
}

#[test]
fn restarted_replica_recovers_from_its_snapshot_and_the_log_after_it() {
    let (cluster, m) = snapshotting_cluster_after_writes(45);
    let follower = (m + 1) % 3;
    let before = &cluster.replicas[follower];
    let (through, chain) = (before.applied_through(), before.applied_chain());
    let hash = before.state_machine().state_hash();
    let id = before.node_id();
    let durable = cluster.disks[follower].clone();
    assert!(
        durable.snapshot_slot().unwrap() < through,
        "some log after the snapshot"
    );
    let restarted = Replica::new(
        snapshotting_config(id, &[1, 2, 3]),
        durable,
        cluster.now_ns,
        5,
    );
    assert_eq!(restarted.applied_through(), through);
    assert_eq!(restarted.applied_chain(), chain);
    assert_eq!(restarted.state_machine().state_hash(), hash);
}

#[test]
fn replica_behind_the_compaction_point_catches_up_by_snapshot_transfer() {
    let mut cluster = Cluster::with_config(3, snapshotting_config);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    let lagging = (m + 1) % 3;
    cluster.isolated = Some(cluster.replicas[lagging].node_id());
    // ~3 MB of state: the transfer takes several chunks.
    write_many(&mut cluster, m, 1, 40, 100_000);
    assert!(cluster.replicas[lagging].applied_through() < 10);
    cluster.isolated = None;
    cluster.run_until(cluster.now_ns + 1_000 * MS);
    let master = &cluster.replicas[m];
    let behind = &cluster.replicas[lagging];
    assert_eq!(behind.applied_through(), master.applied_through());
    assert_eq!(behind.applied_chain(), master.applied_chain());
    assert_eq!(
        behind.state_machine().state_hash(),
        master.state_machine().state_hash()
    );
    let installed = cluster.disks[lagging]
        .snapshot_slot()
        .expect("snapshot installed durably");
    assert!(installed >= 30, "installed snapshot at {installed}");
}

/// Restarts replica `index` from a damaged copy of its storage: its promise and everything it
/// accepted are gone, and the loader says so.
fn restart_damaged(cluster: &mut Cluster, index: usize) {
    let id = cluster.replicas[index].node_id();
    let mut durable = cluster.disks[index].clone();
    durable.promised = Ballot::ZERO;
    durable.accepted.clear();
    durable.damaged = true;
    cluster.disks[index] = durable.clone();
    cluster.unsynced[index].clear();
    let nodes: Vec<NodeId> = (1..=cluster.replicas.len() as NodeId).collect();
    cluster.replicas[index] = Replica::new(config(id, &nodes), durable, cluster.now_ns, 77);
}

#[test]
fn replica_with_damaged_storage_does_not_vote_until_every_peer_reported_and_it_caught_up() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    write_many(&mut cluster, m, 1, 20, 10);
    let damaged = (m + 1) % 3;
    restart_damaged(&mut cluster, damaged);
    assert!(cluster.replicas[damaged].is_recovering_storage());
    let ballot = Ballot::next_above(cluster.replicas[m].log_ballot(), 9);
    let prepare = Prepare {
        ballot,
        from_slot: 1,
    };
    cluster.replicas[damaged].handle_message(cluster.now_ns, 1, Message::Prepare(prepare));
    assert_eq!(
        cluster.replicas[damaged].poll_output(),
        None,
        "no promise while recovering"
    );
    cluster.run_until(cluster.now_ns + 500 * MS);
    let recovered = &cluster.replicas[damaged];
    assert!(!recovered.is_recovering_storage());
    assert!(recovered.log_ballot() >= cluster.replicas[m].log_ballot());
    assert_eq!(
        recovered.applied_chain(),
        cluster.replicas[m].applied_chain()
    );
}

#[test]
fn replica_with_damaged_storage_stays_out_while_a_peer_is_silent() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    write_many(&mut cluster, m, 1, 5, 10);
    let damaged = (m + 1) % 3;
    let silent = (m + 2) % 3;
    cluster.isolated = Some(cluster.replicas[silent].node_id());
    restart_damaged(&mut cluster, damaged);
    cluster.run_until(cluster.now_ns + 3_000 * MS);
    assert!(cluster.replicas[damaged].is_recovering_storage());
    cluster.isolated = None;
    cluster.run_until(cluster.now_ns + 3_000 * MS);
    assert!(!cluster.replicas[damaged].is_recovering_storage());
}

#[test]
fn a_lone_replica_with_damaged_storage_never_votes_again() {
    let durable = DurableState {
        damaged: true,
        ..DurableState::default()
    };
    let mut replica = Replica::new(config(1, &[1]), durable, 0, 1);
    for step in 0..5_000u64 {
        let now = step * MS;
        if replica.poll_timeout().is_some_and(|t| t <= now) {
            replica.handle_timeout(now);
        }
        while replica.poll_output().is_some() {}
    }
    assert!(replica.is_recovering_storage());
    assert_eq!(replica.role(5_000 * MS), Role::Follower);
}

#[test]
fn batches_stop_at_the_command_and_byte_limits_but_always_take_one() {
    let request = |bytes: usize| ClientRequest {
        client_id: 1,
        seq: 1,
        command: Command::Set {
            key: b"k".to_vec(),
            value: vec![0; bytes],
        },
    };
    let pending: VecDeque<ClientRequest> = [10, 10, 10, 10].map(request).into();
    assert_eq!(batch_len(&pending, 3, 1_000), 3, "command limit");
    assert_eq!(
        batch_len(&pending, 10, 25),
        2,
        "byte limit: 11 + 11 <= 25 < 33"
    );
    let huge: VecDeque<ClientRequest> = [100, 1].map(request).into();
    assert_eq!(
        batch_len(&huge, 10, 50),
        1,
        "an oversized first request travels alone"
    );
}

fn checkpointing_config(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = config(id, nodes);
    c.checkpoint_interval_slots = 5;
    c
}

#[test]
fn master_logs_checkpoints_and_every_replica_agrees_with_them() {
    let mut cluster = Cluster::with_config(3, checkpointing_config);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("master");
    write_many(&mut cluster, m, 1, 30, 10);
    let through = cluster.replicas[m].applied_through();
    let checkpoints = (1..=through)
        .filter(|s| {
            matches!(
                cluster.replicas[m].chosen(*s),
                Some(LogValue::Checkpoint { .. })
            )
        })
        .count();
    assert!(
        checkpoints >= 3,
        "{checkpoints} checkpoints in {through} slots"
    );
    for replica in &cluster.replicas {
        assert_eq!(
            replica.applied_through(),
            through,
            "every replica applied them all"
        );
    }
}

#[test]
#[should_panic(expected = "state divergence")]
fn a_replica_whose_state_disagrees_with_a_checkpoint_stops() {
    let mut replica = Replica::new(config(1, &[1, 2, 3]), DurableState::default(), 0, 1);
    let ballot = Ballot { round: 1, node: 2 };
    let mut deliver = |msg: Message| {
        replica.handle_message(0, 2, msg);
        let mut last = 0;
        while let Some(out) = replica.poll_output() {
            if let Output::Persist { token, .. } = out {
                last = token;
            }
        }
        if last > 0 {
            replica.handle_persisted(0, last);
            while replica.poll_output().is_some() {}
        }
    };
    deliver(Message::Accept(Accept {
        ballot,
        slot: 1,
        value: LogValue::Noop,
    }));
    let wrong = LogValue::Checkpoint {
        at_slot: 1,
        state_hash: 12_345,
    };
    deliver(Message::Accept(Accept {
        ballot,
        slot: 2,
        value: wrong,
    }));
    deliver(Message::Commit(Commit {
        ballot,
        chosen_through: 2,
    }));
}
