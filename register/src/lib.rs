//! keyspace-register: one multi-reader multi-writer register emulated over `n` independent
//! key-value stores that offer only put, get, list and remove (after Basescu et al., "Robust
//! Data Sharing with Key-Value Stores", DSN 2012; the protocol here is this crate's own, with
//! its argument in the README).
//!
//! What it promises, with `t = (n - 1) / 2`:
//! - **Wait-free**: every operation of a correct client finishes while at most `t` stores are
//!   down, whatever other clients do, including crashing at any point. With more stores down
//!   an operation may block; it never returns a wrong value.
//! - **Any number of clients**, each with a unique client id, writing concurrently.
//! - **Regular** ([`Variant::Regular`]: reads store nothing) or **atomic**
//!   ([`Variant::Atomic`], linearizable: a read writes back what it returns unless `n - t`
//!   stores already hold it).
//! - **Two copies per store** once writes stop and a write's clean-up ran: the eternal key and
//!   the newest write-once key. While writes are concurrent each store holds at most one more
//!   copy per write in progress (and per write a crashed client left behind, until the next
//!   clean-up of that store).
//!
//! The protocol is [`Client`], a sans-IO state machine; [`Register`] drives it over real
//! [`Store`]s (one thread per store), [`RedisStore`] speaks the Redis protocol, [`MemStore`]
//! keeps a store in memory, and [`sim`] runs it under a deterministic simulator.

pub mod client;
pub mod driver;
pub mod keys;
pub mod record;
pub mod redis;
pub mod sim;
pub mod store;

pub use client::{Client, Completion, Config, Request, RequestId, Variant};
pub use driver::{Register, RegisterError};
pub use keys::{Keys, Timestamp};
pub use record::Record;
pub use redis::RedisStore;
pub use store::{MemStore, Store, StoreError, StoreOp, StoreReply};

/// Deliberately wrong clients: each must be caught by the simulator within 500 seeds.
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutant {
    /// An atomic read returns without writing back what it read.
    ReadWithoutWriteBack,
    /// A write returns once `n - t - 1` stores (at least one) acknowledged it.
    WriteBeforeQuorum,
    /// A write's clean-up also removes the newest write-once key of a store.
    GcRemovesNewest,
}

#[cfg(feature = "mutants")]
impl Mutant {
    pub const ALL: [Mutant; 3] = [
        Mutant::ReadWithoutWriteBack,
        Mutant::WriteBeforeQuorum,
        Mutant::GcRemovesNewest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mutant::ReadWithoutWriteBack => "read-without-write-back",
            Mutant::WriteBeforeQuorum => "write-before-quorum",
            Mutant::GcRemovesNewest => "gc-removes-newest",
        }
    }

    pub fn from_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|m| m.name() == name)
    }
}
