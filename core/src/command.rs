//! Client-visible commands, their replies, and the limits on what a client may send.
//!
//! These types are the contract between a client (RESP in the node, random workloads in the
//! simulator), the replica (which orders writes through the log) and the state machine (which
//! applies them). The checker's key-value model mirrors the semantics documented here.

use serde::{Deserialize, Serialize};

/// Identifies a client session: either one the log opened ([`Command::OpenSession`], its bit
/// [`OPENED_SESSION_BIT`] set) or one the client chose (that bit clear; unique per client
/// process), which the state machine starts on the session's first write.
pub type ClientId = u64;
/// Set in every client id [`Command::OpenSession`] hands out; a client that chooses its own ids
/// keeps it clear (an id with it set that no `OpenSession` handed out is refused). A session of
/// such an id exists from the slot that opened it; once forgotten, every request under it is refused
/// as `StaleRequest`, so a retry can never apply a second time. A client-chosen id, whose session
/// starts implicitly, has no such guarantee for a retry of one of its first
/// [`SESSION_REPLIES_MAX`] writes after the store forgot the session.
pub const OPENED_SESSION_BIT: ClientId = 1 << 62;
/// How many recent seqs a session keeps replies for: the window of requests a client may have in
/// flight (pipelined) at once. A request whose seq is this far or further below the session's
/// highest is answered [`CommandError::StaleRequest`] and never applied.
pub const SESSION_REPLIES_MAX: u64 = 64;
/// Per-session request number. A client numbers its requests 1, 2, 3, … and retries a request
/// with the same number; the replicated state machine applies each number at most once.
pub type Seq = u64;

/// Largest key accepted, in bytes.
pub const KEY_MAX_BYTES: usize = 4 * 1024;
/// Largest value accepted, in bytes.
pub const VALUE_MAX_BYTES: usize = 1024 * 1024;
/// Largest number of entries one LIST-KEYS or LIST-KEYVALUES returns (a `count` above it is clamped).
pub const LIST_COUNT_MAX: u64 = 10_000;
/// Largest request, all keys and values together, in bytes (bounds one log entry's size).
pub const REQUEST_MAX_BYTES: usize = 4 * 1024 * 1024;
/// A database number: `SELECT 0` to `SELECT 15`, as in Redis's default configuration.
pub type Db = u8;
/// How many databases the store has.
pub const DATABASES: Db = 16;
/// Most keys one SCAN call visits (a `count` above it is clamped): the work of one call.
pub const SCAN_COUNT_MAX: u64 = 10_000;
/// Most keys one KEYS call visits; a pattern that would visit more is refused (use SCAN).
pub const KEYS_VISIT_MAX: usize = 100_000;

