//! `COMMAND GETKEYS`: the key arguments of a command, as the core parser reads them (the same
//! parse a client's command and a script's `redis.call` get), with Redis 7.0's errors.

use crate::command::Command;
use crate::redis::{arity_ok, parse_store, spec, text, Kind};

/// The keys `argv` (a command with its arguments) names, in order, or Redis's error.
pub fn key_arguments(argv: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
    assert!(!argv.is_empty(), "COMMAND GETKEYS names a command");
    let name = text(&argv[0]).to_ascii_uppercase();
    let spec = spec(&name).ok_or("ERR Invalid command specified")?;
    if !arity_ok(argv, spec.arity) {
        return Err("ERR Invalid number of arguments specified for command".into());
    }
    let commands = match spec.kind {
        Kind::Store => parse_store(&name, argv)?.commands,
        Kind::Local => vec![],
    };
    let keys: Vec<Vec<u8>> = match name.as_str() {
        "WATCH" => argv[1..].to_vec(),
        _ => commands.iter().flat_map(named_keys).collect(),
    };
    // A script run declares its keys by a count (`numkeys`): none is a valid answer.
    let counted = (commands.iter()).any(|c| matches!(c, Command::Script(s) if s.declares_keys()));
    if keys.is_empty() && !counted {
        return Err("ERR The command has no key arguments".into());
    }
    assert!(keys.len() < argv.len(), "every key is an argument");
    Ok(keys)
}

/// The keys a store command names: not the prefixes and patterns it scans.
fn named_keys(command: &Command) -> Vec<Vec<u8>> {
    match command {
        Command::Prune { .. }
        | Command::Count { .. }
        | Command::Keys { .. }
        | Command::Scan { .. }
        | Command::ListKeys { .. }
        | Command::ListKeyValues { .. } => vec![],
        Command::InDb { command, .. } => named_keys(command),
        other => other.keys().into_iter().map(<[u8]>::to_vec).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn getkeys(line: &str) -> Result<Vec<String>, String> {
        let argv: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        key_arguments(&argv).map(|keys| {
            keys.into_iter()
                .map(|k| String::from_utf8(k).unwrap())
                .collect()
        })
    }

    #[test]
    fn getkeys_names_the_keys_of_store_and_script_commands() {
        assert_eq!(getkeys("fcall test 1 x foo"), Ok(vec!["x".into()]));
        assert_eq!(
            getkeys("FCALL_RO test 2 a b c"),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(getkeys("eval body 0"), Ok(vec![]));
        assert_eq!(getkeys("mset a 1 b 2"), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(getkeys("set a b"), Ok(vec!["a".into()]));
        assert_eq!(getkeys("watch a b"), Ok(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn getkeys_gives_redis_errors_for_no_keys_unknown_commands_and_arity() {
        let no_keys = Err("ERR The command has no key arguments".to_string());
        assert_eq!(getkeys("keys *"), no_keys);
        assert_eq!(getkeys("dbsize"), no_keys);
        assert_eq!(getkeys("ping"), no_keys);
        assert_eq!(
            getkeys("foo a"),
            Err("ERR Invalid command specified".into())
        );
        assert_eq!(
            getkeys("get"),
            Err("ERR Invalid number of arguments specified for command".into())
        );
    }
}
