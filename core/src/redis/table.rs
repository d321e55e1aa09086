//! Every Redis command keyspace answers, with its arity and who parses it: one table, so that
//! `COMMAND COUNT`, unknown-command and wrong-arity errors agree everywhere.

use crate::redis::args::{arity_error, text};

/// Who turns a command's arguments into what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Store commands: [`crate::redis::parse_store`] parses them, here and in scripts.
    Store,
    /// Commands of the connection, the server or the membership: the node's own.
    Local,
}

/// One command: its name in upper case, its arity (exactly `n` arguments, name included, or
/// at least `-n`), and who parses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub name: &'static str,
    pub arity: i32,
    pub kind: Kind,
}

const fn row(name: &'static str, arity: i32, kind: Kind) -> Spec {
    Spec { name, arity, kind }
}

use Kind::{Local, Store};

/// Every command, once. `COMMAND COUNT` counts this table.
pub const COMMANDS: [Spec; 187] = [
    row("GET", 2, Store),
    row("DIRTYGET", 2, Store),
    row("INCR", 2, Store),
    row("DECR", 2, Store),
    row("GETDEL", 2, Store),
    row("PRUNE", 2, Store),
    row("COUNT", 2, Store),
    row("ECHO", 2, Local),
    row("TYPE", 2, Store),
    row("TTL", 2, Store),
    row("PTTL", 2, Store),
    row("INCRBY", 3, Store),
    row("DECRBY", 3, Store),
    row("RENAME", 3, Store),
    row("SET", -3, Store),
    row("MSET", -3, Store),
    row("TESTANDSET", 4, Store),
    row("DEL", -2, Store),
    row("EXISTS", -2, Store),
    row("MGET", -2, Store),
    row("AUTH", -2, Local),
    row("SELECT", -2, Local),
    row("CLIENT", -2, Local),
    row("CONFIG", -2, Local),
    row("LISTKEYS", -2, Store),
    row("LISTKEYVALUES", -2, Store),
    row("MEMBER", -2, Local),
    row("DBSIZE", 1, Store),
    row("QUIT", 1, Local),
    row("READONLY", 1, Local),
    row("READWRITE", 1, Local),
    row("MULTI", 1, Local),
    row("EXEC", 1, Local),
    row("DISCARD", 1, Local),
    row("WATCH", -2, Local),
    row("UNWATCH", 1, Local),
    row("PING", -1, Local),
    row("INFO", -1, Local),
    row("HELLO", -1, Local),
    row("COMMAND", -1, Local),
    row("FLUSHDB", -1, Store),
    row("FLUSHALL", -1, Store),
    row("SWAPDB", 3, Store),
    row("MOVE", 3, Store),
    row("KEYS", 2, Store),
    row("SCAN", -2, Store),
    // The seed of its draw is the caller's (drawn when the command runs).
    row("RANDOMKEY", 1, Local),
    row("FUNCTION", -2, Store),
    row("DEBUG", -2, Local),
    // The connection becomes a replication stream (the node's `sync`).
    row("SYNC", 1, Local),
    row("PSYNC", -3, Local),
    row("MEMORY", -2, Local),
    row("SETNX", 3, Store),
    row("GETSET", 3, Store),
    row("MSETNX", -3, Store),
    row("APPEND", 3, Store),
    row("STRLEN", 2, Store),
    row("GETRANGE", 4, Store),
    row("SUBSTR", 4, Store),
    row("UNLINK", -2, Store),
    row("TOUCH", -2, Store),
    row("SETRANGE", 4, Store),
    row("INCRBYFLOAT", 3, Store),
    row("SETBIT", 4, Store),
    row("GETBIT", 3, Store),
    row("BITCOUNT", -2, Store),
    row("BITPOS", -3, Store),
    row("BITOP", -4, Store),
    row("LCS", -3, Store),
    row("RENAMENX", 3, Store),
    row("COPY", -3, Store),
    row("OBJECT", -2, Store),
    row("SETEX", 4, Store),
    row("PSETEX", 4, Store),
    row("GETEX", -2, Store),
    row("EXPIRE", -3, Store),
    row("PEXPIRE", -3, Store),
    row("EXPIREAT", -3, Store),
    row("PEXPIREAT", -3, Store),
    row("PERSIST", 2, Store),
    row("PUBLISH", 3, Store),
    row("EXPIRETIME", 2, Store),
    row("PEXPIRETIME", 2, Store),
    // Scripts (crate::scripting): the text travels in the log and runs at apply time.
    row("EVAL", -3, Store),
    row("EVALSHA", -3, Store),
    row("EVAL_RO", -3, Store),
    row("EVALSHA_RO", -3, Store),
    row("FCALL", -3, Store),
    row("FCALL_RO", -3, Store),
    row("SCRIPT", -2, Store),
    // Hashes and sets (crate::redis::collections).
    row("HSET", -4, Store),
    row("HSETNX", 4, Store),
    row("HMSET", -4, Store),
    row("HGET", 3, Store),
    row("HMGET", -3, Store),
    row("HGETALL", 2, Store),
    row("HDEL", -3, Store),
    row("HLEN", 2, Store),
    row("HEXISTS", 3, Store),
    row("HKEYS", 2, Store),
    row("HVALS", 2, Store),
    row("HSTRLEN", 3, Store),
    row("HINCRBY", 4, Store),
    row("HINCRBYFLOAT", 4, Store),
    row("HSCAN", -3, Store),
    row("HRANDFIELD", -2, Store),
    row("SADD", -3, Store),
    row("SREM", -3, Store),
    row("SMEMBERS", 2, Store),
    row("SISMEMBER", 3, Store),
    row("SMISMEMBER", -3, Store),
    row("SCARD", 2, Store),
    row("SMOVE", 4, Store),
    row("SINTER", -2, Store),
    row("SINTERCARD", -3, Store),
    row("SUNION", -2, Store),
    row("SDIFF", -2, Store),
    row("SINTERSTORE", -3, Store),
    row("SUNIONSTORE", -3, Store),
    row("SDIFFSTORE", -3, Store),
    row("SSCAN", -3, Store),
    row("SRANDMEMBER", -2, Store),
    row("SPOP", -2, Store),
    // Sorted sets (crate::redis::zsets).
    row("ZADD", -4, Store),
    row("ZINCRBY", 4, Store),
    row("ZCARD", 2, Store),
    row("ZSCORE", 3, Store),
    row("ZMSCORE", -3, Store),
    row("ZRANK", 3, Store),
    row("ZREVRANK", 3, Store),
    row("ZREM", -3, Store),
    row("ZCOUNT", 4, Store),
    row("ZLEXCOUNT", 4, Store),
    row("ZRANGE", -4, Store),
    row("ZRANGEBYSCORE", -4, Store),
    row("ZREVRANGEBYSCORE", -4, Store),
    row("ZRANGEBYLEX", -4, Store),
    row("ZREVRANGEBYLEX", -4, Store),
    row("ZREVRANGE", -4, Store),
    row("ZRANGESTORE", -5, Store),
    row("ZREMRANGEBYRANK", 4, Store),
    row("ZREMRANGEBYSCORE", 4, Store),
    row("ZREMRANGEBYLEX", 4, Store),
    row("ZPOPMIN", -2, Store),
    row("ZPOPMAX", -2, Store),
    row("ZRANDMEMBER", -2, Store),
    row("ZSCAN", -3, Store),
    row("ZUNIONSTORE", -4, Store),
    row("ZINTERSTORE", -4, Store),
    row("ZDIFFSTORE", -4, Store),
    row("ZUNION", -3, Store),
    row("ZINTER", -3, Store),
    row("ZDIFF", -3, Store),
    row("ZINTERCARD", -3, Store),
    row("ZMPOP", -4, Store),
    row("BZPOPMIN", -3, Store),
    row("BZPOPMAX", -3, Store),
    row("BZMPOP", -5, Store),
    // Lists (crate::redis::lists).
    row("LPUSH", -3, Store),
    row("RPUSH", -3, Store),
    row("LPUSHX", -3, Store),
    row("RPUSHX", -3, Store),
    row("LPOP", -2, Store),
    row("RPOP", -2, Store),
    row("LLEN", 2, Store),
    row("LRANGE", 4, Store),
    row("LINDEX", 3, Store),
    row("LSET", 4, Store),
    row("LINSERT", 5, Store),
    row("LREM", 4, Store),
    row("LTRIM", 4, Store),
    row("RPOPLPUSH", 3, Store),
    row("LMOVE", 5, Store),
    row("LPOS", -3, Store),
    row("LMPOP", -4, Store),
    row("BLPOP", -3, Store),
    row("BRPOP", -3, Store),
    row("BRPOPLPUSH", 4, Store),
    row("BLMOVE", 6, Store),
    row("BLMPOP", -5, Store),
    row("SORT", -2, Store),
    row("SORT_RO", -2, Store),
    // The server's own (node's cmd_admin).
    row("TIME", 1, Local),
    row("SAVE", 1, Local),
    row("SHUTDOWN", -1, Local),
    row("REPLICAOF", 3, Local),
    row("SLAVEOF", 3, Local),
];

