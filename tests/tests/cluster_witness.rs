//! Real processes: (c) two full replicas and a witness survive the loss of either full replica.
//!
//! Three founders under client load; a witness `--join`s with `--witness --promote`; a founder
//! is removed, leaving two full voters and the witness. Then each full replica in turn is
//! killed with `kill -9` (the first restarted before the second is killed): writes continue
//! every time, the witness holds no keys and refuses reads naming the master, and
//! the history, read back at the end, is checked by the checker.

use std::time::Duration;

use keyspace_node::resp_client::Value;

mod cluster_common;
use cluster_common::workload::{self, Shared};
use cluster_common::{wait_until, Client, Cluster, NODES};

const CLIENTS: u64 = 4;
/// Acknowledged writes to wait for between steps.
const WRITES_PER_STEP: usize = 150;

/// The witness answers a read with an error that names the master.
fn assert_witness_refuses_reads(cluster: &Cluster, witness: u16, master: u16) {
    let mut client = cluster.client(witness);
    let master_named = format!("the master, replica {master}");
    wait_until("the witness names the master", || {
        match client.call(&[b"GET", b"k1"]).unwrap() {
            Value::Error(e) => {
                assert!(e.starts_with("WITNESS "), "{e}");
                e.contains(&master_named)
            }
            other => panic!("a witness answered a read with {other:?}"),
        }
    });
}

/// Kills full replica `lost`; writes go on through the other full replica and the witness.
fn survive_loss(cluster: &mut Cluster, shared: &Shared, lost: u16, other: u16, witness: u16) {
    let killed_at = shared.start.elapsed();
    cluster.kill(lost);
    eprintln!("killed full replica {lost}");
    shared.wait_for_writes(WRITES_PER_STEP);
    let master = cluster.wait_for_master(Some(lost));
    assert_eq!(master, other, "only a full replica leads");
    let gap = shared.longest_gap_since(killed_at);
    eprintln!("longest write gap after killing {lost}: {gap:?}");
    assert_witness_refuses_reads(cluster, witness, master);
}

#[test]
fn two_full_replicas_and_a_witness_survive_the_loss_of_either_full_replica() {
    let mut cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let shared = Shared::new();
    // The clients use the founders only: a witness serves no reads.
    let clients = workload::start_clients(CLIENTS, &cluster.client_ports, &shared);
    shared.wait_for_writes(WRITES_PER_STEP);

    let witness = cluster.reserve_joiner();
    cluster.join_with(witness, master, &["--witness", "--promote"]);
    wait_until(&format!("witness {witness} votes"), || {
        cluster.node_out(witness).contains("is a voter")
    });
    assert_eq!(
        cluster.field(witness, "member_kind").as_deref(),
        Some("witness")
    );
    let removed = (1..=NODES).find(|id| *id != master).unwrap();
    let removed_epoch = cluster.remove_member(master, removed);
    assert_eq!(removed_epoch, 3);
    assert_eq!(cluster.wait_exit(removed).code(), Some(3));
    shared.wait_for_writes(WRITES_PER_STEP);

    let full: Vec<u16> = (1..=NODES).filter(|id| *id != removed).collect();
    let (first, second) = (full[0], full[1]);
    survive_loss(&mut cluster, &shared, first, second, witness);
    cluster.restart(first);
    let commit = cluster.index(second, "commit_index").unwrap();
    wait_until(&format!("replica {first} catches up"), || {
        cluster
            .index(first, "applied_index")
            .is_some_and(|a| a >= commit)
    });
    std::thread::sleep(Duration::from_millis(500)); // it grants and accepts again
    survive_loss(&mut cluster, &shared, second, first, witness);

    let keys = cluster.field(witness, "applied_index");
    assert!(keys.is_some(), "the witness still answers INFO");
    let mut witness_client = cluster.client(witness);
    let dbsize = witness_client.call(&[b"INFO", b"keyspace"]).unwrap();
    assert!(
        !format!("{dbsize:?}").contains("keys="),
        "the witness holds keys: {dbsize:?}"
    );
    workload::stop_clients(&shared, clients);
    let mut client = Client::connect(cluster.addr(first)).unwrap();
    workload::read_back(&shared, CLIENTS, &mut client);
    workload::check_history(&shared, "keyspace-witness-history.jsonl");
}
