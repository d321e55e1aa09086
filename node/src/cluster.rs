//! `keyspace cluster`: a local cluster of replicas as child processes, for trying keyspace out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyspace_node::resp_client::{info_field, Client};

/// Peer ports sit this far above client ports.
const PEER_PORT_OFFSET: u16 = 1000;
/// How long to wait for the first master before saying so.
const MASTER_WAIT: Duration = Duration::from_secs(20);

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// Number of replicas.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Data directory (one subdirectory per replica). Default: a fresh temporary directory,
    /// removed on exit.
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
/// pipe on its output): Ctrl-C stops the replicas through [`Children`], but a `kill -9` of
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

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // SAFETY: plain signal to a child process this one started and has not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

pub fn run(args: ClusterArgs) -> Result<(), String> {
    if args.nodes == 0 || args.nodes > 9 {
        return Err("--nodes must be between 1 and 9".into());
    }
    let temporary = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("keyspace-cluster-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = run_in(&args, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(args: &ClusterArgs, dir: &std::path::Path) -> Result<(), String> {
    let client_port = |i: u16| args.base_port + i - 1;
    let peers: Vec<String> = (1..=args.nodes)
        .map(|i| format!("{i}=127.0.0.1:{}", client_port(i) + PEER_PORT_OFFSET))
        .collect();
    let peers = peers.join(",");
    let key = format!("{:032x}", rand::random::<u128>());
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut children = Children(Vec::new());
    for i in 1..=args.nodes {
        let data = dir.join(format!("node-{i}"));
        let log_path = dir.join(format!("node-{i}.log"));
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut command = Command::new(&exe);
        command
            .args(["node", "--id", &i.to_string(), "--peers", &peers])
            .args(["--client-addr", &format!("127.0.0.1:{}", client_port(i))])
            .arg("--data")
            .arg(&data)
            .env("KEYSPACE_CLUSTER_KEY", &key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(password) = &args.requirepass {
            command.env("KEYSPACE_PASSWORD", password);
        }
        stop_with_parent(&mut command);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start replica {i}: {e}"))?;
        println!(
            "replica {i}: clients on 127.0.0.1:{}, peers on 127.0.0.1:{}, data in {}, log in {}",
            client_port(i),
            client_port(i) + PEER_PORT_OFFSET,
            data.display(),
            log_path.display()
        );
        children.0.push(child);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(watch(args, &mut children))
}

async fn watch(args: &ClusterArgs, children: &mut Children) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = (1..=args.nodes)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], args.base_port + i - 1)))
        .collect();
    let started = Instant::now();
    let master = loop {
        if let Some(master) = find_master(&addrs, args.requirepass.as_deref()).await {
            break Some(master);
        }
        check_children(children)?;
        if started.elapsed() > MASTER_WAIT {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    match master {
        Some((id, addr)) => println!(
            "master: replica {id} (127.0.0.1:{}), elected in {:.1} s. Any replica accepts any command: try `redis-cli -p {}`",
            addr.port(),
            started.elapsed().as_secs_f64(),
            args.base_port
        ),
        None => println!("no master yet after {} s; see the logs", MASTER_WAIT.as_secs()),
    }
    println!("press Ctrl-C to stop the cluster");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => check_children(children)?,
        }
    }
    println!("stopping {} replicas", children.0.len());
    Ok(())
}

fn check_children(children: &mut Children) -> Result<(), String> {
    for (i, child) in children.0.iter_mut().enumerate() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("replica {} exited ({status}); see its log", i + 1));
        }
    }
    Ok(())
}

async fn find_master(addrs: &[SocketAddr], password: Option<&str>) -> Option<(String, SocketAddr)> {
    for addr in addrs {
        let Ok(mut client) = Client::connect(*addr).await else {
            continue;
        };
        if let Some(password) = password {
            let _ = client.call(&[b"AUTH", password.as_bytes()]).await;
        }
        let Ok(info) = client.call(&[b"INFO", b"replication"]).await else {
            continue;
        };
        if info_field(&info, "keyspace_role").as_deref() == Some("master") {
            return Some((info_field(&info, "node_id")?, *addr));
        }
    }
    None
}
