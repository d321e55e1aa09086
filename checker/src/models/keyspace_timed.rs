//! The store model with time: keys with deadlines, judged within the drift bound.
//!
//! The store takes its time from the log (docs/design.md, "Expiry"): the master stamps each
//! entry with `max(its wall clock, the applied time)`, a write applies at the state's time
//! `N`, and a linearizable read judges at `R = max(the master's wall clock, the applied time)`.
//! With every wall clock within `E` of true time, an operation invoked at true time `t1` that
//! returned at `t2` took effect at a store time in `[t1 - E, t2 + E]` (its [`Window`]): every
//! stamp and wall reading is some clock's reading at a true time no later than `t2`, and the
//! one the operation used was read no earlier than `t1`.
//!
//! The model does not know that time, so it keeps, for each key with a deadline, the range of
//! store times the deadline can lie in ([`DeadlineRange`]), and narrows it with what each
//! operation observed: present at `N` means the deadline is at least the window's start;
//! expired means it is before the window's end; a relative deadline set at `N` lies in the
//! window shifted by the TTL; a TTL reply of `p` puts it in the window shifted by `p`. An
//! empty range means no store time explains the history: not linearizable within `E`.
//!
//! Where an operation could have found its key present or expired with the same reply (a SET
//! with KEEPTTL, an INCR of "0"), both outcomes are kept: the state is the set of the stores
//! the history so far allows ([`TimedState`]), and an operation keeps every one its reply
//! allows. Each observation only ever adds true facts about the deadline, and an expired key
//! the store reclaimed in the background is kept here but can only be found expired by a later
//! operation whose window allows it, so the model never rejects what the store may do. It
//! uses nothing of monotone log time beyond the windows, so it accepts some histories the
//! store cannot produce (a key found expired, then present, within `2E` of its deadline).
//!
//! Commands judged: GET, SET, ADD, DELETE and the expiry commands (SET with its options,
//! EXPIRE with NX/XX/GT/LT, PERSIST, GETEX, TTL/PTTL/EXPIRETIME/PEXPIRETIME), each on one key.

use super::keyspace::{apply, describe_command, describe_reply, show};
use super::keyspace_state::{qualified, StoreState};
use crate::model::Model;
use keyspace_core::{
    Command, CommandError, Deadline, ExpireCondition, ExpireName, Reply, SetCondition, TtlChange,
    TtlUnit,
};
use std::collections::{BTreeMap, BTreeSet};

pub use super::keyspace::is_deadline_command;
pub use crate::log_clock::{LogClock, Window, FOREVER_MS};

/// A command and the store times it may have taken effect at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimedCommand {
    pub command: Command,
    pub window: Window,
}

/// The store times (ms) a deadline may lie in, both ends included; never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeadlineRange {
    earliest_ms: i64,
    latest_ms: i64,
}

impl DeadlineRange {
    fn new(earliest_ms: i64, latest_ms: i64) -> Option<DeadlineRange> {
        (earliest_ms <= latest_ms).then_some(DeadlineRange {
            earliest_ms,
            latest_ms,
        })
    }

    /// The part of the range at or after `ms`, if any.
    fn at_least(self, ms: i64) -> Option<DeadlineRange> {
        DeadlineRange::new(self.earliest_ms.max(ms), self.latest_ms)
    }

    /// The part of the range at or before `ms`, if any.
    fn at_most(self, ms: i64) -> Option<DeadlineRange> {
        DeadlineRange::new(self.earliest_ms, self.latest_ms.min(ms))
    }
}

/// A key's value and, if it has one, the range its deadline lies in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    value: Vec<u8>,
    deadline: Option<DeadlineRange>,
}

/// One store the history allows: entries by qualified key ([`qualified`]).
pub type TimedStore = BTreeMap<Vec<u8>, Entry>;

/// Every store the history so far allows; never empty.
pub type TimedState = BTreeSet<TimedStore>;

