//! [`Register`]: drives the sans-IO [`Client`] over real stores, one thread per store.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::client::{Client, Completion, Config, ConfigError, RequestId, StartError};
use crate::keys::Timestamp;
use crate::store::{Store, StoreError, StoreOp, StoreReply};

/// Requests waiting for one store; past it a request fails at once (the store is too slow to
/// keep up, and the register treats it as silent).
pub const STORE_QUEUE_MAX: usize = 1024;
/// How long an operation may wait for `n - t` stores unless told otherwise.
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum RegisterError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{failed} stores failed and at least {needed} must answer: start the failed stores again or check their addresses")]
    Unavailable { failed: usize, needed: usize },
    #[error("fewer than {needed} stores answered within {waited_ms} ms (more than a minority of the stores is down or slow); a write may still take effect")]
    Timeout { needed: usize, waited_ms: u128 },
}

type Reply = (usize, RequestId, Result<StoreReply, StoreError>);

/// A register over real stores. Each store is served by its own thread, so a slow or dead
/// store holds up nothing: every operation follows the `n - t` fastest stores.
pub struct Register {
    client: Client,
    stores: Vec<SyncSender<(RequestId, StoreOp)>>,
    /// Per store, requests not yet handed to its thread, which takes one at a time: a request
    /// the client no longer wants by its turn is dropped unsent.
    queues: Vec<VecDeque<(RequestId, StoreOp)>>,
    busy: Vec<bool>,
    replies: Receiver<Reply>,
    timeout: Duration,
    round_trips: u32,
}

impl Register {
    pub fn new<S: Store + Send + 'static>(
        stores: Vec<S>,
        config: Config,
    ) -> Result<Register, RegisterError> {
        let config = Config {
            stores: stores.len(),
            ..config
        };
        let client = Client::new(config)?;
        let (reply_tx, replies) = mpsc::channel();
        let n = stores.len();
        let stores = stores
            .into_iter()
            .enumerate()
            .map(|(i, store)| spawn_store(i, store, reply_tx.clone()))
            .collect();
        Ok(Register {
            client,
            stores,
            queues: vec![VecDeque::new(); n],
            busy: vec![false; n],
            replies,
            timeout: TIMEOUT_DEFAULT,
            round_trips: 0,
        })
    }

    /// How long an operation waits for `n - t` stores before giving up.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Round trips of the last operation (see [`Completion`]).
    pub fn last_round_trips(&self) -> u32 {
        self.round_trips
    }

    pub fn write(&mut self, value: &[u8]) -> Result<Timestamp, RegisterError> {
        self.client.start_write(value.to_vec())?;
        match self.drive()? {
            Completion::Written { ts, round_trips } => {
                self.round_trips = round_trips;
                Ok(ts)
            }
            other => Err(self.failure(other)),
        }
    }

    /// The value and its timestamp; `None` while nothing was ever written.
    pub fn read(&mut self) -> Result<(Timestamp, Option<Vec<u8>>), RegisterError> {
        self.client.start_read()?;
        match self.drive()? {
            Completion::Read {
                ts,
                value,
                round_trips,
            } => {
                self.round_trips = round_trips;
                Ok((ts, value))
            }
            other => Err(self.failure(other)),
        }
    }

    /// Lets the last write's clean-up run on for at most `within`; whether it finished.
    pub fn settle(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            self.flush();
            if self.client.is_idle() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.replies.recv_timeout(left) {
                Ok(reply) => self.take_reply(reply),
                Err(_) => return false,
            }
        }
    }

    fn failure(&mut self, completion: Completion) -> RegisterError {
        match completion {
            Completion::Unavailable { failed, needed } => {
                RegisterError::Unavailable { failed, needed }
            }
            other => unreachable!("operation ended with {other:?}"),
        }
    }

    fn drive(&mut self) -> Result<Completion, RegisterError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        loop {
            self.flush();
            if let Some(completion) = self.client.poll_completion() {
                self.flush();
                return Ok(completion);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.replies.recv_timeout(left) {
                Ok(reply) => {
                    self.take_reply(reply);
                    // Every answer already here goes in before the client decides.
                    while let Ok(reply) = self.replies.try_recv() {
                        self.take_reply(reply);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(RegisterError::Timeout {
                        needed: self.client.quorum(),
                        waited_ms: started.elapsed().as_millis(),
                    })
                }
                Err(RecvTimeoutError::Disconnected) => unreachable!("the register holds a sender"),
            }
        }
    }

    fn take_reply(&mut self, (store, id, reply): Reply) {
        assert!(
            self.busy[store],
            "an answer comes only from a store given a request"
        );
        self.busy[store] = false;
        self.client.handle_reply(id, reply);
    }

    /// Queues what the client asks for, then hands each idle store its next wanted request.
    fn flush(&mut self) {
        while let Some(request) = self.client.poll_request() {
            let queue = &mut self.queues[request.store];
            if queue.len() < STORE_QUEUE_MAX {
                queue.push_back((request.id, request.op));
                continue;
            }
            let reply = Err(StoreError("the store's request queue is full".to_string()));
            self.client.handle_reply(request.id, reply);
        }
        for store in 0..self.stores.len() {
            if self.busy[store] {
                continue;
            }
            let queue = &mut self.queues[store];
            while let Some((id, op)) = queue.pop_front() {
                if !self.client.wants(id) {
                    continue;
                }
                if self.stores[store].send((id, op)).is_err() {
                    let reply = Err(StoreError("the store's thread ended".to_string()));
                    self.client.handle_reply(id, reply);
                    continue;
                }
                self.busy[store] = true;
                break;
            }
        }
    }
}

fn spawn_store<S: Store + Send + 'static>(
    index: usize,
    mut store: S,
    replies: mpsc::Sender<Reply>,
) -> SyncSender<(RequestId, StoreOp)> {
    let (tx, rx) = mpsc::sync_channel::<(RequestId, StoreOp)>(1);
    thread::spawn(move || {
        // Ends when the register is dropped (the sender goes) or no one listens any more.
        while let Ok((id, op)) = rx.recv() {
            let reply = op.apply(&mut store);
            if replies.send((index, id, reply)).is_err() {
                return;
            }
        }
    });
    tx
}
