//! File storage for a replica: an append-only log of [`StorageWrite`] records.
//!
//! Each record is one frame of the core codec (`FrameKind::LogRecord`: magic, version, length,
//! CRC32C, postcard body); a snapshot is its own run of `FrameKind::Snapshot` frames. Records go
//! into segment files `log-NNNNNNNN.seg` in the data directory, written with zeros before use
//! (a spare filled in the background) or else preallocated; a batch of records never spans
//! two segments. Writes are group-committed: the shell [`FileLog::append`]s every
//! `Persist` output it drained, then one [`FileLog::sync`] (one `fdatasync`) makes them all
//! durable before `handle_persisted` is called.
//!
//! Recovery ([`FileLog::open`]) decodes every frame of every segment and replays it into a
//! [`DurableState`]. The unused, zero-filled remainder of a segment ends it. A frame that fails
//! to decode at the end of the last segment, with nothing but zeros after it, is a torn write
//! that was never acknowledged: it is cut off, and that is not damage. Any other failure — a bad
//! checksum or garbage in the middle of the log, a sector that cannot be read — is skipped: the
//! replay resumes at the next offset where a whole record verifies, and the state comes back
//! with `damaged` set. The replica may then have forgotten a promise or an accepted value, so
//! the core does not vote until it has recovered from its peers (protocol-aware recovery); the
//! log goes on in a fresh segment. A record of a newer format version refuses to start, naming
//! the file and the offset: that is a newer build's data, not damage.
//!
//! Segments are deleted once compaction has made them redundant: after a synced `Compact`
//! record, every segment but the active one whose log entries are all at or below the
//! compaction point and that a later segment's intact snapshot supersedes. Every new segment
//! opens with a `Promise` record of the highest ballot written so far, so an old segment is
//! never the only holder of the promise. While a replica recovers from damaged storage nothing
//! is deleted (the shell calls [`FileLog::set_recovered`] when it has).
//!
//! [`StorageLimits::max_bytes`] bounds the bytes all segments take together; a sync that would
//! need more, or that the device refuses for lack of space, fails with [`StorageError::Full`]
//! before anything of it is acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use keyspace_core::codec::{self, DecodeError, FrameKind};
use keyspace_core::snapshot::{SnapshotError, SnapshotImage};
use keyspace_core::{Ballot, DurableState, Slot, StorageWrite};

/// Size a new segment is preallocated to (larger when one batch needs more).
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest segment size [`StorageLimits`] chooses for a small `max_bytes`.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// Size of the first segment of a new log, written with zeros before use (see `Spare`).
pub const FIRST_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// The next segment, zero-filled in the background while the active one fills.
const SPARE_NAME: &str = "spare-segment.tmp";
/// A segment is read in blocks of this size at open ...
const READ_BLOCK_BYTES: usize = 64 * 1024;
/// ... and a block that fails to read is read again sector by sector.
const READ_SECTOR_BYTES: usize = 512;
/// The unit a write reaches the disk in whole: a crash tears a write only at a multiple of it.
const TORN_SECTOR_BYTES: usize = 512;
/// What stands in for a sector that cannot be read: never a valid frame header.
const UNREADABLE_FILL: u8 = 0xff;

/// How large the log may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageLimits {
    /// Size a new segment is preallocated to (larger when one batch needs more).
    pub segment_bytes: u64,
    /// Most bytes all segments together may take; `None`: what the device holds.
    pub max_bytes: Option<u64>,
}

impl Default for StorageLimits {
    fn default() -> Self {
        StorageLimits {
            segment_bytes: SEGMENT_BYTES,
            max_bytes: None,
        }
    }
}

impl StorageLimits {
    /// Limits for a log of at most `max_bytes`: segments small enough that several fit, so
    /// compaction can free some before the limit is reached.
    pub fn with_max_bytes(max_bytes: Option<u64>) -> Self {
        let segment_bytes = match max_bytes {
            Some(max) => (max / 4).clamp(SEGMENT_BYTES_MIN, SEGMENT_BYTES),
            None => SEGMENT_BYTES,
        };
        StorageLimits {
            segment_bytes,
            max_bytes,
        }
    }
}

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

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| match source.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => StorageError::Full {
            path: path.to_path_buf(),
            cause: FullCause::NoSpace(source),
        },
        _ => StorageError::Io {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// What a replica needs from durable storage.
pub trait LogStore {
    /// Queues `writes` to be written, after everything queued before.
    fn append(&mut self, writes: &[StorageWrite]);
    /// Makes every queued write durable.
    fn sync(&mut self) -> Result<(), StorageError>;
}

/// What the intact records of one segment hold, as far as deleting it is concerned.
#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    /// Highest slot of an Accept, Learn or Chosen record.
    max_slot: Option<Slot>,
    /// Highest ballot of a Promise or Accept record.
    max_ballot: Ballot,
    /// Highest slot an intact snapshot covers.
    snapshot_slot: Option<Slot>,
    /// Highest compaction point.
    compact_through: Option<Slot>,
    /// Something in it failed verification at open.
    damaged: bool,
}

impl Summary {
    fn note(&mut self, write: &StorageWrite) {
        match write {
            StorageWrite::Promise { ballot } => self.max_ballot = self.max_ballot.max(*ballot),
            StorageWrite::Accept { slot, ballot, .. } => {
                self.max_ballot = self.max_ballot.max(*ballot);
                self.max_slot = self.max_slot.max(Some(*slot));
            }
            StorageWrite::Learn { slot, .. } | StorageWrite::Chosen { slot, .. } => {
                self.max_slot = self.max_slot.max(Some(*slot));
            }
            StorageWrite::Snapshot(image) => {
                self.snapshot_slot = self.snapshot_slot.max(Some(image.meta.slot));
            }
            StorageWrite::Compact { through_slot } => {
                self.compact_through = self.compact_through.max(Some(*through_slot));
            }
        }
    }

    fn join(&mut self, other: Summary) {
        self.max_slot = self.max_slot.max(other.max_slot);
        self.max_ballot = self.max_ballot.max(other.max_ballot);
        self.snapshot_slot = self.snapshot_slot.max(other.snapshot_slot);
        self.compact_through = self.compact_through.max(other.compact_through);
        self.damaged |= other.damaged;
    }

    /// Whether replaying the log without this segment gives the same state, given the
    /// compaction point and what the segments kept after it hold: its log entries are all
    /// compacted, a later snapshot covers them and its own, a later record holds its ballot.
    fn redundant(&self, through: Slot, later: &Summary) -> bool {
        let covered = |slot: Option<Slot>| slot.is_none_or(|s| s <= through);
        let superseded = later
            .snapshot_slot
            .is_some_and(|s| s >= through && self.snapshot_slot.is_none_or(|own| own <= s));
        covered(self.max_slot)
            && covered(self.compact_through)
            && superseded
            && self.max_ballot <= later.max_ballot
    }
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    index: u64,
    path: PathBuf,
    /// Its size on disk (preallocated).
    bytes: u64,
    summary: Summary,
}

