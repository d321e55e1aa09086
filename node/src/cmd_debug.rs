//! `DEBUG`, `OBJECT` and `MEMORY`: the subcommands that mean something for keyspace, the rest
//! refused with the reason. keyspace keeps its data in the replicated log, so nothing here can
//! restart or corrupt a replica; like Redis with `enable-debug-command local`, DEBUG is
//! answered on loopback connections only.
//!
//! `DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]`: Redis saves its dataset (keys and function
//! libraries) to its RDB file, empties itself and loads the file back. keyspace persists every
//! write before acknowledging it, so what a save would write, and what the last save holds
//! (NOSAVE), is the state as it is, and loading it gives that same state back: RELOAD answers
//! OK and keeps the state. Without the flush (NOFLUSH) the file lands on the very data it holds:
//! as Redis, keyspace refuses that with "Error trying to load the RDB dump" unless MERGE is
//! given or the dataset (keys of every database, function libraries) is empty.

use std::time::Duration;

use keyspace_core::redis::{arity_error, Resp};
use keyspace_core::scripting::{function_dump, ScriptCommand};
use keyspace_core::{Command, Reply};

use crate::action::ServerCommand;
use crate::connection::{Connection, Failure};
use crate::resp::Writer;

/// Longest `DEBUG SLEEP`.
const DEBUG_SLEEP_MAX: Duration = Duration::from_secs(3600);
/// Bytes a key takes besides its name and value in Redis's accounting (dict entry, object
/// headers): what `MEMORY USAGE` adds to them.
const KEY_OVERHEAD_BYTES: usize = 48;

/// Redis's answer while `enable-debug-command` does not allow the connection.
pub const DEBUG_REFUSED: &str = "ERR DEBUG command not allowed. If the enable-debug-command \
    option is set to \"local\", you can run it from a local connection, otherwise you need to \
    set this option in the configuration file, and then restart the server.";

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_uppercase()
}

fn unknown_subcommand(sub: &[u8], command: &str) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {command} HELP.",
        String::from_utf8_lossy(sub)
    )
}

/// `kind …` (`args` from the command's name on); a store read that got no answer is returned.
pub async fn run(
    kind: ServerCommand,
    args: &[Vec<u8>],
    conn: &mut Connection<'_>,
    w: &mut Writer<'_>,
) -> Result<(), Failure> {
    match kind {
        ServerCommand::Debug => debug(args, conn, w).await,
        ServerCommand::Memory => memory(args, conn, w).await,
        ServerCommand::Client | ServerCommand::Config | ServerCommand::Admin => {
            unreachable!("not a DEBUG command")
        }
    }
}

async fn debug(
    args: &[Vec<u8>],
    conn: &mut Connection<'_>,
    w: &mut Writer<'_>,
) -> Result<(), Failure> {
    let local = (conn.entry.as_ref()).is_none_or(|e| e.addr.ip().is_loopback());
    if !local {
        w.error(DEBUG_REFUSED);
        return Ok(());
    }
    let sub = upper(&args[1]);
    match (sub.as_str(), args.len()) {
        ("SLEEP", 3) => match sleep_time(&args[2]) {
            Some(time) => {
                tokio::time::sleep(time).await;
                w.simple("OK");
            }
            None => w.error("ERR value is not a valid float"),
        },
        ("SET-ACTIVE-EXPIRE", 3) | ("CHANGE-REPL-ID", 2) => w.simple("OK"),
        ("SET-DISABLE-DENY-SCRIPTS", 3) => {
            let on = keyspace_core::redis::parse_i64(&args[2]).is_some_and(|n| n != 0);
            let flag = &conn.context.scripts_may_debug;
            flag.store(on, std::sync::atomic::Ordering::Relaxed);
            w.simple("OK");
        }
        ("LOG", 3) => {
            tracing::info!(message = %String::from_utf8_lossy(&args[2]), "DEBUG LOG");
            w.simple("OK");
        }
        ("OBJECT", 3) => match describe(conn, &args[2]).await? {
            Some((encoding, bytes)) => w.simple(&format!(
                "Value at:0x0 refcount:1 encoding:{encoding} serializedlength:{bytes} lru:0 lru_seconds_idle:0"
            )),
            None => w.error("ERR no such key"),
        },
        ("RELOAD", _) => reload(&args[2..], conn, w).await?,
        ("LOADAOF" | "RESTART" | "CRASH-AND-RECOVER" | "DIGEST" | "DIGEST-VALUE", _) => {
            w.error(&format!(
                "ERR DEBUG {sub} is not supported: keyspace keeps its data in the replicated \
                 log and does not reload, restart or digest it on command"
            ))
        }
        ("PROTOCOL", 3) => protocol(&upper(&args[2]), w),
        ("HELP", 2) => w.help(DEBUG_HELP),
        _ => w.error(&unknown_subcommand(&args[1], "DEBUG")),
    }
    Ok(())
}

