//! `keyspace cluster` itself, the way a newcomer tries it: `kill -9` of the master's process
//! (by the pid the cluster printed) fails over to another replica while the cluster process
//! keeps running and says what happened; Ctrl-C (SIGINT) stops every replica, keeps a --dir
//! given and removes the temporary directory otherwise; with no majority left it stops itself.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyspace_core::ReplicaConfig;
use keyspace_node::resp_client::Value;
use std::process::Output;

mod cluster_common;
use cluster_common::{free_port_run, keyspace_binary, Client, STEP_TIMEOUT};

const NODES: u16 = 3;
/// `keyspace cluster` puts peer ports this far above client ports.
const PEER_PORT_OFFSET: u32 = 1000;
/// Keys written through the master before it is killed.
const KEYS_BEFORE_KILL: u64 = 50;
/// Extra time a machine whose two cores are shared with other builds may add to a failover.
const LOADED_MACHINE_SLACK: Duration = Duration::from_secs(2);

/// How long after the master's death writes must work again, from the lease arithmetic of the
/// configuration `keyspace node` runs with by default (`ReplicaConfig::new`; the node's
/// --lease-ms default is the same 2 s): the survivors' grants to the dead master, and their
/// memory of its last message, run out within one lease on their own clocks, at most
/// `L / (1 - ρ)` of true time; then an election of at most two attempts (the two survivors may
/// contend once), each a random wait of up to `lease_backoff_max` and up to
/// `lease_attempt_timeout` of asking; then log phase 1 and the no-op, a few loopback round trips.
fn failover_bound() -> Duration {
    let config = ReplicaConfig::new(1, vec![1, 2, 3]);
    let rho = config.lease.drift_rate_max_ppm as f64 / 1e6;
    let grants_run_out_ns = config.lease.lease_duration_ns as f64 / (1.0 - rho);
    let attempts_ns = 2 * (config.lease_backoff_max_ns + config.lease_attempt_timeout_ns);
    Duration::from_nanos(grants_run_out_ns as u64 + attempts_ns) + LOADED_MACHINE_SLACK
}

/// A running `keyspace cluster` process and every line it printed so far.
struct ClusterProcess {
    child: Child,
    base_port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    /// The threads that collect the lines; they end when the process closes its output.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl ClusterProcess {
    /// Starts `keyspace cluster` on free consecutive ports, in `dir` when one is given.
    fn start(dir: Option<&Path>) -> ClusterProcess {
        ClusterProcess::start_with_spare_ports(dir, 0)
    }

    /// As [`Self::start`], with `spare` more free ports after the cluster's (client and peer),
    /// for replicas joined by hand.
    fn start_with_spare_ports(dir: Option<&Path>, spare: u16) -> ClusterProcess {
        let base_port = free_port_run((NODES + spare) as u32, PEER_PORT_OFFSET);
        let mut command = Process::new(keyspace_binary());
        command
            .args(["cluster", "--nodes", &NODES.to_string()])
            .args(["--base-port", &base_port.to_string()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = dir {
            command.arg("--dir").arg(dir);
        }
        let mut child = command.spawn().expect("start keyspace cluster");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let outputs = [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ];
        let readers = outputs
            .into_iter()
            .map(|output| {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(output).lines().map_while(Result::ok) {
                        lines.lock().unwrap().push(line);
                    }
                })
            })
            .collect();
        ClusterProcess {
            child,
            base_port,
            lines,
            readers,
        }
    }

