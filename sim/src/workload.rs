//! The clients' random commands: the whole command set over a few keys that share prefixes, so
//! that writes contend and PRUNE, LIST-KEYS, LIST-KEYVALUES and COUNT see each other's effects,
//! in database 0 and in each family's own database (1, 2, 3), with MOVE between the two, KEYS,
//! and FLUSHDB of a family's database; conditional sets (NX, XX, GET), APPEND and MSETNX;
//! transactions, with WATCH and without (`workload_tx`); scripts the checker's model knows
//! (`workload_scripts`).
//!
//! Left out: FLUSHALL, SWAPDB and FLUSHDB of database 0, KEYS `*` (each would join the keys of
//! every family into one part for the checker, whose search grows with the part), and SCAN and
//! RANDOMKEY (their answers follow the store's hash order, which the checker does not model;
//! the state machine's own tests compare them with a model).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_checker::OpId;
use keyspace_core::{
    ClientId, Command, CommandError, Db, Reply, Seq, SetCondition, OPENED_SESSION_BIT,
};

/// Three families of keys; RENAME stays inside a family so the checker can split the history
/// into independent parts.
const FAMILIES: [&[&str]; 3] = [&["a", "ab", "abc"], &["b", "ba", "bb"], &["c", "cd"]];
const PREFIXES: [&str; 4] = ["a", "ab", "b", "c"];
const VALUES: [&str; 5] = ["1", "2", "3", "x", "y"];
/// KEYS patterns: each under one family's prefix, so KEYS joins only that family.
/// INCRBYFLOAT increments: whole, fractional, negative, and one that is no number.
const FLOAT_DELTAS: [&str; 4] = ["1.5", "-0.25", "2", "z"];
const PATTERNS: [&str; 4] = ["a*", "b?", "c*", "a[bx]*"];

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn value(rng: &mut ChaCha8Rng) -> Vec<u8> {
    bytes(VALUES[rng.gen_range(0..VALUES.len())])
}

fn prefix(rng: &mut ChaCha8Rng) -> Vec<u8> {
    bytes(PREFIXES[rng.gen_range(0..PREFIXES.len())])
}

fn family_key(rng: &mut ChaCha8Rng) -> (usize, Vec<u8>) {
    let family = rng.gen_range(0..FAMILIES.len());
    let keys = FAMILIES[family];
    (family, bytes(keys[rng.gen_range(0..keys.len())]))
}

fn key(rng: &mut ChaCha8Rng) -> Vec<u8> {
    family_key(rng).1
}

/// Two keys of one family (possibly the same), for the commands that name several keys.
fn family_pair(rng: &mut ChaCha8Rng) -> (Vec<u8>, Vec<u8>) {
    let (family, first) = family_key(rng);
    let keys = FAMILIES[family];
    (first, bytes(keys[rng.gen_range(0..keys.len())]))
}

fn list_args(rng: &mut ChaCha8Rng) -> (Vec<u8>, Option<Vec<u8>>, Option<u64>) {
    let start = rng.gen_bool(0.3).then(|| key(rng));
    let count = rng.gen_bool(0.3).then(|| rng.gen_range(1..=3));
    (prefix(rng), start, count)
}

/// The database of the family whose keys start with `first`: 1 for `a…`, 2 for `b…`, 3 for `c…`.
fn family_db(first: u8) -> Db {
    first - b'a' + 1
}

/// One random command, weighted toward GET, SET, ADD, TEST-AND-SET and DELETE, in database 0
/// or in its family's database.
pub fn random_command(rng: &mut ChaCha8Rng) -> Command {
    let command = match rng.gen_range(0..100) {
        0..=5 => database_command(rng),
        6..=11 => {
            let draws = crate::workload_tx::Draws {
                family_pair,
                key_command,
            };
            crate::workload_tx::random_transaction(rng, &draws)
        }
        12..=19 => return crate::workload_expiry::expiry_command(rng),
        20..=23 => {
            let draws = crate::workload_scripts::Draws { family_pair, value };
            crate::workload_scripts::script_command(rng, &draws)
        }
        _ => key_command(rng),
    };
    let own_db = match command.keys().first() {
        Some(key) => family_db(key[0]),
        None => return command,
    };
    match rng.gen_bool(0.3) {
        true => command.in_db(own_db),
        false => command,
    }
}

