//! File storage for a replica: an append-only log of [`StorageWrite`] records.
//!
//! Each record is one frame of the core codec (`FrameKind::LogRecord`: magic, version, length,
//! CRC32C, postcard body). Records go into preallocated segment files `log-NNNNNNNN.seg` in the
//! data directory; a batch of records never spans two segments. Writes are group-committed: the
//! shell [`FileLog::append`]s every `Persist` output it drained, then one [`FileLog::sync`]
//! (one `fdatasync`) makes them all durable before `handle_persisted` is called.
//!
//! Recovery ([`FileLog::open`]) decodes every frame of every segment and replays it into a
//! [`DurableState`]. The unused, zero-filled remainder of a segment ends it. A frame that fails
//! to decode at the end of the last segment, with nothing but zeros after it, is a torn write
//! that was never acknowledged: it is cut off. Any other failure — a bad checksum or garbage in
//! the middle of the log, a record from a newer format version — refuses to start, naming the
//! file and the offset, because passing over it could forget a promise or an accepted value.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use keyspace_core::codec::{self, DecodeError, FrameKind};
use keyspace_core::snapshot::{SnapshotError, SnapshotImage};
use keyspace_core::{DurableState, StorageWrite};

/// Size a new segment is preallocated to (larger when one batch needs more).
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "corrupt log record in {path} at offset {offset}: {reason}; the replica will not start \
         on a log it cannot trust (restore the data directory or rebuild this replica from an \
         empty one)"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: DecodeError,
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
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a replica needs from durable storage. The storage issue extends this with snapshots
/// and compaction.
pub trait LogStore {
    /// Queues `writes` to be written, after everything queued before.
    fn append(&mut self, writes: &[StorageWrite]);
    /// Makes every queued write durable.
    fn sync(&mut self) -> Result<(), StorageError>;
}

/// The segment-file log.
pub struct FileLog {
    dir: PathBuf,
    segment_index: u64,
    file: File,
    path: PathBuf,
    /// Where the next record goes in the active segment.
    offset: u64,
    capacity: u64,
    /// Encoded records not yet written.
    buffer: Vec<u8>,
}

impl FileLog {
    /// Opens (or creates) the log in `dir` and replays it.
    pub fn open(dir: &Path) -> Result<(FileLog, DurableState, usize), StorageError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let segments = list_segments(dir)?;
        let mut state = DurableState::default();
        let mut records = 0;
        let mut last_end = 0;
        for (i, (_, path)) in segments.iter().enumerate() {
            let is_last = i + 1 == segments.len();
            let (end, count) = replay_segment(path, is_last, &mut state)?;
            records += count;
            last_end = end;
        }
        let log = match segments.last() {
            Some((index, path)) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                let capacity = file.metadata().map_err(io_err(path))?.len();
                FileLog {
                    dir: dir.to_path_buf(),
                    segment_index: *index,
                    file,
                    path: path.clone(),
                    offset: last_end,
                    capacity,
                    buffer: Vec::new(),
                }
            }
            None => Self::create_segment(dir, 1, SEGMENT_BYTES)?,
        };
        Ok((log, state, records))
    }

    fn create_segment(dir: &Path, index: u64, bytes: u64) -> Result<FileLog, StorageError> {
        let path = dir.join(format!("log-{index:08}.seg"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        preallocate(&file, bytes).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        // The new name must survive a crash too.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
        Ok(FileLog {
            dir: dir.to_path_buf(),
            segment_index: index,
            file,
            path,
            offset: 0,
            capacity: bytes,
            buffer: Vec::new(),
        })
    }

    /// Bytes written to the active segment so far.
    pub fn position(&self) -> (u64, u64) {
        (self.segment_index, self.offset)
    }
}

impl LogStore for FileLog {
    fn append(&mut self, writes: &[StorageWrite]) {
        for write in writes {
            match write {
                // A snapshot travels as its own frames (meta, then chunks of at most 1 MiB), so
                // no frame comes near the codec's size limit however large the state grows.
                StorageWrite::Snapshot(image) => image.encode_frames(&mut self.buffer),
                _ => codec::encode(FrameKind::LogRecord, write, &mut self.buffer),
            }
        }
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let len = self.buffer.len() as u64;
        if self.offset + len > self.capacity {
            let index = self.segment_index + 1;
            let buffer = std::mem::take(&mut self.buffer);
            *self = Self::create_segment(&self.dir, index, SEGMENT_BYTES.max(len))?;
            self.buffer = buffer;
        }
        self.file
            .write_all_at(&self.buffer, self.offset)
            .map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        self.offset += len;
        self.buffer.clear();
        Ok(())
    }
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(index) = name
            .strip_prefix("log-")
            .and_then(|s| s.strip_suffix(".seg"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        segments.push((index, entry.path()));
    }
    segments.sort();
    Ok(segments)
}

/// Replays one segment; returns where its records end and how many there were.
fn replay_segment(
    path: &Path,
    is_last: bool,
    state: &mut DurableState,
) -> Result<(u64, usize), StorageError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let mut offset = 0usize;
    let mut count = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        match decode_record(rest) {
            Ok((write, used)) => {
                state.apply(&write);
                offset += used;
                count += 1;
            }
            Err(_) if all_zero(rest) => break, // the unused, preallocated remainder
            Err(DecodeError::UnsupportedVersion { found }) if found > codec::FORMAT_VERSION => {
                return Err(StorageError::NewerFormat {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    found,
                })
            }
            Err(error) if is_last && is_torn_tail(rest, &error) => {
                tracing::warn!(path = %path.display(), offset, %error, "cutting off a torn write at the end of the log");
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                let zeros = vec![0u8; rest.len()];
                file.write_all_at(&zeros, offset as u64)
                    .and_then(|_| file.sync_data())
                    .map_err(io_err(path))?;
                break;
            }
            Err(reason) => {
                return Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    reason,
                })
            }
        }
    }
    Ok((offset as u64, count))
}

