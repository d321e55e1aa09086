//! `keyspace`: run a replica, a local cluster, or a benchmark.

#[cfg(not(madsim))]
mod bench;
#[cfg(not(madsim))]
mod cluster;
#[cfg(not(madsim))]
mod join;
#[cfg(not(madsim))]
mod member;

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
    use keyspace_node::{peer, run_node, shell, NodeConfig, NodeError, EXIT_REMOVED};

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
        /// Restart (the data directory remembers the group): keyspace node --id 1 --client-addr 6379 --data /tmp/ks1
        /// A new replica: keyspace node --id 4 --join 6379 --peer-addr 7004 --client-addr 6382 --data /tmp/ks4 --promote
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
        /// Change or list the group's members through any replica: list, add, promote, remove.
        ///
        /// Example: keyspace member add 4 127.0.0.1:7004 127.0.0.1:6382 --addr 6379
        ///          keyspace member promote 4 --addr 6379
        #[command(verbatim_doc_comment)]
        Member(crate::member::MemberArgs),
    }

    #[derive(clap::Args)]
    struct NodeArgs {
        /// This replica's id (1, 2, …): a founder's is in --peers, a joiner's is new.
        #[arg(long)]
        id: u16,
        /// The founding replicas' peer addresses, this one's included: ID=HOST:PORT,… (HOST
        /// defaults to 127.0.0.1). Needed at a founder's first start only: the data directory
        /// keeps them; given later, they must agree with it.
        #[arg(long, conflicts_with = "join")]
        peers: Option<String>,
        /// Join a running group: any member's client address. This replica asks to be added
        /// as a learner (or --witness), catches up, and with --promote becomes a voter.
        #[arg(long, requires = "peer_addr")]
        join: Option<String>,
        /// This replica's peer address (a joiner's; a founder's is its entry in --peers).
        #[arg(long)]
        peer_addr: Option<String>,
        /// With --join: ask to be added as a witness (keeps the log, not the state).
        #[arg(long, requires = "join")]
        witness: bool,
        /// With --join: become a voter once caught up (MEMBER PROMOTE, retried until done).
        #[arg(long, requires = "join")]
        promote: bool,
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
            Sub::Member(args) => crate::member::run(args),
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
        let peers = match &args.peers {
            Some(text) => peer::parse_peers(text).map_err(|e| format!("--peers: {e}"))?,
            None => Default::default(),
        };
        let peer_addr = args.peer_addr.as_deref().map(peer::parse_addr);
        let peer_addr = peer_addr
            .transpose()
            .map_err(|e| format!("--peer-addr: {e}"))?;
        let client_addr =
            peer::parse_addr(&args.client_addr).map_err(|e| format!("--client-addr: {e}"))?;
        if args.cluster_key == "keyspace-insecure-default-key" {
            tracing::warn!("using the default cluster key: set --cluster-key or KEYSPACE_CLUSTER_KEY outside a test machine");
        }
        let join = match &args.join {
            Some(join) => Some(crate::join::parse_join(join)?),
            None => None,
        };
        let join_options = JoinOptions {
            witness: args.witness,
            promote: args.promote,
            password: args.requirepass.clone(),
        };
        let config = NodeConfig {
            id: args.id,
            peers,
            peer_addr,
            known_members: Default::default(),
            client_addr,
            data_dir: args.data,
            cluster_key: args.cluster_key,
            password: args.requirepass,
            lease_ms: args.lease_ms,
            max_log_bytes: args.max_log_bytes,
            snapshot_interval_slots: args.snapshot_interval_slots,
            sync_inline_max_us: args.sync_inline_max_us,
            new_cluster: args.new_cluster,
            witness: args.witness,
        };
        // One thread runs the event loop, connections, peers and log syncs (no cross-thread
        // wake-ups, which cost most when replicas share few cores).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        let ran = match join {
            Some(join) => runtime.block_on(join_and_run(config, join, join_options)),
            None => runtime.block_on(run_node(config)).map_err(Failure::Node),
        };
        match ran {
            Ok(()) => Ok(()),
            Err(Failure::Join(message)) => Err(message),
            Err(Failure::Node(error)) => node_error(error),
        }
    }

    /// What `--join` does besides starting the replica.
    struct JoinOptions {
        witness: bool,
        promote: bool,
        password: Option<String>,
    }

    enum Failure {
        Node(NodeError),
        Join(String),
    }

    /// `--join`: asks the group for its founders and members, starts the replica with them and
    /// follows the join while the replica runs.
    async fn join_and_run(
        mut config: NodeConfig,
        join: std::net::SocketAddr,
        options: JoinOptions,
    ) -> Result<(), Failure> {
        use crate::join;
        let group = join::Group {
            addrs: vec![join],
            password: options.password.clone(),
        };
        let survey = join::survey(&group, config.id)
            .await
            .map_err(|e| Failure::Join(format!("--join {join}: {e}")))?;
        let recorded = keyspace_node::founding::FoundingRecord::load(&config.data_dir);
        if survey.already_member && !matches!(recorded, Ok(Some(_))) {
            return Err(Failure::Join(format!(
                "replica {} is a member of the group already, and --data holds no record of it: a new replica needs an id never used in the group (MEMBER LIST shows the members); a member restarts without --join",
                config.id
            )));
        }
        println!(
            "group at {join}: founders {}, members {}",
            peer::format_peers(&survey.founders),
            peer::format_peers(&survey.members)
        );
        let plan = join::Plan {
            id: config.id,
            peer_addr: config
                .peer_addr
                .expect("clap requires --peer-addr with --join"),
            client_addr: config.client_addr,
            witness: options.witness,
            promote: options.promote,
            already_member: survey.already_member,
        };
        let group = join::Group {
            addrs: join::group_addrs(join, &survey.client_addrs),
            password: options.password,
        };
        config.peers = survey.founders;
        config.known_members = survey.members;
        let node = run_node(config);
        tokio::pin!(node);
        tokio::select! {
            ended = &mut node => return ended.map_err(Failure::Node),
            joined = join::follow(group, plan) => joined.map_err(Failure::Join)?,
        }
        node.await.map_err(Failure::Node)
    }

    fn node_error(error: NodeError) -> Result<(), String> {
        match error {
            removed @ NodeError::Removed { .. } => {
                eprintln!("error: {removed}");
                std::process::exit(EXIT_REMOVED.into())
            }
            error => Err(error.to_string()),
        }
    }
}
