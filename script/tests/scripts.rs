//! Scripts and functions behave as Redis 7.0 does (replies checked against redis-server 7.0.15).

use std::collections::HashMap;

use keyspace_script::{eval, fcall, load_library, sha1_hex, Invocation, Resp, BUDGET_ERROR};

/// A tiny store behind redis.call: SET, GET, INCR, DEL; anything else is unknown.
#[derive(Default)]
struct Store {
    data: HashMap<Vec<u8>, Vec<u8>>,
    calls: Vec<Vec<Vec<u8>>>,
}

impl Store {
    fn call(&mut self, argv: &[Vec<u8>]) -> Resp {
        self.calls.push(argv.to_vec());
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        match (name.as_str(), argv.len()) {
            ("set", 3) => {
                self.data.insert(argv[1].clone(), argv[2].clone());
                Resp::Simple("OK".into())
            }
            ("get", 2) => Resp::Bulk(self.data.get(&argv[1]).cloned()),
            ("del", 2) => Resp::Int(i64::from(self.data.remove(&argv[1]).is_some())),
            ("incr", 2) => self.incr(&argv[1]),
            ("set" | "get" | "del" | "incr", _) => {
                Resp::error("ERR Wrong number of args calling Redis command from script")
            }
            _ => Resp::error("ERR Unknown Redis command called from script"),
        }
    }

    fn incr(&mut self, key: &[u8]) -> Resp {
        let current = self
            .data
            .get(key)
            .map(|v| String::from_utf8_lossy(v).parse::<i64>());
        match current {
            Some(Err(_)) => Resp::error("ERR value is not an integer or out of range"),
            other => {
                let next = other.map(|r| r.unwrap()).unwrap_or(0) + 1;
                self.data
                    .insert(key.to_vec(), next.to_string().into_bytes());
                Resp::Int(next)
            }
        }
    }
}

