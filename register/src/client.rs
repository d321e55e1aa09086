//! The register's client: the whole protocol as a sans-IO state machine over `n` stores.
//!
//! The caller starts an operation ([`Client::start_write`], [`Client::start_read`]), then
//! repeatedly drains [`Client::poll_request`] (carry each [`Request`] out on its store, in any
//! order, concurrently or not) and feeds every answer back with [`Client::handle_reply`], until
//! [`Client::poll_completion`] yields the operation's result. Decisions are taken when polled,
//! so a caller that feeds every answer it has before polling lets the client decide on all of
//! them (the simulator does). Once an operation completed, the client may still emit requests:
//! a write's clean-up (the eternal key, then removal of older write-once keys) runs on in the
//! background until the next write starts. [`Client::is_idle`] says when nothing is left.
//!
//! The protocol and its correctness argument are in the crate's README.

use std::collections::{BTreeMap, VecDeque};

use thiserror::Error;

use crate::keys::{Keys, NameError, Timestamp};
use crate::record::{Record, VALUE_MAX_BYTES};
use crate::store::{StoreError, StoreOp, StoreReply};
#[cfg(feature = "mutants")]
use crate::Mutant;

/// Most stores a register spans.
pub const STORES_MAX: usize = 15;
/// Most removals one clean-up sends to one store; older keys beyond it wait for the next write.
pub const REMOVES_PER_STORE_MAX: usize = 64;