/// A command of the databases themselves, or of KEYS.
fn database_command(rng: &mut ChaCha8Rng) -> Command {
    match rng.gen_range(0..10) {
        0..=5 => {
            let key = key(rng);
            // Between database 0 and the family's own, either way (or to itself: an error).
            let to = [0, family_db(key[0])][rng.gen_range(0..2)];
            Command::Move { key, to }
        }
        6..=7 => Command::Keys {
            pattern: bytes(PATTERNS[rng.gen_range(0..PATTERNS.len())]),
        },
        _ => Command::FlushDb.in_db(rng.gen_range(1..=3)),
    }
}

fn key_command(rng: &mut ChaCha8Rng) -> Command {
    match rng.gen_range(0..100) {
        0..=17 => Command::Get { key: key(rng) },
        18..=19 => {
            let (first, second) = family_pair(rng);
            Command::MultiGet {
                keys: vec![first, second],
            }
        }
        20..=31 => Command::Set {
            key: key(rng),
            value: value(rng),
        },
        32..=35 => Command::SetIf {
            key: key(rng),
            value: value(rng),
            condition: [
                SetCondition::Always,
                SetCondition::IfAbsent,
                SetCondition::IfPresent,
            ][rng.gen_range(0..3)],
            get: rng.gen_bool(0.5),
        },
        36..=37 => Command::Append {
            key: key(rng),
            value: value(rng),
        },
        38..=39 => {
            let (first, second) = family_pair(rng);
            Command::MultiSetIfAbsent {
                pairs: vec![(first, value(rng)), (second, value(rng))],
            }
        }
        40..=51 => Command::Add {
            key: key(rng),
            delta: rng.gen_range(-3..=3),
        },
        52..=63 => Command::TestAndSet {
            key: key(rng),
            expected: value(rng),
            new: value(rng),
        },
        64..=69 => Command::Delete { key: key(rng) },
        70..=71 => {
            let (first, second) = family_pair(rng);
            Command::MultiDelete {
                keys: vec![first, second],
            }
        }
        72..=73 => Command::Remove { key: key(rng) },
        74..=75 => {
            let (first, second) = family_pair(rng);
            Command::MultiSet {
                pairs: vec![(first, value(rng)), (second, value(rng))],
            }
        }
        76..=79 => {
            let (from, to) = family_pair(rng);
            Command::Rename { from, to }
        }
        80..=81 => Command::Prune {
            prefix: prefix(rng),
        },
        82..=85 => {
            let (prefix, start, count) = list_args(rng);
            Command::ListKeys {
                prefix,
                start,
                count,
            }
        }
        86..=89 => {
            let (prefix, start, count) = list_args(rng);
            Command::ListKeyValues {
                prefix,
                start,
                count,
            }
        }
        90..=91 => Command::Count {
            prefix: prefix(rng),
        },
        92..=94 => string_command(rng),
        _ => Command::DirtyGet { key: key(rng) },
    }
}

/// SETRANGE, INCRBYFLOAT, RENAMENX and COPY (within a family: to its own database or this one).
fn string_command(rng: &mut ChaCha8Rng) -> Command {
    match rng.gen_range(0..4) {
        0 => Command::SetRange {
            key: key(rng),
            offset: rng.gen_range(0..4),
            value: value(rng),
        },
        1 => Command::AddFloat {
            key: key(rng),
            delta: bytes(FLOAT_DELTAS[rng.gen_range(0..FLOAT_DELTAS.len())]),
        },
        2 => {
            let (from, to) = family_pair(rng);
            Command::RenameIfAbsent { from, to }
        }
        _ => {
            let (from, to) = family_pair(rng);
            let to_db = [None, Some(0), Some(family_db(from[0]))][rng.gen_range(0..3)];
            let replace = rng.gen_bool(0.5);
            Command::Copy {
                from,
                to,
                to_db,
                replace,
            }
        }
    }
}

