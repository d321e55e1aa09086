//! The core task: owns the [`Replica`] and its log, feeds it inputs and carries out its outputs.
//!
//! One turn: wait for an event or the replica's timer; take every further event already queued
//! (up to [`EVENTS_PER_TURN_MAX`]), hand them all to the replica, then drain its outputs. Sends
//! are coalesced into one batch per peer per turn. `Persist` writes are staged; at the end of a
//! turn in which something staged is waited for, everything staged is appended and made durable
//! with one `fdatasync` (group commit) right on the event loop, `handle_persisted` is called with
//! the last token it covered, and what that released is sent in the same turn. The core holds
//! every message that depends on a write until `handle_persisted` covers it.
//!
//! A sync runs on a blocking thread instead when it carries a snapshot (writing the whole state
//! would hold the loop for a long time: about 0.15 s for 500,000 keys), or when its turn
//! answered clients and recent syncs were slow (see [`SYNC_INLINE_MAX_US`]). Meanwhile the loop
//! keeps serving and later writes stay staged, so this replica votes again only once that sync
//! is durable; the others keep a majority.
//!
//! By default every busy turn's sync leaves the loop (the threshold is 0): the replies go out
//! while the disk works. With a threshold, syncs stay on the loop while recent ones were
//! quicker than it: no thread hand-offs, and the writes that arrive during a sync make the next
//! slot's batch larger, at the cost that the loop serves nothing else for one `fdatasync`. A
//! turn that answered no client syncs on the loop and lets its accepts leave before the sync,
//! so a lone writer's followers sync in parallel.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use keyspace_core::{drive, StorageWrite};
use keyspace_core::{
    ClientId, ClientRequest, ClientResponse, Nanos, NodeId, Outcome, Output, Rejection, Replica,
    Seq,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::event::{kind_name, Event, MemberRow, PeerFrame, Status};
use crate::peer::{self, ClusterKey, PeerLink};
use crate::storage::{FileLog, StorageError};

/// A sync running on a blocking thread (one that carries a snapshot): gives the log back with
/// the outcome and what it covered.
type BackgroundSync = JoinHandle<SyncDone>;

/// What a sync hands back: the log, the outcome, the last token it covered, the records it wrote,
/// whether one was a snapshot, and how long the write and `fdatasync` took.
struct SyncDone {
    log: FileLog,
    result: Result<(), StorageError>,
    token: u64,
    records: u64,
    snapshot: bool,
    took: Duration,
}

/// Most events handled in one turn before outputs are carried out.
pub const EVENTS_PER_TURN_MAX: usize = 4096;
/// A reply route older than this is forgotten (its client gave up long ago).
pub const ROUTE_TTL: Duration = Duration::from_secs(30);
/// Longest a staged write that nothing waits for (a `Learn` or `Chosen` record, a `Compact`)
/// stays unsynced when nothing else needs the disk. Such a write rides along with the next sync
/// that something does wait for; if a crash loses it, the replica learns the slot again.
pub const LAZY_SYNC_MAX: Duration = Duration::from_millis(10);
/// Most syncs run in one turn.
pub const SYNCS_PER_TURN_MAX: usize = 3;
/// The default of `keyspace node --sync-inline-max-us`: a busy turn's sync runs on a blocking
/// thread while recent syncs (write and `fdatasync`, snapshots left out) averaged this long
/// or longer; the event loop then writes replies while the disk works, which pays for the two
/// thread hand-offs. 0: every busy turn's sync does. Which is quicker depends on the disk, so
/// the threshold stays a flag; figures in docs/benchmarks.md.
pub const SYNC_INLINE_MAX_US: u64 = 0;
/// The weight of the newest sync in the recent average: 1 / SYNC_AVERAGE_WEIGHT.
const SYNC_AVERAGE_WEIGHT: u64 = 8;
/// How long a removed member's link is kept: long enough for it to hear of its removal from
/// the group's answers to it (a lease or election attempt, a catch-up request) and stop.
pub const REMOVED_PEER_GRACE: Duration = Duration::from_secs(30);
/// How long a replica that applied its own removal keeps answering its peers before it stops:
/// it may be the only one that knows the removal was chosen (it proposed it as master), and
/// the remaining members need that slot to form quorums of the new configuration, so it
/// serves catch-up and tells peers of the older configuration so (see the core's
/// `Replica::handle_message`). Longer than a lease and an election with retries.
pub const REMOVED_SELF_LINGER: Duration = Duration::from_secs(5);
/// Capacity of the channel into the core task.
pub const EVENTS_QUEUE_MAX: usize = 16 * 1024;

/// What ended a wait of the event loop.
enum Wake {
    Event(Event),
    Timer,
    /// Staged writes are due: something waits for them, or they waited long enough.
    StagedDue,
    /// The sync running on a blocking thread finished.
    Synced(Box<Result<SyncDone, tokio::task::JoinError>>),
}

/// What the shell needs to follow the configuration with its peer links.
pub struct Peering {
    /// This replica's own peer address (`MEMBER LIST` shows it).
    pub me_addr: std::net::SocketAddr,
    pub key: ClusterKey,
    /// Whom the peer listener accepts and whom it tells they were removed; the shell keeps it
    /// to the applied configuration.
    pub admission: std::sync::Arc<std::sync::RwLock<peer::Admission>>,
}

/// Why [`Shell::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Stopped {
    /// Every event sender is gone.
    EventsClosed,
    /// This replica applied its own removal at configuration `epoch`.
    Removed { epoch: u64 },
}

