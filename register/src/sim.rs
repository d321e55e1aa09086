//! Deterministic simulation of many clients of one register over `n` in-memory stores.
//!
//! One `u64` seed draws everything: the number of clients, their operations, every delay, the
//! fault rates and the faults. The clients run the real [`Client`]; requests meet the stores
//! through [`StoreOp::apply`] on a [`MemStore`], exactly as [`crate::Register`] carries them out.
//!
//! Faults: per-store delays with a long tail (so a client's outstanding requests arrive in any
//! order), one store slow for the whole run in some seeds, stores that crash for good (up to
//! `t`, and `t + 1` in one seed in eight, where operations may block but must never return a
//! wrong value), and clients that crash after any number of a write's requests went out (the
//! rest never go; what went still lands, maybe much later). A crashed client is replaced by a
//! new one with a new id.
//!
//! Checks, per seed: the history is linearizable (atomic variant; the checker's register
//! model) or regular (regular variant; [`keyspace_checker::check_regular`]); with at most `t`
//! stores down, every operation of a correct client finishes, and no read takes more round trips
//! than `2 + 2L` (`+1` for an atomic write-back), `L` being the number of write-once puts that
//! landed while it ran (a read repeats a store's listing only after a newer key landed there);
//! and once writes stop, a last write in a calm network leaves exactly two copies of the value on
//! every live store: the eternal key and its own write-once key.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::hash::Hasher;

use keyspace_checker::{
    check_register, check_regular, CheckOptions, CheckResult, FxHasher, Operation, Outcome,
    RegisterInput, RegisterOutput,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::client::{Client, Completion, Config, Request, Variant};
use crate::keys::{Keys, Timestamp};
use crate::record::Record;
use crate::store::{MemStore, StoreError, StoreOp, StoreReply};
#[cfg(feature = "mutants")]
use crate::Mutant;

/// The register every simulated client uses.
const NAME: &str = "sim";
/// Operations started in a seed's fault phase.
pub const OPS_DEFAULT: usize = 150;
/// Events a seed may run before it counts as stuck (a live-lock would otherwise never end).
const EVENTS_MAX: u64 = 2_000_000;
/// How long the linearizability check of one history may take.
const CHECK_TIMEOUT_S: u64 = 20;
const MICROS: u64 = 1_000;

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub seed: u64,
    pub stores: usize,
    pub variant: Variant,
    pub ops: usize,
    /// Print every event to stderr.
    pub trace: bool,
    #[cfg(feature = "mutants")]
    pub mutant: Option<Mutant>,
}

impl SimOptions {
    pub fn new(seed: u64, stores: usize, variant: Variant) -> SimOptions {
        SimOptions {
            seed,
            stores,
            variant,
            ops: OPS_DEFAULT,
            trace: false,
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }
}

/// What failed in a seed. The order is the order of seriousness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    /// The atomic variant's history is not linearizable.
    Linearizability,
    /// The regular variant's history is not regular.
    Regularity,
    /// The checker gave up on the history (time limit).
    Undecided,
    /// With at most `t` stores down an operation of a correct client never finished, or a
    /// read took more round trips than its bound.
    Liveness,
    /// Once writes stopped, a live store held other than two copies.
    Copies,
}