/// The request a client is working on, and what it knows of its fate.
#[derive(Debug)]
pub struct Pending {
    pub op: OpId,
    pub command: Command,
    /// The `(client_id, seq)` every attempt of this request carries.
    pub request_id: (ClientId, Seq),
    pub invoked_ns: u64,
    pub attempts: u32,
    /// Copies of this request scheduled on the network and not yet delivered or dropped.
    pub copies_in_flight: u32,
    /// Copies that reached a live replica.
    pub copies_delivered: u32,
    /// Answers that said "certainly not applied".
    pub rejections: u32,
    /// Whether any answer said the request may have been applied.
    pub indeterminate: bool,
    /// Ids of the answers handled (the network may deliver one answer twice).
    pub answers: Vec<u64>,
    /// Master hints followed in a row.
    pub hint_hops: u32,
}

impl Pending {
    /// Whether the request certainly never took effect: every copy that reached a replica was
    /// refused and no copy is still travelling. (A duplicated copy may be logged while another
    /// is refused, so one refusal alone proves nothing.)
    pub fn certainly_not_applied(&self) -> bool {
        !self.indeterminate
            && self.copies_in_flight == 0
            && self.rejections >= self.copies_delivered
    }
}

/// One sequential client: at most one request outstanding.
///
/// A client either names its own session (`id`, writes and reads numbered together by `seq`)
/// or, like a node connection, opens one through the log: its first write waits for an
/// `OpenSession` (sent under `id`, like its reads), then its writes carry the opened id and
/// their own numbering from 1, and it opens a new session when the store says it forgot the
/// old one.
#[derive(Debug)]
pub struct Client {
    /// The client's own id: its reads, its `OpenSession`s and (unless it opens sessions) its
    /// writes carry it; replies come back to it by it.
    pub id: ClientId,
    pub seq: Seq,
    pub pending: Option<Pending>,
    /// Replica index the client believes is the master.
    pub master: Option<usize>,
    /// Generation of the client's one timer; older timer events are ignored.
    pub timer_gen: u64,
    /// Whether this client issues the liveness phase's writes.
    pub liveness: bool,
    /// Whether this client's writes go under sessions opened through the log.
    pub opens_sessions: bool,
    /// The opened session its writes go under, once the log handed one out.
    pub session: Option<ClientId>,
    /// The last write seq used under `session`.
    pub write_seq: Seq,
    /// The next request of a read-modify-write transaction under way.
    pub next: Option<Command>,
    /// Nil EXECs of the read-modify-write under way.
    pub tx_retries: u32,
}

impl Client {
    pub fn new(id: ClientId, liveness: bool, opens_sessions: bool) -> Self {
        Client {
            id,
            seq: 0,
            pending: None,
            master: None,
            timer_gen: 0,
            liveness,
            opens_sessions,
            session: None,
            write_seq: 0,
            next: None,
            tx_retries: 0,
        }
    }

    /// What the client sends instead of `command` first: an `OpenSession` when `command` is a
    /// write that needs a session the client does not have.
    pub fn first_needed(&self, command: Command) -> Command {
        if self.opens_sessions && self.session.is_none() && command.is_write() {
            Command::OpenSession
        } else {
            command
        }
    }

    /// Takes the `(client_id, seq)` for a new request of `command`.
    pub fn next_request_id(&mut self, command: &Command) -> (ClientId, Seq) {
        match self.session {
            Some(session) if command.is_write() && *command != Command::OpenSession => {
                self.write_seq += 1;
                (session, self.write_seq)
            }
            _ => {
                self.seq += 1;
                (self.id, self.seq)
            }
        }
    }

    /// Learns what a completed request says of the client's session: an `OpenSession`'s id
    /// starts one (returned, for routing), a write refused as stale ends it.
    pub fn learn(&mut self, command: &Command, reply: &Reply) -> Option<ClientId> {
        match (command, reply) {
            (Command::OpenSession, Reply::Int(id)) => {
                let session = *id as ClientId;
                assert!(
                    session & OPENED_SESSION_BIT != 0,
                    "OpenSession answered {id}, not an opened id"
                );
                self.session = Some(session);
                self.write_seq = 0;
                Some(session)
            }
            (command, Reply::Error(CommandError::StaleRequest { .. })) if command.is_write() => {
                self.session = None;
                None
            }
            _ => None,
        }
    }
}
