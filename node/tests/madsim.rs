//! The node shell's real async code as simulated nodes under madsim: three replicas and a
//! client node on a simulated network, with replicas killed and restarted, partitioned (clog)
//! and healed, and network latency drawn from the seed. The client history is judged by the
//! checker. Build and run with `RUSTFLAGS="--cfg madsim"`; `KEYSPACE_MADSIM_SEEDS` sets how
//! many seeds (default 24) and `KEYSPACE_MADSIM_SEED` runs one.
#![cfg(madsim)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyspace_checker::{check_kv, CheckOptions, CheckResult, Recorder};
use keyspace_core::{Command, CommandError, NodeId, Reply};
use keyspace_node::resp_client::{Client, Value};
use keyspace_node::{run_node, NodeConfig};
use madsim::net::NetSim;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::{Handle, NodeHandle, Runtime};
use madsim::time::{sleep, Instant};

const NODES: u16 = 3;
const CLIENTS: u64 = 3;
const KEYS: u64 = 3;
const FAULT_STEPS: usize = 6;
/// Simulated time the healed cluster gets to serve every client again.
const HEAL_PROGRESS_MAX: Duration = Duration::from_secs(20);
/// Bound on a seed's simulated time.
const SIMULATED_TIME_MAX: Duration = Duration::from_secs(300);

fn replica_ip(id: NodeId) -> IpAddr {
    IpAddr::from([10, 0, 0, id as u8])
}

fn config(id: NodeId, dir: &PathBuf) -> NodeConfig {
    let peers: BTreeMap<NodeId, SocketAddr> = (1..=NODES)
        .map(|i| (i, SocketAddr::new(replica_ip(i), 7000)))
        .collect();
    NodeConfig {
        id,
        peers,
        client_addr: SocketAddr::new(replica_ip(id), 6379),
        data_dir: dir.join(format!("node-{id}")),
        cluster_key: "madsim-key".into(),
        password: None,
        lease_ms: 1000,
        max_log_bytes: None,
    }
}

struct History {
    recorder: Mutex<Recorder>,
    start: Instant,
    acked: Mutex<u64>,
}

