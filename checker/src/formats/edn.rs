//! Key/value logs with one EDN map per line:
//! `{:process 3, :type :invoke, :f :append, :key "7", :value "x 3 0 y"}`.
//!
//! `:f` is `:get`, `:put` or `:append`; `:type` is `:invoke`, `:ok`, `:fail` (certainly did
//! not happen: dropped) or `:info` (outcome unknown). An `:ok` get carries the value read in
//! `:value`. Keys and values may be strings or numbers. Lines that do not start with `{` are
//! skipped; a line that starts with `{` must be a well-formed map. Time is the line number.

use super::{LineError, ProcessLog};
use crate::history::{Operation, Outcome};
use crate::models::string_map::{MapInput, MapOutput};

/// An EDN value, as much of EDN as these logs use.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Keyword(String),
    Symbol(String),
    Str(String),
    Vector(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
}

/// Deepest nesting accepted, so hostile input cannot exhaust the stack.
const DEPTH_MAX: usize = 64;

pub fn parse(text: &str) -> Result<Vec<Operation<MapInput, MapOutput>>, LineError> {
    let mut log = ProcessLog::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if !line.trim_start().starts_with('{') {
            continue;
        }
        let map = read(line).map_err(|message| LineError::new(number, message))?;
        apply_line(&mut log, &map, number)?;
    }
    Ok(log.finish())
}

/// Reads one EDN value that makes up the whole of `text`.
pub fn read(text: &str) -> Result<Edn, String> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        at: 0,
    };
    let value = reader.value(0)?;
    reader.skip_space();
    if reader.at != reader.bytes.len() {
        return Err(format!(
            "unexpected text after the map at column {}",
            reader.at + 1
        ));
    }
    Ok(value)
}

fn apply_line(
    log: &mut ProcessLog<MapInput, MapOutput>,
    map: &Edn,
    line: usize,
) -> Result<(), LineError> {
    let err = |message: String| LineError::new(line, message);
    let process = match field(map, "process") {
        Some(Edn::Int(p)) if *p >= 0 => *p as u64,
        other => return Err(err(format!(":process must be a number, found {other:?}"))),
    };
    let kind = keyword(map, "type").map_err(err)?;
    let f = keyword(map, "f").map_err(err)?;
    let value = field(map, "value").unwrap_or(&Edn::Nil);
    match kind {
        "invoke" => {
            let key = text(field(map, "key").unwrap_or(&Edn::Nil))
                .ok_or_else(|| err("missing :key".into()))?;
            let input = match f {
                "get" => MapInput::Get { key },
                "put" | "append" => {
                    let value = text(value).ok_or_else(|| err(format!("{f} needs a :value")))?;
                    if f == "put" {
                        MapInput::Put { key, value }
                    } else {
                        MapInput::Append { key, value }
                    }
                }
                other => return Err(err(format!("unknown :f :{other}"))),
            };
            log.invoke(process, line as u64, input);
        }
        "ok" => {
            let op = log.end(process, line)?;
            let output = match &op.input {
                MapInput::Get { .. } => MapOutput::Value(text(value).unwrap_or_default()),
                _ => MapOutput::Done,
            };
            op.outcome = Outcome::Returned {
                at_ns: line as u64,
                output,
            };
        }
        "fail" => log.drop_pending(process, line)?,
        "info" => {
            log.end(process, line)?;
        }
        other => return Err(err(format!("unknown :type :{other}"))),
    }
    Ok(())
}

fn field<'m>(map: &'m Edn, name: &str) -> Option<&'m Edn> {
    let Edn::Map(entries) = map else { return None };
    entries
        .iter()
        .find(|(k, _)| matches!(k, Edn::Keyword(k) if k == name))
        .map(|(_, v)| v)
}

fn keyword<'m>(map: &'m Edn, name: &str) -> Result<&'m str, String> {
    match field(map, name) {
        Some(Edn::Keyword(k)) => Ok(k),
        other => Err(format!(":{name} must be a keyword, found {other:?}")),
    }
}

/// A string, or a number read as its decimal text; `None` for nil or anything else.
fn text(value: &Edn) -> Option<String> {
    match value {
        Edn::Str(s) => Some(s.clone()),
        Edn::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

struct Reader<'t> {
    bytes: &'t [u8],
    at: usize,
}

impl Reader<'_> {
    fn skip_space(&mut self) {
        while self.at < self.bytes.len()
            && (self.bytes[self.at].is_ascii_whitespace() || self.bytes[self.at] == b',')
        {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Edn, String> {
        if depth > DEPTH_MAX {
            return Err("nested too deeply".into());
        }
        self.skip_space();
        let Some(&first) = self.bytes.get(self.at) else {
            return Err("unexpected end of line".into());
        };
        match first {
            b'{' => self.map(depth),
            b'[' | b'(' => self.vector(depth, if first == b'[' { b']' } else { b')' }),
            b'"' => self.string(),
            b':' => {
                self.at += 1;
                Ok(Edn::Keyword(self.token()?.to_string()))
            }
            _ => self.atom(),
        }
    }

    fn map(&mut self, depth: usize) -> Result<Edn, String> {
        self.at += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_space();
            match self.bytes.get(self.at) {
                None => return Err("unclosed map".into()),
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Edn::Map(entries));
                }
                Some(_) => {
                    let key = self.value(depth + 1)?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
            }
        }
    }

    fn vector(&mut self, depth: usize, close: u8) -> Result<Edn, String> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.bytes.get(self.at) {
                None => return Err("unclosed vector".into()),
                Some(&b) if b == close => {
                    self.at += 1;
                    return Ok(Edn::Vector(items));
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    fn string(&mut self) -> Result<Edn, String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.bytes.get(self.at) else {
                return Err("unclosed string".into());
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&escaped) = self.bytes.get(self.at) else {
                        return Err("unclosed string".into());
                    };
                    self.at += 1;
                    out.push(match escaped {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out)
            .map(Edn::Str)
            .map_err(|_| "string is not UTF-8".into())
    }

    fn token(&mut self) -> Result<&str, String> {
        let start = self.at;
        while self.at < self.bytes.len() && !b" \t\r\n,{}[]()\"".contains(&self.bytes[self.at]) {
            self.at += 1;
        }
        if start == self.at {
            return Err(format!("expected a value at column {}", start + 1));
        }
        std::str::from_utf8(&self.bytes[start..self.at]).map_err(|_| "token is not UTF-8".into())
    }

    fn atom(&mut self) -> Result<Edn, String> {
        let token = self.token()?;
        Ok(match token {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ => match token.parse::<i64>() {
                Ok(n) => Edn::Int(n),
                Err(_) => Edn::Symbol(token.to_string()),
            },
        })
    }
}
