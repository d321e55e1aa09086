//! The node's storage: the log engine of `keyspace-storage` over a directory of segment files.
//!
//! The engine ([`keyspace_storage::Log`]) owns the log's format, replay, damage rules,
//! compaction and size limit; this module gives it [`FileDevice`]: segment files
//! `log-NNNNNNNN.seg` in the data directory, written with `pwrite` and made durable with
//! `fdatasync`, created filled with zeros (a spare filled in the background, see [`Spare`])
//! or else preallocated, and the directory synced after every file is created, renamed or
//! removed. A device that runs out of space (`ENOSPC`, `EDQUOT`) fails the write with
//! [`StorageError::Full`] naming the file. Writes are group-committed by the shell: it appends
//! every `Persist` output it drained, then one write and one sync make them all durable
//! before `handle_persisted` is called.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use keyspace_core::DurableState;
use keyspace_storage::{segment_index, segment_name, Device, DeviceError};
pub use keyspace_storage::{
    FullCause, Log, LogConfig, StorageError, StorageLimits, FIRST_SEGMENT_BYTES, SEGMENT_BYTES,
    SEGMENT_BYTES_MIN,
};

/// The node's log: the engine over segment files.
pub type FileLog = Log<FileDevice>;

/// The next segment, zero-filled in the background while the active one fills.
const SPARE_NAME: &str = "spare-segment.tmp";

/// Opens (or creates) the log in `dir` with `limits` and replays it: the log, the state it
/// holds (`damaged` when a record failed verification), and the number of records.
pub fn open(
    dir: &Path,
    limits: StorageLimits,
) -> Result<(FileLog, DurableState, usize), StorageError> {
    let device = FileDevice::open(dir, limits)?;
    let config = LogConfig {
        limits,
        mutant: None,
    };
    Log::open(device, config)
}

/// The device error of `error`: no space is `NoSpace` (the engine reports the log full).
fn device_error(error: io::Error) -> DeviceError {
    match error.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => DeviceError::NoSpace(error),
        _ => DeviceError::Io(error),
    }
}

/// Segment files in a directory.
pub struct FileDevice {
    dir: PathBuf,
    /// Open segment files, by index.
    files: BTreeMap<u64, File>,
    /// Segments are filled with zeros before use (see [`Spare`]); else preallocated.
    zero_fill: bool,
    /// Size of the spare segment.
    spare_bytes: u64,
    /// The next segment, being written with zeros in the background.
    spare: Option<Spare>,
}

impl FileDevice {
    /// The segment files in `dir` (created if missing). A spare left by a crash may be half
    /// filled: it is removed and filled again.
    pub fn open(dir: &Path, limits: StorageLimits) -> Result<FileDevice, StorageError> {
        let io_error = |source| StorageError::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io_error)?;
        let _ = fs::remove_file(dir.join(SPARE_NAME));
        let mut device = FileDevice {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            zero_fill: spares_enabled(limits),
            spare_bytes: limits.segment_bytes,
            spare: None,
        };
        device.start_spare();
        Ok(device)
    }

    fn file(&mut self, index: u64) -> io::Result<&File> {
        if !self.files.contains_key(&index) {
            let path = self.path(index);
            let file = OpenOptions::new().read(true).write(true).open(path)?;
            self.files.insert(index, file);
        }
        Ok(&self.files[&index])
    }

    /// Makes the directory's entries durable: a new, renamed or removed name survives a crash.
    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir).and_then(|d| d.sync_all())
    }

    /// Starts filling the next segment with zeros, unless one is being filled already.
    fn start_spare(&mut self) {
        if self.spare.is_none() && self.zero_fill {
            self.spare = Spare::start(&self.dir, self.spare_bytes);
        }
    }

    /// The spare as segment `index`, if it is filled and holds `bytes`; `None` otherwise (a
    /// spare still filling is kept for the next segment).
    fn take_spare(&mut self, index: u64, bytes: u64) -> io::Result<Option<(File, u64)>> {
        let ready = self
            .spare
            .as_ref()
            .is_some_and(|s| s.filling.is_finished() && s.bytes >= bytes);
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
        fs::rename(&spare.path, self.path(index))?;
        Ok(Some((file, spare.bytes)))
    }

    /// A new file for segment `index` of `bytes` bytes, not yet durably named: filled with
    /// zeros when that is quick, else preallocated.
    fn new_segment_file(&self, index: u64, bytes: u64) -> io::Result<File> {
        let path = self.path(index);
        if self.zero_fill && bytes <= FIRST_SEGMENT_BYTES {
            return zero_filled(&path, bytes, &AtomicBool::new(false), 0);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        if let Err(error) = preallocate(&file, bytes).and_then(|()| file.sync_all()) {
            let _ = fs::remove_file(&path); // an empty name would only clutter the directory
            return Err(error);
        }
        Ok(file)
    }
}