/// Regular reads store nothing; atomic reads write back what they return when fewer than
/// `n - t` stores are known to hold it already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Regular,
    Atomic,
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Variant, String> {
        match s {
            "regular" => Ok(Variant::Regular),
            "atomic" => Ok(Variant::Atomic),
            _ => Err(format!("`{s}`: the variant is `atomic` or `regular`")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `n`: the register tolerates `t = (n - 1) / 2` failed stores.
    pub stores: usize,
    pub variant: Variant,
    /// Unique among every client that ever writes this register (a random 64-bit id will do).
    pub client_id: u64,
    /// The register's name: its keys are `NAME/…` in every store.
    pub name: String,
    #[cfg(feature = "mutants")]
    pub mutant: Option<Mutant>,
}

impl Config {
    pub fn new(stores: usize, variant: Variant, client_id: u64, name: &str) -> Config {
        Config {
            stores,
            variant,
            client_id,
            name: name.to_string(),
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} stores: a register spans 1 to {STORES_MAX}")]
    Stores(usize),
    #[error("client id 0 is reserved for the initial value: pick another")]
    ClientZero,
    #[error(transparent)]
    Name(#[from] NameError),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StartError {
    #[error("an operation is still in progress: wait for its completion first")]
    Busy,
    #[error("value of {0} bytes; at most {VALUE_MAX_BYTES} are allowed")]
    ValueTooLarge(usize),
}

pub type RequestId = u64;

/// A request for store `store` (0-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: RequestId,
    pub store: usize,
    pub op: StoreOp,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    Written {
        ts: Timestamp,
        round_trips: u32,
    },
    /// `value` is `None` while nothing was ever written.
    Read {
        ts: Timestamp,
        value: Option<Vec<u8>>,
        round_trips: u32,
    },
    /// So many stores failed that no `n - t` can answer; a write may or may not take effect.
    Unavailable {
        failed: usize,
        needed: usize,
    },
}

/// What a request was for; `op` numbers the operation it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tag {
    op: u64,
    store: usize,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    WriteList,
    WritePut,
    ReadList,
    ReadEternal,
    ReadKey,
    WriteBack,
    CleanEternal,
    CleanList,
    CleanRemove,
}

impl Kind {
    fn is_cleanup(self) -> bool {
        matches!(
            self,
            Kind::CleanEternal | Kind::CleanList | Kind::CleanRemove
        )
    }
}

pub struct Client {
    config: Config,
    keys: Keys,
    quorum: usize,
    next_request: RequestId,
    op_seq: u64,
    outbox: VecDeque<Request>,
    pending: BTreeMap<RequestId, Tag>,
    op: Option<Op>,
    /// The newest value this client wrote: what its clean-ups put under the eternal key.
    latest: Option<Record>,
    cleaners: Vec<Cleaner>,
    done: Option<Completion>,
}

enum Op {
    Write(WriteOp),
    Read(ReadOp),
}

struct WriteOp {
    value: Vec<u8>,
    listed: Vec<Option<Result<Option<Timestamp>, ()>>>,
    /// Set once the timestamp is chosen: the put of the write-once key is under way.
    ts: Option<Timestamp>,
    acks: Vec<Option<bool>>,
}

struct ReadOp {
    chains: Vec<Chain>,
    /// Set when the read writes back what it will return.
    write_back: Option<(Record, Vec<Option<bool>>, u32)>,
}

/// One store's part of a read: list it and read its eternal key; if the eternal key is older
/// than the newest write-once key listed, fetch that key; if it is gone by then (removed by a
/// newer write's clean-up) and the eternal key is still older, list again.
struct Chain {
    /// The newest write-once key of this store's first listing: the chain's result is at least
    /// this new. `Some(None)`: the store listed no write-once key.
    bound: Option<Option<Timestamp>>,
    /// The newest write-once key any listing of this store showed.
    seen: Option<Timestamp>,
    step: Step,
    round_trips: u32,
}

enum Step {
    Listing {
        listed: Option<Option<Timestamp>>,
        eternal: Option<Option<Record>>,
    },
    Fetching {
        target: Timestamp,
        key: Option<Option<Record>>,
        eternal: Option<Option<Record>>,
    },
    /// The store's answer; `None` is the initial value.
    Done(Option<Record>),
    Failed,
}

/// One store's clean-up after this client's writes: put the newest value written under the
/// eternal key, then list and remove older write-once keys. It runs on after the write returned
/// and across later operations; once a round ends it starts again if a newer write returned
/// meanwhile, so even a store that is always slow gets cleaned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cleaner {
    /// Numbers the cleaner's rounds; answers of other rounds are ignored.
    round: u64,
    /// The timestamp of the value this round works for.
    ts: Option<Timestamp>,
    step: CleanStep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CleanStep {
    Idle,
    Eternal,
    List,
    Removing(usize),
}

impl Client {
    pub fn new(config: Config) -> Result<Client, ConfigError> {
        if config.stores == 0 || config.stores > STORES_MAX {
            return Err(ConfigError::Stores(config.stores));
        }
        if config.client_id == 0 {
            return Err(ConfigError::ClientZero);
        }
        let keys = Keys::new(&config.name)?;
        let stores = config.stores;
        let faulty_max = (stores - 1) / 2;
        Ok(Client {
            quorum: stores - faulty_max,
            config,
            keys,
            next_request: 1,
            op_seq: 0,
            outbox: VecDeque::new(),
            pending: BTreeMap::new(),
            op: None,
            latest: None,
            cleaners: vec![
                Cleaner {
                    round: 0,
                    ts: None,
                    step: CleanStep::Idle,
                };
                stores
            ],
            done: None,
        })
    }

    /// `n - t`: how many stores must answer each phase.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn client_id(&self) -> u64 {
        self.config.client_id
    }

    /// Whether an operation is in progress (its completion not yet polled).
    pub fn is_busy(&self) -> bool {
        self.op.is_some() || self.done.is_some()
    }

    /// No operation in progress and no request outstanding or waiting to be sent.
    pub fn is_idle(&self) -> bool {
        !self.is_busy() && self.pending.is_empty() && self.outbox.is_empty()
    }

    pub fn start_write(&mut self, value: Vec<u8>) -> Result<(), StartError> {
        if self.is_busy() {
            return Err(StartError::Busy);
        }
        if value.len() > VALUE_MAX_BYTES {
            return Err(StartError::ValueTooLarge(value.len()));
        }
        self.begin_op();
        self.forget_stale_requests();
        let n = self.config.stores;
        let prefix = self.keys.prefix().to_string();
        for store in 0..n {
            let op = StoreOp::List {
                prefix: prefix.clone(),
            };
            self.send(store, Kind::WriteList, op);
        }
        self.op = Some(Op::Write(WriteOp {
            value,
            listed: vec![None; n],
            ts: None,
            acks: vec![None; n],
        }));
        Ok(())
    }

    pub fn start_read(&mut self) -> Result<(), StartError> {
        if self.is_busy() {
            return Err(StartError::Busy);
        }
        self.begin_op();
        self.forget_stale_requests();
        let n = self.config.stores;
        let mut chains = Vec::with_capacity(n);
        for store in 0..n {
            self.send_listing(store);
            chains.push(Chain {
                bound: None,
                seen: None,
                step: Step::Listing {
                    listed: None,
                    eternal: None,
                },
                round_trips: 1,
            });
        }
        self.op = Some(Op::Read(ReadOp {
            chains,
            write_back: None,
        }));
        Ok(())
    }

    /// Whether the client still waits for the answer to request `id`. A caller that queues
    /// requests for a slow store can skip those no longer wanted (of finished operations), so
    /// that store's backlog cannot grow with the operations the other stores served.
    pub fn wants(&self, id: RequestId) -> bool {
        self.pending.contains_key(&id)
    }

    pub fn poll_request(&mut self) -> Option<Request> {
        self.advance();
        self.outbox.pop_front()
    }

    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.advance();
        self.done.take()
    }

    /// An answer (or failure) from the store a request went to. Answers to requests the client
    /// no longer waits for are ignored.
    pub fn handle_reply(&mut self, id: RequestId, reply: Result<StoreReply, StoreError>) {
        let Some(tag) = self.pending.remove(&id) else {
            return;
        };
        match tag.kind {
            Kind::WriteList | Kind::WritePut => self.on_write_reply(tag, reply),
            Kind::ReadList | Kind::ReadEternal | Kind::ReadKey => self.on_read_reply(tag, reply),
            Kind::WriteBack => self.on_write_back_reply(tag, reply),
            Kind::CleanEternal | Kind::CleanList | Kind::CleanRemove => {
                self.on_cleanup_reply(tag, reply)
            }
        }
    }

    fn begin_op(&mut self) {
        self.op_seq += 1;
    }

    /// Drops the bookkeeping of requests of finished operations (their answers are no longer
    /// needed), keeping the clean-ups', so that a store that never answers cannot make the
    /// table grow.
    fn forget_stale_requests(&mut self) {
        let current = self.op_seq;
        self.pending
            .retain(|_, tag| tag.op == current || tag.kind.is_cleanup());
    }

    fn send(&mut self, store: usize, kind: Kind, op: StoreOp) {
        let id = self.next_request;
        self.next_request += 1;
        let op_seq = if kind.is_cleanup() {
            self.cleaners[store].round
        } else {
            self.op_seq
        };
        self.pending.insert(
            id,
            Tag {
                op: op_seq,
                store,
                kind,
            },
        );
        // Per store: a foreground phase (at most two requests) and a clean-up's removals.
        let bound = self.config.stores * (4 + REMOVES_PER_STORE_MAX);
        assert!(self.pending.len() <= bound, "request table over its bound");
        self.outbox.push_back(Request { id, store, op });
    }

    fn send_listing(&mut self, store: usize) {
        let prefix = self.keys.prefix().to_string();
        self.send(store, Kind::ReadList, StoreOp::List { prefix });
        let key = self.keys.eternal().to_string();
        self.send(store, Kind::ReadEternal, StoreOp::Get { key });
    }

    /// The newest write-once key among listed keys.
    fn newest(&self, keys: &[String]) -> Option<Timestamp> {
        keys.iter()
            .filter_map(|k| self.keys.parse_write_once(k))
            .max()
    }

    fn mutant(&self, _which: &str) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.config.mutant.map(|m| m.name()) == Some(_which)
        }
        #[cfg(not(feature = "mutants"))]
        {
            false
        }
    }

    fn advance(&mut self) {
        if self.done.is_some() {
            return;
        }
        match self.op.take() {
            Some(Op::Write(write)) => self.advance_write(write),
            Some(Op::Read(read)) => self.advance_read(read),
            None => {}
        }
    }

    fn finish(&mut self, completion: Completion) {
        self.done = Some(completion);
        self.op = None;
    }

    fn unavailable(&mut self, failed: usize) {
        let needed = self.quorum;
        self.finish(Completion::Unavailable { failed, needed });
    }
}

