//! A client connection's dealings with the store: its session, its request ids, and sending a
//! request until it is answered.
//!
//! Each connection writes in a session the log opens for it: before its first write it sends
//! `OpenSession`, which hands out a `client_id` no other session has held, and numbers its
//! writes 1, 2, 3, … under it. A write that comes back `Indeterminate`, or gets no answer in
//! time, is sent again with the SAME `(client_id, seq)` until [`REQUEST_DEADLINE`], so the state
//! machine applies it once and the client gets its original reply. Refusals (`NotMaster`,
//! `Busy`) are retried towards the hinted master. Commands on one connection run one after
//! another, in order. Reads and `OpenSession` itself travel under the connection's random
//! routing id, outside any session.
//!
//! The store keeps a bounded table of sessions and may forget this one (least recently used),
//! after which it refuses every request of the session as `StaleRequest`, a retry included: a
//! write can never apply twice. A request refused so on its first trip into the log cannot have
//! been applied, so the connection opens a fresh session and sends it once more. A
//! `StaleRequest` for a request an earlier attempt may have put in the log reaches the client as
//! an error: that write may or may not have been applied. Either way the next write runs in a
//! fresh session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keyspace_core::command::OPENED_SESSION_BIT;
use keyspace_core::{
    ClientRequest, ClientResponse, Command, CommandError, CommandKind, Db, NodeId, Outcome,
    Rejection, Reply,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::event::{Event, Status};

/// How long one request is retried before the client hears an error.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long one attempt waits for an answer before it is sent again.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(100);
/// Reads use their own id, so they never leave gaps in the write session's sequence.
const READ_SESSION_BIT: u64 = 1 << 63;

/// What every client connection of this node shares.
pub struct ClientContext {
    pub core: mpsc::Sender<Event>,
    pub node_id: NodeId,
    pub client_addr: std::net::SocketAddr,
    /// The group's founding voters and their peer addresses (`MEMBER FOUNDERS`: a joiner needs
    /// them to read the log from its start).
    pub founders: std::collections::BTreeMap<NodeId, std::net::SocketAddr>,
    pub password: Option<String>,
    pub started: Instant,
    pub total_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    /// Per known command, since start (`INFO commandstats`).
    pub command_stats: std::sync::Mutex<std::collections::BTreeMap<&'static str, CommandStats>>,
    /// The `CONFIG` parameters.
    pub config: crate::server_config::ServerConfig,
    /// The live connections (`CLIENT LIST`, `CLIENT KILL`).
    pub clients: crate::clients::ClientRegistry,
    /// Error replies by their code (`INFO errorstats`).
    pub error_stats: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// This replica is a witness: it serves no reads (writes are forwarded to the master).
    pub witness: bool,
    /// The Redis master `REPLICAOF` named, if any.
    pub replica_of: crate::replica_of::ReplicaOf,
    /// `DEBUG set-disable-deny-scripts 1`: script runs taken here may call DEBUG.
    pub scripts_may_debug: std::sync::atomic::AtomicBool,
}

/// Most error codes `INFO errorstats` counts apart (Redis's limit too); the rest are not counted.
pub const ERROR_CODES_MAX: usize = 128;

/// `CLIENT REPLY`: which replies the connection is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Set by `CLIENT REPLY SKIP`: the command after it is not answered.
    SkipNext,
    /// The command running now is not answered.
    Skip,
}

/// What `INFO commandstats` shows of one command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandStats {
    pub calls: u64,
    pub usec: u64,
    /// Refused before it ran: wrong arguments, not authenticated.
    pub rejected_calls: u64,
    /// Ran and answered an error.
    pub failed_calls: u64,
}

impl ClientContext {
    /// Counts one error reply whose code (its first word) is `code`.
    pub fn count_error(&self, code: &str) {
        let mut errors = self.error_stats.lock().expect("no panic while counting");
        if errors.len() < ERROR_CODES_MAX || errors.contains_key(code) {
            *errors.entry(code.to_string()).or_default() += 1;
        }
        assert!(errors.len() <= ERROR_CODES_MAX, "error codes are bounded");
    }

    pub fn error_counts(&self) -> Vec<(String, u64)> {
        let errors = self.error_stats.lock().expect("no panic while counting");
        errors.iter().map(|(code, n)| (code.clone(), *n)).collect()
    }

