//! Real processes: three `keyspace node`s on 127.0.0.1. A follower is killed with `kill -9`,
//! bytes in the middle of its log segment are flipped, and it is started again. It must come up
//! on the damaged log (as a follower that recovers from its peers rather than refuse to start),
//! catch up, and then hold every acknowledged value and vote again; the cluster keeps serving
//! writes all along.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keyspace_node::resp_client::Value;

mod cluster_common;
use cluster_common::{connect_next, wait_until, Client, Cluster, NODES};

/// Keys written before the follower is killed.
const KEYS_BEFORE_KILL: u64 = 300;
/// Bound on the writer's keys (it is also stopped by the test).
const KEYS_MAX: u64 = 20_000;
/// Bytes flipped in the middle of the follower's log.
const FLIPPED_BYTES: u64 = 8;
/// Bound on the whole test, on a loaded 2-core machine.
const TEST_MAX: Duration = Duration::from_secs(120);

/// Acknowledged writes: key index and when it was acknowledged, from the test's start.
type Acked = Arc<Mutex<Vec<(u64, Duration)>>>;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    format!("value-{i}-{}", "x".repeat(40)).into_bytes()
}

/// Writes `key(i)` for i = `first`.. one after the other through the replicas in `ports`,
/// moving to the next replica on any failure, until `stop` or [`KEYS_MAX`].
fn writer(
    first: u64,
    ports: Vec<u16>,
    (start, stop): (Instant, Arc<AtomicBool>),
    acked: Acked,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut target = 0;
        let mut conn: Option<Client> = None;
        let mut i = first;
        while i < KEYS_MAX && !stop.load(Ordering::Relaxed) {
            let client = match &mut conn {
                Some(client) => client,
                None => {
                    conn = connect_next(&ports, &mut target);
                    continue;
                }
            };
            match client.call(&[b"SET", &key(i), &value(i)]) {
                Ok(Value::Simple(ok)) if ok == "OK" => {
                    acked.lock().unwrap().push((i, start.elapsed()));
                    i += 1;
                }
                // Refused or no answer: the same key again elsewhere (SET is idempotent).
                _ => {
                    conn = None;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    })
}

/// The follower's only segment, and where its records end (the last non-zero byte).
fn written_segment(cluster: &Cluster, id: u16) -> (PathBuf, u64) {
    let dir = cluster.data_dir(id);
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    let path = segments.pop().expect("a segment");
    let bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).expect("records") as u64 + 1;
    (path, end)
}

fn flip_bytes(path: &PathBuf, at: u64, len: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, at).unwrap();
    for byte in &mut bytes {
        *byte ^= 0xff;
    }
    file.write_all_at(&bytes, at).unwrap();
    file.sync_all().unwrap();
}

#[test]
fn a_follower_restarted_on_a_damaged_log_recovers_from_its_peers_and_catches_up() {
    let test_start = Instant::now();
    let mut cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let follower = (1..=NODES).find(|id| *id != master).unwrap();
    let others: Vec<u16> = (1..=NODES)
        .filter(|id| *id != follower)
        .map(|id| cluster.port(id))
        .collect();
    eprintln!("master is node {master}; node {follower} will be damaged");

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let mut writers = vec![writer(0, others, (test_start, stop.clone()), acked.clone())];
    wait_until("the first keys are acknowledged", || {
        acked.lock().unwrap().len() as u64 >= KEYS_BEFORE_KILL
    });
    // The follower has them in its log once it applied what the master committed.
    cluster.wait_caught_up(follower, master);

    cluster.kill(follower);
    let (segment, end) = written_segment(&cluster, follower);
    let at = end / 2;
    flip_bytes(&segment, at, FLIPPED_BYTES);
    eprintln!(
        "flipped {FLIPPED_BYTES} bytes at offset {at} of {} ({end} bytes of records)",
        segment.display()
    );
    let acked_before_restart = acked.lock().unwrap().len();
    wait_until("writes go on while the follower is down", || {
        acked.lock().unwrap().len() >= acked_before_restart + 50
    });

    let restarted = Instant::now();
    let restarted_at = restarted.duration_since(test_start);
    cluster.restart(follower);
    let mut first_role = None;
    wait_until("the restarted follower answers INFO", || {
        first_role = cluster.field(follower, "keyspace_role");
        first_role.is_some()
    });
    let first_role = first_role.unwrap();
    eprintln!("restarted node {follower} first reported role {first_role}");
    assert!(
        first_role == "recovering" || first_role == "follower",
        "{first_role}"
    );
    let log = cluster.node_log(follower);
    assert!(
        log.contains("failed verification") && log.contains("damaged=true"),
        "the restart did not find the damage:\n{}",
        cluster.logs()
    );
    let found = log.lines().filter(|l| l.contains("failed verification"));
    for line in found.take(3) {
        eprintln!("node {follower}: {line}");
    }

    // Writes through every replica, the restarted one included, while it recovers.
    let acked_at_restart = acked.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    writers.pop().unwrap().join().unwrap();
    stop.store(false, Ordering::Relaxed);
    let next = acked
        .lock()
        .unwrap()
        .iter()
        .map(|(i, _)| i + 1)
        .max()
        .unwrap();
    let ports = cluster.client_ports.clone();
    writers.push(writer(
        next,
        ports,
        (test_start, stop.clone()),
        acked.clone(),
    ));
    wait_until("writes go on after the restart", || {
        acked.lock().unwrap().len() >= acked_at_restart + 200
    });
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }

    cluster.wait_caught_up(follower, master);
    let caught_up = restarted.elapsed();
    wait_until("INFO shows the storage recovery finished", || {
        cluster.field(follower, "storage_recovering").as_deref() == Some("0")
    });
    assert!(cluster.is_running(follower), "{}", cluster.logs());

    let acked = acked.lock().unwrap().clone();
    let during_recovery = acked.iter().filter(|(_, t)| *t > restarted_at).count();
    assert!(
        during_recovery > 0,
        "no write acknowledged after the restart"
    );
    let mut client = Client::connect(cluster.addr(follower)).unwrap();
    for (i, _) in &acked {
        let got = client.call(&[b"DIRTYGET", &key(*i)]).unwrap();
        assert_eq!(
            got,
            Value::Bulk(value(*i)),
            "key {i} on the repaired follower"
        );
    }
    eprintln!(
        "{} acknowledged keys ({during_recovery} after the restart) all on node {follower}; \
         caught up {caught_up:?} after its restart",
        acked.len(),
    );

    // Recovered, it votes again: with the third replica gone, writes need it.
    let third = (1..=NODES)
        .find(|id| *id != master && *id != follower)
        .unwrap();
    cluster.kill(third);
    let mut writes = Client::connect(cluster.addr(master)).unwrap();
    let first = acked.iter().map(|(i, _)| i + 1).max().unwrap();
    for i in first..first + 20 {
        let reply = writes.call(&[b"SET", &key(i), &value(i)]).unwrap();
        assert_eq!(reply, Value::Simple("OK".into()), "{}", cluster.logs());
    }
    wait_until("the last write reached the repaired follower", || {
        client.call(&[b"DIRTYGET", &key(first + 19)]).ok() == Some(Value::Bulk(value(first + 19)))
    });
    eprintln!(
        "with node {third} killed, 20 writes committed through nodes {master} and {follower}; \
         test took {:?}",
        test_start.elapsed()
    );
    assert!(
        test_start.elapsed() < TEST_MAX,
        "{:?}",
        test_start.elapsed()
    );
}
