//! keyspace-node: the real-I/O shell around `keyspace-core`.
//!
//! It carries bytes between the outside world and the core's sans-IO [`Replica`]: TCP between
//! replicas ([`peer`]), the Redis protocol for clients ([`client`], [`connection`], [`commands`],
//! [`resp`]), segment files with group commit on disk ([`storage`]) and the monotonic clock; the
//! core task ([`shell`]) hands the replica what they bring ([`event`]). Everything
//! about the protocol stays in `keyspace-core`. The async code runs on tokio through
//! madsim-tokio, so the same shell also runs as simulated nodes under `--cfg madsim`.

pub mod action;
pub mod client;
pub mod clients;
pub mod cmd_admin;
pub mod cmd_client;
pub mod cmd_config;
pub mod cmd_debug;
pub mod cmd_multi;
pub mod commands;
pub mod connection;
pub mod event;
pub mod founding;
pub mod info;
pub mod peer;
pub mod replica_of;
pub mod resp;
pub mod resp_client;
pub mod server_config;
pub mod shell;
pub mod storage;
pub mod sync;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use keyspace_core::{NodeId, Replica, ReplicaConfig, NANOS_PER_MILLI};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::peer::ClusterKey;
use crate::storage::StorageLimits;

/// Everything one replica process needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    /// The founding voters' peer addresses (`--peers`); empty: the ones the data directory's
    /// membership record keeps (see [`founding`]).
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// This replica's peer address when it is not a founder (a joiner's `--peer-addr`);
    /// `None`: its entry in `peers`, or the record's.
    pub peer_addr: Option<SocketAddr>,
    /// Members besides the founders to dial from the start (a joiner learns them from the
    /// group); the applied configuration adds the rest.
    pub known_members: BTreeMap<NodeId, SocketAddr>,
    pub client_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub cluster_key: String,
    /// Clients must `AUTH` with this when set.
    pub password: Option<String>,
    pub lease_ms: u64,
    /// Most bytes the log's segments may take on disk; `None`: what the device holds.
    pub max_log_bytes: Option<u64>,
    /// A snapshot every this many applied slots (each replica on its own staggered schedule).
    pub snapshot_interval_slots: u64,
    /// A sync of a turn that answered clients leaves the event loop for a blocking thread while
    /// recent syncs average this many microseconds or more (0: always).
    pub sync_inline_max_us: u64,
    /// The operator says every replica of the cluster starts for the first time. Honoured only
    /// when this start creates `data_dir` (see [`ReplicaConfig::new_cluster`]).
    pub new_cluster: bool,
    /// Runs as a witness (`--join … --witness`): keeps the log, not the state. Recorded in
    /// the data directory, so a restart needs no flag.
    pub witness: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node id {0} is not in --peers; a replica that is not a founder joins with --join and --peer-addr")]
    NotAMember(NodeId),
    #[error("the data directory {dir} keeps no membership record: give --peers (a founding replica's first start) or --join (a new replica)")]
    NoMembership { dir: PathBuf },
    #[error("the data directory {dir} belongs to replica {stored}, not {given}: give --id {stored}, or another --data")]
    WrongId {
        dir: PathBuf,
        stored: NodeId,
        given: NodeId,
    },
    #[error("{what} disagrees with the data directory's membership record {path} ({stored}; given {given}); leave {what} out to use the recorded one")]
    Disagrees {
        what: &'static str,
        path: PathBuf,
        stored: String,
        given: String,
    },
    #[error(transparent)]
    Record(#[from] founding::RecordError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "cannot create the data directory {path}: {source}; check the path and its permissions"
    )]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("replica {id} was removed from the group (configuration epoch {epoch}) and stopped; its id is never used again: to bring the machine back, empty its --data directory and add it under a new id")]
    Removed { id: NodeId, epoch: u64 },
}

/// The exit status of a replica that stopped because it was removed from the group.
pub const EXIT_REMOVED: u8 = 3;

/// Entropy for the shell: the operating system's generator, or under `--cfg madsim` the
/// simulation's seeded one, so that a simulated run repeats from its seed.
pub fn random<T>() -> T
where
    rand::distributions::Standard: rand::distributions::Distribution<T>,
{
    #[cfg(madsim)]
    {
        madsim::rand::random()
    }
    #[cfg(not(madsim))]
    {
        rand::random()
    }
}

/// The replica configuration the node runs with.
pub fn replica_config(config: &NodeConfig) -> ReplicaConfig {
    let mut replica = ReplicaConfig::new(config.id, config.peers.keys().copied().collect());
    replica.lease.lease_duration_ns = config.lease_ms * NANOS_PER_MILLI;
    replica.snapshot_interval_slots = config.snapshot_interval_slots;
    // One slot in flight: every write that arrives while it is being accepted goes into the
    // next log entry together. Per write that means fewer accepts, records, acknowledgements
    // and system calls than with more, smaller slots in flight (docs/benchmarks.md).
    replica.window_max = 1;
    replica.witness = config.witness;
    replica
}

/// Creates `dir` (and its parents) if it is missing; true when this call created `dir` itself,
/// so nothing in it can come from an earlier run.
fn create_data_dir(dir: &Path) -> Result<bool, NodeError> {
    let error = |source| NodeError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(error(e)),
    }
}

