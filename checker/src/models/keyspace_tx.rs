//! The store model's transactions (MULTI/EXEC) and WATCH: a transaction is ONE step of the
//! model, its commands applied in order to the state the earlier ones left.
//!
//! The model cannot know the log slot a WATCH saw, so it allows every nil EXEC (a watched key
//! may have changed) and judges only what a transaction that applied answered and did.

use keyspace_core::{Command, Reply};

/// The model's step for one command: the new state if it changed, and the reply. Passed in,
/// so this module needs nothing of the model but its step.
pub(super) type Apply<S> = fn(&S, &Command) -> (Option<S>, Reply);

/// The model's step for what only transactions need, or `None` for the general rule: a nil
/// EXEC changes nothing and is always allowed; a WATCH is judged by its values alone.
pub(super) fn special_step<S: Clone>(
    state: &S,
    command: &Command,
    output: Option<&Reply>,
    apply: Apply<S>,
) -> Option<Option<S>> {
    match (command.db_and_command().1, output) {
        (Command::Transaction { .. }, Some(Reply::Transaction(None))) => Some(Some(state.clone())),
        (Command::Watch { .. }, Some(Reply::Watched { values, .. })) => {
            let (_, expected) = apply(state, command);
            let matches = matches!(&expected, Reply::Watched { values: v, .. } if v == values);
            Some(matches.then(|| state.clone()))
        }
        _ => None,
    }
}

/// A transaction that applies: every command in order, in one step.
pub(super) fn apply_transaction<S: Clone>(
    state: &S,
    commands: &[Command],
    apply: Apply<S>,
) -> (Option<S>, Reply) {
    let mut current: Option<S> = None;
    let mut replies = Vec::with_capacity(commands.len());
    for command in commands {
        let (next, reply) = apply(current.as_ref().unwrap_or(state), command);
        if next.is_some() {
            current = next;
        }
        replies.push(reply);
    }
    (current, Reply::Transaction(Some(replies)))
}
