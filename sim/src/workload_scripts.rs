//! The clients' scripts: EVAL of the bodies the checker's model knows
//! (`keyspace_checker::models::keyspace_scripts`), on one family's keys: compare-and-delete of
//! a key against one of the workload's values, and move of a key's value to another key of
//! its family (or to itself).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use keyspace_checker::models::keyspace_scripts::{COMPARE_AND_DELETE, MOVE_BETWEEN_KEYS};
use keyspace_core::scripting::ScriptCommand;
use keyspace_core::Command;

/// The workload's own draws, passed in so this module does not reach back into `workload`:
/// two keys of one family, and a value.
pub struct Draws {
    pub family_pair: fn(&mut ChaCha8Rng) -> (Vec<u8>, Vec<u8>),
    pub value: fn(&mut ChaCha8Rng) -> Vec<u8>,
}

fn eval(body: &str, keys: Vec<Vec<u8>>, args: Vec<Vec<u8>>) -> Command {
    Command::Script(ScriptCommand::eval(body.as_bytes(), keys, args))
}

/// A compare-and-delete or a move-between-keys on one family's keys.
pub fn script_command(rng: &mut ChaCha8Rng, draws: &Draws) -> Command {
    let (first, second) = (draws.family_pair)(rng);
    match rng.gen_bool(0.5) {
        true => eval(COMPARE_AND_DELETE, vec![first], vec![(draws.value)(rng)]),
        false => eval(MOVE_BETWEEN_KEYS, vec![first, second], vec![]),
    }
}
