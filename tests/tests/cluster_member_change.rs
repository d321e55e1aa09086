//! Real processes: membership changes under client load, each history checked.
//!
//! (a) a dead replica is replaced: `kill -9`, its data deleted, a fresh replica `--join`s and
//! promotes itself, the dead one is removed, then another original replica is killed; (b) the
//! group grows from 3 to 5 voters and shrinks back to 3, the master removed too; (d) a removed
//! replica restarted with its old data (and no `--peers`: its data directory knows the group)
//! is refused by the group and stops with exit status 3.

use std::time::Duration;

use keyspace_node::resp_client::Value;

mod cluster_common;
use cluster_common::workload::{self, Shared};
use cluster_common::{wait_until, Client, Cluster, NODES};

const CLIENTS: u64 = 4;
/// Acknowledged writes to wait for between steps.
const WRITES_PER_STEP: usize = 150;
/// How long the group keeps a removed replica's link (node's `REMOVED_PEER_GRACE`), and slack.
const REMOVED_PEER_GRACE: Duration = Duration::from_secs(30 + 3);

/// The lines of a `MEMBER LIST` answer.
fn member_list(client: &mut Client) -> Vec<String> {
    match client.call(&[b"MEMBER", b"LIST"]).unwrap() {
        Value::Array(rows) => rows
            .into_iter()
            .map(|row| match row {
                Value::Bulk(line) => String::from_utf8(line).unwrap(),
                other => panic!("a MEMBER LIST row is {other:?}"),
            })
            .collect(),
        other => panic!("MEMBER LIST answered {other:?}"),
    }
}

/// Starts reserved replica `id` with `--join` through `via` and `--promote`, and waits until
/// it says it votes.
fn join_and_promote(cluster: &mut Cluster, id: u16, via: u16) {
    cluster.join(id, via, true);
    wait_until(&format!("replica {id} joined and votes"), || {
        cluster.node_out(id).contains("is a voter")
    });
    eprintln!("replica {id}:\n{}", cluster.node_out(id));
    assert_eq!(cluster.field(id, "member_kind").as_deref(), Some("voter"));
}

/// Reads every key back through `via` and checks the history.
fn finish(cluster: &Cluster, shared: &Shared, via: u16, file_name: &str) {
    let mut client = Client::connect(cluster.addr(via)).unwrap();
    workload::read_back(shared, CLIENTS, &mut client);
    workload::check_history(shared, file_name);
}

#[test]
fn a_dead_replica_is_replaced_by_a_joiner_and_the_group_survives_another_loss() {
    let mut cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let joiner = cluster.reserve_joiner();
    let shared = Shared::new();
    let clients = workload::start_clients(CLIENTS, &cluster.client_ports, &shared);
    shared.wait_for_writes(WRITES_PER_STEP);

    let dead = (1..=NODES).find(|id| *id != master).unwrap();
    cluster.kill(dead);
    std::fs::remove_dir_all(cluster.data_dir(dead)).unwrap();
    eprintln!("killed replica {dead} and deleted its data");
    let via = (1..=NODES).find(|id| *id != dead).unwrap();
    join_and_promote(&mut cluster, joiner, via);
    assert_eq!(cluster.remove_member(via, dead), 3);
    shared.wait_for_writes(WRITES_PER_STEP);

    let rows = member_list(&mut cluster.client(joiner));
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.contains("kind=voter")), "{rows:?}");
    assert!(!rows.iter().any(|r| r.starts_with(&format!("id={dead} "))));

    let second = (1..=NODES).find(|id| *id != dead && *id != via).unwrap();
    let killed_at = shared.start.elapsed();
    cluster.kill(second);
    eprintln!("killed original replica {second}");
    shared.wait_for_writes(WRITES_PER_STEP);
    let gap = shared.longest_gap_since(killed_at);
    eprintln!("longest write gap after the second kill: {gap:?}");
    workload::stop_clients(&shared, clients);
    finish(
        &cluster,
        &shared,
        joiner,
        "keyspace-member-replace-history.jsonl",
    );
}