fn bytes(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn run_with(store: &mut Store, body: &str, keys: &[&str], args: &[&str]) -> Resp {
    let (keys, args) = (bytes(keys), bytes(args));
    let invocation = Invocation {
        keys: &keys,
        args: &args,
        seed: 7,
    };
    eval(body.as_bytes(), &invocation, &mut |argv| store.call(argv))
}

fn run(body: &str) -> Resp {
    run_with(&mut Store::default(), body, &[], &[])
}

fn error_text(reply: Resp) -> String {
    match reply {
        Resp::Error(text) => text,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn lua_values_convert_to_replies_as_redis_does() {
    assert_eq!(run("return 3.7"), Resp::Int(3));
    assert_eq!(run("return -3.7"), Resp::Int(-3));
    assert_eq!(run("return true"), Resp::Int(1));
    assert_eq!(run("return false"), Resp::Bulk(None));
    assert_eq!(run("return nil"), Resp::Bulk(None));
    assert_eq!(run("return 'x'"), Resp::bulk("x"));
    let array = run("return {1, true, false, 'a', nil, 4}");
    assert_eq!(
        array,
        Resp::Array(Some(vec![
            Resp::Int(1),
            Resp::Int(1),
            Resp::Bulk(None),
            Resp::bulk("a")
        ]))
    );
    assert_eq!(run("return {ok='FINE'}"), Resp::Simple("FINE".into()));
    assert_eq!(run("return {err='x\\ny'}"), Resp::error("x y"));
    assert_eq!(
        run("return redis.status_reply('FINE')"),
        Resp::Simple("FINE".into())
    );
    assert_eq!(
        run("return redis.error_reply('MY_ERR custom msg')"),
        Resp::error("MY_ERR custom msg")
    );
    assert_eq!(run("return redis.error_reply('x')"), Resp::error("ERR x"));
}

#[test]
fn replies_convert_to_lua_values_as_redis_does() {
    let mut store = Store::default();
    let body = "redis.call('set', KEYS[1], ARGV[1]); \
        return {redis.call('get', KEYS[1]), type(redis.call('get', 'missing')), redis.call('set', 'a', 'b').ok, redis.call('incr', 'n')}";
    let reply = run_with(&mut store, body, &["k"], &["v"]);
    let expected = vec![
        Resp::bulk("v"),
        Resp::bulk("boolean"),
        Resp::bulk("OK"),
        Resp::Int(1),
    ];
    assert_eq!(reply, Resp::Array(Some(expected)));
    assert_eq!(store.data.get(b"k".as_slice()), Some(&b"v".to_vec()));
}

#[test]
fn numbers_passed_to_redis_call_are_formatted_with_17_digits() {
    let mut store = Store::default();
    run_with(
        &mut store,
        "redis.call('set', 'a', 3.5); redis.call('set', 'b', 0.1); redis.call('set', 'c', 3)",
        &[],
        &[],
    );
    assert_eq!(store.data[b"a".as_slice()], b"3.5");
    assert_eq!(store.data[b"b".as_slice()], b"0.10000000000000001");
    assert_eq!(store.data[b"c".as_slice()], b"3");
}

#[test]
fn redis_call_raises_and_redis_pcall_returns_the_error() {
    let mut store = Store::default();
    store.data.insert(b"s".to_vec(), b"foo".to_vec());
    let raised = run_with(
        &mut store,
        "local r = redis.call('incr','s') return r",
        &[],
        &[],
    );
    let name = sha1_hex(b"local r = redis.call('incr','s') return r");
    assert_eq!(
        raised,
        Resp::error(format!(
            "ERR value is not an integer or out of range script: f_{name}, on @user_script:1."
        ))
    );
    let returned = run_with(&mut store, "return redis.pcall('incr','s')", &[], &[]);
    assert_eq!(
        returned,
        Resp::error("ERR value is not an integer or out of range")
    );
    let caught = run_with(
        &mut store,
        "local r = redis.pcall('incr','s'); return r.err",
        &[],
        &[],
    );
    assert_eq!(
        caught,
        Resp::bulk("ERR value is not an integer or out of range")
    );
}

#[test]
fn redis_call_argument_errors_match_redis() {
    assert!(error_text(run("redis.call()"))
        .starts_with("ERR Please specify at least one argument for this redis lib call script: "));
    assert!(error_text(run("redis.call({})"))
        .starts_with("ERR Lua redis lib command arguments must be strings or integers script: "));
    assert_eq!(
        run("return redis.pcall({})"),
        Resp::error("ERR Lua redis lib command arguments must be strings or integers")
    );
    assert_eq!(
        run("return redis.pcall('nosuch')"),
        Resp::error("ERR Unknown Redis command called from script")
    );
}

#[test]
fn runtime_and_compile_errors_carry_redis_positions() {
    let name = sha1_hex(b"error('boom')");
    assert_eq!(
        run("error('boom')"),
        Resp::error(format!(
            "ERR user_script:1: boom script: f_{name}, on @user_script:1."
        ))
    );
    assert_eq!(
        run("return 'a' .. "),
        Resp::error("ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'")
    );
    assert!(error_text(run("error({err='MY bad'})")).starts_with("MY bad script: f_"));
}

#[test]
fn globals_are_protected_as_in_redis_7() {
    let text = error_text(run("return x"));
    assert!(text.starts_with("ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: "), "{text}");
    assert!(error_text(run("a=1"))
        .starts_with("ERR user_script:1: Attempt to modify a readonly table script: "));
    for body in [
        "setmetatable(_G, {})",
        "local g = getmetatable(_G); g.__index = {}",
        "redis = function() return 1 end",
        "_G = {}",
        "redis.call = function() return 1 end",
        "cjson.encode = function() return 1 end",
        "bit.lshift = function() return 1 end",
        "string.foo = 1",
        "rawset(_G, 'a', 1)",
        "getmetatable(_G).__index.redis = 1",
    ] {
        assert!(
            error_text(run(body)).contains("Attempt to modify a readonly table"),
            "{body}"
        );
    }
    for name in ["loadfile", "dofile", "print", "require", "io", "os"] {
        let text = error_text(run(&format!("return {name}")));
        assert!(
            text.contains(&format!("nonexistent global variable '{name}'")),
            "{text}"
        );
    }
    let pcall = run("local status, res = pcall(function() return foo end); return 'status: ' .. tostring(status) .. ' result: ' .. res");
    assert_eq!(pcall, Resp::bulk("status: false result: user_script:1: Script attempted to access nonexistent global variable 'foo'"));
}

#[test]
fn binary_chunks_are_refused() {
    let text = error_text(run(
        "return loadstring(string.dump(function() return 1 end))()",
    ));
    assert!(text.contains("attempt to call a nil value"), "{text}");
}

#[test]
fn math_random_is_redis_drand48_seeded_by_the_caller() {
    assert_eq!(
        run("math.randomseed(10); return tostring(math.random())"),
        Resp::bulk("0.87885112309775")
    );
    let first = run("return tostring(math.random())");
    assert_eq!(
        first,
        run("return tostring(math.random())"),
        "same seed, same draw"
    );
    let keys: Vec<Vec<u8>> = Vec::new();
    let other = Invocation {
        keys: &keys,
        args: &keys,
        seed: 8,
    };
    let drawn = eval(b"return tostring(math.random())", &other, &mut |_| {
        Resp::Int(0)
    });
    assert_ne!(first, drawn, "another seed, another draw");
}

#[test]
fn runaway_scripts_stop_at_the_instruction_budget_even_under_pcall() {
    assert_eq!(run("while true do end"), Resp::error(BUDGET_ERROR));
    assert_eq!(
        run("while true do pcall(function() while true do end end) end"),
        Resp::error(BUDGET_ERROR)
    );
    let coroutine = "local co = coroutine.create(function() while true do end end); coroutine.resume(co); while true do end";
    assert_eq!(run(coroutine), Resp::error(BUDGET_ERROR));
}

#[test]
fn memory_is_bounded() {
    let text = error_text(run("local s = 'x' while true do s = s .. s end"));
    assert!(
        text.contains("not enough memory") || text == BUDGET_ERROR,
        "{text}"
    );
}

#[test]
fn redis_helpers_exist() {
    assert_eq!(
        run("return redis.sha1hex('')"),
        Resp::bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    assert_eq!(run("redis.log(redis.LOG_WARNING, 'x'); redis.setresp(2); redis.set_repl(redis.REPL_ALL); return redis.replicate_commands()"), Resp::Int(1));
    assert_eq!(run("return redis.REDIS_VERSION"), Resp::bulk("7.0.15"));
}

#[test]
fn bit_and_cjson_behave_like_redis_bundles() {
    assert_eq!(run("return bit.tohex(65535, -4)"), Resp::bulk("FFFF"));
    assert_eq!(run("return bit.bor(1,2,4,8,16,32,64,128)"), Resp::Int(255));
    assert_eq!(
        run("return bit.band(-1, 0xff) + bit.bxor(1, 3) + bit.lshift(1, 4)"),
        Resp::Int(255 + 2 + 16)
    );
    assert_eq!(
        run("return cjson.encode({1,2,{a='x/y'}, 0.1})"),
        Resp::bulk("[1,2,{\"a\":\"x\\/y\"},0.1]")
    );
    assert_eq!(
        run("return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')"),
        Resp::bulk("0 -5000 -1 0.0003 1023.2 0")
    );
    assert_eq!(run("local d = cjson.decode('{\"keya\": \"a\", \"keyb\": [1, null]}'); return {d.keya, d.keyb[1], tostring(d.keyb[2] == cjson.null)}"),
        Resp::Array(Some(vec![Resp::bulk("a"), Resp::Int(1), Resp::bulk("true")])));
    let options = "local ok = pcall(cjson.encode, {[false]='x'}); assert(not ok); \
        cjson.encode_max_depth(1); assert(not pcall(cjson.encode, {a={1}})); \
        cjson.decode_max_depth(1); assert(not pcall(cjson.decode, '{\"o\": {\"a\": [1]}}')); \
        assert(not pcall(cjson.encode, {n=0/0})); cjson.encode_invalid_numbers(true); assert(pcall(cjson.encode, {n=0/0})); return 1";
    assert_eq!(run(options), Resp::Int(1));
}

const LIBRARY: &str = "#!lua name=mylib\n\
    redis.register_function('incr_by_key', function(keys, args) return redis.call('incr', keys[1]) end)\n\
    redis.register_function{function_name='ro', callback=function(keys, args) return args[1] end, flags={'no-writes'}, description='echo'}";

#[test]
fn function_libraries_load_and_register_their_functions() {
    let library = load_library(LIBRARY.as_bytes()).unwrap();
    assert_eq!(library.name, "mylib");
    assert_eq!(library.functions.len(), 2);
    assert_eq!(library.functions[0].name, "incr_by_key");
    assert!(!library.functions[0].no_writes());
    assert!(library.functions[1].no_writes());
    assert_eq!(library.functions[1].description.as_deref(), Some("echo"));
}

#[test]
fn fcall_runs_a_registered_function_with_keys_and_args() {
    let mut store = Store::default();
    let (keys, args) = (bytes(&["n"]), bytes(&["hello"]));
    let invocation = Invocation {
        keys: &keys,
        args: &args,
        seed: 1,
    };
    assert_eq!(
        fcall(LIBRARY.as_bytes(), "incr_by_key", &invocation, &mut |a| {
            store.call(a)
        }),
        Resp::Int(1)
    );
    assert_eq!(
        fcall(LIBRARY.as_bytes(), "ro", &invocation, &mut |a| store
            .call(a)),
        Resp::bulk("hello")
    );
}

fn load_error(code: &str) -> String {
    load_library(code.as_bytes()).unwrap_err()
}

#[test]
fn function_load_errors_match_redis() {
    assert!(load_error("#!lua name=lib\nreturn 1").contains("No functions registered"));
    assert!(load_error("#!lua name=lib\nreturn math.random()")
        .contains("attempted to access nonexistent global variable 'math'"));
    assert!(load_error("#!lua name=lib\nreturn redis.call('ping')")
        .contains("attempted to access nonexistent global variable 'call'"));
    assert!(load_error("#!lua name=lib\nreturn redis.setresp(3)")
        .contains("attempted to access nonexistent global variable 'setresp'"));
    assert!(load_error("#!lua name=lib\na = 1").contains("Attempt to modify a readonly table"));
    assert!(load_error("#!lua name=lib\nmt = getmetatable(_G)")
        .contains("nonexistent global variable 'getmetatable'"));
    assert!(
        load_error("#!lua name=lib\nlocal a = 1 while 1 do a = a + 1 end")
            .contains("FUNCTION LOAD timeout")
    );
    assert!(load_error("#!lua name=lib\nbad script").contains("Error compiling function"));
    let twice = "#!lua name=lib\nredis.register_function('f', function() end)\nredis.register_function('f', function() end)";
    assert!(load_error(twice).contains("Function already exists in the library"));
    assert!(load_error("#!lua name=lib\nredis.register_function('f')").contains("calling redis.register_function with a single argument is only applicable to Lua table"));
    assert!(load_error("#!lua name=lib\nredis.register_function{function_name='f', callback=function() end, flags={'bad'}}").contains("unknown flag given"));
    assert!(
        load_error("#!lua name=lib\nredis.register_function{callback=function() end}")
            .contains("redis.register_function must get a function name argument")
    );
}

#[test]
fn function_context_protections_match_redis() {
    let malicious = "#!lua name=lib1\nlocal lib = redis\n\
        lib.register_function('f1', function() lib.redis = redis return {ok='OK'} end)\n\
        lib.register_function('f2', function() lib.register_function('f1', function() end) end)\n\
        lib.register_function('f3', function() redis.register_function('f2', function() end) end)";
    let none: Vec<Vec<u8>> = Vec::new();
    let invocation = Invocation {
        keys: &none,
        args: &none,
        seed: 0,
    };
    let mut refuse = |_: &[Vec<u8>]| Resp::error("ERR no");
    assert!(
        error_text(fcall(malicious.as_bytes(), "f1", &invocation, &mut refuse))
            .contains("Attempt to modify a readonly table")
    );
    assert!(
        error_text(fcall(malicious.as_bytes(), "f2", &invocation, &mut refuse))
            .contains("can only be called on FUNCTION LOAD command")
    );
    assert!(
        error_text(fcall(malicious.as_bytes(), "f3", &invocation, &mut refuse))
            .contains("attempt to call field 'register_function' (a nil value)")
    );
}