/// The record at the start of `rest`: a log record frame, or a snapshot's run of frames.
fn decode_record(rest: &[u8]) -> Result<(StorageWrite, usize), DecodeError> {
    if !is_snapshot_frame(rest) {
        return codec::decode::<StorageWrite>(FrameKind::LogRecord, rest);
    }
    match SnapshotImage::decode_frames_prefix(rest) {
        Ok((image, used)) => Ok((StorageWrite::Snapshot(image), used)),
        Err(SnapshotError::Frame(error)) => Err(error),
        Err(other) => Err(DecodeError::Malformed {
            reason: other.to_string(),
        }),
    }
}

/// A failed frame is a torn (never acknowledged) write when nothing but zeros follows what it
/// could have covered: the batch it belonged to was the last one and never finished.
fn is_torn_tail(rest: &[u8], error: &DecodeError) -> bool {
    if error.is_truncated() {
        return true;
    }
    let covered = if is_snapshot_frame(rest) {
        snapshot_run_end(rest)
    } else {
        match codec::frame_len(FrameKind::LogRecord, rest) {
            Ok(len) => codec::HEADER_BYTES + len,
            Err(_) => codec::HEADER_BYTES.min(rest.len()),
        }
    };
    all_zero(&rest[covered.min(rest.len())..])
}

fn is_snapshot_frame(rest: &[u8]) -> bool {
    rest.len() >= codec::HEADER_BYTES
        && rest[..4] == codec::MAGIC
        && rest[6] == FrameKind::Snapshot as u8
}

/// Where the run of whole snapshot frames at the start of `rest` ends (at least one header).
fn snapshot_run_end(rest: &[u8]) -> usize {
    let mut at = 0;
    while let Ok(len) = codec::frame_len(FrameKind::Snapshot, &rest[at..]) {
        at += codec::HEADER_BYTES + len;
    }
    at.max(codec::HEADER_BYTES)
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

#[cfg(target_os = "linux")]
fn preallocate(file: &File, bytes: u64) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let len = libc::off_t::try_from(bytes).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: the descriptor is open and owned by `file` for the duration of the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 {
        return Ok(());
    }
    // Some file systems cannot preallocate; a sparse file is correct, only slower.
    file.set_len(bytes)
}

