//! `keyspace cluster`: a local cluster of replicas as child processes, for trying keyspace out.
//!
//! A replica that dies is reported (how, and the command that restarts it) while the others
//! keep serving; the cluster process itself ends only on Ctrl-C or when no majority is left.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use keyspace_core::majority;
use keyspace_node::resp_client::{info_field, Client};

/// Peer ports sit this far above client ports.
const PEER_PORT_OFFSET: u16 = 1000;
/// How long to wait for the first master before saying so.
const MASTER_WAIT: Duration = Duration::from_secs(20);
/// How often the replicas are checked while waiting for a master.
const MASTER_POLL: Duration = Duration::from_millis(50);
/// How often the replicas' processes are checked once the cluster serves.
const WATCH_POLL: Duration = Duration::from_millis(250);
/// How long one status question to a replica may take (a stopped process never answers).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// The file (in the cluster's directory) holding the key replicas authenticate peers with.
const KEY_FILE: &str = "cluster-key";

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// Number of replicas.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Data directory (one subdirectory per replica, and their logs). Kept on exit; started
    /// again, the replicas keep their data. Default: a fresh temporary directory, removed on
    /// exit.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// First client port; replica i listens on BASE-PORT+i-1 for clients.
    #[arg(long, default_value_t = 6379)]
    base_port: u16,
    /// Password clients must AUTH with (none by default).
    #[arg(long, env = "KEYSPACE_PASSWORD", hide_env_values = true)]
    requirepass: Option<String>,
}

/// Makes the replica get SIGTERM when this process dies, however it dies (killed, or a closed
/// pipe on its output): Ctrl-C stops the replicas through [`Replicas`], but a `kill -9` of
/// this process would otherwise leave them running on their ports.
#[cfg(target_os = "linux")]
fn stop_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (prctl, getppid, kill, getpid).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the request took effect.
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGTERM);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_command: &mut Command) {}

/// Where everything of one cluster lives, and how a replica is started.
struct Layout {
    nodes: u16,
    base_port: u16,
    dir: PathBuf,
    exe: PathBuf,
    peers: String,
    key: String,
    password: Option<String>,
    /// Every replica's data directory is created by this start: the whole group is new.
    new_cluster: bool,
}

