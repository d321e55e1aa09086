//! Specification tests of exactly-once sessions: dedup, pipelining, staleness, bounds, expiry.

use super::tests::{add, replies, request, set};
use super::*;
use crate::command::{ClientId, Seq, OPENED_SESSION_BIT};

fn get(machine: &StateMachine, key: &[u8]) -> Reply {
    machine.read(&Command::Get { key: key.to_vec() })
}

fn apply(machine: &mut StateMachine, slot: Slot, batch: &[ClientRequest]) -> Vec<Reply> {
    let result = replies(machine.apply_batch(slot, batch));
    machine.assert_invariants();
    result
}

fn config(sessions_max: usize, session_idle_slots_max: u64) -> StateMachineConfig {
    StateMachineConfig {
        sessions_max,
        session_idle_slots_max,
    }
}

fn stale(seq: Seq) -> Reply {
    Reply::Error(CommandError::StaleRequest { seq })
}

#[test]
fn retried_write_gets_original_reply_and_applies_once() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let first = request(7, 1, add(b"n", 1));
    assert_eq!(
        apply(&mut machine, 1, std::slice::from_ref(&first)),
        [Reply::Int(1)]
    );
    let hash_after_first = machine.state_hash();
    // The retry lands in a later slot, e.g. re-proposed by a new master.
    assert_eq!(apply(&mut machine, 4, &[first]), [Reply::Int(1)]);
    assert_eq!(get(&machine, b"n"), Reply::Value(Some(b"1".to_vec())));
    assert_ne!(
        machine.state_hash(),
        hash_after_first,
        "only the session's slot moved"
    );
}

#[test]
fn duplicate_within_one_batch_gets_original_reply() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let once = request(7, 1, add(b"n", 10));
    let batch = [once.clone(), request(8, 1, add(b"n", 1)), once];
    let got = apply(&mut machine, 1, &batch);
    assert_eq!(got, [Reply::Int(10), Reply::Int(11), Reply::Int(10)]);
    assert_eq!(get(&machine, b"n"), Reply::Value(Some(b"11".to_vec())));
}

#[test]
fn retry_gets_original_reply_even_after_the_state_changed() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    apply(&mut machine, 1, &[request(1, 1, set(b"k", b"old"))]);
    let remove = request(2, 1, Command::Remove { key: b"k".to_vec() });
    let failing_add = request(2, 2, add(b"x", 1));
    apply(&mut machine, 2, &[request(1, 2, set(b"x", b"text"))]);
    let got = apply(&mut machine, 3, &[remove.clone(), failing_add.clone()]);
    let expected = [
        Reply::Value(Some(b"old".to_vec())),
        Reply::Error(CommandError::NotAnInteger),
    ];
    assert_eq!(got, expected);
    apply(&mut machine, 4, &[request(1, 3, set(b"x", b"5"))]);
    assert_eq!(apply(&mut machine, 5, &[remove, failing_add]), expected);
    assert_eq!(get(&machine, b"x"), Reply::Value(Some(b"5".to_vec())));
}

#[test]
fn pipelined_seqs_applied_out_of_order_each_apply_once() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let write = |seq| request(3, seq, add(b"n", 1 << seq));
    assert_eq!(apply(&mut machine, 1, &[write(3)]), [Reply::Int(8)]);
    assert_eq!(
        apply(&mut machine, 2, &[write(1), write(3)]),
        [Reply::Int(10), Reply::Int(8)]
    );
    assert_eq!(apply(&mut machine, 3, &[write(2)]), [Reply::Int(14)]);
    let retries = apply(&mut machine, 4, &[write(2), write(1), write(3)]);
    assert_eq!(retries, [Reply::Int(14), Reply::Int(10), Reply::Int(8)]);
    assert_eq!(get(&machine, b"n"), Reply::Value(Some(b"14".to_vec())));
}

#[test]
fn seq_older_than_the_window_is_stale_and_never_applied() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let write = |seq| request(1, seq, add(b"n", 1));
    apply(&mut machine, 1, &[write(1)]);
    let highest = 1 + SESSION_REPLIES_MAX;
    apply(&mut machine, 2, &[write(highest)]);
    // seq 1 slid out of the window: its reply is gone. seq 2 is the oldest still inside.
    assert_eq!(apply(&mut machine, 3, &[write(1)]), [stale(1)]);
    assert_eq!(apply(&mut machine, 4, &[write(2)]), [Reply::Int(3)]);
    apply(&mut machine, 5, &[write(highest + 1)]);
    assert_eq!(apply(&mut machine, 6, &[write(2)]), [stale(2)]);
    assert_eq!(apply(&mut machine, 7, &[write(3)]), [Reply::Int(5)]);
    assert_eq!(get(&machine, b"n"), Reply::Value(Some(b"5".to_vec())));
    let session = machine.session(1).expect("session kept");
    assert_eq!(session.replies_len(), 3);
}