/// The table's row of `name` (in upper case).
pub fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|spec| spec.name == name)
}

/// Whether `args` (name first) has an acceptable count for `arity`: exactly `n`, or at least `-n`.
pub fn arity_ok(args: &[Vec<u8>], arity: i32) -> bool {
    assert!(arity != 0, "every command counts its name");
    let len = args.len() as i32;
    if arity >= 0 {
        len == arity
    } else {
        len >= -arity
    }
}

/// The row of the command `args` names (name first), or Redis's error for an unknown command
/// or a wrong number of arguments.
pub fn lookup(args: &[Vec<u8>]) -> Result<&'static Spec, String> {
    assert!(!args.is_empty(), "a command has a name");
    let Some(spec) = spec(&text(&args[0])) else {
        let first: Vec<String> = args[1..]
            .iter()
            .take(3)
            .map(|a| format!("'{}'", String::from_utf8_lossy(a)))
            .collect();
        return Err(format!(
            "ERR unknown command '{}', with args beginning with: {}",
            String::from_utf8_lossy(&args[0]),
            first.join(" ")
        ));
    };
    match arity_ok(args, spec.arity) {
        true => {
            assert!(
                args.len() >= spec.arity.unsigned_abs() as usize,
                "arity holds"
            );
            Ok(spec)
        }
        false => Err(arity_error(spec.name)),
    }
}
