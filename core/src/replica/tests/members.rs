//! Membership changes: learners added, caught up and promoted; replicas removed; the rules
//! that refuse a change.

use super::*;
use crate::membership::{Change, ChangeError, MemberKind};

fn add(id: NodeId) -> Command {
    Command::Member(Change::Add {
        id,
        peer_addr: format!("127.0.0.1:{}", 7000 + id),
        client_addr: format!("127.0.0.1:{}", 6000 + id),
        kind: MemberKind::Full,
    })
}

fn refused(error: ChangeError) -> Outcome {
    Outcome::Rejected(Rejection::Invalid(
        crate::command::CommandError::MemberChange(error),
    ))
}

/// A cluster of three with a master that has settled (its lease and opening no-op).
fn settled() -> (Cluster, usize) {
    let mut cluster = Cluster::new(3);
    cluster.run_until(2_500 * MS);
    let master = cluster.master().expect("a master");
    cluster.request(master, 7, 1, set("a", "1"));
    cluster.run_until(cluster.now_ns + 300 * MS);
    (cluster, master)
}

#[test]
fn a_learner_is_added_catches_up_is_promoted_and_then_votes() {
    let (mut cluster, m) = settled();
    let joiner = cluster.start_joiner(config);
    cluster.request(m, 8, 1, add(4));
    cluster.run_until(cluster.now_ns + 300 * MS);
    assert_eq!(cluster.reply_for(8, 1), Some(&Outcome::Done(Reply::Int(1))));
    let master_chosen = cluster.replicas[m].chosen_through();
    assert_eq!(cluster.replicas[joiner].chosen_through(), master_chosen);
    assert!(!cluster.replicas[joiner].configuration().is_voter(4));
    cluster.run_until(cluster.now_ns + 1_000 * MS); // the lease is extended under epoch 1
    cluster.request(m, 8, 2, Command::Member(Change::Promote { id: 4 }));
    cluster.run_until(cluster.now_ns + 300 * MS);
    assert_eq!(cluster.reply_for(8, 2), Some(&Outcome::Done(Reply::Int(2))));
    for replica in &cluster.replicas {
        let configuration = replica.configuration();
        assert_eq!(configuration.epoch, 2, "replica {}", replica.node_id());
        assert_eq!(configuration.voter_count(), 4);
    }
    // Two of the old voters down: a write needs the new voter's acceptance (3 of 4).
    cluster.isolated = Some(cluster.replicas[(m + 1) % 3].node_id());
    cluster.request(m, 7, 2, set("b", "2"));
    cluster.run_until(cluster.now_ns + 50 * MS);
    assert_eq!(cluster.reply_for(7, 2), Some(&Outcome::Done(Reply::Ok)));
}

#[test]
fn promotion_is_refused_while_the_learner_is_not_connected_and_caught_up() {
    let (mut cluster, m) = settled();
    cluster.request(m, 8, 1, add(4)); // never started
    cluster.run_until(cluster.now_ns + 1_300 * MS);
    assert_eq!(cluster.reply_for(8, 1), Some(&Outcome::Done(Reply::Int(1))));
    cluster.request(m, 8, 2, Command::Member(Change::Promote { id: 4 }));
    let chosen = cluster.replicas[m].chosen_through();
    let expected = refused(ChangeError::NotCaughtUp {
        id: 4,
        behind_slots: chosen,
        allowed_slots: 1_000,
    });
    assert_eq!(cluster.reply_for(8, 2), Some(&expected));
}

#[test]
fn a_second_change_is_refused_while_the_first_is_pending() {
    let (mut cluster, m) = settled();
    cluster.request(m, 8, 1, add(4));
    cluster.request(m, 8, 2, add(5));
    assert_eq!(
        cluster.reply_for(8, 2),
        Some(&refused(ChangeError::InProgress))
    );
    cluster.run_until(cluster.now_ns + 300 * MS);
    assert_eq!(cluster.reply_for(8, 1), Some(&Outcome::Done(Reply::Int(1))));
}

