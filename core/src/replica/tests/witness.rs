//! Witnesses: they vote and keep the log, hold no key-value state, never lead, serve no reads,
//! and compact their log only as far as every full voter durably holds every chosen value.

use super::*;
use crate::membership::{Change, MemberKind};

fn snapshotting(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = config(id, nodes);
    c.snapshot_interval_slots = 10;
    c.log_retain_slots = 2;
    c
}

fn witness_config(id: NodeId, nodes: &[NodeId]) -> ReplicaConfig {
    let mut c = snapshotting(id, nodes);
    c.witness = true;
    c
}

fn add_witness(id: NodeId) -> Command {
    Command::Member(Change::Add {
        id,
        peer_addr: format!("127.0.0.1:{}", 7000 + id),
        client_addr: format!("127.0.0.1:{}", 6000 + id),
        kind: MemberKind::Witness,
    })
}

/// Asks the master for `command` as client 8's request `seq` and waits for the reply `epoch`.
fn change(cluster: &mut Cluster, master: usize, seq: u64, command: Command, epoch: i64) {
    cluster.request(master, 8, seq, command);
    cluster.run_until(cluster.now_ns + 1_300 * MS);
    let expected = Outcome::Done(Reply::Int(epoch));
    assert_eq!(cluster.reply_for(8, seq), Some(&expected), "change {seq}");
}

/// Three full replicas snapshotting every 10 slots, and witness 4 added and promoted (epoch 2);
/// returns the cluster, the master's index and the witness's.
fn with_voting_witness() -> (Cluster, usize, usize) {
    let mut cluster = Cluster::with_config(3, snapshotting);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("a master");
    let witness = cluster.start_joiner(witness_config);
    change(&mut cluster, m, 1, add_witness(4), 1);
    change(
        &mut cluster,
        m,
        2,
        Command::Member(Change::Promote { id: 4 }),
        2,
    );
    (cluster, m, witness)
}

#[test]
fn a_promoted_witness_votes_and_keeps_the_log_but_no_keys_and_never_leads() {
    let (mut cluster, m, w) = with_voting_witness();
    write_many(&mut cluster, m, 1, 60, 10);
    let (master, witness) = (&cluster.replicas[m], &cluster.replicas[w]);
    assert!(witness.configuration().is_voter(4) && witness.configuration().is_witness(4));
    assert_eq!(witness.chosen_through(), master.chosen_through());
    assert_eq!(witness.applied_chain(), master.applied_chain());
    assert!(!master.state_machine().is_empty() && witness.state_machine().is_empty());
    assert_eq!(witness.role(cluster.now_ns), Role::Follower);
    let image = cluster.disks[w]
        .snapshot
        .as_ref()
        .expect("a configuration image");
    assert!(image.meta.body_len < 4096, "{} bytes", image.meta.body_len);
    // Dirty reads too go to the master: the witness has nothing to read.
    let master_hint = Some(master.node_id());
    cluster.request(
        w,
        9,
        1,
        Command::DirtyGet {
            key: b"k1".to_vec(),
        },
    );
    let refused = Outcome::Rejected(Rejection::NotMaster { master_hint });
    assert_eq!(cluster.reply_for(9, 1), Some(&refused));
}

/// The slot through which `disk` holds every chosen value: its snapshot, then the chosen log
/// run above it.
fn durably_held(disk: &DurableState) -> Slot {
    let mut through = disk.snapshot_slot().unwrap_or(0);
    while disk.chosen.contains_key(&(through + 1)) {
        through += 1;
    }
    through
}

#[test]
fn a_witness_compacts_only_what_every_full_voter_holds_durably() {
    let (mut cluster, m, w) = with_voting_witness();
    write_many(&mut cluster, m, 1, 60, 10);
    let witness = &cluster.replicas[w];
    let floor = (0..3).map(|i| durably_held(&cluster.disks[i])).min();
    let floor = floor.expect("three full voters");
    let compacted = witness.learner.compacted_through();
    assert!(
        compacted > 0 && witness.chosen(1).is_none(),
        "the log stays bounded"
    );
    assert!(
        compacted <= floor,
        "witness compacted through {compacted} beyond the full floor {floor}"
    );
    let kept_from = cluster.disks[w].chosen.keys().next().copied();
    assert!(kept_from.is_none_or(|s| s > compacted), "{kept_from:?}");
}

#[test]
fn a_witness_keeps_only_the_slots_some_full_voter_does_not_hold_durably_yet() {
    let (mut cluster, m, w) = with_voting_witness();
    write_many(&mut cluster, m, 1, 60, 10);
    let chosen_through = cluster.replicas[m].chosen_through();
    let oldest_snapshot = (0..3)
        .map(|i| cluster.disks[i].snapshot_slot().unwrap_or(0))
        .min()
        .expect("three full voters");
    let witness = &cluster.replicas[w];
    let compacted = witness.learner.compacted_through();
    // Its snapshots come every slot here (a hundredth of the interval of 10, at least 1).
    assert!(
        compacted > oldest_snapshot && compacted + 2 >= chosen_through,
        "witness compacted through {compacted} of {chosen_through} chosen \
         (oldest full snapshot {oldest_snapshot})"
    );
}