    /// `CONFIG RESETSTAT`: the command and error counts start again.
    pub fn reset_stats(&self) {
        self.command_stats
            .lock()
            .expect("no panic while counting")
            .clear();
        self.error_stats
            .lock()
            .expect("no panic while counting")
            .clear();
        self.commands_processed.store(0, Ordering::Relaxed);
    }

    /// Counts `calls` calls of the known command `name`.
    pub fn count_command(
        &self,
        name: &'static str,
        calls: u64,
        usec: u64,
        rejected: bool,
        failed: bool,
    ) {
        let mut stats = self.command_stats.lock().expect("no panic while counting");
        let entry = stats.entry(name).or_default();
        match rejected {
            true => entry.rejected_calls += calls,
            false => {
                entry.calls += calls;
                entry.usec += usec;
                entry.failed_calls += u64::from(failed) * calls;
            }
        }
    }
}

/// Why a request got no reply from the store.
pub enum Failure {
    Invalid(CommandError),
    /// No master answered before the deadline; a write may or may not have been applied.
    Unavailable,
    /// A read sent to a witness, which holds no data: the master's client address, if known.
    Witness {
        master: Option<String>,
    },
}

/// The error a witness answers a read with: it holds no data, the master does.
pub fn witness_refusal(master: &Option<String>) -> String {
    let at = match master {
        Some(master) => format!("the master, {master}"),
        None => "the master (INFO replication names it once one is elected)".into(),
    };
    format!("WITNESS this replica is a witness: it keeps the log, not the data; read from {at}")
}

pub struct Connection<'a> {
    pub context: &'a ClientContext,
    pub id: u64,
    /// The session the log opened for this connection's writes, once it has one.
    session: Option<u64>,
    write_seq: u64,
    /// Id of the connection's reads and `OpenSession` requests (routing only).
    route_id: u64,
    read_seq: u64,
    pub resp3: bool,
    pub authenticated: bool,
    pub readonly: bool,
    /// The database `SELECT` chose; every command naming keys acts on it.
    pub db: Db,
    /// Between `MULTI` and `EXEC` or `DISCARD`: the commands queued.
    pub multi: Option<crate::action::Queue>,
    /// The keys `WATCH` saw since the last `EXEC`, `DISCARD` or `UNWATCH`.
    pub watched: Vec<keyspace_core::Watched>,
    pub name: Option<Vec<u8>>,
    pub quit: bool,
    /// `SYNC` (`Some(false)`) or `PSYNC` (`Some(true)`) asked for the connection to become a
    /// replication stream (see `sync`); the connection's task hands it over.
    pub sync_requested: Option<bool>,
    /// This connection's entry among the node's live connections (none in unit tests).
    pub entry: Option<std::sync::Arc<crate::clients::ClientEntry>>,
    pub reply_mode: ReplyMode,
    replies_tx: mpsc::Sender<ClientResponse>,
    replies: mpsc::Receiver<ClientResponse>,
}

/// A routing id nobody else holds (with 62 random bits, a clash is never expected), clear of
/// the bits of read ids and opened sessions.
fn fresh_route_id() -> u64 {
    crate::random::<u64>() & !(READ_SESSION_BIT | OPENED_SESSION_BIT)
}

/// Whether the store no longer knows the request's session.
fn is_stale(result: &Result<Reply, Failure>) -> bool {
    matches!(result, Ok(Reply::Error(CommandError::StaleRequest { .. })))
}

impl<'a> Connection<'a> {
    pub(crate) fn new(context: &'a ClientContext) -> Self {
        let (replies_tx, replies) = mpsc::channel(64);
        Connection {
            context,
            id: context.total_connections.fetch_add(1, Ordering::Relaxed) + 1,
            session: None,
            write_seq: 0,
            route_id: fresh_route_id(),
            read_seq: 0,
            resp3: false,
            authenticated: context.password.is_none(),
            readonly: false,
            db: 0,
            multi: None,
            watched: Vec::new(),
            name: None,
            quit: false,
            sync_requested: None,
            entry: None,
            reply_mode: ReplyMode::On,
            replies_tx,
            replies,
        }
    }
}

