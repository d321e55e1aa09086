//! Real processes: `SYNC` on a follower turns the connection into a Redis replication stream:
//! an empty RDB, then the writes the follower applies, translated as Redis 7.0 propagates them
//! (SELECT first, GETDEL as DEL, relative deadlines as PXAT, a transaction in MULTI/EXEC, a
//! write that changed nothing left out); INFO counts the stream as a connected replica.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use keyspace_node::resp_client::{parse_value, Value};

mod cluster_common;
use cluster_common::{wait_until, Client, Cluster};

/// A replication stream read as the Redis test suite reads it.
struct Stream {
    socket: TcpStream,
    input: Vec<u8>,
}

impl Stream {
    /// Sends SYNC and reads the `$<len>` header and the RDB it announces.
    fn attach(socket: TcpStream) -> (Stream, Vec<u8>) {
        socket
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut stream = Stream {
            socket,
            input: Vec::new(),
        };
        stream.socket.write_all(b"SYNC\r\n").unwrap();
        let header = loop {
            if let Some(end) = stream.input.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(stream.input[..end].to_vec()).unwrap();
                stream.input.drain(..end + 2);
                break line;
            }
            stream.fill();
        };
        let len: usize = header
            .strip_prefix('$')
            .expect("a bulk header")
            .parse()
            .unwrap();
        while stream.input.len() < len {
            stream.fill();
        }
        let rdb: Vec<u8> = stream.input.drain(..len).collect();
        (stream, rdb)
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self
            .socket
            .read(&mut chunk)
            .expect("the stream answers in time");
        assert!(n > 0, "the stream closed");
        self.input.extend_from_slice(&chunk[..n]);
    }

    /// The next command of the stream, its words joined by spaces.
    fn next(&mut self) -> String {
        loop {
            if let Some((value, used)) = parse_value(&self.input).unwrap() {
                self.input.drain(..used);
                let Value::Array(items) = value else {
                    panic!("a command is an array: {value:?}");
                };
                let words: Vec<String> = (items.into_iter())
                    .map(|item| match item {
                        Value::Bulk(bytes) => String::from_utf8(bytes).unwrap(),
                        other => panic!("a bulk string: {other:?}"),
                    })
                    .collect();
                return words.join(" ");
            }
            self.fill();
        }
    }
}

fn ok(client: &mut Client, args: &[&[u8]]) -> Value {
    let value = client.call(args).unwrap();
    assert!(!matches!(value, Value::Error(_)), "{args:?}: {value:?}");
    value
}

#[test]
fn sync_on_a_follower_streams_what_it_applies_as_redis_propagates_it() {
    let cluster = Cluster::start();
    let master = cluster.wait_for_master(None);
    let follower = cluster.ids().find(|id| *id != master).unwrap();
    let mut client = cluster.client(follower);
    ok(&mut client, &[b"SET", b"before", b"1"]);
    cluster.wait_caught_up(follower, master);

    let socket = TcpStream::connect(cluster.addr(follower)).unwrap();
    let (mut stream, rdb) = Stream::attach(socket);
    assert!(
        rdb.starts_with(b"REDIS0010"),
        "an RDB of version 10: {rdb:?}"
    );
    wait_until("INFO counts the stream", || {
        cluster.field(follower, "connected_slaves").as_deref() == Some("1")
    });

    ok(&mut client, &[b"SELECT", b"9"]);
    ok(&mut client, &[b"SET", b"foo", b"bar"]);
    ok(&mut client, &[b"DEL", b"missing"]);
    ok(&mut client, &[b"GETDEL", b"foo"]);
    ok(&mut client, &[b"SET", b"t", b"v", b"EX", b"100"]);
    ok(&mut client, &[b"MULTI"]);
    ok(&mut client, &[b"SET", b"a", b"1"]);
    ok(&mut client, &[b"GET", b"a"]);
    ok(&mut client, &[b"INCR", b"a"]);
    ok(&mut client, &[b"EXEC"]);
    ok(&mut client, &[b"SELECT", b"0"]);
    ok(&mut client, &[b"SET", b"last", b"1"]);

    assert_eq!(stream.next(), "SELECT 9");
    assert_eq!(stream.next(), "SET foo bar");
    assert_eq!(stream.next(), "DEL foo");
    let set_ttl = stream.next();
    assert!(set_ttl.starts_with("SET t v PXAT "), "{set_ttl}");
    let at_ms: u64 = set_ttl.rsplit(' ').next().unwrap().parse().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        at_ms > now_ms + 90_000 && at_ms <= now_ms + 100_000,
        "{at_ms} vs {now_ms}"
    );
    for expected in [
        "MULTI",
        "SET a 1",
        "INCR a",
        "EXEC",
        "SELECT 0",
        "SET last 1",
    ] {
        assert_eq!(stream.next(), expected);
    }

    drop(stream);
    wait_until("INFO forgets the closed stream", || {
        ok(&mut client, &[b"SET", b"after", b"1"]);
        cluster.field(follower, "connected_slaves").as_deref() == Some("0")
    });
}
