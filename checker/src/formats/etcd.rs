//! Jepsen's etcd test log: `INFO  jepsen.util - <process> :<type> :<f> <value>`, fields
//! separated by tabs or runs of spaces. Lines without a `<process> :<type> :<f>` sequence (a
//! number, then `:invoke`, `:ok`, `:fail` or `:info`, then a keyword) are noise and skipped.
//!
//! Semantics: `fail` on a read (a timeout) or a write means the operation constrains nothing
//! or never happened, and it is dropped; `fail` on a cas means the compare failed; `info` means
//! the outcome is unknown. Time is the line number.

use super::{LineError, ProcessLog};
use crate::history::{Operation, Outcome};
use crate::models::register::{RegisterInput, RegisterOutput};

/// Line types a Jepsen log uses for operations.
const TYPES: [&str; 4] = [":invoke", ":ok", ":fail", ":info"];

pub fn parse(text: &str) -> Result<Vec<Operation<RegisterInput, RegisterOutput>>, LineError> {
    let mut log = ProcessLog::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let Some(fields) = op_fields(line) else {
            continue;
        };
        apply_line(&mut log, &fields, number)?;
    }
    Ok(log.finish())
}

/// True if the line describes an operation.
pub fn is_op_line(line: &str) -> bool {
    op_fields(line).is_some()
}

struct Fields<'a> {
    process: u64,
    kind: &'a str,
    f: &'a str,
    value: String,
}

fn op_fields(line: &str) -> Option<Fields<'_>> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let at = tokens.windows(3).position(|w| {
        w[0].parse::<u64>().is_ok() && TYPES.contains(&w[1]) && w[2].starts_with(':')
    })?;
    Some(Fields {
        process: tokens[at].parse().ok()?,
        kind: tokens[at + 1],
        f: tokens[at + 2],
        value: tokens[at + 3..].join(" "),
    })
}

fn apply_line(
    log: &mut ProcessLog<RegisterInput, RegisterOutput>,
    fields: &Fields<'_>,
    line: usize,
) -> Result<(), LineError> {
    let value = fields.value.as_str();
    match (fields.kind, fields.f) {
        (":invoke", ":read") => log.invoke(fields.process, line as u64, RegisterInput::Read),
        (":invoke", ":write") => log.invoke(
            fields.process,
            line as u64,
            RegisterInput::Write(int(value, line)?),
        ),
        (":invoke", ":cas") => {
            let (from, to) = pair(value, line)?;
            log.invoke(fields.process, line as u64, RegisterInput::Cas { from, to })
        }
        (":ok", f) => {
            let op = log.end(fields.process, line)?;
            let output = match (&op.input, f) {
                (RegisterInput::Read, ":read") => RegisterOutput::Read(nil_or_int(value, line)?),
                (RegisterInput::Write(_), ":write") => RegisterOutput::Write,
                (RegisterInput::Cas { .. }, ":cas") => RegisterOutput::Cas(true),
                _ => return Err(mismatch(&op.input, f, line)),
            };
            op.outcome = Outcome::Returned {
                at_ns: line as u64,
                output,
            };
        }
        (":fail", ":cas") => {
            let op = log.end(fields.process, line)?;
            if !matches!(op.input, RegisterInput::Cas { .. }) {
                return Err(mismatch(&op.input, ":cas", line));
            }
            op.outcome = Outcome::Returned {
                at_ns: line as u64,
                output: RegisterOutput::Cas(false),
            };
        }
        (":fail", ":read" | ":write") => log.drop_pending(fields.process, line)?,
        (":info", _) => {
            // Unknown outcome: the operation stays open for ever.
            log.end(fields.process, line)?;
        }
        (kind, f) => {
            return Err(LineError::new(
                line,
                format!("unknown operation {kind} {f} for a register"),
            ))
        }
    }
    Ok(())
}

fn mismatch(input: &RegisterInput, f: &str, line: usize) -> LineError {
    LineError::new(
        line,
        format!("completion {f} does not match the pending {input:?}"),
    )
}

fn int(value: &str, line: usize) -> Result<i64, LineError> {
    value
        .trim()
        .parse()
        .map_err(|_| LineError::new(line, format!("expected an integer, found {value:?}")))
}

fn nil_or_int(value: &str, line: usize) -> Result<Option<i64>, LineError> {
    if value.trim() == "nil" {
        Ok(None)
    } else {
        int(value, line).map(Some)
    }
}

fn pair(value: &str, line: usize) -> Result<(i64, i64), LineError> {
    let inner = value
        .trim()
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'));
    let numbers: Vec<&str> = inner
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default();
    match numbers.as_slice() {
        [from, to] => Ok((int(from, line)?, int(to, line)?)),
        _ => Err(LineError::new(
            line,
            format!("expected [from to], found {value:?}"),
        )),
    }
}
