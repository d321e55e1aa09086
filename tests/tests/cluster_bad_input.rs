//! Real processes: bad input from clients and from would-be peers gets a clear error or a
//! dropped connection, the replica keeps serving, and nothing acknowledged is lost; pipelined
//! commands, bad ones among them, are answered in order.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use keyspace_core::codec::{self, FrameKind};
use keyspace_node::resp_client::Value;

mod cluster_common;
use cluster_common::{Client, Cluster};

fn peer_addr(cluster: &Cluster, id: u16) -> SocketAddr {
    let entry = cluster
        .peers
        .split(',')
        .find(|p| p.starts_with(&format!("{id}=")))
        .unwrap();
    entry.split_once('=').unwrap().1.parse().unwrap()
}

/// Sends raw bytes and returns what the server answered before closing (or timing out).
fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fn error_of(value: Value) -> String {
    match value {
        Value::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn bad_client_and_peer_input_is_refused_and_the_cluster_keeps_serving() {
    let cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let mut client = Client::connect(cluster.addr(master)).unwrap();
    assert_eq!(
        client.call(&[b"SET", b"kept", b"1"]).unwrap(),
        Value::Simple("OK".into())
    );

    // Client errors: each a RESP error, the connection stays usable.
    assert!(error_of(client.call(&[b"NOSUCHCOMMAND"]).unwrap()).starts_with("ERR unknown command"));
    assert!(error_of(client.call(&[b"GET"]).unwrap()).contains("wrong number of arguments"));
    let big_value = vec![b'v'; 2 * 1024 * 1024];
    assert!(error_of(client.call(&[b"SET", b"big", &big_value]).unwrap()).contains("limit"));
    let big_key = vec![b'k'; 8 * 1024];
    assert!(error_of(client.call(&[b"GET", &big_key]).unwrap()).contains("limit"));
    client.call(&[b"SET", b"n", b"x"]).unwrap();
    assert!(error_of(client.call(&[b"INCR", b"n"]).unwrap()).contains("not an integer"));
    assert_eq!(
        client.call(&[b"PING"]).unwrap(),
        Value::Simple("PONG".into())
    );

    // Malformed RESP: a protocol error, then that connection (only) is closed.
    let answer = raw(cluster.addr(master), b"*2\r\n$3\r\nGET\r\n:12\r\n");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("-ERR Protocol error"),
        "{answer:?}"
    );

    // Garbage, and a well-formed frame with a bad checksum, on a peer port: dropped.
    for id in 1..=3 {
        let answer = raw(peer_addr(&cluster, id), b"GET / HTTP/1.1\r\n\r\n");
        assert!(
            answer.is_empty(),
            "a peer port answered garbage: {answer:?}"
        );
        let mut frame = Vec::new();
        codec::encode(FrameKind::Handshake, &"hello".to_string(), &mut frame);
        let last = frame.len() - 1;
        frame[last] ^= 0x40;
        assert!(raw(peer_addr(&cluster, id), &frame).is_empty());
    }

    // A replica started with the wrong cluster key is refused by the others: the cluster keeps
    // its master and keeps serving.
    assert_eq!(
        client.call(&[b"SET", b"after", b"2"]).unwrap(),
        Value::Simple("OK".into())
    );
    for id in 1..=3 {
        let mut c = Client::connect(cluster.addr(id)).unwrap();
        assert_eq!(
            c.call(&[b"GET", b"kept"]).unwrap(),
            Value::Bulk(b"1".to_vec())
        );
        assert_eq!(
            c.call(&[b"GET", b"after"]).unwrap(),
            Value::Bulk(b"2".to_vec())
        );
    }
}

#[test]
fn a_replica_without_the_cluster_key_is_refused() {
    let cluster = Cluster::start_with_key(&["cluster-test-key", "cluster-test-key", "a-wrong-key"]);
    let master = cluster.wait_for_master(Some(3));
    let mut client = Client::connect(cluster.addr(master)).unwrap();
    assert_eq!(
        client.call(&[b"SET", b"k", b"v"]).unwrap(),
        Value::Simple("OK".into())
    );
    std::thread::sleep(Duration::from_millis(500));
    // The impostor never hears the protocol: it learns nothing.
    assert_eq!(cluster.field(3, "commit_index").as_deref(), Some("0"));
    assert_eq!(cluster.field(3, "connected_peers").as_deref(), Some("0/2"));
    let logs = cluster.logs();
    assert!(logs.contains("cluster key"), "no refusal logged:\n{logs}");
}

#[test]
fn clients_must_auth_when_a_password_is_set() {
    let cluster = Cluster::start_with_password("s3cret");
    let mut client = cluster.client(1);
    assert!(error_of(client.call(&[b"GET", b"k"]).unwrap()).starts_with("NOAUTH"));
    assert!(error_of(client.call(&[b"AUTH", b"wrong"]).unwrap()).starts_with("WRONGPASS"));
    assert_eq!(
        client.call(&[b"AUTH", b"s3cret"]).unwrap(),
        Value::Simple("OK".into())
    );
    assert_eq!(
        client.call(&[b"PING"]).unwrap(),
        Value::Simple("PONG".into())
    );
}

#[test]
fn mset_and_del_of_several_keys_act_on_every_key_at_once() {
    let cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let follower = (1..=3).find(|id| *id != master).unwrap();
    let mut client = Client::connect(cluster.addr(follower)).unwrap();
    assert_eq!(
        client
            .call(&[b"MSET", b"a", b"1", b"b", b"2", b"a", b"3"])
            .unwrap(),
        Value::Simple("OK".into())
    );
    let mut reader = Client::connect(cluster.addr(master)).unwrap();
    assert_eq!(
        reader.call(&[b"MGET", b"a", b"b"]).unwrap(),
        Value::Array(vec![Value::Bulk(b"3".to_vec()), Value::Bulk(b"2".to_vec())])
    );

    // A key without a value: refused, nothing stored.
    assert!(error_of(client.call(&[b"MSET", b"c", b"1", b"d"]).unwrap())
        .contains("wrong number of arguments"));
    // Too large as a whole though every value is within its own limit: none of it is stored.
    let value = vec![b'v'; 1024 * 1024];
    let mut args: Vec<&[u8]> = vec![b"MSET"];
    let keys: Vec<Vec<u8>> = (0..5).map(|i| format!("big{i}").into_bytes()).collect();
    for key in &keys {
        args.push(key);
        args.push(&value);
    }
    assert!(error_of(client.call(&args).unwrap()).contains("limit"));
    assert_eq!(
        reader.call(&[b"EXISTS", b"c", b"big0", b"big4"]).unwrap(),
        Value::Int(0)
    );

    // EXISTS counts a key named twice twice, as in Redis.
    assert_eq!(
        reader
            .call(&[b"EXISTS", b"a", b"a", b"b", b"absent"])
            .unwrap(),
        Value::Int(3)
    );
    // TYPE and TTL for tools that ask: every value is a string and never expires.
    for (args, answer) in [
        (&[b"TYPE".as_slice(), b"a"], Value::Simple("string".into())),
        (
            &[b"TYPE".as_slice(), b"absent"],
            Value::Simple("none".into()),
        ),
        (&[b"TTL".as_slice(), b"a"], Value::Int(-1)),
        (&[b"PTTL".as_slice(), b"absent"], Value::Int(-2)),
    ] {
        assert_eq!(reader.call(args).unwrap(), answer, "{args:?}");
    }
    // MGET of one key is still an array, as in Redis.
    assert_eq!(
        reader.call(&[b"MGET", b"a"]).unwrap(),
        Value::Array(vec![Value::Bulk(b"3".to_vec())])
    );

    // DEL of several keys: one command; a key given twice or absent counts once or not at all.
    assert_eq!(
        client.call(&[b"DEL", b"a", b"b", b"absent", b"a"]).unwrap(),
        Value::Int(2)
    );
    assert_eq!(
        reader.call(&[b"EXISTS", b"a", b"b"]).unwrap(),
        Value::Int(0)
    );
}

#[test]
fn pipelined_sets_are_answered_in_order_and_an_oversized_one_fails_alone() {
    let cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let follower = (1..=3).find(|id| *id != master).unwrap();
    let big_value = vec![b'v'; 1024 * 1024 + 1];
    let mut client = Client::connect(cluster.addr(follower)).unwrap();
    let too_large = error_of(client.call(&[b"SET", b"big", &big_value]).unwrap());

    // One write holding every command: the SETs between other commands are stored as runs.
    let commands: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"a", b"1"],
        vec![b"set", b"b", b"2"],
        vec![b"SET", b"a", b"3"],
        vec![b"GET", b"a"],
        vec![b"SET", b"big", &big_value],
        vec![b"SET", b"c", b"4"],
        vec![b"INCR", b"n"],
        vec![b"SET", b"d", b"5"],
        vec![b"SET", b"a", b"6"],
        vec![b"MGET", b"a", b"b", b"c", b"d", b"big"],
        vec![b"QUIT"],
    ];
    let mut pipeline = Vec::new();
    for args in &commands {
        pipeline.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            pipeline.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            pipeline.extend_from_slice(arg);
            pipeline.extend_from_slice(b"\r\n");
        }
    }
    let answer = raw(cluster.addr(follower), &pipeline);

    let expected = format!(
        "+OK\r\n+OK\r\n+OK\r\n$1\r\n3\r\n-{too_large}\r\n+OK\r\n:1\r\n+OK\r\n+OK\r\n\
         *5\r\n$1\r\n6\r\n$1\r\n2\r\n$1\r\n4\r\n$1\r\n5\r\n$-1\r\n+OK\r\n"
    );
    assert_eq!(String::from_utf8_lossy(&answer), expected);
}