impl Device for FileDevice {
    fn segments(&mut self) -> Result<Vec<(u64, u64)>, DeviceError> {
        let mut segments = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(DeviceError::Io)? {
            let entry = entry.map_err(DeviceError::Io)?;
            let Some(index) = segment_index(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            let bytes = entry.metadata().map_err(DeviceError::Io)?.len();
            segments.push((index, bytes));
        }
        Ok(segments)
    }

    fn create(&mut self, index: u64, bytes: u64) -> Result<u64, DeviceError> {
        let (file, size) = match self.take_spare(index, bytes).map_err(device_error)? {
            Some(ready) => ready,
            None => (
                self.new_segment_file(index, bytes).map_err(device_error)?,
                bytes,
            ),
        };
        self.start_spare();
        // The new name must survive a crash too.
        self.sync_dir().map_err(device_error)?;
        self.files.insert(index, file);
        Ok(size)
    }

    fn remove(&mut self, index: u64) -> Result<(), DeviceError> {
        self.files.remove(&index);
        fs::remove_file(self.path(index)).map_err(DeviceError::Io)?;
        self.sync_dir().map_err(DeviceError::Io)
    }

    fn read(&mut self, index: u64, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let file = self.file(index).map_err(DeviceError::Io)?;
        file.read_exact_at(buf, offset).map_err(DeviceError::Io)
    }

    fn write(&mut self, index: u64, offset: u64, bytes: &[u8]) -> Result<(), DeviceError> {
        let file = self.file(index).map_err(device_error)?;
        file.write_all_at(bytes, offset).map_err(device_error)
    }

    fn sync(&mut self, index: u64) -> Result<(), DeviceError> {
        let file = self.file(index).map_err(device_error)?;
        file.sync_data().map_err(device_error)
    }

    fn path(&self, index: u64) -> PathBuf {
        self.dir.join(segment_name(index))
    }

    fn location(&self) -> PathBuf {
        self.dir.clone()
    }
}

impl Drop for FileDevice {
    /// Stops a spare still filling (within one chunk's write), waits for its thread and
    /// removes the spare, so nothing writes into the directory or is left in it once the log
    /// is gone.
    fn drop(&mut self) {
        if let Some(spare) = self.spare.take() {
            spare.cancel.store(true, Ordering::Relaxed);
            let _ = spare.filling.join();
            let _ = fs::remove_file(&spare.path);
        }
    }
}

/// A segment file written with zeros ahead of use. The blocks of a segment that was only
/// preallocated are marked unwritten, so the first `fdatasync` over each of them also writes
/// the file's extent metadata; over blocks that already hold zeros it writes the data alone
/// (on this project's machine 0.09 ms against 0.15 ms for one sync, 0.23 against 0.33 ms with
/// three processes syncing at once). Filling 64 MiB takes a moment, so the next segment is
/// filled on a thread of its own while the active one fills, under a name the log ignores,
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

/// Whether a log with these limits fills segments with zeros ahead of use (see [`Spare`]).
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
    //! The engine's own specification runs on the in-memory device (storage/tests); these
    //! run it on real files: the spare, the names, the errors, and a replay from disk.
    use super::*;
    use keyspace_core::codec::{self, FrameKind};
    use keyspace_core::{Ballot, LogValue, StorageWrite};
    use keyspace_storage::format::SEGMENT_HEADER_BYTES;

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