/// Whether the timed model judges `command` (alone; not in a transaction).
pub fn is_timed(command: &Command) -> bool {
    is_deadline_command(command)
        || matches!(
            command.db_and_command().1,
            Command::Get { .. }
                | Command::Set { .. }
                | Command::Add { .. }
                | Command::Delete { .. }
        )
}

#[derive(Clone, Copy, Debug, Default)]
pub struct TimedKeyspaceModel;

impl Model for TimedKeyspaceModel {
    type Input = TimedCommand;
    type Output = Reply;
    type State = TimedState;

    fn init(&self) -> TimedState {
        TimedState::from([TimedStore::new()])
    }

    fn step(
        &self,
        state: &TimedState,
        input: &TimedCommand,
        output: Option<&Reply>,
    ) -> Option<TimedState> {
        let output =
            output.filter(|o| !matches!(o, Reply::Error(CommandError::StaleRequest { .. })));
        let next: TimedState = state
            .iter()
            .flat_map(|store| outcomes(store, input, output))
            .collect();
        assert!(
            output.is_some() || !next.is_empty(),
            "an unknown outcome is always allowed"
        );
        (!next.is_empty()).then_some(next)
    }

    /// None: a read narrows the deadlines it observes, so it changes the state (and may not be
    /// moved ahead of the writes it overlaps).
    fn is_read_only(&self, _input: &TimedCommand) -> bool {
        false
    }

    fn describe_op(&self, input: &TimedCommand, output: Option<&Reply>) -> String {
        let reply = output.map_or_else(|| "unknown".to_string(), describe_reply);
        let Window {
            earliest_ms,
            latest_ms,
        } = input.window;
        format!(
            "{} -> {reply} (store time {earliest_ms}..={})",
            describe_command(&input.command),
            if latest_ms == FOREVER_MS {
                "-".to_string()
            } else {
                latest_ms.to_string()
            }
        )
    }

    fn describe_state(&self, state: &TimedState) -> String {
        let stores: Vec<String> = state.iter().map(describe_store).collect();
        stores.join(" or ")
    }
}

fn describe_store(store: &TimedStore) -> String {
    let entries: Vec<String> = store
        .iter()
        .map(|(key, entry)| match entry.deadline {
            None => format!("{}: {}", show(key), show(&entry.value)),
            Some(d) => format!(
                "{}: {} (deadline {}..={})",
                show(key),
                show(&entry.value),
                d.earliest_ms,
                d.latest_ms
            ),
        })
        .collect();
    format!("{{{}}}", entries.join(", "))
}

/// The stores `input` may leave `store` in with reply `output` (any reply when `None`).
fn outcomes(store: &TimedStore, input: &TimedCommand, output: Option<&Reply>) -> Vec<TimedStore> {
    let allowed =
        |(next, reply): (TimedStore, Reply)| output.is_none_or(|o| *o == reply).then_some(next);
    if let Err(error) = input.command.validate() {
        return allowed((store.clone(), Reply::Error(error)))
            .into_iter()
            .collect();
    }
    let (db, command) = input.command.db_and_command();
    let window = input.window;
    if let Command::TimeToLive { key, unit } = command {
        let key = qualified(db, key);
        return time_to_live(store, &key, *unit, window, output);
    }
    let key = qualified(db, command.keys()[0]);
    let reads_only = !command.is_write();
    live_branches(store, &key, window, reads_only)
        .into_iter()
        .flat_map(|(store, live)| apply_live(store, &key, live, &input.command, window))
        .filter_map(allowed)
        .collect()
}

