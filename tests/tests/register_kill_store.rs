//! Real processes: the shared register over three stores on 127.0.0.1 (`redis-server`s, or
//! single-replica `keyspace` nodes where redis-server is not installed), four clients through
//! the Redis backend, one store killed with `kill -9` mid-run. Every operation must still
//! finish, within its time bound, and the recorded history must be linearizable.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyspace_checker::{
    check_register, CheckOptions, CheckResult, Operation, Outcome, RegisterInput, RegisterOutput,
};
use keyspace_register::{Config, RedisStore, Register, Variant};

mod cluster_common;
use cluster_common::{free_port, keyspace_binary};

const STORES: usize = 3;
const CLIENTS: u64 = 4;
const OPS_PER_CLIENT: u64 = 40;
/// Operations finished, over all clients, when the store is killed.
const KILL_AFTER_OPS: u64 = CLIENTS * OPS_PER_CLIENT / 3;
/// Each operation's bound: with one store of three down the other two answer at once.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The store processes; each is stopped by its pid when the test ends, however it ends.
struct Stores {
    children: Vec<Option<Child>>,
    ports: Vec<u16>,
    dir: PathBuf,
    kind: &'static str,
}

impl Drop for Stores {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-server` from PATH, unless KEYSPACE_REGISTER_TEST_STORES=keyspace asks for keyspace
/// nodes.
fn find_redis_server() -> Option<PathBuf> {
    if std::env::var("KEYSPACE_REGISTER_TEST_STORES").as_deref() == Ok("keyspace") {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

fn log_file(dir: &Path, i: usize) -> std::fs::File {
    std::fs::File::create(dir.join(format!("store-{i}.log"))).expect("log file")
}

fn start_redis(redis: &Path, port: u16, dir: &Path, i: usize) -> Child {
    Process::new(redis)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log_file(dir, i))
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server")
}

fn start_keyspace(port: u16, dir: &Path, i: usize) -> Child {
    let peer = free_port();
    Process::new(keyspace_binary())
        .args([
            "node",
            "--id",
            "1",
            "--peers",
            &format!("1=127.0.0.1:{peer}"),
        ])
        .args(["--client-addr", &format!("127.0.0.1:{port}")])
        .arg("--data")
        .arg(dir.join(format!("node-{i}")))
        .env(
            "KEYSPACE_CLUSTER_KEY",
            format!("register-test-{}-{i}", std::process::id()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(dir, i))
        .spawn()
        .expect("start keyspace node")
}

fn start_stores() -> Stores {
    let dir = std::env::temp_dir().join(format!("keyspace-register-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let redis = find_redis_server();
    let kind = if redis.is_some() {
        "redis-server"
    } else {
        println!("no redis-server to use: the stores are single-replica keyspace nodes");
        "keyspace node"
    };
    let ports: Vec<u16> = (0..STORES).map(|_| free_port()).collect();
    let children = (0..STORES)
        .map(|i| {
            Some(match &redis {
                Some(redis) => start_redis(redis, ports[i], &dir, i),
                None => start_keyspace(ports[i], &dir, i),
            })
        })
        .collect();
    let stores = Stores {
        children,
        ports,
        dir,
        kind,
    };
    for i in 0..STORES {
        wait_until_serving(&stores, i);
    }
    stores
}

/// Until store `i` answers a write and a read (a keyspace node must first elect itself).
fn wait_until_serving(stores: &Stores, i: usize) {
    use keyspace_register::Store;
    let start = Instant::now();
    let addr = format!("127.0.0.1:{}", stores.ports[i]);
    let mut store = RedisStore::new(&addr, Duration::from_secs(2));
    loop {
        let ready = store.put("probe/x", b"1").is_ok() && store.get("probe/x").is_ok();
        if ready && store.remove("probe/x").is_ok() {
            return;
        }
        assert!(
            start.elapsed() < START_TIMEOUT,
            "{} {i} on port {} does not serve; its log is in {}",
            stores.kind,
            stores.ports[i],
            stores.dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

type Op = Operation<RegisterInput, RegisterOutput>;

struct Shared {
    start: Instant,
    history: Mutex<Vec<Op>>,
    finished: AtomicU64,
    slowest: Mutex<Duration>,
}

fn run_client(shared: &Shared, addrs: &[String], client: u64) {
    let stores = addrs
        .iter()
        .map(|addr| RedisStore::new(addr, Duration::from_secs(2)))
        .collect();
    let name = format!("test-{}", std::process::id());
    let config = Config::new(STORES, Variant::Atomic, client, &name);
    let mut register = Register::new(stores, config).expect("valid register");
    register.set_timeout(OP_TIMEOUT);
    for i in 0..OPS_PER_CLIENT {
        let invoke = Instant::now();
        let invoke_ns = shared.start.elapsed().as_nanos() as u64;
        let (input, output) = if i % 2 == 0 {
            let value = (client * 1_000 + i) as i64;
            let result = register.write(value.to_string().as_bytes());
            result.unwrap_or_else(|e| panic!("client {client} write {i}: {e}"));
            (RegisterInput::Write(value), RegisterOutput::Write)
        } else {
            let (_, value) = register
                .read()
                .unwrap_or_else(|e| panic!("client {client} read {i}: {e}"));
            let value = value.map(|v| String::from_utf8(v).unwrap().parse().unwrap());
            (RegisterInput::Read, RegisterOutput::Read(value))
        };
        let at_ns = shared.start.elapsed().as_nanos() as u64;
        let took = invoke.elapsed();
        let mut slowest = shared.slowest.lock().unwrap();
        *slowest = (*slowest).max(took);
        drop(slowest);
        shared.history.lock().unwrap().push(Operation {
            client,
            invoke_ns,
            input,
            outcome: Outcome::Returned { at_ns, output },
        });
        shared.finished.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn register_survives_kill_9_of_one_store_of_three_and_stays_linearizable() {
    if find_redis_server().is_none() && !keyspace_binary().exists() {
        println!("skipped: neither redis-server nor the keyspace binary is available");
        return;
    }
    let mut stores = start_stores();
    let addrs: Vec<String> = stores
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let shared = Arc::new(Shared {
        start: Instant::now(),
        history: Mutex::new(Vec::new()),
        finished: AtomicU64::new(0),
        slowest: Mutex::new(Duration::ZERO),
    });
    let threads: Vec<_> = (1..=CLIENTS)
        .map(|client| {
            let (shared, addrs) = (shared.clone(), addrs.clone());
            std::thread::spawn(move || run_client(&shared, &addrs, client))
        })
        .collect();
    let deadline = Instant::now() + START_TIMEOUT;
    while shared.finished.load(Ordering::SeqCst) < KILL_AFTER_OPS {
        assert!(Instant::now() < deadline, "the clients made no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
    let victim = stores.children[1].as_mut().expect("running");
    victim.kill().expect("kill -9"); // SIGKILL
    victim.wait().unwrap();
    stores.children[1] = None;
    for thread in threads {
        thread
            .join()
            .expect("every client finished every operation");
    }
    let history = shared.history.lock().unwrap().clone();
    assert_eq!(history.len() as u64, CLIENTS * OPS_PER_CLIENT);
    println!(
        "{} operations over {} {}s, one killed after {KILL_AFTER_OPS}; slowest {:?}",
        history.len(),
        STORES,
        stores.kind,
        shared.slowest.lock().unwrap()
    );
    let options = CheckOptions {
        timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    match check_register(&history, &options) {
        CheckResult::Linearizable => {}
        other => panic!("history not linearizable: {other:?}"),
    }
}