/// The segment-file log.
pub struct FileLog {
    dir: PathBuf,
    limits: StorageLimits,
    /// Every segment on disk, oldest first; the last one is the active one.
    segments: Vec<Segment>,
    /// The active segment, open for writing.
    file: File,
    /// Where the next record goes in the active segment.
    offset: u64,
    /// Encoded records not yet written.
    buffer: Vec<u8>,
    /// What the buffered records hold.
    buffered: Summary,
    /// The highest compaction point made durable.
    compacted_through: Option<Slot>,
    /// A compaction was synced since segments were last considered for deletion.
    collect_due: bool,
    /// The log was damaged at open and the replica has not recovered yet: delete nothing.
    awaiting_recovery: bool,
    /// The next segment, being written with zeros in the background.
    spare: Option<Spare>,
}

/// A segment file written with zeros ahead of use. The blocks of a segment that was only
/// preallocated are marked unwritten, so the first `fdatasync` over each of them also writes
/// the file's extent metadata; over blocks that already hold zeros it writes the data alone
/// (on this project's machine 0.09 ms against 0.15 ms for one sync, 0.23 against 0.33 ms with
/// three processes syncing at once). Filling 64 MiB takes a moment, so the next segment is
/// filled on a thread of its own while the active one fills, under a name recovery ignores,
/// and renamed into the log when it is needed and ready; if it is not, the log goes on in a
/// preallocated segment as before. Used only when the log has no size limit (a spare would
/// count against it) and not under madsim (no threads of its own there).
struct Spare {
    path: PathBuf,
    bytes: u64,
    filling: std::thread::JoinHandle<io::Result<File>>,
    /// Set to stop filling (the log is being dropped).
    cancel: Arc<AtomicBool>,
}

impl Spare {
    fn start(dir: &Path, bytes: u64) -> Option<Spare> {
        let path = dir.join(SPARE_NAME);
        let target = path.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let filling = std::thread::Builder::new()
            .name("segment-fill".into())
            .spawn(move || {
                let began = std::time::Instant::now();
                let filled = zero_filled(&target, bytes, &stop, SPARE_REST_PER_BUSY);
                let took_ms = began.elapsed().as_millis() as u64;
                tracing::debug!(took_ms, bytes, ok = filled.is_ok(), "spare segment filled");
                filled
            })
            .ok()?;
        Some(Spare {
            path,
            bytes,
            filling,
            cancel,
        })
    }
}

/// Whether this log fills segments with zeros ahead of use (see [`Spare`]).
fn spares_enabled(limits: StorageLimits) -> bool {
    limits.max_bytes.is_none() && !cfg!(madsim)
}

/// Bytes of zeros written and synced at a time, so the log's own syncs never queue behind a
/// whole file (one chunk on this project's machine: about 0.8 ms).
const ZERO_CHUNK_BYTES: usize = 256 * 1024;

/// A spare's filling thread rests this many times as long as each chunk took before the next.
/// The log's `fdatasync` waits for every write the device holds, the spare's too: with three
/// replicas on one disk filling 64 MiB each as fast as it goes, SETs stalled for a second at
/// every roll-over (`redis-benchmark -c 64`: 4,000 to 10,000 ops/s in that second against
/// 24,000 to 33,000 around it). Resting keeps the disk free for the log three quarters of the
/// time; three spares filling at once still take about 2 s, and a segment lasts 10 s or more.
const SPARE_REST_PER_BUSY: u32 = 3;

/// Creates `path` (replacing any file there) holding `bytes` zeros, durably, unless `cancel`
/// is set first (then the file is removed). After each chunk it rests `rest_per_busy` times as
/// long as the chunk took (0: no rest).
fn zero_filled(
    path: &Path,
    bytes: u64,
    cancel: &AtomicBool,
    rest_per_busy: u32,
) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let zeros = vec![0u8; ZERO_CHUNK_BYTES];
    let mut at = 0;
    while at < bytes {
        if cancel.load(Ordering::Relaxed) {
            drop(file);
            let _ = fs::remove_file(path);
            return Err(io::ErrorKind::Interrupted.into());
        }
        let began = std::time::Instant::now();
        let n = (bytes - at).min(zeros.len() as u64);
        file.write_all_at(&zeros[..n as usize], at)?;
        file.sync_data()?;
        at += n;
        if rest_per_busy > 0 {
            std::thread::sleep(began.elapsed() * rest_per_busy);
        }
    }
    file.sync_all()?;
    Ok(file)
}

/// Most capacity the write buffer keeps between syncs (a snapshot's frames make it grow to
/// the snapshot's size once).
const BUFFER_KEPT_BYTES_MAX: usize = 4 * 1024 * 1024;

impl FileLog {
    /// Opens (or creates) the log in `dir` with the default limits and replays it: the log, the
    /// state it holds (`damaged` when a record failed verification), and the number of records.
    pub fn open(dir: &Path) -> Result<(FileLog, DurableState, usize), StorageError> {
        Self::open_with(dir, StorageLimits::default())
    }

    /// [`FileLog::open`] with the given limits.
    pub fn open_with(
        dir: &Path,
        limits: StorageLimits,
    ) -> Result<(FileLog, DurableState, usize), StorageError> {
        assert!(
            limits.segment_bytes > 0,
            "a segment holds at least one byte"
        );
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let found = list_segments(dir)?;
        let count = found.len();
        let mut replay = Replay::default();
        let mut segments = Vec::with_capacity(count.max(1));
        let mut end = 0;
        for (i, (index, path)) in found.into_iter().enumerate() {
            let (segment_end, summary, bytes) = replay_segment(&path, i + 1 == count, &mut replay)?;
            end = segment_end;
            segments.push(Segment {
                index,
                path,
                bytes,
                summary,
            });
        }
        let (state, records, compacted_through) = replay.finish();
        let file = match segments.last() {
            Some(active) => OpenOptions::new()
                .read(true)
                .write(true)
                .open(&active.path)
                .map_err(io_err(&active.path))?,
            None => {
                let (file, segment) = if spares_enabled(limits) {
                    let bytes = limits.segment_bytes.min(FIRST_SEGMENT_BYTES);
                    create_zeroed_segment(dir, 1, bytes)?
                } else {
                    create_segment(dir, 1, limits.segment_bytes, &[], limits)?
                };
                segments.push(segment);
                file
            }
        };
        // A spare left by a crash may be half filled: start it again.
        let _ = fs::remove_file(dir.join(SPARE_NAME));
        let active = segments.last().expect("at least one segment");
        // After damage the log goes on in a new segment: nothing is written next to bytes
        // that failed verification.
        let offset = if active.summary.damaged {
            active.bytes
        } else {
            end
        };
        let mut log = FileLog {
            dir: dir.to_path_buf(),
            limits,
            segments,
            file,
            offset,
            buffer: Vec::new(),
            buffered: Summary::default(),
            compacted_through,
            collect_due: compacted_through.is_some(),
            awaiting_recovery: state.damaged,
            spare: None,
        };
        log.start_spare();
        Ok((log, state, records))
    }

