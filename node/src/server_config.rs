//! The node's `CONFIG` parameters: `CONFIG GET pattern…`, `CONFIG SET name value [name value …]`,
//! `CONFIG RESETSTAT` and `CONFIG REWRITE`, with Redis 7.0's replies and errors.
//!
//! The table holds the parameters Redis's clients and test harness read and set. What each one
//! does here:
//! - `maxmemory` (and its `maxmemory-policy`) is enforced as Redis's `noeviction`: while the
//!   process's resident memory is over it, commands that write are refused with `OOM`. keyspace
//!   never evicts keys on its own (a replica cannot drop data the log holds), so every policy
//!   behaves as `noeviction`; the policy set is kept and shown.
//! - `maxclients` bounds the client connections, `timeout` closes idle ones.
//! - `port`, `bind` and `dir` show where this replica serves; they cannot be moved while it
//!   runs. `requirepass` is given at start, the same for every replica of the group.
//! - `appendonly` is always `yes` and `appendfsync` always `always`: every write is in the log,
//!   synced, before it is answered.
//! - The rest (`save`, `hz`, `notify-keyspace-events`, `busy-reply-threshold`, …) are checked
//!   as Redis checks them and kept, with no effect on this server.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::resp::Writer;

/// How a parameter's value is checked (and written back by `CONFIG GET`).
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// Bytes, with Redis's units (`10mb`, `1g`, …); shown as a number of bytes.
    Memory,
    /// Bytes or a share of `maxmemory` (`10%`).
    MemoryOrPercent,
    Choice(&'static [&'static str]),
    Text,
    /// Pairs of `seconds changes`, or empty.
    Save,
    /// Characters of Redis's keyspace event classes.
    Events,
    /// Only the value it has may be set; any other is refused for the reason given.
    Pinned(&'static str),
    /// Redis's immutable configurations.
    Immutable,
}

struct Param {
    name: &'static str,
    kind: Kind,
    default: &'static str,
}

const fn param(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        kind,
        default,
    }
}

const YES_NO: Kind = Kind::Bool;

/// An integer between `min` and `max`, inclusive.
const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}
const INT_MAX: i64 = i32::MAX as i64;
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const LOG_LEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];
const NOT_MOVED: &str = "Unable to listen on this port: keyspace does not move its client \
    listener while it runs";