/// `DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]` (see the module's documentation).
async fn reload(
    options: &[Vec<u8>],
    conn: &mut Connection<'_>,
    w: &mut Writer<'_>,
) -> Result<(), Failure> {
    let (mut merge, mut flush) = (false, true);
    for option in options {
        match upper(option).as_str() {
            "MERGE" => merge = true,
            "NOFLUSH" => flush = false,
            "NOSAVE" => {}
            _ => {
                w.error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
                return Ok(());
            }
        }
    }
    if flush || merge {
        w.simple("OK");
        return Ok(());
    }
    let Some(status) = conn.status().await else {
        w.error("TRYAGAIN the replica is shutting down");
        return Ok(());
    };
    let keys: usize = status.keys_per_db.iter().sum();
    let libraries = match conn
        .submit(Command::Script(ScriptCommand::FunctionDump))
        .await?
    {
        Reply::Resp(Resp::Bulk(Some(payload))) => function_dump::decode(&payload)
            .expect("FUNCTION DUMP gives a good payload")
            .len(),
        Reply::Resp(Resp::Error(error)) => {
            w.error(&error);
            return Ok(());
        }
        other => panic!("FUNCTION DUMP answered {other:?}"),
    };
    match keys + libraries {
        0 => w.simple("OK"),
        _ => w.error("ERR Error trying to load the RDB dump"),
    }
    Ok(())
}

