//! keyspace-core: the keyspace protocol as pure state machines.
//!
//! No I/O, no clock reads, no randomness of its own, no threads: time arrives as `now_ns`
//! arguments, randomness from a seed the caller passes in, and every effect leaves as plain data
//! that the caller drains. The simulator and the production node drive the same code.

pub mod codec;
pub mod command;
pub mod kv;
pub mod types;

pub use command::*;
pub use types::*;
pub mod lease;
pub mod msg;
pub mod mutant;
pub mod replica;
pub mod storage;

pub use msg::{LogValue, Message};
pub use mutant::Mutant;
pub use replica::{Output, Replica, ReplicaConfig, Role};
pub use storage::{DurableState, StorageWrite};