enum Route {
    Local(mpsc::Sender<ClientResponse>),
    Remote(NodeId),
}

pub struct Shell {
    replica: Replica,
    /// `None` while a background sync owns it.
    log: Option<FileLog>,
    background: Option<BackgroundSync>,
    /// Writes drained since the last sync (bounded by what the core emits: its window, pending
    /// queue and catch-up limits).
    staged: Vec<StorageWrite>,
    /// Something staged is waited for: a promise, an accept or a snapshot.
    staged_urgent: bool,
    /// When the staged writes must be synced even if nothing waits for them.
    lazy_deadline: Instant,
    links: BTreeMap<NodeId, PeerLink>,
    peering: Peering,
    /// The configuration epoch the links were last matched to (`None` before the first turn).
    links_epoch: Option<u64>,
    /// Links of removed members, kept until the instant given (see [`REMOVED_PEER_GRACE`]).
    retiring: BTreeMap<NodeId, Instant>,
    /// When this replica applied its own removal: it stops [`REMOVED_SELF_LINGER`] later.
    removed_since: Option<Instant>,
    start: Instant,
    routes: HashMap<(ClientId, Seq), (Route, Instant)>,
    outbox: BTreeMap<NodeId, Vec<PeerFrame>>,
    /// Outputs being carried out (kept to reuse its allocation).
    drained: Vec<Output>,
    /// An answer went to one of this replica's own client connections in the current turn.
    answered_this_turn: bool,
    issued_token: u64,
    next_sweep: Instant,
    requests_served: u64,
    log_syncs: u64,
    log_records: u64,
    log_sync_us: u64,
    log_syncs_off_loop: u64,
    /// Recent average of write and `fdatasync` time, snapshots left out.
    sync_recent_us: u64,
    /// See [`SYNC_INLINE_MAX_US`].
    sync_inline_max_us: u64,
    /// The replication streams (`SYNC`) of this replica's clients.
    streams: crate::sync::Streams,
}

impl Shell {
    pub fn new(
        replica: Replica,
        log: FileLog,
        links: BTreeMap<NodeId, PeerLink>,
        peering: Peering,
        start: Instant,
        sync_inline_max_us: u64,
    ) -> Shell {
        Shell {
            replica,
            log: Some(log),
            background: None,
            staged: Vec::new(),
            staged_urgent: false,
            lazy_deadline: Instant::now(),
            links,
            peering,
            links_epoch: None,
            retiring: BTreeMap::new(),
            removed_since: None,
            start,
            routes: HashMap::new(),
            outbox: BTreeMap::new(),
            drained: Vec::new(),
            answered_this_turn: false,
            issued_token: 0,
            next_sweep: Instant::now() + ROUTE_TTL,
            requests_served: 0,
            log_syncs: 0,
            log_records: 0,
            log_sync_us: 0,
            log_syncs_off_loop: 0,
            sync_recent_us: 0,
            sync_inline_max_us,
            streams: crate::sync::Streams::default(),
        }
    }

