//! keyspace-core: the keyspace protocol as pure state machines.
//!
//! No I/O, no clock reads, no randomness of its own, no threads (enforced by `core/clippy.toml`
//! in CI): time arrives as `now_ns` arguments, randomness from a seed the caller passes in, and
//! every effect leaves as plain data that the caller drains. The simulator and the production
//! node drive the same code.
//!
//! What the crate promises, and what it asks of the shell that drives it:
//! - [`Replica`] is the one entry point. Its module docs give the drain order: after every input,
//!   drain `poll_output` to the end, carry out `Persist` writes in order and report them with
//!   `handle_persisted`, send `Send`s best-effort, deliver `Reply`s, then ask `poll_timeout`.
//!   [`drive`] is that loop, the one every shell (simulator, node, tests) runs.
//! - Persist before send: a message that promises durable state (a promise, an accept) is
//!   emitted only after the `handle_persisted` call covering its write. A shell can therefore
//!   crash at any point without breaking Paxos, losing only what was not yet durable.
//! - Safety never depends on timing: message loss, duplication, reordering, delay, pauses and
//!   crashes can stop progress but not break agreement. The lease (reads served from memory)
//!   depends only on the configured bound on clock drift *rate* (see [`lease`]).
//! - Every record and frame goes through [`codec`], which checksums and verifies it.
//! - Invariants are asserted in release builds, and the replica checks its components' after
//!   every input (see [`replica`]): a violated one stops the replica rather than letting it
//!   corrupt data.

pub mod bits;
mod bytes;
pub mod codec;
pub mod command;
pub mod drive;
pub mod float;
pub mod integer;
pub mod kv;
pub mod types;

pub use command::*;
pub use drive::Input;
pub use types::*;
pub mod lease;
pub mod membership;
pub mod msg;
pub mod mutant;
pub mod redis;
pub mod replica;
pub mod scores;
pub mod scripting;
pub mod snapshot;
pub mod storage;
pub mod strings;

pub use membership::{Change, ChangeError, Configuration, Member, MemberKind, MemberProgress};
pub use msg::{LogValue, Message};
pub use mutant::Mutant;
pub use replica::{Output, Replica, ReplicaConfig, Role};
pub use storage::{DurableState, StorageWrite};
