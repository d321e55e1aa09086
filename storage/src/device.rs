//! What the log engine asks of a storage device, and nothing more: numbered segments of bytes
//! that can be listed, created zero-filled, removed, read, written and synced.
//!
//! The node's device is a directory of files (`fdatasync`, preallocation, a spare segment
//! filled with zeros in the background); the simulator's is [`crate::MemoryDevice`], which
//! injects the storage fault atlas. The engine above both is the same code.

use std::io;
use std::path::PathBuf;

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The device, or the user's quota on it, has no room for the write.
    #[error("the device has no space left ({0})")]
    NoSpace(io::Error),
    #[error("{0}")]
    Io(io::Error),
}

/// Segments of bytes, each named by an index.
///
/// Writes are volatile until [`Device::sync`] covers them: a crash may keep any prefix of
/// them, cut at a sector boundary. Creating and removing a segment is durable when the call
/// returns.
pub trait Device: Send {
    /// Every segment on the device: its index and its size in bytes, in any order.
    fn segments(&mut self) -> Result<Vec<(u64, u64)>, DeviceError>;

    /// Creates segment `index`, which does not exist yet, holding at least `bytes` zeros, and
    /// makes its name durable. Returns its size.
    fn create(&mut self, index: u64, bytes: u64) -> Result<u64, DeviceError>;

    /// Removes segment `index`, durably.
    fn remove(&mut self, index: u64) -> Result<(), DeviceError>;

    /// Fills `buf` from `offset` of segment `index`. May fail when the range holds a sector
    /// that cannot be read; the engine then reads it again sector by sector.
    fn read(&mut self, index: u64, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError>;

    /// Writes `bytes` at `offset` of segment `index`, within its size.
    fn write(&mut self, index: u64, offset: u64, bytes: &[u8]) -> Result<(), DeviceError>;

    /// Makes every write to segment `index` durable.
    fn sync(&mut self, index: u64) -> Result<(), DeviceError>;

    /// Where segment `index` lives (a file's path), for messages to the user.
    fn path(&self, index: u64) -> PathBuf;

    /// Where the whole log lives (a directory), for messages to the user.
    fn location(&self) -> PathBuf;
}

/// The name of segment `index` on any device.
pub fn segment_name(index: u64) -> String {
    format!("log-{index:08}.seg")
}

/// The index a segment named `name` has, if `name` is a segment's name.
pub fn segment_index(name: &str) -> Option<u64> {
    name.strip_prefix("log-")?
        .strip_suffix(".seg")?
        .parse::<u64>()
        .ok()
}
