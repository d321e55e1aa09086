//! The clients' commands on keys with deadlines: SET with PX/KEEPTTL, EXPIRE with NX/XX/GT/LT,
//! PERSIST, GETEX, TTL/PTTL and reads, on a few keys of a database of their own
//! ([`EXPIRY_DB`]), with deadlines short enough that keys expire during a run, around
//! failovers and under the plan's wall clock errors.
//!
//! What judges them: the checker's timed model (the history's true times and the plan's clock
//! error bound say when each took effect in the store's time), that every replica's state (its
//! deadlines and time included) agrees after every slot, and the invariants each replica
//! asserts.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_core::{
    Command, Db, Deadline, ExpireCondition, ExpireName, SetCondition, TtlChange, TtlUnit,
};

/// The database of these keys: no other command of the workload touches it (the workload never
/// swaps or flushes every database), so the checker judges its keys' parts with the timed model.
pub const EXPIRY_DB: Db = 5;

const KEYS: [&str; 3] = ["x", "y", "z"];
const VALUES: [&str; 3] = ["1", "2", "3"];
/// Relative deadlines, in milliseconds: most expire within a run.
const TTLS_MS: [i64; 6] = [1, 20, 100, 500, 2_000, 60_000];

fn pick<T: Copy>(rng: &mut ChaCha8Rng, options: &[T]) -> T {
    options[rng.gen_range(0..options.len())]
}

fn key(rng: &mut ChaCha8Rng) -> Vec<u8> {
    pick(rng, &KEYS).as_bytes().to_vec()
}

fn deadline(rng: &mut ChaCha8Rng) -> Deadline {
    Deadline::In {
        ms: pick(rng, &TTLS_MS),
    }
}

/// One random command on a key with (or without) a deadline, in [`EXPIRY_DB`].
pub fn expiry_command(rng: &mut ChaCha8Rng) -> Command {
    let key = key(rng);
    let set = TtlChange::Set(deadline(rng));
    let command = match rng.gen_range(0..10) {
        0..=2 => Command::SetExpiring {
            key,
            value: pick(rng, &VALUES).as_bytes().to_vec(),
            condition: pick(rng, &[SetCondition::Always, SetCondition::IfAbsent]),
            get: rng.gen_bool(0.2),
            ttl: pick(rng, &[set, TtlChange::Keep]),
        },
        3 => Command::Expire {
            key,
            deadline: deadline(rng),
            condition: pick(
                rng,
                &[
                    ExpireCondition::Always,
                    ExpireCondition::NoDeadline,
                    ExpireCondition::HasDeadline,
                    ExpireCondition::Later,
                    ExpireCondition::Earlier,
                ],
            ),
            name: ExpireName::PExpire,
        },
        4 => Command::Persist { key },
        5 => Command::GetEx {
            key,
            ttl: pick(rng, &[set, TtlChange::Clear]),
        },
        6 => Command::TimeToLive {
            key,
            unit: pick(rng, &[TtlUnit::Millis, TtlUnit::Seconds]),
        },
        7 => Command::DirtyGet { key },
        8 => Command::Add { key, delta: 1 },
        _ => Command::Get { key },
    };
    command.in_db(EXPIRY_DB)
}