/// Every parameter, in the order `CONFIG GET *` lists them.
const PARAMS: &[Param] = &[
    param("maxmemory", Kind::Memory, "0"),
    param("maxmemory-policy", Kind::Choice(POLICIES), "noeviction"),
    param("maxmemory-samples", int(1, 64), "5"),
    param("maxmemory-eviction-tenacity", int(0, 100), "10"),
    param("maxmemory-clients", Kind::MemoryOrPercent, "0"),
    param("maxclients", int(1, INT_MAX), "10000"),
    param("timeout", int(0, INT_MAX), "0"),
    param("tcp-keepalive", int(0, INT_MAX), "300"),
    param("port", Kind::Pinned(NOT_MOVED), "6379"),
    param("bind", Kind::Pinned(NOT_MOVED), "127.0.0.1"),
    param(
        "requirepass",
        Kind::Pinned(
            "keyspace takes the password at start (--requirepass), the same on every replica",
        ),
        "",
    ),
    param(
        "appendonly",
        Kind::Pinned(
            "keyspace logs and syncs every write before it answers: appendonly is always yes",
        ),
        "yes",
    ),
    param(
        "appendfsync",
        Kind::Pinned(
            "keyspace syncs the log before it answers a write: appendfsync is always always",
        ),
        "always",
    ),
    param("save", Kind::Save, ""),
    param("databases", Kind::Immutable, "16"),
    param("daemonize", Kind::Immutable, "no"),
    param("io-threads", Kind::Immutable, "1"),
    param("tcp-backlog", Kind::Immutable, "511"),
    param("cluster-enabled", Kind::Immutable, "no"),
    param("enable-debug-command", Kind::Immutable, "local"),
    param("dir", Kind::Immutable, ""),
    param("dbfilename", Kind::Immutable, "dump.rdb"),
    param("appendfilename", Kind::Immutable, "appendonly.aof"),
    param("appenddirname", Kind::Immutable, "appendonlydir"),
    param("logfile", Kind::Immutable, ""),
    param("pidfile", Kind::Immutable, ""),
    param(
        "replicaof",
        Kind::Pinned("keyspace replicas follow the group's master through the log, not REPLICAOF"),
        "",
    ),
    param("busy-reply-threshold", int(0, i64::MAX), "5000"),
    param("notify-keyspace-events", Kind::Events, ""),
    param("hz", int(0, INT_MAX), "10"),
    param("dynamic-hz", YES_NO, "yes"),
    param("loglevel", Kind::Choice(LOG_LEVELS), "notice"),
    param("protected-mode", YES_NO, "no"),
    param("slowlog-log-slower-than", int(-1, i64::MAX), "10000"),
    param("slowlog-max-len", int(0, i64::MAX), "128"),
    param("latency-monitor-threshold", int(0, i64::MAX), "0"),
    param("latency-tracking", YES_NO, "yes"),
    param(
        "latency-tracking-info-percentiles",
        Kind::Text,
        "50 99 99.9",
    ),
    param("min-replicas-to-write", int(0, INT_MAX), "0"),
    param("min-replicas-max-lag", int(0, INT_MAX), "10"),
    param("replica-serve-stale-data", YES_NO, "yes"),
    param("replica-read-only", YES_NO, "yes"),
    param("repl-backlog-size", Kind::Memory, "1048576"),
    param("repl-timeout", int(1, INT_MAX), "60"),
    param("repl-ping-replica-period", int(1, INT_MAX), "10"),
    param("client-query-buffer-limit", Kind::Memory, "1073741824"),
    param("proto-max-bulk-len", Kind::Memory, "536870912"),
    param(
        "client-output-buffer-limit",
        Kind::Text,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    param("lazyfree-lazy-eviction", YES_NO, "no"),
    param("lazyfree-lazy-expire", YES_NO, "no"),
    param("lazyfree-lazy-server-del", YES_NO, "no"),
    param("lazyfree-lazy-user-del", YES_NO, "no"),
    param("lazyfree-lazy-user-flush", YES_NO, "no"),
    param("lfu-log-factor", int(0, INT_MAX), "10"),
    param("lfu-decay-time", int(0, INT_MAX), "1"),
    param("active-expire-effort", int(1, 10), "1"),
    param("activerehashing", YES_NO, "yes"),
    param("activedefrag", YES_NO, "no"),
    param("stop-writes-on-bgsave-error", YES_NO, "yes"),
    param("rdbcompression", YES_NO, "yes"),
    param("lua-replicate-commands", YES_NO, "yes"),
    param("list-max-listpack-size", int(i64::MIN, i64::MAX), "-2"),
    param("list-compress-depth", int(0, INT_MAX), "0"),
    param("hash-max-listpack-entries", int(0, i64::MAX), "128"),
    param("hash-max-listpack-value", int(0, i64::MAX), "64"),
    param("set-max-intset-entries", int(0, i64::MAX), "512"),
    param("zset-max-listpack-entries", int(0, i64::MAX), "128"),
    param("zset-max-listpack-value", int(0, i64::MAX), "64"),
    param("stream-node-max-bytes", Kind::Memory, "4096"),
    param("stream-node-max-entries", int(0, i64::MAX), "100"),
    param("hll-sparse-max-bytes", Kind::Memory, "3000"),
];

/// Redis's other names of parameters; `CONFIG GET` matches both.
const ALIASES: &[(&str, &str)] = &[
    ("slaveof", "replicaof"),
    ("lua-time-limit", "busy-reply-threshold"),
    ("slave-serve-stale-data", "replica-serve-stale-data"),
    ("slave-read-only", "replica-read-only"),
    ("min-slaves-to-write", "min-replicas-to-write"),
    ("min-slaves-max-lag", "min-replicas-max-lag"),
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
];

/// Parameters `CONFIG GET` shows only when named exactly (Redis's hidden configurations).
const HIDDEN: &[Param] = &[param("key-load-delay", int(i64::MIN, i64::MAX), "0")];

/// Most name/value pairs one `CONFIG SET` takes.
pub const SET_PAIRS_MAX: usize = 256;

/// The node's current parameter values.
pub struct ServerConfig {
    values: Mutex<BTreeMap<&'static str, String>>,
}

fn find(name: &str) -> Option<&'static Param> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map_or(name, |(_, target)| target);
    (PARAMS.iter().chain(HIDDEN)).find(|p| p.name.eq_ignore_ascii_case(name))
}

