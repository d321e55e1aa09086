//! The warm state gives what a new state gives: the same replies for the same runs, whatever
//! ran before, and no script leaves anything behind for the next.

use keyspace_script::{eval, fcall, reset, warm_state_intact, Invocation, Resp};

fn run(body: &str, keys: &[&str], args: &[&str], seed: u64) -> Resp {
    let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let invocation = Invocation {
        keys: &keys,
        args: &args,
        seed,
    };
    let mut call = |argv: &[Vec<u8>]| Resp::Bulk(Some(argv.concat()));
    eval(body.as_bytes(), &invocation, &mut call)
}

/// Scripts that try to leave something for the next run, then scripts that would see it.
const SEQUENCE: [&str; 24] = [
    "x = 1 return 1",
    "rawset(_G, 'x', 1) return 1",
    "setmetatable(_G, {}) return 1",
    "local mt = getmetatable(_G) mt.__index.redis = 1 return 1",
    "getmetatable(redis).__index.call = function() return 'hijacked' end return 1",
    "getmetatable('').__index.upper = function() return 'hijacked' end return 1",
    "table.insert(string, 'left') return 1",
    "string.rep = nil return 1",
    "cjson.encode_max_depth(1) return 1",
    "math.randomseed(7) return 1",
    "setfenv(0, {}) return 1",
    "return KEYS[1]",
    "return tostring(x)",
    "return type(rawget(_G, 'x'))",
    "return redis.call('get', 'k')",
    "return ('abc'):upper()",
    "return string[1] or 'none'",
    "return type(string.rep)",
    "return cjson.encode({a = {b = {c = 1}}})",
    "return tostring(math.random(1000))",
    "return type(KEYS)",
    "local ok, e = pcall(function() y = 2 end) return tostring(ok)",
    "return tostring(getfenv(0) == _G)",
    "return (redis.sha1hex('a'))",
];

fn sequence_replies(fresh_each_time: bool) -> Vec<Resp> {
    reset();
    let mut replies = Vec::new();
    for (i, body) in SEQUENCE.iter().enumerate() {
        if fresh_each_time {
            reset();
        }
        let keys: &[&str] = if i % 2 == 0 { &["k"] } else { &[] };
        replies.push(run(body, keys, &["v"], i as u64));
    }
    replies
}

#[test]
fn a_sequence_run_in_one_warm_state_replies_as_in_a_new_state_per_run() {
    let warm = sequence_replies(false);
    let fresh = sequence_replies(true);
    for (i, (w, f)) in warm.iter().zip(&fresh).enumerate() {
        assert_eq!(w, f, "script {i}: {}", SEQUENCE[i]);
    }
    assert_eq!(warm.len(), SEQUENCE.len());
}

#[test]
fn no_script_of_the_sequence_leaves_the_warm_state_changed() {
    reset();
    for body in SEQUENCE {
        run(body, &["k"], &["v"], 1);
        assert_ne!(warm_state_intact(), Some(false), "after {body}");
    }
}

#[test]
fn a_function_sees_no_keys_left_by_an_eval_and_no_state_of_its_last_call() {
    reset();
    let library = b"#!lua name=lib\nlocal n = 0\nredis.register_function('f', function() n = n + 1 return {n, tostring(pcall(function() return KEYS end))} end)";
    let keys = vec![b"k".to_vec()];
    let invocation = Invocation {
        keys: &keys,
        args: &[],
        seed: 1,
    };
    let mut call = |_: &[Vec<u8>]| Resp::Simple("OK".into());
    run("return KEYS[1]", &["k"], &[], 1);
    let expected = Resp::Array(Some(vec![
        Resp::Int(1),
        Resp::Bulk(Some(b"false".to_vec())),
    ]));
    for _ in 0..2 {
        let reply = fcall(library, "f", &invocation, &mut call);
        assert_eq!(reply, expected);
    }
}