/// Writes `seqs` through `master`, one a millisecond, while `slow`'s disk syncs only every
/// `slow_sync_ms` (never with `None`), then runs 300 ms more with `slow`'s disk stalled.
fn write_while_one_disk_lags(
    cluster: &mut Cluster,
    (master, slow): (usize, usize),
    seqs: std::ops::RangeInclusive<u64>,
    slow_sync_ms: Option<u64>,
) {
    cluster.auto_sync = false;
    let (first, last) = (*seqs.start(), *seqs.end());
    for ms in first..=last + 300 {
        if ms <= last {
            cluster.request(master, 1, ms, set("k", "v"));
        }
        let slow_syncs = ms <= last && slow_sync_ms.is_some_and(|every| ms % every == 0);
        for i in (0..cluster.replicas.len()).filter(|&i| i != slow || slow_syncs) {
            cluster.sync(i);
        }
        cluster.run_until(cluster.now_ns + MS);
    }
}

#[test]
fn a_full_voter_reports_no_slot_its_disk_does_not_hold_yet() {
    let (mut cluster, m, w) = with_voting_witness();
    write_many(&mut cluster, m, 1, 20, 10);
    let slow = (m + 1) % 3; // its disk syncs nothing more
    write_while_one_disk_lags(&mut cluster, (m, slow), 21..=60, None);
    let held = durably_held(&cluster.disks[slow]);
    let learned = cluster.replicas[slow].chosen_through();
    assert!(learned > held + 10, "learned {learned}, durable {held}");
    let slow_id = cluster.replicas[slow].node_id();
    let leader = cluster.replicas[m].leader.as_ref().expect("the master");
    let reported = leader.progress().get(&slow_id).map(|p| p.durable_through);
    assert!(reported.is_some_and(|r| r <= held), "{reported:?} > {held}");
    let compacted = cluster.replicas[w].learner.compacted_through();
    assert!(compacted <= held, "witness compacted {compacted} > {held}");
    cluster.auto_sync = true;
    cluster.run_until(cluster.now_ns + 300 * MS);
    let compacted = cluster.replicas[w].learner.compacted_through();
    assert!(compacted > held, "the floor moves once the disk syncs");
}

#[test]
fn two_full_replicas_and_a_witness_survive_the_loss_of_either_full_replica() {
    for lost in 0..2 {
        let (mut cluster, m, _) = with_voting_witness();
        let removed = (m + 2) % 3; // keep the master and one other full replica
        let removed_id = cluster.replicas[removed].node_id();
        change(
            &mut cluster,
            m,
            3,
            Command::Member(Change::Remove { id: removed_id }),
            3,
        );
        let full = [m, (m + 1) % 3];
        cluster.isolated = Some(cluster.replicas[full[lost]].node_id());
        cluster.run_until(cluster.now_ns + 3_000 * MS);
        let survivor = cluster.master().expect("the other full replica leads");
        assert_eq!(survivor, full[1 - lost]);
        write_many(&mut cluster, survivor, 2, 20, 10);
        assert_eq!(
            cluster.reply_for(2, 20),
            Some(&Outcome::Done(Reply::Ok)),
            "losing replica {} stopped writes",
            full[lost] + 1
        );
    }
}

#[test]
fn a_lagging_witness_installs_a_snapshot_but_keeps_none_of_its_keys() {
    let mut cluster = Cluster::with_config(3, snapshotting);
    cluster.run_until(2_500 * MS);
    let m = cluster.master().expect("a master");
    write_many(&mut cluster, m, 1, 60, 1_000);
    let w = cluster.start_joiner(witness_config);
    change(&mut cluster, m, 1, add_witness(4), 1);
    let (master, witness) = (&cluster.replicas[m], &cluster.replicas[w]);
    assert_eq!(witness.chosen_through(), master.chosen_through());
    assert!(witness.state_machine().is_empty());
    let image = cluster.disks[w].snapshot.as_ref().expect("installed");
    assert!(image.meta.slot > 10 && image.meta.body_len < 4096);
    assert!(witness.chosen(1).is_none(), "caught up by snapshot");
}

#[test]
fn a_restarted_witness_still_holds_the_log_its_own_snapshot_covers_for_full_voters_behind_it() {
    let (mut cluster, m, w) = with_voting_witness();
    write_many(&mut cluster, m, 1, 20, 10);
    // One full voter's disk syncs every 7 ms: the floor stays behind what the witness applied
    // when it takes a snapshot.
    let slow = (m + 1) % 3;
    write_while_one_disk_lags(&mut cluster, (m, slow), 21..=60, Some(7));
    let before = &cluster.replicas[w];
    let (id, chosen_through) = (before.node_id(), before.chosen_through());
    let durable = cluster.disks[w].clone();
    let snapshot_slot = durable.snapshot_slot().expect("a configuration image");
    let kept_from = durable.chosen.keys().next().copied().expect("a log");
    assert!(
        kept_from < snapshot_slot,
        "the log holds slots {kept_from}..={snapshot_slot} the witness's snapshot covers"
    );
    let restarted = Replica::new(witness_config(id, &[1, 2, 3]), durable, cluster.now_ns, 7);
    assert_eq!(restarted.chosen_through(), chosen_through);
    assert_eq!(restarted.learner.compacted_through(), kept_from - 1);
    for slot in kept_from..=snapshot_slot {
        assert!(restarted.chosen(slot).is_some(), "slot {slot} forgotten");
    }
}