#[test]
fn a_removed_replica_stops_and_the_rest_serve_on() {
    let (mut cluster, m) = settled();
    let gone = (m + 1) % 3;
    let gone_id = cluster.replicas[gone].node_id();
    cluster.request(m, 8, 1, Command::Member(Change::Remove { id: gone_id }));
    cluster.run_until(cluster.now_ns + 300 * MS);
    assert_eq!(cluster.reply_for(8, 1), Some(&Outcome::Done(Reply::Int(1))));
    assert!(cluster.replicas[gone].is_removed());
    assert_eq!(cluster.replicas[gone].poll_timeout(), None);
    let ids = cluster.replicas[m].configuration().member_ids().count();
    assert_eq!(ids, 2);
    assert_eq!(
        cluster.replicas[m].configuration().apply(&Change::Add {
            id: gone_id,
            peer_addr: String::new(),
            client_addr: String::new(),
            kind: MemberKind::Full,
        }),
        Err(ChangeError::IdReused(gone_id))
    );
    cluster.request(m, 7, 2, set("b", "2"));
    cluster.run_until(cluster.now_ns + 50 * MS);
    assert_eq!(cluster.reply_for(7, 2), Some(&Outcome::Done(Reply::Ok)));
}

#[test]
fn a_removed_replica_names_no_master_and_no_one_names_a_removed_replica() {
    let (mut cluster, m) = settled();
    let gone = (m + 1) % 3;
    let gone_id = cluster.replicas[gone].node_id();
    let master_id = cluster.replicas[m].node_id();
    assert_eq!(cluster.replicas[gone].master_hint(), Some(master_id));
    cluster.request(m, 8, 1, Command::Member(Change::Remove { id: gone_id }));
    cluster.run_until(cluster.now_ns + 300 * MS);
    assert!(cluster.replicas[gone].is_removed());
    // What it last knew is stale from now on: clients must look elsewhere.
    assert_eq!(cluster.replicas[gone].master_hint(), None);
    for replica in &cluster.replicas {
        assert_ne!(replica.master_hint(), Some(gone_id));
    }
}

#[test]
fn the_master_asked_to_remove_itself_hands_over_and_the_next_master_removes_it() {
    let (mut cluster, m) = settled();
    let old_id = cluster.replicas[m].node_id();
    let remove = || Command::Member(Change::Remove { id: old_id });
    cluster.request(m, 8, 1, remove());
    assert_eq!(
        cluster.reply_for(8, 1),
        Some(&refused(ChangeError::MasterRemovesItself))
    );
    cluster.run_until(cluster.now_ns + 3_000 * MS);
    let next = cluster.master().expect("another master");
    assert_ne!(next, m);
    cluster.run_until(cluster.now_ns + 300 * MS);
    cluster.request(next, 8, 2, remove());
    cluster.run_until(cluster.now_ns + 300 * MS);
    assert_eq!(cluster.reply_for(8, 2), Some(&Outcome::Done(Reply::Int(1))));
    assert!(cluster.replicas[m].is_removed());
}

#[test]
fn the_master_asked_to_remove_itself_releases_its_lease_and_its_successor_masters_at_once() {
    let (mut cluster, m) = settled();
    let old_id = cluster.replicas[m].node_id();
    let successor = (0..3).find(|i| *i != m).expect("a follower");
    let successor_id = cluster.replicas[successor].node_id();
    cluster.request(m, 8, 1, Command::Member(Change::Remove { id: old_id }));
    // It stopped holding before it told anyone.
    assert_eq!(cluster.replicas[m].lease_held_until(cluster.now_ns), None);
    cluster.run_until(cluster.now_ns + 2 * MS);
    for replica in &cluster.replicas {
        let id = replica.node_id();
        assert!(
            !replica.backs_lease_of(old_id, cluster.now_ns),
            "replica {id}"
        );
    }
    // Well within a lease (1 s here): a few message delays of the perfect network.
    cluster.run_until(cluster.now_ns + 20 * MS);
    assert_eq!(cluster.master(), Some(successor));
    cluster.request(
        successor,
        8,
        2,
        Command::Member(Change::Remove { id: old_id }),
    );
    cluster.run_until(cluster.now_ns + 20 * MS);
    assert_eq!(cluster.reply_for(8, 2), Some(&Outcome::Done(Reply::Int(1))));
    assert!(cluster.replicas[m].is_removed());
    assert_eq!(cluster.replicas[m].master_hint(), None);
    let mut others = cluster.replicas.iter().filter(|r| r.node_id() != old_id);
    assert!(others.all(|r| r.master_hint() == Some(successor_id)));
}

