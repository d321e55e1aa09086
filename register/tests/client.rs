//! The client's protocol step by step over in-memory stores, with the stores' state arranged
//! between steps: the cases the simulator reaches only by chance.

use keyspace_register::{
    Client, Completion, Config, MemStore, Record, Request, Store, Timestamp, Variant,
};

const N: usize = 3;

fn client(id: u64, variant: Variant) -> Client {
    Client::new(Config::new(N, variant, id, "r")).unwrap()
}

fn ts(counter: u64, client: u64) -> Timestamp {
    Timestamp { counter, client }
}

fn stores() -> Vec<MemStore> {
    (0..N).map(|_| MemStore::new()).collect()
}

fn put_record(store: &mut MemStore, key: &str, ts: Timestamp, value: &str) {
    let record = Record {
        ts,
        value: value.as_bytes().to_vec(),
    };
    store.put(key, &record.encode()).unwrap();
}

/// Requests the client has to send now.
fn drain(client: &mut Client) -> Vec<Request> {
    std::iter::from_fn(|| client.poll_request()).collect()
}

/// Delivers every request, over and over, to the stores `to` admits (the rest are down), until
/// the operation completes; the clean-up then runs to its end.
fn run(client: &mut Client, stores: &mut [MemStore], to: impl Fn(usize) -> bool) -> Completion {
    let mut completion = None;
    loop {
        let requests = drain(client);
        if let Some(done) = client.poll_completion() {
            completion = Some(done);
        }
        if requests.is_empty() && client.poll_request().is_none() {
            return completion.expect("the operation completed");
        }
        for request in requests.into_iter().filter(|r| to(r.store)) {
            let reply = request.op.apply(&mut stores[request.store]);
            client.handle_reply(request.id, reply);
        }
    }
}

fn keys(store: &MemStore) -> Vec<String> {
    store.keys().cloned().collect()
}

#[test]
fn a_write_returns_after_n_minus_t_acknowledgements_and_not_before() {
    let mut stores = stores();
    let mut c = client(1, Variant::Atomic);
    c.start_write(b"v".to_vec()).unwrap();
    for request in drain(&mut c) {
        let reply = request.op.apply(&mut stores[request.store]);
        c.handle_reply(request.id, reply);
    }
    let puts = drain(&mut c);
    assert_eq!(puts.len(), N);
    let reply = puts[0].op.apply(&mut stores[0]);
    c.handle_reply(puts[0].id, reply);
    assert_eq!(c.poll_completion(), None, "one acknowledgement of three");
    let reply = puts[1].op.apply(&mut stores[1]);
    c.handle_reply(puts[1].id, reply);
    assert_eq!(
        c.poll_completion(),
        Some(Completion::Written {
            ts: ts(1, 1),
            round_trips: 2
        })
    );
}

#[test]
fn a_write_and_a_read_finish_with_one_store_of_three_down() {
    let mut stores = stores();
    let mut w = client(1, Variant::Atomic);
    w.start_write(b"v".to_vec()).unwrap();
    run(&mut w, &mut stores, |s| s != 2);
    let mut r = client(2, Variant::Atomic);
    r.start_read().unwrap();
    let done = run(&mut r, &mut stores, |s| s != 0);
    assert!(matches!(done, Completion::Read { value: Some(v), .. } if v == b"v"));
}

#[test]
fn a_read_of_a_settled_register_takes_one_round_trip_and_writes_nothing() {
    let mut stores = stores();
    let mut w = client(1, Variant::Atomic);
    w.start_write(b"v".to_vec()).unwrap();
    run(&mut w, &mut stores, |_| true);
    let before: Vec<Vec<String>> = stores.iter().map(keys).collect();
    let mut r = client(2, Variant::Atomic);
    r.start_read().unwrap();
    let done = run(&mut r, &mut stores, |_| true);
    assert_eq!(
        done,
        Completion::Read {
            ts: ts(1, 1),
            value: Some(b"v".to_vec()),
            round_trips: 1
        }
    );
    assert_eq!(before, stores.iter().map(keys).collect::<Vec<_>>());
    assert!(before.iter().all(|k| k.len() == 2), "{before:?}");
}

#[test]
fn a_read_fetches_the_newest_key_when_the_eternal_key_lags() {
    let mut stores = stores();
    for store in &mut stores {
        put_record(store, "r/e", ts(1, 9), "old");
        put_record(
            store,
            "r/w/0000000000000002.0000000000000009",
            ts(2, 9),
            "new",
        );
    }
    let mut r = client(2, Variant::Regular);
    r.start_read().unwrap();
    let done = run(&mut r, &mut stores, |_| true);
    assert_eq!(
        done,
        Completion::Read {
            ts: ts(2, 9),
            value: Some(b"new".to_vec()),
            round_trips: 2
        }
    );
}

