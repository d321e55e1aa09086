//! The core task: owns the [`Replica`] and its log, feeds it inputs and carries out its outputs.
//!
//! One turn: wait for an event or the replica's timer, take every further event already queued
//! (up to [`EVENTS_PER_TURN_MAX`]), hand them all to the replica, then drain its outputs. Every
//! `Persist` drained in the turn is appended and made durable with one `fdatasync` (group
//! commit) before `handle_persisted` is called with the last token; sends are coalesced into
//! one batch per peer per turn.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use keyspace_core::{
    ClientId, ClientRequest, ClientResponse, Nanos, NodeId, Outcome, Output, Rejection, Replica,
    Role, Seq,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::peer::{PeerFrame, PeerLink};
use crate::storage::{FileLog, LogStore};

/// Most events handled in one turn before outputs are carried out.
pub const EVENTS_PER_TURN_MAX: usize = 4096;
/// Most persist-and-acknowledge rounds in one turn; the rest wait for the next turn.
pub const PERSIST_ROUNDS_MAX: usize = 8;
/// A reply route older than this is forgotten (its client gave up long ago).
pub const ROUTE_TTL: Duration = Duration::from_secs(30);
/// Capacity of the channel into the core task.
pub const EVENTS_QUEUE_MAX: usize = 16 * 1024;

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
    pub keys: usize,
    pub sessions: usize,
    pub peers_connected: usize,
    pub peers: usize,
    pub requests_served: u64,
    pub log_syncs: u64,
}

enum Route {
    Local(mpsc::Sender<ClientResponse>),
    Remote(NodeId),
}

pub struct Shell {
    replica: Replica,
    log: FileLog,
    links: BTreeMap<NodeId, PeerLink>,
    start: Instant,
    routes: HashMap<(ClientId, Seq), (Route, Instant)>,
    outbox: BTreeMap<NodeId, Vec<PeerFrame>>,
    persisted_token: u64,
    issued_token: u64,
    next_sweep: Instant,
    requests_served: u64,
    log_syncs: u64,
}

impl Shell {
    pub fn new(
        replica: Replica,
        log: FileLog,
        links: BTreeMap<NodeId, PeerLink>,
        start: Instant,
    ) -> Shell {
        Shell {
            replica,
            log,
            links,
            start,
            routes: HashMap::new(),
            outbox: BTreeMap::new(),
            persisted_token: 0,
            issued_token: 0,
            next_sweep: Instant::now() + ROUTE_TTL,
            requests_served: 0,
            log_syncs: 0,
        }
    }

    fn now_ns(&self) -> Nanos {
        Instant::now().duration_since(self.start).as_nanos() as Nanos
    }

    fn me(&self) -> NodeId {
        self.replica.node_id()
    }

