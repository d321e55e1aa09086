//! Specification tests of hashes and sets, from the client's words to the client's reply:
//! parsed as the node parses them, applied or read by the state machine, shown as Redis
//! 7.0.15 answers (each expected reply checked against redis-server 7.0.15 by hand).

use super::tests::{replies, request};
use super::*;
use crate::redis::{lookup, parse_store, show_replies, Resp};

pub(super) struct Client {
    pub(super) machine: StateMachine,
    slot: Slot,
}

pub(super) const WRONG_TYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";

pub(super) fn bulk(text: &str) -> Resp {
    Resp::Bulk(Some(text.as_bytes().to_vec()))
}

pub(super) fn bulks(texts: &[&str]) -> Resp {
    Resp::Array(Some(texts.iter().map(|t| bulk(t)).collect()))
}

pub(super) fn error(text: &str) -> Resp {
    Resp::Error(text.into())
}

impl Client {
    pub(super) fn new() -> Self {
        Client {
            machine: StateMachine::new(StateMachineConfig::default()),
            slot: 0,
        }
    }

    /// The reply to `line` (words split at spaces), as a client reads it.
    pub(super) fn run(&mut self, line: &str) -> Resp {
        let args: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        let spec = match lookup(&args) {
            Ok(spec) => spec,
            Err(e) => return Resp::Error(e),
        };
        let call = match parse_store(spec.name, &args) {
            Ok(call) => call,
            Err(e) => return Resp::Error(e),
        };
        let answers: Vec<Reply> = call.commands.into_iter().map(|c| self.submit(c)).collect();
        self.machine.assert_invariants();
        show_replies(&answers, call.shape)
    }

    fn submit(&mut self, command: Command) -> Reply {
        if !command.is_write() {
            return self.machine.read(&command);
        }
        self.slot += 1;
        let batch = [request(1, self.slot, command)];
        replies(self.machine.apply_batch(self.slot, &batch)).remove(0)
    }

    /// Replaces the state with its encoding decoded, checking the two are the same.
    pub(super) fn restored(&mut self) {
        let encoded = self.machine.encode();
        self.machine.verify_encoding(&encoded).expect("verifies");
        let decoded = StateMachine::decode(&encoded).expect("decodes");
        decoded.assert_invariants();
        assert_eq!(decoded.state_hash(), self.machine.state_hash());
        assert_eq!(decoded, self.machine);
        self.machine = decoded;
    }
}

#[test]
fn hset_counts_new_fields_and_hget_hmget_hgetall_answer_in_field_order() {
    let mut c = Client::new();
    assert_eq!(c.run("HSET h b 2 a 1"), Resp::Int(2));
    assert_eq!(c.run("HSET h a 10 c 3"), Resp::Int(1));
    assert_eq!(c.run("HGET h a"), bulk("10"));
    assert_eq!(c.run("HGET h zz"), Resp::Bulk(None));
    assert_eq!(c.run("HGET nokey a"), Resp::Bulk(None));
    assert_eq!(
        c.run("HMGET h a zz c"),
        Resp::Array(Some(vec![bulk("10"), Resp::Bulk(None), bulk("3")]))
    );
    assert_eq!(c.run("HGETALL h"), bulks(&["a", "10", "b", "2", "c", "3"]));
    assert_eq!(c.run("HKEYS h"), bulks(&["a", "b", "c"]));
    assert_eq!(c.run("HVALS h"), bulks(&["10", "2", "3"]));
    assert_eq!(c.run("HLEN h"), Resp::Int(3));
    assert_eq!(c.run("HLEN nokey"), Resp::Int(0));
    assert_eq!(c.run("HEXISTS h a"), Resp::Int(1));
    assert_eq!(c.run("HEXISTS h z"), Resp::Int(0));
    assert_eq!(c.run("HSTRLEN h a"), Resp::Int(2));
    assert_eq!(c.run("HSTRLEN h z"), Resp::Int(0));
    assert_eq!(c.run("HMSET h d 4"), Resp::Simple("OK".into()));
    assert_eq!(c.run("HSETNX h d 5"), Resp::Int(0));
    assert_eq!(c.run("HSETNX h e 5"), Resp::Int(1));
    assert_eq!(c.run("HGET h d"), bulk("4"));
    assert_eq!(
        c.run("HSET h a"),
        error("ERR wrong number of arguments for 'hset' command")
    );
    c.restored();
    assert_eq!(c.run("HLEN h"), Resp::Int(5));
}