    /// The replica no longer recovers from damaged storage: segments that failed verification
    /// at open may be deleted once compaction has made them redundant (at the next sync).
    pub fn set_recovered(&mut self) {
        if self.awaiting_recovery {
            self.awaiting_recovery = false;
            self.collect_due = self.compacted_through.is_some();
        }
    }

    /// The active segment's index and the bytes written to it so far.
    pub fn position(&self) -> (u64, u64) {
        (self.active().index, self.offset)
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("the active segment")
    }

    /// The highest ballot of any Promise or Accept record synced.
    fn max_ballot(&self) -> Ballot {
        let synced = self.segments.iter().map(|s| s.summary.max_ballot);
        synced.max().unwrap_or(Ballot::ZERO)
    }

    /// Continues the log in a new segment large enough for the buffer, which it opens with
    /// the highest ballot so far, so no older segment is the only holder of the promise.
    fn roll_over(&mut self) -> Result<(), StorageError> {
        let promise = StorageWrite::Promise {
            ballot: self.max_ballot(),
        };
        let mut head = Vec::new();
        codec::encode(FrameKind::LogRecord, &promise, &mut head);
        let needed = (head.len() + self.buffer.len()) as u64;
        let bytes = self.limits.segment_bytes.max(needed);
        let index = self.active().index + 1;
        let (file, segment) = match self.take_spare(index, needed)? {
            Some(ready) => ready,
            None => create_segment(&self.dir, index, bytes, &self.segments, self.limits)?,
        };
        self.start_spare();
        self.file = file;
        self.offset = 0;
        self.segments.push(segment);
        head.append(&mut self.buffer);
        self.buffer = head;
        self.buffered.note(&promise);
        Ok(())
    }

    /// Starts filling the next segment with zeros, unless one is being filled already.
    fn start_spare(&mut self) {
        if self.spare.is_none() && spares_enabled(self.limits) {
            self.spare = Spare::start(&self.dir, self.limits.segment_bytes);
        }
    }

    /// The spare as segment `index`, if it is filled and holds `needed` bytes; otherwise
    /// `None` (a spare still filling is kept for the roll-over after this one).
    fn take_spare(
        &mut self,
        index: u64,
        needed: u64,
    ) -> Result<Option<(File, Segment)>, StorageError> {
        let ready = self
            .spare
            .as_ref()
            .is_some_and(|s| s.filling.is_finished() && s.bytes >= needed);
        if !ready {
            return Ok(None);
        }
        let spare = self.spare.take().expect("checked");
        let file = match spare.filling.join() {
            Ok(Ok(file)) => file,
            Ok(Err(error)) => {
                tracing::warn!(path = %spare.path.display(), %error, "cannot fill a spare log segment; preallocating instead");
                let _ = fs::remove_file(&spare.path);
                return Ok(None);
            }
            Err(_) => return Ok(None),
        };
        let path = self.dir.join(segment_name(index));
        fs::rename(&spare.path, &path).map_err(io_err(&path))?;
        named(&self.dir, index, path, spare.bytes, file).map(Some)
    }

    /// Deletes every segment but the active one that compaction has made redundant, unless
    /// the replica still recovers from damage found at open.
    fn collect(&mut self) {
        self.collect_due = false;
        let Some(through) = self.compacted_through else {
            return;
        };
        // From the newest down, against what the segments kept after each one hold.
        let mut later = self.active().summary;
        let mut doomed = Vec::new();
        for (i, segment) in self.segments.iter().enumerate().rev().skip(1) {
            if segment.summary.redundant(through, &later) {
                doomed.push(i);
            } else {
                later.join(segment.summary);
            }
        }
        if doomed.is_empty() {
            return;
        }
        let mut deleted = 0;
        for i in doomed {
            let path = &self.segments[i].path;
            match fs::remove_file(path) {
                Ok(()) => {
                    self.segments.remove(i);
                    deleted += 1;
                }
                // Harmless: it replays to the same state; the next compaction tries again.
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot delete a redundant log segment")
                }
            }
        }
        if let Err(error) = File::open(&self.dir).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot sync the data directory after deleting log segments");
        }
        tracing::info!(
            deleted,
            through,
            "deleted log segments compaction made redundant"
        );
    }
}

impl Drop for FileLog {
    /// Stops a spare still filling (within one 1 MiB write), waits for its thread and removes
    /// the spare, so nothing writes into the directory or is left in it once the log is gone.
    fn drop(&mut self) {
        if let Some(spare) = self.spare.take() {
            spare.cancel.store(true, Ordering::Relaxed);
            let _ = spare.filling.join();
            let _ = fs::remove_file(&spare.path);
        }
    }
}

impl LogStore for FileLog {
    fn append(&mut self, writes: &[StorageWrite]) {
        for write in writes {
            self.buffered.note(write);
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
        if self.offset + self.buffer.len() as u64 > self.active().bytes {
            self.roll_over()?;
        }
        let path = &self.active().path;
        self.file
            .write_all_at(&self.buffer, self.offset)
            .and_then(|()| self.file.sync_data())
            .map_err(io_err(path))?;
        self.offset += self.buffer.len() as u64;
        self.buffer.clear();
        if self.buffer.capacity() > BUFFER_KEPT_BYTES_MAX {
            self.buffer = Vec::new(); // a snapshot passed through: give its memory back
        }
        let synced = std::mem::take(&mut self.buffered);
        if synced.compact_through > self.compacted_through {
            self.compacted_through = synced.compact_through;
            self.collect_due = true;
        }
        self.segments
            .last_mut()
            .expect("the active segment")
            .summary
            .join(synced);
        if self.collect_due && !self.awaiting_recovery {
            self.collect();
        }
        Ok(())
    }
}

/// The file name of segment `index`.
fn segment_name(index: u64) -> String {
    format!("log-{index:08}.seg")
}

/// Creates segment `index` of `bytes` zeros (see [`Spare`]), durably named.
fn create_zeroed_segment(
    dir: &Path,
    index: u64,
    bytes: u64,
) -> Result<(File, Segment), StorageError> {
    let path = dir.join(segment_name(index));
    let file = zero_filled(&path, bytes, &AtomicBool::new(false), 0).map_err(io_err(&path))?;
    named(dir, index, path, bytes, file)
}

/// Creates segment `index` of `bytes` bytes, preallocated, if the limit leaves room for it
/// next to `existing`.
fn create_segment(
    dir: &Path,
    index: u64,
    bytes: u64,
    existing: &[Segment],
    limits: StorageLimits,
) -> Result<(File, Segment), StorageError> {
    let path = dir.join(segment_name(index));
    let total_bytes = existing.iter().map(|s| s.bytes).sum::<u64>() + bytes;
    if let Some(max_bytes) = limits.max_bytes.filter(|max| total_bytes > *max) {
        let cause = FullCause::Limit {
            segment_bytes: bytes,
            total_bytes,
            max_bytes,
        };
        return Err(StorageError::Full { path, cause });
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(&path))?;
    if let Err(error) = preallocate(&file, bytes).and_then(|()| file.sync_all()) {
        let _ = fs::remove_file(&path); // an empty name would only clutter the directory
        return Err(io_err(&path)(error));
    }
    named(dir, index, path, bytes, file)
}

/// Segment `index`, now that `file` at `path` is ready: its name is made durable first.
fn named(
    dir: &Path,
    index: u64,
    path: PathBuf,
    bytes: u64,
    file: File,
) -> Result<(File, Segment), StorageError> {
    // The new name must survive a crash too.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    let segment = Segment {
        index,
        path,
        bytes,
        summary: Summary::default(),
    };
    Ok((file, segment))
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

/// The state replayed so far, and what decides at the end whether it is damaged.
#[derive(Default)]
struct Replay {
    state: DurableState,
    records: usize,
    /// The highest slot of a Chosen record whose Accept record was not there.
    orphan_chosen: Option<Slot>,
    compacted_through: Option<Slot>,
}

impl Replay {
    fn apply(&mut self, write: &StorageWrite) {
        self.records += 1;
        match write {
            StorageWrite::Chosen { slot, ballot }
                if self.state.accepted.get(slot).map(|(b, _)| b) != Some(ballot) =>
            {
                // Its accept was lost, or was in a segment deleted after compaction: only a
                // compaction point at or above the slot tells the two apart, and it may come
                // later in the log.
                self.orphan_chosen = self.orphan_chosen.max(Some(*slot));
                return;
            }
            StorageWrite::Compact { through_slot } => {
                self.compacted_through = self.compacted_through.max(Some(*through_slot));
            }
            _ => {}
        }
        self.state.apply(write);
    }

