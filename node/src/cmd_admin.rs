//! The server's own commands, as Redis 7.0 answers them: `TIME`, `SAVE`, `SHUTDOWN`, and
//! `REPLICAOF`/`SLAVEOF`, with what a Redis replica refuses while its master link is down.
//!
//! - `SAVE` answers `OK` at once: every write is in the log, synced, before it is answered.
//! - `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]` ends the replica's process without a reply, as a
//!   crash would (the log is durable; the others keep serving).
//! - `REPLICAOF host port` makes this replica answer its clients as a Redis replica whose link
//!   to that master is down, for keyspace does not replicate from Redis servers: writes are
//!   refused with `READONLY` (unless `replica-read-only` is `no`), and, with
//!   `replica-serve-stale-data no`, every command Redis does not serve on a stale replica with
//!   `MASTERDOWN`. The group itself goes on. `REPLICAOF NO ONE` ends it.

use keyspace_core::redis::{parse_i64, text, NOT_AN_INTEGER};

use crate::connection::{ClientContext, Connection};
use crate::resp::Writer;

/// Commands Redis refuses inside MULTI (its `no-multi` flag).
pub const NOT_IN_MULTI: [&str; 2] = ["SAVE", "SHUTDOWN"];
pub const NOT_IN_MULTI_ERROR: &str = "ERR Command not allowed inside a transaction";

/// Commands a Redis replica serves while its master link is down and
/// `replica-serve-stale-data` is `no` (Redis 7.0's `stale` flag; CONFIG, CLIENT and MEMBER
/// through their subcommands'), of those keyspace has.
const SERVED_STALE: [&str; 28] = [
    "AUTH",
    "COMMAND",
    "DEBUG",
    "DISCARD",
    "ECHO",
    "EVAL",
    "EVAL_RO",
    "EVALSHA",
    "EVALSHA_RO",
    "EXEC",
    "FCALL",
    "FCALL_RO",
    "HELLO",
    "INFO",
    "MULTI",
    "QUIT",
    "READONLY",
    "READWRITE",
    "REPLICAOF",
    "SELECT",
    "SHUTDOWN",
    "SLAVEOF",
    "TIME",
    "UNWATCH",
    "WATCH",
    "CONFIG",
    "CLIENT",
    "MEMBER",
];

const READONLY: &str = "READONLY You can't write against a read only replica.";
const MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

/// Whether a Redis replica with its master link down may refuse the command `name` (in upper
/// case) as stale.
pub fn denied_when_stale(name: &str) -> bool {
    !SERVED_STALE.contains(&name)
}

/// Why this replica, made a Redis replica by `REPLICAOF`, refuses a command that `writes` and
/// is (`stale_denied`) not served stale; `None` if it serves it.
pub fn replica_refusal(
    context: &ClientContext,
    writes: bool,
    stale_denied: bool,
) -> Option<&'static str> {
    context.replica_of.get()?;
    let config = &context.config;
    if writes && config.get("replica-read-only") == "yes" {
        return Some(READONLY);
    }
    let serve_stale = config.get("replica-serve-stale-data") == "yes";
    (stale_denied && !serve_stale).then_some(MASTERDOWN)
}

/// `TIME`, `SAVE`, `SHUTDOWN`, `REPLICAOF` and `SLAVEOF` (`args` from the name on).
pub fn run(conn: &mut Connection<'_>, args: &[Vec<u8>], w: &mut Writer<'_>) {
    match text(&args[0]).as_str() {
        "TIME" => time(w),
        "SAVE" => w.simple("OK"),
        "SHUTDOWN" => shutdown(&args[1..], w),
        _ => replica_of(conn.context, &args[1], &args[2], w),
    }
}

fn time(w: &mut Writer<'_>) {
    let since_epoch = (std::time::SystemTime::now())
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    w.array(2);
    w.bulk(since_epoch.as_secs().to_string().as_bytes());
    w.bulk(since_epoch.subsec_micros().to_string().as_bytes());
}

fn shutdown(options: &[Vec<u8>], w: &mut Writer<'_>) {
    let known = ["NOSAVE", "SAVE", "NOW", "FORCE"];
    let options: Vec<String> = options.iter().map(|o| text(o)).collect();
    if options == ["ABORT"] {
        return w.error("ERR No shutdown in progress.");
    }
    if !options.iter().all(|o| known.contains(&o.as_str())) {
        return w.error("ERR syntax error");
    }
    if options.iter().any(|o| o == "NOSAVE") && options.iter().any(|o| o == "SAVE") {
        return w.error("ERR syntax error");
    }
    eprintln!("SHUTDOWN asked by a client: the replica stops");
    std::process::exit(0);
}

fn replica_of(context: &ClientContext, host: &[u8], port: &[u8], w: &mut Writer<'_>) {
    if text(host) == "NO" && text(port) == "ONE" {
        context.replica_of.set(None);
        return w.simple("OK");
    }
    let port = match parse_i64(port) {
        Some(port @ 0..=65535) => port,
        _ => return w.error(NOT_AN_INTEGER),
    };
    let master = format!("{}:{port}", String::from_utf8_lossy(host));
    if context.replica_of.get().as_deref() == Some(master.as_str()) {
        return w.simple("OK Already connected to specified master");
    }
    context.replica_of.set(Some(master));
    w.simple("OK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_ping_are_refused_stale_and_the_transaction_commands_are_not() {
        for name in ["GET", "PING", "SET", "INCR", "DBSIZE"] {
            assert!(denied_when_stale(name), "{name}");
        }
        for name in ["MULTI", "EXEC", "INFO", "REPLICAOF", "CONFIG", "TIME"] {
            assert!(!denied_when_stale(name), "{name}");
        }
    }
}
