//! Replica-to-replica transport: TCP connections carrying core-codec frames.
//!
//! Every replica dials every other one and uses that connection only to send; it only receives
//! on the connections others dialled to it. A connection starts with a handshake in which each
//! side proves it knows the shared cluster key (a keyed BLAKE3 MAC over both sides' fresh
//! nonces and ids); a peer without the key is refused and logged. After the handshake each frame
//! is a [`PeerFrame`] in a `FrameKind::PeerMessage` frame of the core codec (length, CRC32C,
//! postcard). A frame that fails to decode — garbage, a bad checksum — drops the connection
//! with a log line; the dialler reconnects with backoff.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyspace_core::codec::{self, DecodeError, FrameKind};
use keyspace_core::NodeId;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::event::{Event, PeerFrame};

/// Most batches of frames waiting for one peer's connection; more are dropped (the protocol
/// retransmits).
pub const PEER_QUEUE_BATCHES_MAX: usize = 1024;
/// Longest a handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(20);
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Bytes read from a socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The handshake that opens every peer connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Handshake {
    Hello {
        from: NodeId,
        to: NodeId,
        nonce: [u8; 32],
    },
    Challenge {
        nonce: [u8; 32],
        mac: [u8; 32],
    },
    Proof {
        mac: [u8; 32],
    },
    Accepted,
    Refused {
        reason: String,
    },
    /// The dialler's id was removed from the group; sent only after it proved the key.
    Removed {
        epoch: u64,
    },
}

/// Whom the peer listener accepts: the shell keeps it to the applied configuration.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    pub accepted: Vec<NodeId>,
    /// Removed ids: told so, and the epoch of the configuration that says it.
    pub removed: std::collections::BTreeSet<NodeId>,
    pub epoch: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] DecodeError),
    #[error("connection closed")]
    Closed,
    #[error("handshake timed out")]
    Timeout,
    #[error("handshake refused: {0}")]
    Refused(String),
    #[error("this replica was removed from the group (configuration epoch {epoch})")]
    Removed { epoch: u64 },
}

/// The cluster key, stretched to a MAC key.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl ClusterKey {
    pub fn from_secret(secret: &str) -> ClusterKey {
        ClusterKey(blake3::derive_key(
            "keyspace cluster key v1",
            secret.as_bytes(),
        ))
    }

    fn mac(
        &self,
        role: &[u8],
        from: NodeId,
        to: NodeId,
        a: &[u8; 32],
        b: &[u8; 32],
    ) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(role);
        hasher.update(&from.to_le_bytes());
        hasher.update(&to.to_le_bytes());
        hasher.update(a);
        hasher.update(b);
        hasher.finalize()
    }
}

/// The sending half of the link to one peer, as the shell's core task sees it.
pub struct PeerLink {
    /// Where the link dials.
    pub addr: SocketAddr,
    pub tx: mpsc::Sender<Vec<PeerFrame>>,
    pub connected: Arc<AtomicBool>,
    /// Nonzero once the peer refused this replica as removed: the epoch it named.
    pub removed_at_epoch: Arc<AtomicU64>,
}

/// A buffered frame reader over a stream.
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader {
            buf: Vec::with_capacity(READ_CHUNK_BYTES),
            start: 0,
        }
    }
}

impl FrameReader {
    /// The next complete frame already buffered, if any.
    pub fn next<T: DeserializeOwned>(&mut self, kind: FrameKind) -> Result<Option<T>, DecodeError> {
        match codec::decode::<T>(kind, &self.buf[self.start..]) {
            Ok((value, used)) => {
                self.start += used;
                Ok(Some(value))
            }
            Err(e) if e.is_truncated() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads more bytes; `Closed` at end of stream.
    pub async fn fill(&mut self, stream: &mut TcpStream) -> Result<(), PeerError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK_BYTES, 0);
        let n = stream.read(&mut self.buf[len..]).await;
        self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
        match n? {
            0 => Err(PeerError::Closed),
            _ => Ok(()),
        }
    }

    pub async fn read<T: DeserializeOwned>(
        &mut self,
        stream: &mut TcpStream,
        kind: FrameKind,
    ) -> Result<T, PeerError> {
        loop {
            if let Some(value) = self.next(kind)? {
                return Ok(value);
            }
            self.fill(stream).await?;
        }
    }
}