    fn accept(slot: u64, value_bytes: usize) -> StorageWrite {
        let value = match value_bytes {
            0 => LogValue::Noop,
            n => LogValue::Batch(
                vec![keyspace_core::ClientRequest {
                    client_id: 1,
                    seq: slot,
                    command: keyspace_core::Command::Set {
                        key: format!("key{slot}").into_bytes(),
                        value: vec![b'v'; n],
                    },
                }]
                .into(),
            ),
        };
        StorageWrite::Accept {
            slot,
            ballot: Ballot { round: 1, node: 1 },
            value,
        }
    }

    fn replayed(writes: &[StorageWrite]) -> DurableState {
        let mut state = DurableState::default();
        for write in writes {
            state.apply(write);
        }
        state
    }

    /// Appends, writes and syncs each write on its own; returns them.
    fn write_each(log: &mut FileLog, writes: Vec<StorageWrite>) -> Vec<StorageWrite> {
        for write in &writes {
            log.append(std::slice::from_ref(write));
            log.write().and_then(|()| log.sync()).unwrap();
        }
        writes
    }

    fn segment_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| segment_index(name).is_some())
            .collect();
        names.sort();
        names
    }

    /// Waits (bounded) until the log's spare segment is filled.
    fn wait_for_spare(log: &FileLog) {
        let spare = log
            .device()
            .spare
            .as_ref()
            .expect("a spare is being filled");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !spare.filling.is_finished() {
            assert!(std::time::Instant::now() < deadline, "spare never filled");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn a_log_rolls_into_its_zero_filled_spare_and_replays_the_same_after_reopen() {
        let dir = temp_dir("spare");
        let (mut log, _, _) = open(&dir, SMALL).unwrap();
        let first = fs::read(dir.join("log-00000001.seg")).unwrap();
        assert_eq!(
            first.len() as u64,
            SEGMENT_BYTES_MIN,
            "first segment written out"
        );
        assert!(first.iter().all(|b| *b == 0));
        let mut writes = Vec::new();
        for slot in 1..=40 {
            wait_for_spare(&log);
            writes.extend(write_each(&mut log, vec![accept(slot, 500)]));
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
        let (_, state, _) = open(&dir, SMALL).unwrap();
        assert_eq!(state, replayed(&writes));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_spare_left_half_filled_by_a_crash_is_not_replayed_and_is_filled_again() {
        let dir = temp_dir("stale-spare");
        let (mut log, _, _) = open(&dir, SMALL).unwrap();
        let writes = write_each(&mut log, vec![accept(1, 0), accept(2, 0)]);
        drop(log);
        fs::write(dir.join(SPARE_NAME), b"KSPX half a segment of garbage").unwrap();
        let (log, state, _) = open(&dir, SMALL).unwrap();
        assert_eq!(state, replayed(&writes));
        assert!(!state.damaged);
        wait_for_spare(&log);
        drop(log);
        assert_eq!(segment_names(&dir), ["log-00000001.seg"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn segment_files_replay_what_was_synced_and_flag_a_flipped_byte() {
        let dir = temp_dir("replay");
        let (mut log, state, _) = open(&dir, SMALL).unwrap();
        assert_eq!(state, DurableState::default());
        let mut writes = Vec::new();
        for slot in 1..=30 {
            writes.extend(write_each(&mut log, vec![accept(slot, 300)]));
        }
        assert!(log.position().0 >= 3, "several segment files");
        drop(log);
        let (_, state, records) = open(&dir, SMALL).unwrap();
        assert_eq!(state, replayed(&writes));
        assert!(records >= 30 && !state.damaged);
        // A byte of the second file's first record, flipped on disk.
        let path = dir.join("log-00000002.seg");
        let mut bytes = fs::read(&path).unwrap();
        bytes[SEGMENT_HEADER_BYTES + 20] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let (_, state, _) = open(&dir, SMALL).unwrap();
        assert!(state.damaged);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_write_in_a_segment_file_is_cut_off_on_disk() {
        let dir = temp_dir("torn");
        let (mut log, _, _) = open(&dir, SMALL).unwrap();
        write_each(&mut log, vec![accept(1, 0)]);
        let (_, start) = log.position();
        write_each(&mut log, vec![accept(2, 3_000)]);
        let (_, end) = log.position();
        drop(log);
        // The crash kept only the second record's first sector.
        let path = dir.join("log-00000001.seg");
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let cut = (start + 1).next_multiple_of(keyspace_storage::format::SECTOR_BYTES as u64);
        file.write_all_at(&vec![0u8; (end - cut) as usize], cut)
            .unwrap();
        let (_, state, records) = open(&dir, SMALL).unwrap();
        assert_eq!((records, state.damaged), (1, false));
        let bytes = fs::read(&path).unwrap();
        assert!(
            bytes[start as usize..].iter().all(|b| *b == 0),
            "the torn bytes are zeros again"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_over_its_size_limit_fails_full_naming_the_segment_file() {
        let dir = temp_dir("full");
        let limits = StorageLimits {
            segment_bytes: SEGMENT_BYTES_MIN,
            max_bytes: Some(3 * SEGMENT_BYTES_MIN),
        };
        let (mut log, _, _) = open(&dir, limits).unwrap();
        let error = (1..=200)
            .find_map(|slot| {
                log.append(&[accept(slot, 150)]);
                log.write().and_then(|()| log.sync()).err()
            })
            .expect("the limit is reached within 200 records");
        let text = error.to_string();
        let named = dir.join("log-00000004.seg").display().to_string();
        assert!(matches!(error, StorageError::Full { .. }), "{text}");
        assert!(
            text.contains(&named) && text.contains("--max-log-bytes"),
            "{text}"
        );
        drop(log);
        assert_eq!(segment_names(&dir).len(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_space_on_the_device_is_a_full_error_naming_the_file() {
        let path = PathBuf::from("/data/log-00000007.seg");
        let no_space = device_error(io::Error::from_raw_os_error(libc::ENOSPC));
        let error = StorageError::device(path.clone(), no_space);
        let text = error.to_string();
        assert!(matches!(error, StorageError::Full { .. }), "{text}");
        assert!(
            text.contains("log-00000007.seg") && text.contains("free space"),
            "{text}"
        );
        let quota = device_error(io::Error::from_raw_os_error(libc::EDQUOT));
        assert!(matches!(quota, DeviceError::NoSpace(_)));
        let other = device_error(io::Error::from_raw_os_error(libc::EIO));
        let other = StorageError::device(path, other);
        assert!(matches!(other, StorageError::Io { .. }), "{other}");
    }

    #[test]
    fn a_data_directory_of_the_unsealed_format_is_read_and_continued() {
        let dir = temp_dir("unsealed");
        fs::create_dir_all(&dir).unwrap();
        let old = vec![accept(1, 0), accept(2, 40)];
        let mut bytes = Vec::new();
        for write in &old {
            codec::encode(FrameKind::LogRecord, write, &mut bytes);
        }
        bytes.resize(SEGMENT_BYTES_MIN as usize, 0);
        fs::write(dir.join("log-00000001.seg"), &bytes).unwrap();
        let (mut log, state, _) = open(&dir, SMALL).unwrap();
        assert_eq!(state, replayed(&old));
        let mut writes = old;
        writes.extend(write_each(&mut log, vec![accept(3, 0)]));
        drop(log);
        assert_eq!(
            segment_names(&dir),
            ["log-00000001.seg", "log-00000002.seg"]
        );
        let (_, state, _) = open(&dir, SMALL).unwrap();
        assert_eq!(state, replayed(&writes));
        assert!(!state.damaged);
        fs::remove_dir_all(&dir).unwrap();
    }
}