impl ServerConfig {
    /// The defaults, with this replica's client address, data directory and password.
    pub fn new(client_addr: std::net::SocketAddr, dir: &str, password: Option<&str>) -> Self {
        let mut values: BTreeMap<&'static str, String> = (PARAMS.iter().chain(HIDDEN))
            .map(|p| (p.name, p.default.to_string()))
            .collect();
        values.insert("port", client_addr.port().to_string());
        values.insert("bind", client_addr.ip().to_string());
        values.insert("dir", dir.to_string());
        values.insert("requirepass", password.unwrap_or_default().to_string());
        ServerConfig {
            values: Mutex::new(values),
        }
    }

    fn values(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        self.values
            .lock()
            .expect("no panic while holding the configuration")
    }

    /// A parameter's value (its canonical name).
    pub fn get(&self, name: &str) -> String {
        let param = find(name).expect("a parameter of the table");
        self.values()[param.name].clone()
    }

    /// A numeric parameter's value.
    pub fn number(&self, name: &str) -> i64 {
        self.get(name).parse().expect("a numeric parameter")
    }

    /// `maxmemory` in bytes; 0: no limit.
    pub fn maxmemory_bytes(&self) -> u64 {
        self.number("maxmemory") as u64
    }

    /// Every `(name, value)` a `CONFIG GET` with these patterns shows, each name once.
    pub fn matching(&self, patterns: &[Vec<u8>]) -> Vec<(&'static str, String)> {
        let values = self.values();
        let mut found: Vec<(&'static str, String)> = Vec::new();
        let mut add = |name: &'static str, target: &'static str| {
            if !found.iter().any(|(n, _)| *n == name) {
                found.push((name, values[target].clone()));
            }
        };
        for pattern in patterns {
            let exact = |name: &str| name.as_bytes().eq_ignore_ascii_case(pattern);
            let matches = |name: &str| exact(name) || glob_match(pattern, name.as_bytes());
            for p in PARAMS.iter().filter(|p| matches(p.name)) {
                add(p.name, p.name);
            }
            for (alias, target) in ALIASES.iter().filter(|(a, _)| matches(a)) {
                add(alias, target);
            }
            for p in HIDDEN.iter().filter(|p| exact(p.name)) {
                add(p.name, p.name);
            }
        }
        found
    }

    /// `CONFIG SET`: checks every pair first and sets them all, or none (the first error).
    pub fn set(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        let mut checked: Vec<(&'static str, String)> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let text = String::from_utf8_lossy(name);
            let Some(param) = find(&text) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{text}'"
                ));
            };
            let failed = |reason: &str| {
                format!("ERR CONFIG SET failed (possibly related to argument '{text}') - {reason}")
            };
            if checked.iter().any(|(n, _)| *n == param.name) {
                return Err(failed("duplicate parameter"));
            }
            let value = String::from_utf8_lossy(value);
            let current = self.values()[param.name].clone();
            let normal = normalize(param.kind, &value, &current).map_err(|r| failed(&r))?;
            checked.push((param.name, normal));
        }
        let mut values = self.values();
        for (name, value) in checked {
            values.insert(name, value);
        }
        Ok(())
    }
}

/// `value` as `CONFIG GET` will show it, or why it is refused.
fn normalize(kind: Kind, value: &str, current: &str) -> Result<String, String> {
    match kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            v @ ("yes" | "no") => Ok(v.to_string()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int { min, max } => {
            let n: i64 = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            match (min..=max).contains(&n) {
                true => Ok(n.to_string()),
                false => Err(format!(
                    "argument must be between {min} and {max} inclusive"
                )),
            }
        }
        Kind::Memory => memory_bytes(value).map(|n| n.to_string()),
        Kind::MemoryOrPercent => match value.strip_suffix('%') {
            Some(share) => match share.parse::<u64>() {
                Ok(n) if n <= 100 => Ok(format!("{n}%")),
                Ok(_) => Err("percentage argument must be less or equal to 100".into()),
                Err(_) => Err("argument must be a memory or percent value".into()),
            },
            None => memory_bytes(value).map(|n| n.to_string()),
        },
        Kind::Choice(choices) => {
            let lower = value.to_ascii_lowercase();
            match choices.contains(&lower.as_str()) {
                true => Ok(lower),
                false => Err(format!(
                    "argument(s) must be one of the following: {}",
                    choices.join(", ")
                )),
            }
        }
        Kind::Text => Ok(value.to_string()),
        Kind::Save => save_rules(value),
        Kind::Events => keyspace_events(value),
        Kind::Pinned(_) | Kind::Immutable if value == current => Ok(value.to_string()),
        Kind::Pinned(reason) => Err(reason.to_string()),
        Kind::Immutable => Err("can't set immutable config".into()),
    }
}