#[test]
fn seq_zero_is_stale() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    assert_eq!(
        apply(&mut machine, 1, &[request(1, 0, add(b"n", 1))]),
        [stale(0)]
    );
    assert_eq!(machine.sessions_len(), 0);
    apply(&mut machine, 2, &[request(1, 1, add(b"n", 1))]);
    assert_eq!(
        apply(&mut machine, 3, &[request(1, 0, add(b"n", 1))]),
        [stale(0)]
    );
    assert_eq!(get(&machine, b"n"), Reply::Value(Some(b"1".to_vec())));
}

#[test]
fn unknown_client_beyond_the_first_window_is_stale() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let fresh = request(1, SESSION_REPLIES_MAX, add(b"n", 1));
    assert_eq!(apply(&mut machine, 1, &[fresh]), [Reply::Int(1)]);
    let expired = request(2, SESSION_REPLIES_MAX + 1, add(b"n", 1));
    assert_eq!(
        apply(&mut machine, 2, &[expired]),
        [stale(SESSION_REPLIES_MAX + 1)]
    );
    assert_eq!(machine.sessions_len(), 1);
}

#[test]
fn full_table_evicts_least_recently_used_session_by_slot() {
    let mut machine = StateMachine::new(config(2, 1_000));
    apply(&mut machine, 1, &[request(1, 1, add(b"n", 1))]);
    apply(&mut machine, 2, &[request(2, 1, add(b"n", 1))]);
    apply(&mut machine, 3, &[request(1, 2, add(b"n", 1))]);
    apply(&mut machine, 4, &[request(3, 1, add(b"n", 1))]);
    assert!(
        machine.session(2).is_none(),
        "client 2 was used least recently"
    );
    assert!(machine.session(1).is_some() && machine.session(3).is_some());
    assert_eq!(machine.sessions_len(), 2);
}

#[test]
fn eviction_ties_on_slot_go_to_the_smaller_client_id() {
    let mut machine = StateMachine::new(config(2, 1_000));
    let batch = [request(9, 1, add(b"n", 1)), request(4, 1, add(b"n", 1))];
    apply(&mut machine, 1, &batch);
    apply(&mut machine, 2, &[request(6, 1, add(b"n", 1))]);
    assert!(machine.session(4).is_none());
    assert!(machine.session(9).is_some() && machine.session(6).is_some());
}

#[test]
fn new_clients_of_one_batch_overflow_the_table_until_the_next_slot() {
    let mut machine = StateMachine::new(config(1, 1_000));
    let once = request(1, 1, add(b"n", 1));
    let batch = [once.clone(), request(2, 1, add(b"n", 1)), once];
    let got = apply(&mut machine, 1, &batch);
    assert_eq!(got, [Reply::Int(1), Reply::Int(2), Reply::Int(1)]);
    assert_eq!(machine.sessions_len(), 2);
    machine.apply_noop(2);
    assert_eq!(machine.sessions_len(), 1);
    assert!(
        machine.session(1).is_none(),
        "equal slots: the smaller client id goes"
    );
}

#[test]
fn eviction_is_the_same_on_every_replica() {
    let batches: Vec<Vec<ClientRequest>> = (1..=40)
        .map(|i| {
            vec![
                request(i * 7 % 13, i, add(b"n", 1)),
                request(i % 5, i, add(b"m", 1)),
            ]
        })
        .collect();
    let run = || {
        let mut machine = StateMachine::new(config(3, 6));
        for (slot, batch) in (1..).zip(&batches) {
            apply(&mut machine, slot * 2, batch);
        }
        machine
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert_eq!(a.state_hash(), b.state_hash());
}

#[test]
fn session_idle_longer_than_the_limit_expires() {
    let mut machine = StateMachine::new(config(100, 10));
    apply(&mut machine, 1, &[request(1, 1, add(b"n", 1))]);
    machine.apply_noop(11);
    assert!(
        machine.session(1).is_some(),
        "idle for exactly the limit: kept"
    );
    machine.apply_noop(12);
    assert!(
        machine.session(1).is_none(),
        "idle for more than the limit: expired"
    );
    assert_eq!(machine.sessions_len(), 0);
}

#[test]
fn idle_sweep_is_bounded_per_slot_but_expiry_is_exact() {
    let mut machine = StateMachine::new(config(1_000, 10));
    let clients = 2 * SESSION_EXPIRIES_PER_SLOT_MAX as u64 + 1;
    let seq = SESSION_REPLIES_MAX + 5;
    let batch: Vec<ClientRequest> = (1..=clients)
        .flat_map(|client_id| [1, seq].map(|seq| request(client_id, seq, add(b"n", 1))))
        .collect();
    apply(&mut machine, 1, &batch);
    let total = usize::try_from(clients).unwrap();
    machine.apply_noop(12);
    assert_eq!(
        machine.sessions_len(),
        total - SESSION_EXPIRIES_PER_SLOT_MAX
    );
    // The sweep at slot 13 leaves the last client (largest id), idle past the limit: it is
    // expired all the same, so its retry is not answered from the old session.
    let retry = request(clients, seq, add(b"n", 1));
    assert_eq!(apply(&mut machine, 13, &[retry]), [stale(seq)]);
    machine.apply_noop(14);
    assert_eq!(machine.sessions_len(), 0);
}

/// The id an `OpenSession` answered with.
fn opened(reply: &Reply) -> ClientId {
    match reply {
        Reply::Int(id) => *id as ClientId,
        other => panic!("OpenSession answered {other:?}"),
    }
}

fn open_session(route: u64) -> ClientRequest {
    request(route, 1, Command::OpenSession)
}

#[test]
fn open_session_hands_out_distinct_ids_with_the_opened_bit_and_bit_63_clear() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let batch = [open_session(1), open_session(1), open_session(2)];
    let mut ids: Vec<ClientId> = apply(&mut machine, 5, &batch).iter().map(opened).collect();
    ids.extend(
        apply(&mut machine, 6, &[open_session(1)])
            .iter()
            .map(opened),
    );
    for &id in &ids {
        assert_ne!(id & OPENED_SESSION_BIT, 0);
        assert_eq!(id >> 63, 0);
        assert_eq!(machine.session(id).map(Session::highest_seq), Some(0));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "a retried OpenSession opens a second session");
    assert_eq!(machine.sessions_len(), 4);
}