#[test]
fn the_group_grows_from_3_to_5_voters_and_shrinks_back_under_load() {
    let mut cluster = Cluster::start();
    cluster.wait_for_master(None);
    let (fourth, fifth) = (cluster.reserve_joiner(), cluster.reserve_joiner());
    let shared = Shared::new();
    let clients = workload::start_clients(CLIENTS, &cluster.client_ports, &shared);
    shared.wait_for_writes(WRITES_PER_STEP);

    for id in [fourth, fifth] {
        let began = shared.start.elapsed();
        join_and_promote(&mut cluster, id, 1);
        shared.wait_for_writes(WRITES_PER_STEP);
        let gap = shared.longest_gap_since(began);
        eprintln!("longest write gap while {id} joined: {gap:?}");
    }
    let rows = member_list(&mut cluster.client(1));
    assert_eq!(rows.iter().filter(|r| r.contains("kind=voter")).count(), 5);

    // Shrink: the master first (it hands over), then a founder that is a follower.
    let master = cluster.wait_for_master(None);
    let via = cluster.ids().find(|id| *id != master).unwrap();
    // Gaps are measured before waiting for the removed replica to stop: the clients pause
    // once they run far ahead of the test, and that wait would count as a stall.
    let began = shared.start.elapsed();
    cluster.remove_member(via, master);
    shared.wait_for_writes(WRITES_PER_STEP);
    eprintln!(
        "longest write gap while master {master} was removed: {:?}",
        shared.longest_gap_since(began)
    );
    assert_eq!(cluster.wait_exit(master).code(), Some(3));
    let follower = (1..=NODES).find(|id| *id != master && *id != via).unwrap();
    let began = shared.start.elapsed();
    let epoch = cluster.remove_member(via, follower);
    assert_eq!(epoch, 6);
    shared.wait_for_writes(WRITES_PER_STEP);
    eprintln!(
        "longest write gap while follower {follower} was removed: {:?}",
        shared.longest_gap_since(began)
    );
    assert_eq!(cluster.wait_exit(follower).code(), Some(3));
    shared.wait_for_writes(WRITES_PER_STEP);
    let rows = member_list(&mut cluster.client(via));
    assert_eq!(rows.len(), 3, "{rows:?}");
    workload::stop_clients(&shared, clients);
    finish(
        &cluster,
        &shared,
        via,
        "keyspace-member-grow-shrink-history.jsonl",
    );
}

#[test]
fn a_removed_replica_restarted_with_its_old_data_is_refused_and_stops_with_status_3() {
    let mut cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let shared = Shared::new();
    let clients = workload::start_clients(CLIENTS, &cluster.client_ports, &shared);
    shared.wait_for_writes(WRITES_PER_STEP);
    let removed = (1..=NODES).find(|id| *id != master).unwrap();
    let via = (1..=NODES).find(|id| *id != removed).unwrap();
    cluster.kill(removed);
    assert_eq!(cluster.remove_member(via, removed), 1);
    shared.wait_for_writes(WRITES_PER_STEP);

    // --peers that disagree with what the data directory keeps: refused at once.
    let wrong = cluster.peers.replace("1=", "9=");
    cluster.restart_with(removed, &["--peers", &wrong]);
    assert_eq!(cluster.wait_exit(removed).code(), Some(1));
    assert!(
        cluster.node_log(removed).contains("--peers disagrees"),
        "{}",
        cluster.node_log(removed)
    );
    // The clients' operations are bounded: they stop here, and the history ends with them.
    workload::stop_clients(&shared, clients);

    // Past the grace the group keeps a removed peer's link, only the handshake can tell it.
    std::thread::sleep(REMOVED_PEER_GRACE);
    cluster.restart_with(removed, &[]);
    let status = cluster.wait_exit(removed);
    let log = cluster.node_log(removed);
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("peer says this replica was removed"), "{log}");
    let mut client = cluster.client(via);
    let set = client.call(&[b"SET", b"after-restart", b"1"]).unwrap();
    assert_eq!(set, Value::Simple("OK".into()));
    finish(
        &cluster,
        &shared,
        via,
        "keyspace-member-removed-restart-history.jsonl",
    );
}