/// Every command of the store.
///
/// Semantics (the checker's model mirrors these exactly):
/// - `Get`: the value, or `Value(None)` if absent. Linearizable (served by the master under lease).
/// - `DirtyGet`: like `Get` but any replica answers from its own state; possibly stale.
/// - `Set`: stores the value; `Ok`.
/// - `TestAndSet`: if the key exists and its value equals `expected`, store `new` and return
///   `Bool(true)`; otherwise change nothing and return `Bool(false)` (an absent key never matches).
/// - `Add`: parse the value as a decimal `i64` (an absent key counts as 0), add `delta`, store the
///   result in decimal, return `Int(new)`. A non-integer value gives `Error(NotAnInteger)`, an
///   overflow `Error(Overflow)`; neither changes anything.
/// - `Delete`: removes the key; `Bool(existed)`.
/// - `Remove`: removes the key; `Value(old)` (`None` if it was absent).
/// - `Rename`: moves `from`'s value to `to` (overwriting `to`); `Ok`, or `Error(NoSuchKey)` if
///   `from` is absent. Renaming a key to itself is `Ok` and changes nothing.
/// - `Prune`: removes every key that starts with `prefix`; `Int(number removed)`.
/// - `ListKeys` / `ListKeyValues`: keys starting with `prefix`, in byte order, beginning at
///   `start` (inclusive) if given, at most `count` (clamped to [`LIST_COUNT_MAX`]; `None` means
///   the maximum); `Keys` / `KeyValues`.
/// - `Count`: how many keys start with `prefix`; `Int`.
/// - `MultiSet`: stores every pair in one atomic step, in order (a key given twice keeps its
///   last value); `Ok`.
/// - `MultiDelete`: removes every key given, in one atomic step; `Int(how many existed)` (a key
///   given twice counts once).
/// - `MultiGet`: the value of every key given, in order, all read at one point; `Values`.
///   Linearizable, like `Get`.
/// - `InDb`: `command` acting on database `db` (1 to 15) instead of database 0; every other
///   command acts on database 0 (so the log's encoding of database-0 commands is unchanged).
///   `FlushAll`, `SwapDb`, `OpenSession` and `InDb` itself are not per database and are refused
///   inside it.
/// - `FlushDb`: removes every key of the database; `Ok`. `FlushAll`: of every database; `Ok`.
/// - `SwapDb`: exchanges the keys of databases `a` and `b`; `Ok`.
/// - `Move`: moves `key` to database `to`; `Bool(false)` if it is absent here or present there,
///   `Error(SameObject)` if `to` is this database.
/// - `Keys`: every key matching the glob `pattern` (Redis's rules), in byte order;
///   `Error(TooManyKeys)` if that would visit more than [`KEYS_VISIT_MAX`] keys.
/// - `Scan`: visits up to `count` keys (clamped to 1..=[`SCAN_COUNT_MAX`]) in scan order from
///   `cursor` and returns those matching `pattern` and `type_name` with the cursor to continue
///   from (0 when done); a key present for the whole scan is returned at least once.
/// - `RandomKey`: the first key in scan order at or after `seed` (wrapping), or `Value(None)`
///   in an empty database; the caller draws `seed`, so the read is a pure function of it.
/// - `SetIf`: stores the value if `condition` holds (`Always`, `IfAbsent`: the key is absent,
///   `IfPresent`: it is present). With `get`, answers the old value (`Value(None)` if absent)
///   whether it stored or not; without, `Ok` if it stored, `Value(None)` if not (Redis's
///   `SET … NX|XX|GET`).
/// - `Append`: appends to the value (an absent key counts as empty); `Int(new length)`, or
///   `Error(ValueTooLarge)` past [`VALUE_MAX_BYTES`], changing nothing.
/// - `MultiSetIfAbsent`: stores every pair if no key given exists, else nothing; `Bool(stored)`.
/// - `OpenSession`: starts a session for later writes and returns its client id as `Int` (see
///   [`OPENED_SESSION_BIT`]); the request's own `(client_id, seq)` only routes the answer and is
///   not a session's. Touches no key. A retried `OpenSession` may open a second session, which
///   nobody uses and which goes like any idle one.
/// - `Watch`: `Watched { slot, values }`: the slot whose state the read saw and each key's value
///   (`None` if absent). Linearizable, like `Get`.
/// - `Transaction`: if some `watched` key changed in a slot after its `slot` (written, deleted,
///   or present in a database FLUSHDB, FLUSHALL or SWAPDB reset), `Transaction(None)` and
///   nothing changes; else every command in order, in one step, reads answered from the state
///   the earlier commands left: `Transaction(Some(replies))`. A command's error does not stop
///   the others. Refused: more than [`TRANSACTION_COMMANDS_MAX`] commands or
///   [`WATCHED_KEYS_MAX`] watched keys, and a command that cannot run inside one
///   (`OpenSession`, `Member`, `Watch`, `Transaction`): `Error(NotInTransaction)`. A watch the
///   store can no longer judge (older than its window of recent changes) counts as changed.
/// - `RenameIfAbsent`: like `Rename` but only if `to` is absent: `Bool(renamed)` (`false` when
///   `to` exists, or is `from` itself); `Error(NoSuchKey)` if `from` is absent.
/// - `Copy`: stores `from`'s value at `to` in database `to_db` (this one if `None`):
///   `Bool(false)` if `from` is absent or `to` exists and not `replace`, else `Bool(true)`;
///   `Error(SameObject)` if `to` is `from` in the same database.
/// - `SetRange`: writes `value` into the value at byte `offset`, padding with zero bytes (an
///   absent key counts as empty); `Int(new length)`. An empty `value` changes nothing and
///   answers the current length (0, and no key, if absent). Past [`VALUE_MAX_BYTES`]:
///   `Error(StringTooLong)`, changing nothing.
/// - `AddFloat`: parses the value and `delta` with the `strings` module's `parse_float` (absent is 0),
///   stores their sum as `format_float` prints it and answers it as `Value`;
///   `Error(NotAFloat)` or `Error(NanOrInfinity)` change nothing.
/// - `SetBit`: sets the bit at `offset` (bit 0 is the first byte's most significant), padding
///   with zero bytes; `Int(old bit)`. `offset` must be below [`BIT_OFFSET_LIMIT`]
///   (`Error(BitOffsetOutOfRange)`).
/// - `BitOp`: `dest` gets `bit_op` (module `bits`) of the keys' values (absent: empty), or is
///   removed when that is empty; `Int(its length)`. `Not` takes exactly one key
///   (`Error(BitOpNotArity)`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    Get {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    DirtyGet {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    Set {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    TestAndSet {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        expected: Vec<u8>,
        #[serde(with = "serde_bytes")]
        new: Vec<u8>,
    },
    Add {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        delta: i64,
    },
    Delete {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    Remove {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    Rename {
        #[serde(with = "serde_bytes")]
        from: Vec<u8>,
        #[serde(with = "serde_bytes")]
        to: Vec<u8>,
    },
    Prune {
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
    },
    ListKeys {
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
        #[serde(with = "serde_bytes")]
        start: Option<Vec<u8>>,
        count: Option<u64>,
    },
    ListKeyValues {
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
        #[serde(with = "serde_bytes")]
        start: Option<Vec<u8>>,
        count: Option<u64>,
    },
    Count {
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
    },
    MultiSet {
        #[serde(with = "crate::bytes::pairs")]
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    MultiDelete {
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
    },
    MultiGet {
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
    },
    OpenSession,
    // New variants go last: a variant's place is its encoding in the log.
    InDb {
        db: Db,
        command: Box<Command>,
    },
    FlushDb,
    FlushAll,
    SwapDb {
        a: Db,
        b: Db,
    },
    Move {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        to: Db,
    },
    Keys {
        #[serde(with = "serde_bytes")]
        pattern: Vec<u8>,
    },
    Scan {
        cursor: u64,
        #[serde(with = "serde_bytes")]
        pattern: Option<Vec<u8>>,
        count: u64,
        #[serde(with = "serde_bytes")]
        type_name: Option<Vec<u8>>,
    },
    RandomKey {
        seed: u64,
    },
    SetIf {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        condition: SetCondition,
        get: bool,
    },
    Append {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    MultiSetIfAbsent {
        #[serde(with = "crate::bytes::pairs")]
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// A membership change, proposed by the master as a log value of its own (never in a
    /// batch); `Int` with the epoch of the configuration it made, once applied.
    Member(crate::membership::Change),
    // Transactions (MULTI/EXEC/WATCH), see `kv::transaction`.
    /// WATCH's read: `Watched` with the slot the state was read at and each key's value.
    Watch {
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
    },
    /// EXEC: `commands` applied in one step, in order, or none of them if a `watched` key
    /// changed after the slot it was watched at.
    Transaction {
        commands: Vec<Command>,
        watched: Vec<Watched>,
    },
    // Strings and bits (Redis 7.0's string commands).
    /// RENAMENX: `Rename` that only stores if `to` is absent; `Bool(renamed)`.
    RenameIfAbsent {
        #[serde(with = "serde_bytes")]
        from: Vec<u8>,
        #[serde(with = "serde_bytes")]
        to: Vec<u8>,
    },
    /// COPY: `to` (in database `to_db`, this one if `None`) gets `from`'s value.
    Copy {
        #[serde(with = "serde_bytes")]
        from: Vec<u8>,
        #[serde(with = "serde_bytes")]
        to: Vec<u8>,
        to_db: Option<Db>,
        replace: bool,
    },
    /// SETRANGE: writes `value` at byte `offset`, zero-padding up to it.
    SetRange {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        offset: u64,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// INCRBYFLOAT: adds the decimal number `delta` (as the client wrote it).
    AddFloat {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        delta: Vec<u8>,
    },
    /// SETBIT: sets bit `offset` to `bit`.
    SetBit {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        offset: u64,
        bit: bool,
    },
    /// BITOP: stores `op` over `keys` in `dest`.
    BitOp {
        op: BitOp,
        #[serde(with = "serde_bytes")]
        dest: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
    },
    // Expiry (keys with deadlines; time from the log), see `kv::expiry`.
    /// SET with its options: stores `value` if `condition` holds and changes the deadline as
    /// `ttl` says; replies like `SetIf`.
    SetExpiring {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        condition: SetCondition,
        get: bool,
        ttl: TtlChange,
    },
    /// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: `Int(1)` if the deadline was set (a deadline not
    /// after the entry's time removes the key), `Int(0)` if the key is absent or `condition`
    /// does not hold.
    Expire {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        deadline: Deadline,
        condition: ExpireCondition,
        /// The command's name, for Redis's error text on an overflowing time.
        name: ExpireName,
    },
    /// PERSIST: `Int(1)` if the key had a deadline and now has none, else `Int(0)`.
    Persist {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// GETEX: the value (`Value(None)` if absent), changing the deadline as `ttl` says.
    GetEx {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        ttl: TtlChange,
    },
    /// TTL, PTTL, EXPIRETIME, PEXPIRETIME: `Int(-2)` if absent, `Int(-1)` without a deadline,
    /// else the time left or the deadline in `unit`. Linearizable, like `Get`.
    TimeToLive {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        unit: TtlUnit,
    },
    /// A script command (EVAL, FCALL, SCRIPT, FUNCTION), run at apply time: see `kv::scripts`.
    Script(crate::scripting::ScriptCommand),
    // Hashes and sets (Redis 7.0's), see `kv::collections`. A command of one kind on a key
    // holding another answers `Error(WrongType)` and changes nothing.
    /// TYPE and OBJECT: `Described` with what the key holds, or `Value(None)` if absent.
    Describe {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// HSET, HMSET, HSETNX: stores each pair in order (with `if_absent`, only a field not
    /// there yet); `Int(fields added)`.
    HashSet {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "crate::bytes::pairs")]
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        if_absent: bool,
    },
    /// HDEL: `Int(fields removed)`; the key goes with its last field.
    HashDelete {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        fields: Vec<Vec<u8>>,
    },
    /// HINCRBY: like `Add` on one field; `Int(new)`.
    HashAdd {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        field: Vec<u8>,
        delta: i64,
    },
    /// HINCRBYFLOAT: like `AddFloat` on one field; `Value(new)`.
    HashAddFloat {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        field: Vec<u8>,
        #[serde(with = "serde_bytes")]
        delta: Vec<u8>,
    },
    /// HGET, HMGET, HEXISTS, HSTRLEN: `Values`, each field's value or `None`.
    HashGet {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        fields: Vec<Vec<u8>>,
    },
    /// HGETALL, HKEYS, HVALS, HSCAN, HRANDFIELD: `KeyValues`, every pair in field order.
    HashGetAll {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// HLEN, SCARD: `Int(elements)` of a value of `kind` (0 if absent).
    Cardinality {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        kind: crate::types::ValueKind,
    },
    /// SADD: `Int(members added)`.
    SetAdd {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        members: Vec<Vec<u8>>,
    },
    /// SREM: `Int(members removed)`; the key goes with its last member.
    SetRemove {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        members: Vec<Vec<u8>>,
    },
    /// SMOVE: `Bool(moved)` (`true` too when `from` is `to` and holds the member).
    SetMove {
        #[serde(with = "serde_bytes")]
        from: Vec<u8>,
        #[serde(with = "serde_bytes")]
        to: Vec<u8>,
        #[serde(with = "serde_bytes")]
        member: Vec<u8>,
    },
    /// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: `dest` gets `op` of the sets (or goes, if the
    /// result is empty); `Int(its size)`.
    SetStore {
        op: SetOp,
        #[serde(with = "serde_bytes")]
        dest: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
    },
    /// SPOP: removes members chosen by the log position (the same on every replica): one as
    /// `Value` (`None` if absent) without `count`, else up to `count` as `Keys`.
    SetPop {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        count: Option<u64>,
    },
    /// SMEMBERS, SSCAN, SRANDMEMBER: `Keys`, the members as Redis lists them (an `intset`
    /// in numeric order, else in byte order).
    SetMembers {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// SISMEMBER, SMISMEMBER: `Values`, `Some(member)` for each member present.
    SetContains {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        members: Vec<Vec<u8>>,
    },
    /// SINTER, SUNION, SDIFF, SINTERCARD: `Keys`, `op` of the sets in byte order.
    SetCombine {
        op: SetOp,
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
    },
    /// EXISTS: `Int(keys present)`, of any kind, read at one point (a key named twice counts
    /// twice).
    Exists {
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
    },
    // Sorted sets (Redis 7.0's), see `kv::zsets`; scores in replies as `scores::format_score`
    // prints them.
    /// ZADD, ZINCRBY: adds or updates each member as `options` say; `Int(added)` (with CH,
    /// added or changed), or with INCR `Value(new score)` (`None` when a condition failed).
    /// A sum that is NaN is `Error(ScoreNan)` and changes nothing.
    ZsetAdd {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        members: Vec<crate::scores::ScoredMember>,
        options: AddOptions,
    },
    /// ZREM: `Int(members removed)`; the key goes with its last member.
    ZsetRemove {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        members: Vec<Vec<u8>>,
    },
    /// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX: `Int(members removed)`.
    ZsetRemoveRange {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        range: Box<crate::scores::Range>,
    },
    /// ZRANGE and its family, ZCOUNT, ZLEXCOUNT, ZSCAN, ZRANDMEMBER: `KeyValues`, each
    /// selected member with its score, in reply order.
    ZsetRange {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        spec: Box<crate::scores::RangeSpec>,
    },
    /// ZRANGESTORE: `dest` gets what `ZsetRange` selects (or goes, if nothing); `Int(its size)`.
    ZsetRangeStore {
        #[serde(with = "serde_bytes")]
        dest: Vec<u8>,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        spec: Box<crate::scores::RangeSpec>,
    },
    /// ZSCORE, ZMSCORE: `Values`, each member's score or `None`.
    ZsetScores {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        members: Vec<Vec<u8>>,
    },
    /// ZRANK, ZREVRANK: `Int(rank)` (from the highest with `rev`), or `Value(None)`.
    ZsetRank {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        member: Vec<u8>,
        rev: bool,
    },
    /// ZPOPMIN, ZPOPMAX, ZMPOP, BZPOPMIN, BZPOPMAX, BZMPOP: removes up to `count` (1 if
    /// `None`) lowest (highest with `max`) members of the first of `keys` that holds any;
    /// `Popped` with that key, or with none.
    ZsetPop {
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
        max: bool,
        count: Option<u64>,
    },
    /// ZUNION, ZINTER, ZDIFF, ZINTERCARD: `KeyValues`, `op` of the sorted sets (a set's
    /// members score 1) with each set's scores times its weight, combined by `aggregate`, in
    /// (score, member) order.
    ZsetCombine {
        op: SetOp,
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
        weights: Vec<crate::scores::Score>,
        aggregate: crate::scores::Aggregate,
    },
    /// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: `dest` gets what `ZsetCombine` answers (or goes,
    /// if nothing); `Int(its size)`.
    ZsetStore {
        op: SetOp,
        #[serde(with = "serde_bytes")]
        dest: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
        weights: Vec<crate::scores::Score>,
        aggregate: crate::scores::Aggregate,
    },
    // Lists (Redis 7.0's), see `kv::lists`. Indexes count from 0 at the head, negative ones
    // from -1 at the tail.
    /// LPUSH, RPUSH, LPUSHX, RPUSHX: pushes each value in turn at the head (`left`) or the
    /// tail; with `if_exists`, only onto a list already there. `Int(length after)`.
    ListPush {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "crate::bytes::list")]
        values: Vec<Vec<u8>>,
        left: bool,
        if_exists: bool,
    },
    /// LPOP, RPOP, LMPOP and the blocking BLPOP, BRPOP, BLMPOP (which never block here): from
    /// the first of `keys` holding a list, pops up to `count` (one if none) at the head
    /// (`left`) or the tail. `Keys([key, popped…])`, or `Value(None)` if no key holds a list.
    ListPop {
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
        left: bool,
        count: Option<u64>,
    },
    /// LRANGE, LINDEX, LPOS: `Keys`, the elements from `start` to `stop` inclusive.
    ListRange {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        start: i64,
        stop: i64,
    },
    /// LSET: `Ok`; `Error(NoSuchKey)` if absent, `Error(IndexOutOfRange)`.
    ListSet {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        index: i64,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// LINSERT: puts `value` before (or after) the first `pivot`; `Int(length after)`,
    /// `Int(-1)` without a pivot, `Int(0)` if absent.
    ListInsert {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        before: bool,
        #[serde(with = "serde_bytes")]
        pivot: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// LREM: removes up to `|count|` elements equal to `value` (all if 0), from the head if
    /// `count` ≥ 0, else from the tail; `Int(removed)`.
    ListRemove {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        count: i64,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// LTRIM: keeps the elements from `start` to `stop` (the key goes if none); `Ok`.
    ListTrim {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        start: i64,
        stop: i64,
    },
    /// LMOVE, RPOPLPUSH, BLMOVE, BRPOPLPUSH: pops at `from`'s head (`from_left`) or tail and
    /// pushes onto `to`'s; `Value(moved)`, `Value(None)` if `from` is absent.
    ListMove {
        #[serde(with = "serde_bytes")]
        from: Vec<u8>,
        #[serde(with = "serde_bytes")]
        to: Vec<u8>,
        from_left: bool,
        to_left: bool,
    },
    /// SORT, SORT_RO of the list or set at `key` (see `kv::sort`): `Values`, or with
    /// `spec.store` the result stored there as a list and `Int(its length)`.
    Sort {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        spec: Box<SortSpec>,
    },
    /// PUBLISH: through the log, so every replica's replication streams carry it (a Redis
    /// replica attached by `SYNC` delivers it to its subscribers); changes no state and
    /// answers `Int(0)`: keyspace's replicas have no subscribers of their own (no SUBSCRIBE).
    Publish {
        #[serde(with = "serde_bytes")]
        channel: Vec<u8>,
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
}

/// SORT's options, as Redis 7.0 reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SortSpec {
    /// BY: the pattern whose `*` each element replaces to name the key (or `key->field`) to
    /// sort by; one without `*` sorts nothing.
    #[serde(with = "serde_bytes")]
    pub by: Option<Vec<u8>>,
    /// LIMIT offset count.
    pub limit: Option<(i64, i64)>,
    /// GET: the patterns to answer for each element (`#`: the element).
    #[serde(with = "crate::bytes::list")]
    pub get: Vec<Vec<u8>>,
    pub desc: bool,
    pub alpha: bool,
    #[serde(with = "serde_bytes")]
    pub store: Option<Vec<u8>>,
}

/// How SINTER, SUNION and SDIFF combine sets (an absent key is an empty set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SetOp {
    Inter,
    Union,
    Diff,
}

/// A deadline as a command gives it, in milliseconds: relative to the time of the log entry
/// that applies it (`In`), or a Unix time (`At`). The entry's time is the same on every
/// replica, so the absolute deadline is too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Deadline {
    In { ms: i64 },
    At { ms: i64 },
}

/// What a write does to its key's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TtlChange {
    /// Keeps it (SET … KEEPTTL, GETEX without options).
    Keep,
    /// Removes it (a plain SET, GETEX PERSIST).
    Clear,
    /// Sets it.
    Set(Deadline),
}

/// EXPIRE's NX, XX, GT and LT (a key without a deadline counts as an infinite one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpireCondition {
    Always,
    NoDeadline,
    HasDeadline,
    Later,
    Earlier,
    /// LT with XX: the key has a deadline, and the new one is earlier.
    EarlierWithDeadline,
}

/// Which of EXPIRE's family a command is (its name is in Redis's error text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpireName {
    Expire,
    PExpire,
    ExpireAt,
    PExpireAt,
    Set,
    GetEx,
}

impl ExpireName {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpireName::Expire => "expire",
            ExpireName::PExpire => "pexpire",
            ExpireName::ExpireAt => "expireat",
            ExpireName::PExpireAt => "pexpireat",
            ExpireName::Set => "set",
            ExpireName::GetEx => "getex",
        }
    }
}

/// What a `TimeToLive` answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TtlUnit {
    /// TTL: seconds left, rounded to nearest.
    Seconds,
    /// PTTL: milliseconds left.
    Millis,
    /// EXPIRETIME: the deadline in Unix seconds.
    UnixSeconds,
    /// PEXPIRETIME: the deadline in Unix milliseconds.
    UnixMillis,
}