#[test]
fn opened_session_applies_each_write_once_like_any_session() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let id = opened(&apply(&mut machine, 1, &[open_session(9)])[0]);
    let write = request(id, 1, add(b"n", 1));
    assert_eq!(
        apply(&mut machine, 2, std::slice::from_ref(&write)),
        [Reply::Int(1)]
    );
    assert_eq!(apply(&mut machine, 3, &[write]), [Reply::Int(1)]);
    assert_eq!(get(&machine, b"n"), Reply::Value(Some(b"1".to_vec())));
}

#[test]
fn forgotten_opened_session_refuses_even_its_first_write_and_is_never_started_again() {
    let mut machine = StateMachine::new(config(1, 1_000));
    let id = opened(&apply(&mut machine, 1, &[open_session(9)])[0]);
    let first = request(id, 1, add(b"n", 1));
    assert_eq!(
        apply(&mut machine, 2, std::slice::from_ref(&first)),
        [Reply::Int(1)]
    );
    apply(&mut machine, 3, &[request(50, 1, set(b"other", b"x"))]);
    assert!(machine.session(id).is_none(), "evicted by the other client");

    // A client-chosen session would start again here and apply its seq 1 a second time.
    assert_eq!(apply(&mut machine, 4, &[first]), [stale(1)]);
    assert_eq!(
        apply(&mut machine, 5, &[request(id, 2, add(b"n", 1))]),
        [stale(2)]
    );
    assert!(machine.session(id).is_none());
    assert_eq!(get(&machine, b"n"), Reply::Value(Some(b"1".to_vec())));
}

#[test]
fn id_with_the_opened_bit_that_no_open_session_handed_out_is_refused() {
    let mut machine = StateMachine::new(StateMachineConfig::default());
    let made_up = OPENED_SESSION_BIT | 12345;
    assert_eq!(
        apply(&mut machine, 1, &[request(made_up, 1, set(b"k", b"v"))]),
        [stale(1)]
    );
    assert_eq!(get(&machine, b"k"), Reply::Value(None));
    assert_eq!(machine.sessions_len(), 0);
}

#[test]
fn idle_opened_session_expires_and_its_retries_are_refused() {
    let mut machine = StateMachine::new(config(10, 3));
    let id = opened(&apply(&mut machine, 1, &[open_session(9)])[0]);
    let write = request(id, 1, set(b"k", b"v"));
    assert_eq!(
        apply(&mut machine, 2, std::slice::from_ref(&write)),
        [Reply::Ok]
    );
    assert_eq!(apply(&mut machine, 10, &[write]), [stale(1)]);
}

#[test]
fn opening_a_session_in_a_full_table_evicts_the_least_recently_used() {
    let mut machine = StateMachine::new(config(2, 1_000));
    apply(&mut machine, 1, &[request(1, 1, set(b"a", b"1"))]);
    apply(&mut machine, 2, &[request(2, 1, set(b"b", b"1"))]);
    let id = opened(&apply(&mut machine, 3, &[open_session(9)])[0]);
    assert!(machine.session(1).is_none());
    assert!(machine.session(2).is_some() && machine.session(id).is_some());
    assert_eq!(machine.sessions_len(), 2);
}
