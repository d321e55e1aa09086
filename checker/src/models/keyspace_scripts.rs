//! The store model's scripts: the EVAL bodies the simulator's workload sends, each with its
//! meaning written here against the model's state (not by running Lua), so the checker judges
//! their histories. A script of any other body is left out of checked histories.

use keyspace_core::redis::Resp;
use keyspace_core::scripting::ScriptCommand;
use keyspace_core::{Db, Reply};

use super::keyspace_state::{qualified, StoreState};

/// Deletes KEYS[1] if it holds ARGV[1]: 1 if it did, else 0.
pub const COMPARE_AND_DELETE: &str =
    "if redis.call('GET',KEYS[1])==ARGV[1] then return redis.call('DEL',KEYS[1]) else return 0 end";

/// Moves KEYS[1]'s value to KEYS[2] (KEYS[1] deleted, even when both name one key): the
/// value, or nil when KEYS[1] is absent.
pub const MOVE_BETWEEN_KEYS: &str = "local v = redis.call('GET',KEYS[1]) if v then redis.call('SET',KEYS[2],v) redis.call('DEL',KEYS[1]) return v end return false";

/// A script the model knows: its body, KEYS and ARGV.
enum Known<'a> {
    CompareAndDelete { key: &'a [u8], expected: &'a [u8] },
    MoveBetweenKeys { from: &'a [u8], to: &'a [u8] },
}

fn known(script: &ScriptCommand) -> Option<Known<'_>> {
    let ScriptCommand::Eval {
        body,
        keys,
        args,
        read_only: false,
        over_maxmemory: false,
        debug_allowed: false,
    } = script
    else {
        return None;
    };
    match (body.as_slice(), keys.as_slice(), args.as_slice()) {
        (b, [key], [expected]) if b == COMPARE_AND_DELETE.as_bytes() => {
            Some(Known::CompareAndDelete { key, expected })
        }
        (b, [from, to], []) if b == MOVE_BETWEEN_KEYS.as_bytes() => {
            Some(Known::MoveBetweenKeys { from, to })
        }
        _ => None,
    }
}

/// Whether the model judges `script`.
pub fn is_modelled(script: &ScriptCommand) -> bool {
    known(script).is_some()
}

/// Applies a script the model knows, in database `db`: the new state if it changed, and the
/// reply a client sees.
pub(super) fn apply_script(
    state: &StoreState,
    db: Db,
    script: &ScriptCommand,
) -> (Option<StoreState>, Reply) {
    let known = known(script).expect("only modelled scripts are checked");
    let (next, resp) = match known {
        Known::CompareAndDelete { key, expected } => {
            let key = qualified(db, key);
            match state.get(&key) {
                Some(value) if value.as_slice() == expected => {
                    let mut next = state.clone();
                    next.remove(&key);
                    (Some(next), Resp::Int(1))
                }
                _ => (None, Resp::Int(0)),
            }
        }
        Known::MoveBetweenKeys { from, to } => {
            let (from, to) = (qualified(db, from), qualified(db, to));
            match state.get(&from) {
                Some(value) => {
                    let mut next = state.clone();
                    next.insert(to, value.clone());
                    next.remove(&from);
                    assert!(!next.contains_key(&from), "the source is gone");
                    (Some(next), Resp::Bulk(Some(value.clone())))
                }
                None => (None, Resp::Bulk(None)),
            }
        }
    };
    (next, Reply::Resp(resp))
}