    /// Runs until every event sender is gone.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        let mut last_timer: Option<Instant> = None;
        loop {
            let mut deadline = self
                .replica
                .poll_timeout()
                .map(|t| self.start + Duration::from_nanos(t));
            if let (Some(at), Some(last)) = (deadline, last_timer) {
                // A timer that fired without moving on must not spin the task.
                if at <= last {
                    deadline = Some(Instant::now() + Duration::from_millis(1));
                }
            }
            let event = match deadline {
                Some(at) => tokio::select! {
                    event = events.recv() => event.map(Some),
                    _ = tokio::time::sleep_until(at) => Some(None),
                },
                None => events.recv().await.map(Some),
            };
            let Some(event) = event else { return };
            last_timer = match event {
                None => deadline,
                Some(_) => None,
            };
            if let Some(event) = event {
                self.handle(event);
                for _ in 1..EVENTS_PER_TURN_MAX {
                    match events.try_recv() {
                        Ok(event) => self.handle(event),
                        Err(_) => break,
                    }
                }
            }
            let now = self.now_ns();
            self.replica.handle_timeout(now);
            self.carry_out();
            self.flush_outbox();
            self.sweep_routes();
        }
    }

    fn handle(&mut self, event: Event) {
        let now = self.now_ns();
        match event {
            Event::Request {
                request,
                prefer,
                local,
                reply,
            } => self.on_request(now, request, prefer, local, reply),
            Event::Peer { from, frames } => {
                for frame in frames {
                    self.on_frame(now, from, frame);
                }
            }
            Event::Info(reply) => {
                let _ = reply.send(self.status(now));
            }
        }
    }

    fn on_request(
        &mut self,
        now: Nanos,
        request: ClientRequest,
        prefer: Option<NodeId>,
        local: bool,
        reply: mpsc::Sender<ClientResponse>,
    ) {
        let me = self.me();
        let target = if local {
            me
        } else {
            prefer.or(self.replica.master_hint()).unwrap_or(me)
        };
        let key = (request.client_id, request.seq);
        if target == me || !self.links.contains_key(&target) {
            self.routes
                .insert(key, (Route::Local(reply), Instant::now()));
            self.replica.handle_request(now, request);
        } else if self.links[&target].connected.load(Ordering::Acquire) {
            self.routes
                .insert(key, (Route::Local(reply), Instant::now()));
            self.outbox
                .entry(target)
                .or_default()
                .push(PeerFrame::Forward(request));
        } else {
            let outcome = Outcome::Rejected(Rejection::NotMaster { master_hint: None });
            let _ = reply.try_send(ClientResponse {
                client_id: key.0,
                seq: key.1,
                outcome,
            });
        }
    }

    fn on_frame(&mut self, now: Nanos, from: NodeId, frame: PeerFrame) {
        match frame {
            PeerFrame::Protocol(msg) => self.replica.handle_message(now, from, msg),
            PeerFrame::Forward(request) => {
                self.routes.insert(
                    (request.client_id, request.seq),
                    (Route::Remote(from), Instant::now()),
                );
                self.replica.handle_request(now, request);
            }
            PeerFrame::ForwardReply(response) => self.deliver(response),
        }
    }

    fn deliver(&mut self, response: ClientResponse) {
        let Some((route, _)) = self.routes.remove(&(response.client_id, response.seq)) else {
            return; // its client retried elsewhere or gave up
        };
        match route {
            Route::Local(tx) => {
                self.requests_served += 1;
                let _ = tx.try_send(response);
            }
            Route::Remote(node) => self
                .outbox
                .entry(node)
                .or_default()
                .push(PeerFrame::ForwardReply(response)),
        }
    }

    /// Drains outputs; makes persists durable in one sync per round and acknowledges them.
    fn carry_out(&mut self) {
        for _ in 0..PERSIST_ROUNDS_MAX {
            self.drain_outputs();
            if self.issued_token == self.persisted_token {
                return;
            }
            if let Err(error) = self.log.sync() {
                // The replica's promises may not be on disk: it must not go on.
                tracing::error!(%error, "cannot make the log durable; stopping");
                std::process::exit(70);
            }
            self.log_syncs += 1;
            self.persisted_token = self.issued_token;
            let now = self.now_ns();
            self.replica.handle_persisted(now, self.persisted_token);
        }
        self.drain_outputs();
    }

    fn drain_outputs(&mut self) {
        while let Some(output) = self.replica.poll_output() {
            match output {
                Output::Send { to, msg } => self
                    .outbox
                    .entry(to)
                    .or_default()
                    .push(PeerFrame::Protocol(msg)),
                Output::Persist { token, writes } => {
                    self.log.append(&writes);
                    self.issued_token = token;
                }
                Output::Reply(response) => self.deliver(response),
            }
        }
    }

    fn flush_outbox(&mut self) {
        for (to, frames) in std::mem::take(&mut self.outbox) {
            let Some(link) = self.links.get(&to) else {
                continue;
            };
            if link.tx.try_send(frames).is_err() {
                tracing::debug!(peer = to, "peer queue full or closed; dropped a batch");
            }
        }
    }

    fn sweep_routes(&mut self) {
        let now = Instant::now();
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + ROUTE_TTL;
        self.routes
            .retain(|_, (_, at)| now.duration_since(*at) < ROUTE_TTL);
    }

    fn status(&self, now: Nanos) -> Status {
        let replica = &self.replica;
        Status {
            node_id: replica.node_id(),
            role: replica.role(now),
            master: replica.master_hint(),
            ballot: replica.log_ballot().to_string(),
            chosen_through: replica.chosen_through(),
            applied_through: replica.applied_through(),
            lease_remaining_ms: replica
                .lease_held_until(now)
                .map(|t| t.saturating_sub(now) / 1_000_000),
            keys: replica.state_machine().len(),
            sessions: replica.state_machine().sessions_len(),
            peers_connected: self
                .links
                .values()
                .filter(|l| l.connected.load(Ordering::Acquire))
                .count(),
            peers: self.links.len(),
            requests_served: self.requests_served,
            log_syncs: self.log_syncs,
        }
    }
}