async fn write_handshake(stream: &mut TcpStream, value: &Handshake) -> Result<(), PeerError> {
    let mut out = Vec::new();
    codec::encode(FrameKind::Handshake, value, &mut out);
    stream.write_all(&out).await?;
    stream.flush().await?; // a no-op on real TCP; madsim sends on flush
    Ok(())
}

fn nonce() -> [u8; 32] {
    crate::random()
}

/// Dialler's side: proves the key and checks the listener's proof.
async fn handshake_dial(
    stream: &mut TcpStream,
    key: &ClusterKey,
    me: NodeId,
    peer: NodeId,
) -> Result<(), PeerError> {
    let mut reader = FrameReader::default();
    let mine = nonce();
    write_handshake(
        stream,
        &Handshake::Hello {
            from: me,
            to: peer,
            nonce: mine,
        },
    )
    .await?;
    let theirs = match reader.read(stream, FrameKind::Handshake).await? {
        Handshake::Challenge { nonce, mac } => {
            if key.mac(b"listener", me, peer, &mine, &nonce) != blake3::Hash::from(mac) {
                return Err(PeerError::Refused(format!(
                    "node {peer} does not know the cluster key"
                )));
            }
            nonce
        }
        Handshake::Refused { reason } => return Err(PeerError::Refused(reason)),
        other => return Err(PeerError::Refused(format!("unexpected {other:?}"))),
    };
    let mac = *key.mac(b"dialler", me, peer, &mine, &theirs).as_bytes();
    write_handshake(stream, &Handshake::Proof { mac }).await?;
    match reader.read(stream, FrameKind::Handshake).await? {
        Handshake::Accepted => Ok(()),
        Handshake::Refused { reason } => Err(PeerError::Refused(reason)),
        // The listener proved the key in its challenge, so this comes from the group.
        Handshake::Removed { epoch } => Err(PeerError::Removed { epoch }),
        other => Err(PeerError::Refused(format!("unexpected {other:?}"))),
    }
}

/// Listener's side: returns the authenticated peer's id and the reader (which may hold frames
/// already).
async fn handshake_accept(
    stream: &mut TcpStream,
    key: &ClusterKey,
    me: NodeId,
    admission: &Admission,
) -> Result<(NodeId, FrameReader), PeerError> {
    let mut reader = FrameReader::default();
    let known = |from| admission.accepted.contains(&from) || admission.removed.contains(&from);
    let (from, theirs) = match reader.read(stream, FrameKind::Handshake).await? {
        Handshake::Hello { from, to, nonce } if to == me && from != me && known(from) => {
            (from, nonce)
        }
        Handshake::Hello { from, to, .. } => {
            let reason = format!(
                "node {me} is not node {to}, or node {from} is not a member of this cluster"
            );
            let _ = write_handshake(
                stream,
                &Handshake::Refused {
                    reason: reason.clone(),
                },
            )
            .await;
            return Err(PeerError::Refused(reason));
        }
        other => return Err(PeerError::Refused(format!("unexpected {other:?}"))),
    };
    let mine = nonce();
    let mac = *key.mac(b"listener", from, me, &theirs, &mine).as_bytes();
    write_handshake(stream, &Handshake::Challenge { nonce: mine, mac }).await?;
    match reader.read(stream, FrameKind::Handshake).await? {
        Handshake::Proof { mac }
            if key.mac(b"dialler", from, me, &theirs, &mine) == blake3::Hash::from(mac) =>
        {
            if admission.removed.contains(&from) {
                let epoch = admission.epoch;
                write_handshake(stream, &Handshake::Removed { epoch }).await?;
                return Err(PeerError::Refused(format!(
                    "node {from} was removed from the group (told it so at epoch {epoch})"
                )));
            }
            write_handshake(stream, &Handshake::Accepted).await?;
            Ok((from, reader))
        }
        _ => {
            let reason = "wrong cluster key".to_string();
            let _ = write_handshake(
                stream,
                &Handshake::Refused {
                    reason: reason.clone(),
                },
            )
            .await;
            Err(PeerError::Refused(format!(
                "node {from} claimed membership without the cluster key"
            )))
        }
    }
}

/// Starts the dialler task for `peer` and returns its link.
pub fn spawn_dialler(me: NodeId, peer: NodeId, addr: SocketAddr, key: ClusterKey) -> PeerLink {
    let (tx, rx) = mpsc::channel(PEER_QUEUE_BATCHES_MAX);
    let connected = Arc::new(AtomicBool::new(false));
    let removed_at_epoch = Arc::new(AtomicU64::new(0));
    let flags = LinkFlags {
        connected: connected.clone(),
        removed_at_epoch: removed_at_epoch.clone(),
    };
    tokio::spawn(dial_loop(me, peer, addr, key, rx, flags));
    PeerLink {
        addr,
        tx,
        connected,
        removed_at_epoch,
    }
}

