//! Snapshots, compaction and catch-up by snapshot transfer.

use super::*;

fn snapshotting_config(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = config(id, nodes);
    c.snapshot_interval_slots = 10;
    c.log_retain_slots = 2;
    c
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