impl History {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

async fn client_loop(client: u64, history: Arc<History>, ops: u64) {
    let mut conn: Option<Client> = None;
    let mut target = client as u16;
    for op in 0..ops {
        if conn.is_none() {
            target = target % NODES + 1;
            let addr = SocketAddr::new(replica_ip(target), 6379);
            match madsim::time::timeout(Duration::from_secs(2), Client::connect(addr)).await {
                Ok(Ok(c)) => conn = Some(c),
                _ => {
                    sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let key = format!("k{}", thread_rng().gen_range(0..KEYS)).into_bytes();
        let (command, args): (Command, Vec<Vec<u8>>) = match thread_rng().gen_range(0..3) {
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
        let id = history
            .recorder
            .lock()
            .unwrap()
            .invoke(client, history.now_ns(), command);
        let arg_refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let result = madsim::time::timeout(
            Duration::from_secs(15),
            conn.as_mut().unwrap().call(&arg_refs),
        )
        .await;
        let now = history.now_ns();
        let reply = match result {
            Ok(Ok(Value::Simple(s))) if s == "OK" => Some(Reply::Ok),
            Ok(Ok(Value::Int(n))) => Some(Reply::Int(n)),
            Ok(Ok(Value::Bulk(v))) => Some(Reply::Value(Some(v))),
            Ok(Ok(Value::Null)) => Some(Reply::Value(None)),
            Ok(Ok(Value::Error(e))) if e.contains("not an integer") => {
                Some(Reply::Error(CommandError::NotAnInteger))
            }
            Ok(Ok(_)) => None,
            _ => {
                conn = None;
                None
            }
        };
        let mut recorder = history.recorder.lock().unwrap();
        match reply {
            Some(reply) => {
                recorder.ok(id, now, reply);
                *history.acked.lock().unwrap() += 1;
            }
            None if !is_write => recorder.fail(id, now),
            None => recorder.unknown(id),
        }
    }
}

async fn faults(handle: &Handle, replicas: &[NodeHandle]) {
    let net = NetSim::current();
    for step in 0..FAULT_STEPS {
        sleep(Duration::from_millis(thread_rng().gen_range(300..2000))).await;
        let victim = &replicas[thread_rng().gen_range(0..replicas.len())];
        let hold = Duration::from_millis(thread_rng().gen_range(200..3000));
        match thread_rng().gen_range(0..3) {
            0 => {
                tracing::info!(step, node = ?victim.id(), ?hold, "kill and restart");
                handle.kill(victim.id());
                sleep(hold).await;
                handle.restart(victim.id());
            }
            1 => {
                tracing::info!(step, node = ?victim.id(), ?hold, "isolate");
                net.clog_node(victim.id());
                sleep(hold).await;
                net.unclog_node(victim.id());
            }
            _ => {
                let other = &replicas[thread_rng().gen_range(0..replicas.len())];
                tracing::info!(step, from = ?victim.id(), to = ?other.id(), ?hold, "one-way link cut");
                if other.id() != victim.id() {
                    net.clog_link(victim.id(), other.id());
                    sleep(hold).await;
                    net.unclog_link(victim.id(), other.id());
                }
            }
        }
    }
}

fn run_seed(seed: u64) {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let dir = std::env::temp_dir().join(format!("keyspace-madsim-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.set_time_limit(SIMULATED_TIME_MAX);
    let history = runtime.block_on({
        let dir = dir.clone();
        async move {
            let handle = Handle::current();
            let replicas: Vec<NodeHandle> = (1..=NODES)
                .map(|id| {
                    let config = config(id, &dir);
                    handle
                        .create_node()
                        .name(format!("replica-{id}"))
                        .ip(replica_ip(id))
                        .init(move || {
                            let config = config.clone();
                            async move { run_node(config).await.expect("node starts") }
                        })
                        .build()
                })
                .collect();
            let history = Arc::new(History {
                recorder: Mutex::new(Recorder::new()),
                start: Instant::now(),
                acked: Mutex::new(0),
            });
            let client_node = handle
                .create_node()
                .name("clients")
                .ip(IpAddr::from([10, 0, 1, 1]))
                .build();
            let workload = {
                let history = history.clone();
                client_node.spawn(async move {
                    let tasks: Vec<_> = (0..CLIENTS)
                        .map(|c| madsim::task::spawn(client_loop(c, history.clone(), 60)))
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                })
            };
            faults(&handle, &replicas).await;
            // Healed: every client must now finish its operations within the bound.
            let healed_at = Instant::now();
            madsim::time::timeout(HEAL_PROGRESS_MAX * 3, workload)
                .await
                .expect("the healed cluster serves the clients")
                .unwrap();
            let acked_before = *history.acked.lock().unwrap();
            let probe = client_node.spawn({
                let history = history.clone();
                async move { client_loop(CLIENTS, history, 5).await }
            });
            madsim::time::timeout(HEAL_PROGRESS_MAX, probe)
                .await
                .expect("progress after healing")
                .unwrap();
            assert!(
                *history.acked.lock().unwrap() > acked_before,
                "no operation succeeded within {HEAL_PROGRESS_MAX:?} of healing (healed at {:?})",
                healed_at.duration_since(history.start)
            );
            history
        }
    });
    let recorder = history.recorder.lock().unwrap();
    let options = CheckOptions {
        timeout: Some(Duration::from_secs(60)),
        threads: 1,
        ..CheckOptions::default()
    };
    let verdict = check_kv(&recorder.history(), &options);
    let _ = std::fs::remove_dir_all(&dir);
    match verdict {
        CheckResult::Linearizable => {}
        CheckResult::Unknown(reason) => eprintln!("seed {seed}: checker undecided: {reason}"),
        violation => {
            let path = std::env::temp_dir().join(format!("keyspace-madsim-{seed}.jsonl"));
            recorder
                .write_jsonl(&mut std::fs::File::create(&path).unwrap())
                .unwrap();
            panic!(
                "seed {seed}: history not linearizable ({}): {violation:?}",
                path.display()
            );
        }
    }
    eprintln!("seed {seed}: {} operations, linearizable", recorder.len());
}

#[test]
fn node_shell_survives_kills_restarts_and_partitions_with_a_linearizable_history() {
    let seeds: Vec<u64> = match std::env::var("KEYSPACE_MADSIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("KEYSPACE_MADSIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("KEYSPACE_MADSIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(24);
            (1..=count).collect()
        }
    };
    for seed in seeds {
        eprintln!("seed {seed}: reproduce with KEYSPACE_MADSIM_SEED={seed}");
        run_seed(seed);
    }
}
