//! Specification tests of lists, from the client's words to the client's reply: parsed as the
//! node parses them, applied or read by the state machine, shown as Redis 7.0.15 answers (each
//! expected reply checked against redis-server 7.0.15 by hand).

use super::collections_tests::{bulk, bulks, error, Client, WRONG_TYPE};
use crate::redis::Resp;

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn int(n: i64) -> Resp {
    Resp::Int(n)
}

fn ints(ns: &[i64]) -> Resp {
    Resp::Array(Some(ns.iter().map(|n| Resp::Int(*n)).collect()))
}

#[test]
fn pushes_at_either_end_answer_the_length_and_lrange_reads_head_first() {
    let mut c = Client::new();
    assert_eq!(c.run("RPUSH l b c"), int(2));
    assert_eq!(c.run("LPUSH l a z"), int(4));
    assert_eq!(c.run("LRANGE l 0 -1"), bulks(&["z", "a", "b", "c"]));
    assert_eq!(c.run("LRANGE l -2 100"), bulks(&["b", "c"]));
    assert_eq!(c.run("LRANGE l 3 1"), bulks(&[]));
    assert_eq!(c.run("LRANGE nokey 0 -1"), bulks(&[]));
    assert_eq!(c.run("LLEN l"), int(4));
    assert_eq!(c.run("LLEN nokey"), int(0));
    assert_eq!(c.run("LPUSHX nokey a"), int(0));
    assert_eq!(c.run("RPUSHX l d"), int(5));
    assert_eq!(c.run("EXISTS nokey"), int(0));
    assert_eq!(c.run("TYPE l"), Resp::Simple("list".into()));
    assert_eq!(c.run("OBJECT ENCODING l"), bulk("quicklist"));
    assert_eq!(
        c.run("LRANGE l 0 x"),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.run("LPUSH l"),
        error("ERR wrong number of arguments for 'lpush' command")
    );
}

#[test]
fn pops_with_and_without_count_and_the_key_goes_with_its_last_element() {
    let mut c = Client::new();
    c.run("RPUSH l a b c d");
    assert_eq!(c.run("LPOP l"), bulk("a"));
    assert_eq!(c.run("RPOP l"), bulk("d"));
    assert_eq!(c.run("LPOP l 0"), bulks(&[]));
    assert_eq!(c.run("RPOP l 5"), bulks(&["c", "b"]));
    assert_eq!(c.run("EXISTS l"), int(0));
    assert_eq!(c.run("LPOP l"), Resp::Bulk(None));
    assert_eq!(c.run("LPOP l 2"), Resp::Array(None));
    assert_eq!(
        c.run("LPOP l -1"),
        error("ERR value is out of range, must be positive")
    );
    assert_eq!(
        c.run("LPOP l 1 2"),
        error("ERR wrong number of arguments for 'lpop' command")
    );
}

#[test]
fn lindex_lset_linsert_lrem_and_ltrim_follow_redis_indexes_and_errors() {
    let mut c = Client::new();
    c.run("RPUSH l a b a c a");
    assert_eq!(c.run("LINDEX l -1"), bulk("a"));
    assert_eq!(c.run("LINDEX l 1"), bulk("b"));
    assert_eq!(c.run("LINDEX l 5"), Resp::Bulk(None));
    assert_eq!(c.run("LINDEX l -6"), Resp::Bulk(None));
    assert_eq!(c.run("LSET l -2 C"), ok());
    assert_eq!(c.run("LSET l 5 x"), error("ERR index out of range"));
    assert_eq!(c.run("LSET nokey 0 x"), error("ERR no such key"));
    assert_eq!(c.run("LINSERT l BEFORE b x"), int(6));
    assert_eq!(c.run("LINSERT l AFTER a y"), int(7));
    assert_eq!(c.run("LINSERT l AFTER zz y"), int(-1));
    assert_eq!(c.run("LINSERT nokey AFTER a y"), int(0));
    assert_eq!(c.run("LINSERT l middle a y"), error("ERR syntax error"));
    assert_eq!(
        c.run("LRANGE l 0 -1"),
        bulks(&["a", "y", "x", "b", "a", "C", "a"])
    );
    assert_eq!(c.run("LREM l -2 a"), int(2));
    assert_eq!(c.run("LRANGE l 0 -1"), bulks(&["a", "y", "x", "b", "C"]));
    assert_eq!(c.run("LREM l 0 zz"), int(0));
    assert_eq!(c.run("LTRIM l 1 -2"), ok());
    assert_eq!(c.run("LRANGE l 0 -1"), bulks(&["y", "x", "b"]));
    c.restored();
    assert_eq!(c.run("LTRIM l 5 10"), ok());
    assert_eq!(c.run("EXISTS l"), int(0));
}

