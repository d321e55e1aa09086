//! `keyspace`: run a replica, a local cluster, or a benchmark.

#[cfg(not(madsim))]
mod bench;
#[cfg(not(madsim))]
mod cluster;

/// mimalloc: the node allocates per request (keys, values, replies), and mimalloc costs less
/// CPU per request than the system allocator (docs/benchmarks.md).
#[cfg(not(madsim))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
mod cli {
    use std::path::PathBuf;
    use std::process::ExitCode;

    use clap::{Parser, Subcommand};
    use keyspace_node::{peer, run_node, shell, NodeConfig};

    /// keyspace: a strongly consistent, replicated key-value store that speaks the Redis protocol.
    ///
    /// Quick start: `keyspace cluster` starts three replicas on this machine; then talk to any of
    /// them with `redis-cli -p 6379`.
    #[derive(Parser)]
    #[command(version, about, long_about)]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Subcommand)]
    enum Sub {
        /// Run one replica of a cluster.
        ///
        /// Example (three terminals, one per replica):
        ///   keyspace node --id 1 --peers 1=7001,2=7002,3=7003 --client-addr 6379 --data /tmp/ks1
        ///   keyspace node --id 2 --peers 1=7001,2=7002,3=7003 --client-addr 6380 --data /tmp/ks2
        ///   keyspace node --id 3 --peers 1=7001,2=7002,3=7003 --client-addr 6381 --data /tmp/ks3
        #[command(verbatim_doc_comment)]
        Node(NodeArgs),
        /// Start a local cluster of N replicas as child processes; Ctrl-C stops them all.
        ///
        /// Client ports are BASE-PORT, BASE-PORT+1, …; peer ports are BASE-PORT+1000, …
        /// It prints each replica's pid and the master once one is elected. A replica that dies
        /// (try `kill -9` of the master's pid) is reported, with how it ended and the command
        /// that restarts it, and the others keep serving: another replica takes over within
        /// one lease duration plus an election. The cluster stops by itself only when no majority of the
        /// replicas is left. In new data directories the replicas elect a master at once; with
        /// existing data (--dir) each first waits out one lease, as after any restart.
        Cluster(crate::cluster::ClusterArgs),
        /// Load generator: concurrent clients doing SET/GET, then ops/s and latency percentiles.
        Bench(crate::bench::BenchArgs),
    }

    #[derive(clap::Args)]
    struct NodeArgs {
        /// This replica's id (1, 2, …); must appear in --peers.
        #[arg(long)]
        id: u16,
        /// Every replica's peer address, this one's included: ID=HOST:PORT,… (HOST defaults to 127.0.0.1).
        #[arg(long)]
        peers: String,
        /// Where Redis clients connect: HOST:PORT or PORT.
        #[arg(long, default_value = "127.0.0.1:6379")]
        client_addr: String,
        /// Directory for this replica's log (created if missing).
        #[arg(long)]
        data: PathBuf,
        /// Secret every replica of the cluster shares; a peer without it is refused.
        #[arg(
            long,
            env = "KEYSPACE_CLUSTER_KEY",
            default_value = "keyspace-insecure-default-key",
            hide_env_values = true
        )]
        cluster_key: String,
        /// Password clients must give with AUTH (none by default).
        #[arg(long, env = "KEYSPACE_PASSWORD", hide_env_values = true)]
        requirepass: Option<String>,
        /// Master lease duration in milliseconds: how long a failover can take at most.
        #[arg(long, default_value_t = 2000)]
        lease_ms: u64,
        /// Most bytes the log may take on disk (default: no limit but the device's). A write
        /// that would need more stops the replica with an error naming the file, before it is
        /// acknowledged.
        #[arg(long)]
        max_log_bytes: Option<u64>,
        /// Take a snapshot of the state every this many log slots; the log before it is then
        /// dropped. Replicas take theirs at staggered slots, so only one at a time is busy.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        snapshot_interval_slots: u64,
        /// A log sync of a turn that answered clients runs on a blocking thread, so the
        /// replies go out meanwhile, while recent syncs average this many microseconds
        /// or more; 0, the default, sends every such sync there. Quicker syncs stay on
        /// the event loop, which saves two thread hand-offs each.
        #[arg(long, default_value_t = shell::SYNC_INLINE_MAX_US)]
        sync_inline_max_us: u64,
        /// Every replica of the cluster is starting for the first time (like etcd's
        /// `--initial-cluster-state new`): this one then takes part in electing a master at once,
        /// instead of first waiting one lease (--lease-ms), the wait that covers a lease it may
        /// have granted before a restart. Honoured only when this start creates the --data
        /// directory; with an existing one it is ignored (and logged). Never give it to a
        /// replica whose data was lost or wiped while the others ran.
        #[arg(long)]
        new_cluster: bool,
    }

    pub fn main() -> ExitCode {
        let cli = Cli::parse();
        init_logging();
        let result = match cli.command {
            Sub::Node(args) => node(args),
            Sub::Cluster(args) => crate::cluster::run(args),
            Sub::Bench(args) => crate::bench::run(args),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        }
    }

    fn init_logging() {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::fmt()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }

    fn node(args: NodeArgs) -> Result<(), String> {
        let peers = peer::parse_peers(&args.peers).map_err(|e| format!("--peers: {e}"))?;
        let client_addr =
            peer::parse_addr(&args.client_addr).map_err(|e| format!("--client-addr: {e}"))?;
        if args.cluster_key == "keyspace-insecure-default-key" {
            tracing::warn!("using the default cluster key: set --cluster-key or KEYSPACE_CLUSTER_KEY outside a test machine");
        }
        let config = NodeConfig {
            id: args.id,
            peers,
            client_addr,
            data_dir: args.data,
            cluster_key: args.cluster_key,
            password: args.requirepass,
            lease_ms: args.lease_ms,
            max_log_bytes: args.max_log_bytes,
            snapshot_interval_slots: args.snapshot_interval_slots,
            sync_inline_max_us: args.sync_inline_max_us,
            new_cluster: args.new_cluster,
        };
        // One thread runs the event loop, connections, peers and log syncs (no cross-thread
        // wake-ups, which cost most when replicas share few cores).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        runtime
            .block_on(run_node(config))
            .map_err(|e| e.to_string())
    }
}