/// Redis's memory values: a number with an optional unit (k, kb, m, mb, g, gb; any case).
fn memory_bytes(value: &str) -> Result<u64, String> {
    let lower = value.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u64 = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err("argument must be a memory value".into()),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "argument must be a memory value".to_string())?;
    n.checked_mul(unit)
        .ok_or_else(|| "argument must be a memory value".into())
}

/// `save`: empty, or pairs of non-negative integers.
fn save_rules(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let numbers = parts.iter().all(|p| p.parse::<u64>().is_ok());
    match parts.len().is_multiple_of(2) && numbers {
        true => Ok(parts.join(" ")),
        false => Err("Invalid save parameters".into()),
    }
}

/// `notify-keyspace-events`: characters of Redis's event classes.
fn keyspace_events(value: &str) -> Result<String, String> {
    match value.chars().all(|c| "KEg$lshzxetdmnA".contains(c)) {
        true => Ok(value.to_string()),
        false => Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
    }
}

/// Redis's glob matching (`*`, `?`, `[…]`, `\`), case-insensitive, as `CONFIG GET` uses it.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(_) => {
                if let Some(next) = glob_step(pattern, p, text[t]) {
                    p = next;
                    t += 1;
                    continue;
                }
            }
            None => {}
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Where the pattern continues after matching one character `c` at `p`, if it matches.
fn glob_step(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    let c = c.to_ascii_lowercase();
    match pattern[p] {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => {
            (pattern[p + 1].to_ascii_lowercase() == c).then_some(p + 2)
        }
        b'[' => glob_class(pattern, p + 1, c),
        other => (other.to_ascii_lowercase() == c).then_some(p + 1),
    }
}

/// A `[…]` class starting after its `[` at `p`: where the pattern continues if `c` is in it.
fn glob_class(pattern: &[u8], mut p: usize, c: u8) -> Option<usize> {
    let negate = pattern.get(p) == Some(&b'^');
    p += usize::from(negate);
    let mut hit = false;
    while p < pattern.len() && pattern[p] != b']' {
        let lo = pattern[p].to_ascii_lowercase();
        if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() && pattern[p + 2] != b']' {
            let hi = pattern[p + 2].to_ascii_lowercase();
            hit |= (lo.min(hi)..=lo.max(hi)).contains(&c);
            p += 3;
        } else {
            hit |= lo == c;
            p += 1;
        }
    }
    (hit != negate).then_some((p + 1).min(pattern.len()))
}

