//! Applying the string and bit writes (SETRANGE, INCRBYFLOAT, SETBIT, BITOP, RENAMENX, COPY) to
//! a database; the value arithmetic itself is in [`crate::strings`] and [`crate::bits`].

use super::databases::Databases;
use super::store::Store;
use crate::bits;
use crate::command::{BitOp, CommandError, Db, Reply, VALUE_MAX_BYTES};
use crate::strings::{self as text, FloatError};

fn int_from_len(len: usize) -> i64 {
    assert!(len <= VALUE_MAX_BYTES, "a value of {len} bytes");
    i64::try_from(len).expect("a bounded length fits in i64")
}

/// SETRANGE (its offset and size checked by `Command::validate`).
pub(super) fn set_range(store: &mut Store, key: &[u8], offset: u64, patch: &[u8]) -> Reply {
    let old = store.get(key);
    if patch.is_empty() {
        return Reply::Int(int_from_len(old.map_or(0, Vec::len)));
    }
    let mut value = old.cloned().unwrap_or_default();
    let offset = usize::try_from(offset).expect("validated below the value limit");
    text::set_range(&mut value, offset, patch);
    let len = value.len();
    store.insert(key.to_vec(), value);
    Reply::Int(int_from_len(len))
}

/// INCRBYFLOAT.
pub(super) fn add_float(store: &mut Store, key: &[u8], delta: &[u8]) -> Reply {
    match text::add_float(store.get(key).map(Vec::as_slice), delta) {
        Ok(new) => {
            store.insert(key.to_vec(), new.clone());
            Reply::Value(Some(new))
        }
        Err(FloatError::NotAFloat) => Reply::Error(CommandError::NotAFloat),
        Err(FloatError::NanOrInfinity) => Reply::Error(CommandError::NanOrInfinity),
    }
}

/// SETBIT (its offset checked by `Command::validate`).
pub(super) fn set_bit(store: &mut Store, key: &[u8], offset: u64, bit: bool) -> Reply {
    let mut value = store.get(key).cloned().unwrap_or_default();
    let old = bits::set_bit(&mut value, offset, bit);
    store.insert(key.to_vec(), value);
    Reply::Int(i64::from(old))
}

/// BITOP: `dest` gets the result, or is removed when it is empty.
pub(super) fn bit_op(store: &mut Store, op: BitOp, dest: &[u8], keys: &[Vec<u8>]) -> Reply {
    let sources: Vec<&[u8]> = (keys.iter())
        .map(|k| store.get(k).map_or(&[][..], Vec::as_slice))
        .collect();
    let result = bits::bit_op(op, &sources);
    let len = result.len();
    match len {
        0 => drop(store.remove(dest)),
        _ => store.insert(dest.to_vec(), result),
    }
    Reply::Int(int_from_len(len))
}

/// RENAMENX.
pub(super) fn rename_if_absent(store: &mut Store, from: &[u8], to: &[u8]) -> Reply {
    if !store.exists(from) {
        return Reply::Error(CommandError::NoSuchKey);
    }
    if from == to || store.exists(to) {
        return Reply::Bool(false);
    }
    let deadline_ms = store.deadlines.get(from);
    let value = store.remove(from).expect("present: checked above");
    store.put_with_deadline(to.to_vec(), value, deadline_ms);
    assert!(!store.exists(from), "RENAMENX leaves no copy behind");
    Reply::Bool(true)
}

/// COPY from database `db` to `to_db` (this one if `None`).
pub(super) fn copy(
    data: &mut Databases,
    db: Db,
    (from, to): (&[u8], &[u8]),
    to_db: Option<Db>,
    replace: bool,
) -> Reply {
    let to_db = to_db.unwrap_or(db);
    if to_db == db && from == to {
        return Reply::Error(CommandError::SameObject);
    }
    let Some(value) = data.db(db).entry(from) else {
        return Reply::Bool(false);
    };
    if !replace && data.db(to_db).exists(to) {
        return Reply::Bool(false);
    }
    let deadline_ms = data.db(db).deadlines.get(from);
    data.db_mut(to_db)
        .put_with_deadline(to.to_vec(), value, deadline_ms);
    assert!(data.db(db).exists(from), "COPY keeps the source");
    Reply::Bool(true)
}
