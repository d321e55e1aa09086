//! The interface every store offers: put, get, list and remove, nothing conditional.

use std::collections::BTreeMap;

use thiserror::Error;

/// A store failed to carry out a request (it is down, the connection broke, it answered
/// nonsense). The register counts that store as silent for the request.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct StoreError(pub String);

/// One key-value store. `list` must be atomic: the keys present at one instant.
pub trait Store {
    /// Stores `value` under `key`, replacing what was there.
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// The value under `key`, if any.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every key that starts with `prefix`, in any order.
    fn list(&mut self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Removes `key` (nothing happens when it is absent).
    fn remove(&mut self, key: &str) -> Result<(), StoreError>;
}

/// A request for one store, as the register's client emits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Put { key: String, value: Vec<u8> },
    Get { key: String },
    List { prefix: String },
    Remove { key: String },
}

/// A store's answer to a [`StoreOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreReply {
    /// Put or remove done.
    Done,
    Value(Option<Vec<u8>>),
    Keys(Vec<String>),
}

impl StoreOp {
    /// Carries the request out on `store`: the one place where a request meets a store, for
    /// the simulator, the in-memory backend and the network backends alike.
    pub fn apply<S: Store + ?Sized>(&self, store: &mut S) -> Result<StoreReply, StoreError> {
        match self {
            StoreOp::Put { key, value } => store.put(key, value).map(|()| StoreReply::Done),
            StoreOp::Get { key } => store.get(key).map(StoreReply::Value),
            StoreOp::List { prefix } => store.list(prefix).map(StoreReply::Keys),
            StoreOp::Remove { key } => store.remove(key).map(|()| StoreReply::Done),
        }
    }

    /// Whether the request can change the store.
    pub fn is_mutation(&self) -> bool {
        matches!(self, StoreOp::Put { .. } | StoreOp::Remove { .. })
    }
}

/// A store in memory (tests and the simulator).
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    map: BTreeMap<String, Vec<u8>>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// How many keys start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .count()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }
}

impl Store for MemStore {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.map.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(key).cloned())
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn remove(&mut self, key: &str) -> Result<(), StoreError> {
        self.map.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_store_lists_only_keys_under_the_prefix() {
        let mut store = MemStore::new();
        for key in ["a/1", "a/2", "ab", "b/1"] {
            store.put(key, b"v").unwrap();
        }
        let op = StoreOp::List {
            prefix: "a/".to_string(),
        };
        assert_eq!(
            op.apply(&mut store),
            Ok(StoreReply::Keys(vec!["a/1".to_string(), "a/2".to_string()]))
        );
        store.remove("a/1").unwrap();
        assert_eq!(store.count("a/"), 1);
        assert_eq!(store.get("a/1"), Ok(None));
    }
}