/// The ways `key` may be found at a store time in `window`: with the entry live (its deadline
/// narrowed to the window's start or later), or expired (narrowed to before the window's end;
/// a write reclaims it, a read leaves it). Each with the store so narrowed.
fn live_branches(
    store: &TimedStore,
    key: &[u8],
    window: Window,
    reads_only: bool,
) -> Vec<(TimedStore, Option<Entry>)> {
    let Some(entry) = store.get(key) else {
        return vec![(store.clone(), None)];
    };
    let Some(deadline) = entry.deadline else {
        return vec![(store.clone(), Some(entry.clone()))];
    };
    let mut branches = Vec::with_capacity(2);
    // Live at N: N <= deadline, and N >= the window's start.
    if let Some(live) = deadline.at_least(window.earliest_ms) {
        let entry = Entry {
            value: entry.value.clone(),
            deadline: Some(live),
        };
        branches.push((with(store, key, entry.clone()), Some(entry)));
    }
    // Expired at N: deadline < N <= the window's end.
    if let Some(expired) = deadline.at_most(window.latest_ms.saturating_sub(1)) {
        let next = match reads_only {
            true => with(
                store,
                key,
                Entry {
                    value: entry.value.clone(),
                    deadline: Some(expired),
                },
            ),
            false => without(store, key),
        };
        branches.push((next, None));
    }
    branches
}

/// Applies a one-key command to `store` where `key` is `live` (`None`: absent or expired and
/// already handled): every (store, reply) it may give.
fn apply_live(
    store: TimedStore,
    key: &[u8],
    live: Option<Entry>,
    command: &Command,
    window: Window,
) -> Vec<(TimedStore, Reply)> {
    let value = live.as_ref().map(|e| e.value.clone());
    let deadline = live.as_ref().and_then(|e| e.deadline);
    match command.db_and_command().1 {
        Command::Get { .. } => vec![(store, Reply::Value(value))],
        Command::Set { value, .. } => vec![(set(&store, key, value.clone(), None), Reply::Ok)],
        Command::Delete { .. } => match live {
            Some(_) => vec![(without(&store, key), Reply::Bool(true))],
            None => vec![(store, Reply::Bool(false))],
        },
        Command::Add { .. } => vec![add(store, key, live, command)],
        Command::SetExpiring {
            value: new,
            condition,
            get,
            ttl,
            ..
        } => {
            let new_deadline = match ttl {
                TtlChange::Set(d) => match relative(*d, window, ExpireName::Set) {
                    Ok(range) => Some(range),
                    Err(error) => return vec![(store, Reply::Error(error))],
                },
                TtlChange::Keep => deadline,
                TtlChange::Clear => None,
            };
            let holds = match condition {
                SetCondition::Always => true,
                SetCondition::IfAbsent => value.is_none(),
                SetCondition::IfPresent => value.is_some(),
            };
            let reply = match (*get, holds) {
                (true, _) => Reply::Value(value),
                (false, true) => Reply::Ok,
                (false, false) => Reply::Value(None),
            };
            match holds {
                true => vec![(set(&store, key, new.clone(), new_deadline), reply)],
                false => vec![(store, reply)],
            }
        }
        Command::Expire {
            deadline: new,
            condition,
            name,
            ..
        } => {
            let new_range = match relative(*new, window, *name) {
                Ok(range) => range,
                Err(error) => return vec![(store, Reply::Error(error))],
            };
            let Some(entry) = live else {
                return vec![(store, Reply::Int(0))];
            };
            expire(store, key, entry, (*new, new_range, *condition), window)
        }
        Command::Persist { .. } => match live {
            Some(Entry {
                value,
                deadline: Some(_),
            }) => vec![(set(&store, key, value, None), Reply::Int(1))],
            _ => vec![(store, Reply::Int(0))],
        },
        Command::GetEx { ttl, .. } => {
            let new_range = match ttl {
                TtlChange::Set(d) => match relative(*d, window, ExpireName::GetEx) {
                    Ok(range) => Some((*d, range)),
                    Err(error) => return vec![(store, Reply::Error(error))],
                },
                _ => None,
            };
            let Some(entry) = live else {
                return vec![(store, Reply::Value(None))];
            };
            let reply = Reply::Value(Some(entry.value.clone()));
            let stores = match (ttl, new_range) {
                (TtlChange::Set(_), Some((d, range))) => {
                    change_deadline(&store, key, entry.value, (d, range), window)
                }
                (TtlChange::Clear, _) => vec![set(&store, key, entry.value, None)],
                _ => vec![store],
            };
            stores.into_iter().map(|s| (s, reply.clone())).collect()
        }
        other => unreachable!("not a command of the timed model: {other:?}"),
    }
}