    fn finish(mut self) -> (DurableState, usize, Option<Slot>) {
        if self.orphan_chosen > self.compacted_through {
            self.state.damaged = true;
        }
        (self.state, self.records, self.compacted_through)
    }
}

/// How the records of a segment end.
#[derive(Debug, PartialEq, Eq)]
enum Tail {
    /// At this offset, followed by zeros.
    Clean(usize),
    /// At this offset, followed by a torn write of `len` bytes (then zeros).
    Torn { at: usize, len: usize },
}

/// Replays one segment; returns where its records end, what they hold and its size.
fn replay_segment(
    path: &Path,
    is_last: bool,
    replay: &mut Replay,
) -> Result<(u64, Summary, u64), StorageError> {
    let (bytes, unreadable) = read_segment(path)?;
    if let Some(first) = unreadable.first() {
        tracing::warn!(path = %path.display(), offset = first, sectors = unreadable.len(), "log sectors cannot be read; the replica will recover what it may have forgotten from its peers before it votes");
    }
    let (tail, summary) = replay_bytes(path, &bytes, !unreadable.is_empty(), is_last, replay)?;
    let end = match tail {
        Tail::Clean(end) => end,
        Tail::Torn { at, len } => {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_err(path))?;
            file.write_all_at(&vec![0u8; len], at as u64)
                .and_then(|()| file.sync_data())
                .map_err(io_err(path))?;
            at
        }
    };
    Ok((end as u64, summary, bytes.len() as u64))
}

/// Replays the records in `bytes` (the contents of segment `path`; `unreadable` when some of
/// it could not be read). Failed records are skipped to the next one that verifies.
fn replay_bytes(
    path: &Path,
    bytes: &[u8],
    unreadable: bool,
    is_last: bool,
    replay: &mut Replay,
) -> Result<(Tail, Summary), StorageError> {
    let mut summary = Summary {
        damaged: unreadable,
        ..Summary::default()
    };
    let mut offset = 0usize;
    // Each turn moves `offset` forward, so this ends within `bytes.len()` turns.
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        match decode_record(rest) {
            Ok((write, used)) => {
                replay.apply(&write);
                summary.note(&write);
                offset += used;
            }
            Err(_) if all_zero(rest) => break, // the unused, preallocated remainder
            Err(DecodeError::UnsupportedVersion { .. }) if codec::newer_version(rest).is_some() => {
                let found = codec::newer_version(rest).expect("checked");
                return Err(StorageError::NewerFormat {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    found,
                });
            }
            Err(error) if is_last && !unreadable && is_torn_tail(rest, offset) => {
                tracing::warn!(path = %path.display(), offset, %error, "cutting off a torn write at the end of the log");
                let len = rest.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
                replay.state.damaged |= summary.damaged;
                return Ok((Tail::Torn { at: offset, len }, summary));
            }
            Err(error) => {
                let next = resync(bytes, offset);
                tracing::warn!(path = %path.display(), offset, skipped_bytes = next - offset, %error, "a log record failed verification; skipping to the next record that verifies. The replica will recover what it may have forgotten from its peers before it votes");
                summary.damaged = true;
                offset = next;
            }
        }
    }
    replay.state.damaged |= summary.damaged;
    Ok((Tail::Clean(offset.min(bytes.len())), summary))
}

/// Where the next record that verifies starts after a failure at `from`, or the end of
/// `bytes`. The extent a frame header claims is passed over whole — that of a verified frame
/// that starts no record (a chunk of a snapshot whose meta was lost), and that of the failed
/// frame when its header is intact — so that bytes inside a frame's body, a client's value
/// among them, are not taken for records of their own.
fn resync(bytes: &[u8], from: usize) -> usize {
    let mut at = from + claimed_len(&bytes[from..]).unwrap_or(1);
    // `at` moves forward every turn.
    while let Some(found) = find_magic(bytes, at) {
        let rest = &bytes[found..];
        if decode_record(rest).is_ok() {
            return found;
        }
        at = found + claimed_len(rest).unwrap_or(1);
    }
    bytes.len()
}

/// The length of the frame at the start of `rest`, when its header is well formed and the
/// whole frame is there (its checksum not checked).
fn claimed_len(rest: &[u8]) -> Option<usize> {
    [FrameKind::LogRecord, FrameKind::Snapshot]
        .into_iter()
        .find_map(|kind| codec::frame_len(kind, rest).ok())
        .map(|len| codec::HEADER_BYTES + len)
}

fn find_magic(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let at = rest
        .windows(codec::MAGIC.len())
        .position(|w| w == codec::MAGIC)?;
    Some(from + at)
}

/// The record at the start of `rest`: a log record frame, or a snapshot's run of frames.
fn decode_record(rest: &[u8]) -> Result<(StorageWrite, usize), DecodeError> {
    if !is_snapshot_frame(rest) {
        return codec::decode::<StorageWrite>(FrameKind::LogRecord, rest);
    }
    match SnapshotImage::decode_frames_prefix(rest) {
        Ok((image, used)) => Ok((StorageWrite::Snapshot(image.into()), used)),
        Err(SnapshotError::Frame(error)) => Err(error),
        Err(other) => Err(DecodeError::Malformed {
            reason: other.to_string(),
        }),
    }
}