    /// The local monotonic time for the protocol; also gives the replica the wall clock, which
    /// expiry's time comes from (see docs/design.md, "Expiry").
    fn now_ns(&mut self) -> Nanos {
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        self.replica.set_wall_clock_ms(wall_ms);
        Instant::now().duration_since(self.start).as_nanos() as Nanos
    }

    fn me(&self) -> NodeId {
        self.replica.node_id()
    }

    /// Runs until every event sender is gone, or until this replica applied its own removal.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) -> Stopped {
        let mut last_timer: Option<Instant> = None;
        loop {
            if let Some(epoch) = self.removed_and_done() {
                tracing::error!(
                    node = self.me(),
                    epoch,
                    "this replica was removed from the group (MEMBER REMOVE); stopping"
                );
                return Stopped::Removed { epoch };
            }
            let deadline = self.timer_deadline(last_timer);
            let Some(wake) = self.wait(&mut events, deadline).await else {
                return Stopped::EventsClosed;
            };
            last_timer = match wake {
                Wake::Timer => deadline,
                _ => None,
            };
            match wake {
                Wake::Event(event) => {
                    self.handle(event);
                    for _ in 1..EVENTS_PER_TURN_MAX {
                        match events.try_recv() {
                            Ok(event) => self.handle(event),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Synced(done) => self.on_background_synced(*done),
                Wake::Timer | Wake::StagedDue => {}
            }
            self.finish_turn().await;
        }
    }

    /// The epoch of this replica's removal, once it applied it or a peer refused it as removed
    /// (a replica restarted after its removal, which the group no longer sends the log to).
    fn removed_at_epoch(&self) -> Option<u64> {
        if self.replica.is_removed() {
            return Some(self.replica.configuration().epoch);
        }
        let told = self.links.values();
        let told = told.map(|l| l.removed_at_epoch.load(Ordering::Acquire));
        told.max().filter(|epoch| *epoch > 0)
    }

    /// The epoch of this replica's removal once it should stop: at once when a peer refused
    /// it, [`REMOVED_SELF_LINGER`] after it applied the removal itself.
    fn removed_and_done(&mut self) -> Option<u64> {
        let epoch = self.removed_at_epoch()?;
        if !self.replica.is_removed() {
            return Some(epoch);
        }
        let since = *self.removed_since.get_or_insert_with(Instant::now);
        (since.elapsed() >= REMOVED_SELF_LINGER).then_some(epoch)
    }

    /// When the replica's timer is due. A timer that fired without moving on is put off by
    /// 1 ms, so it cannot spin the task.
    fn timer_deadline(&self, last_timer: Option<Instant>) -> Option<Instant> {
        if let Some(since) = self.removed_since {
            return Some(since + REMOVED_SELF_LINGER);
        }
        let deadline = self
            .replica
            .poll_timeout()
            .map(|t| self.start + Duration::from_nanos(t));
        match (deadline, last_timer) {
            (Some(at), Some(last)) if at <= last => Some(Instant::now() + Duration::from_millis(1)),
            _ => deadline,
        }
    }

    /// Waits for the next event, the timer, staged writes to come due or the background sync to
    /// end; `None` once every event sender is gone.
    async fn wait(
        &mut self,
        events: &mut mpsc::Receiver<Event>,
        deadline: Option<Instant>,
    ) -> Option<Wake> {
        let far = Instant::now() + Duration::from_secs(3600);
        let staged_wait = self.background.is_none() && !self.staged.is_empty();
        // Writes something waits for are due at once (a turn stops after SYNCS_PER_TURN_MAX).
        let staged_due = self.staged_due(Instant::now());
        let background_done = async {
            match &mut self.background {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => event.map(Wake::Event),
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => Some(Wake::Timer),
            _ = tokio::time::sleep_until(staged_due), if staged_wait => Some(Wake::StagedDue),
            done = background_done => Some(Wake::Synced(Box::new(done))),
        }
    }

    /// The rest of a turn: timers, then every output, then the syncs and what they released.
    async fn finish_turn(&mut self) {
        let now = self.now_ns();
        self.replica.handle_timeout(now);
        self.drain_outputs();
        self.follow_configuration();
        self.flush_outbox();
        // A turn that answered no client (a lone writer's, a follower's) first lets the peer
        // tasks put its accepts on the wire, so the followers sync while this replica does:
        // one client's SET p50 went from 0.48 to 0.37 ms. A turn that answered clients syncs
        // first and its replies and accepts leave together after: under load, starting the
        // accepts earlier bought no throughput in paired runs, as the followers then compete
        // with the reply writes for the cores and with this sync for the disk. On a slow disk
        // such a turn's sync leaves the loop instead, so the replies go out meanwhile.
        let answered = std::mem::take(&mut self.answered_this_turn);
        if !answered && self.sync_due() {
            tokio::task::yield_now().await;
        }
        // What a sync released leaves at once. Bounded: a sync's outputs hold at most one
        // more write to sync.
        for _ in 0..SYNCS_PER_TURN_MAX {
            if !self.sync(answered) {
                break;
            }
            self.drain_outputs();
            self.flush_outbox();
        }
        self.sweep_routes();
        self.forward_to_streams();
    }

    /// Sends what this turn applied to the replication streams; stops the core recording it
    /// once there is none.
    fn forward_to_streams(&mut self) {
        if !self.replica.state_machine().is_propagating() {
            return;
        }
        self.streams.forward(self.replica.take_propagated());
        if self.streams.is_empty() {
            self.replica.set_propagating(false);
        }
    }

    /// Whether [`Self::sync`] would sync now.
    fn sync_due(&self) -> bool {
        let now = Instant::now();
        self.background.is_none() && !self.staged.is_empty() && now >= self.staged_due(now)
    }

    /// When what is staged must be synced: `now` if something waits for it, else at the lazy
    /// deadline.
    fn staged_due(&self, now: Instant) -> Instant {
        match self.staged_urgent {
            true => now,
            false => self.lazy_deadline,
        }
    }

    /// Appends everything staged and makes it durable with one `fdatasync`, unless nothing is
    /// staged or nothing staged is waited for before the lazy deadline. `answered` says the turn
    /// answered clients, whose replies a sync on the loop would hold up. Returns true when it
    /// synced on the loop (what that released is then waiting to be drained).
    fn sync(&mut self, answered: bool) -> bool {
        if !self.sync_due() {
            return false;
        }
        self.staged_urgent = false;
        let writes = std::mem::take(&mut self.staged);
        let log = self
            .log
            .take()
            .expect("no background sync runs, so the log is here");
        let token = self.issued_token;
        let snapshot = writes
            .iter()
            .any(|w| matches!(w, StorageWrite::Snapshot(_)));
        let slow = syncs_slow(self.sync_recent_us, self.sync_inline_max_us);
        if sync_off_loop(snapshot, answered, slow) {
            self.log_syncs_off_loop += 1;
            #[allow(deprecated)] // madsim marks it so; under madsim it runs as an ordinary task
            let task =
                tokio::task::spawn_blocking(move || write_and_sync(log, &writes, token, snapshot));
            self.background = Some(task);
            return false;
        }
        self.on_synced(write_and_sync(log, &writes, token, snapshot));
        true
    }

    fn on_background_synced(&mut self, done: Result<SyncDone, tokio::task::JoinError>) {
        self.background = None;
        match done {
            Ok(done) => {
                if done.snapshot {
                    let took_ms = done.took.as_millis() as u64;
                    tracing::info!(took_ms, "snapshot written and synced");
                }
                self.on_synced(done)
            }
            Err(error) => {
                tracing::error!(%error, "a sync on a blocking thread failed; stopping");
                std::process::exit(70);
            }
        }
    }

    fn on_synced(&mut self, done: SyncDone) {
        let mut log = done.log;
        if let Err(error) = done.result {
            // The replica's promises may not be on disk: it must not go on.
            tracing::error!(%error, "cannot make the log durable; stopping");
            std::process::exit(70);
        }
        if !self.replica.is_recovering_storage() {
            log.set_recovered(); // segments damaged at open may go once compacted
        }
        self.log = Some(log);
        self.log_syncs += 1;
        self.log_records += done.records;
        self.log_sync_us += done.took.as_micros() as u64;
        if !done.snapshot {
            self.sync_recent_us = recent_average_us(self.sync_recent_us, done.took);
        }
        let now = self.now_ns();
        self.replica.handle_persisted(now, done.token);
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
            Event::Subscribe {
                chunks,
                queued_bytes,
                subscribed,
            } => {
                self.replica.set_propagating(true);
                self.streams
                    .add(crate::sync::Subscriber::new(chunks, queued_bytes));
                let _ = subscribed.send(());
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
                self.answered_this_turn = true;
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

    fn drain_outputs(&mut self) {
        let mut outputs = std::mem::take(&mut self.drained);
        drive::drain(&mut self.replica, &mut outputs);
        for output in outputs.drain(..) {
            match output {
                Output::Send { to, msg } => self
                    .outbox
                    .entry(to)
                    .or_default()
                    .push(PeerFrame::Protocol(msg)),
                Output::Persist { token, mut writes } => {
                    if self.staged.is_empty() {
                        self.lazy_deadline = Instant::now() + LAZY_SYNC_MAX;
                    }
                    self.staged_urgent |= writes.iter().any(is_waited_for);
                    self.staged.append(&mut writes);
                    self.issued_token = token;
                }
                Output::Reply(response) => self.deliver(response),
            }
        }
        self.drained = outputs;
    }

    /// Matches the peer links to the applied configuration once it changed: dials members it
    /// has no link to (at their configured peer address), and drops the link of a removed
    /// member after [`REMOVED_PEER_GRACE`] (until then the group's answers reach it, so that it
    /// learns of its removal and stops). Tells the peer listener whom to accept.
    fn follow_configuration(&mut self) {
        let now = Instant::now();
        let epoch = self.replica.configuration().epoch;
        let changed = self.links_epoch != Some(epoch);
        if changed {
            self.links_epoch = Some(epoch);
            self.dial_new_members();
            let config = self.replica.configuration();
            for &id in self.links.keys().filter(|id| config.is_removed(**id)) {
                self.retiring.entry(id).or_insert(now + REMOVED_PEER_GRACE);
            }
        }
        let expired: Vec<NodeId> = self
            .retiring
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            // Dropping the sender ends the dialler task and its connection.
            self.retiring.remove(id);
            self.links.remove(id);
            tracing::info!(peer = id, epoch, "removed peer's link dropped");
        }
        if changed || !expired.is_empty() {
            let config = self.replica.configuration();
            let accepted = config.member_ids().chain(self.links.keys().copied());
            let mut accepted: Vec<NodeId> = accepted.collect();
            accepted.sort_unstable();
            accepted.dedup();
            let removed = config.removed.iter().copied();
            let removed = removed.filter(|id| !accepted.contains(id)).collect();
            *self
                .peering
                .admission
                .write()
                .expect("admission lock poisoned") = peer::Admission {
                accepted,
                removed,
                epoch,
            };
        }
    }

    fn dial_new_members(&mut self) {
        let me = self.me();
        let config = self.replica.configuration();
        for (&id, member) in &config.members {
            if id == me || self.links.contains_key(&id) {
                continue;
            }
            match member.peer_addr.parse() {
                Ok(addr) => {
                    let link = peer::spawn_dialler(me, id, addr, self.peering.key.clone());
                    self.links.insert(id, link);
                    tracing::info!(peer = id, %addr, epoch = config.epoch, "new member; dialling it");
                }
                Err(_) => {
                    tracing::warn!(peer = id, addr = %member.peer_addr, "member has no peer address this replica can dial")
                }
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
            keys_per_db: (0..keyspace_core::DATABASES)
                .map(|db| replica.state_machine().db_len(db))
                .collect(),
            expires_per_db: (0..keyspace_core::DATABASES)
                .map(|db| replica.state_machine().db_expires(db))
                .collect(),
            sessions: replica.state_machine().sessions_len(),
            peers_connected: self
                .links
                .values()
                .filter(|l| l.connected.load(Ordering::Acquire))
                .count(),
            peers: self.links.len(),
            requests_served: self.requests_served,
            log_syncs: self.log_syncs,
            log_records: self.log_records,
            log_sync_us: self.log_sync_us,
            log_syncs_off_loop: self.log_syncs_off_loop,
            log_sync_recent_us: self.sync_recent_us,
            storage_recovering: replica.is_recovering_storage(),
            epoch: replica.configuration().epoch,
            kind: self.own_kind(),
            members: self.member_rows(),
            replication_streams: self.streams.len(),
        }
    }

    /// This replica's kind in the configuration it applied, or `removed`.
    fn own_kind(&self) -> &'static str {
        let config = self.replica.configuration();
        match config.members.get(&self.me()) {
            Some(member) => kind_name(member),
            None if self.replica.is_removed() || config.is_removed(self.me()) => "removed",
            None => "none",
        }
    }

    /// The applied configuration's members, with what this replica knows of each: its links,
    /// and on the master how far each member is behind.
    fn member_rows(&self) -> Vec<MemberRow> {
        let progress: BTreeMap<NodeId, _> = self.replica.member_progress().into_iter().collect();
        let leads = !progress.is_empty();
        let chosen = self.replica.chosen_through();
        let config = self.replica.configuration();
        let rows = config.members.iter().map(|(&id, member)| {
            let link = self.links.get(&id);
            let known_addr = match link {
                Some(link) => link.addr.to_string(),
                None if id == self.me() => self.peering.me_addr.to_string(),
                None => String::new(),
            };
            MemberRow {
                id,
                peer_addr: Some(member.peer_addr.clone())
                    .filter(|a| !a.is_empty())
                    .unwrap_or(known_addr),
                client_addr: member.client_addr.clone(),
                kind: kind_name(member),
                connected: (id != self.me())
                    .then(|| link.is_some_and(|l| l.connected.load(Ordering::Acquire))),
                behind_slots: match progress.get(&id) {
                    // The master itself is as far as it knows (its entry may lag its own log).
                    _ if id == self.me() && leads => Some(0),
                    Some(p) => Some(chosen.saturating_sub(p.chosen_through)),
                    None if leads => Some(chosen),
                    None => None,
                },
            }
        });
        rows.collect()
    }
}

/// Appends `writes` to `log`, writes them and makes them durable with one `fdatasync`.
fn write_and_sync(
    mut log: FileLog,
    writes: &[StorageWrite],
    token: u64,
    snapshot: bool,
) -> SyncDone {
    let began = std::time::Instant::now();
    log.append(writes);
    let result = log.write().and_then(|()| log.sync());
    SyncDone {
        log,
        result,
        token,
        records: writes.len() as u64,
        snapshot,
        took: began.elapsed(),
    }
}

/// Whether a sync runs on a blocking thread: one that carries a snapshot always does; one of a
/// turn that answered clients does while recent syncs were `slow` (see
/// [`SYNC_INLINE_MAX_US`]), so that the loop writes the replies meanwhile. Any other stays on
/// the loop, which has nothing to do during it but would pay the hand-offs (a lone writer's
/// SET p50 0.58 to 0.60 -> 0.69 to 0.75 ms on a slow day when its syncs left the loop too).
fn sync_off_loop(snapshot: bool, answered: bool, slow: bool) -> bool {
    snapshot || (answered && slow)
}

/// Whether recent syncs, averaging `recent_us`, count as slow against `threshold_us`.
fn syncs_slow(recent_us: u64, threshold_us: u64) -> bool {
    recent_us >= threshold_us
}

/// The recent average of sync times with `took` added.
fn recent_average_us(recent_us: u64, took: Duration) -> u64 {
    let took_us = took.as_micros().min(u64::MAX as u128) as u64;
    recent_us - recent_us / SYNC_AVERAGE_WEIGHT + took_us / SYNC_AVERAGE_WEIGHT
}

/// Whether anything waits for `write` to be durable: a promise or an accept (the answers that
/// depend on them are held until then) and a snapshot (compaction waits for it). A record that
/// a slot is chosen only saves learning it again after a restart.
fn is_waited_for(write: &StorageWrite) -> bool {
    match write {
        StorageWrite::Promise { .. } | StorageWrite::Accept { .. } | StorageWrite::Snapshot(_) => {
            true
        }
        StorageWrite::Learn { .. } | StorageWrite::Chosen { .. } | StorageWrite::Compact { .. } => {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(took: Duration, syncs: usize) -> u64 {
        (0..syncs).fold(0, |recent, _| recent_average_us(recent, took))
    }

    /// A threshold like an operator's `--sync-inline-max-us 300`.
    const THRESHOLD_US: u64 = 300;

    /// Whether a busy turn's sync leaves the loop at [`THRESHOLD_US`].
    fn busy_turn_off_loop(recent_us: u64) -> bool {
        sync_off_loop(false, true, syncs_slow(recent_us, THRESHOLD_US))
    }

    #[test]
    fn by_default_every_busy_turns_sync_leaves_the_loop_and_a_quiet_turns_stays() {
        for took_us in [50, 150, 700] {
            let recent = settle(Duration::from_micros(took_us), 100);
            let slow = syncs_slow(recent, SYNC_INLINE_MAX_US);
            assert!(sync_off_loop(false, true, slow), "{took_us} us");
            assert!(!sync_off_loop(false, false, slow), "{took_us} us");
        }
    }

    #[test]
    fn syncs_stay_on_the_loop_while_the_disk_syncs_quickly() {
        let recent = settle(Duration::from_micros(150), 100);
        assert!((140..=150).contains(&recent), "{recent}");
        assert!(!busy_turn_off_loop(recent));
        assert!(
            sync_off_loop(true, false, false),
            "a snapshot always leaves the loop"
        );
    }

    #[test]
    fn busy_turns_sync_off_the_loop_once_the_disk_is_slow_and_on_it_when_fast_again() {
        let mut recent = settle(Duration::from_micros(150), 100);
        let mut slow_syncs = 0;
        while !busy_turn_off_loop(recent) {
            recent = recent_average_us(recent, Duration::from_micros(700));
            slow_syncs += 1;
        }
        assert!(
            (1..=8).contains(&slow_syncs),
            "{slow_syncs} slow syncs to notice"
        );
        assert!(
            !sync_off_loop(false, false, true),
            "a turn that answered nobody syncs on the loop"
        );
        let mut fast_syncs = 0;
        while busy_turn_off_loop(recent) {
            recent = recent_average_us(recent, Duration::from_micros(100));
            fast_syncs += 1;
        }
        assert!(
            (1..=16).contains(&fast_syncs),
            "{fast_syncs} fast syncs to notice"
        );
    }

    #[test]
    fn one_stalled_sync_does_not_move_syncs_off_the_loop_for_long() {
        let recent = settle(Duration::from_micros(150), 100);
        let after_stall = recent_average_us(recent, Duration::from_millis(20));
        assert!(busy_turn_off_loop(after_stall));
        let recovered = (0..40).fold(after_stall, |r, _| {
            recent_average_us(r, Duration::from_micros(150))
        });
        assert!(!busy_turn_off_loop(recovered), "{recovered}");
    }
}