impl FailureKind {
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Linearizability => "linearizability",
            FailureKind::Regularity => "regularity",
            FailureKind::Undecided => "undecided",
            FailureKind::Liveness => "liveness",
            FailureKind::Copies => "copies",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

/// Figures of one seed.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub clients: usize,
    pub client_crashes: usize,
    pub store_crashes: usize,
    pub beyond_t: bool,
    pub slow_store: bool,
    pub ops_returned: usize,
    /// (operation kind, round trips) → how many operations.
    pub round_trips: BTreeMap<(&'static str, u32), usize>,
    /// Writes in progress → the most copies any store held while that many were.
    pub peak_copies_by_writers: BTreeMap<usize, usize>,
    /// Copies per live store after the last write (empty when the seed skipped that check).
    pub idle_copies: Vec<usize>,
    pub trace_hash: u64,
}

#[derive(Clone, Debug)]
pub struct SeedReport {
    pub seed: u64,
    pub failure: Option<Failure>,
    pub stats: Stats,
}

pub type RegisterOp = Operation<RegisterInput, RegisterOutput>;

/// Runs one seed and checks it.
pub fn run_seed(options: &SimOptions) -> SeedReport {
    let mut world = World::new(options);
    world.run_fault_phase();
    let mut failure = world.liveness_failure();
    if failure.is_none() && !world.stats.beyond_t {
        failure = world.run_idle_phase();
    }
    world.stats.trace_hash = world.trace.finish();
    let history = world.history();
    let verdict = check_history(options.variant, &history);
    // A wrong value outranks a stuck operation or a stray copy.
    let failure = match (verdict, failure) {
        (Some(v), _) => Some(v),
        (None, f) => f,
    };
    SeedReport {
        seed: options.seed,
        failure,
        stats: world.stats,
    }
}

/// Linearizability (atomic) or regularity (regular) of a history; `None` when it holds.
pub fn check_history(variant: Variant, history: &[RegisterOp]) -> Option<Failure> {
    match variant {
        Variant::Regular => check_regular(history).err().map(|e| Failure {
            kind: FailureKind::Regularity,
            message: e.to_string(),
        }),
        Variant::Atomic => {
            let options = CheckOptions {
                threads: 1,
                timeout: Some(std::time::Duration::from_secs(CHECK_TIMEOUT_S)),
                ..Default::default()
            };
            match check_register(history, &options) {
                CheckResult::Linearizable => None,
                CheckResult::Violation(v) => Some(Failure {
                    kind: FailureKind::Linearizability,
                    message: v.to_string(),
                }),
                CheckResult::Unknown(reason) => Some(Failure {
                    kind: FailureKind::Undecided,
                    message: reason,
                }),
            }
        }
    }
}

/// Fault rates and sizes drawn from the seed.
#[derive(Clone, Debug)]
struct Plan {
    clients: usize,
    base_delay_ns: Vec<u64>,
    tail_chance: f64,
    write_chance: f64,
    client_crash_chance: f64,
    store_crashes: Vec<(usize, u64)>,
    beyond_t: bool,
    slow_store: Option<usize>,
}

impl Plan {
    fn draw(rng: &mut ChaCha8Rng, stores: usize, ops: usize) -> Plan {
        let t = (stores - 1) / 2;
        let beyond_t = rng.gen_ratio(1, 8);
        let crash_count = if beyond_t {
            t + 1
        } else {
            rng.gen_range(0..=t)
        };
        let mut order: Vec<usize> = (0..stores).collect();
        for i in (1..stores).rev() {
            order.swap(i, rng.gen_range(0..=i));
        }
        // Crashes fall inside the fault phase (about 1 ms of think time per operation).
        let horizon_ns = (ops as u64) * 400 * MICROS;
        let store_crashes = order[..crash_count]
            .iter()
            .map(|&s| (s, rng.gen_range(0..horizon_ns)))
            .collect();
        let slow_store = rng.gen_ratio(1, 3).then(|| order[stores - 1]);
        Plan {
            clients: rng.gen_range(2..=8),
            base_delay_ns: (0..stores)
                .map(|_| rng.gen_range(50..=1_000) * MICROS)
                .collect(),
            tail_chance: [0.0, 0.01, 0.05, 0.2][rng.gen_range(0..4)],
            write_chance: rng.gen_range(0.2..0.8),
            client_crash_chance: [0.0, 0.05, 0.2][rng.gen_range(0..3)],
            store_crashes,
            beyond_t,
            slow_store,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A request reaches its store.
    Arrive {
        slot: usize,
        incarnation: u64,
        request: RequestEnvelope,
    },
    /// A store's answer reaches the client.
    Answer {
        slot: usize,
        incarnation: u64,
        id: u64,
        reply: ReplyEnvelope,
    },
    /// A client starts its next operation.
    Start {
        slot: usize,
    },
    StoreCrash {
        store: usize,
    },
}

/// [`Request`] with an order, so that events can sit in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RequestEnvelope(Request);
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReplyEnvelope(Result<StoreReply, StoreError>);

impl PartialOrd for RequestEnvelope {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for RequestEnvelope {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}
impl PartialOrd for ReplyEnvelope {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ReplyEnvelope {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

struct SimStore {
    mem: MemStore,
    crashed: bool,
}

/// A client slot: a client and the operation it runs. A crashed client's slot gets a new one.
struct Slot {
    client: Client,
    incarnation: u64,
    op: Option<RunningOp>,
    /// Requests the client may still send before it crashes (set for a write that will crash).
    crash_after: Option<usize>,
    stopped: bool,
}

struct RunningOp {
    index: usize,
    is_write: bool,
}

struct World {
    options: SimOptions,
    rng: ChaCha8Rng,
    plan: Plan,
    now_ns: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    stores: Vec<SimStore>,
    slots: Vec<Slot>,
    ops: Vec<RegisterOp>,
    /// Per operation: the client was correct (not crashed) and the operation returned.
    op_correct: Vec<bool>,
    op_round_trips: Vec<Option<u32>>,
    /// (time, timestamp) of every write-once put that landed.
    landings: Vec<(u64, Timestamp)>,
    started: usize,
    next_value: i64,
    next_client_id: u64,
    writes_in_progress: usize,
    dirty: Vec<bool>,
    calm: bool,
    events: u64,
    keys: Keys,
    /// The hash of every event's time and every request a store served, in order.
    trace: FxHasher,
    stats: Stats,
}

impl World {
    fn new(options: &SimOptions) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let plan = Plan::draw(&mut rng, options.stores, options.ops);
        let stats = Stats {
            clients: plan.clients,
            store_crashes: plan.store_crashes.len(),
            beyond_t: plan.beyond_t,
            slow_store: plan.slow_store.is_some(),
            ..Stats::default()
        };
        let mut world = World {
            options: options.clone(),
            rng,
            now_ns: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            stores: (0..options.stores)
                .map(|_| SimStore {
                    mem: MemStore::new(),
                    crashed: false,
                })
                .collect(),
            slots: Vec::new(),
            ops: Vec::new(),
            op_correct: Vec::new(),
            op_round_trips: Vec::new(),
            landings: Vec::new(),
            started: 0,
            next_value: 1,
            next_client_id: 1,
            writes_in_progress: 0,
            dirty: Vec::new(),
            calm: false,
            events: 0,
            keys: Keys::new(NAME).expect("valid name"),
            trace: FxHasher::new(),
            stats,
            plan,
        };
        for (store, at) in world.plan.store_crashes.clone() {
            world.schedule(at, Event::StoreCrash { store });
        }
        for slot in 0..world.plan.clients {
            let client = world.new_client();
            world.slots.push(Slot {
                client,
                incarnation: 0,
                op: None,
                crash_after: None,
                stopped: false,
            });
            world.dirty.push(false);
            let think = world.think_ns();
            world.schedule(think, Event::Start { slot });
        }
        world
    }

    fn new_client(&mut self) -> Client {
        // Ids from the seed, distinct by construction, spread over the whole range.
        let id = self.next_client_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        self.next_client_id += 1;
        Client::new(Config {
            stores: self.options.stores,
            variant: self.options.variant,
            client_id: id,
            name: NAME.to_string(),
            #[cfg(feature = "mutants")]
            mutant: self.options.mutant,
        })
        .expect("valid simulated client")
    }

    fn schedule(&mut self, at_ns: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at_ns, self.seq, event)));
    }

    fn think_ns(&mut self) -> u64 {
        self.now_ns + self.rng.gen_range(0..=1_000) * MICROS
    }

    /// One way's delay to or from `store`.
    fn delay_ns(&mut self, store: usize) -> u64 {
        if self.calm {
            return 100 * MICROS;
        }
        let base = self.plan.base_delay_ns[store];
        let mut delay = self.rng.gen_range(base / 2..=base * 2);
        if self.plan.slow_store == Some(store) {
            delay *= 50;
        }
        if self.rng.gen_bool(self.plan.tail_chance) {
            delay *= self.rng.gen_range(10..=200);
        }
        delay
    }

    fn run_fault_phase(&mut self) {
        self.run_until_quiet();
    }

    fn run_until_quiet(&mut self) {
        loop {
            // The clients decide at the end of each instant, on everything it brought.
            let next = self.queue.peek().map(|Reverse((at, _, _))| *at);
            let instant_over = !matches!(next, Some(at) if at <= self.now_ns);
            if instant_over && self.dirty.contains(&true) {
                self.poll_dirty();
                continue;
            }
            let Some(Reverse((at, _, event))) = self.queue.pop() else {
                return;
            };
            self.events += 1;
            if self.events > EVENTS_MAX {
                return;
            }
            self.now_ns = at;
            self.trace.write_u64(at);
            if self.options.trace {
                eprintln!("{at:>12} {event:?}");
            }
            self.handle(event);
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Arrive {
                slot,
                incarnation,
                request,
            } => self.arrive(slot, incarnation, request.0),
            Event::Answer {
                slot,
                incarnation,
                id,
                reply,
            } => {
                let s = &mut self.slots[slot];
                if s.incarnation == incarnation && !s.stopped {
                    s.client.handle_reply(id, reply.0);
                    self.dirty[slot] = true;
                }
            }
            Event::Start { slot } => self.start_op(slot),
            Event::StoreCrash { store } => self.stores[store].crashed = true,
        }
    }

    fn arrive(&mut self, slot: usize, incarnation: u64, request: Request) {
        let store = request.store;
        if self.stores[store].crashed {
            return;
        }
        let reply = request.op.apply(&mut self.stores[store].mem);
        self.trace.write_u64(request.id);
        if request.op.is_mutation() {
            self.note_mutation(&request.op, store);
        }
        let at = self.now_ns + self.delay_ns(store);
        let event = Event::Answer {
            slot,
            incarnation,
            id: request.id,
            reply: ReplyEnvelope(reply),
        };
        self.schedule(at, event);
    }

    fn note_mutation(&mut self, op: &StoreOp, store: usize) {
        if let StoreOp::Put { key, .. } = op {
            if let Some(ts) = self.keys.parse_write_once(key) {
                self.landings.push((self.now_ns, ts));
            }
        }
        let copies = self.stores[store].mem.count(self.keys.prefix());
        let peak = self
            .stats
            .peak_copies_by_writers
            .entry(self.writes_in_progress)
            .or_default();
        *peak = (*peak).max(copies);
    }

    fn poll_dirty(&mut self) {
        for slot in 0..self.slots.len() {
            if std::mem::take(&mut self.dirty[slot]) {
                self.poll_slot(slot);
            }
        }
    }

    fn poll_slot(&mut self, slot: usize) {
        if self.slots[slot].stopped {
            return;
        }
        if let Some(completion) = self.slots[slot].client.poll_completion() {
            self.complete(slot, completion);
        }
        while let Some(request) = self.slots[slot].client.poll_request() {
            if let Some(left) = self.slots[slot].crash_after.as_mut() {
                if *left == 0 {
                    self.crash_client(slot);
                    return;
                }
                *left -= 1;
            }
            let at = self.now_ns + self.delay_ns(request.store);
            let incarnation = self.slots[slot].incarnation;
            let request = RequestEnvelope(request);
            self.schedule(
                at,
                Event::Arrive {
                    slot,
                    incarnation,
                    request,
                },
            );
        }
    }
}

/// Operations: start, complete, crash.
impl World {
    fn start_op(&mut self, slot: usize) {
        let slot_busy = self.slots[slot].client.is_busy();
        if self.started >= self.options.ops || self.slots[slot].stopped || slot_busy {
            return;
        }
        self.started += 1;
        let is_write = self.rng.gen_bool(self.plan.write_chance);
        let client_id = self.slots[slot].client.client_id();
        let input = if is_write {
            let value = self.next_value;
            self.next_value += 1;
            let crash = self.rng.gen_bool(self.plan.client_crash_chance);
            // Up to every request a write and its clean-up can send.
            let most = self.options.stores * 5;
            self.slots[slot].crash_after = crash.then(|| self.rng.gen_range(0..most));
            self.slots[slot]
                .client
                .start_write(value.to_string().into_bytes())
                .expect("the slot's client is free");
            self.writes_in_progress += 1;
            RegisterInput::Write(value)
        } else {
            self.slots[slot].crash_after = None;
            self.slots[slot]
                .client
                .start_read()
                .expect("the slot's client is free");
            RegisterInput::Read
        };
        self.ops.push(Operation {
            client: client_id,
            invoke_ns: self.now_ns,
            input,
            outcome: Outcome::Unknown,
        });
        self.op_correct.push(true);
        self.op_round_trips.push(None);
        self.slots[slot].op = Some(RunningOp {
            index: self.ops.len() - 1,
            is_write,
        });
        self.dirty[slot] = true;
    }