#[test]
fn lmove_and_rpoplpush_move_between_lists_and_rotate_one_in_place() {
    let mut c = Client::new();
    c.run("RPUSH a 1 2 3");
    assert_eq!(c.run("RPOPLPUSH a a"), bulk("3"));
    assert_eq!(c.run("LRANGE a 0 -1"), bulks(&["3", "1", "2"]));
    assert_eq!(c.run("LMOVE a b LEFT RIGHT"), bulk("3"));
    assert_eq!(c.run("LMOVE a b left left"), bulk("1"));
    assert_eq!(c.run("LRANGE b 0 -1"), bulks(&["1", "3"]));
    assert_eq!(c.run("LMOVE nokey b LEFT LEFT"), Resp::Bulk(None));
    c.run("SET s v");
    assert_eq!(c.run("LMOVE a s LEFT LEFT"), error(WRONG_TYPE));
    assert_eq!(c.run("LMOVE s a LEFT LEFT"), error(WRONG_TYPE));
    assert_eq!(c.run("LMOVE nokey s LEFT LEFT"), Resp::Bulk(None));
    assert_eq!(c.run("LMOVE a b up LEFT"), error("ERR syntax error"));
    assert_eq!(c.run("EXPIRE b 100"), int(1));
    assert_eq!(c.run("LMOVE b b LEFT RIGHT"), bulk("1"));
    assert_eq!(c.run("TTL b"), int(100));
}

#[test]
fn lpos_ranks_counts_and_maxlen_as_redis() {
    let mut c = Client::new();
    c.run("RPUSH l a b c a b c a");
    assert_eq!(c.run("LPOS l a"), int(0));
    assert_eq!(c.run("LPOS l a RANK 2"), int(3));
    assert_eq!(c.run("LPOS l a RANK -1"), int(6));
    assert_eq!(c.run("LPOS l a COUNT 0"), ints(&[0, 3, 6]));
    assert_eq!(c.run("LPOS l a COUNT 2 RANK -1"), ints(&[6, 3]));
    assert_eq!(c.run("LPOS l a COUNT 0 MAXLEN 4"), ints(&[0, 3]));
    assert_eq!(c.run("LPOS l z"), Resp::Bulk(None));
    assert_eq!(c.run("LPOS l z COUNT 0"), ints(&[]));
    assert_eq!(c.run("LPOS l a RANK -9223372036854775808"), int(6));
    assert_eq!(
        c.run("LPOS l a RANK 0"),
        error(
            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
             or use negative to start from the end of the list"
        )
    );
    assert_eq!(
        c.run("LPOS l a COUNT -1"),
        error("ERR COUNT can't be negative")
    );
    assert_eq!(
        c.run("LPOS l a MAXLEN x"),
        error("ERR MAXLEN can't be negative")
    );
    assert_eq!(c.run("LPOS l a RANK"), error("ERR syntax error"));
}

#[test]
fn lmpop_and_the_blocking_pops_take_from_the_first_key_holding_a_list() {
    let mut c = Client::new();
    c.run("RPUSH b 1 2 3");
    let key_and = |key: &str, items: Resp| Resp::Array(Some(vec![bulk(key), items]));
    assert_eq!(
        c.run("LMPOP 2 a b RIGHT COUNT 2"),
        key_and("b", bulks(&["3", "2"]))
    );
    assert_eq!(c.run("BLPOP a b 0"), bulks(&["b", "1"]));
    assert_eq!(c.run("BRPOP a b 1"), Resp::Array(None));
    assert_eq!(c.run("LMPOP 1 a LEFT"), Resp::Array(None));
    c.run("RPUSH b 1");
    assert_eq!(c.run("BLMPOP 0 1 b LEFT"), key_and("b", bulks(&["1"])));
    assert_eq!(
        c.run("LMPOP 0 a LEFT"),
        error("ERR numkeys should be greater than 0")
    );
    assert_eq!(c.run("LMPOP 3 a b LEFT"), error("ERR syntax error"));
    assert_eq!(
        c.run("LMPOP 1 a LEFT COUNT 0"),
        error("ERR count should be greater than 0")
    );
    assert_eq!(c.run("BLPOP a -1"), error("ERR timeout is negative"));
    assert_eq!(
        c.run("BLPOP a x"),
        error("ERR timeout is not a float or out of range")
    );
    c.run("SET s v");
    assert_eq!(c.run("BLPOP s 0"), error(WRONG_TYPE));
}

