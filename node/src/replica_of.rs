//! What `REPLICAOF` set on this replica (see `cmd_admin`): its own module, for the
//! connection context holds it and `cmd_admin` reads the context.

use std::sync::Mutex;

/// The Redis master `REPLICAOF` named (`host:port`), if any.
#[derive(Debug, Default)]
pub struct ReplicaOf(Mutex<Option<String>>);

impl ReplicaOf {
    pub fn get(&self) -> Option<String> {
        self.0.lock().expect("no panic while held").clone()
    }

    /// Whether this replica answers as a Redis replica (`REPLICAOF host port`).
    pub fn is_set(&self) -> bool {
        self.get().is_some()
    }

    pub fn set(&self, master: Option<String>) {
        *self.0.lock().expect("no panic while held") = master;
    }
}
