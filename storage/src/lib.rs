//! keyspace-storage: the one log engine of keyspace, pure like `keyspace-core`.
//!
//! A replica's durable state is an append-only log of [`StorageWrite`] records in numbered
//! segments. This crate owns everything about that log — segment layout, framing, replay, the
//! torn-tail and damage rules, resynchronisation after damage, which segments compaction may
//! delete, the size limit — and does no I/O of its own (enforced by `storage/clippy.toml`): it
//! runs on a [`Device`]. The node gives it files with `fdatasync`; the simulator gives it a
//! [`MemoryDevice`] that injects the storage fault atlas, so the simulator proves the very
//! engine the node runs.
//!
//! What it promises:
//! - Replaying a log yields the [`DurableState`] of every record made durable by
//!   [`Log::sync`], or that state with `damaged` set when anything failed verification other
//!   than a torn tail (a write a crash cut short, which was never acknowledged). Damage may
//!   make the state forget records; it never makes it hold one that was not written.
//! - Every record is checksummed and sealed with its own place (see [`format`]) and verified
//!   when read; a misdirected write is caught even on a record boundary.
//! - Deleting segments after compaction never changes what a replay yields.
//!
//! [`StorageWrite`]: keyspace_core::StorageWrite
//! [`DurableState`]: keyspace_core::DurableState

mod device;
mod error;
pub mod format;
mod log;
mod memory;
mod replay;
mod summary;

pub use device::{segment_index, segment_name, Device, DeviceError};
pub use error::{FullCause, StorageError};
pub use log::Log;
pub use log::{
    LogConfig, Opened, StorageLimits, FIRST_SEGMENT_BYTES, SEGMENT_BYTES, SEGMENT_BYTES_MIN,
};
pub use memory::{MemoryDevice, Pick};
pub use replay::{read_blocks, READ_BLOCK_BYTES, READ_SECTOR_BYTES, UNREADABLE_FILL};