#[test]
fn a_lease_asked_under_an_epoch_older_than_an_accepted_change_is_refused() {
    let (mut cluster, m) = settled();
    let follower = (m + 1) % 3;
    cluster.request(m, 8, 1, add(4));
    cluster.run_until(cluster.now_ns + 300 * MS);
    let now_ns = cluster.now_ns + 2_000 * MS; // past every grant
    let stale = crate::msg::LeasePrepare {
        ballot: Ballot { round: 99, node: 3 },
        epoch: 0,
    };
    let replica = &mut cluster.replicas[follower];
    replica.handle_message(now_ns, 3, Message::LeasePrepare(stale));
    let mut outputs = Vec::new();
    crate::drive::drain(replica, &mut outputs);
    let answers: Vec<&Message> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { msg, .. } => Some(msg),
            _ => None,
        })
        .collect();
    assert!(
        matches!(answers.as_slice(), [Message::Outdated(o)] if o.epoch == 1),
        "{answers:?}"
    );
}

fn compacting(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = config(id, nodes);
    c.snapshot_interval_slots = 10;
    c.log_retain_slots = 2;
    c
}

/// The slot and value of the first change chosen at `replica`.
fn first_change(replica: &Replica) -> (Slot, LogValue) {
    (1..=replica.chosen_through())
        .find_map(|slot| match replica.chosen(slot) {
            Some(value @ LogValue::Reconfigure(_)) => Some((slot, value.clone())),
            _ => None,
        })
        .expect("a change chosen")
}

#[test]
fn a_change_learned_after_it_was_accepted_is_no_longer_pending() {
    let mut cluster = Cluster::with_config(3, compacting);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("a master");
    cluster.request(m, 8, 1, add(4));
    cluster.run_until(cluster.now_ns + 300 * MS);
    assert_eq!(cluster.reply_for(8, 1), Some(&Outcome::Done(Reply::Int(1))));
    let follower = (m + 1) % 3;
    let (slot, change) = first_change(&cluster.replicas[follower]);
    // Accepted by every voter, then learned from the master's commit.
    for replica in &cluster.replicas {
        assert_eq!(replica.configuration().epoch, 1);
        assert!(replica.acceptor.pending_change().is_none());
        assert_eq!(replica.acceptor.reconfigure_epoch_max(), 0);
    }
    // Its slot is compacted away everywhere; then the master's accept of it arrives again
    // (a retransmission delayed in the network): the follower is told, and keeps nothing of
    // it pending.
    write_many(&mut cluster, m, 1, 40, 10);
    let replica = &mut cluster.replicas[follower];
    assert!(replica.learner.compacted_through() >= slot);
    let ballot = replica.acceptor.promised();
    let accept = crate::msg::Accept {
        ballot,
        slot,
        value: change,
    };
    let master_id = m as NodeId + 1;
    replica.handle_message(cluster.now_ns, master_id, Message::Accept(accept));
    assert!(replica.acceptor.pending_change().is_none());
    assert_eq!(replica.acceptor.reconfigure_epoch_max(), 0);
    assert_eq!(replica.epoch_floor(), 1);
    let quorum = replica
        .lease_quorum()
        .expect("a lease attempt counts epoch 1");
    assert_eq!((quorum.epoch, quorum.voter_sets.len()), (1, 1));
    cluster.drain(follower);
    cluster.run_until(cluster.now_ns + 300 * MS);
    assert!(cluster.replicas[follower]
        .acceptor
        .pending_change()
        .is_none());
}