/// What a dialler tells the shell through its link.
struct LinkFlags {
    connected: Arc<AtomicBool>,
    removed_at_epoch: Arc<AtomicU64>,
}

async fn dial_loop(
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    key: ClusterKey,
    mut rx: mpsc::Receiver<Vec<PeerFrame>>,
    flags: LinkFlags,
) {
    let LinkFlags {
        connected,
        removed_at_epoch,
    } = flags;
    let mut backoff = RECONNECT_BACKOFF_MIN;
    loop {
        match connect(me, peer, addr, &key).await {
            Ok(mut stream) => {
                tracing::info!(peer, %addr, "connected to peer");
                backoff = RECONNECT_BACKOFF_MIN;
                // Frames queued while disconnected are stale; the protocol resends what matters.
                while rx.try_recv().is_ok() {}
                connected.store(true, Ordering::Release);
                let result = send_loop(&mut stream, &mut rx).await;
                connected.store(false, Ordering::Release);
                match result {
                    Ok(()) => return, // the shell is shutting down
                    Err(error) => tracing::info!(peer, %error, "peer connection lost"),
                }
            }
            Err(PeerError::Refused(reason)) => tracing::warn!(peer, %reason, "peer refused"),
            Err(PeerError::Removed { epoch }) => {
                tracing::error!(
                    peer,
                    epoch,
                    "peer says this replica was removed from the group"
                );
                // Removal epochs start at 1, so nonzero means told.
                removed_at_epoch.store(epoch.max(1), Ordering::Release);
            }
            Err(error) => tracing::debug!(peer, %error, "cannot reach peer"),
        }
        // Drop what accumulates while the peer is away, then try again.
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                batch = rx.recv() => if batch.is_none() { return },
            }
        }
        backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
    }
}

async fn connect(
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    key: &ClusterKey,
) -> Result<TcpStream, PeerError> {
    let mut stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake_dial(&mut stream, key, me, peer),
    )
    .await
    .map_err(|_| PeerError::Timeout)??;
    Ok(stream)
}

/// Coalesces every queued batch into one write, then flushes.
async fn send_loop(
    stream: &mut TcpStream,
    rx: &mut mpsc::Receiver<Vec<PeerFrame>>,
) -> Result<(), PeerError> {
    let mut out = Vec::with_capacity(READ_CHUNK_BYTES);
    while let Some(batch) = rx.recv().await {
        out.clear();
        encode_batch(&batch, &mut out);
        while let Ok(batch) = rx.try_recv() {
            encode_batch(&batch, &mut out);
            if out.len() >= 4 * READ_CHUNK_BYTES {
                break;
            }
        }
        stream.write_all(&out).await?;
        stream.flush().await?; // a no-op on real TCP; madsim sends on flush
    }
    Ok(())
}

fn encode_batch(batch: &[PeerFrame], out: &mut Vec<u8>) {
    for frame in batch {
        codec::encode(FrameKind::PeerMessage, frame, out);
    }
}

/// Accepts peer connections and feeds their frames to the core task.
pub async fn listen(
    listener: TcpListener,
    me: NodeId,
    admission: Arc<std::sync::RwLock<Admission>>,
    key: ClusterKey,
    core: mpsc::Sender<Event>,
) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "peer accept failed");
                tokio::time::sleep(RECONNECT_BACKOFF_MIN).await;
                continue;
            }
        };
        // Whom to accept as of this accept: the shell keeps it to the applied configuration.
        let admission = admission.read().expect("admission lock poisoned").clone();
        let (key, core) = (key.clone(), core.clone());
        tokio::spawn(async move {
            if let Err(error) = serve_peer(stream, me, &admission, &key, core).await {
                tracing::warn!(%addr, %error, "dropped peer connection");
            }
        });
    }
}