/// Writes: list `n - t` stores, take a timestamp above every write-once key listed, put the
/// value under its write-once key and return once `n - t` stores acknowledged it.
impl Client {
    fn on_write_reply(&mut self, tag: Tag, reply: Result<StoreReply, StoreError>) {
        let kind = tag.kind;
        let newest = match &reply {
            Ok(StoreReply::Keys(keys)) => Some(self.newest(keys)),
            _ => None,
        };
        let Some(Op::Write(write)) = self.op.as_mut().filter(|_| tag.op == self.op_seq) else {
            return;
        };
        match kind {
            Kind::WriteList => {
                write.listed[tag.store] = Some(newest.ok_or(()));
            }
            _ => write.acks[tag.store] = Some(matches!(reply, Ok(StoreReply::Done))),
        }
    }

    fn advance_write(&mut self, mut write: WriteOp) {
        let q = self.quorum;
        let Some(ts) = write.ts else {
            let answered = write.listed.iter().flatten().filter(|r| r.is_ok()).count();
            let failed = write.listed.iter().flatten().filter(|r| r.is_err()).count();
            if answered < q {
                if self.config.stores - failed < q {
                    return self.unavailable(failed);
                }
                self.op = Some(Op::Write(write));
                return;
            }
            let seen = write.listed.iter().flatten().flatten().flatten().max();
            let seen = seen.copied().unwrap_or_default();
            let ts = Timestamp::after(seen, self.config.client_id);
            assert!(
                ts > seen,
                "a write's timestamp is above every key it listed"
            );
            self.start_put(&mut write, ts);
            self.op = Some(Op::Write(write));
            return;
        };
        let acked = write.acks.iter().filter(|a| **a == Some(true)).count();
        let failed = write.acks.iter().filter(|a| **a == Some(false)).count();
        let needed = if self.mutant("write-before-quorum") {
            q.saturating_sub(1).max(1)
        } else {
            q
        };
        if acked >= needed {
            self.finish(Completion::Written { ts, round_trips: 2 });
            self.clean_after(Record {
                ts,
                value: write.value,
            });
        } else if self.config.stores - failed < needed {
            self.unavailable(failed);
        } else {
            self.op = Some(Op::Write(write));
        }
    }

