//! A minimal RESP2 client, for `keyspace cluster`'s status checks and `keyspace bench`, and the
//! translation between the store's commands and their Redis form that clients recording a
//! history for the checker need.

use keyspace_core::{Command, CommandError, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resp::Writer;

/// A reply as a client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Value>),
}

pub struct Client {
    stream: TcpStream,
    input: Vec<u8>,
    out: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            input: Vec::with_capacity(4096),
            out: Vec::with_capacity(4096),
        })
    }

    pub async fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Value> {
        let mut replies = self.pipeline(&[args]).await?;
        Ok(replies.pop().expect("one reply per command"))
    }

    /// Sends every command in one write, then reads their replies, in order.
    pub async fn pipeline(&mut self, commands: &[&[&[u8]]]) -> std::io::Result<Vec<Value>> {
        self.out.clear();
        let mut w = Writer {
            out: &mut self.out,
            resp3: false,
        };
        for args in commands {
            w.array(args.len());
            for arg in args.iter() {
                w.bulk(arg);
            }
        }
        self.stream.write_all(&self.out).await?;
        self.stream.flush().await?; // a no-op on real TCP; madsim sends on flush
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            if let Some((value, used)) = parse_value(&self.input)? {
                self.input.drain(..used);
                replies.push(value);
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
        Ok(replies)
    }
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Parses one reply at the start of `buf`; `None` if incomplete.
pub fn parse_value(buf: &[u8]) -> std::io::Result<Option<(Value, usize)>> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(&buf[1..end]).to_string();
    let next = end + 2;
    let number = || line.parse::<i64>().map_err(|_| bad("bad number in reply"));
    Ok(match tag {
        b'+' => Some((Value::Simple(line), next)),
        b'-' => Some((Value::Error(line), next)),
        b':' => Some((Value::Int(number()?), next)),
        b'$' if number()? < 0 => Some((Value::Null, next)),
        b'$' => {
            let len = number()? as usize;
            if buf.len() < next + len + 2 {
                return Ok(None);
            }
            Some((Value::Bulk(buf[next..next + len].to_vec()), next + len + 2))
        }
        b'*' if number()? < 0 => Some((Value::Null, next)),
        b'*' => {
            let mut items = Vec::new();
            let mut pos = next;
            for _ in 0..number()? {
                let Some((item, used)) = parse_value(&buf[pos..])? else {
                    return Ok(None);
                };
                items.push(item);
                pos += used;
            }
            Some((Value::Array(items), pos))
        }
        _ => return Err(bad("unknown reply type")),
    })
}

/// The value of `field` in an INFO reply.
pub fn info_field(info: &Value, field: &str) -> Option<String> {
    let Value::Bulk(text) = info else { return None };
    let text = String::from_utf8_lossy(text);
    text.lines().find_map(|line| {
        line.strip_prefix(field)?
            .strip_prefix(':')
            .map(|v| v.trim().to_string())
    })
}

/// One operation of a test workload: `choice % 3` picks SET `key` `value`, INCR `key` or GET
/// `key`. Returns the command as a history records it and the RESP arguments that carry it.
pub fn workload_op(choice: u64, key: Vec<u8>, value: Vec<u8>) -> (Command, Vec<Vec<u8>>) {
    match choice % 3 {
        0 => {
            let args = vec![b"SET".to_vec(), key.clone(), value.clone()];
            (Command::Set { key, value }, args)
        }
        1 => {
            let args = vec![b"INCR".to_vec(), key.clone()];
            (Command::Add { key, delta: 1 }, args)
        }
        _ => {
            let args = vec![b"GET".to_vec(), key.clone()];
            (Command::Get { key }, args)
        }
    }
}

/// What the answer `value` to a [`workload_op`] says happened, as a history records it; `None`
/// when it says nothing (a refusal such as a redirect or a timeout: the outcome is unknown).
pub fn workload_reply(value: Value) -> Option<Reply> {
    match value {
        Value::Simple(s) if s == "OK" => Some(Reply::Ok),
        Value::Int(n) => Some(Reply::Int(n)),
        Value::Bulk(v) => Some(Reply::Value(Some(v))),
        Value::Null => Some(Reply::Value(None)),
        // INCR on a value a SET made non-numeric: refused, changed nothing.
        Value::Error(e) if e.contains("not an integer") => {
            Some(Reply::Error(CommandError::NotAnInteger))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_ops_carry_their_command_and_answers_map_to_what_happened() {
        let (set, args) = workload_op(3, b"k".to_vec(), b"v".to_vec());
        assert!(matches!(set, Command::Set { .. }));
        assert_eq!(args, [&b"SET"[..], b"k", b"v"]);
        let (incr, args) = workload_op(4, b"k".to_vec(), b"v".to_vec());
        assert!(matches!(incr, Command::Add { delta: 1, .. }));
        assert_eq!(args, [&b"INCR"[..], b"k"]);
        let (get, _) = workload_op(5, b"k".to_vec(), b"v".to_vec());
        assert!(matches!(get, Command::Get { .. }));
        let refused = Value::Error("ERR value is not an integer or out of range".into());
        assert_eq!(
            workload_reply(refused),
            Some(Reply::Error(CommandError::NotAnInteger))
        );
        assert_eq!(workload_reply(Value::Error("TRYAGAIN".into())), None);
        assert_eq!(workload_reply(Value::Null), Some(Reply::Value(None)));
    }
}