#[test]
fn every_list_command_on_another_kind_is_wrongtype_and_others_on_a_list_too() {
    let mut c = Client::new();
    c.run("SET s v");
    c.run("RPUSH l a");
    for line in [
        "LPUSH s a",
        "RPUSHX s a",
        "LPOP s",
        "LLEN s",
        "LRANGE s 0 -1",
        "LINDEX s 0",
        "LSET s 0 a",
        "LINSERT s BEFORE a b",
        "LREM s 0 a",
        "LTRIM s 0 1",
        "LPOS s a",
        "GET l",
        "INCR l",
        "HGET l f",
        "SADD l m",
        "APPEND l x",
    ] {
        assert_eq!(c.run(line), error(WRONG_TYPE), "{line}");
    }
    assert_eq!(c.run("LRANGE l 0 -1"), bulks(&["a"]));
    assert_eq!(c.run("GET s"), bulk("v"));
}

#[test]
fn lists_copy_rename_move_expire_scan_by_type_and_survive_a_snapshot() {
    let mut c = Client::new();
    c.run("RPUSH l a b");
    c.run("LPUSH l z");
    assert_eq!(c.run("COPY l l2"), int(1));
    assert_eq!(c.run("RENAME l2 l3"), ok());
    assert_eq!(c.run("LRANGE l3 0 -1"), bulks(&["z", "a", "b"]));
    assert_eq!(c.run("MOVE l3 1"), int(1));
    assert_eq!(c.run("EXPIRE l 100"), int(1));
    let scan = |keys: &[&str]| Resp::Array(Some(vec![bulk("0"), bulks(keys)]));
    assert_eq!(c.run("SCAN 0 TYPE list COUNT 100"), scan(&["l"]));
    c.restored();
    assert_eq!(c.run("LRANGE l 0 -1"), bulks(&["z", "a", "b"]));
    assert_eq!(c.run("LPOP l"), bulk("z"));
    c.restored();
    assert_eq!(c.run("DEL l"), int(1));
}

#[test]
fn the_order_of_a_list_is_part_of_the_state_hash() {
    let (mut a, mut other) = (Client::new(), Client::new());
    a.run("RPUSH l x y");
    other.run("RPUSH l y x");
    assert_ne!(a.machine.state_hash(), other.machine.state_hash());
    a.run("LSET l 0 y");
    a.run("LSET l 1 x");
    other.run("LSET l 0 y");
    other.run("LSET l 1 x");
    assert_eq!(a.run("LRANGE l 0 -1"), other.run("LRANGE l 0 -1"));
    assert_eq!(a.machine.state_hash(), other.machine.state_hash());
}

#[test]
fn sort_orders_lists_and_sets_by_number_alpha_or_by_pattern_with_limit_get_and_store() {
    let mut c = Client::new();
    c.run("RPUSH l 3 10 2 1");
    c.run("MSET w_3 30 w_10 5 w_2 20 w_1 1 n_3 c n_10 a");
    c.run("HSET h_3 f z");
    c.run("HSET h_10 f y");
    assert_eq!(c.run("SORT l"), bulks(&["1", "2", "3", "10"]));
    assert_eq!(c.run("SORT l DESC LIMIT 1 2"), bulks(&["3", "2"]));
    assert_eq!(c.run("SORT l ALPHA"), bulks(&["1", "10", "2", "3"]));
    assert_eq!(c.run("SORT l BY w_*"), bulks(&["1", "10", "2", "3"]));
    assert_eq!(c.run("SORT l BY nosort"), bulks(&["3", "10", "2", "1"]));
    assert_eq!(
        c.run("SORT l BY nosort DESC"),
        bulks(&["1", "2", "10", "3"])
    );
    let with_nil = Resp::Array(Some(vec![
        bulk("1"),
        Resp::Bulk(None),
        bulk("2"),
        Resp::Bulk(None),
    ]));
    assert_eq!(c.run("SORT l LIMIT 0 2 GET # GET n_*"), with_nil);
    assert_eq!(
        c.run("SORT l BY nosort LIMIT 0 2 GET h_*->f"),
        bulks(&["z", "y"])
    );
    assert_eq!(c.run("SORT l STORE dest"), int(4));
    assert_eq!(c.run("LRANGE dest 0 -1"), bulks(&["1", "2", "3", "10"]));
    assert_eq!(c.run("SORT_RO l STORE dest"), error("ERR syntax error"));
    c.run("SADD s b a c");
    assert_eq!(c.run("SORT s BY nosort"), bulks(&["a", "b", "c"]));
    assert_eq!(
        c.run("SORT s"),
        error("ERR One or more scores can't be converted into double")
    );
    assert_eq!(c.run("SORT s ALPHA DESC"), bulks(&["c", "b", "a"]));
    assert_eq!(c.run("SORT nokey"), bulks(&[]));
    assert_eq!(c.run("SORT nokey STORE dest"), int(0));
    assert_eq!(c.run("EXISTS dest"), int(0));
    assert_eq!(c.run("SORT w_1"), error(WRONG_TYPE));
    assert_eq!(c.run("SORT l LIMIT 0"), error("ERR syntax error"));
}