/// The founders' and this replica's peer addresses, from the data directory's membership
/// record or, on a first start, from the configuration (then recorded before anything else
/// happens). `--peers` or `--peer-addr` that disagree with the record are refused: the data
/// directory holds what this replica promised and accepted as a member of that group.
pub fn settle_membership(config: &NodeConfig) -> Result<founding::FoundingRecord, NodeError> {
    let dir = &config.data_dir;
    if let Some(record) = founding::FoundingRecord::load(dir)? {
        let disagrees = |what, stored: String, given: String| NodeError::Disagrees {
            what,
            path: dir.join(founding::FILE_NAME),
            stored,
            given,
        };
        if record.id != config.id {
            return Err(NodeError::WrongId {
                dir: dir.clone(),
                stored: record.id,
                given: config.id,
            });
        }
        if !config.peers.is_empty() && config.peers != record.founders {
            let show = |peers: &BTreeMap<NodeId, SocketAddr>| peer::format_peers(peers);
            return Err(disagrees(
                "--peers",
                show(&record.founders),
                show(&config.peers),
            ));
        }
        if config.witness && !record.witness {
            let full = "a full replica".to_string();
            return Err(disagrees("--witness", full, "a witness".into()));
        }
        match config.peer_addr {
            Some(given) if given != record.peer_addr => Err(disagrees(
                "--peer-addr",
                record.peer_addr.to_string(),
                given.to_string(),
            )),
            _ => Ok(record),
        }
    } else {
        if config.peers.is_empty() {
            return Err(NodeError::NoMembership { dir: dir.clone() });
        }
        let peer_addr = config
            .peer_addr
            .or_else(|| config.peers.get(&config.id).copied())
            .ok_or(NodeError::NotAMember(config.id))?;
        let record = founding::FoundingRecord {
            id: config.id,
            peer_addr,
            founders: config.peers.clone(),
            witness: config.witness,
        };
        record.store(dir)?;
        tracing::info!(node = config.id, file = %dir.join(founding::FILE_NAME).display(), "membership recorded: later starts need no --peers");
        Ok(record)
    }
}

/// Dials every other founder and known member and starts the peer listener, which accepts
/// them (the shell then keeps both to the applied configuration).
fn start_peers(
    config: &NodeConfig,
    me_addr: SocketAddr,
    listener: TcpListener,
    key: ClusterKey,
    core: mpsc::Sender<event::Event>,
) -> (BTreeMap<NodeId, peer::PeerLink>, shell::Peering) {
    let me = config.id;
    let known = config.peers.iter().chain(&config.known_members);
    let links: BTreeMap<NodeId, peer::PeerLink> = known
        .filter(|(id, _)| **id != me)
        .map(|(id, addr)| (*id, peer::spawn_dialler(me, *id, *addr, key.clone())))
        .collect();
    let admission = Arc::new(std::sync::RwLock::new(peer::Admission {
        accepted: links.keys().copied().collect(),
        ..Default::default()
    }));
    tokio::spawn(peer::listen(
        listener,
        me,
        admission.clone(),
        key.clone(),
        core,
    ));
    let peering = shell::Peering {
        me_addr,
        key,
        admission,
    };
    (links, peering)
}

/// Runs one replica until the process ends. Returns early only on a startup error.
pub async fn run_node(config: NodeConfig) -> Result<(), NodeError> {
    let me = config.id;
    let created = create_data_dir(&config.data_dir)?;
    let record = settle_membership(&config)?;
    let peer_addr = record.peer_addr;
    let config = NodeConfig {
        peers: record.founders,
        witness: record.witness,
        ..config
    };
    if config.new_cluster && !created {
        tracing::warn!(node = me, dir = %config.data_dir.display(), "--new-cluster ignored: the data directory existed before this start, so this replica first waits out one lease");
    }
    let limits = StorageLimits::with_max_bytes(config.max_log_bytes);
    let (log, durable, records) = storage::open(&config.data_dir, limits)?;
    tracing::info!(node = me, records, chosen = durable.chosen.len(), damaged = durable.damaged, dir = %config.data_dir.display(), "log replayed");
    if durable.damaged {
        tracing::warn!(
            node = me,
            "the log was damaged: this replica does not vote until it has recovered from its peers"
        );
    }
    let peer_listener = TcpListener::bind(peer_addr)
        .await
        .map_err(|source| NodeError::Listen {
            addr: peer_addr,
            what: "peers",
            source,
        })?;
    let client_listener = TcpListener::bind(config.client_addr)
        .await
        .map_err(|source| NodeError::Listen {
            addr: config.client_addr,
            what: "clients",
            source,
        })?;
    let key = ClusterKey::from_secret(&config.cluster_key);
    let start = Instant::now();
    let mut replica_config = replica_config(&config);
    replica_config.new_cluster = config.new_cluster && created;
    let replica = Replica::new(replica_config, durable, 0, random());
    let (core_tx, core_rx) = mpsc::channel(shell::EVENTS_QUEUE_MAX);
    let (links, peering) = start_peers(&config, peer_addr, peer_listener, key, core_tx.clone());
    let context = Arc::new(client::ClientContext {
        core: core_tx,
        node_id: me,
        client_addr: config.client_addr,
        founders: config.peers.clone(),
        password: config.password.clone(),
        started: start,
        total_connections: AtomicU64::new(0),
        commands_processed: AtomicU64::new(0),
        command_stats: Default::default(),
        config: server_config::ServerConfig::new(
            config.client_addr,
            &config.data_dir.display().to_string(),
            config.password.as_deref(),
        ),
        clients: Default::default(),
        error_stats: Default::default(),
        witness: config.witness,
        replica_of: Default::default(),
        scripts_may_debug: Default::default(),
    });
    tokio::spawn(client::listen(client_listener, context));
    tracing::info!(node = me, peers = %peer_addr, clients = %config.client_addr, "serving");
    let stopped = shell::Shell::new(
        replica,
        log,
        links,
        peering,
        start,
        config.sync_inline_max_us,
    )
    .run(core_rx)
    .await;
    match stopped {
        shell::Stopped::EventsClosed => Ok(()),
        shell::Stopped::Removed { epoch } => Err(NodeError::Removed { id: me, epoch }),
    }
}
