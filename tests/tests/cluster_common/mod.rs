//! What the real-process cluster tests share: starting `keyspace node` processes on 127.0.0.1
//! with free ports, killing and restarting them, and a blocking Redis-protocol client.
#![allow(dead_code)]

pub mod workload;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use keyspace_node::resp_client::{info_field, parse_value, Value};

pub const NODES: u16 = 3;
pub const LEASE_MS: u64 = 1000;
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `keyspace` binary next to this test's own directory, brought up to date once per test
/// process: `cargo test -p keyspace-tests` alone does not rebuild another package's binary, and
/// a stale one would test old code.
pub fn keyspace_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_keyspace_binary).clone()
}

fn build_keyspace_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let mut build = Process::new(env!("CARGO"));
    build.args(["build", "-p", "keyspace-node", "--bin", "keyspace"]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    assert!(
        build.status().expect("cargo build").success(),
        "building keyspace failed"
    );
    profile_dir.join("keyspace")
}

/// The lowest port this process's replicas may use.
const FIRST_TEST_PORT: u32 = 10_000;

/// A port no replica of this process has been given, free when checked, and below the kernel's
/// ephemeral range: no outgoing connection, ours or anyone's, can take it between this check and
/// the replica's bind (a port from `bind(0)` can be handed out again at once, and two clusters
/// started side by side then shared a port and talked to each other).
pub fn free_port() -> u16 {
    free_port_run(1, 0)
}

/// How many ports this process has handed out (or passed over).
static HANDED_OUT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A port P such that the `count` ports from P and the `count` ports from P + `offset` are all
/// free, as `keyspace cluster --base-port P` needs (client ports, then peer ports above them);
/// from the same never-repeated sequence below the ephemeral range as [`free_port`].
pub fn free_port_run(count: u32, offset: u32) -> u16 {
    let ephemeral = ephemeral_first_port();
    let span = ephemeral - FIRST_TEST_PORT - offset - count;
    // Test binaries run at once (two checkouts, say) start far apart.
    let start = std::process::id().wrapping_mul(7_919) % span;
    let free = |port: u32| TcpListener::bind(("127.0.0.1", port as u16)).is_ok();
    loop {
        let n = HANDED_OUT.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        assert!(n < span, "no free port left below the ephemeral range");
        let port = FIRST_TEST_PORT + (start + n) % span;
        if (port..port + count).all(|p| free(p) && (offset == 0 || free(p + offset))) {
            return port as u16;
        }
    }
}

/// The first port of the kernel's ephemeral range (Linux's default when it cannot be read).
fn ephemeral_first_port() -> u32 {
    let first = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    assert!(
        first >= FIRST_TEST_PORT + 1_000,
        "the ephemeral range starts at {first}: too low for the test's own ports"
    );
    first
}

pub struct Cluster {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub peers: String,
    pub client_ports: Vec<u16>,
    /// Peer ports by id (founders', then joiners').
    pub peer_ports: Vec<u16>,
    keys: Vec<String>,
    password: Option<String>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    pub fn start() -> Cluster {
        Self::start_with(&["cluster-test-key"; NODES as usize], None)
    }

    pub fn start_with_key(keys: &[&str]) -> Cluster {
        Self::start_with(keys, None)
    }

    pub fn start_with_password(password: &str) -> Cluster {
        Self::start_with(&["cluster-test-key"; NODES as usize], Some(password))
    }