/// `CONFIG …` (the arguments after the command's name).
pub fn run(config: &ServerConfig, args: &[Vec<u8>], w: &mut Writer<'_>) {
    let sub = String::from_utf8_lossy(&args[1]).to_uppercase();
    let arity = |sub: &str| keyspace_core::redis::arity_error(&format!("config|{sub}"));
    match sub.as_str() {
        "GET" if args.len() >= 3 => {
            let found = config.matching(&args[2..]);
            w.map(found.len());
            for (name, value) in found {
                w.bulk(name.as_bytes());
                w.bulk(value.as_bytes());
            }
        }
        "SET"
            if args.len() >= 4
                && args.len().is_multiple_of(2)
                && args.len() / 2 - 1 <= SET_PAIRS_MAX =>
        {
            let pairs: Vec<(&[u8], &[u8])> = args[2..]
                .chunks(2)
                .map(|pair| (pair[0].as_slice(), pair[1].as_slice()))
                .collect();
            match config.set(&pairs) {
                Ok(()) => w.simple("OK"),
                Err(error) => w.error(&error),
            }
        }
        "SET" if args.len() >= 3 => w.error(&format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
            String::from_utf8_lossy(&args[2])
        )),
        "RESETSTAT" if args.len() == 2 => w.simple("OK"),
        "REWRITE" if args.len() == 2 => w.error(
            "ERR The server is running without a config file: keyspace takes its settings from \
             the command line",
        ),
        "GET" | "SET" | "RESETSTAT" | "REWRITE" => w.error(&arity(&sub)),
        "HELP" => w.help(HELP),
        _ => w.error(&format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Print this help.",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig::new("127.0.0.1:7001".parse().unwrap(), "/data", None)
    }

    fn set(config: &ServerConfig, pairs: &[(&str, &str)]) -> Result<(), String> {
        let pairs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        config.set(&pairs)
    }

    fn get(config: &ServerConfig, patterns: &[&str]) -> Vec<(&'static str, String)> {
        let patterns: Vec<Vec<u8>> = patterns.iter().map(|p| p.as_bytes().to_vec()).collect();
        config.matching(&patterns)
    }

    #[test]
    fn every_listed_parameter_can_be_set_to_the_value_it_shows() {
        let config = config();
        let all = get(&config, &["*"]);
        assert!(all.len() >= PARAMS.len());
        for (name, value) in &all {
            let immutable = matches!(find(name).unwrap().kind, Kind::Immutable);
            assert!(
                immutable || set(&config, &[(name, value)]).is_ok(),
                "{name} {value}"
            );
        }
        assert_eq!(get(&config, &["*"]), all);
    }

    #[test]
    fn config_get_takes_several_patterns_and_aliases_and_lists_each_name_once() {
        let config = config();
        let found = get(&config, &["maxmemory", "maxmemory*", "bind", "*of"]);
        let names: Vec<&str> = found.iter().map(|(n, _)| *n).collect();
        for name in [
            "maxmemory",
            "maxmemory-samples",
            "maxmemory-clients",
            "bind",
            "replicaof",
            "slaveof",
        ] {
            assert_eq!(names.iter().filter(|n| **n == name).count(), 1, "{name}");
        }
        assert_eq!(get(&config, &["port"]), vec![("port", "7001".to_string())]);
        assert!(get(&config, &["*"])
            .iter()
            .all(|(n, _)| *n != "key-load-delay"));
        assert_eq!(get(&config, &["key-load-delay"]).len(), 1);
    }

    #[test]
    fn config_set_sets_all_pairs_or_none_with_redis_errors() {
        let config = config();
        assert_eq!(
            set(&config, &[("maxmemory", "10mb"), ("save", "3000  5")]),
            Ok(())
        );
        assert_eq!(config.get("maxmemory"), "10485760");
        assert_eq!(config.get("save"), "3000 5");
        assert_eq!(
            set(&config, &[("maxmemory", "1"), ("maxmemory-clients", "200%")]),
            Err("ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100".into())
        );
        assert_eq!(
            config.maxmemory_bytes(),
            10485760,
            "nothing set on an error"
        );
        assert_eq!(
            set(&config, &[("foo", "bar")]),
            Err("ERR Unknown option or number of arguments for CONFIG SET - 'foo'".into())
        );
        assert!(set(&config, &[("maxmemory", "1"), ("maxmemory", "2")])
            .unwrap_err()
            .contains("duplicate"));
        assert!(set(&config, &[("daemonize", "yes")])
            .unwrap_err()
            .ends_with("can't set immutable config"));
        assert!(set(&config, &[("port", "7002")])
            .unwrap_err()
            .contains("Unable to listen on this port"));
        assert!(set(&config, &[("maxmemory", "bla")])
            .unwrap_err()
            .contains("memory value"));
        assert_eq!(set(&config, &[("lua-time-limit", "10")]), Ok(()));
        assert_eq!(config.get("busy-reply-threshold"), "10");
    }

    #[test]
    fn glob_matches_as_redis_does() {
        assert!(glob_match(b"max*", b"maxmemory"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"h?", b"hz"));
        assert!(glob_match(b"[a-c]z", b"bz"));
        assert!(!glob_match(b"[^a-c]z", b"bz"));
        assert!(glob_match(b"MAX*", b"maxmemory"));
        assert!(!glob_match(b"max", b"maxmemory"));
        assert!(glob_match(b"*of", b"slaveof"));
    }
}