    fn complete(&mut self, slot: usize, completion: Completion) {
        let running = self.slots[slot].op.take().expect("an operation ran");
        assert!(
            self.op_correct[running.index],
            "a crashed client completes nothing"
        );
        if running.is_write {
            assert!(self.writes_in_progress > 0, "a write in progress ends once");
            self.writes_in_progress -= 1;
        }
        let (output, round_trips, kind) = match completion {
            Completion::Written { round_trips, .. } => {
                (RegisterOutput::Write, round_trips, "write")
            }
            Completion::Read {
                value, round_trips, ..
            } => (
                RegisterOutput::Read(decode_value(value)),
                round_trips,
                "read",
            ),
            Completion::Unavailable { .. } => unreachable!("simulated stores never fail a request"),
        };
        self.ops[running.index].outcome = Outcome::Returned {
            at_ns: self.now_ns,
            output,
        };
        self.op_round_trips[running.index] = Some(round_trips);
        *self
            .stats
            .round_trips
            .entry((kind, round_trips))
            .or_default() += 1;
        self.stats.ops_returned += 1;
        let think = self.think_ns();
        self.schedule(think, Event::Start { slot });
    }

    /// The client stops for good; its slot gets a new client (a new id) a little later.
    fn crash_client(&mut self, slot: usize) {
        self.stats.client_crashes += 1;
        // A crash during a clean-up, after the write returned, finds the next start scheduled.
        let running = self.slots[slot].op.take();
        if let Some(running) = &running {
            self.op_correct[running.index] = false;
            if running.is_write {
                self.writes_in_progress -= 1;
            }
        }
        let client = self.new_client();
        let s = &mut self.slots[slot];
        s.client = client;
        s.incarnation += 1;
        s.crash_after = None;
        if running.is_some() {
            let think = self.think_ns();
            self.schedule(think, Event::Start { slot });
        }
    }
}

/// Checks after the fault phase.
impl World {
    /// With at most `t` stores down: every correct client's operation returned, within its
    /// bound of round trips.
    fn liveness_failure(&mut self) -> Option<Failure> {
        if self.events > EVENTS_MAX {
            return Some(Failure {
                kind: FailureKind::Liveness,
                message: format!("still running after {EVENTS_MAX} events"),
            });
        }
        if self.stats.beyond_t {
            return None;
        }
        for (i, op) in self.ops.iter().enumerate() {
            if self.op_correct[i] && op.return_ns().is_none() {
                return Some(Failure {
                    kind: FailureKind::Liveness,
                    message: format!(
                        "op {i} ({:?}) of a correct client never returned with {} of {} stores down",
                        op.input,
                        self.stats.store_crashes,
                        self.options.stores
                    ),
                });
            }
        }
        self.round_trip_failure()
    }