async fn serve_peer(
    mut stream: TcpStream,
    me: NodeId,
    admission: &Admission,
    key: &ClusterKey,
    core: mpsc::Sender<Event>,
) -> Result<(), PeerError> {
    let _ = stream.set_nodelay(true);
    let (from, mut reader) = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake_accept(&mut stream, key, me, admission),
    )
    .await
    .map_err(|_| PeerError::Timeout)??;
    tracing::debug!(peer = from, "peer authenticated");
    loop {
        let mut frames = Vec::new();
        while let Some(frame) = reader.next::<PeerFrame>(FrameKind::PeerMessage)? {
            frames.push(frame);
        }
        if !frames.is_empty() && core.send(Event::Peer { from, frames }).await.is_err() {
            return Ok(());
        }
        match reader.fill(&mut stream).await {
            Err(PeerError::Closed) => return Ok(()),
            other => other?,
        }
    }
}

/// Parses `1=host:port,2=host:port`; a bare port means 127.0.0.1.
pub fn parse_peers(text: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut peers = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' is not ID=HOST:PORT"))?;
        let id: NodeId = id
            .parse()
            .map_err(|_| format!("'{id}' is not a node id (1, 2, …)"))?;
        let addr = parse_addr(addr)?;
        if id == 0 || peers.insert(id, addr).is_some() {
            return Err(format!("node id {id} is zero or repeated"));
        }
    }
    if peers.is_empty() {
        return Err("no peers given".into());
    }
    Ok(peers)
}

/// `1=host:port,2=host:port`, as [`parse_peers`] reads it.
pub fn format_peers(peers: &BTreeMap<NodeId, SocketAddr>) -> String {
    let parts: Vec<String> = peers.iter().map(|(id, a)| format!("{id}={a}")).collect();
    parts.join(",")
}

/// `HOST:PORT`, `:PORT` or `PORT`; the host defaults to 127.0.0.1.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let full = if let Ok(port) = text.trim_start_matches(':').parse::<u16>() {
        format!("127.0.0.1:{port}")
    } else {
        text.to_string()
    };
    let full = full.replace("localhost:", "127.0.0.1:");
    full.parse()
        .map_err(|_| format!("'{text}' is not HOST:PORT (an IP address and a port)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyspace_core::{Ballot, ClientRequest, Command, Message};
    use proptest::prelude::*;

    #[test]
    fn peers_parse_with_default_host() {
        let peers = parse_peers("1=127.0.0.1:7001, 2=7002,3=:7003").unwrap();
        assert_eq!(peers[&2], "127.0.0.1:7002".parse().unwrap());
        assert_eq!(peers[&3], "127.0.0.1:7003".parse().unwrap());
        assert!(parse_peers("1=7001,1=7002").is_err());
        assert!(parse_peers("x").is_err());
    }

    #[test]
    fn macs_differ_by_key_role_and_direction() {
        let a = ClusterKey::from_secret("one");
        let b = ClusterKey::from_secret("two");
        let (n1, n2) = ([1; 32], [2; 32]);
        assert_ne!(
            a.mac(b"dialler", 1, 2, &n1, &n2),
            b.mac(b"dialler", 1, 2, &n1, &n2)
        );
        assert_ne!(
            a.mac(b"dialler", 1, 2, &n1, &n2),
            a.mac(b"listener", 1, 2, &n1, &n2)
        );
        assert_ne!(
            a.mac(b"dialler", 1, 2, &n1, &n2),
            a.mac(b"dialler", 2, 1, &n1, &n2)
        );
    }

    fn frame() -> Vec<u8> {
        let mut out = Vec::new();
        let request = ClientRequest {
            client_id: 7,
            seq: 1,
            command: Command::Get { key: b"k".to_vec() },
        };
        codec::encode(
            FrameKind::PeerMessage,
            &PeerFrame::Forward(request),
            &mut out,
        );
        let commit = keyspace_core::msg::Commit {
            ballot: Ballot { round: 1, node: 1 },
            chosen_through: 9,
            durable_floor: 0,
        };
        codec::encode(
            FrameKind::PeerMessage,
            &PeerFrame::Protocol(Message::Commit(commit)),
            &mut out,
        );
        out
    }

    proptest! {
        #[test]
        fn damaged_peer_streams_are_refused_never_misread(
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut bytes = frame();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            let mut reader = FrameReader { buf: bytes, start: 0 };
            let mut decoded = 0;
            while let Ok(Some(_)) = reader.next::<PeerFrame>(FrameKind::PeerMessage) {
                decoded += 1;
            }
            prop_assert!(decoded < 2, "a damaged stream decoded in full");
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_frame_reader(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut reader = FrameReader { buf: bytes, start: 0 };
            while let Ok(Some(_)) = reader.next::<PeerFrame>(FrameKind::PeerMessage) {}
        }
    }
}
