//! What the core task (the shell) is told and what it tells: the events it handles, the frames
//! replicas exchange, and the status `INFO` shows. A module of its own, so that the tasks that
//! feed the core task (peer links, client connections) need not know the core task itself.

use keyspace_core::{ClientRequest, ClientResponse, Member, MemberKind, Message, NodeId, Role};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// What one replica sends another after the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerFrame {
    /// A protocol message for the core.
    Protocol(Message),
    /// A client request that reached a non-master; the receiver serves it as its own client's.
    Forward(ClientRequest),
    /// The answer to a forwarded request.
    ForwardReply(ClientResponse),
}

/// What the core task handles, from client connections and peer links.
pub enum Event {
    /// A client request from a local connection. `prefer` names the replica to try (a hint
    /// from an earlier refusal); `local` asks for this replica itself (dirty reads).
    Request {
        request: ClientRequest,
        prefer: Option<NodeId>,
        local: bool,
        reply: mpsc::Sender<ClientResponse>,
    },
    Peer {
        from: NodeId,
        frames: Vec<PeerFrame>,
    },
    Info(oneshot::Sender<Status>),
    /// A connection became a replication stream (`SYNC`): the core task sends what this
    /// replica applies from now on into `chunks` (adding their length to `queued_bytes`, which
    /// the connection takes off as it writes them), and answers `subscribed` once it does.
    Subscribe {
        chunks: mpsc::Sender<Vec<u8>>,
        queued_bytes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        subscribed: oneshot::Sender<()>,
    },
}

/// What INFO shows about the replica.
#[derive(Clone, Debug)]
pub struct Status {
    pub node_id: NodeId,
    pub role: Role,
    pub master: Option<NodeId>,
    pub ballot: String,
    pub chosen_through: u64,
    pub applied_through: u64,
    pub lease_remaining_ms: Option<u64>,
    /// Keys in each database, database 0 first.
    pub keys_per_db: Vec<usize>,
    /// Keys with a deadline in each database.
    pub expires_per_db: Vec<usize>,
    pub sessions: usize,
    pub peers_connected: usize,
    pub peers: usize,
    pub requests_served: u64,
    pub log_syncs: u64,
    pub log_records: u64,
    pub log_sync_us: u64,
    /// Syncs that ran on a blocking thread (snapshots, and busy turns' while the disk is slow).
    pub log_syncs_off_loop: u64,
    /// Recent average time of one sync (snapshots left out).
    pub log_sync_recent_us: u64,
    /// Recovering what damaged storage may have lost; does not vote until done.
    pub storage_recovering: bool,
    /// The epoch of the configuration this replica applied.
    pub epoch: u64,
    /// What this replica is in that configuration: see [`kind_name`].
    pub kind: &'static str,
    /// One row per member of that configuration, in id order.
    pub members: Vec<MemberRow>,
    /// Connections that are replication streams (`SYNC`): INFO's `connected_slaves`.
    pub replication_streams: usize,
}

/// One member as `MEMBER LIST` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    pub id: NodeId,
    /// Empty when the configuration does not say (founding members of a group started with
    /// `--peers` that this replica has no address for).
    pub peer_addr: String,
    pub client_addr: String,
    pub kind: &'static str,
    /// Whether this replica's link to it is up (`None` for itself).
    pub connected: Option<bool>,
    /// How many slots it is behind the master, known only on the master.
    pub behind_slots: Option<u64>,
}

/// What a member is: `voter`, `learner` (a full replica not voting yet), `witness`, or
/// `witness-learner` (a witness not voting yet).
pub fn kind_name(member: &Member) -> &'static str {
    match (member.kind, member.voting) {
        (MemberKind::Full, true) => "voter",
        (MemberKind::Full, false) => "learner",
        (MemberKind::Witness, true) => "witness",
        (MemberKind::Witness, false) => "witness-learner",
    }
}
