//! Keys with deadlines: the commands that set, change, clear and read them.
//!
//! Time comes from the log, never from a clock: every entry the master proposes carries its
//! time (`LogValue::TimedBatch`), applying it sets the state's `now_ms`, and each command judges
//! liveness at that time (a key is expired once `now_ms` is past its deadline, as in Redis). A
//! relative deadline (`EX 10`) becomes absolute by adding the time of the entry that applies it,
//! which is the same on every replica. Reads judge at a time their caller gives: the master's
//! lease-safe clock, or on a follower the last applied entry's time.

use super::deadlines::UnixMs;
use super::store::Store;
use crate::command::{
    CommandError, Deadline, ExpireCondition, ExpireName, Reply, SetCondition, TtlChange, TtlUnit,
};

/// `deadline` made absolute at `now_ms`; an overflow is Redis's "invalid expire time" error.
pub(crate) fn absolute(
    deadline: Deadline,
    now_ms: UnixMs,
    name: ExpireName,
) -> Result<UnixMs, CommandError> {
    match deadline {
        Deadline::At { ms } => Ok(ms),
        Deadline::In { ms } => {
            let at = now_ms.checked_add(ms);
            assert!(at.is_none_or(|at| (at >= now_ms) == (ms >= 0)), "no wrap");
            at.ok_or(CommandError::InvalidExpireTime(name))
        }
    }
}

/// SET with its options (NX/XX, GET, EX/PX/EXAT/PXAT/KEEPTTL); the key's expiry was judged
/// already (an expired key is absent).
pub(crate) fn set_expiring(
    store: &mut Store,
    key: &[u8],
    value: &[u8],
    (condition, get): (SetCondition, bool),
    ttl: TtlChange,
    now_ms: UnixMs,
) -> Reply {
    let deadline = match ttl {
        TtlChange::Set(deadline) => match absolute(deadline, now_ms, ExpireName::Set) {
            Ok(at) => Some(at),
            Err(error) => return Reply::Error(error),
        },
        TtlChange::Keep | TtlChange::Clear => None,
    };
    let old = store.get(key).cloned();
    let holds = match condition {
        SetCondition::Always => true,
        SetCondition::IfAbsent => !store.exists(key),
        SetCondition::IfPresent => store.exists(key),
    };
    if holds {
        match ttl {
            TtlChange::Keep => store.insert(key.to_vec(), value.to_vec()),
            _ => store.put(key.to_vec(), value.to_vec()),
        }
        if deadline.is_some() {
            store.set_deadline(key, deadline);
        }
        assert_eq!(store.get(key).map(Vec::as_slice), Some(value), "SET stored");
        if ttl == TtlChange::Clear {
            assert_eq!(
                store.deadlines.get(key),
                None,
                "a plain SET clears the deadline"
            );
        }
    }
    match (get, holds) {
        (true, _) => Reply::Value(old),
        (false, true) => Reply::Ok,
        (false, false) => Reply::Value(None),
    }
}

/// EXPIRE and its family.
pub(crate) fn expire(
    store: &mut Store,
    key: &[u8],
    deadline: Deadline,
    (condition, name): (ExpireCondition, ExpireName),
    now_ms: UnixMs,
) -> Reply {
    let at = match absolute(deadline, now_ms, name) {
        Ok(at) => at,
        Err(error) => return Reply::Error(error),
    };
    if !store.exists(key) {
        return Reply::Int(0);
    }
    let current = store.deadlines.get(key);
    let holds = match condition {
        ExpireCondition::Always => true,
        ExpireCondition::NoDeadline => current.is_none(),
        ExpireCondition::HasDeadline => current.is_some(),
        ExpireCondition::Later => current.is_some_and(|c| at > c),
        ExpireCondition::Earlier => current.is_none_or(|c| at < c),
        ExpireCondition::EarlierWithDeadline => current.is_some_and(|c| at < c),
    };
    if !holds {
        return Reply::Int(0);
    }
    change_deadline(store, key, at, now_ms);
    assert!(
        !store.exists(key) || store.deadlines.get(key) == Some(at),
        "EXPIRE sets the deadline or deletes the key"
    );
    Reply::Int(1)
}

/// Gives present `key` deadline `at`, or removes it if `at` is not after `now_ms` (Redis
/// deletes a key whose new deadline has passed).
fn change_deadline(store: &mut Store, key: &[u8], at: UnixMs, now_ms: UnixMs) {
    if at <= now_ms {
        store.remove(key).expect("present: checked by the caller");
    } else {
        store.set_deadline(key, Some(at));
    }
}

/// PERSIST.
pub(crate) fn persist(store: &mut Store, key: &[u8]) -> Reply {
    if !store.exists(key) || store.deadlines.get(key).is_none() {
        return Reply::Int(0);
    }
    store.set_deadline(key, None);
    assert_eq!(
        store.deadlines.get(key),
        None,
        "PERSIST removes the deadline"
    );
    Reply::Int(1)
}

/// GETEX.
pub(crate) fn get_ex(store: &mut Store, key: &[u8], ttl: TtlChange, now_ms: UnixMs) -> Reply {
    let at = match ttl {
        TtlChange::Set(deadline) => match absolute(deadline, now_ms, ExpireName::GetEx) {
            Ok(at) => Some(at),
            Err(error) => return Reply::Error(error),
        },
        _ => None,
    };
    let Some(value) = store.get(key).cloned() else {
        return Reply::Value(None);
    };
    match (ttl, at) {
        (TtlChange::Set(_), Some(at)) => change_deadline(store, key, at, now_ms),
        (TtlChange::Clear, _) if store.deadlines.get(key).is_some() => {
            store.set_deadline(key, None)
        }
        _ => {}
    }
    Reply::Value(Some(value))
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME at `now_ms`.
pub(crate) fn time_to_live(store: &Store, key: &[u8], unit: TtlUnit, now_ms: UnixMs) -> Reply {
    if !store.is_live(key, now_ms) {
        return Reply::Int(-2);
    }
    let Some(at) = store.deadlines.get(key) else {
        return Reply::Int(-1);
    };
    assert!(at >= now_ms, "a live key's deadline is not before now");
    let ms = match unit {
        TtlUnit::Seconds | TtlUnit::Millis => at.saturating_sub(now_ms).max(0),
        TtlUnit::UnixSeconds | TtlUnit::UnixMillis => at.max(0),
    };
    assert!(ms >= 0, "a time to live is not negative");
    match unit {
        TtlUnit::Millis | TtlUnit::UnixMillis => Reply::Int(ms),
        TtlUnit::Seconds | TtlUnit::UnixSeconds => Reply::Int(ms.saturating_add(500) / 1000),
    }
}