/// ADD as the untimed model computes it, on the live value; the deadline is kept.
fn add(
    store: TimedStore,
    key: &[u8],
    live: Option<Entry>,
    command: &Command,
) -> (TimedStore, Reply) {
    let plain: StoreState = live
        .iter()
        .map(|e| (key.to_vec(), e.value.clone()))
        .collect();
    let (changed, reply) = apply(&plain, command);
    let Some(changed) = changed else {
        return (store, reply);
    };
    let value = changed.get(key).expect("ADD stores its key").clone();
    let deadline = live.and_then(|e| e.deadline);
    (set(&store, key, value, deadline), reply)
}

/// EXPIRE and its family on a live key: every (store, reply) its condition allows.
fn expire(
    store: TimedStore,
    key: &[u8],
    entry: Entry,
    (new, new_range, condition): (Deadline, DeadlineRange, ExpireCondition),
    window: Window,
) -> Vec<(TimedStore, Reply)> {
    let current = entry.deadline;
    // (the current deadline narrowed, the new one narrowed) where the condition holds, and the
    // current one narrowed where it does not.
    let (holds, fails): (Option<DeadlineRange>, Option<Option<DeadlineRange>>) =
        match (condition, current) {
            (ExpireCondition::Always, _) => (Some(new_range), None),
            (ExpireCondition::NoDeadline, None) => (Some(new_range), None),
            (ExpireCondition::NoDeadline, Some(_)) => (None, Some(current)),
            (ExpireCondition::HasDeadline, Some(_)) => (Some(new_range), None),
            (ExpireCondition::HasDeadline | ExpireCondition::Later, None) => (None, Some(None)),
            (ExpireCondition::EarlierWithDeadline, None) => (None, Some(None)),
            (ExpireCondition::Earlier, None) => (Some(new_range), None),
            // GT: new > current.
            (ExpireCondition::Later, Some(c)) => (
                new_range.at_least(c.earliest_ms.saturating_add(1)),
                c.at_least(new_range.earliest_ms).map(Some),
            ),
            // LT: new < current.
            (ExpireCondition::Earlier | ExpireCondition::EarlierWithDeadline, Some(c)) => (
                new_range.at_most(c.latest_ms.saturating_sub(1)),
                c.at_most(new_range.latest_ms).map(Some),
            ),
        };
    let mut out = Vec::with_capacity(2);
    if let Some(range) = holds {
        for next in change_deadline(&store, key, entry.value.clone(), (new, range), window) {
            out.push((next, Reply::Int(1)));
        }
    }
    if let Some(current) = fails {
        out.push((set(&store, key, entry.value, current), Reply::Int(0)));
    }
    out
}

/// Gives live `key` the deadline `new` (its range `range`), or removes it if that is not after
/// the store time (Redis deletes a key whose new deadline has passed).
fn change_deadline(
    store: &TimedStore,
    key: &[u8],
    value: Vec<u8>,
    (new, range): (Deadline, DeadlineRange),
    window: Window,
) -> Vec<TimedStore> {
    match new {
        // deadline - N = ms exactly.
        Deadline::In { ms } if ms <= 0 => vec![without(store, key)],
        Deadline::In { .. } => vec![set(store, key, value, Some(range))],
        Deadline::At { ms } => {
            let mut out = Vec::with_capacity(2);
            if ms <= window.latest_ms {
                out.push(without(store, key));
            }
            if ms > window.earliest_ms {
                out.push(set(store, key, value, Some(range)));
            }
            out
        }
    }
}

