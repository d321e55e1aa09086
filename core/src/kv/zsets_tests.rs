//! Specification tests of sorted sets, from the client's words to the client's reply (each
//! expected reply checked against redis-server 7.0.15).

use super::collections_tests::{bulk, bulks, error, Client, WRONG_TYPE};
use crate::redis::Resp;

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn double(text: &str) -> Resp {
    Resp::Double(text.as_bytes().to_vec())
}

/// Members with their scores, as WITHSCORES answers them.
fn scored(pairs: &[(&str, &str)]) -> Resp {
    Resp::Pairs(pairs.iter().map(|(m, s)| (bulk(m), double(s))).collect())
}

#[test]
fn zadd_counts_new_members_and_its_options_follow_redis() {
    let mut c = Client::new();
    assert_eq!(c.run("ZADD z 1 a 2 b 3 c"), Resp::Int(3));
    assert_eq!(c.run("ZADD z 5 a 2 b"), Resp::Int(0));
    assert_eq!(c.run("ZADD z CH 6 a 2 b 0 d"), Resp::Int(2));
    assert_eq!(c.run("ZADD z NX 100 a 7 e"), Resp::Int(1));
    assert_eq!(c.run("ZADD z XX 100 f"), Resp::Int(0));
    assert_eq!(c.run("ZADD z GT CH 1 a 9 b"), Resp::Int(1));
    assert_eq!(c.run("ZADD z LT CH 10 b"), Resp::Int(0));
    assert_eq!(c.run("ZSCORE z a"), double("6"));
    assert_eq!(c.run("ZADD z INCR 1.5 a"), double("7.5"));
    assert_eq!(c.run("ZADD z XX INCR 1 nosuch"), Resp::Bulk(None));
    assert_eq!(c.run("ZINCRBY z 0.1 d"), double("0.10000000000000001"));
    assert_eq!(
        c.run("ZADD z nan x"),
        error("ERR value is not a valid float")
    );
    assert_eq!(c.run("ZADD z 1 a 2"), error("ERR syntax error"));
    assert_eq!(
        c.run("ZADD z NX XX 1 a"),
        error("ERR XX and NX options at the same time are not compatible")
    );
    assert_eq!(
        c.run("ZADD z GT LT 1 a"),
        error("ERR GT, LT, and/or NX options at the same time are not compatible")
    );
    assert_eq!(
        c.run("ZADD z INCR 1 a 2 b"),
        error("ERR INCR option supports a single increment-element pair")
    );
    c.run("ZADD inf inf m");
    assert_eq!(
        c.run("ZINCRBY inf -inf m"),
        error("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(c.run("ZSCORE inf m"), double("inf"));
    assert_eq!(c.run("ZCARD z"), Resp::Int(5));
    assert_eq!(c.run("ZCARD nosuch"), Resp::Int(0));
}

#[test]
fn zrange_and_its_family_select_by_rank_score_and_lex_with_rev_and_limit() {
    let mut c = Client::new();
    c.run("ZADD z 1 a 2 b 3 c 4 d");
    assert_eq!(c.run("ZRANGE z 0 -1"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(
        c.run("ZRANGE z 1 2 WITHSCORES"),
        scored(&[("b", "2"), ("c", "3")])
    );
    assert_eq!(c.run("ZREVRANGE z 0 1"), bulks(&["d", "c"]));
    assert_eq!(c.run("ZRANGE z (1 3 BYSCORE"), bulks(&["b", "c"]));
    assert_eq!(c.run("ZRANGE z 3 (1 BYSCORE REV"), bulks(&["c", "b"]));
    assert_eq!(
        c.run("ZRANGEBYSCORE z -inf +inf LIMIT 1 2"),
        bulks(&["b", "c"])
    );
    assert_eq!(
        c.run("ZREVRANGEBYSCORE z +inf -inf WITHSCORES LIMIT 0 1"),
        scored(&[("d", "4")])
    );
    assert_eq!(c.run("ZRANGEBYLEX z [b (d"), bulks(&["b", "c"]));
    assert_eq!(c.run("ZREVRANGEBYLEX z + - LIMIT 0 2"), bulks(&["d", "c"]));
    assert_eq!(c.run("ZCOUNT z (1 +inf"), Resp::Int(3));
    assert_eq!(c.run("ZLEXCOUNT z - +"), Resp::Int(4));
    assert_eq!(c.run("ZRANK z c"), Resp::Int(2));
    assert_eq!(c.run("ZREVRANK z c"), Resp::Int(1));
    assert_eq!(c.run("ZRANK z nosuch"), Resp::Bulk(None));
    assert_eq!(
        c.run("ZRANGEBYSCORE z x 1"),
        error("ERR min or max is not a float")
    );
    assert_eq!(
        c.run("ZRANGEBYLEX z a b"),
        error("ERR min or max not valid string range item")
    );
    assert_eq!(
        c.run("ZRANGE z 0 1 LIMIT 0 1"),
        error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(c.run("ZRANGESTORE dst z 1 2"), Resp::Int(2));
    assert_eq!(
        c.run("ZRANGE dst 0 -1 WITHSCORES"),
        scored(&[("b", "2"), ("c", "3")])
    );
    assert_eq!(c.run("ZRANGESTORE dst z 5 6"), Resp::Int(0));
    assert_eq!(c.run("EXISTS dst"), Resp::Int(0));
}

#[test]
fn removal_by_member_and_range_deletes_the_key_with_its_last_member() {
    let mut c = Client::new();
    c.run("ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(c.run("ZREM z a nosuch"), Resp::Int(1));
    assert_eq!(c.run("ZREMRANGEBYRANK z 0 0"), Resp::Int(1));
    assert_eq!(c.run("ZREMRANGEBYSCORE z (3 4"), Resp::Int(1));
    assert_eq!(c.run("ZREMRANGEBYLEX z [c [c"), Resp::Int(1));
    assert_eq!(c.run("ZRANGE z 0 -1"), bulks(&["e"]));
    assert_eq!(c.run("ZREM z e"), Resp::Int(1));
    assert_eq!(c.run("EXISTS z"), Resp::Int(0));
}

#[test]
fn pops_take_the_lowest_or_highest_and_blocking_ones_answer_at_once() {
    let mut c = Client::new();
    c.run("ZADD z 1 a 2 b 3 c");
    assert_eq!(
        c.run("ZPOPMIN z"),
        Resp::Array(Some(vec![bulk("a"), double("1")]))
    );
    assert_eq!(c.run("ZPOPMAX z 5"), scored(&[("c", "3"), ("b", "2")]));
    assert_eq!(c.run("ZPOPMIN z"), bulks(&[]));
    assert_eq!(
        c.run("ZPOPMIN z -1"),
        error("ERR value is out of range, must be positive")
    );
    c.run("ZADD z2 1 a 2 b");
    let pair = |m: &str, s: &str| Resp::Array(Some(vec![bulk(m), double(s)]));
    assert_eq!(
        c.run("ZMPOP 2 z z2 MAX COUNT 5"),
        Resp::Array(Some(vec![
            bulk("z2"),
            Resp::Array(Some(vec![pair("b", "2"), pair("a", "1")]))
        ]))
    );
    assert_eq!(c.run("ZMPOP 1 z MIN"), Resp::Array(None));
    assert_eq!(c.run("BZPOPMIN z 0"), Resp::Array(None));
    c.run("ZADD z3 7 x");
    assert_eq!(
        c.run("BZPOPMAX z z3 1"),
        Resp::Array(Some(vec![bulk("z3"), bulk("x"), double("7")]))
    );
    assert_eq!(c.run("BZPOPMIN z -1"), error("ERR timeout is negative"));
}

#[test]
fn union_inter_diff_weigh_and_aggregate_scores_and_accept_sets() {
    let mut c = Client::new();
    c.run("ZADD a 1 x 2 y 3 z");
    c.run("ZADD b 10 y 20 z 30 w");
    c.run("SADD s y");
    assert_eq!(
        c.run("ZUNION 2 a b WITHSCORES"),
        scored(&[("x", "1"), ("y", "12"), ("z", "23"), ("w", "30")])
    );
    assert_eq!(
        c.run("ZINTER 2 a b WEIGHTS 2 1 AGGREGATE MAX WITHSCORES"),
        scored(&[("y", "10"), ("z", "20")])
    );
    assert_eq!(c.run("ZDIFF 2 a b"), bulks(&["x"]));
    assert_eq!(c.run("ZINTERSTORE dst 2 a s"), Resp::Int(1));
    assert_eq!(c.run("ZRANGE dst 0 -1 WITHSCORES"), scored(&[("y", "3")]));
    assert_eq!(c.run("ZINTERCARD 2 a b LIMIT 1"), Resp::Int(1));
    assert_eq!(c.run("ZUNIONSTORE dst 2 a b AGGREGATE MIN"), Resp::Int(4));
    assert_eq!(c.run("ZDIFFSTORE dst 1 nosuch"), Resp::Int(0));
    assert_eq!(c.run("EXISTS dst"), Resp::Int(0));
    assert_eq!(
        c.run("ZUNIONSTORE dst 0 a"),
        error("ERR at least 1 input key is needed for 'zunionstore' command")
    );
    assert_eq!(c.run("ZDIFF 1 a WEIGHTS 1"), error("ERR syntax error"));
}

#[test]
fn zsets_are_listpack_until_129_members_or_a_long_member_and_skiplist_for_good() {
    let mut c = Client::new();
    c.run("ZADD z 1 a");
    assert_eq!(c.run("TYPE z"), Resp::Simple("zset".into()));
    assert_eq!(c.run("OBJECT ENCODING z"), bulk("listpack"));
    c.run(&format!("ZADD z 2 {}", "x".repeat(65)));
    assert_eq!(c.run("OBJECT ENCODING z"), bulk("skiplist"));
    c.run(&format!("ZREM z {}", "x".repeat(65)));
    assert_eq!(
        c.run("OBJECT ENCODING z"),
        bulk("skiplist"),
        "no conversion back"
    );
    let members: Vec<String> = (0..129).map(|i| format!("{i} m{i}")).collect();
    c.run(&format!("ZADD big {}", members[..128].join(" ")));
    assert_eq!(c.run("OBJECT ENCODING big"), bulk("listpack"));
    c.run(&format!("ZADD big {}", members[128]));
    assert_eq!(c.run("OBJECT ENCODING big"), bulk("skiplist"));
    assert_eq!(c.run("COPY big big2"), Resp::Int(1));
    assert_eq!(c.run("OBJECT ENCODING big2"), bulk("skiplist"));
    assert_eq!(c.run("ZRANGESTORE small big 0 1"), Resp::Int(2));
    assert_eq!(c.run("OBJECT ENCODING small"), bulk("listpack"));
    c.restored();
    assert_eq!(c.run("ZSCORE big m128"), double("128"));
}

#[test]
fn every_command_on_another_kind_is_wrongtype_and_string_commands_refuse_zsets() {
    let mut c = Client::new();
    c.run("SET str v");
    c.run("HSET h f v");
    c.run("ZADD z 1 a");
    for line in [
        "ZADD str 1 a",
        "ZRANGE h 0 -1",
        "ZSCORE str a",
        "ZPOPMIN h",
        "ZUNIONSTORE d 2 z str",
        "ZRANK str a",
        "GET z",
        "HGET z a",
        "SADD z a",
    ] {
        assert_eq!(c.run(line), error(WRONG_TYPE), "{line}");
    }
    assert_eq!(c.run("ZSCORE z a"), double("1"));
}

#[test]
fn zscan_zrandmember_and_zmscore_answer_members_with_scores() {
    let mut c = Client::new();
    c.run("ZADD z 1 a 2 b 3 c");
    assert_eq!(
        c.run("ZSCAN z 0 MATCH [ab]"),
        Resp::Array(Some(vec![bulk("0"), bulks(&["a", "1", "b", "2"])]))
    );
    assert_eq!(
        c.run("ZMSCORE z a nosuch c"),
        Resp::Array(Some(vec![double("1"), Resp::Bulk(None), double("3"),]))
    );
    match c.run("ZRANDMEMBER z 3 WITHSCORES") {
        Resp::Array(Some(items)) => assert_eq!(items.len(), 6),
        other => panic!("ZRANDMEMBER answered {other:?}"),
    }
    assert_eq!(c.run("ZRANDMEMBER nosuch"), Resp::Bulk(None));
    assert_eq!(c.run("RENAME z z2"), ok());
    assert_eq!(
        c.run("SCAN 0 TYPE zset"),
        Resp::Array(Some(vec![bulk("0"), bulks(&["z2"])]))
    );
}
