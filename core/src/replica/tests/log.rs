//! Elections, writes and reads, the acceptor's durability rule, and checkpoints.

use super::*;

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
        durable_floor: 0,
    }));
}
