//! A [`Store`] over the Redis protocol (RESP2): real `redis-server`s or keyspace nodes.
//!
//! put is `SET`, get is `GET`, remove is `DEL`. list must be atomic on one store, so it is one
//! command, never a cursor: `KEYS prefix*` on Redis (its single thread runs the whole command
//! at one instant; `SCAN` is incremental and may miss keys written during the scan), and on
//! servers without `KEYS` (keyspace) `LISTKEYS prefix`, a single linearizable command. A
//! listing that comes back with keyspace's per-command maximum of keys may be cut short, so it
//! is refused rather than trusted.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::store::{Store, StoreError};

/// Keys one `LISTKEYS` answer carries at most (keyspace's `LIST_COUNT_MAX`).
const LISTKEYS_MAX: usize = 10_000;
/// Longest bulk string accepted from a server.
const BULK_MAX_BYTES: usize = 512 << 20;
/// Most elements of an array accepted from a server.
const ARRAY_MAX: usize = 1 << 20;

/// How a server lists keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listing {
    Keys,
    ListKeys,
}

/// One connection to one Redis-protocol server, opened on first use and again after a failure.
pub struct RedisStore {
    addr: String,
    timeout: Duration,
    conn: Option<(BufReader<TcpStream>, TcpStream)>,
    listing: Listing,
}

#[derive(Debug, PartialEq, Eq)]
enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Value>>),
}

impl RedisStore {
    /// A store at `addr` (`HOST:PORT`); every request gives up after `timeout`.
    pub fn new(addr: &str, timeout: Duration) -> RedisStore {
        RedisStore {
            addr: addr.to_string(),
            timeout,
            conn: None,
            listing: Listing::Keys,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<Value, StoreError> {
        let result = self.try_call(args);
        if result.is_err() {
            self.conn = None; // the stream may hold half an answer
        }
        result.map_err(|e| StoreError(format!("store {}: {e}", self.addr)))
    }

    fn try_call(&mut self, args: &[&[u8]]) -> std::io::Result<Value> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let (reader, writer) = self.conn.as_mut().expect("connected above");
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            frame.extend_from_slice(arg);
            frame.extend_from_slice(b"\r\n");
        }
        writer.write_all(&frame)?;
        read_value(reader, 0)
    }

    fn connect(&self) -> std::io::Result<(BufReader<TcpStream>, TcpStream)> {
        let addr = self
            .addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
        let stream = TcpStream::connect_timeout(&addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        Ok((BufReader::new(stream.try_clone()?), stream))
    }

    fn list_keys(&mut self, prefix: &str) -> Result<Value, StoreError> {
        if self.listing == Listing::Keys {
            let pattern = format!("{prefix}*");
            match self.call(&[b"KEYS", pattern.as_bytes()])? {
                Value::Error(e) if e.contains("unknown command") => {
                    self.listing = Listing::ListKeys
                }
                other => return Ok(other),
            }
        }
        self.call(&[b"LISTKEYS", prefix.as_bytes()])
    }
}

fn unexpected(addr: &str, command: &str, value: Value) -> StoreError {
    match value {
        Value::Error(e) => StoreError(format!("store {addr}: {command} failed: {e}")),
        other => StoreError(format!(
            "store {addr}: unexpected answer to {command}: {other:?}"
        )),
    }
}

impl Store for RedisStore {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        match self.call(&[b"SET", key.as_bytes(), value])? {
            Value::Simple(ok) if ok == "OK" => Ok(()),
            other => Err(unexpected(&self.addr, "SET", other)),
        }
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.call(&[b"GET", key.as_bytes()])? {
            Value::Bulk(value) => Ok(value),
            other => Err(unexpected(&self.addr, "GET", other)),
        }
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let items = match self.list_keys(prefix)? {
            Value::Array(Some(items)) => items,
            other => return Err(unexpected(&self.addr, "a listing", other)),
        };
        if self.listing == Listing::ListKeys && items.len() >= LISTKEYS_MAX {
            return Err(StoreError(format!(
                "store {}: {} keys under `{prefix}` fill one LISTKEYS answer, so the listing may be incomplete",
                self.addr,
                items.len()
            )));
        }
        items
            .into_iter()
            .map(|item| match item {
                Value::Bulk(Some(key)) => String::from_utf8(key).map_err(|_| {
                    StoreError(format!(
                        "store {}: listed a key that is not UTF-8",
                        self.addr
                    ))
                }),
                other => Err(unexpected(&self.addr, "a listing", other)),
            })
            .collect()
    }

    fn remove(&mut self, key: &str) -> Result<(), StoreError> {
        match self.call(&[b"DEL", key.as_bytes()])? {
            Value::Int(_) => Ok(()),
            other => Err(unexpected(&self.addr, "DEL", other)),
        }
    }
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    line.strip_suffix("\r\n")
        .map(str::to_string)
        .ok_or_else(|| bad("a RESP line without CRLF"))
}

fn read_value(reader: &mut impl BufRead, depth: usize) -> std::io::Result<Value> {
    if depth > 4 {
        return Err(bad("RESP arrays nested too deep"));
    }
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| bad("a RESP length that is no number"))
    };
    match kind {
        "+" => Ok(Value::Simple(rest.to_string())),
        "-" => Ok(Value::Error(rest.to_string())),
        ":" => Ok(Value::Int(number()?)),
        "$" => {
            let Ok(len) = usize::try_from(number()?) else {
                return Ok(Value::Bulk(None));
            };
            if len > BULK_MAX_BYTES {
                return Err(bad("a bulk string over the limit"));
            }
            let mut data = vec![0; len + 2];
            reader.read_exact(&mut data)?;
            data.truncate(len);
            Ok(Value::Bulk(Some(data)))
        }
        "*" => {
            let Ok(len) = usize::try_from(number()?) else {
                return Ok(Value::Array(None));
            };
            if len > ARRAY_MAX {
                return Err(bad("an array over the limit"));
            }
            let items = (0..len)
                .map(|_| read_value(reader, depth + 1))
                .collect::<std::io::Result<_>>()?;
            Ok(Value::Array(Some(items)))
        }
        _ => Err(bad("an unknown RESP type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_answers_parse() {
        let mut input: &[u8] = b"*2\r\n$3\r\na/1\r\n$-1\r\n+OK\r\n:3\r\n-ERR no\r\n";
        assert_eq!(
            read_value(&mut input, 0).unwrap(),
            Value::Array(Some(vec![
                Value::Bulk(Some(b"a/1".to_vec())),
                Value::Bulk(None)
            ]))
        );
        assert_eq!(
            read_value(&mut input, 0).unwrap(),
            Value::Simple("OK".into())
        );
        assert_eq!(read_value(&mut input, 0).unwrap(), Value::Int(3));
        assert_eq!(
            read_value(&mut input, 0).unwrap(),
            Value::Error("ERR no".into())
        );
        assert!(read_value(&mut input, 0).is_err());
    }

    #[test]
    fn a_dead_store_fails_each_request_instead_of_hanging() {
        // Port 1 on loopback: nothing listens there.
        let mut store = RedisStore::new("127.0.0.1:1", Duration::from_millis(500));
        assert!(store.get("k").is_err());
        assert!(store.list("k/").is_err());
    }
}