/// Whether the failed frame at the start of `rest` (at `offset` in its segment) is a torn
/// write: the last batch, cut short by a crash before it was acknowledged. Writes reach the
/// disk in whole sectors, so a tear leaves the frame's bytes from some sector boundary on as
/// the zeros the segment was preallocated with, and nothing verifies after it. A frame that is
/// all there but fails its checksum — a flipped bit, or a length field a flipped bit made point
/// into the zeros — is damage, never a tear: it may be an acknowledged record.
fn is_torn_tail(rest: &[u8], offset: usize) -> bool {
    let covered = if is_snapshot_frame(rest) {
        snapshot_run_end(rest)
    } else {
        match codec::frame_len(FrameKind::LogRecord, rest) {
            Ok(len) => codec::HEADER_BYTES + len,
            Err(error) if error.is_truncated() => rest.len(),
            Err(_) => codec::HEADER_BYTES.min(rest.len()),
        }
    };
    let zeros_from = rest.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    let first_zero_sector = (offset + zeros_from).next_multiple_of(TORN_SECTOR_BYTES) - offset;
    zeros_from <= covered
        && first_zero_sector < covered.max(1)
        && !codec::length_bit_flipped(rest)
        && !record_after_start(rest)
}

/// Whether a whole record verifies anywhere in `rest` after its first byte.
fn record_after_start(rest: &[u8]) -> bool {
    let mut at = 1;
    // `at` moves forward every turn.
    while let Some(found) = find_magic(rest, at) {
        if decode_record(&rest[found..]).is_ok() {
            return true;
        }
        at = found + 1;
    }
    false
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

/// The bytes of segment `path`, and the offsets of sectors that could not be read (filled
/// with [`UNREADABLE_FILL`]).
fn read_segment(path: &Path) -> Result<(Vec<u8>, Vec<usize>), StorageError> {
    let file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let len = usize::try_from(len).expect("a segment fits in memory");
    Ok(read_blocks(len, |buf, at| {
        file.read_exact_at(buf, at as u64)
    }))
}

/// Reads `len` bytes with `read_at` block by block; a block that fails is read again sector
/// by sector, and a sector that still fails is filled and reported.
fn read_blocks(
    len: usize,
    mut read_at: impl FnMut(&mut [u8], usize) -> io::Result<()>,
) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = vec![0u8; len];
    let mut unreadable = Vec::new();
    for start in (0..len).step_by(READ_BLOCK_BYTES) {
        let end = (start + READ_BLOCK_BYTES).min(len);
        if read_at(&mut bytes[start..end], start).is_ok() {
            continue;
        }
        for sector in (start..end).step_by(READ_SECTOR_BYTES) {
            let sector_end = (sector + READ_SECTOR_BYTES).min(end);
            if read_at(&mut bytes[sector..sector_end], sector).is_err() {
                bytes[sector..sector_end].fill(UNREADABLE_FILL);
                unreadable.push(sector);
            }
        }
    }
    (bytes, unreadable)
}

#[cfg(target_os = "linux")]
fn preallocate(file: &File, bytes: u64) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let len = libc::off_t::try_from(bytes).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: the descriptor is open and owned by `file` for the duration of the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    match rc {
        0 => Ok(()),
        libc::ENOSPC | libc::EDQUOT | libc::EFBIG => Err(io::Error::from_raw_os_error(rc)),
        // Some file systems cannot preallocate; a sparse file is correct, only slower.
        _ => file.set_len(bytes),
    }
}