    fn round_trip_failure(&self) -> Option<Failure> {
        for (i, op) in self.ops.iter().enumerate() {
            let (Some(round_trips), Some(ret)) = (self.op_round_trips[i], op.return_ns()) else {
                continue;
            };
            let bound = match op.input {
                RegisterInput::Write(_) => 2,
                _ => {
                    let mut landed: Vec<Timestamp> = self
                        .landings
                        .iter()
                        .filter(|(at, _)| *at >= op.invoke_ns && *at <= ret)
                        .map(|(_, ts)| *ts)
                        .collect();
                    landed.sort_unstable();
                    landed.dedup();
                    let write_back = u32::from(self.options.variant == Variant::Atomic);
                    2 + 2 * landed.len() as u32 + write_back
                }
            };
            if round_trips > bound {
                return Some(Failure {
                    kind: FailureKind::Liveness,
                    message: format!("op {i} took {round_trips} round trips; its bound is {bound}"),
                });
            }
        }
        None
    }

    /// Writes stop; once everything in flight landed, one more write (and a read) in a calm
    /// network must leave exactly two copies on every live store.
    fn run_idle_phase(&mut self) -> Option<Failure> {
        for slot in &mut self.slots {
            slot.stopped = true;
        }
        self.calm = true;
        let client = self.new_client();
        self.slots.push(Slot {
            client,
            incarnation: 0,
            op: None,
            crash_after: None,
            stopped: false,
        });
        self.dirty.push(false);
        let slot = self.slots.len() - 1;
        self.options.ops = self.started + 1;
        self.plan.client_crash_chance = 0.0;
        self.write_last(slot)
    }

