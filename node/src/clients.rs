//! The node's live client connections, by id: what `CLIENT LIST` shows of each, a way to close
//! another connection (`CLIENT KILL`), and `CLIENT PAUSE`.
//!
//! Each connection registers when it is accepted and leaves when it ends. The table is bounded
//! ([`CLIENTS_MAX`], and `maxclients` below that): a connection over the bound is refused as
//! Redis refuses it. A connection publishes its state into its entry around each command, so a
//! listing never waits on another connection's command.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Most client connections one node serves, whatever `maxclients` says.
pub const CLIENTS_MAX: usize = 10_000;

/// What `CLIENT LIST` shows of a connection that can change while it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientView {
    pub name: Vec<u8>,
    pub db: u32,
    /// The command running or last run, lower case, `container|sub` for subcommands.
    pub command: String,
    /// Commands queued since MULTI; -1 outside MULTI.
    pub multi: i64,
    pub resp: u8,
    pub readonly: bool,
    /// Bytes of the command being run (`qbuf` while it runs).
    pub command_bytes: usize,
}

/// One live connection.
pub struct ClientEntry {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub fd: i64,
    pub created: Instant,
    last_active: Mutex<Instant>,
    view: Mutex<ClientView>,
    killed: AtomicBool,
    kill: Notify,
}

impl ClientEntry {
    pub fn view(&self) -> ClientView {
        self.view.lock().expect("no panic while publishing").clone()
    }

    /// A command starts: what it is, and that the connection is active now.
    pub fn publish(&self, view: ClientView) {
        *self.last_active.lock().expect("no panic while publishing") = Instant::now();
        *self.view.lock().expect("no panic while publishing") = view;
    }

    pub fn idle(&self) -> Duration {
        self.last_active
            .lock()
            .expect("no panic while publishing")
            .elapsed()
    }

