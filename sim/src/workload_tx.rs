//! The clients' transactions: MULTI/EXEC with and without WATCH.
//!
//! - Read-modify-write with WATCH: a client reads keys with `Watch`, then sends a `Transaction`
//!   built from what it read (an increment of one key, or a transfer between two keys of a
//!   family followed by a read of both), watching them at the slot the read saw; when EXEC
//!   answers nil (a watched key changed) it reads again and retries, a few times at most.
//! - Transactions without WATCH of two or three of the workload's key commands (reads
//!   included), on one family's keys.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_core::{Command, Db, Reply, Watched};

/// The workload's own draws, passed in so this module does not reach back into `workload`:
/// two keys of one family, and one key command.
pub struct Draws {
    pub family_pair: fn(&mut ChaCha8Rng) -> (Vec<u8>, Vec<u8>),
    pub key_command: fn(&mut ChaCha8Rng) -> Command,
}

/// How many times a client retries a read-modify-write whose EXEC answered nil.
pub const RETRIES_MAX: u32 = 3;

/// A random transaction's first request: a `Watch` of one key (an increment follows) or of
/// two (a transfer follows), or a transaction without WATCH.
pub fn random_transaction(rng: &mut ChaCha8Rng, draws: &Draws) -> Command {
    let (first, second) = (draws.family_pair)(rng);
    let db: Db = [0, first[0] - b'a' + 1][rng.gen_range(0..2)];
    match rng.gen_range(0..3) {
        0 => Command::Watch { keys: vec![first] }.in_db(db),
        1 if first != second => Command::Watch {
            keys: vec![first, second],
        }
        .in_db(db),
        _ => unwatched(rng, draws),
    }
}

/// Two or three key commands of one family (and database) in one transaction, no WATCH.
fn unwatched(rng: &mut ChaCha8Rng, draws: &Draws) -> Command {
    let (first, _) = (draws.family_pair)(rng);
    let db: Db = [0, first[0] - b'a' + 1][rng.gen_range(0..2)];
    let count = rng.gen_range(2..=3);
    let mut commands = Vec::with_capacity(count);
    while commands.len() < count {
        let command = (draws.key_command)(rng);
        let same_family = command.keys().iter().all(|k| k.first() == first.first());
        if same_family && !matches!(command, Command::DirtyGet { .. }) {
            commands.push(command.in_db(db));
        }
    }
    Command::Transaction {
        commands,
        watched: Vec::new(),
    }
}

/// The request that follows `command`'s `reply` in a read-modify-write, if any; `retries`
/// counts the nil EXECs of this one so far.
pub fn follow_up(command: &Command, reply: &Reply, retries: &mut u32) -> Option<Command> {
    match (command.db_and_command(), reply) {
        ((db, Command::Watch { keys }), Reply::Watched { slot, values }) => {
            Some(exec_of(db, keys, *slot, values))
        }
        ((_, Command::Transaction { watched, .. }), Reply::Transaction(None))
            if *retries < RETRIES_MAX =>
        {
            *retries += 1;
            let db = watched.first().expect("a nil EXEC watched a key").db;
            let keys = watched.iter().map(|w| w.key.clone()).collect();
            Some(Command::Watch { keys }.in_db(db))
        }
        _ => None,
    }
}

/// The transaction a read-modify-write sends after its WATCH read `values` at `slot`: an
/// increment of one key (absent or not an integer: 1), or a transfer of 1 from the first of
/// two keys to the second, then a read of both.
fn exec_of(db: Db, keys: &[Vec<u8>], slot: u64, values: &[Option<Vec<u8>>]) -> Command {
    let number = |value: &Option<Vec<u8>>| {
        value
            .as_deref()
            .and_then(keyspace_core::kv::parse_integer)
            .unwrap_or(0)
    };
    let commands = match keys.len() {
        1 => vec![Command::Set {
            key: keys[0].clone(),
            value: number(&values[0])
                .saturating_add(1)
                .to_string()
                .into_bytes(),
        }],
        _ => vec![
            Command::Set {
                key: keys[0].clone(),
                value: number(&values[0])
                    .saturating_sub(1)
                    .to_string()
                    .into_bytes(),
            },
            Command::Add {
                key: keys[1].clone(),
                delta: 1,
            },
            Command::MultiGet {
                keys: keys.to_vec(),
            },
        ],
    };
    let watched = keys
        .iter()
        .zip(values)
        .map(|(key, value)| Watched {
            db,
            key: key.clone(),
            slot,
            existed: value.is_some(),
        })
        .collect();
    Command::Transaction {
        commands: commands.into_iter().map(|c| c.in_db(db)).collect(),
        watched,
    }
}