impl Connection<'_> {
    /// Sends `command` through the cluster until it is answered or the deadline passes; opens a
    /// session first for a write when the connection has none, and a fresh one when the store
    /// has forgotten it (see the module docs).
    pub async fn submit(&mut self, mut command: Command) -> Result<Reply, Failure> {
        if self.readonly {
            if let Command::Get { key } = command {
                command = Command::DirtyGet { key };
            }
        }
        let command = command.in_db(self.db);
        if self.context.witness && !command.is_write() {
            return Err(self.witness_refusal().await);
        }
        let local = command.kind() == CommandKind::DirtyRead;
        let deadline = Instant::now() + REQUEST_DEADLINE;
        let (client_id, seq) = self.next_id(command.kind(), deadline).await?;
        let mut request = ClientRequest {
            client_id,
            seq,
            command,
        };
        let (result, maybe_logged) = self.send_until_answered(&request, local, deadline).await;
        if !is_stale(&result) || !request.command.is_write() {
            return result;
        }
        self.session = None;
        tracing::debug!(
            connection = self.id,
            old_client_id = request.client_id,
            resubmit = !maybe_logged,
            "the store forgot this connection's session"
        );
        if maybe_logged {
            return result;
        }
        (request.client_id, request.seq) = self.next_id(request.command.kind(), deadline).await?;
        self.send_until_answered(&request, local, deadline).await.0
    }

    /// The `(client_id, seq)` of the connection's next request of this kind; a write's opens a
    /// session first if the connection has none.
    async fn next_id(
        &mut self,
        kind: CommandKind,
        deadline: Instant,
    ) -> Result<(u64, u64), Failure> {
        if kind != CommandKind::Write {
            return Ok(self.next_route_id());
        }
        let session = match self.session {
            Some(session) => session,
            None => self.open_session(deadline).await?,
        };
        self.write_seq += 1;
        Ok((session, self.write_seq))
    }

    fn next_route_id(&mut self) -> (u64, u64) {
        self.read_seq += 1;
        (self.route_id | READ_SESSION_BIT, self.read_seq)
    }

    /// Asks the log for a session of the connection's own; its writes number from 1.
    async fn open_session(&mut self, deadline: Instant) -> Result<u64, Failure> {
        let (client_id, seq) = self.next_route_id();
        let request = ClientRequest {
            client_id,
            seq,
            command: Command::OpenSession,
        };
        let session = match self
            .send_until_answered(&request, false, deadline)
            .await
            .0?
        {
            Reply::Int(id) if id as u64 & OPENED_SESSION_BIT != 0 => id as u64,
            other => panic!("OpenSession answered {other:?}"),
        };
        self.session = Some(session);
        self.write_seq = 0;
        Ok(session)
    }

    /// Sends `request` until it is answered or `deadline` passes. Also says whether an attempt
    /// may have put the request in the log before the last one (an answer was `Indeterminate`
    /// or never came): only a request that was certainly never logged can be sent again under
    /// a new session.
    async fn send_until_answered(
        &mut self,
        request: &ClientRequest,
        local: bool,
        deadline: Instant,
    ) -> (Result<Reply, Failure>, bool) {
        let (client_id, seq) = (request.client_id, request.seq);
        let mut prefer = None;
        let mut attempt = 0u32;
        let mut maybe_logged = false;
        loop {
            attempt += 1;
            let event = Event::Request {
                request: request.clone(),
                prefer,
                local,
                reply: self.replies_tx.clone(),
            };
            if self.context.core.send(event).await.is_err() {
                return (Err(Failure::Unavailable), maybe_logged);
            }
            match self.await_reply(client_id, seq).await {
                Some(Outcome::Done(reply)) => return (Ok(reply), maybe_logged),
                Some(Outcome::Rejected(Rejection::Invalid(error))) => {
                    return (Err(Failure::Invalid(error)), maybe_logged)
                }
                Some(Outcome::Rejected(Rejection::NotMaster { master_hint })) => {
                    prefer = master_hint
                }
                Some(Outcome::Rejected(Rejection::Busy)) => prefer = None,
                Some(Outcome::Indeterminate) | None => {
                    prefer = None;
                    maybe_logged = true;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return (Err(Failure::Unavailable), maybe_logged);
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

    /// A witness's answer to a read: where the master takes it instead.
    async fn witness_refusal(&self) -> Failure {
        let status = self.status().await;
        let master = status.and_then(|s| {
            let id = s.master?;
            let row = s.members.into_iter().find(|m| m.id == id);
            // A founder started with --peers has no client address in the configuration.
            let addr = row.map(|r| r.client_addr).filter(|a| !a.is_empty());
            Some(match addr {
                Some(addr) => format!("replica {id} at {addr}"),
                None => format!("replica {id}"),
            })
        });
        Failure::Witness { master }
    }

    pub async fn status(&self) -> Option<Status> {
        let (tx, rx) = oneshot::channel();
        self.context.core.send(Event::Info(tx)).await.ok()?;
        rx.await.ok()
    }
}

#[cfg(all(test, not(madsim)))]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use keyspace_core::kv::{StateMachine, StateMachineConfig, SESSION_REPLIES_MAX};
    use keyspace_core::Slot;

    use super::*;

    /// A one-replica store that applies every write in its own slot and keeps one session only,
    /// so any other client's write evicts the connection's session.
    pub(crate) struct Store {
        machine: StateMachine,
        slot: Slot,
        /// Writes sent to the store, retries included.
        pub(crate) writes: u64,
        other_clients: u64,
        /// The next write is applied, its session evicted and its answer lost.
        lose_next_answer: bool,
    }

    impl Store {
        fn new() -> Self {
            let config = StateMachineConfig {
                sessions_max: 1,
                ..StateMachineConfig::default()
            };
            Store {
                machine: StateMachine::new(config),
                slot: 0,
                writes: 0,
                other_clients: 0,
                lose_next_answer: false,
            }
        }

        fn apply(&mut self, request: &ClientRequest) -> Outcome {
            self.slot += 1;
            let mut responses = self
                .machine
                .apply_batch(self.slot, std::slice::from_ref(request));
            responses.pop().expect("one response per request").outcome
        }

        fn other_client_writes(&mut self) {
            self.other_clients += 1;
            let request = ClientRequest {
                client_id: 1_000_000 + self.other_clients,
                seq: 1,
                command: set(b"other", b"x"),
            };
            assert_eq!(self.apply(&request), Outcome::Done(Reply::Ok));
        }

        fn answer(&mut self, request: &ClientRequest) -> Outcome {
            if !request.command.is_write() {
                return Outcome::Done(self.machine.read(&request.command));
            }
            if request.command == Command::OpenSession {
                return self.apply(request);
            }
            self.writes += 1;
            let outcome = self.apply(request);
            if std::mem::take(&mut self.lose_next_answer) {
                self.other_client_writes();
                return Outcome::Indeterminate;
            }
            outcome
        }
    }

    async fn serve_store(mut events: mpsc::Receiver<Event>, store: Arc<Mutex<Store>>) {
        while let Some(event) = events.recv().await {
            if let Event::Request { request, reply, .. } = event {
                let outcome = store.lock().unwrap().answer(&request);
                let _ = reply.try_send(ClientResponse {
                    client_id: request.client_id,
                    seq: request.seq,
                    outcome,
                });
            }
        }
    }

    fn set(key: &[u8], value: &[u8]) -> Command {
        Command::Set {
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    pub(crate) fn get(key: &[u8]) -> Command {
        Command::Get { key: key.to_vec() }
    }

    /// When a test's session is evicted.
    enum Eviction {
        /// Now, by another client's write.
        Now,
        /// Right after the connection's next write is applied; that write's answer is lost.
        AfterNextWrite,
    }

    /// A runtime with a fresh one-session [`Store`] behind a client context.
    pub(crate) struct Harness {
        pub(crate) runtime: tokio::runtime::Runtime,
        pub(crate) context: ClientContext,
        pub(crate) store: Arc<Mutex<Store>>,
    }

    impl Harness {
        pub(crate) fn new() -> Self {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (core, events) = mpsc::channel(16);
            let store = Arc::new(Mutex::new(Store::new()));
            runtime.spawn(serve_store(events, store.clone()));
            let context = ClientContext {
                core,
                node_id: 1,
                client_addr: "127.0.0.1:6379".parse().unwrap(),
                founders: Default::default(),
                password: None,
                started: Instant::now(),
                total_connections: AtomicU64::new(0),
                commands_processed: AtomicU64::new(0),
                command_stats: Default::default(),
                config: crate::server_config::ServerConfig::new(
                    "127.0.0.1:6379".parse().unwrap(),
                    "",
                    None,
                ),
                clients: Default::default(),
                error_stats: Default::default(),
                witness: false,
                replica_of: Default::default(),
                scripts_may_debug: Default::default(),
            };
            Harness {
                runtime,
                context,
                store,
            }
        }

        /// Makes `writes` writes, then arranges the eviction. Returns the session's client id, if
        /// the writes opened one.
        async fn write_then_evict(
            &self,
            conn: &mut Connection<'_>,
            writes: u64,
            eviction: Eviction,
        ) -> Option<u64> {
            for i in 0..writes {
                let value = format!("v{i}").into_bytes();
                let reply = conn.submit(set(b"k", &value)).await;
                assert!(matches!(reply, Ok(Reply::Ok)));
            }
            let mut store = self.store.lock().unwrap();
            match eviction {
                Eviction::Now => {
                    store.other_client_writes();
                    let session = conn.session.expect("the writes opened a session");
                    assert!(store.machine.session(session).is_none());
                }
                Eviction::AfterNextWrite => store.lose_next_answer = true,
            }
            conn.session
        }
    }

    #[test]
    fn connection_moves_to_a_fresh_session_when_its_session_was_evicted() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            let old_client_id = harness.write_then_evict(conn, 3, Eviction::Now).await;

            let reply = conn.submit(set(b"k", b"after eviction")).await;

            assert!(matches!(reply, Ok(Reply::Ok)), "{:?}", reply.ok());
            assert_ne!(conn.session, old_client_id);
            assert!(conn.session.is_some());
            assert_eq!(conn.write_seq, 1);
            let value = conn.submit(get(b"k")).await;
            assert!(matches!(value, Ok(Reply::Value(Some(v))) if v == b"after eviction"));
        });
    }

    /// A write is applied, its session evicted and its answer lost; the retry is refused as
    /// stale, and the write is not applied a second time, however early in its session it was:
    /// the session was opened by the log, so the store never starts it afresh.
    fn retry_after_eviction_is_refused_and_applies_once(writes_before: u64) {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            let old_client_id = harness
                .write_then_evict(conn, writes_before, Eviction::AfterNextWrite)
                .await;

            let add = Command::Add {
                key: b"n".to_vec(),
                delta: 1,
            };
            let reply = conn.submit(add).await;

            assert!(
                matches!(reply, Ok(Reply::Error(CommandError::StaleRequest { .. }))),
                "{:?}",
                reply.ok()
            );
            let value = conn.submit(get(b"n")).await;
            assert!(matches!(value, Ok(Reply::Value(Some(v))) if v == b"1"));
            assert_eq!(conn.session, None);
            assert!(matches!(
                conn.submit(set(b"k", b"next")).await,
                Ok(Reply::Ok)
            ));
            assert!(conn.session.is_some() && conn.session != old_client_id);
        });
    }

    #[test]
    fn stale_answer_to_a_retry_past_the_session_window_reaches_the_client() {
        retry_after_eviction_is_refused_and_applies_once(SESSION_REPLIES_MAX + 1);
    }

    #[test]
    fn retry_of_a_sessions_first_write_after_eviction_is_refused_not_applied_twice() {
        retry_after_eviction_is_refused_and_applies_once(0);
    }

    #[test]
    fn a_connection_opens_its_session_through_the_store_before_its_first_write() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            assert!(matches!(
                conn.submit(get(b"k")).await,
                Ok(Reply::Value(None))
            ));
            assert_eq!(conn.session, None, "a read needs no session");

            assert!(matches!(conn.submit(set(b"k", b"v")).await, Ok(Reply::Ok)));

            let session = conn.session.expect("the write opened a session");
            assert_ne!(session & OPENED_SESSION_BIT, 0);
            let store = harness.store.lock().unwrap();
            let kept = store.machine.session(session).expect("the store holds it");
            assert_eq!(kept.highest_seq(), 1);
            assert_eq!(store.writes, 1);
        });
    }
}