    fn write_last(&mut self, slot: usize) -> Option<Failure> {
        self.plan.write_chance = 1.0;
        self.start_op(slot);
        self.slots[slot].crash_after = None;
        self.run_until_quiet();
        let last = self.ops.last().expect("the last write").clone();
        if last.return_ns().is_none() {
            return Some(Failure {
                kind: FailureKind::Liveness,
                message: "the last write, in a calm network, never returned".to_string(),
            });
        }
        let RegisterInput::Write(value) = last.input else {
            unreachable!("the last operation is a write")
        };
        self.idle_copies_failure(value)
    }

    fn idle_copies_failure(&mut self, value: i64) -> Option<Failure> {
        let prefix = self.keys.prefix().to_string();
        for (i, store) in self.stores.iter_mut().enumerate() {
            if store.crashed {
                continue;
            }
            let copies = store.mem.count(&prefix);
            self.stats.idle_copies.push(copies);
            let keys: Vec<String> = store
                .mem
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            let eternal = crate::store::Store::get(&mut store.mem, self.keys.eternal())
                .ok()
                .flatten()
                .and_then(|b| Record::decode(&b).ok());
            let holds_last = eternal.is_some_and(|r| r.value == value.to_string().into_bytes());
            if copies != 2 || !holds_last {
                return Some(Failure {
                    kind: FailureKind::Copies,
                    message: format!(
                        "store {i} holds {copies} copies once writes stopped ({keys:?}); the eternal key {} the last value",
                        if holds_last { "holds" } else { "does not hold" }
                    ),
                });
            }
        }
        None
    }

    /// The history to check. A write of unknown outcome whose value no read returned is left
    /// out: it may take effect never, and a linearization (or write order) that applies it has
    /// the same reads when it is dropped, so the verdict is the same; the checker's search only
    /// gets shorter.
    fn history(&self) -> Vec<RegisterOp> {
        let read: std::collections::BTreeSet<i64> = self
            .ops
            .iter()
            .filter_map(|op| match op.output() {
                Some(RegisterOutput::Read(Some(value))) => Some(*value),
                _ => None,
            })
            .collect();
        self.ops
            .iter()
            .filter(|op| match (&op.input, &op.outcome) {
                (RegisterInput::Write(value), Outcome::Unknown) => read.contains(value),
                _ => true,
            })
            .cloned()
            .collect()
    }
}

fn decode_value(value: Option<Vec<u8>>) -> Option<i64> {
    let bytes = value?;
    let text = String::from_utf8(bytes).expect("simulated values are decimal text");
    Some(text.parse().expect("simulated values are integers"))
}
