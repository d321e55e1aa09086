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
/// Most requests one client may send in one write.
const PIPELINE_MAX: usize = 1_000;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Server to load (any replica; non-masters forward).
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    /// Concurrent connections, each with one request (or one pipeline) outstanding.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Requests each client sends in one write before it reads their replies (like
    /// redis-benchmark's -P); each request's latency is its pipeline's.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
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
    if args.pipeline == 0 || args.pipeline > PIPELINE_MAX {
        return Err(format!("--pipeline must be between 1 and {PIPELINE_MAX}"));
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
        let pipeline = args.pipeline;
        tasks.push(tokio::spawn(async move {
            let work = Work {
                requests: share,
                pipeline,
                op: &op,
                value: &value,
            };
            client_loop(addr, c as u64, work, deadline, &done, &errors).await
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
        "{:>4}: {} requests, {} clients, pipeline {}, {} B values: {:.0} ops/s, latency p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms, errors {}",
        op.to_uppercase(),
        latencies.len(),
        args.clients,
        args.pipeline,
        args.value_size,
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        errors.load(Ordering::Relaxed),
    ))
}

/// What one client sends.
struct Work<'a> {
    requests: u64,
    pipeline: usize,
    op: &'a str,
    value: &'a [u8],
}

async fn client_loop(
    addr: SocketAddr,
    client: u64,
    work: Work<'_>,
    deadline: Instant,
    done: &AtomicU64,
    errors: &AtomicU64,
) -> Result<Vec<u64>, String> {
    let mut conn = Client::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let mut latencies = Vec::with_capacity(work.requests as usize);
    let mut state = client.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut left = work.requests;
    while left > 0 {
        if Instant::now() > deadline {
            return Err("benchmark timed out".into());
        }
        let batch = left.min(work.pipeline as u64);
        left -= batch;
        let keys: Vec<String> = (0..batch)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("key:{:012}", state % KEYSPACE_KEYS)
            })
            .collect();
        let args: Vec<Vec<&[u8]>> = keys
            .iter()
            .map(|key| match work.op {
                "set" => vec![b"SET".as_slice(), key.as_bytes(), work.value],
                _ => vec![b"GET".as_slice(), key.as_bytes()],
            })
            .collect();
        let commands: Vec<&[&[u8]]> = args.iter().map(Vec::as_slice).collect();
        let t = Instant::now();
        let replies = conn
            .pipeline(&commands)
            .await
            .map_err(|e| format!("connection to {addr} failed: {e}"))?;
        let took = t.elapsed().as_nanos() as u64;
        latencies.extend(std::iter::repeat_n(took, replies.len()));
        let failed = replies
            .iter()
            .filter(|r| matches!(r, Value::Error(_)))
            .count();
        errors.fetch_add(failed as u64, Ordering::Relaxed);
        done.fetch_add(batch, Ordering::Relaxed);
    }
    Ok(latencies)
}