/// BITOP's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Highest bit offset + 1 that SETBIT and GETBIT accept: a value holds at most
/// [`VALUE_MAX_BYTES`] bytes (the store's `proto-max-bulk-len`).
pub const BIT_OFFSET_LIMIT: u64 = VALUE_MAX_BYTES as u64 * 8;

/// A key a transaction watched: its database, the slot WATCH read the state at, and whether it
/// existed then.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Watched {
    pub db: Db,
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    pub slot: crate::types::Slot,
    pub existed: bool,
}

/// Most commands one transaction may hold.
pub const TRANSACTION_COMMANDS_MAX: usize = 10_000;
/// Most keys one transaction may watch.
pub const WATCHED_KEYS_MAX: usize = 10_000;

/// When a `SetIf` stores its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SetCondition {
    Always,
    IfAbsent,
    IfPresent,
}

/// ZADD's options: NX and XX (`condition`), GT and LT (`compare`), CH (`changed`), INCR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddOptions {
    pub condition: SetCondition,
    pub compare: Option<crate::scores::Compare>,
    pub changed: bool,
    pub increment: bool,
}

/// How a command is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Ordered through the replicated log.
    Write,
    /// Served from the master's memory while it holds the lease and is up to date.
    LinearizableRead,
    /// Served by any replica from its own state.
    DirtyRead,
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Get { .. }
            | Command::MultiGet { .. }
            | Command::ListKeys { .. }
            | Command::ListKeyValues { .. }
            | Command::Count { .. }
            | Command::Keys { .. }
            | Command::Scan { .. }
            | Command::RandomKey { .. }
            | Command::Watch { .. }
            | Command::TimeToLive { .. }
            | Command::Describe { .. }
            | Command::HashGet { .. }
            | Command::HashGetAll { .. }
            | Command::Cardinality { .. }
            | Command::SetMembers { .. }
            | Command::SetContains { .. }
            | Command::SetCombine { .. }
            | Command::Exists { .. }
            | Command::ZsetRange { .. }
            | Command::ZsetScores { .. }
            | Command::ZsetRank { .. }
            | Command::ZsetCombine { .. }
            | Command::ListRange { .. } => CommandKind::LinearizableRead,
            Command::Sort { spec, .. } if spec.store.is_none() => CommandKind::LinearizableRead,
            Command::DirtyGet { .. } => CommandKind::DirtyRead,
            Command::InDb { command, .. } => command.kind(),
            _ => CommandKind::Write,
        }
    }

    /// `self` acting on database `db`: itself for database 0 or a command that is not per
    /// database (those act the same from any database), else wrapped in [`Command::InDb`].
    pub fn in_db(self, db: Db) -> Command {
        if db == 0 || !self.is_per_database() {
            return self;
        }
        Command::InDb {
            db,
            command: Box::new(self),
        }
    }

    /// The database the command acts on and the command itself, unwrapped.
    pub fn db_and_command(&self) -> (Db, &Command) {
        match self {
            Command::InDb { db, command } => (*db, command),
            other => (0, other),
        }
    }

    fn is_per_database(&self) -> bool {
        !matches!(
            self,
            Command::FlushAll
                | Command::SwapDb { .. }
                | Command::OpenSession
                | Command::InDb { .. }
                | Command::Transaction { .. }
        )
    }

    /// Checks the database numbers a command names.
    fn validate_databases(&self) -> Result<(), CommandError> {
        let in_range = |db: Db| match db < DATABASES {
            true => Ok(()),
            false => Err(CommandError::DbOutOfRange),
        };
        match self {
            Command::InDb { db, command } if *db == 0 || !command.is_per_database() => {
                Err(CommandError::NotPerDatabase)
            }
            Command::InDb { db, command } => in_range(*db).and(command.validate_databases()),
            Command::SwapDb { a, b } => in_range(*a).and(in_range(*b)),
            Command::Move { to, .. } => in_range(*to),
            Command::Copy { to_db, .. } => to_db.map_or(Ok(()), in_range),
            Command::Transaction { commands, watched } => validate_transaction(commands, watched)
                .and_then(|()| watched.iter().try_for_each(|w| in_range(w.db))),
            _ => Ok(()),
        }
    }

    pub fn is_write(&self) -> bool {
        self.kind() == CommandKind::Write
    }

    /// Checks the size limits; the replica refuses a command that fails this before ordering it.
    pub fn validate(&self) -> Result<(), CommandError> {
        self.validate_databases()?;
        for key in self.keys() {
            if key.len() > KEY_MAX_BYTES {
                return Err(CommandError::KeyTooLarge { len: key.len() });
            }
        }
        for value in self.values() {
            if value.len() > VALUE_MAX_BYTES {
                return Err(CommandError::ValueTooLarge { len: value.len() });
            }
        }
        let len = self.payload_bytes();
        if len > REQUEST_MAX_BYTES {
            return Err(CommandError::RequestTooLarge { len });
        }
        self.validate_string_arguments()
    }

    /// Checks the offsets and arities of the string and bit commands.
    fn validate_string_arguments(&self) -> Result<(), CommandError> {
        match self.db_and_command().1 {
            Command::SetRange { offset, value, .. } if !value.is_empty() => {
                let end = offset.checked_add(value.len() as u64);
                match end.is_some_and(|end| end <= VALUE_MAX_BYTES as u64) {
                    true => Ok(()),
                    false => Err(CommandError::StringTooLong),
                }
            }
            Command::SetBit { offset, .. } if *offset >= BIT_OFFSET_LIMIT => {
                Err(CommandError::BitOffsetOutOfRange)
            }
            Command::BitOp {
                op: BitOp::Not,
                keys,
                ..
            } if keys.len() != 1 => Err(CommandError::BitOpNotArity),
            _ => Ok(()),
        }
    }

    /// Bytes of keys and values the command carries (its share of a log entry, roughly).
    pub fn payload_bytes(&self) -> usize {
        let keys: usize = self.keys().iter().map(|k| k.len()).sum();
        let values: usize = self.values().iter().map(|v| v.len()).sum();
        keys + values
    }

    /// Keys and prefixes the command names (for size checks and partitioning).
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Command::Get { key }
            | Command::DirtyGet { key }
            | Command::Set { key, .. }
            | Command::TestAndSet { key, .. }
            | Command::Add { key, .. }
            | Command::Delete { key }
            | Command::Remove { key }
            | Command::Move { key, .. }
            | Command::SetIf { key, .. }
            | Command::Append { key, .. }
            | Command::SetRange { key, .. }
            | Command::AddFloat { key, .. }
            | Command::SetBit { key, .. }
            | Command::SetExpiring { key, .. }
            | Command::Expire { key, .. }
            | Command::Persist { key }
            | Command::GetEx { key, .. }
            | Command::TimeToLive { key, .. }
            | Command::Describe { key }
            | Command::HashSet { key, .. }
            | Command::HashDelete { key, .. }
            | Command::HashAdd { key, .. }
            | Command::HashAddFloat { key, .. }
            | Command::HashGet { key, .. }
            | Command::HashGetAll { key }
            | Command::Cardinality { key, .. }
            | Command::SetAdd { key, .. }
            | Command::SetRemove { key, .. }
            | Command::SetPop { key, .. }
            | Command::SetMembers { key }
            | Command::SetContains { key, .. }
            | Command::ZsetAdd { key, .. }
            | Command::ZsetRemove { key, .. }
            | Command::ZsetRemoveRange { key, .. }
            | Command::ZsetRange { key, .. }
            | Command::ZsetScores { key, .. }
            | Command::ZsetRank { key, .. }
            | Command::ListPush { key, .. }
            | Command::ListRange { key, .. }
            | Command::ListSet { key, .. }
            | Command::ListInsert { key, .. }
            | Command::ListRemove { key, .. }
            | Command::ListTrim { key, .. } => vec![key],
            Command::ZsetRangeStore { dest, key, .. } => vec![dest, key],
            Command::ZsetPop { keys, .. } | Command::ZsetCombine { keys, .. } => {
                keys.iter().map(Vec::as_slice).collect()
            }
            Command::ZsetStore { dest, keys, .. } => std::iter::once(dest)
                .chain(keys)
                .map(Vec::as_slice)
                .collect(),
            Command::Sort { key, spec } => std::iter::once(key)
                .chain(&spec.store)
                .map(Vec::as_slice)
                .collect(),
            Command::SetMove { from, to, .. } | Command::ListMove { from, to, .. } => {
                vec![from, to]
            }
            Command::SetCombine { keys, .. }
            | Command::Exists { keys }
            | Command::ListPop { keys, .. } => keys.iter().map(Vec::as_slice).collect(),
            Command::SetStore { dest, keys, .. } => std::iter::once(dest)
                .chain(keys)
                .map(Vec::as_slice)
                .collect(),
            Command::Rename { from, to }
            | Command::RenameIfAbsent { from, to }
            | Command::Copy { from, to, .. } => vec![from, to],
            Command::BitOp { dest, keys, .. } => std::iter::once(dest)
                .chain(keys)
                .map(Vec::as_slice)
                .collect(),
            Command::MultiSet { pairs } | Command::MultiSetIfAbsent { pairs } => {
                pairs.iter().map(|(k, _)| k.as_slice()).collect()
            }
            Command::MultiDelete { keys } | Command::MultiGet { keys } => {
                keys.iter().map(Vec::as_slice).collect()
            }
            Command::Prune { prefix } | Command::Count { prefix } => vec![prefix],
            Command::Keys { pattern } => vec![pattern],
            Command::Watch { keys } => keys.iter().map(Vec::as_slice).collect(),
            Command::Transaction { commands, watched } => commands
                .iter()
                .flat_map(Command::keys)
                .chain(watched.iter().map(|w| w.key.as_slice()))
                .collect(),
            Command::Scan { pattern, .. } => pattern.iter().map(Vec::as_slice).collect(),
            Command::InDb { command, .. } => command.keys(),
            Command::Script(script) => script.keys(),
            Command::OpenSession
            | Command::Member(_)
            | Command::Publish { .. }
            | Command::FlushDb
            | Command::FlushAll
            | Command::SwapDb { .. }
            | Command::RandomKey { .. } => vec![],
            Command::ListKeys { prefix, start, .. }
            | Command::ListKeyValues { prefix, start, .. } => {
                let mut keys: Vec<&[u8]> = vec![prefix];
                if let Some(start) = start {
                    keys.push(start);
                }
                keys
            }
        }
    }

    fn values(&self) -> Vec<&[u8]> {
        match self {
            Command::Script(script) => script.values(),
            Command::Set { value, .. } => vec![value],
            Command::Publish { channel, message } => vec![channel, message],
            Command::TestAndSet { expected, new, .. } => vec![expected, new],
            Command::MultiSet { pairs } | Command::MultiSetIfAbsent { pairs } => {
                pairs.iter().map(|(_, v)| v.as_slice()).collect()
            }
            Command::SetIf { value, .. }
            | Command::Append { value, .. }
            | Command::SetRange { value, .. }
            | Command::AddFloat { delta: value, .. }
            | Command::SetExpiring { value, .. } => vec![value],
            Command::InDb { command, .. } => command.values(),
            // Fields and members are bounded like values.
            Command::HashSet { pairs, .. } => pairs
                .iter()
                .flat_map(|(f, v)| [f, v])
                .map(Vec::as_slice)
                .collect(),
            Command::HashDelete { fields, .. } | Command::HashGet { fields, .. } => {
                fields.iter().map(Vec::as_slice).collect()
            }
            Command::HashAdd { field, .. } => vec![field],
            Command::HashAddFloat { field, delta, .. } => vec![field, delta],
            Command::SetAdd { members, .. }
            | Command::SetRemove { members, .. }
            | Command::SetContains { members, .. } => members.iter().map(Vec::as_slice).collect(),
            Command::SetMove { member, .. } | Command::ZsetRank { member, .. } => vec![member],
            Command::ZsetAdd { members, .. } => {
                members.iter().map(|m| m.member.as_slice()).collect()
            }
            Command::ZsetRemove { members, .. } | Command::ZsetScores { members, .. } => {
                members.iter().map(Vec::as_slice).collect()
            }
            Command::ListPush { values, .. } => values.iter().map(Vec::as_slice).collect(),
            Command::ListSet { value, .. } | Command::ListRemove { value, .. } => vec![value],
            Command::ListInsert { pivot, value, .. } => vec![pivot, value],
            Command::Sort { spec, .. } => (spec.by.iter().chain(&spec.get))
                .map(Vec::as_slice)
                .collect(),
            Command::Transaction { commands, .. } => {
                commands.iter().flat_map(Command::values).collect()
            }
            _ => vec![],
        }
    }
}