/// `DEBUG PROTOCOL type`: a sample reply of each RESP3 type, as Redis 7.0 writes them (and
/// their RESP2 forms before `HELLO 3`).
fn protocol(name: &str, w: &mut Writer<'_>) {
    match name {
        "STRING" => w.bulk(b"Hello World"),
        "INTEGER" => w.int(12345),
        "DOUBLE" => w.resp3(b',', "3.141", Some((b'$', "3.141"))),
        "BIGNUM" => {
            let big = "1234567999999999999999999999999999999";
            w.resp3(b'(', big, Some((b'$', big)))
        }
        "NULL" => w.null(),
        "ARRAY" | "SET" => {
            match name {
                "SET" => w.resp3(b'~', "3", Some((b'*', "3"))),
                _ => w.array(3),
            }
            (0..3).for_each(|j| w.int(j));
        }
        "MAP" => {
            w.map(3);
            for j in 0..3 {
                w.int(j);
                let bit = if j == 1 { "1" } else { "0" };
                w.resp3(b'#', if j == 1 { "t" } else { "f" }, Some((b':', bit)));
            }
        }
        "ATTRIB" => {
            w.resp3(b'|', "1", None);
            if w.resp3 {
                w.bulk(b"key-popularity");
                w.array(2);
                w.bulk(b"key:123");
                w.int(90);
            }
            w.bulk(b"Some real reply following the attribute");
        }
        "PUSH" => {
            w.resp3(b'>', "2", Some((b'*', "2")));
            w.bulk(b"server-cpu-usage");
            w.int(42);
            w.bulk(b"Some real reply following the push reply");
        }
        "TRUE" => w.resp3(b'#', "t", Some((b':', "1"))),
        "FALSE" => w.resp3(b'#', "f", Some((b':', "0"))),
        "VERBATIM" => w.text("This is a verbatim\nstring"),
        _ => w.error(
            "ERR Wrong protocol type name. Please use one of the following: \
             string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ),
    }
}

/// `DEBUG SLEEP seconds` (a float; 0 yields at once).
fn sleep_time(arg: &[u8]) -> Option<Duration> {
    let seconds: f64 = std::str::from_utf8(arg).ok()?.parse().ok()?;
    (seconds.is_finite()).then(|| Duration::from_secs_f64(seconds.max(0.0)).min(DEBUG_SLEEP_MAX))
}

/// A key's encoding and the bytes of its contents, of any kind, through the store as OBJECT
/// of this connection reads it (`None` if absent).
async fn describe(conn: &mut Connection<'_>, key: &[u8]) -> Result<Option<(String, u64)>, Failure> {
    match conn.submit(Command::Describe { key: key.to_vec() }).await? {
        Reply::Described {
            encoding, bytes, ..
        } => Ok(Some((encoding, bytes))),
        Reply::Value(None) => Ok(None),
        other => panic!("Describe answered {other:?}"),
    }
}

async fn memory(
    args: &[Vec<u8>],
    conn: &mut Connection<'_>,
    w: &mut Writer<'_>,
) -> Result<(), Failure> {
    let sub = upper(&args[1]);
    match (sub.as_str(), args.len()) {
        ("USAGE", 3 | 5) => {
            let samples = args.len() == 5;
            if samples && !args[3].eq_ignore_ascii_case(b"SAMPLES") {
                w.error("ERR syntax error");
                return Ok(());
            }
            match describe(conn, &args[2]).await? {
                Some((_, bytes)) => w.int((args[2].len() as u64 + bytes) as i64 + KEY_OVERHEAD_BYTES as i64),
                None => w.null(),
            }
        }
        ("DOCTOR", 2) => w.bulk(b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base."),
        ("MALLOC-STATS", 2) => w.bulk(b"Stats not supported for the current allocator"),
        ("PURGE", 2) => w.simple("OK"),
        ("HELP", 2) => w.help(MEMORY_HELP),
        ("USAGE" | "DOCTOR" | "MALLOC-STATS" | "PURGE" | "HELP", _) => {
            w.error(&arity_error(&format!("memory|{sub}")))
        }
        _ => w.error(&unknown_subcommand(&args[1], "MEMORY")),
    }
    Ok(())
}

const DEBUG_HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANGE-REPL-ID",
    "    Accepted; keyspace has no replication id to change.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about the <key> and associated value.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save and reload the dataset: it is kept as it is (every write is persisted before",
    "    it is acknowledged). Options: MERGE, NOFLUSH (refused over existing data without",
    "    MERGE, as loading would collide), NOSAVE.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Accepted; keys do not expire in keyspace.",
    "SET-DISABLE-DENY-SCRIPTS <0|1>",
    "    Allow scripts taken here to call DEBUG SLEEP (answered at once).",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "HELP",
    "    Print this help.",
];

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value.",
    "HELP",
    "    Print this help.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_encodings_follow_redis_rules() {
        assert_eq!(keyspace_core::redis::shape::encoding(b"12345"), "int");
        assert_eq!(keyspace_core::redis::shape::encoding(b"-7"), "int");
        assert_eq!(keyspace_core::redis::shape::encoding(b"007"), "embstr");
        assert_eq!(keyspace_core::redis::shape::encoding(b"hello"), "embstr");
        assert_eq!(keyspace_core::redis::shape::encoding(&[b'x'; 44]), "embstr");
        assert_eq!(keyspace_core::redis::shape::encoding(&[b'x'; 45]), "raw");
    }

    #[test]
    fn debug_sleep_takes_seconds_as_a_float_within_its_bound() {
        assert_eq!(sleep_time(b"0"), Some(Duration::ZERO));
        assert_eq!(sleep_time(b"0.5"), Some(Duration::from_millis(500)));
        assert_eq!(sleep_time(b"1e9"), Some(DEBUG_SLEEP_MAX));
        assert_eq!(sleep_time(b"x"), None);
    }
}
