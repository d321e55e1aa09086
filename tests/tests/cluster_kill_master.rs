//! Real processes: three `keyspace node`s on 127.0.0.1, clients writing through the Redis
//! protocol, `kill -9` of the master. Writes must resume on a new master within the lease time,
//! no acknowledged write may be lost, the killed replica must catch up after a restart, and the
//! recorded client history must be linearizable.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyspace_checker::{check_kv, CheckOptions, CheckResult, Recorder};
use keyspace_core::{Command, Reply};
use keyspace_node::resp_client::{info_field, parse_value, Value};

const NODES: u16 = 3;
const LEASE_MS: u64 = 1000;
/// Writes must work again within this long after the master dies: the lease, the restart-free
/// election that follows it, and slack for a loaded 2-core machine.
const FAILOVER_MAX: Duration = Duration::from_millis(3 * LEASE_MS + 2000);
const KEYS: u64 = 5;
const CLIENTS: u64 = 4;
/// Bound on each client's operations (the test also stops them by time).
const OPS_PER_CLIENT_MAX: u64 = 2_000;
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `keyspace` binary: next to this test's own directory, built if it is not there yet.
fn keyspace_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let binary = profile_dir.join("keyspace");
    if !binary.exists() {
        let release = profile_dir.ends_with("release");
        let mut build = Process::new(env!("CARGO"));
        build.args(["build", "-p", "keyspace-node", "--bin", "keyspace"]);
        if release {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo build").success(),
            "building keyspace failed"
        );
    }
    binary
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Cluster {
    binary: PathBuf,
    dir: PathBuf,
    peers: String,
    client_ports: Vec<u16>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir =
            std::env::temp_dir().join(format!("keyspace-cluster-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let peer_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let client_ports = (0..NODES).map(|_| free_port()).collect();
        let peers = (1..=NODES)
            .map(|i| format!("{i}=127.0.0.1:{}", peer_ports[i as usize - 1]))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            binary: keyspace_binary(),
            dir,
            peers,
            client_ports,
            children: Vec::new(),
        };
        for id in 1..=NODES {
            let child = cluster.spawn(id);
            cluster.children.push(Some(child));
        }
        cluster
    }

    fn spawn(&self, id: u16) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.log")))
            .unwrap();
        Process::new(&self.binary)
            .args(["node", "--id", &id.to_string(), "--peers", &self.peers])
            .args(["--client-addr", &format!("127.0.0.1:{}", self.port(id))])
            .args(["--lease-ms", &LEASE_MS.to_string()])
            .arg("--data")
            .arg(self.dir.join(format!("node-{id}")))
            .env("KEYSPACE_CLUSTER_KEY", "cluster-test-key")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start keyspace node")
    }

    fn port(&self, id: u16) -> u16 {
        self.client_ports[id as usize - 1]
    }

    fn addr(&self, id: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(id)))
    }

    fn kill(&mut self, id: u16) {
        let mut child = self.children[id as usize - 1].take().expect("running");
        child.kill().unwrap(); // SIGKILL: no chance to flush anything
        child.wait().unwrap();
    }

    fn restart(&mut self, id: u16) {
        let child = self.spawn(id);
        self.children[id as usize - 1] = Some(child);
    }

    fn info(&self, id: u16) -> Option<Value> {
        let mut client = Client::connect(self.addr(id)).ok()?;
        client.call(&[b"INFO", b"replication"]).ok()
    }

    fn field(&self, id: u16, field: &str) -> Option<String> {
        info_field(&self.info(id)?, field)
    }

    fn wait_for_master(&self, except: Option<u16>) -> u16 {
        let start = Instant::now();
        loop {
            for id in (1..=NODES).filter(|id| Some(*id) != except) {
                if self.field(id, "keyspace_role").as_deref() == Some("master") {
                    return id;
                }
            }
            assert!(
                start.elapsed() < STEP_TIMEOUT,
                "no master within {STEP_TIMEOUT:?}; logs in {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self) -> String {
        (1..=NODES)
            .map(|id| {
                let text = std::fs::read_to_string(self.dir.join(format!("node-{id}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- node {id} ---\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A blocking Redis-protocol client.
struct Client {
    stream: TcpStream,
    input: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            input: Vec::new(),
        })
    }

    fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Value> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out)?;
        loop {
            if let Some((value, used)) = parse_value(&self.input)? {
                self.input.drain(..used);
                return Ok(value);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }
}

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
            target += 1;
            let addr = SocketAddr::from(([127, 0, 0, 1], ports[target % ports.len()]));
            conn = Client::connect(addr).ok();
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        }
        let key = format!("k{}", next() % KEYS).into_bytes();
        let (command, args): (Command, Vec<Vec<u8>>) = match next() % 3 {
            0 => {
                let value = format!("c{client}-{op}").into_bytes();
                (
                    Command::Set {
                        key: key.clone(),
                        value: value.clone(),
                    },
                    vec![b"SET".to_vec(), key, value],
                )
            }
            1 => (
                Command::Add {
                    key: key.clone(),
                    delta: 1,
                },
                vec![b"INCR".to_vec(), key],
            ),
            _ => (
                Command::Get { key: key.clone() },
                vec![b"GET".to_vec(), key],
            ),
        };
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
            Ok(Value::Simple(s)) if s == "OK" => Some(Reply::Ok),
            Ok(Value::Int(n)) => Some(Reply::Int(n)),
            Ok(Value::Bulk(v)) => Some(Reply::Value(Some(v))),
            Ok(Value::Null) => Some(Reply::Value(None)),
            // INCR on a value a SET made non-numeric: refused, changed nothing.
            Ok(Value::Error(e)) if e.contains("not an integer") => {
                Some(Reply::Error(keyspace_core::CommandError::NotAnInteger))
            }
            Ok(_) => None,
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

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < STEP_TIMEOUT,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
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