#[test]
fn hdel_removes_fields_and_the_key_with_its_last() {
    let mut c = Client::new();
    c.run("HSET h a 1 b 2");
    assert_eq!(c.run("HDEL h a zz a"), Resp::Int(1));
    assert_eq!(c.run("EXISTS h"), Resp::Int(1));
    assert_eq!(c.run("HDEL h b"), Resp::Int(1));
    assert_eq!(c.run("EXISTS h"), Resp::Int(0));
    assert_eq!(c.run("HDEL h b"), Resp::Int(0));
    assert_eq!(c.run("DBSIZE"), Resp::Int(0));
}

#[test]
fn hincrby_and_hincrbyfloat_follow_redis_errors() {
    let mut c = Client::new();
    assert_eq!(c.run("HINCRBY h n 5"), Resp::Int(5));
    assert_eq!(c.run("HINCRBY h n -7"), Resp::Int(-2));
    c.run("HSET h s abc f 1.5 big 9223372036854775807");
    assert_eq!(
        c.run("HINCRBY h s 1"),
        error("ERR hash value is not an integer")
    );
    assert_eq!(
        c.run("HINCRBY h f 1"),
        error("ERR hash value is not an integer")
    );
    assert_eq!(
        c.run("HINCRBY h big 1"),
        error("ERR increment or decrement would overflow")
    );
    assert_eq!(
        c.run("HINCRBY h n x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(c.run("HINCRBYFLOAT h f 1"), bulk("2.5"));
    assert_eq!(c.run("HINCRBYFLOAT h new 0.25"), bulk("0.25"));
    assert_eq!(
        c.run("HINCRBYFLOAT h s 1"),
        error("ERR hash value is not a float")
    );
    assert_eq!(
        c.run("HINCRBYFLOAT h f x"),
        error("ERR value is not a valid float")
    );
    let nan_or_infinity = error("ERR value is NaN or Infinity");
    assert_eq!(c.run("HINCRBYFLOAT h s +inf"), nan_or_infinity);
    assert_eq!(c.run("HINCRBYFLOAT nokey f -inf"), nan_or_infinity);
    assert_eq!(c.run("EXISTS nokey"), Resp::Int(0));
}

#[test]
fn every_command_on_the_wrong_kind_of_value_is_wrongtype_and_changes_nothing() {
    let mut c = Client::new();
    c.run("SET str v");
    c.run("HSET h f v");
    c.run("SADD s m");
    let before = c.machine.data.entries_hash();
    for line in [
        "GET h",
        "APPEND s x",
        "INCR h",
        "STRLEN s",
        "GETDEL h",
        "SET h x GET",
        "SETRANGE s 0 x",
        "GETRANGE h 0 1",
        "HGET str f",
        "HSET s f v",
        "HGETALL s",
        "HLEN str",
        "HINCRBY s f 1",
        "HDEL str f",
        "SADD h m",
        "SMEMBERS str",
        "SISMEMBER h m",
        "SCARD h",
        "SREM str m",
        "SINTER s h",
        "SUNIONSTORE d s str",
        "SMOVE s h m",
        "SMOVE h s m",
        "SPOP str",
    ] {
        assert_eq!(c.run(line), error(WRONG_TYPE), "{line}");
    }
    assert_eq!(c.machine.data.entries_hash(), before, "nothing changed");
    assert_eq!(
        c.run("MGET str h s"),
        Resp::Array(Some(vec![bulk("v"), Resp::Bulk(None), Resp::Bulk(None)]))
    );
    assert_eq!(c.run("EXISTS str h s nokey"), Resp::Int(3));
    assert_eq!(c.run("SETNX h x"), Resp::Int(0));
    assert_eq!(c.run("SET h x"), Resp::Simple("OK".into()));
    assert_eq!(c.run("TYPE h"), Resp::Simple("string".into()));
}

#[test]
fn type_and_object_encoding_follow_redis_7_0_rules_and_never_convert_back() {
    let mut c = Client::new();
    c.run("SET str v");
    c.run("HSET h f v");
    c.run("SADD ints 1 2 3");
    c.run("SADD words a");
    assert_eq!(c.run("TYPE str"), Resp::Simple("string".into()));
    assert_eq!(c.run("TYPE h"), Resp::Simple("hash".into()));
    assert_eq!(c.run("TYPE ints"), Resp::Simple("set".into()));
    assert_eq!(c.run("TYPE nokey"), Resp::Simple("none".into()));
    assert_eq!(c.run("OBJECT ENCODING h"), bulk("listpack"));
    assert_eq!(c.run("OBJECT ENCODING ints"), bulk("intset"));
    assert_eq!(c.run("OBJECT ENCODING words"), bulk("hashtable"));
    assert_eq!(c.run("OBJECT ENCODING str"), bulk("embstr"));
    let long = "x".repeat(HASH_LISTPACK_VALUE_MAX_BYTES + 1);
    c.run(&format!("HSET h g {long}"));
    assert_eq!(c.run("OBJECT ENCODING h"), bulk("hashtable"));
    c.run("HDEL h g");
    assert_eq!(c.run("OBJECT ENCODING h"), bulk("hashtable"));
    c.run("SADD ints x");
    c.run("SREM ints x");
    assert_eq!(c.run("OBJECT ENCODING ints"), bulk("hashtable"));
    c.restored();
    assert_eq!(c.run("OBJECT ENCODING ints"), bulk("hashtable"));
    assert_eq!(c.run("OBJECT ENCODING h"), bulk("hashtable"));
}

#[test]
fn sets_add_remove_and_list_intsets_in_numeric_order() {
    let mut c = Client::new();
    assert_eq!(c.run("SADD s 10 2 -3 2"), Resp::Int(3));
    assert_eq!(c.run("SMEMBERS s"), bulks(&["-3", "2", "10"]));
    assert_eq!(c.run("SCARD s"), Resp::Int(3));
    assert_eq!(c.run("SISMEMBER s 2"), Resp::Int(1));
    assert_eq!(c.run("SISMEMBER s 7"), Resp::Int(0));
    assert_eq!(
        c.run("SMISMEMBER s 7 2"),
        Resp::Array(Some(vec![Resp::Int(0), Resp::Int(1)]))
    );
    assert_eq!(c.run("SREM s 2 7"), Resp::Int(1));
    assert_eq!(c.run("SADD w b a"), Resp::Int(2));
    assert_eq!(c.run("SMEMBERS w"), bulks(&["a", "b"]));
    assert_eq!(c.run("SMEMBERS nokey"), bulks(&[]));
    assert_eq!(c.run("SCARD nokey"), Resp::Int(0));
}

#[test]
fn set_algebra_and_its_store_forms() {
    let mut c = Client::new();
    c.run("SADD a 1 2 3 x");
    c.run("SADD b 2 3 4");
    assert_eq!(c.run("SINTER a b"), bulks(&["2", "3"]));
    assert_eq!(c.run("SINTER a b nokey"), bulks(&[]));
    assert_eq!(c.run("SUNION a b nokey"), bulks(&["1", "2", "3", "4", "x"]));
    assert_eq!(c.run("SDIFF a b"), bulks(&["1", "x"]));
    assert_eq!(c.run("SINTERCARD 2 a b"), Resp::Int(2));
    assert_eq!(c.run("SINTERCARD 2 a b LIMIT 1"), Resp::Int(1));
    assert_eq!(
        c.run("SINTERCARD 0 a"),
        error("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        c.run("SINTERCARD 3 a b"),
        error("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        c.run("SINTERCARD 2 a b LIMIT -1"),
        error("ERR LIMIT can't be negative")
    );
    c.run("SET d str");
    assert_eq!(c.run("SINTERSTORE d a b"), Resp::Int(2));
    assert_eq!(c.run("TYPE d"), Resp::Simple("set".into()));
    assert_eq!(c.run("OBJECT ENCODING d"), bulk("intset"));
    assert_eq!(c.run("SDIFFSTORE d a a"), Resp::Int(0));
    assert_eq!(c.run("EXISTS d"), Resp::Int(0));
    assert_eq!(c.run("SUNIONSTORE d a b"), Resp::Int(5));
    assert_eq!(c.run("SMOVE a b x"), Resp::Int(1));
    assert_eq!(c.run("SMOVE a b x"), Resp::Int(0));
    assert_eq!(c.run("SISMEMBER b x"), Resp::Int(1));
    assert_eq!(c.run("SMOVE b b x"), Resp::Int(1));
    assert_eq!(c.run("SMOVE b c x"), Resp::Int(1));
    assert_eq!(c.run("SMEMBERS c"), bulks(&["x"]));
}

#[test]
fn spop_takes_the_same_members_on_every_replica_and_srandmember_is_deterministic() {
    let mut first = Client::new();
    let mut second = Client::new();
    for c in [&mut first, &mut second] {
        c.run("SADD s a b c d e f g");
    }
    let popped = first.run("SPOP s 3");
    assert_eq!(second.run("SPOP s 3"), popped);
    assert_eq!(first.machine.state_hash(), second.machine.state_hash());
    let Resp::Array(Some(items)) = &popped else {
        panic!("SPOP with a count answers an array: {popped:?}");
    };
    assert_eq!(items.len(), 3);
    assert_eq!(first.run("SCARD s"), Resp::Int(4));
    assert_eq!(first.run("SPOP s 10").clone(), second.run("SPOP s 10"));
    assert_eq!(first.run("EXISTS s"), Resp::Int(0));
    assert_eq!(first.run("SPOP s"), Resp::Bulk(None));
    assert_eq!(first.run("SPOP s 1"), bulks(&[]));
    assert_eq!(
        first.run("SPOP s -1"),
        error("ERR value is out of range, must be positive")
    );
    first.run("SADD r 1 2 3");
    assert_eq!(first.run("SRANDMEMBER r"), bulk("1"));
    assert_eq!(first.run("SRANDMEMBER r 2"), bulks(&["1", "2"]));
    assert_eq!(first.run("SRANDMEMBER r 5"), bulks(&["1", "2", "3"]));
    let Resp::Array(Some(drawn)) = first.run("SRANDMEMBER r -40") else {
        panic!("SRANDMEMBER with a count answers an array");
    };
    assert_eq!(drawn.len(), 40);
    for member in ["1", "2", "3"] {
        assert!(drawn.contains(&bulk(member)), "{member} is drawn among 40");
    }
    assert_eq!(
        first.run("SRANDMEMBER r -40"),
        Resp::Array(Some(drawn)),
        "a script's draw is fixed"
    );
    assert_eq!(first.run("SRANDMEMBER nokey"), Resp::Bulk(None));
    assert_eq!(first.run("SRANDMEMBER nokey -3"), bulks(&[]));
}

#[test]
fn sscan_and_hscan_answer_every_matching_element_in_one_step() {
    let mut c = Client::new();
    c.run("SADD s a1 a2 b1");
    c.run("HSET h a1 x b1 y");
    let scanned = |members: Resp| Resp::Array(Some(vec![bulk("0"), members]));
    assert_eq!(c.run("SSCAN s 0 MATCH a*"), scanned(bulks(&["a1", "a2"])));
    assert_eq!(
        c.run("HSCAN h 0 COUNT 100"),
        scanned(bulks(&["a1", "x", "b1", "y"]))
    );
    assert_eq!(c.run("SSCAN nokey 0"), scanned(bulks(&[])));
    assert_eq!(c.run("SSCAN s x"), error("ERR invalid cursor"));
    assert_eq!(c.run("HSCAN s 0"), error(WRONG_TYPE));
    assert_eq!(c.run("HRANDFIELD h 1 WITHVALUES"), bulks(&["a1", "x"]));
}

#[test]
fn keys_of_every_kind_move_copy_rename_expire_and_scan_by_type() {
    let mut c = Client::new();
    c.run("HSET h f v");
    c.run("SADD s m");
    c.run("SET str v");
    assert_eq!(c.run("RENAME h h2"), Resp::Simple("OK".into()));
    assert_eq!(c.run("HGET h2 f"), bulk("v"));
    assert_eq!(c.run("COPY s s2"), Resp::Int(1));
    assert_eq!(c.run("SMEMBERS s2"), bulks(&["m"]));
    assert_eq!(c.run("MOVE s2 1"), Resp::Int(1));
    assert_eq!(c.run("EXPIRE h2 100"), Resp::Int(1));
    assert_eq!(c.run("TTL h2"), Resp::Int(100));
    assert_eq!(c.run("PERSIST h2"), Resp::Int(1));
    assert_eq!(c.run("KEYS *"), bulks(&["h2", "s", "str"]));
    assert_eq!(c.run("DBSIZE"), Resp::Int(3));
    let scan = |keys: &[&str]| Resp::Array(Some(vec![bulk("0"), bulks(keys)]));
    assert_eq!(c.run("SCAN 0 TYPE set COUNT 100"), scan(&["s"]));
    assert_eq!(c.run("SCAN 0 TYPE hash COUNT 100"), scan(&["h2"]));
    c.restored();
    assert_eq!(c.run("DEL h2 s str"), Resp::Int(3));
    assert_eq!(c.run("FLUSHALL"), Resp::Simple("OK".into()));
    assert_eq!(c.machine.len(), 0);
}