    fn start_put(&mut self, write: &mut WriteOp, ts: Timestamp) {
        write.ts = Some(ts);
        let record = Record {
            ts,
            value: write.value.clone(),
        };
        let encoded = record.encode();
        let key = self.keys.write_once(ts);
        for store in 0..self.config.stores {
            let op = StoreOp::Put {
                key: key.clone(),
                value: encoded.clone(),
            };
            self.send(store, Kind::WritePut, op);
        }
    }
}

/// Clean-up after a write, store by store: the eternal key first, so that a reader that finds
/// a removed write-once key gone can take the eternal key instead; then removal of every
/// write-once key that is at most this write's and below the newest key listed on that store.
/// The newest write-once key on a store is never removed: that is what keeps reads correct.
impl Client {
    fn clean_after(&mut self, record: Record) {
        self.latest = Some(record);
        for store in 0..self.config.stores {
            if self.cleaners[store].step == CleanStep::Idle {
                self.start_cleaning(store);
            }
        }
    }

    fn start_cleaning(&mut self, store: usize) {
        let latest = self.latest.as_ref().expect("a write returned");
        let cleaner = &mut self.cleaners[store];
        if cleaner.ts >= Some(latest.ts) {
            return;
        }
        cleaner.round += 1;
        cleaner.ts = Some(latest.ts);
        cleaner.step = CleanStep::Eternal;
        let value = latest.encode();
        let key = self.keys.eternal().to_string();
        self.send(store, Kind::CleanEternal, StoreOp::Put { key, value });
    }

    fn on_cleanup_reply(&mut self, tag: Tag, reply: Result<StoreReply, StoreError>) {
        let store = tag.store;
        let cleaner = &mut self.cleaners[store];
        if cleaner.round != tag.op {
            return;
        }
        let ts = cleaner.ts.expect("a round in progress");
        match (cleaner.step, reply) {
            (CleanStep::Eternal, Ok(StoreReply::Done)) => {
                cleaner.step = CleanStep::List;
                let prefix = self.keys.prefix().to_string();
                self.send(store, Kind::CleanList, StoreOp::List { prefix });
            }
            (CleanStep::List, Ok(StoreReply::Keys(keys))) => {
                let doomed = self.doomed(&keys, ts);
                self.cleaners[store].step = CleanStep::Removing(doomed.len());
                for key in doomed {
                    self.send(store, Kind::CleanRemove, StoreOp::Remove { key });
                }
            }
            (CleanStep::Removing(left), _) => {
                cleaner.step = CleanStep::Removing(left.saturating_sub(1));
            }
            // A failed step ends the round; the next write tries again.
            _ => cleaner.step = CleanStep::Idle,
        }
        if self.cleaners[store].step == CleanStep::Removing(0) {
            self.cleaners[store].step = CleanStep::Idle;
            self.start_cleaning(store);
        }
    }