    fn printed(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Polls `found` until it gives a value, for at most `timeout`.
    fn poll<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut found: impl FnMut(&mut Self) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(value) = found(self) {
                return value;
            }
            assert!(
                start.elapsed() < timeout,
                "{what}: not within {timeout:?}; printed:\n{}",
                self.printed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first printed line that starts with `prefix`, waiting for it.
    fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let what = format!("a line starting with {prefix:?}");
        self.poll(&what, timeout, |cluster| {
            let lines = cluster.lines.lock().unwrap();
            lines.iter().find(|line| line.starts_with(prefix)).cloned()
        })
    }

    /// Replica `id`'s pid, as printed at start.
    fn pid(&mut self, id: u16) -> u32 {
        let line = self.wait_for_line(&format!("replica {id}: pid "), STEP_TIMEOUT);
        let digits: String = line[format!("replica {id}: pid ").len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().expect("a pid")
    }

    /// The first master, as printed.
    fn master(&mut self) -> u16 {
        let line = self.wait_for_line("master: replica ", STEP_TIMEOUT);
        line["master: replica ".len()..]
            .split(' ')
            .next()
            .and_then(|id| id.parse().ok())
            .expect("a replica id")
    }

    /// The temporary data directory the cluster chose, from the line of replica 1.
    fn data_root(&mut self) -> PathBuf {
        let line = self.wait_for_line("replica 1: pid ", STEP_TIMEOUT);
        let data = line
            .split(", ")
            .find_map(|part| part.strip_prefix("data in "))
            .expect("the data directory");
        Path::new(data).parent().unwrap().to_path_buf()
    }

    fn addr(&self, id: u16) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.base_port + id - 1))
    }

    /// SIGINT, as Ctrl-C sends: the cluster exits well, and every replica in `pids` is gone.
    fn stop_with_ctrl_c(&mut self, pids: &[u32]) {
        self.signal(libc::SIGINT);
        let status = self.wait_exit(STEP_TIMEOUT);
        assert!(
            status.success(),
            "after Ctrl-C: {status}\n{}",
            self.printed()
        );
        wait_until_gone(pids);
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain signal to a process this test started.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    /// Waits for the cluster process to end, and for everything it printed.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let status = self.poll("the cluster's exit", timeout, |cluster| {
            cluster.child.try_wait().unwrap()
        });
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        status
    }
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        // The replicas stop with their parent (they get SIGTERM when it dies).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` runs (a zombie waiting to be reaped does not).
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

