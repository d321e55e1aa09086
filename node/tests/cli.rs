//! The `keyspace` command line a newcomer meets first.

use std::process::Command;

fn keyspace(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_keyspace"))
        .args(args)
        .output()
        .expect("run keyspace");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn help_names_every_subcommand_and_the_quick_start() {
    let (ok, text) = keyspace(&["--help"]);
    assert!(ok, "{text}");
    for word in ["node", "cluster", "bench", "redis-cli -p 6379"] {
        assert!(text.contains(word), "help lacks {word}:\n{text}");
    }
    let (ok, text) = keyspace(&["node", "--help"]);
    assert!(
        ok && text.contains("--peers") && text.contains("--data"),
        "{text}"
    );
}

#[test]
fn a_bad_peer_list_is_refused_with_a_reason() {
    let (ok, text) = keyspace(&[
        "node",
        "--id",
        "1",
        "--peers",
        "1=nonsense",
        "--data",
        "/nonexistent",
    ]);
    assert!(!ok);
    assert!(text.contains("--peers"), "{text}");
}

#[test]
fn bench_refuses_a_pipeline_out_of_range_before_connecting() {
    for pipeline in ["0", "1001"] {
        let (ok, text) = keyspace(&["bench", "--addr", "127.0.0.1:1", "--pipeline", pipeline]);
        assert!(!ok);
        assert!(
            text.contains("--pipeline must be between 1 and 1000"),
            "{text}"
        );
    }
}

/// Processes whose parent is `parent`, from /proc.
#[cfg(target_os = "linux")]
fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: the command name may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

#[cfg(target_os = "linux")]
#[test]
fn replicas_of_a_local_cluster_stop_when_the_cluster_process_is_killed() {
    use std::time::{Duration, Instant};
    // A base port whose client ports and peer ports (+1000) are all free, below Linux's default
    // ephemeral range (32768 up) so that no outgoing connection takes one before the replica binds.
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let start = 10_000 + (std::process::id() % 18_000) as u16;
    let port = (start..start + 2_000)
        .step_by(7)
        .find(|p| (0..3).all(|i| free(p + i) && free(p + 1000 + i)))
        .expect("free ports");
    let dir = std::env::temp_dir().join(format!("keyspace-cli-cluster-{}", std::process::id()));
    let mut cluster = Command::new(env!("CARGO_BIN_EXE_keyspace"))
        .args(["cluster", "--nodes", "3", "--base-port", &port.to_string()])
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the cluster");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut replicas = Vec::new();
    while replicas.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        replicas = children_of(cluster.id());
    }
    assert_eq!(replicas.len(), 3, "three replicas started");
    cluster.kill().unwrap(); // SIGKILL: no chance to stop them itself
    cluster.wait().unwrap();
    // Gone, or a zombie waiting to be reaped by whoever inherited it.
    let alive = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while replicas.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<&u32> = replicas.iter().filter(|p| alive(p)).collect();
    for pid in &left {
        // SAFETY: plain signal to a process this test started (through the cluster).
        unsafe { libc::kill(**pid as libc::pid_t, libc::SIGKILL) };
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(left.is_empty(), "replicas still running: {left:?}");
}