impl Layout {
    fn new(args: &ClusterArgs, dir: &Path) -> Result<Layout, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut layout = Layout {
            nodes: args.nodes,
            base_port: args.base_port,
            dir: dir.to_path_buf(),
            exe,
            peers: String::new(),
            key: format!("{:032x}", rand::random::<u128>()),
            password: args.requirepass.clone(),
            new_cluster: false,
        };
        layout.peers = (1..=args.nodes)
            .map(|i| format!("{i}=127.0.0.1:{}", layout.peer_port(i)))
            .collect::<Vec<_>>()
            .join(",");
        layout.new_cluster = (1..=args.nodes).all(|i| !layout.data_dir(i).exists());
        Ok(layout)
    }

    fn client_port(&self, id: u16) -> u16 {
        self.base_port + id - 1
    }

    fn peer_port(&self, id: u16) -> u16 {
        self.client_port(id) + PEER_PORT_OFFSET
    }

    fn client_addr(&self, id: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port(id)))
    }

    fn data_dir(&self, id: u16) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    fn log_path(&self, id: u16) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    /// The arguments of `keyspace node` for replica `id` (without --new-cluster).
    fn node_args(&self, id: u16) -> Vec<String> {
        let data = self.data_dir(id).display().to_string();
        let client_addr = format!("127.0.0.1:{}", self.client_port(id));
        ["node", "--id", &id.to_string(), "--peers", &self.peers]
            .into_iter()
            .chain(["--client-addr", &client_addr, "--data", &data])
            .map(str::to_string)
            .collect()
    }

    fn spawn(&self, id: u16) -> Result<Child, String> {
        let log_path = self.log_path(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut command = Command::new(&self.exe);
        command
            .args(self.node_args(id))
            .env("KEYSPACE_CLUSTER_KEY", &self.key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if self.new_cluster {
            command.arg("--new-cluster");
        }
        if let Some(password) = &self.password {
            command.env("KEYSPACE_PASSWORD", password);
        }
        // A process group of its own: Ctrl-C in the terminal reaches only this process, which
        // then stops the replicas, instead of killing them all at once behind its back.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        stop_with_parent(&mut command);
        command
            .spawn()
            .map_err(|e| format!("cannot start replica {id}: {e}"))
    }

    /// A shell command line that starts replica `id` again, as this process started it.
    fn restart_command(&self, id: u16) -> String {
        let key_file = shell_quote(&self.dir.join(KEY_FILE).display().to_string());
        let mut line = format!("KEYSPACE_CLUSTER_KEY=\"$(cat {key_file})\" ");
        if self.password.is_some() {
            line.push_str("KEYSPACE_PASSWORD=<this cluster's password> ");
        }
        line.push_str(&shell_quote(&self.exe.display().to_string()));
        for arg in self.node_args(id) {
            let _ = write!(line, " {}", shell_quote(&arg));
        }
        let log = shell_quote(&self.log_path(id).display().to_string());
        let _ = write!(line, " 2>>{log}");
        line
    }
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// How a process ended, in words.
fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(code) if code == i32::from(keyspace_node::EXIT_REMOVED) => {
            return format!("exited with code {code}: it was removed from the group (MEMBER REMOVE); restarting it only stops it again");
        }
        Some(code) => return format!("exited with code {code}"),
        None => {}
    }
    let Some(signal) = status.signal() else {
        return format!("ended ({status})");
    };
    let name = match signal {
        libc::SIGHUP => " (SIGHUP)",
        libc::SIGINT => " (SIGINT)",
        libc::SIGQUIT => " (SIGQUIT)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGTERM => " (SIGTERM)",
        _ => "",
    };
    format!("was killed by signal {signal}{name}")
}

/// One replica as this process sees it.
struct Replica {
    id: u16,
    /// The child process; `None` once it ended and was reaped.
    child: Option<Child>,
    /// It ended, and a process restarted outside this one answers on its client port.
    restarted_by_hand: bool,
}

impl Replica {
    fn is_up(&self) -> bool {
        self.child.is_some() || self.restarted_by_hand
    }
}

/// The replicas; dropping this stops every child still running.
struct Replicas(Vec<Replica>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in self.0.iter_mut().filter_map(|r| r.child.as_mut()) {
            // SAFETY: plain signal to a child process this one started and has not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        for child in self.0.iter_mut().filter_map(|r| r.child.as_mut()) {
            let _ = child.wait();
        }
    }
}

impl Replicas {
    fn up(&self) -> usize {
        self.0.iter().filter(|r| r.is_up()).count()
    }

    /// Reaps every child that ended and says how it ended; returns the ids of those that did.
    fn reap(&mut self, layout: &Layout) -> Vec<u16> {
        let mut ended = Vec::new();
        for index in 0..self.0.len() {
            let replica = &mut self.0[index];
            let Some(child) = replica.child.as_mut() else {
                continue;
            };
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            let pid = child.id();
            replica.child = None;
            let id = replica.id;
            ended.push(id);
            let up = self.up();
            let quorum = majority(layout.nodes as usize);
            let serving = if up >= quorum {
                "a majority: the cluster keeps serving"
            } else {
                "fewer than a majority of those this process started"
            };
            println!(
                "replica {id} (pid {pid}) {}; {up} of {} replicas run, {serving}. Its log: {}\n  to restart it: {}",
                describe_exit(status),
                layout.nodes,
                layout.log_path(id).display(),
                layout.restart_command(id)
            );
        }
        ended
    }