#[cfg(not(target_os = "linux"))]
fn preallocate(file: &File, bytes: u64) -> io::Result<()> {
    file.set_len(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyspace_core::{Ballot, LogValue};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "keyspace-storage-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn accept(slot: u64) -> StorageWrite {
        StorageWrite::Accept {
            slot,
            ballot: Ballot { round: 1, node: 1 },
            value: LogValue::Noop,
        }
    }

    #[test]
    fn synced_writes_are_replayed_after_reopen() {
        let dir = temp_dir("replay");
        let (mut log, state, _) = FileLog::open(&dir).unwrap();
        assert_eq!(state, DurableState::default());
        log.append(&[accept(1), accept(2)]);
        log.sync().unwrap();
        log.append(&[StorageWrite::Learn {
            slot: 1,
            value: LogValue::Noop,
        }]);
        log.sync().unwrap();
        drop(log);
        let (_, state, records) = FileLog::open(&dir).unwrap();
        assert_eq!(records, 3);
        assert_eq!(state.chosen.len(), 1);
        assert_eq!(state.accepted.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_tail_is_cut_off_and_the_log_stays_appendable() {
        let dir = temp_dir("torn");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[accept(1), accept(2)]);
        log.sync().unwrap();
        let (_, end) = log.position();
        drop(log);
        // Tear the second record: keep only its first bytes.
        let path = dir.join("log-00000001.seg");
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let half = end / 2 + 4;
        file.write_all_at(&vec![0u8; (end - half) as usize], half)
            .unwrap();
        let (mut log, state, records) = FileLog::open(&dir).unwrap();
        assert_eq!(records, 1);
        assert_eq!(state.accepted.len(), 1);
        log.append(&[accept(3)]);
        log.sync().unwrap();
        drop(log);
        let (_, state, _) = FileLog::open(&dir).unwrap();
        assert_eq!(state.accepted.keys().copied().collect::<Vec<_>>(), [1, 3]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corruption_before_the_tail_refuses_to_start_naming_file_and_offset() {
        let dir = temp_dir("corrupt");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[accept(1), accept(2)]);
        log.sync().unwrap();
        drop(log);
        let path = dir.join("log-00000001.seg");
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xff], 20).unwrap(); // inside the first record's body
        let err = FileLog::open(&dir).err().expect("refused");
        let text = err.to_string();
        assert!(
            text.contains("log-00000001.seg") && text.contains("offset 0"),
            "{text}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newer_format_version_is_refused_by_name() {
        let dir = temp_dir("version");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[accept(1)]);
        log.sync().unwrap();
        drop(log);
        let path = dir.join("log-00000001.seg");
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[9], 4).unwrap();
        let err = FileLog::open(&dir).err().expect("refused");
        assert!(
            matches!(err, StorageError::NewerFormat { found: 9, .. }),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_snapshot_of_many_chunks_is_replayed_after_reopen() {
        use keyspace_core::command::{ClientRequest, Command};
        use keyspace_core::kv::{StateMachine, StateMachineConfig};
        let mut state = StateMachine::new(StateMachineConfig::default());
        let requests: Vec<ClientRequest> = (0..3_000u64)
            .map(|i| ClientRequest {
                client_id: 1,
                seq: 1 + i,
                command: Command::Set {
                    key: format!("key{i:05}").into_bytes(),
                    value: vec![b'v'; 1_000],
                },
            })
            .collect();
        for (i, chunk) in requests.chunks(60).enumerate() {
            state.apply_batch(1 + i as u64, chunk);
        }
        let image = SnapshotImage::capture(&state, 9, Ballot::ZERO);
        assert!(image.meta.body_len > 2 * 1024 * 1024, "several chunks");
        let dir = temp_dir("snapshot");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[accept(1), StorageWrite::Snapshot(image.clone()), accept(2)]);
        log.sync().unwrap();
        drop(log);
        let (_, recovered, records) = FileLog::open(&dir).unwrap();
        assert_eq!(records, 3);
        assert_eq!(recovered.snapshot, Some(image));
        assert_eq!(recovered.accepted.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_snapshot_cut_short_at_the_end_of_the_log_is_a_torn_tail() {
        let image = SnapshotImage::capture(
            &keyspace_core::kv::StateMachine::new(Default::default()),
            0,
            Ballot::ZERO,
        );
        let dir = temp_dir("torn-snapshot");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[accept(1)]);
        log.sync().unwrap();
        let (segment, start) = log.position();
        log.append(&[StorageWrite::Snapshot(image)]);
        log.sync().unwrap();
        let (_, end) = log.position();
        drop(log);
        // The crash kept only the first half of the snapshot's bytes.
        let path = dir.join(format!("log-{segment:08}.seg"));
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let keep = (end - start) / 2;
        let zeros = vec![0u8; (end - start - keep) as usize];
        file.write_all_at(&zeros, start + keep).unwrap();
        drop(file);
        let (_, recovered, records) = FileLog::open(&dir).unwrap();
        assert_eq!(records, 1);
        assert_eq!(recovered.snapshot, None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
