//! Redis 7.0's `noscript` flag: the commands and subcommands a script may not call. A script
//! calling one gets "This Redis command is not allowed from script", whether keyspace answers
//! the command or not yet (the list is Redis 7.0.15's `COMMAND` output, flag `noscript`).
//! The flag belongs to the command, so [`table::COMMANDS`](super::table::COMMANDS) rows need
//! no column of their own: a command added to the table is flagged by being named here.

use crate::redis::args::text;

/// Commands flagged `noscript` as a whole.
const COMMANDS: [&str; 40] = [
    "AUTH",
    "BGREWRITEAOF",
    "BGSAVE",
    "BLMOVE",
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BZPOPMAX",
    "BZPOPMIN",
    "DEBUG",
    "DISCARD",
    "EVAL",
    "EVALSHA",
    "EVALSHA_RO",
    "EVAL_RO",
    "EXEC",
    "FAILOVER",
    "FCALL",
    "FCALL_RO",
    "HELLO",
    "MONITOR",
    "MULTI",
    "PSUBSCRIBE",
    "PSYNC",
    "PUNSUBSCRIBE",
    "QUIT",
    "REPLCONF",
    "REPLICAOF",
    "RESET",
    "ROLE",
    "SAVE",
    "SHUTDOWN",
    "SLAVEOF",
    "SSUBSCRIBE",
    "SUBSCRIBE",
    "SUNSUBSCRIBE",
    "SYNC",
    "UNSUBSCRIBE",
    "UNWATCH",
    "WAIT",
];

/// Container commands whose every subcommand but HELP is flagged `noscript`.
const CONTAINERS: [&str; 5] = ["ACL", "FUNCTION", "LATENCY", "MODULE", "SCRIPT"];

/// Subcommands flagged `noscript` in containers whose other subcommands are allowed.
const SUBCOMMANDS: [(&str, &str); 20] = [
    ("CLIENT", "CACHING"),
    ("CLIENT", "GETNAME"),
    ("CLIENT", "GETREDIR"),
    ("CLIENT", "ID"),
    ("CLIENT", "INFO"),
    ("CLIENT", "KILL"),
    ("CLIENT", "LIST"),
    ("CLIENT", "NO-EVICT"),
    ("CLIENT", "PAUSE"),
    ("CLIENT", "REPLY"),
    ("CLIENT", "SETNAME"),
    ("CLIENT", "TRACKING"),
    ("CLIENT", "TRACKINGINFO"),
    ("CLIENT", "UNBLOCK"),
    ("CLIENT", "UNPAUSE"),
    ("CLUSTER", "RESET"),
    ("CONFIG", "GET"),
    ("CONFIG", "RESETSTAT"),
    ("CONFIG", "REWRITE"),
    ("CONFIG", "SET"),
];

/// Whether the command `argv` names (name first, any case) carries Redis 7.0's `noscript`
/// flag, itself or through its subcommand.
pub fn noscript(argv: &[Vec<u8>]) -> bool {
    assert!(!argv.is_empty(), "a command has a name");
    let name = text(&argv[0]).to_ascii_uppercase();
    if COMMANDS.contains(&name.as_str()) {
        return true;
    }
    let Some(sub) = argv.get(1).map(|s| text(s).to_ascii_uppercase()) else {
        return false;
    };
    if CONTAINERS.contains(&name.as_str()) {
        return sub != "HELP";
    }
    SUBCOMMANDS.contains(&(name.as_str(), sub.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn blocking_and_script_commands_are_flagged_noscript_in_any_case() {
        assert!(noscript(&argv(&["blpop", "x", "0"])));
        assert!(noscript(&argv(&["BZPOPMIN", "z", "0"])));
        assert!(noscript(&argv(&["evalsha_ro", "0"])));
        assert!(!noscript(&argv(&["GET", "x"])));
        assert!(!noscript(&argv(&["XREAD", "STREAMS", "s", "$"])));
    }

    #[test]
    fn subcommands_are_flagged_on_their_own() {
        assert!(noscript(&argv(&["cluster", "reset", "hard"])));
        assert!(!noscript(&argv(&["CLUSTER", "INFO"])));
        assert!(noscript(&argv(&["CONFIG", "set", "a", "b"])));
        assert!(noscript(&argv(&["SCRIPT", "FLUSH"])));
        assert!(!noscript(&argv(&["SCRIPT", "HELP"])));
        assert!(!noscript(&argv(&["CLIENT"])));
    }
}