#[test]
fn a_chain_lists_again_when_its_key_was_removed_and_the_eternal_key_is_older() {
    let mut stores = stores();
    for store in &mut stores {
        put_record(store, "r/e", ts(1, 9), "old");
        put_record(
            store,
            "r/w/0000000000000002.0000000000000009",
            ts(2, 9),
            "two",
        );
    }
    let mut r = client(2, Variant::Regular);
    r.start_read().unwrap();
    // First step: listings and eternal keys.
    for request in drain(&mut r) {
        let reply = request.op.apply(&mut stores[request.store]);
        r.handle_reply(request.id, reply);
    }
    // Meanwhile a newer write lands and its clean-up removes key 2; then a slow clean-up of
    // an older write puts the old eternal record back.
    for store in &mut stores {
        put_record(
            store,
            "r/w/0000000000000003.0000000000000008",
            ts(3, 8),
            "three",
        );
        store
            .remove("r/w/0000000000000002.0000000000000009")
            .unwrap();
    }
    let done = run(&mut r, &mut stores, |_| true);
    let Completion::Read {
        ts: read_ts,
        value,
        round_trips,
    } = done
    else {
        panic!("{done:?}")
    };
    assert_eq!((read_ts, value), (ts(3, 8), Some(b"three".to_vec())));
    assert_eq!(round_trips, 4, "list, fetch (gone), list again, fetch");
}

#[test]
fn a_clean_up_removes_older_keys_but_never_a_stores_newest() {
    let mut stores = stores();
    for store in &mut stores {
        put_record(
            store,
            "r/w/0000000000000001.0000000000000009",
            ts(1, 9),
            "one",
        );
    }
    let mut w = client(1, Variant::Atomic);
    w.start_write(b"mine".to_vec()).unwrap();
    let mut completion = None;
    let mut injected = false;
    while completion.is_none() || !w.is_idle() {
        for request in drain(&mut w) {
            // A newer write lands on store 2 once this write returned, before its clean-up
            // lists that store.
            if completion.is_some() && !injected {
                put_record(
                    &mut stores[2],
                    "r/w/0000000000000009.0000000000000008",
                    ts(9, 8),
                    "nine",
                );
                injected = true;
            }
            let reply = request.op.apply(&mut stores[request.store]);
            w.handle_reply(request.id, reply);
        }
        if let Some(done) = w.poll_completion() {
            completion = Some(done);
        }
    }
    assert_eq!(
        keys(&stores[0]),
        ["r/e", "r/w/0000000000000002.0000000000000001"]
    );
    assert_eq!(
        keys(&stores[2]),
        ["r/e", "r/w/0000000000000009.0000000000000008"]
    );
}

#[test]
fn an_atomic_read_writes_back_what_fewer_than_n_minus_t_stores_hold() {
    let mut stores = stores();
    // A write that reached one store before its client crashed; store 2 is down, so the read
    // must hear from store 0 and sees it.
    put_record(
        &mut stores[0],
        "r/w/0000000000000005.0000000000000009",
        ts(5, 9),
        "five",
    );
    let mut r = client(2, Variant::Atomic);
    r.start_read().unwrap();
    let done = run(&mut r, &mut stores, |s| s != 2);
    assert!(
        matches!(done, Completion::Read { ts: t, round_trips: 3, .. } if t == ts(5, 9)),
        "{done:?}"
    );
    let key = "r/w/0000000000000005.0000000000000009".to_string();
    assert!(keys(&stores[1]).contains(&key), "written back");
    // The regular variant returns it too but stores nothing.
    let mut stores = stores_with_one_copy();
    let mut r = client(3, Variant::Regular);
    r.start_read().unwrap();
    let done = run(&mut r, &mut stores, |s| s != 2);
    assert!(
        matches!(done, Completion::Read { ts: t, round_trips: 2, .. } if t == ts(5, 9)),
        "{done:?}"
    );
    assert_eq!(keys(&stores[1]), Vec::<String>::new());
}

fn stores_with_one_copy() -> Vec<MemStore> {
    let mut stores = stores();
    put_record(
        &mut stores[0],
        "r/w/0000000000000005.0000000000000009",
        ts(5, 9),
        "five",
    );
    stores
}