fn wait_until_gone(pids: &[u32]) {
    let start = Instant::now();
    while pids.iter().any(|pid| is_alive(*pid)) {
        assert!(
            start.elapsed() < STEP_TIMEOUT,
            "replicas still running: {:?}",
            pids.iter()
                .filter(|pid| is_alive(**pid))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_9(pid: u32) {
    // SAFETY: plain signal to a replica this test's cluster process started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// `SET key value` on replica `addr`: true once it answered OK.
fn set(addr: std::net::SocketAddr, key: &str, value: &str) -> bool {
    let Ok(mut client) = Client::connect(addr) else {
        return false;
    };
    matches!(
        client.call(&[b"SET", key.as_bytes(), value.as_bytes()]),
        Ok(Value::Simple(ok)) if ok == "OK"
    )
}

fn get(addr: std::net::SocketAddr, key: &str) -> Option<Vec<u8>> {
    let mut client = Client::connect(addr).expect("connect");
    match client.call(&[b"GET", key.as_bytes()]).expect("GET") {
        Value::Bulk(value) => Some(value),
        Value::Null => None,
        other => panic!("GET {key}: {other:?}"),
    }
}

/// A directory for one test, removed when the test ends well.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn kill_9_of_the_master_fails_over_within_the_lease_bound_and_loses_no_acknowledged_write() {
    let dir = TestDir::new("keyspace-quickstart-failover");
    let mut cluster = ClusterProcess::start(Some(&dir.0));
    let master = cluster.master();
    let pids: Vec<u32> = (1..=NODES).map(|id| cluster.pid(id)).collect();
    let mut acked: Vec<(String, String)> = Vec::new();
    for k in 0..KEYS_BEFORE_KILL {
        let (key, value) = (format!("before-{k}"), format!("v{k}"));
        assert!(
            set(cluster.addr(master), &key, &value),
            "SET {key} on the master"
        );
        acked.push((key, value));
    }

    let killed_at = Instant::now();
    kill_9(pids[master as usize - 1]);
    let other = (1..=NODES).find(|id| *id != master).unwrap();
    let mut attempt = 0;
    let resumed = loop {
        attempt += 1;
        let (key, value) = (format!("during-{attempt}"), format!("w{attempt}"));
        if set(cluster.addr(other), &key, &value) {
            acked.push((key, value));
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < STEP_TIMEOUT, "no write succeeded");
        std::thread::sleep(Duration::from_millis(20));
    };
    let bound = failover_bound();
    eprintln!(
        "writes through replica {other} resumed {resumed:?} after the kill (bound {bound:?})"
    );
    assert!(
        resumed < bound,
        "writes resumed only {resumed:?} after the kill, beyond {bound:?}; printed:\n{}",
        cluster.printed()
    );

    for (key, value) in &acked {
        assert_eq!(
            get(cluster.addr(other), key).as_deref(),
            Some(value.as_bytes()),
            "acknowledged write of {key} lost"
        );
    }
    let report = format!(
        "replica {master} (pid {}) was killed by signal 9 (SIGKILL)",
        pids[master as usize - 1]
    );
    cluster.wait_for_line(&report, STEP_TIMEOUT);
    assert!(
        cluster.is_running(),
        "the cluster process ended with its master"
    );
    let line = cluster.wait_for_line("  to restart it: ", STEP_TIMEOUT);
    assert!(line.contains(&format!("--id {master} ")), "{line}");

    cluster.stop_with_ctrl_c(&pids);
    for id in 1..=NODES {
        let data = dir.0.join(format!("node-{id}"));
        let entries = std::fs::read_dir(&data).map(|d| d.count()).unwrap_or(0);
        assert!(entries > 0, "{} was not kept", data.display());
    }
}

#[test]
fn ctrl_c_stops_every_replica_and_removes_the_temporary_directory() {
    let mut cluster = ClusterProcess::start(None);
    cluster.master();
    let pids: Vec<u32> = (1..=NODES).map(|id| cluster.pid(id)).collect();
    let root = cluster.data_root();
    assert!(root.join("node-1").exists(), "{}", root.display());

    cluster.stop_with_ctrl_c(&pids);
    assert!(!root.exists(), "{} was left behind", root.display());
    assert!(
        !cluster.printed().contains("was killed by"),
        "Ctrl-C reported as a replica's death:\n{}",
        cluster.printed()
    );
}

#[test]
fn the_cluster_stops_by_itself_and_says_so_when_no_majority_is_left() {
    let mut cluster = ClusterProcess::start(None);
    let master = cluster.master();
    let pids: Vec<u32> = (1..=NODES).map(|id| cluster.pid(id)).collect();
    let root = cluster.data_root();
    let followers: Vec<u16> = (1..=NODES).filter(|id| *id != master).collect();
    kill_9(pids[followers[0] as usize - 1]);
    cluster.wait_for_line(&format!("replica {} (pid", followers[0]), STEP_TIMEOUT);
    assert!(
        cluster.is_running(),
        "one replica of three down is not the end"
    );
    kill_9(pids[followers[1] as usize - 1]);

    let status = cluster.wait_exit(STEP_TIMEOUT);
    assert!(
        !status.success(),
        "no majority left, yet it exited with {status}"
    );
    assert!(
        cluster
            .printed()
            .contains("no majority left: 1 of 3 replicas run"),
        "{}",
        cluster.printed()
    );
    wait_until_gone(&pids);
    assert!(!root.exists(), "{} was left behind", root.display());
}

/// Runs `keyspace ARGS…` to its end.
fn keyspace(args: &[&str]) -> Output {
    Process::new(keyspace_binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run keyspace")
}

/// A `keyspace node` this test started, stopped by pid when the test ends.
struct Joiner(Child);

impl Drop for Joiner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// docs/operations.md, "Replace a dead replica of `keyspace cluster`", step by step: the
/// replacement joins and is promoted, the dead replica is removed, and then the group survives
/// the loss of one more of the replicas `keyspace cluster` started, which keeps serving.
#[test]
fn a_dead_replica_replaced_as_the_operations_docs_say_lets_the_cluster_survive_another_loss() {
    let dir = TestDir::new("keyspace-quickstart-replace");
    let mut cluster = ClusterProcess::start_with_spare_ports(Some(&dir.0), 1);
    let master = cluster.master();
    let pids: Vec<u32> = (1..=NODES).map(|id| cluster.pid(id)).collect();
    let mut acked: Vec<(String, String)> = Vec::new();
    for k in 0..20 {
        let (key, value) = (format!("before-{k}"), format!("v{k}"));
        assert!(set(cluster.addr(master), &key, &value), "SET {key}");
        acked.push((key, value));
    }
    let dead = (1..=NODES).find(|id| *id != master).unwrap();
    kill_9(pids[dead as usize - 1]);
    std::fs::remove_dir_all(dir.0.join(format!("node-{dead}"))).unwrap();
    cluster.wait_for_line(&format!("replica {dead} (pid"), STEP_TIMEOUT);

    let (client_port, peer_port) = (
        cluster.base_port + NODES,
        cluster.base_port + NODES + PEER_PORT_OFFSET as u16,
    );
    let key = std::fs::read_to_string(dir.0.join("cluster-key")).unwrap();
    let via = format!("127.0.0.1:{}", cluster.addr(master).port());
    let data = dir.0.join("node-4");
    let joiner = Process::new(keyspace_binary())
        .args(["node", "--id", "4", "--join", &via, "--promote"])
        .args(["--peer-addr", &format!("127.0.0.1:{peer_port}")])
        .args(["--client-addr", &format!("127.0.0.1:{client_port}")])
        .arg("--data")
        .arg(&data)
        .args(["--cluster-key", key.trim()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start replica 4");
    let mut joiner = Joiner(joiner);
    let out = BufReader::new(joiner.0.stdout.take().unwrap());
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let start = Instant::now();
    let mut printed = Vec::new();
    while !printed
        .last()
        .is_some_and(|l: &String| l.starts_with("replica 4 is a voter"))
    {
        let left = STEP_TIMEOUT.saturating_sub(start.elapsed());
        match said.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(e) => panic!("replica 4 not a voter ({e}); it printed {printed:?}"),
        }
    }

    let port = cluster.addr(master).port().to_string();
    let removed = keyspace(&["member", "remove", &dead.to_string(), "--addr", &port]);
    let printed = String::from_utf8_lossy(&removed.stdout);
    assert!(
        removed.status.success() && printed.starts_with("done: the configuration is at epoch"),
        "member remove {dead}: {printed}{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let listed = keyspace(&["member", "list", "--addr", &client_port.to_string()]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    let ids: Vec<&str> = listed.lines().filter_map(|l| l.split(' ').next()).collect();
    let expected: Vec<String> = (1..=NODES + 1)
        .filter(|id| *id != dead)
        .map(|id| format!("id={id}"))
        .collect();
    assert_eq!(ids, expected, "{listed}");

    kill_9(pids[master as usize - 1]);
    let replacement = std::net::SocketAddr::from(([127, 0, 0, 1], client_port));
    let start = Instant::now();
    while !set(replacement, "after-second-loss", "w") {
        assert!(
            start.elapsed() < STEP_TIMEOUT,
            "no write after the second loss; printed:\n{}",
            cluster.printed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    acked.push(("after-second-loss".into(), "w".into()));
    cluster.wait_for_line(
        "fewer than a majority of the replicas this process started run, but the group's voters",
        STEP_TIMEOUT,
    );
    assert!(
        cluster.is_running(),
        "the cluster stopped:\n{}",
        cluster.printed()
    );
    for (key, value) in &acked {
        assert_eq!(
            get(replacement, key).as_deref(),
            Some(value.as_bytes()),
            "acknowledged write of {key} lost"
        );
    }
    drop(joiner);
    let alive: Vec<u32> = (1..=NODES)
        .filter(|id| *id != dead && *id != master)
        .map(|id| pids[id as usize - 1])
        .collect();
    cluster.stop_with_ctrl_c(&alive);
}