    /// The write-once keys a clean-up by the write `ts` removes from a store that listed `keys`.
    fn doomed(&self, keys: &[String], ts: Timestamp) -> Vec<String> {
        let newest = self.newest(keys);
        let keep_newest = !self.mutant("gc-removes-newest");
        let mut doomed: Vec<String> = keys
            .iter()
            .filter(|k| {
                self.keys
                    .parse_write_once(k)
                    .is_some_and(|k_ts| k_ts <= ts && (!keep_newest || Some(k_ts) < newest))
            })
            .cloned()
            .collect();
        doomed.sort();
        doomed.truncate(REMOVES_PER_STORE_MAX);
        assert!(
            !keep_newest || !matches!(newest, Some(n) if doomed.contains(&self.keys.write_once(n))),
            "a clean-up never removes a store's newest write-once key"
        );
        doomed
    }
}

/// Reads: one chain per store (see [`Chain`]); once `n - t` chains have an answer, the newest
/// of them is the read's. An atomic read writes it back first unless `n - t` stores listed a
/// write-once key at least that new.
impl Client {
    fn on_read_reply(&mut self, tag: Tag, reply: Result<StoreReply, StoreError>) {
        let record = match &reply {
            Ok(StoreReply::Value(Some(bytes))) => Record::decode(bytes).ok(),
            _ => None,
        };
        let newest = match &reply {
            Ok(StoreReply::Keys(keys)) => Some(self.newest(keys)),
            _ => None,
        };
        let Some(Op::Read(read)) = self.op.as_mut().filter(|_| tag.op == self.op_seq) else {
            return;
        };
        let chain = &mut read.chains[tag.store];
        if reply.is_err() {
            chain.step = Step::Failed;
            return;
        }
        match (&mut chain.step, tag.kind) {
            (Step::Listing { listed, .. }, Kind::ReadList) => *listed = newest,
            (Step::Listing { eternal, .. }, Kind::ReadEternal) => *eternal = Some(record),
            (Step::Fetching { eternal, .. }, Kind::ReadEternal) => *eternal = Some(record),
            (Step::Fetching { key, .. }, Kind::ReadKey) => *key = Some(record),
            _ => {}
        }
    }

    fn advance_read(&mut self, mut read: ReadOp) {
        if read.write_back.is_some() {
            return self.advance_write_back(read);
        }
        for store in 0..read.chains.len() {
            self.advance_chain(&mut read.chains[store], store);
        }
        let done: Vec<&Chain> = read
            .chains
            .iter()
            .filter(|c| matches!(c.step, Step::Done(_)))
            .collect();
        let failed = read
            .chains
            .iter()
            .filter(|c| matches!(c.step, Step::Failed))
            .count();
        if done.len() < self.quorum {
            if self.config.stores - failed < self.quorum {
                return self.unavailable(failed);
            }
            self.op = Some(Op::Read(read));
            return;
        }
        assert!(
            done.iter().all(|c| match (&c.step, c.bound) {
                (Step::Done(answer), Some(bound)) => answer.as_ref().map(|r| r.ts) >= bound,
                _ => true,
            }),
            "every chain's answer is at least as new as its store's first listing"
        );
        let round_trips = done.iter().map(|c| c.round_trips).max().unwrap_or(0);
        let best = done
            .iter()
            .filter_map(|c| match &c.step {
                Step::Done(record) => record.clone(),
                _ => None,
            })
            .max_by_key(|r| r.ts);
        self.conclude_read(read, best, round_trips);
    }

