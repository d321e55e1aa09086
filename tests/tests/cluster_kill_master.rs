//! Real processes: three `keyspace node`s on 127.0.0.1, clients writing through the Redis
//! protocol, `kill -9` of the master. Writes must resume on a new master within the lease time,
//! no acknowledged write may be lost, the killed replica must catch up after a restart, and the
//! recorded client history must be linearizable.

use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyspace_checker::{check_kv, CheckOptions, CheckResult, Recorder};
use keyspace_core::{Command, Reply};
use keyspace_node::resp_client::{workload_op, workload_reply, Value};

mod cluster_common;
use cluster_common::{connect_next, wait_until, Client, Cluster, LEASE_MS, NODES};

/// Writes must work again within this long after the master dies: the lease, the restart-free
/// election that follows it, and slack for a loaded 2-core machine.
const FAILOVER_MAX: Duration = Duration::from_millis(3 * LEASE_MS + 2000);
const KEYS: u64 = 5;
const CLIENTS: u64 = 4;
/// Bound on each client's operations (the test also stops them by time).
const OPS_PER_CLIENT_MAX: u64 = 2_000;

struct Shared {
    recorder: Mutex<Recorder>,
    start: Instant,
    stop: AtomicBool,
    /// Wall time of every acknowledged write, to measure the failover gap.
    acked_writes: Mutex<Vec<Duration>>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// One client: random SET/INCR/GET on a few keys against a rotating choice of replicas.
fn client_loop(client: u64, ports: Vec<u16>, shared: Arc<Shared>) {
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

#[test]
fn killing_the_master_loses_no_acknowledged_write_and_the_old_master_catches_up() {
    let mut cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    eprintln!("master is node {master}");

    // Any replica accepts any command; redis-cli works unmodified when it is installed.
    let follower = (1..=NODES).find(|id| *id != master).unwrap();
    if let Ok(output) = Process::new("redis-cli")
        .args([
            "-p",
            &cluster.port(follower).to_string(),
            "SET",
            "greeting",
            "hello",
        ])
        .output()
    {
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "OK");
        let output = Process::new("redis-cli")
            .args(["-p", &cluster.port(master).to_string(), "GET", "greeting"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "hello");
    }

    let shared = Arc::new(Shared {
        recorder: Mutex::new(Recorder::new()),
        start: Instant::now(),
        stop: AtomicBool::new(false),
        acked_writes: Mutex::new(Vec::new()),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (ports, shared) = (cluster.client_ports.clone(), shared.clone());
            std::thread::spawn(move || client_loop(c, ports, shared))
        })
        .collect();
    wait_until("clients made progress", || {
        shared.acked_writes.lock().unwrap().len() >= 300
    });

    let killed_at = shared.start.elapsed();
    cluster.kill(master);
    eprintln!("killed master {master} at {killed_at:?}");
    let new_master = cluster.wait_for_master(Some(master));
    wait_until("a write is acknowledged after the kill", || {
        shared
            .acked_writes
            .lock()
            .unwrap()
            .iter()
            .any(|t| *t > killed_at + Duration::from_millis(100))
    });
    let resumed = shared
        .acked_writes
        .lock()
        .unwrap()
        .iter()
        .copied()
        .find(|t| *t > killed_at + Duration::from_millis(100))
        .unwrap();
    let gap = resumed - killed_at;
    eprintln!("node {new_master} took over; writes resumed {gap:?} after the kill");
    assert!(
        gap < FAILOVER_MAX,
        "writes resumed only after {gap:?}\n{}",
        cluster.logs()
    );

    cluster.restart(master);
    let before = shared.acked_writes.lock().unwrap().len();
    wait_until("more writes after the restart", || {
        shared.acked_writes.lock().unwrap().len() >= before + 300
    });
    shared.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let commit: u64 = cluster
        .field(new_master, "commit_index")
        .unwrap()
        .parse()
        .unwrap();
    wait_until("the restarted replica caught up", || {
        cluster
            .field(master, "applied_index")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|a| a >= commit)
    });
    eprintln!("restarted node {master} applied through {commit}");

    // Read every key back through the restarted replica (forwarded to the master): the final
    // reads join the history, so a lost acknowledged write is a violation.
    let mut client = Client::connect(cluster.addr(master)).unwrap();
    for k in 0..KEYS {
        let key = format!("k{k}").into_bytes();
        let id = shared.recorder.lock().unwrap().invoke(
            CLIENTS,
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

    let recorder = shared.recorder.lock().unwrap();
    eprintln!("history: {} operations", recorder.len());
    let options = CheckOptions {
        timeout: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    match check_kv(&recorder.history(), &options) {
        CheckResult::Linearizable => {}
        CheckResult::Unknown(reason) => eprintln!("checker could not decide: {reason}"),
        violation => {
            let path = std::env::temp_dir().join("keyspace-cluster-history.jsonl");
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
