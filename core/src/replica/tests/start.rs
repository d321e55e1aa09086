//! How a replica starts: the restart quiet period, and its absence in a brand-new cluster.

use super::*;

fn new_cluster_config(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = config(id, nodes);
    c.new_cluster = true;
    c
}

/// Whether `replica` answers a lease prepare from replica 2 at `now_ns`.
fn answers_lease_prepare(replica: &mut Replica, now_ns: Nanos) -> bool {
    let ballot = Ballot { round: 1, node: 2 };
    replica.handle_message(
        now_ns,
        2,
        Message::LeasePrepare(LeasePrepare { ballot, epoch: 0 }),
    );
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
