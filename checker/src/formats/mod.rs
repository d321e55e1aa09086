//! Reading histories from files: Jepsen etcd logs, EDN key/value logs and the project's own
//! JSON-lines format. Every parser returns an error naming the line instead of panicking.

pub mod edn;
pub mod etcd;
pub mod jsonl;

use crate::history::{Operation, Outcome};
use crate::models::keyspace::History;
use crate::models::register::{RegisterInput, RegisterOutput};
use crate::models::string_map::{MapInput, MapOutput};
use std::collections::HashMap;
use std::path::Path;

/// A file that could not be read as a history.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// A problem on one line (1-based), before the file's name is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

impl LineError {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        LineError {
            line,
            message: message.into(),
        }
    }
}

/// The formats `keyspace-check` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Jepsen's etcd test log: one compare-and-set register.
    JepsenEtcd,
    /// One EDN map per line: a string map with get, put and append.
    EdnKv,
    /// The project's JSON-lines history of store commands.
    Jsonl,
}

/// A parsed history, typed by the model that judges it.
#[derive(Clone, Debug)]
pub enum Parsed {
    Register(Vec<Operation<RegisterInput, RegisterOutput>>),
    StringMap(Vec<Operation<MapInput, MapOutput>>),
    Keyspace(History),
}

impl Parsed {
    pub fn len(&self) -> usize {
        match self {
            Parsed::Register(ops) => ops.len(),
            Parsed::StringMap(ops) => ops.len(),
            Parsed::Keyspace(history) => history.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Guesses the format from the first line that is not blank.
pub fn detect(text: &str) -> Option<Format> {
    for line in text.lines().take(1000) {
        let line = line.trim();
        if line.starts_with("{\"") {
            return Some(Format::Jsonl);
        }
        if line.starts_with("{:") {
            return Some(Format::EdnKv);
        }
        if line.contains("jepsen") || etcd::is_op_line(line) {
            return Some(Format::JepsenEtcd);
        }
    }
    None
}

/// Reads `path` in `format`, or in the format `detect` finds.
pub fn parse_file(path: &Path, format: Option<Format>) -> Result<Parsed, ParseError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ParseError::Io {
        path: name.clone(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        ParseError::Line {
            path: name.clone(),
            line,
            message: "not UTF-8 text".into(),
        }
    })?;
    parse_text(&name, &text, format)
}

/// Parses `text`; `name` is for error messages.
pub fn parse_text(name: &str, text: &str, format: Option<Format>) -> Result<Parsed, ParseError> {
    let format = match format.or_else(|| detect(text)) {
        Some(format) => format,
        // No operation at all: linearizable under every model, whatever the format was.
        None if text.trim().is_empty() => return Ok(Parsed::Keyspace(History::default())),
        None => {
            return Err(ParseError::File {
                path: name.to_string(),
                message:
                    "cannot tell the format (Jepsen etcd log, EDN map per line or JSON lines); \
                          name it with --model"
                        .into(),
            })
        }
    };
    let at = |e: LineError| ParseError::Line {
        path: name.to_string(),
        line: e.line,
        message: e.message,
    };
    Ok(match format {
        Format::JepsenEtcd => Parsed::Register(etcd::parse(text).map_err(at)?),
        Format::EdnKv => Parsed::StringMap(edn::parse(text).map_err(at)?),
        Format::Jsonl => {
            let recorded = jsonl::parse(text).map_err(at)?;
            Parsed::Keyspace(History::from_recorded(recorded.into_iter()))
        }
    })
}

/// Builds a history from per-process invoke and completion lines.
pub(crate) struct ProcessLog<I, O> {
    ops: Vec<Operation<I, O>>,
    dropped: Vec<bool>,
    pending: HashMap<u64, usize>,
}

impl<I, O> ProcessLog<I, O> {
    pub fn new() -> Self {
        ProcessLog {
            ops: Vec::new(),
            dropped: Vec::new(),
            pending: HashMap::new(),
        }
    }

    /// A process that invokes again without completing its previous operation never learned
    /// that operation's outcome.
    pub fn invoke(&mut self, process: u64, time: u64, input: I) {
        self.pending.insert(process, self.ops.len());
        self.ops.push(Operation {
            client: process,
            invoke_ns: time,
            input,
            outcome: Outcome::Unknown,
        });
        self.dropped.push(false);
    }

    /// The operation `process` has pending, now ended.
    pub fn end(&mut self, process: u64, line: usize) -> Result<&mut Operation<I, O>, LineError> {
        match self.pending.remove(&process) {
            Some(index) => Ok(&mut self.ops[index]),
            None => Err(LineError::new(
                line,
                format!("process {process} completes an operation it never invoked"),
            )),
        }
    }

    /// The operation `process` has pending certainly did not happen, or constrains nothing.
    pub fn drop_pending(&mut self, process: u64, line: usize) -> Result<(), LineError> {
        match self.pending.remove(&process) {
            Some(index) => {
                self.dropped[index] = true;
                Ok(())
            }
            None => Err(LineError::new(
                line,
                format!("process {process} completes an operation it never invoked"),
            )),
        }
    }

    pub fn finish(self) -> Vec<Operation<I, O>> {
        self.ops
            .into_iter()
            .zip(self.dropped)
            .filter(|(_, dropped)| !dropped)
            .map(|(op, _)| op)
            .collect()
    }
}