    fn conclude_read(&mut self, mut read: ReadOp, best: Option<Record>, round_trips: u32) {
        let Some(record) = best else {
            return self.finish(Completion::Read {
                ts: Timestamp::ZERO,
                value: None,
                round_trips,
            });
        };
        let held_by = read
            .chains
            .iter()
            .filter(|c| c.seen.is_some_and(|seen| seen >= record.ts))
            .count();
        let write_back = self.config.variant == Variant::Atomic
            && held_by < self.quorum
            && !self.mutant("read-without-write-back");
        if !write_back {
            return self.finish(Completion::Read {
                ts: record.ts,
                value: Some(record.value),
                round_trips,
            });
        }
        assert!(
            record.ts > Timestamp::ZERO,
            "only a written value is written back"
        );
        let key = self.keys.write_once(record.ts);
        let encoded = record.encode();
        for store in 0..self.config.stores {
            let op = StoreOp::Put {
                key: key.clone(),
                value: encoded.clone(),
            };
            self.send(store, Kind::WriteBack, op);
        }
        read.write_back = Some((record, vec![None; self.config.stores], round_trips + 1));
        self.op = Some(Op::Read(read));
    }

    fn on_write_back_reply(&mut self, tag: Tag, reply: Result<StoreReply, StoreError>) {
        let Some(Op::Read(read)) = self.op.as_mut().filter(|_| tag.op == self.op_seq) else {
            return;
        };
        if let Some((_, acks, _)) = read.write_back.as_mut() {
            acks[tag.store] = Some(matches!(reply, Ok(StoreReply::Done)));
        }
    }

    fn advance_write_back(&mut self, mut read: ReadOp) {
        let (record, acks, round_trips) = read.write_back.take().expect("writing back");
        let acked = acks.iter().filter(|a| **a == Some(true)).count();
        let failed = acks.iter().filter(|a| **a == Some(false)).count();
        if acked >= self.quorum {
            return self.finish(Completion::Read {
                ts: record.ts,
                value: Some(record.value),
                round_trips,
            });
        }
        if self.config.stores - failed < self.quorum {
            return self.unavailable(failed);
        }
        read.write_back = Some((record, acks, round_trips));
        self.op = Some(Op::Read(read));
    }

    fn advance_chain(&mut self, chain: &mut Chain, store: usize) {
        match &mut chain.step {
            Step::Listing {
                listed: Some(newest),
                eternal: Some(eternal),
            } => {
                let (newest, eternal) = (*newest, eternal.take());
                chain.seen = chain.seen.max(newest);
                let bound = *chain.bound.get_or_insert(newest);
                if let Some(answer) = Self::acceptable(bound, eternal) {
                    chain.step = Step::Done(answer);
                    return;
                }
                // The eternal key is older than a listed write-once key: fetch the newest.
                let target = newest.or(bound).expect("a bound implies a listed key");
                chain.step = Step::Fetching {
                    target,
                    key: None,
                    eternal: None,
                };
                chain.round_trips += 1;
                let key = self.keys.write_once(target);
                self.send(store, Kind::ReadKey, StoreOp::Get { key });
                let key = self.keys.eternal().to_string();
                self.send(store, Kind::ReadEternal, StoreOp::Get { key });
            }
            Step::Fetching {
                target,
                key: Some(key),
                eternal: Some(eternal),
            } => {
                let bound = chain.bound.expect("fetching after a listing");
                // Below the bound only when a store lost its newest key: then look further.
                let fetched = key
                    .take()
                    .filter(|r| r.ts == *target && Some(r.ts) >= bound);
                if let Some(record) = fetched {
                    chain.step = Step::Done(Some(record));
                    return;
                }
                if let Some(answer) = Self::acceptable(bound, eternal.take()) {
                    chain.step = Step::Done(answer);
                    return;
                }
                // Removed by a newer write's clean-up and the eternal key overwritten by an
                // older write since: the store now holds a newer write-once key; list again.
                chain.step = Step::Listing {
                    listed: None,
                    eternal: None,
                };
                chain.round_trips += 1;
                self.send_listing(store);
            }
            _ => {}
        }
    }

    /// The chain's answer from the eternal key, if it is at least as new as the bound: `Some`
    /// of the answer (`Some(None)` for the initial value), `None` to look further.
    fn acceptable(bound: Option<Timestamp>, eternal: Option<Record>) -> Option<Option<Record>> {
        match (bound, eternal) {
            (None, eternal) => Some(eternal),
            (Some(bound), Some(record)) if record.ts >= bound => Some(Some(record)),
            _ => None,
        }
    }
}
