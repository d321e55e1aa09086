//! A minimal RESP2 client, for `keyspace cluster`'s status checks and `keyspace bench`.

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
        self.out.clear();
        let mut w = Writer {
            out: &mut self.out,
            resp3: false,
        };
        w.array(args.len());
        for arg in args {
            w.bulk(arg);
        }
        self.stream.write_all(&self.out).await?;
        self.stream.flush().await?; // a no-op on real TCP; madsim sends on flush
        loop {
            if let Some((value, used)) = parse_value(&self.input)? {
                self.input.drain(..used);
                return Ok(value);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
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