    /// Asks the connection to close (after the reply it is writing, if any).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Whether the client closed its end: a peek at the socket reads end of stream (bytes
    /// waiting, such as pipelined commands, or none yet, mean it is open). A connection that
    /// waits without reading (a blocked `BLPOP`) asks this to stop waiting for nobody.
    pub fn peer_closed(&self) -> bool {
        #[cfg(not(madsim))]
        {
            let Ok(fd) = i32::try_from(self.fd) else {
                return false;
            };
            let mut byte = 0u8;
            // SAFETY: `fd` is this connection's socket, open while its entry is registered;
            // the peek reads at most one byte into `byte` and leaves the socket's data as is.
            let n = unsafe {
                libc::recv(
                    fd,
                    std::ptr::addr_of_mut!(byte).cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            n == 0
        }
        #[cfg(madsim)]
        {
            false
        }
    }

    /// Returns once the connection is asked to close.
    pub async fn killed(&self) {
        while !self.is_killed() {
            self.kill.notified().await;
        }
    }
}

/// `CLIENT PAUSE`: until when, and whether reads wait too.
#[derive(Clone, Copy, Debug)]
struct Pause {
    until: Instant,
    all: bool,
}

/// The node's live connections.
#[derive(Default)]
pub struct ClientRegistry {
    clients: Mutex<BTreeMap<u64, Arc<ClientEntry>>>,
    pause: Mutex<Option<Pause>>,
    /// Connections refused for being over the limit.
    rejected: std::sync::atomic::AtomicU64,
}

impl ClientRegistry {
    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ClientEntry>>> {
        self.clients
            .lock()
            .expect("no panic while holding the clients")
    }

    /// Adds a connection, unless `limit` (or [`CLIENTS_MAX`]) connections are already in.
    pub fn register(
        &self,
        id: u64,
        addr: SocketAddr,
        laddr: SocketAddr,
        fd: i64,
        limit: usize,
    ) -> Option<Arc<ClientEntry>> {
        let mut table = self.table();
        if table.len() >= limit.min(CLIENTS_MAX) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let now = Instant::now();
        let entry = Arc::new(ClientEntry {
            id,
            addr,
            laddr,
            fd,
            created: now,
            last_active: Mutex::new(now),
            view: Mutex::new(ClientView {
                multi: -1,
                resp: 2,
                command: "NULL".into(),
                ..ClientView::default()
            }),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        });
        assert!(
            table.insert(id, entry.clone()).is_none(),
            "connection ids are unique"
        );
        assert!(table.len() <= CLIENTS_MAX, "the client table is bounded");
        Some(entry)
    }

    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    pub fn remove(&self, id: u64) {
        self.table().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.table().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live connection, by id.
    pub fn all(&self) -> Vec<Arc<ClientEntry>> {
        self.table().values().cloned().collect()
    }

    pub fn pause(&self, duration: Duration, all: bool) {
        let until = Instant::now() + duration;
        *self.pause.lock().expect("no panic while pausing") = Some(Pause { until, all });
    }

    pub fn unpause(&self) {
        *self.pause.lock().expect("no panic while pausing") = None;
    }

    /// How long a command must still wait under `CLIENT PAUSE` (`write`: it writes).
    pub fn paused_for(&self, write: bool) -> Option<Duration> {
        let pause = (*self.pause.lock().expect("no panic while pausing"))?;
        let left = pause.until.saturating_duration_since(Instant::now());
        (!left.is_zero() && (pause.all || write)).then_some(left)
    }
}

/// One `CLIENT LIST` line (without its newline), as Redis 7.0 writes it.
pub fn client_line(entry: &ClientEntry, view: &ClientView) -> String {
    let flags = match (view.multi >= 0, view.readonly) {
        (false, false) => "N".to_string(),
        (multi, readonly) => format!(
            "{}{}",
            if multi { "x" } else { "" },
            if readonly { "r" } else { "" }
        ),
    };
    let argv_mem = view.command_bytes;
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db={} sub=0 psub=0 ssub=0 \
         multi={} qbuf={} qbuf-free={} argv-mem={argv_mem} multi-mem=0 rbs=16384 rbp=16384 obl=0 \
         oll=0 omem=0 tot-mem={} events=r cmd={} user=default redir=-1 resp={}",
        entry.id,
        entry.addr,
        entry.laddr,
        entry.fd,
        String::from_utf8_lossy(&view.name),
        entry.created.elapsed().as_secs(),
        entry.idle().as_secs(),
        view.db,
        view.multi,
        view.command_bytes,
        16384usize.saturating_sub(view.command_bytes),
        16384 * 2 + argv_mem,
        view.command,
        view.resp,
    )
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    /// Runs `f` on a runtime of its own (entries hold tokio instants).
    fn block_on(f: impl std::future::Future<Output = ()>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(f);
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_registry_refuses_connections_over_its_limit_and_forgets_closed_ones() {
        block_on(async {
            let registry = ClientRegistry::default();
            assert!(registry.register(1, addr(1), addr(9), 5, 2).is_some());
            assert!(registry.register(2, addr(2), addr(9), 6, 2).is_some());
            assert!(registry.register(3, addr(3), addr(9), 7, 2).is_none());
            registry.remove(1);
            assert!(registry.register(3, addr(3), addr(9), 7, 2).is_some());
            let ids: Vec<u64> = registry.all().iter().map(|e| e.id).collect();
            assert_eq!(ids, vec![2, 3]);
        });
    }

    #[test]
    fn a_client_line_has_redis_fields_in_redis_order() {
        block_on(async {
            let registry = ClientRegistry::default();
            let entry = registry.register(7, addr(5000), addr(6379), 9, 10).unwrap();
            let view = ClientView {
                command: "client|list".into(),
                command_bytes: 26,
                ..entry.view()
            };
            let line = client_line(&entry, &view);
            assert!(line.starts_with("id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=9 name= age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 "), "{line}");
            assert!(
                line.ends_with(" events=r cmd=client|list user=default redir=-1 resp=2"),
                "{line}"
            );
        });
    }

    #[test]
    fn a_pause_holds_writes_and_with_all_reads_until_it_ends() {
        block_on(async {
            let registry = ClientRegistry::default();
            registry.pause(Duration::from_secs(60), false);
            assert!(registry.paused_for(true).is_some());
            assert!(registry.paused_for(false).is_none());
            registry.pause(Duration::from_secs(60), true);
            assert!(registry.paused_for(false).is_some());
            registry.unpause();
            assert!(registry.paused_for(true).is_none());
        });
    }
}