/// A deadline made absolute at a store time in `window`: its range, or Redis's overflow error
/// when every time in the window overflows.
fn relative(
    deadline: Deadline,
    window: Window,
    name: ExpireName,
) -> Result<DeadlineRange, CommandError> {
    let (earliest, latest) = match deadline {
        Deadline::At { ms } => (Some(ms), Some(ms)),
        Deadline::In { ms } => (
            window.earliest_ms.checked_add(ms),
            window.latest_ms.checked_add(ms),
        ),
    };
    assert!(
        earliest.is_some() || latest.is_none(),
        "a later time overflows first"
    );
    match earliest {
        None => Err(CommandError::InvalidExpireTime(name)),
        Some(earliest) => Ok(DeadlineRange {
            earliest_ms: earliest,
            latest_ms: latest.unwrap_or(i64::MAX),
        }),
    }
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME with reply `output` (any when `None`): the stores it
/// allows, the deadline narrowed to what the reply says.
fn time_to_live(
    store: &TimedStore,
    key: &[u8],
    unit: TtlUnit,
    window: Window,
    output: Option<&Reply>,
) -> Vec<TimedStore> {
    let Some(output) = output else {
        return vec![store.clone()];
    };
    let Reply::Int(reply) = *output else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (next, live) in live_branches(store, key, window, true) {
        let allowed = match (live, reply) {
            (None, -2) => Some(next),
            (Some(Entry { deadline: None, .. }), -1) => Some(next),
            (
                Some(Entry {
                    value,
                    deadline: Some(d),
                }),
                reply,
            ) if reply >= 0 => {
                let told = told_deadline(unit, reply, window);
                let narrowed = told.and_then(|t| {
                    d.at_least(t.earliest_ms)
                        .and_then(|d| d.at_most(t.latest_ms))
                });
                narrowed.map(|d| set(&next, key, value, Some(d)))
            }
            _ => None,
        };
        out.extend(allowed);
    }
    out
}

/// The deadlines a TTL-family reply `reply` (not negative) allows for a live key read at a
/// store time in `window`, or `None` if no deadline gives that reply.
fn told_deadline(unit: TtlUnit, reply: i64, window: Window) -> Option<DeadlineRange> {
    // Redis rounds seconds to nearest: (ms + 500) / 1000.
    let rounded = |s: i64| {
        (
            s.saturating_mul(1000).saturating_sub(500).max(0),
            s.saturating_mul(1000).saturating_add(499),
        )
    };
    match unit {
        // deadline - N in [low, high], N in the window.
        TtlUnit::Millis => DeadlineRange::new(
            window.earliest_ms.saturating_add(reply),
            window.latest_ms.saturating_add(reply),
        ),
        TtlUnit::Seconds => {
            let (low, high) = rounded(reply);
            DeadlineRange::new(
                window.earliest_ms.saturating_add(low),
                window.latest_ms.saturating_add(high),
            )
        }
        TtlUnit::UnixMillis => DeadlineRange::new(reply, reply),
        TtlUnit::UnixSeconds => {
            let (low, high) = rounded(reply);
            DeadlineRange::new(if reply == 0 { i64::MIN } else { low }, high)
        }
    }
}

fn set(
    store: &TimedStore,
    key: &[u8],
    value: Vec<u8>,
    deadline: Option<DeadlineRange>,
) -> TimedStore {
    with(store, key, Entry { value, deadline })
}

fn with(store: &TimedStore, key: &[u8], entry: Entry) -> TimedStore {
    let mut next = store.clone();
    next.insert(key.to_vec(), entry);
    next
}

fn without(store: &TimedStore, key: &[u8]) -> TimedStore {
    let mut next = store.clone();
    next.remove(key);
    next
}