    fn start_with(keys: &[&str], password: Option<&str>) -> Cluster {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("keyspace-cluster-test-{}-{n}", std::process::id()));
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
            peer_ports,
            // Each cluster's own key, so that replicas of two clusters can never join up.
            keys: keys
                .iter()
                .map(|k| format!("{k}-{}-{n}", std::process::id()))
                .collect(),
            password: password.map(str::to_string),
            children: Vec::new(),
        };
        for id in 1..=NODES {
            let child = cluster.spawn(id);
            cluster.children.push(Some(child));
        }
        cluster
    }

    pub fn spawn(&self, id: u16) -> Child {
        self.spawn_with(id, &["--peers", &self.peers])
    }

    /// Starts `keyspace node` for replica `id` with its client address, lease and data
    /// directory, and `args`; its stderr goes to `node-ID.log`, its stdout to `node-ID.out`.
    pub fn spawn_with(&self, id: u16, args: &[&str]) -> Child {
        let append = |name: String| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(name))
                .unwrap()
        };
        let mut process = Process::new(&self.binary);
        if let Some(password) = &self.password {
            process.env("KEYSPACE_PASSWORD", password);
        }
        process
            .args(["node", "--id", &id.to_string()])
            .args(args)
            .args(["--client-addr", &format!("127.0.0.1:{}", self.port(id))])
            .args(["--lease-ms", &LEASE_MS.to_string()])
            .arg("--data")
            .arg(self.data_dir(id))
            // A joiner has the first founder's key.
            .env(
                "KEYSPACE_CLUSTER_KEY",
                self.keys.get(id as usize - 1).unwrap_or(&self.keys[0]),
            )
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(append(format!("node-{id}.out")))
            .stderr(append(format!("node-{id}.log")))
            .spawn()
            .expect("start keyspace node")
    }

    /// Ports for the next joiner: it gets the next id.
    pub fn reserve_joiner(&mut self) -> u16 {
        self.client_ports.push(free_port());
        self.peer_ports.push(free_port());
        self.children.push(None);
        self.children.len() as u16
    }

    /// Starts reserved replica `id` with `keyspace node --join` through replica `via`
    /// (`--promote` when `promote`).
    pub fn join(&mut self, id: u16, via: u16, promote: bool) {
        let flags: &[&str] = if promote { &["--promote"] } else { &[] };
        self.join_with(id, via, flags);
    }

    /// Like [`Cluster::join`], with `flags` (`--promote`, `--witness`) after the join's own.
    pub fn join_with(&mut self, id: u16, via: u16, flags: &[&str]) {
        let join = format!("127.0.0.1:{}", self.port(via));
        let peer_addr = format!("127.0.0.1:{}", self.peer_ports[id as usize - 1]);
        let mut args = vec!["--join", &join, "--peer-addr", &peer_addr];
        args.extend_from_slice(flags);
        let child = self.spawn_with(id, &args);
        self.children[id as usize - 1] = Some(child);
    }

    /// What replica `id` printed on its standard output.
    pub fn node_out(&self, id: u16) -> String {
        std::fs::read_to_string(self.dir.join(format!("node-{id}.out"))).unwrap_or_default()
    }

    /// Every id this cluster has given out, founders first.
    pub fn ids(&self) -> std::ops::RangeInclusive<u16> {
        1..=self.children.len() as u16
    }

    pub fn port(&self, id: u16) -> u16 {
        self.client_ports[id as usize - 1]
    }

    pub fn addr(&self, id: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(id)))
    }

    /// A client of replica `id`, once it listens.
    pub fn client(&self, id: u16) -> Client {
        let start = Instant::now();
        loop {
            match Client::connect(self.addr(id)) {
                Ok(client) => return client,
                Err(e) => assert!(
                    start.elapsed() < STEP_TIMEOUT,
                    "replica {id} does not listen: {e}"
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self, id: u16) {
        let mut child = self.children[id as usize - 1].take().expect("running");
        child.kill().unwrap(); // SIGKILL: no chance to flush anything
        child.wait().unwrap();
    }

    /// Whether replica `id`'s process is still running (false once it exited or was killed).
    pub fn is_running(&mut self, id: u16) -> bool {
        match &mut self.children[id as usize - 1] {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits for replica `id`'s process to end by itself and returns its exit status.
    pub fn wait_exit(&mut self, id: u16) -> std::process::ExitStatus {
        let child = self.children[id as usize - 1].as_mut().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.children[id as usize - 1] = None;
                return status;
            }
            assert!(
                start.elapsed() < STEP_TIMEOUT,
                "replica {id} still runs after {STEP_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replica `id`'s data directory.
    pub fn data_dir(&self, id: u16) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// Everything replica `id` has logged so far.
    pub fn node_log(&self, id: u16) -> String {
        std::fs::read_to_string(self.dir.join(format!("node-{id}.log"))).unwrap_or_default()
    }

    pub fn restart(&mut self, id: u16) {
        let child = self.spawn(id);
        self.children[id as usize - 1] = Some(child);
    }

    /// Restarts replica `id` with `args` instead of `--peers` (none: what its data keeps).
    pub fn restart_with(&mut self, id: u16, args: &[&str]) {
        let child = self.spawn_with(id, args);
        self.children[id as usize - 1] = Some(child);
    }

    pub fn info(&self, id: u16) -> Option<Value> {
        let mut client = Client::connect(self.addr(id)).ok()?;
        client.call(&[b"INFO", b"replication"]).ok()
    }

    pub fn field(&self, id: u16, field: &str) -> Option<String> {
        info_field(&self.info(id)?, field)
    }

    pub fn wait_for_master(&self, except: Option<u16>) -> u16 {
        let start = Instant::now();
        loop {
            for id in self.ids().filter(|id| Some(*id) != except) {
                if self.field(id, "keyspace_role").as_deref() == Some("master") {
                    return id;
                }
            }
            assert!(
                start.elapsed() < STEP_TIMEOUT,
                "no master within {STEP_TIMEOUT:?}; logs in {}:\n{}",
                self.dir.display(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A number from replica `id`'s INFO replication.
    /// Sends a membership change through replica `via` until it is done, and returns the new
    /// epoch. Retried while the refusal passes by itself: a change in progress, a master
    /// handing over (it cannot remove itself), no master yet.
    pub fn change_members(&self, via: u16, args: &[&[u8]]) -> i64 {
        let mut epoch = None;
        wait_until(&format!("{args:?} done"), || {
            let Ok(mut client) = Client::connect(self.addr(via)) else {
                return false;
            };
            match client.call(args) {
                Ok(Value::Int(e)) => epoch = Some(e),
                Ok(Value::Error(e))
                    if ["in progress", "hands over", "TRYAGAIN", "master"]
                        .iter()
                        .any(|s| e.contains(s)) => {}
                other => panic!("{args:?}: {other:?}"),
            }
            epoch.is_some()
        });
        epoch.unwrap()
    }

    /// `MEMBER REMOVE id` through replica `via`; the new epoch.
    pub fn remove_member(&self, via: u16, id: u16) -> i64 {
        self.change_members(via, &[b"MEMBER", b"REMOVE", id.to_string().as_bytes()])
    }

    pub fn index(&self, id: u16, field: &str) -> Option<u64> {
        self.field(id, field)?.parse().ok()
    }

    /// Waits until replica `id` has applied everything `master` had committed when called.
    pub fn wait_caught_up(&self, id: u16, master: u16) {
        let commit = self.index(master, "commit_index").expect("master answers");
        wait_until(&format!("replica {id} applied through {commit}"), || {
            self.index(id, "applied_index").is_some_and(|a| a >= commit)
        });
    }

    pub fn logs(&self) -> String {
        self.ids()
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

/// Polls `done` until it holds, for at most [`STEP_TIMEOUT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < STEP_TIMEOUT,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A connection to the replica after `target` in `ports` (moving `target` on), or `None` after
/// a short pause when that replica does not answer.
pub fn connect_next(ports: &[u16], target: &mut usize) -> Option<Client> {
    *target += 1;
    let addr = SocketAddr::from(([127, 0, 0, 1], ports[*target % ports.len()]));
    let conn = Client::connect(addr).ok();
    if conn.is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    conn
}

/// A blocking Redis-protocol client.
pub struct Client {
    stream: TcpStream,
    input: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            input: Vec::new(),
        })
    }

    pub fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Value> {
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
