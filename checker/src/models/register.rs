//! A compare-and-set register, initially nil: the model of Jepsen's etcd test.

use crate::history::Operation;
use crate::model::Model;
use crate::runner::{check_parts, CheckOptions, CheckResult, Part};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    Read,
    Write(i64),
    /// Set to `to` if the value is `from`.
    Cas {
        from: i64,
        to: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// The value read; `None` is nil.
    Read(Option<i64>),
    Write,
    /// Whether the compare matched (and the set happened).
    Cas(bool),
}

/// The register's value is `None` (nil) until the first write.
#[derive(Clone, Copy, Debug, Default)]
pub struct CasRegister;

impl Model for CasRegister {
    type Input = RegisterInput;
    type Output = RegisterOutput;
    type State = Option<i64>;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
    ) -> Option<Option<i64>> {
        match (input, output) {
            (RegisterInput::Read, None) => Some(*state),
            (RegisterInput::Read, Some(RegisterOutput::Read(value))) => {
                (value == state).then_some(*state)
            }
            (RegisterInput::Write(value), None | Some(RegisterOutput::Write)) => Some(Some(*value)),
            (&RegisterInput::Cas { from, to }, output) => {
                let matched = *state == Some(from);
                let after = if matched { Some(to) } else { *state };
                match output {
                    None => Some(after),
                    Some(&RegisterOutput::Cas(ok)) => (ok == matched).then_some(after),
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }

    fn is_read_only(&self, input: &RegisterInput) -> bool {
        matches!(input, RegisterInput::Read)
    }

    fn describe_op(&self, input: &RegisterInput, output: Option<&RegisterOutput>) -> String {
        let call = match input {
            RegisterInput::Read => "read()".to_string(),
            RegisterInput::Write(value) => format!("write({value})"),
            RegisterInput::Cas { from, to } => format!("cas({from}, {to})"),
        };
        let result = match output {
            None => "unknown".to_string(),
            Some(RegisterOutput::Read(value)) => describe_value(value),
            Some(RegisterOutput::Write) => "ok".to_string(),
            Some(RegisterOutput::Cas(true)) => "ok".to_string(),
            Some(RegisterOutput::Cas(false)) => "fail".to_string(),
        };
        format!("{call} -> {result}")
    }

    fn describe_state(&self, state: &Option<i64>) -> String {
        describe_value(state)
    }
}

fn describe_value(value: &Option<i64>) -> String {
    value.map_or_else(|| "nil".to_string(), |v| v.to_string())
}

/// Checks a history of one compare-and-set register.
pub fn check_register(
    ops: &[Operation<RegisterInput, RegisterOutput>],
    options: &CheckOptions,
) -> CheckResult {
    let part = Part {
        model: CasRegister,
        ops: (0..ops.len()).collect(),
    };
    check_parts(ops, vec![part], options)
}
