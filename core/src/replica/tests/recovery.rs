//! Restarts from intact and from damaged storage.

use super::*;

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

/// A 3-replica cluster 3 s after a follower restarted from damaged storage while the other
/// follower is cut off: the damaged one is still recovering (a peer never reported), past its
/// restart quiet period. Returns the cluster, the damaged replica and the silent one.
fn damaged_while_a_peer_is_silent() -> (Cluster, usize, usize) {
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
    (cluster, damaged, silent)
}

#[test]
fn replica_with_damaged_storage_stays_out_while_a_peer_is_silent() {
    let (mut cluster, damaged, _) = damaged_while_a_peer_is_silent();
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

/// The lease answers replica `index` gives a prepare and a proposal of `proposer` in `round`,
/// under the epoch it has applied.
fn lease_answers(cluster: &mut Cluster, index: usize, proposer: NodeId, round: u64) -> usize {
    let now_ns = cluster.now_ns;
    let replica = &mut cluster.replicas[index];
    let epoch = replica.configuration().epoch;
    let ballot = Ballot {
        round,
        node: proposer,
    };
    let propose = LeasePropose {
        ballot,
        owner: proposer,
        attempt_id: 1,
        duration_ns: 1_000 * MS,
        epoch,
    };
    replica.handle_message(
        now_ns,
        proposer,
        Message::LeasePrepare(LeasePrepare { ballot, epoch }),
    );
    replica.handle_message(now_ns, proposer, Message::LeasePropose(propose));
    std::iter::from_fn(|| replica.poll_output())
        .filter(|out| {
            matches!(
                out,
                Output::Send {
                    msg: Message::LeasePromise(_) | Message::LeaseAccepted(_),
                    ..
                }
            )
        })
        .count()
}

#[test]
fn replica_recovering_damaged_storage_grants_no_lease_past_its_quiet_period() {
    let (mut cluster, damaged, silent) = damaged_while_a_peer_is_silent();
    let proposer = cluster.replicas[silent].node_id();
    assert_eq!(
        lease_answers(&mut cluster, damaged, proposer, 1_000),
        0,
        "a grant while recovering (its epoch may be one a forgotten change made stale)"
    );
    cluster.isolated = None;
    cluster.run_until(cluster.now_ns + 3_000 * MS);
    assert!(!cluster.replicas[damaged].is_recovering_storage());
    assert_eq!(
        lease_answers(&mut cluster, damaged, proposer, 2_000),
        2,
        "a recovered replica promises and accepts again"
    );
}
