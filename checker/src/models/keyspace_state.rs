//! The store model's state: every database in one map (its own module, so the model's
//! helpers for transactions and scripts use it without reaching back into the model).

use keyspace_core::Db;
use std::collections::BTreeMap;

/// The whole store, every database; absent keys are not in the map.
pub type StoreState = BTreeMap<Vec<u8>, Vec<u8>>;

/// A key of database `db` as the model stores it.
pub fn qualified(db: Db, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(db);
    out.extend_from_slice(key);
    out
}
