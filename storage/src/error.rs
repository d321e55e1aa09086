//! What can stop the log, each with what went wrong, where, and what to do.

use std::io;
use std::path::PathBuf;

use crate::device::DeviceError;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} at offset {offset} was written by a newer keyspace (format version {found}); \
         run a build that understands it"
    )]
    NewerFormat {
        path: PathBuf,
        offset: u64,
        found: u16,
    },
    #[error(
        "the log is full at {path}: {cause}; every acknowledged write is on disk: free space \
         on that device or raise --max-log-bytes, then start the node again (it replays its \
         log and rejoins)"
    )]
    Full { path: PathBuf, cause: FullCause },
    #[error(
        "the log at {path} cannot be used after an earlier failure ({what}); restart the node \
         (it replays its log and rejoins)"
    )]
    Failed { path: PathBuf, what: String },
}

impl StorageError {
    /// The error of a device operation on `path`.
    pub fn device(path: PathBuf, error: DeviceError) -> StorageError {
        match error {
            DeviceError::NoSpace(source) => StorageError::Full {
                path,
                cause: FullCause::NoSpace(source),
            },
            DeviceError::Io(source) => StorageError::Io { path, source },
        }
    }
}

/// Why the log cannot take a write.
#[derive(Debug, thiserror::Error)]
pub enum FullCause {
    #[error(
        "a new segment of {segment_bytes} bytes would bring the log to {total_bytes} bytes, \
         over its limit of {max_bytes} bytes (--max-log-bytes)"
    )]
    Limit {
        segment_bytes: u64,
        total_bytes: u64,
        max_bytes: u64,
    },
    #[error("the device has no space left ({0})")]
    NoSpace(io::Error),
}