impl Command {
    /// The keys this command reads or writes as strings: one of them holding another kind of
    /// value makes it `Error(WrongType)` (SET, MSET and friends that only overwrite are not
    /// among them; neither are the commands of any kind, such as DEL or RENAME).
    pub fn string_keys(&self) -> Vec<&[u8]> {
        match self {
            Command::Get { key }
            | Command::DirtyGet { key }
            | Command::Add { key, .. }
            | Command::Append { key, .. }
            | Command::SetRange { key, .. }
            | Command::AddFloat { key, .. }
            | Command::SetBit { key, .. }
            | Command::GetEx { key, .. }
            | Command::Remove { key }
            | Command::TestAndSet { key, .. }
            | Command::SetIf { key, get: true, .. }
            | Command::SetExpiring { key, get: true, .. } => vec![key],
            Command::BitOp { keys, .. } => keys.iter().map(Vec::as_slice).collect(),
            _ => vec![],
        }
    }
}

/// The result of applying or serving a command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reply {
    Ok,
    Value(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    Bool(bool),
    Int(i64),
    Keys(#[serde(with = "crate::bytes::list")] Vec<Vec<u8>>),
    KeyValues(#[serde(with = "crate::bytes::pairs")] Vec<(Vec<u8>, Vec<u8>)>),
    Error(CommandError),
    /// One value (or none) per key of a `MultiGet`, in its order.
    Values(Vec<Option<Vec<u8>>>),
    /// A `Scan`'s next cursor (0: done) and the keys it found.
    Scan {
        cursor: u64,
        #[serde(with = "crate::bytes::list")]
        keys: Vec<Vec<u8>>,
    },
    // Transactions (MULTI/EXEC/WATCH).
    /// A `Watch`: the slot read at and each key's value.
    Watched {
        slot: crate::types::Slot,
        values: Vec<Option<Vec<u8>>>,
    },
    /// A `Transaction`: each command's reply, or `None` when a watched key changed.
    Transaction(Option<Vec<Reply>>),
    /// A script command's reply, as the client sees it.
    Resp(crate::redis::Resp),
    /// A `Describe`: the kind of value, its encoding as OBJECT ENCODING names it, its
    /// reference count as OBJECT REFCOUNT shows it, and the bytes of its contents (a string's
    /// length; the sum of a hash's fields and values or a set's members).
    Described {
        kind: crate::types::ValueKind,
        encoding: String,
        refcount: i64,
        bytes: u64,
    },
    /// A `ZsetPop`: the key it popped from (`None`: every key was empty) and each member
    /// with its score.
    Popped {
        #[serde(with = "serde_bytes")]
        key: Option<Vec<u8>>,
        #[serde(with = "crate::bytes::pairs")]
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
}

/// Checks a transaction's shape: its size, and that each command may run inside one.
fn validate_transaction(commands: &[Command], watched: &[Watched]) -> Result<(), CommandError> {
    let nested = commands.iter().any(|c| {
        matches!(
            c.db_and_command().1,
            Command::OpenSession
                | Command::Member(_)
                | Command::Watch { .. }
                | Command::Transaction { .. }
                | Command::InDb { .. }
        )
    });
    if nested || commands.len() > TRANSACTION_COMMANDS_MAX || watched.len() > WATCHED_KEYS_MAX {
        return Err(CommandError::NotInTransaction);
    }
    Ok(())
}

/// A command the state machine refused; it changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    #[error("key is {len} bytes; the limit is {KEY_MAX_BYTES}")]
    KeyTooLarge { len: usize },
    #[error("value is {len} bytes; the limit is {VALUE_MAX_BYTES}")]
    ValueTooLarge { len: usize },
    #[error("request carries {len} bytes of keys and values; the limit is {REQUEST_MAX_BYTES}")]
    RequestTooLarge { len: usize },
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    #[error("increment or decrement would overflow")]
    Overflow,
    #[error("no such key")]
    NoSuchKey,
    /// The session already applied a newer request; this one is a stale duplicate whose reply
    /// was no longer kept.
    #[error("request {seq} is older than the session's latest; its reply is gone")]
    StaleRequest { seq: Seq },
    // New variants go last: replies are kept in sessions, encoded by variant place.
    #[error("DB index is out of range")]
    DbOutOfRange,
    #[error("source and destination objects are the same")]
    SameObject,
    #[error("this command acts on every database and cannot be given one")]
    NotPerDatabase,
    #[error("KEYS would visit more than {limit} keys; use SCAN, which works in steps")]
    TooManyKeys { limit: usize },
    /// The master refused a membership change (it changed nothing).
    #[error("membership change refused: {0}")]
    MemberChange(crate::membership::ChangeError),
    // Transactions (MULTI/EXEC/WATCH).
    #[error(
        "a transaction holds at most {TRANSACTION_COMMANDS_MAX} commands and watches at most \
         {WATCHED_KEYS_MAX} keys, and none of them a session, membership, WATCH or MULTI command"
    )]
    NotInTransaction,
    // Strings and bits: Redis's own messages.
    #[error("value is not a valid float")]
    NotAFloat,
    #[error("increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("bit offset is not an integer or out of range")]
    BitOffsetOutOfRange,
    #[error("BITOP NOT must be called with a single source key.")]
    BitOpNotArity,
    // Expiry.
    /// A deadline that overflows when made absolute (Redis's text names the command).
    #[error("invalid expire time in '{}' command", .0.as_str())]
    InvalidExpireTime(ExpireName),
    // Hashes and sets.
    #[error("Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("hash value is not an integer")]
    HashNotAnInteger,
    #[error("hash value is not a float")]
    HashNotAFloat,
    // Sorted sets.
    #[error("resulting score is not a number (NaN)")]
    ScoreNan,
    // Lists.
    #[error("index out of range")]
    IndexOutOfRange,
    /// SORT's refusal, in Redis's words.
    #[error("{0}")]
    Sort(String),
}

/// A request from a client session.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientRequest {
    pub client_id: ClientId,
    pub seq: Seq,
    pub command: Command,
}

/// What a replica says back to a client for one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientResponse {
    pub client_id: ClientId,
    pub seq: Seq,
    pub outcome: Outcome,
}

/// The fate of a request, as far as the answering replica knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Applied (writes) or served (reads); this is the reply.
    Done(Reply),
    /// Certainly not applied: the replica never put it in the log. Safe to send elsewhere.
    Rejected(Rejection),
    /// Put in the log but the replica lost mastership before learning its fate: it may or may
    /// not be applied. Retry with the same `seq`; the session makes the retry apply at most once.
    Indeterminate,
}

/// Why a replica refused a request without ordering it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// This replica is not the master (or not yet ready to serve); try `master_hint` if given.
    NotMaster { master_hint: Option<crate::NodeId> },
    /// The master's queue of waiting requests is full; retry later.
    Busy,
    /// The command broke a size limit, or the master refused a membership change.
    Invalid(CommandError),
}
