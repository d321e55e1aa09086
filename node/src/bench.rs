//! `keyspace bench`: a closed-loop load generator for any Redis-protocol server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyspace_node::resp_client::{Client, Value};

/// Keys are drawn from this many.
const KEYSPACE_KEYS: u64 = 100_000;
/// Most clients a run may start.
const CLIENTS_MAX: usize = 10_000;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Server to load (any replica; non-masters forward).
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    /// Concurrent connections, each with one request outstanding.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Requests per operation, across all clients.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Value size in bytes for SET.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Operations to run, one after another: set, get.
    #[arg(long, default_value = "set,get", value_delimiter = ',')]
    ops: Vec<String>,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
}

pub fn run(args: BenchArgs) -> Result<(), String> {
    let addr = keyspace_node::peer::parse_addr(&args.addr)?;
    if args.clients == 0 || args.clients > CLIENTS_MAX {
        return Err(format!("--clients must be between 1 and {CLIENTS_MAX}"));
    }
    for op in &args.ops {
        if op != "set" && op != "get" {
            return Err(format!("unknown op '{op}': use set or get"));
        }
    }
    // One thread, like redis-benchmark: on a machine the replicas share, a multi-threaded load
    // generator takes their cores and measures itself.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    for op in &args.ops {
        let report = runtime.block_on(run_op(addr, &args, op))?;
        println!("{report}");
    }
    Ok(())
}

async fn run_op(addr: SocketAddr, args: &BenchArgs, op: &str) -> Result<String, String> {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let bar = indicatif::ProgressBar::new(args.requests);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>4} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    bar.set_prefix(op.to_uppercase());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_s);
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let share = args.requests / args.clients as u64
            + u64::from((c as u64) < args.requests % args.clients as u64);
        let (done, errors, op) = (done.clone(), errors.clone(), op.to_string());
        let value = vec![b'x'; args.value_size];
        tasks.push(tokio::spawn(async move {
            client_loop(addr, c as u64, share, &op, &value, deadline, &done, &errors).await
        }));
    }
    let ticker = {
        let (done, bar) = (done.clone(), bar.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                bar.set_position(done.load(Ordering::Relaxed));
            }
        })
    };
    let mut latencies = Vec::with_capacity(args.requests as usize);
    for task in tasks {
        latencies.extend(task.await.map_err(|e| e.to_string())??);
    }
    ticker.abort();
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(i).map_or(0.0, |ns| *ns as f64 / 1e6)
    };
    Ok(format!(
        "{:>4}: {} requests, {} clients, {} B values: {:.0} ops/s, latency p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms, errors {}",
        op.to_uppercase(),
        latencies.len(),
        args.clients,
        args.value_size,
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        errors.load(Ordering::Relaxed),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn client_loop(
    addr: SocketAddr,
    client: u64,
    requests: u64,
    op: &str,
    value: &[u8],
    deadline: Instant,
    done: &AtomicU64,
    errors: &AtomicU64,
) -> Result<Vec<u64>, String> {
    let mut conn = Client::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let mut latencies = Vec::with_capacity(requests as usize);
    let mut state = client.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for _ in 0..requests {
        if Instant::now() > deadline {
            return Err("benchmark timed out".into());
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = format!("key:{:012}", state % KEYSPACE_KEYS);
        let t = Instant::now();
        let reply = if op == "set" {
            conn.call(&[b"SET", key.as_bytes(), value]).await
        } else {
            conn.call(&[b"GET", key.as_bytes()]).await
        };
        let reply = reply.map_err(|e| format!("connection to {addr} failed: {e}"))?;
        latencies.push(t.elapsed().as_nanos() as u64);
        if matches!(reply, Value::Error(_)) {
            errors.fetch_add(1, Ordering::Relaxed);
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(latencies)
}
