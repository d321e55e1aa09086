//! Clients that write and read through the Redis protocol while a test hurts the cluster, the
//! history they record, and its check by the linearizability checker.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyspace_checker::{check_kv, CheckOptions, CheckResult, Recorder};
use keyspace_core::{Command, Reply};
use keyspace_node::resp_client::{workload_op, workload_reply, Value};

use super::{connect_next, wait_until, Client};

/// Keys the clients share (few, so that operations conflict).
pub const KEYS: u64 = 5;
/// Bound on each client's operations (tests also stop them by time, and the clients pause
/// while they are [`WRITES_AHEAD_MAX`] ahead of what the test waits for).
pub const OPS_PER_CLIENT_MAX: u64 = 20_000;
/// How many acknowledged writes the clients may run ahead of the last [`Shared::wait_for_writes`]
/// before they pause: a test whose steps take long (a restart, a catch-up) still finds them
/// writing when it next waits for writes, whatever the speed of the machine.
pub const WRITES_AHEAD_MAX: usize = 1_000;

pub struct Shared {
    pub recorder: Mutex<Recorder>,
    pub start: Instant,
    pub stop: AtomicBool,
    /// Wall time of every acknowledged write, to measure gaps.
    pub acked_writes: Mutex<Vec<Duration>>,
    /// The acknowledged writes the test last waited for.
    awaited_writes: AtomicUsize,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            recorder: Mutex::new(Recorder::new()),
            start: Instant::now(),
            stop: AtomicBool::new(false),
            acked_writes: Mutex::new(Vec::new()),
            awaited_writes: AtomicUsize::new(0),
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn acked(&self) -> usize {
        self.acked_writes.lock().unwrap().len()
    }

    /// Waits until `more` further writes were acknowledged.
    pub fn wait_for_writes(&self, more: usize) {
        let before = self.acked();
        self.awaited_writes
            .fetch_max(before + more, Ordering::Relaxed);
        wait_until(&format!("{more} more acknowledged writes"), || {
            self.acked() >= before + more
        });
    }

    /// Whether the clients are [`WRITES_AHEAD_MAX`] writes past what the test waited for.
    fn far_enough_ahead(&self) -> bool {
        self.acked() >= self.awaited_writes.load(Ordering::Relaxed) + WRITES_AHEAD_MAX
    }

    /// The longest time between two acknowledged writes from `since` on.
    pub fn longest_gap_since(&self, since: Duration) -> Duration {
        let mut times: Vec<Duration> = self.acked_writes.lock().unwrap().clone();
        times.sort();
        let times: Vec<Duration> = times.into_iter().filter(|t| *t >= since).collect();
        times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    }
}

/// Starts `clients` clients on `ports` (rotating among them; a port nobody listens on is
/// passed over).
pub fn start_clients(
    clients: u64,
    ports: &[u16],
    shared: &Arc<Shared>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (ports, shared) = (ports.to_vec(), shared.clone());
            std::thread::spawn(move || client_loop(c, ports, shared))
        })
        .collect()
}

/// Stops the clients and waits for them.
pub fn stop_clients(shared: &Shared, clients: Vec<std::thread::JoinHandle<()>>) {
    shared.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
}

/// One client: random SET/INCR/GET on a few keys against a rotating choice of replicas.
pub fn client_loop(client: u64, ports: Vec<u16>, shared: Arc<Shared>) {
    let mut state = client.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut conn: Option<Client> = None;
    let mut target = client as usize;
    for op in 0..OPS_PER_CLIENT_MAX {
        while shared.far_enough_ahead() && !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        if conn.is_none() {
            conn = connect_next(&ports, &mut target);
            if conn.is_none() {
                continue;
            }
        }
        let key = format!("k{}", next() % KEYS).into_bytes();
        let value = format!("c{client}-{op}").into_bytes();
        let (command, args) = workload_op(next(), key, value);
        let is_write = command.is_write();
        let id = shared
            .recorder
            .lock()
            .unwrap()
            .invoke(client, shared.now_ns(), command);
        let arg_refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let result = conn.as_mut().unwrap().call(&arg_refs);
        let now = shared.now_ns();
        let reply = match result {
            Ok(value) => workload_reply(value),
            Err(_) => {
                conn = None;
                None
            }
        };
        let mut recorder = shared.recorder.lock().unwrap();
        match reply {
            Some(reply) => {
                recorder.ok(id, now, reply);
                if is_write {
                    shared
                        .acked_writes
                        .lock()
                        .unwrap()
                        .push(shared.start.elapsed());
                }
            }
            None if !is_write => recorder.fail(id, now), // a read changes nothing
            None => recorder.unknown(id),                // the write may have been applied
        }
    }
}

/// Reads every key back through `client` as client number `reader`: the final reads join the
/// history, so a lost acknowledged write is a violation.
pub fn read_back(shared: &Shared, reader: u64, client: &mut Client) {
    for k in 0..KEYS {
        let key = format!("k{k}").into_bytes();
        let id = shared.recorder.lock().unwrap().invoke(
            reader,
            shared.now_ns(),
            Command::Get { key: key.clone() },
        );
        let reply = match client.call(&[b"GET", &key]).unwrap() {
            Value::Bulk(v) => Reply::Value(Some(v)),
            Value::Null => Reply::Value(None),
            other => panic!("GET {k}: {other:?}"),
        };
        shared
            .recorder
            .lock()
            .unwrap()
            .ok(id, shared.now_ns(), reply);
    }
}

/// Checks the recorded history; a violation fails the test and leaves the history in
/// `file_name` under the temporary directory.
pub fn check_history(shared: &Shared, file_name: &str) {
    let recorder = shared.recorder.lock().unwrap();
    eprintln!("history: {} operations", recorder.len());
    let options = CheckOptions {
        timeout: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    match check_kv(&recorder.history(), &options) {
        CheckResult::Linearizable => eprintln!("history linearizable"),
        CheckResult::Unknown(reason) => eprintln!("checker could not decide: {reason}"),
        violation => {
            let path = std::env::temp_dir().join(file_name);
            recorder
                .write_jsonl(&mut std::fs::File::create(&path).unwrap())
                .unwrap();
            panic!(
                "history not linearizable ({}): {violation:?}",
                path.display()
            );
        }
    }
}