#[cfg(not(target_os = "linux"))]
fn preallocate(file: &File, bytes: u64) -> io::Result<()> {
    file.set_len(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyspace_core::command::{ClientRequest, Command};
    use keyspace_core::kv::{StateMachine, StateMachineConfig};
    use keyspace_core::LogValue;

    /// Segments small enough that a few records fill one.
    const SMALL: StorageLimits = StorageLimits {
        segment_bytes: SEGMENT_BYTES_MIN,
        max_bytes: None,
    };

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "keyspace-storage-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn ballot(round: u64, node: u16) -> Ballot {
        Ballot { round, node }
    }

    fn accept(slot: u64) -> StorageWrite {
        StorageWrite::Accept {
            slot,
            ballot: ballot(1, 1),
            value: LogValue::Noop,
        }
    }

    /// A write of one key at `slot`, about `bytes` long.
    fn set(slot: u64, bytes: usize) -> LogValue {
        LogValue::Batch(
            vec![ClientRequest {
                client_id: 1,
                seq: slot,
                command: Command::Set {
                    key: format!("key{slot}").into_bytes(),
                    value: vec![b'v'; bytes],
                },
            }]
            .into(),
        )
    }

    /// A snapshot of the state after the writes `set(1..=slot, bytes)`.
    fn snapshot_through(slot: u64, bytes: usize) -> SnapshotImage {
        let mut state = StateMachine::new(StateMachineConfig::default());
        for s in 1..=slot {
            let LogValue::Batch(requests) = set(s, bytes) else {
                unreachable!("set is a batch")
            };
            state.apply_batch(s, &requests);
        }
        SnapshotImage::capture(&state, 0, Ballot::ZERO)
    }

    fn accepted_slots(state: &DurableState) -> Vec<Slot> {
        state.accepted.keys().copied().collect()
    }

    fn frame_bytes(write: &StorageWrite) -> u64 {
        let mut out = Vec::new();
        codec::encode(FrameKind::LogRecord, write, &mut out);
        out.len() as u64
    }

    fn replayed(writes: &[StorageWrite]) -> DurableState {
        let mut state = DurableState::default();
        for write in writes {
            state.apply(write);
        }
        state
    }

    /// Appends and syncs each write on its own; returns them.
    fn write_each(log: &mut FileLog, writes: Vec<StorageWrite>) -> Vec<StorageWrite> {
        for write in &writes {
            log.append(std::slice::from_ref(write));
            log.sync().unwrap();
        }
        writes
    }

    fn segment_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = list_segments(dir)
            .unwrap()
            .into_iter()
            .map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn flip(path: &Path, offset: u64) {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, offset).unwrap();
        file.write_all_at(&[byte[0] ^ 0xff], offset).unwrap();
    }

    /// Waits (bounded) until the log's spare segment is filled.
    fn wait_for_spare(log: &FileLog) {
        let spare = log.spare.as_ref().expect("a spare is being filled");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !spare.filling.is_finished() {
            assert!(std::time::Instant::now() < deadline, "spare never filled");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn a_log_rolls_into_its_zero_filled_spare_and_replays_the_same_after_reopen() {
        let dir = temp_dir("spare");
        let (mut log, _, _) = FileLog::open_with(&dir, SMALL).unwrap();
        let first = fs::read(dir.join("log-00000001.seg")).unwrap();
        assert_eq!(
            first.len() as u64,
            SEGMENT_BYTES_MIN,
            "first segment written out"
        );
        assert!(all_zero(&first));
        let mut writes = Vec::new();
        for slot in 1..=40 {
            wait_for_spare(&log);
            let write = StorageWrite::Accept {
                slot,
                ballot: ballot(1, 1),
                value: set(slot, 500),
            };
            writes.extend(write_each(&mut log, vec![write]));
        }
        let (segment, _) = log.position();
        assert!(
            segment >= 4,
            "rolled over several times, to segment {segment}"
        );
        // Each roll-over took the filled spare: no segment was merely preallocated.
        for index in 2..=segment {
            let path = dir.join(segment_name(index));
            assert_eq!(fs::metadata(&path).unwrap().len(), SEGMENT_BYTES_MIN);
        }
        drop(log);
        assert!(!dir.join(SPARE_NAME).exists(), "no spare left behind");
        let (_, state, _) = FileLog::open_with(&dir, SMALL).unwrap();
        assert_eq!(state, replayed(&writes));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_spare_left_half_filled_by_a_crash_is_not_replayed_and_is_filled_again() {
        let dir = temp_dir("stale-spare");
        let (mut log, _, _) = FileLog::open_with(&dir, SMALL).unwrap();
        let writes = write_each(&mut log, vec![accept(1), accept(2)]);
        drop(log);
        fs::write(dir.join(SPARE_NAME), b"KSPX half a segment of garbage").unwrap();
        let (log, state, _) = FileLog::open_with(&dir, SMALL).unwrap();
        assert_eq!(state, replayed(&writes));
        assert!(!state.damaged);
        wait_for_spare(&log);
        drop(log);
        assert_eq!(segment_names(&dir), ["log-00000001.seg"]);
        fs::remove_dir_all(&dir).unwrap();
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
        assert!(!state.damaged);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_off_is_not_damage_and_the_log_stays_appendable() {
        let dir = temp_dir("torn");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[accept(1)]);
        log.sync().unwrap();
        let (_, start) = log.position();
        log.append(&[StorageWrite::Accept {
            slot: 2,
            ballot: ballot(1, 1),
            value: set(2, 3_000),
        }]);
        log.sync().unwrap();
        let (_, end) = log.position();
        drop(log);
        // Tear the second record: the crash kept only its first sector.
        let path = dir.join("log-00000001.seg");
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let cut = (start + 1).next_multiple_of(TORN_SECTOR_BYTES as u64);
        assert!(cut < end);
        file.write_all_at(&vec![0u8; (end - cut) as usize], cut)
            .unwrap();
        let (mut log, state, records) = FileLog::open(&dir).unwrap();
        assert_eq!(records, 1);
        assert_eq!(state.accepted.len(), 1);
        assert!(!state.damaged);
        log.append(&[accept(3)]);
        log.sync().unwrap();
        drop(log);
        let (_, state, _) = FileLog::open(&dir).unwrap();
        assert_eq!(accepted_slots(&state), [1, 3]);
        assert!(!state.damaged);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_checksum_in_the_middle_is_skipped_and_the_state_comes_back_damaged() {
        let dir = temp_dir("corrupt");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        write_each(&mut log, vec![accept(1), accept(2), accept(3)]);
        drop(log);
        let frame = frame_bytes(&accept(1));
        flip(&dir.join("log-00000001.seg"), frame + 20); // inside the second record's body
        let (_, state, records) = FileLog::open(&dir).unwrap();
        assert!(state.damaged);
        assert_eq!(records, 2);
        assert_eq!(accepted_slots(&state), [1, 3]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn garbage_over_a_record_header_is_skipped_by_resynchronising_at_the_next_record() {
        let dir = temp_dir("garbage");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        write_each(&mut log, vec![accept(1), accept(2), accept(3), accept(4)]);
        drop(log);
        let frame = frame_bytes(&accept(1));
        // Garbage from the start of the second record's header into its body.
        let path = dir.join("log-00000001.seg");
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xa5; 20], frame).unwrap();
        let (_, state, _) = FileLog::open(&dir).unwrap();
        assert!(state.damaged);
        assert_eq!(accepted_slots(&state), [1, 3, 4]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_snapshot_chunk_drops_that_snapshot_and_replay_goes_on_after_it() {
        let image = snapshot_through(3, 700_000); // two chunks of the body
        let dir = temp_dir("snapshot-chunk");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[accept(1)]);
        log.sync().unwrap();
        let (_, start) = log.position();
        log.append(&[StorageWrite::Snapshot(image.into()), accept(2)]);
        log.sync().unwrap();
        drop(log);
        flip(&dir.join("log-00000001.seg"), start + 1_500_000); // in the second chunk
        let (_, state, _) = FileLog::open(&dir).unwrap();
        assert!(state.damaged);
        assert_eq!(state.snapshot, None);
        assert_eq!(accepted_slots(&state), [1, 2]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unreadable_sector_is_read_around_and_the_state_comes_back_damaged() {
        let mut clean = Vec::new();
        for slot in 1..=200 {
            codec::encode(FrameKind::LogRecord, &accept(slot), &mut clean);
        }
        let bad_sector = 3 * READ_SECTOR_BYTES;
        let (bytes, unreadable) = read_blocks(clean.len(), |buf, at| {
            let overlaps = at <= bad_sector && bad_sector < at + buf.len();
            if overlaps {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            buf.copy_from_slice(&clean[at..at + buf.len()]);
            Ok(())
        });
        assert_eq!(unreadable, [bad_sector]);
        assert_eq!(bytes[..bad_sector], clean[..bad_sector]);
        assert!(bytes[bad_sector..bad_sector + READ_SECTOR_BYTES]
            .iter()
            .all(|b| *b == UNREADABLE_FILL));
        let mut replay = Replay::default();
        let path = Path::new("log-00000001.seg");
        let (tail, summary) = replay_bytes(path, &bytes, true, true, &mut replay).unwrap();
        assert_eq!(tail, Tail::Clean(bytes.len()));
        assert!(summary.damaged);
        let (state, records, _) = replay.finish();
        assert!(state.damaged);
        // Only the records the sector touched are gone; replay went on after them.
        let frame = clean.len() / 200;
        let lost = 200 - records;
        assert!(lost <= READ_SECTOR_BYTES / frame + 2, "{lost} of 200 lost");
        assert!(state.accepted.contains_key(&1) && state.accepted.contains_key(&200));
    }

    #[test]
    fn a_damaged_log_goes_on_in_a_new_segment_and_keeps_what_is_written_after() {
        let dir = temp_dir("damaged-append");
        let (mut log, _, _) = FileLog::open_with(&dir, SMALL).unwrap();
        write_each(&mut log, vec![accept(1), accept(2), accept(3)]);
        drop(log);
        flip(&dir.join("log-00000001.seg"), 20);
        let (mut log, state, _) = FileLog::open_with(&dir, SMALL).unwrap();
        assert!(state.damaged);
        assert_eq!(accepted_slots(&state), [2, 3]);
        write_each(&mut log, vec![accept(4)]);
        assert_eq!(log.position().0, 2, "a new segment after the damaged one");
        drop(log);
        let (_, state, _) = FileLog::open_with(&dir, SMALL).unwrap();
        assert!(state.damaged, "the damaged bytes are still there");
        assert_eq!(accepted_slots(&state), [2, 3, 4]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_field_made_newer_by_a_flipped_bit_is_damage_not_a_newer_format() {
        let dir = temp_dir("version-rot");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        write_each(&mut log, vec![accept(1), accept(2), accept(3)]);
        drop(log);
        flip(&dir.join("log-00000001.seg"), 5); // the first record's version field, high byte
        let (_, state, _) = FileLog::open(&dir).expect("starts, to recover from its peers");
        assert!(state.damaged);
        assert_eq!(accepted_slots(&state), [2, 3]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newer_format_version_is_refused_by_name() {
        let dir = temp_dir("version");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[accept(1), accept(2)]);
        log.sync().unwrap();
        drop(log);
        let path = dir.join("log-00000001.seg");
        let mut bytes = fs::read(&path).unwrap();
        codec::rewrite_version(&mut bytes, 9); // as a build of format version 9 wrote it
        fs::write(&path, &bytes).unwrap();
        let err = FileLog::open(&dir).err().expect("refused");
        assert!(
            matches!(
                err,
                StorageError::NewerFormat {
                    found: 9,
                    offset: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("log-00000001.seg"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_snapshot_of_many_chunks_is_replayed_after_reopen() {
        let image = snapshot_through(3_000, 1_000);
        assert!(image.meta.body_len > 2 * 1024 * 1024, "several chunks");
        let dir = temp_dir("snapshot");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[
            accept(1),
            StorageWrite::Snapshot(image.clone().into()),
            accept(2),
        ]);
        log.sync().unwrap();
        drop(log);
        let (_, recovered, records) = FileLog::open(&dir).unwrap();
        assert_eq!(records, 3);
        assert_eq!(recovered.snapshot, Some(image.into()));
        assert_eq!(recovered.accepted.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_snapshot_cut_short_at_the_end_of_the_log_is_a_torn_tail() {
        let image = snapshot_through(3, 1_000);
        let dir = temp_dir("torn-snapshot");
        let (mut log, _, _) = FileLog::open(&dir).unwrap();
        log.append(&[accept(1)]);
        log.sync().unwrap();
        let (segment, start) = log.position();
        log.append(&[StorageWrite::Snapshot(image.into())]);
        log.sync().unwrap();
        let (_, end) = log.position();
        drop(log);
        // The crash kept only the first half of the snapshot's bytes.
        let path = dir.join(format!("log-{segment:08}.seg"));
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let cut = (start + (end - start) / 2).next_multiple_of(TORN_SECTOR_BYTES as u64);
        assert!(cut < end);
        file.write_all_at(&vec![0u8; (end - cut) as usize], cut)
            .unwrap();
        drop(file);
        let (_, recovered, records) = FileLog::open(&dir).unwrap();
        assert_eq!(records, 1);
        assert_eq!(recovered.snapshot, None);
        assert!(!recovered.damaged);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_flipped_bit_in_the_last_whole_record_is_damage_not_a_torn_tail() {
        for at in [4 + 2, 8, 9, 14, 20] {
            let dir = temp_dir("last-record-rot");
            let (mut log, _, _) = FileLog::open(&dir).unwrap();
            write_each(&mut log, vec![accept(1), accept(2)]);
            let (segment, end) = log.position();
            drop(log);
            let path = dir.join(format!("log-{segment:08}.seg"));
            let record_len = end / 2;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let mut byte = [0u8];
            file.read_exact_at(&mut byte, record_len + at).unwrap();
            // One bit: in the length field (offsets 8..12) it points the frame into the zeros.
            let bit = if (8..12).contains(&at) { 0x40 } else { 0x01 };
            file.write_all_at(&[byte[0] ^ bit], record_len + at)
                .unwrap();
            let (_, state, _) = FileLog::open(&dir).unwrap();
            assert!(state.damaged, "a flip at byte {at} of the last record");
            assert_eq!(accepted_slots(&state), [1], "byte {at}");
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// Writes slots 1..=`slots` (each accept and its chosen record synced on its own) after a
    /// promise of ballot 5.2 that no accept carries, into small segments.
    fn many_small_syncs(log: &mut FileLog, slots: u64) -> Vec<StorageWrite> {
        let mut writes = vec![StorageWrite::Promise {
            ballot: ballot(5, 2),
        }];
        for slot in 1..=slots {
            let accepted = ballot(3, 1);
            writes.push(StorageWrite::Accept {
                slot,
                ballot: accepted,
                value: set(slot, 150),
            });
            writes.push(StorageWrite::Chosen {
                slot,
                ballot: accepted,
            });
        }
        write_each(log, writes)
    }

    /// The core's order: a snapshot through `slot`, then (once it is durable) the compaction.
    fn snapshot_and_compact(log: &mut FileLog, slot: u64) -> Vec<StorageWrite> {
        let snapshot = StorageWrite::Snapshot(snapshot_through(slot, 150).into());
        let compact = StorageWrite::Compact { through_slot: slot };
        write_each(log, vec![snapshot, compact])
    }

    #[test]
    fn a_compaction_deletes_the_segments_it_made_redundant_and_reopen_gives_the_same_state() {
        let dir = temp_dir("compact");
        let (mut log, _, _) = FileLog::open_with(&dir, SMALL).unwrap();
        let mut writes = many_small_syncs(&mut log, 60);
        let before = segment_names(&dir);
        assert!(before.len() >= 3, "{before:?}");
        writes.extend(snapshot_and_compact(&mut log, 45));
        writes.extend(write_each(&mut log, vec![accept(61)]));
        let after = segment_names(&dir);
        drop(log);
        assert!(
            !after.contains(&"log-00000001.seg".to_string()),
            "{after:?}"
        );
        // Slots 46..=60 are in the last segments before the snapshot: those stay.
        let kept_old = before.iter().filter(|n| after.contains(n)).count();
        assert!(
            kept_old >= 1 && kept_old < before.len(),
            "{before:?} -> {after:?}"
        );
        let expected = replayed(&writes);
        assert_eq!(
            expected.chosen.keys().copied().collect::<Vec<_>>(),
            (46..=60).collect::<Vec<_>>()
        );
        let (_, state, _) = FileLog::open_with(&dir, SMALL).unwrap();
        assert!(!state.damaged);
        assert_eq!(state, expected);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_promise_written_only_in_a_deleted_segment_survives_its_deletion() {
        let dir = temp_dir("compact-promise");
        let (mut log, _, _) = FileLog::open_with(&dir, SMALL).unwrap();
        // Ballot 5.2 is written once, as the first record of segment 1; accepts carry 3.1.
        many_small_syncs(&mut log, 40);
        snapshot_and_compact(&mut log, 40);
        write_each(&mut log, vec![accept(41)]);
        drop(log);
        let names = segment_names(&dir);
        assert!(
            !names.contains(&"log-00000001.seg".to_string()),
            "{names:?}"
        );
        let (_, state, _) = FileLog::open_with(&dir, SMALL).unwrap();
        assert_eq!(state.promised, ballot(5, 2));
        assert!(!state.damaged);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_log_deletes_no_segment_until_the_replica_has_recovered() {
        let dir = temp_dir("compact-damaged");
        let (mut log, _, _) = FileLog::open_with(&dir, SMALL).unwrap();
        many_small_syncs(&mut log, 40);
        drop(log);
        flip(&dir.join("log-00000001.seg"), 300); // a record in the middle of segment 1
        let (mut log, state, _) = FileLog::open_with(&dir, SMALL).unwrap();
        assert!(state.damaged);
        snapshot_and_compact(&mut log, 40);
        write_each(&mut log, vec![accept(41)]);
        assert!(
            dir.join("log-00000001.seg").exists(),
            "kept while recovering"
        );
        log.set_recovered();
        write_each(&mut log, vec![accept(42)]);
        assert!(
            !dir.join("log-00000001.seg").exists(),
            "deleted once recovered"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_sync_over_the_size_limit_fails_full_naming_the_file_and_loses_nothing_synced_before() {
        let dir = temp_dir("full");
        let limits = StorageLimits {
            segment_bytes: SEGMENT_BYTES_MIN,
            max_bytes: Some(3 * SEGMENT_BYTES_MIN),
        };
        let (mut log, _, _) = FileLog::open_with(&dir, limits).unwrap();
        let mut synced = Vec::new();
        let mut error = None;
        for slot in 1..=200 {
            let write = StorageWrite::Accept {
                slot,
                ballot: ballot(1, 1),
                value: set(slot, 150),
            };
            log.append(std::slice::from_ref(&write));
            match log.sync() {
                Ok(()) => synced.push(write),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        drop(log);
        let error = error.expect("the limit is reached within 200 records");
        let text = error.to_string();
        assert!(matches!(error, StorageError::Full { .. }), "{text}");
        assert!(
            text.contains("log-00000004.seg") && text.contains("--max-log-bytes"),
            "{text}"
        );
        assert!(synced.len() > 20, "{} synced", synced.len());
        assert_eq!(segment_names(&dir).len(), 3);
        let (_, state, _) = FileLog::open_with(&dir, limits).unwrap();
        assert!(!state.damaged);
        assert_eq!(state, replayed(&synced));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_space_on_the_device_is_a_full_error_naming_the_file() {
        let path = Path::new("/data/log-00000007.seg");
        let error = io_err(path)(io::Error::from_raw_os_error(libc::ENOSPC));
        let text = error.to_string();
        assert!(matches!(error, StorageError::Full { .. }), "{text}");
        assert!(
            text.contains("log-00000007.seg") && text.contains("free space"),
            "{text}"
        );
        let other = io_err(path)(io::Error::from_raw_os_error(libc::EIO));
        assert!(matches!(other, StorageError::Io { .. }), "{other}");
    }

    #[test]
    fn a_small_size_limit_makes_segments_small_enough_for_several() {
        let limits = StorageLimits::with_max_bytes(Some(64 * 1024 * 1024));
        assert_eq!(limits.segment_bytes, 16 * 1024 * 1024);
        let tiny = StorageLimits::with_max_bytes(Some(100));
        assert_eq!(tiny.segment_bytes, SEGMENT_BYTES_MIN);
        assert_eq!(
            StorageLimits::with_max_bytes(None),
            StorageLimits::default()
        );
    }
    /// Whether everything `state` holds was written: damage may forget, never invent.
    fn forgets_only(state: &DurableState, writes: &[StorageWrite]) -> bool {
        let accepted = |slot: &Slot, (ballot, value): &(Ballot, LogValue)| {
            writes.contains(&StorageWrite::Accept {
                slot: *slot,
                ballot: *ballot,
                value: value.clone(),
            })
        };
        let written_ballot = |b: &Ballot| {
            writes.iter().any(|w| match w {
                StorageWrite::Promise { ballot } | StorageWrite::Accept { ballot, .. } => {
                    ballot == b
                }
                _ => false,
            })
        };
        let snapshot_written = state
            .snapshot
            .as_ref()
            .is_none_or(|image| writes.contains(&StorageWrite::Snapshot(image.clone())));
        state.accepted.iter().all(|(s, a)| accepted(s, a))
            && state.chosen.iter().all(|(s, v)| {
                writes.iter().any(|w| {
                    matches!(w, StorageWrite::Accept { slot, value, .. } if slot == s && value == v)
                })
            })
            && (state.promised == Ballot::ZERO || written_ballot(&state.promised))
            && snapshot_written
    }

    #[test]
    fn every_flipped_byte_of_a_real_log_is_replayed_exactly_or_flagged() {
        let source = temp_dir("flip-source");
        let (mut log, _, _) = FileLog::open_with(&source, SMALL).unwrap();
        let ballot = ballot(2, 1);
        let writes = vec![
            StorageWrite::Promise { ballot },
            StorageWrite::Accept {
                slot: 1,
                ballot,
                value: set(1, 20),
            },
            StorageWrite::Accept {
                slot: 2,
                ballot,
                value: set(2, 20),
            },
            StorageWrite::Chosen { slot: 1, ballot },
            StorageWrite::Snapshot(snapshot_through(1, 20).into()),
            StorageWrite::Accept {
                slot: 3,
                ballot,
                value: LogValue::Noop,
            },
        ];
        let mut last_start = 0;
        for write in &writes {
            last_start = log.position().1 as usize;
            write_each(&mut log, vec![write.clone()]);
        }
        let (segment, end) = log.position();
        assert_eq!(segment, 1);
        drop(log);
        let clean = fs::read(source.join("log-00000001.seg")).unwrap();
        let end = end as usize;
        let original = replayed(&writes);
        let before_last = replayed(&writes[..writes.len() - 1]);
        let (_, reopened, _) = FileLog::open_with(&source, SMALL).unwrap();
        assert_eq!(reopened, original);
        // The format version field of every frame (snapshot frames included).
        let mut version_bytes = Vec::new();
        let mut at = 0;
        while at < end {
            version_bytes.extend([at + 4, at + 5]);
            at += claimed_len(&clean[at..]).expect("a clean frame");
        }
        let work = temp_dir("flip-work");
        fs::create_dir_all(&work).unwrap();
        let copy = work.join("log-00000001.seg");
        let (mut equal, mut damaged, mut torn, mut version_damaged) = (0, 0, 0, 0);
        // Every byte written, and the zeros just after them.
        let flipped = 0..end + 64;
        for offset in flipped.clone() {
            let mut bytes = clean.clone();
            bytes[offset] ^= 0xff;
            fs::write(&copy, &bytes).unwrap();
            let opened = std::panic::catch_unwind(|| FileLog::open_with(&work, SMALL));
            let opened = opened.unwrap_or_else(|_| panic!("open panicked on a flip at {offset}"));
            match opened.map(|(_, state, _)| state) {
                Ok(state) if state.damaged => {
                    assert!(
                        forgets_only(&state, &writes),
                        "a flip at {offset} gave {state:?}"
                    );
                    damaged += 1;
                    version_damaged += usize::from(version_bytes.contains(&offset));
                }
                Ok(state) if state == original => equal += 1,
                Ok(state) if state == before_last && offset >= last_start => torn += 1,
                // A flipped version byte included: only an intact frame is a newer format.
                other => panic!("a flip at {offset} gave {other:?}"),
            }
        }
        println!(
            "{} offsets flipped ({end} written): {equal} equal, {damaged} damaged ({version_damaged} \
             in a version field), {torn} torn tail",
            flipped.len()
        );
        assert_eq!(equal + damaged + torn, flipped.len());
        assert!(damaged > 0 && torn > 0 && version_damaged == version_bytes.len());
        fs::remove_dir_all(&source).unwrap();
        fs::remove_dir_all(&work).unwrap();
    }
}
