//! Client connections: the Redis protocol in, core requests out.
//!
//! Each connection is a session: a random 64-bit `client_id` and a `seq` that grows by one per
//! write. A write that comes back `Indeterminate`, or gets no answer in time, is sent again with
//! the SAME `(client_id, seq)` until [`REQUEST_DEADLINE`], so the state machine applies it once
//! and the client gets its original reply. Refusals (`NotMaster`, `Busy`) are retried towards
//! the hinted master. Commands on one connection run one after another, in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyspace_core::{
    ClientRequest, ClientResponse, Command, CommandError, CommandKind, NodeId, Outcome, Rejection,
    Reply,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::commands;
use crate::resp::{self, Writer};
use crate::shell::{Event, Status};

/// How long one request is retried before the client hears an error.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long one attempt waits for an answer before it is sent again.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(100);
/// Bytes of unanswered replies after which a connection writes them out mid-batch.
const OUT_FLUSH_BYTES: usize = 64 * 1024;
/// Reads use their own id, so they never leave gaps in the write session's sequence.
const READ_SESSION_BIT: u64 = 1 << 63;

/// What every client connection of this node shares.
pub struct ClientContext {
    pub core: mpsc::Sender<Event>,
    pub node_id: NodeId,
    pub client_addr: std::net::SocketAddr,
    pub password: Option<String>,
    pub started: Instant,
    pub connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub commands_processed: AtomicU64,
}

pub async fn listen(listener: TcpListener, context: Arc<ClientContext>) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let context = context.clone();
                tokio::spawn(async move {
                    context.connections.fetch_add(1, Ordering::Relaxed);
                    if let Err(error) = serve(stream, &context).await {
                        tracing::debug!(%addr, %error, "client connection ended");
                    }
                    context.connections.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "client accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Why a request got no reply from the store.
pub enum Failure {
    Invalid(CommandError),
    /// No master answered before the deadline; a write may or may not have been applied.
    Unavailable,
}

pub struct Connection<'a> {
    pub context: &'a ClientContext,
    pub id: u64,
    client_id: u64,
    write_seq: u64,
    read_seq: u64,
    pub resp3: bool,
    pub authenticated: bool,
    pub readonly: bool,
    pub name: Option<Vec<u8>>,
    pub quit: bool,
    replies_tx: mpsc::Sender<ClientResponse>,
    replies: mpsc::Receiver<ClientResponse>,
}

async fn serve(mut stream: TcpStream, context: &ClientContext) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (replies_tx, replies) = mpsc::channel(64);
    let mut conn = Connection {
        context,
        id: context.total_connections.fetch_add(1, Ordering::Relaxed) + 1,
        client_id: rand::random::<u64>() & !READ_SESSION_BIT,
        write_seq: 0,
        read_seq: 0,
        resp3: false,
        authenticated: context.password.is_none(),
        readonly: false,
        name: None,
        quit: false,
        replies_tx,
        replies,
    };
    let mut input = Vec::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut used = 0;
        loop {
            match resp::parse(&input[used..]) {
                Ok(Some((args, n))) => {
                    used += n;
                    if !args.is_empty() {
                        conn.execute(args, &mut out).await;
                        context.commands_processed.fetch_add(1, Ordering::Relaxed);
                    }
                    if conn.quit {
                        stream.write_all(&out).await?;
                        stream.flush().await?; // a no-op on real TCP; madsim sends on flush
                        return Ok(());
                    }
                    if out.len() >= OUT_FLUSH_BYTES {
                        stream.write_all(&out).await?;
                        stream.flush().await?; // a no-op on real TCP; madsim sends on flush
                        out.clear();
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // Like Redis: answer the protocol error, then close.
                    Writer {
                        out: &mut out,
                        resp3: conn.resp3,
                    }
                    .error(&format!("ERR {error}"));
                    stream.write_all(&out).await?;
                    stream.flush().await?; // a no-op on real TCP; madsim sends on flush
                    return Ok(());
                }
            }
        }
        input.drain(..used);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            stream.flush().await?; // a no-op on real TCP; madsim sends on flush
            out.clear();
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&chunk[..n]);
    }
}

impl Connection<'_> {
    async fn execute(&mut self, args: Vec<Vec<u8>>, out: &mut Vec<u8>) {
        let action = commands::parse(&args, self);
        commands::run(action, self, out).await;
    }

    /// Sends `command` through the cluster until it is answered or the deadline passes.
    pub async fn submit(&mut self, mut command: Command) -> Result<Reply, Failure> {
        if self.readonly {
            if let Command::Get { key } = command {
                command = Command::DirtyGet { key };
            }
        }
        let (client_id, seq) = match command.kind() {
            CommandKind::Write => {
                self.write_seq += 1;
                (self.client_id, self.write_seq)
            }
            _ => {
                self.read_seq += 1;
                (self.client_id | READ_SESSION_BIT, self.read_seq)
            }
        };
        let local = command.kind() == CommandKind::DirtyRead;
        let request = ClientRequest {
            client_id,
            seq,
            command,
        };
        let deadline = Instant::now() + REQUEST_DEADLINE;
        let mut prefer = None;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let event = Event::Request {
                request: request.clone(),
                prefer,
                local,
                reply: self.replies_tx.clone(),
            };
            if self.context.core.send(event).await.is_err() {
                return Err(Failure::Unavailable);
            }
            match self.await_reply(client_id, seq).await {
                Some(Outcome::Done(reply)) => return Ok(reply),
                Some(Outcome::Rejected(Rejection::Invalid(error))) => {
                    return Err(Failure::Invalid(error))
                }
                Some(Outcome::Rejected(Rejection::NotMaster { master_hint })) => {
                    prefer = master_hint
                }
                Some(Outcome::Rejected(Rejection::Busy)) | Some(Outcome::Indeterminate) | None => {
                    prefer = None
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Failure::Unavailable);
            }
            let backoff = (Duration::from_millis(5) * attempt).min(RETRY_BACKOFF_MAX);
            tokio::time::sleep(backoff.min(deadline - now)).await;
        }
    }

    async fn await_reply(&mut self, client_id: u64, seq: u64) -> Option<Outcome> {
        let until = Instant::now() + ATTEMPT_TIMEOUT;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.replies.recv()).await {
                Ok(Some(response)) if response.client_id == client_id && response.seq == seq => {
                    return Some(response.outcome)
                }
                Ok(Some(_)) => continue, // a late answer to an earlier attempt
                Ok(None) | Err(_) => return None,
            }
        }
    }

    pub async fn status(&self) -> Option<Status> {
        let (tx, rx) = oneshot::channel();
        self.context.core.send(Event::Info(tx)).await.ok()?;
        rx.await.ok()
    }
}