#[test]
fn redis_cli_pipe_mass_insertion_stores_every_write() {
    let cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    const SETS: usize = 5000;
    let mut input = String::new();
    for i in 0..SETS {
        input.push_str(&format!("SET key:{i} value-{i}\r\n"));
    }
    input.push_str("INCR counter\r\nINCR counter\r\n");
    let child = Process::new("redis-cli")
        .args(["-p", &cluster.port(master).to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("redis-cli is not installed: skipped");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains(&format!("errors: 0, replies: {}", SETS + 2)),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let mut client = cluster.client(master);
    assert_eq!(
        client.call(&[b"DBSIZE"]).unwrap(),
        Value::Int(SETS as i64 + 1)
    );
    assert_eq!(
        client
            .call(&[b"MGET", b"key:0", b"key:4999", b"counter"])
            .unwrap(),
        Value::Array(vec![
            Value::Bulk(b"value-0".to_vec()),
            Value::Bulk(b"value-4999".to_vec()),
            Value::Bulk(b"2".to_vec()),
        ])
    );
}

#[test]
fn a_pipelined_transaction_applies_whole_and_a_watched_change_on_a_follower_makes_exec_nil() {
    let cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let answer = raw(
        cluster.addr(master),
        b"MULTI\r\nSET t 1\r\nINCR n\r\nEXEC\r\nGET t\r\n\
          MULTI\r\nSET t 2\r\nDISCARD\r\nEXEC\r\nSET t 3\r\nGET t\r\nQUIT\r\n",
    );
    let lines: Vec<String> = String::from_utf8_lossy(&answer)
        .split("\r\n")
        .map(str::to_string)
        .collect();
    let expected = [
        "+OK",
        "+QUEUED",
        "+QUEUED",
        "*2",
        "+OK",
        ":1",
        "$1",
        "1",
        "+OK",
        "+QUEUED",
        "+OK",
        "-ERR EXEC without MULTI",
        "+OK",
        "$1",
        "3",
        "+OK",
    ];
    assert_eq!(lines[..expected.len()], expected, "{lines:?}");

    let follower = if master == 1 { 2 } else { 1 };
    let mut watcher = cluster.client(follower);
    let mut other = cluster.client(master);
    let ok = Value::Simple("OK".into());
    assert_eq!(watcher.call(&[b"WATCH", b"n"]).unwrap(), ok);
    assert_eq!(other.call(&[b"INCR", b"n"]).unwrap(), Value::Int(2));
    assert_eq!(watcher.call(&[b"MULTI"]).unwrap(), ok);
    let queued = Value::Simple("QUEUED".into());
    assert_eq!(watcher.call(&[b"INCR", b"n"]).unwrap(), queued);
    assert_eq!(watcher.call(&[b"EXEC"]).unwrap(), Value::Null);
    assert_eq!(watcher.call(&[b"WATCH", b"n"]).unwrap(), ok);
    assert_eq!(watcher.call(&[b"MULTI"]).unwrap(), ok);
    assert_eq!(watcher.call(&[b"INCR", b"n"]).unwrap(), queued);
    assert_eq!(
        watcher.call(&[b"EXEC"]).unwrap(),
        Value::Array(vec![Value::Int(3)])
    );
}
