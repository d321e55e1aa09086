//! Real processes: three `keyspace node`s on 127.0.0.1, clients writing through the Redis
//! protocol, `kill -9` of the master. Writes must resume on a new master within the lease time,
//! no acknowledged write may be lost, the killed replica must catch up after a restart, and the
//! recorded client history must be linearizable.

use std::process::Command as Process;
use std::time::Duration;

mod cluster_common;
use cluster_common::workload::{self, Shared};
use cluster_common::{wait_until, Client, Cluster, LEASE_MS, NODES};

/// Writes must work again within this long after the master dies: the lease, the restart-free
/// election that follows it, and slack for a loaded 2-core machine.
const FAILOVER_MAX: Duration = Duration::from_millis(3 * LEASE_MS + 2000);
const CLIENTS: u64 = 4;

#[test]
fn killing_the_master_loses_no_acknowledged_write_and_the_old_master_catches_up() {
    let mut cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    eprintln!("master is node {master}");

    // Any replica accepts any command; redis-cli works unmodified when it is installed.
    let follower = (1..=NODES).find(|id| *id != master).unwrap();
    if let Ok(output) = Process::new("redis-cli")
        .args([
            "-p",
            &cluster.port(follower).to_string(),
            "SET",
            "greeting",
            "hello",
        ])
        .output()
    {
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "OK");
        let output = Process::new("redis-cli")
            .args(["-p", &cluster.port(master).to_string(), "GET", "greeting"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "hello");
    }

    let shared = Shared::new();
    let clients = workload::start_clients(CLIENTS, &cluster.client_ports, &shared);
    shared.wait_for_writes(300);

    let killed_at = shared.start.elapsed();
    cluster.kill(master);
    eprintln!("killed master {master} at {killed_at:?}");
    let new_master = cluster.wait_for_master(Some(master));
    wait_until("a write is acknowledged after the kill", || {
        shared
            .acked_writes
            .lock()
            .unwrap()
            .iter()
            .any(|t| *t > killed_at + Duration::from_millis(100))
    });
    let resumed = shared
        .acked_writes
        .lock()
        .unwrap()
        .iter()
        .copied()
        .find(|t| *t > killed_at + Duration::from_millis(100))
        .unwrap();
    let gap = resumed - killed_at;
    eprintln!("node {new_master} took over; writes resumed {gap:?} after the kill");
    assert!(
        gap < FAILOVER_MAX,
        "writes resumed only after {gap:?}\n{}",
        cluster.logs()
    );

    cluster.restart(master);
    shared.wait_for_writes(300);
    workload::stop_clients(&shared, clients);
    let commit: u64 = cluster
        .field(new_master, "commit_index")
        .unwrap()
        .parse()
        .unwrap();
    wait_until("the restarted replica caught up", || {
        cluster
            .field(master, "applied_index")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|a| a >= commit)
    });
    eprintln!("restarted node {master} applied through {commit}");

    // Read every key back through the restarted replica (forwarded to the master): the final
    // reads join the history, so a lost acknowledged write is a violation.
    let mut client = Client::connect(cluster.addr(master)).unwrap();
    workload::read_back(&shared, CLIENTS, &mut client);
    workload::check_history(&shared, "keyspace-cluster-history.jsonl");
}