    /// Notices replicas restarted outside this process (they answer on their client port
    /// again) and those that stopped answering since.
    async fn probe_restarted(&mut self, layout: &Layout) {
        for replica in self.0.iter_mut().filter(|r| r.child.is_none()) {
            let addr = layout.client_addr(replica.id);
            let connect = tokio::net::TcpStream::connect(addr);
            let answers = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, connect).await,
                Ok(Ok(_))
            );
            if answers != replica.restarted_by_hand {
                replica.restarted_by_hand = answers;
                let what = if answers {
                    "answers again (restarted outside this process, which cannot stop it)"
                } else {
                    "no longer answers"
                };
                println!("replica {} on {addr} {what}", replica.id);
            }
        }
    }
}

pub fn run(args: ClusterArgs) -> Result<(), String> {
    if args.nodes == 0 || args.nodes > 9 {
        return Err("--nodes must be between 1 and 9".into());
    }
    let (dir, temporary) = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            (dir.clone(), false)
        }
        None => (fresh_temporary_dir()?, true),
    };
    let result = run_in(&args, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// A directory under the system's temporary directory that did not exist before.
fn fresh_temporary_dir() -> Result<PathBuf, String> {
    let name = format!(
        "keyspace-cluster-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn run_in(args: &ClusterArgs, dir: &Path) -> Result<(), String> {
    let layout = Layout::new(args, dir)?;
    write_key_file(&layout)?;
    println!(
        "cluster key in {} (mode 0600): a replica started by hand needs it, e.g. --cluster-key \"$(cat {})\"",
        layout.dir.join(KEY_FILE).display(),
        shell_quote(&layout.dir.join(KEY_FILE).display().to_string())
    );
    if layout.new_cluster {
        println!("new data directories: the replicas elect a master at once");
    } else {
        println!("existing data: each replica first waits out one lease, as after any restart");
    }
    let mut replicas = Replicas(Vec::new());
    for id in 1..=args.nodes {
        let child = layout.spawn(id)?;
        println!(
            "replica {id}: pid {}, clients on 127.0.0.1:{}, peers on 127.0.0.1:{}, data in {}, log in {}",
            child.id(),
            layout.client_port(id),
            layout.peer_port(id),
            layout.data_dir(id).display(),
            layout.log_path(id).display()
        );
        replicas.0.push(Replica {
            id,
            child: Some(child),
            restarted_by_hand: false,
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(watch(&layout, &mut replicas))
}

/// The peer key, readable by this user only, so that the restart command can read it.
fn write_key_file(layout: &Layout) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = layout.dir.join(KEY_FILE);
    let _ = std::fs::remove_file(&path);
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(layout.key.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Who is master, as far as this process knows.
enum Mastership {
    Known(u16),
    /// None known since this moment, for this reason ("the start", "replica 2 ended").
    Sought {
        since: Instant,
        reason: String,
        announced_wait: bool,
    },
}

impl Mastership {
    fn sought(reason: String) -> Mastership {
        Mastership::Sought {
            since: Instant::now(),
            reason,
            announced_wait: false,
        }
    }
}

/// Watches the replicas until Ctrl-C (Ok) or until no majority is left (Err).
async fn watch(layout: &Layout, replicas: &mut Replicas) -> Result<(), String> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut mastership = Mastership::sought("the start".into());
    let mut first = true;
    let mut announced_outside = false;
    loop {
        let poll = match mastership {
            Mastership::Known(..) => WATCH_POLL,
            Mastership::Sought { .. } => MASTER_POLL,
        };
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tokio::time::sleep(poll) => {}
        }
        for id in replicas.reap(layout) {
            if matches!(mastership, Mastership::Known(master) if master == id) {
                mastership = Mastership::sought(format!("replica {id} ended"));
            }
        }
        replicas.probe_restarted(layout).await;
        let up = replicas.up();
        let outside_majority = match up < majority(layout.nodes as usize) {
            true => group_view(layout, replicas)
                .await
                .filter(GroupView::has_majority),
            false => None,
        };
        if up < majority(layout.nodes as usize) && outside_majority.is_none() {
            return Err(format!(
                "no majority left: {up} of {} replicas run, so the cluster cannot serve; stopping",
                layout.nodes
            ));
        }
        announce_outside_majority(outside_majority.as_ref(), &mut announced_outside);
        if seek_master(layout, replicas, &mut mastership, first).await {
            first = false;
        }
    }
    let running = replicas.0.iter().filter(|r| r.child.is_some()).count();
    println!("stopping {running} of {} replicas", layout.nodes);
    for replica in replicas.0.iter().filter(|r| r.restarted_by_hand) {
        println!(
            "replica {} was restarted outside this process: stop it there",
            replica.id
        );
    }
    Ok(())
}

/// Looks for the master while none is known and announces it; true when it found one.
async fn seek_master(
    layout: &Layout,
    replicas: &Replicas,
    mastership: &mut Mastership,
    first: bool,
) -> bool {
    let Mastership::Sought {
        since,
        reason,
        announced_wait,
    } = mastership
    else {
        return false;
    };
    let Some((id, addr)) = find_master(layout, replicas).await else {
        if since.elapsed() > MASTER_WAIT && !*announced_wait {
            println!(
                "no master yet after {} s; see the logs",
                MASTER_WAIT.as_secs()
            );
            *announced_wait = true;
        }
        return false;
    };
    println!(
        "master: replica {id} ({addr}), elected {:.2} s after {reason}",
        since.elapsed().as_secs_f64()
    );
    if first {
        println!(
            "Any replica accepts any command: try `redis-cli -p {}`. Ctrl-C stops the cluster; `kill -9` of a replica's pid shows another take over.",
            layout.base_port
        );
    }
    *mastership = Mastership::Known(id);
    true
}

/// The replica that says it is the master, if one does: one this process started, or else a
/// voter added outside it (a replacement joined with `keyspace node --join`).
async fn find_master(layout: &Layout, replicas: &Replicas) -> Option<(u16, SocketAddr)> {
    let started = replicas.0.iter().filter(|r| r.is_up());
    let mut candidates: Vec<(u16, SocketAddr)> =
        started.map(|r| (r.id, layout.client_addr(r.id))).collect();
    if let Some(view) = group_view(layout, replicas).await {
        let outside = view.voters.iter().filter(|v| v.id > layout.nodes);
        candidates.extend(outside.filter_map(|v| Some((v.id, v.client_addr?))));
    }
    for (id, addr) in candidates {
        let probe =
            tokio::time::timeout(PROBE_TIMEOUT, is_master(addr, layout.password.as_deref()));
        if let Ok(true) = probe.await {
            return Some((id, addr));
        }
    }
    None
}

/// One voter of the group, as a running replica's `MEMBER LIST` shows it.
struct Voter {
    id: u16,
    /// The replica answering, or one it has a link to.
    connected: bool,
    /// `None` where the group does not know it (founders are given no client address).
    client_addr: Option<SocketAddr>,
}

/// The voters of the group as one running replica applied them: members added or removed
/// outside this process (`keyspace node --join`, `keyspace member remove`) included.
struct GroupView {
    voters: Vec<Voter>,
}

impl GroupView {
    /// Whether a majority of the voters runs, as far as the replica asked can tell.
    fn has_majority(&self) -> bool {
        let connected = self.voters.iter().filter(|v| v.connected).count();
        !self.voters.is_empty() && connected >= majority(self.voters.len())
    }

    fn from_rows(rows: &[std::collections::BTreeMap<String, String>]) -> GroupView {
        let voting = |row: &std::collections::BTreeMap<String, String>| {
            matches!(
                row.get("kind").map(String::as_str),
                Some("voter" | "witness")
            )
        };
        let voter = |row: &std::collections::BTreeMap<String, String>| {
            Some(Voter {
                id: row.get("id")?.parse().ok()?,
                connected: matches!(
                    row.get("connected").map(String::as_str),
                    Some("yes" | "self")
                ),
                client_addr: row.get("client_addr").and_then(|a| a.parse().ok()),
            })
        };
        GroupView {
            voters: rows
                .iter()
                .filter(|r| voting(r))
                .filter_map(voter)
                .collect(),
        }
    }
}

/// The group's voters, from the first running replica this process started that answers
/// `MEMBER LIST`.
async fn group_view(layout: &Layout, replicas: &Replicas) -> Option<GroupView> {
    for replica in replicas.0.iter().filter(|r| r.is_up()) {
        let group = crate::join::Group {
            addrs: vec![layout.client_addr(replica.id)],
            password: layout.password.clone(),
        };
        let ask = tokio::time::timeout(PROBE_TIMEOUT, group.call(&[b"MEMBER", b"LIST"]));
        let Ok(Ok(answer)) = ask.await else {
            continue;
        };
        if let Ok(rows) = crate::join::rows(answer, "MEMBER LIST") {
            let mut view = GroupView::from_rows(&rows);
            // This process knows best whether the replicas it started run (a replica's link
            // to one just killed may not have noticed yet).
            for voter in view.voters.iter_mut() {
                if let Some(started) = replicas.0.iter().find(|r| r.id == voter.id) {
                    voter.connected = started.is_up();
                }
            }
            return Some(view);
        }
    }
    None
}

/// Says once, when it first happens, that the group serves on a majority that counts voters
/// this process did not start.
fn announce_outside_majority(view: Option<&GroupView>, announced: &mut bool) {
    let Some(view) = view else {
        *announced = false;
        return;
    };
    if *announced {
        return;
    }
    *announced = true;
    let running: Vec<String> = view
        .voters
        .iter()
        .filter(|v| v.connected)
        .map(|v| v.id.to_string())
        .collect();
    println!(
        "fewer than a majority of the replicas this process started run, but the group's voters {} of {} do (replicas joined outside this process count): the cluster keeps serving",
        running.join(", "),
        view.voters.len()
    );
}

/// Whether the replica at `addr` says it is the master.
async fn is_master(addr: SocketAddr, password: Option<&str>) -> bool {
    let Ok(mut client) = Client::connect(addr).await else {
        return false;
    };
    if let Some(password) = password {
        let _ = client.call(&[b"AUTH", password.as_bytes()]).await;
    }
    let Ok(info) = client.call(&[b"INFO", b"replication"]).await else {
        return false;
    };
    info_field(&info, "keyspace_role").as_deref() == Some("master")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(lines: &[&str]) -> GroupView {
        let rows: Vec<std::collections::BTreeMap<String, String>> = lines
            .iter()
            .map(|line| {
                let pairs = line.split(' ').filter_map(|w| w.split_once('='));
                pairs.map(|(k, v)| (k.to_string(), v.to_string())).collect()
            })
            .collect();
        GroupView::from_rows(&rows)
    }

    #[test]
    fn a_majority_counts_connected_voters_and_witnesses_but_not_learners() {
        let group = view(&[
            "id=1 kind=voter connected=no client_addr=-",
            "id=3 kind=voter connected=self client_addr=-",
            "id=4 kind=witness connected=yes client_addr=127.0.0.1:6382",
            "id=5 kind=learner connected=yes client_addr=127.0.0.1:6383",
        ]);
        assert_eq!(group.voters.len(), 3);
        assert!(group.has_majority());
        assert_eq!(
            group.voters[2].client_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 6382)))
        );
        let lost = view(&[
            "id=1 kind=voter connected=no",
            "id=3 kind=voter connected=self",
            "id=4 kind=voter connected=no",
            "id=5 kind=witness-learner connected=yes",
        ]);
        assert!(!lost.has_majority());
        assert!(!view(&[]).has_majority());
    }
}
