//! The log: segments on a device, appended to, written, synced, replayed and compacted.
//!
//! Writing is two steps, so a caller can crash between them: [`Log::write`] puts what was
//! [`Log::append`]ed on the device (volatile), [`Log::sync`] makes it durable. The node calls
//! both back to back (one `fdatasync`: group commit); the simulator runs a sync's latency
//! between them and may crash in it.
//!
//! A write never spans two segments: when the next one does not fit, the log goes on in a new
//! segment, which opens with its header and a `Promise` record of the highest ballot written
//! so far, so an old segment is never the only holder of the promise. After damage, or on a
//! log of the older format, the log goes on in a new segment too: nothing is written next to
//! bytes that failed verification.
//!
//! Segments are deleted once compaction has made them redundant: after a synced `Compact`
//! record, every segment but the active one whose log entries are all at or below the
//! compaction point and that a later segment's intact snapshot supersedes. While a replica
//! recovers from damaged storage nothing is deleted ([`Log::set_recovered`] ends that).
//!
//! [`StorageLimits::max_bytes`] bounds the bytes all segments take together; a write that
//! would need more, or that the device refuses for lack of space, fails with
//! [`StorageError::Full`] before anything of it is acknowledged.

use keyspace_core::{Ballot, DurableState, Mutant, Slot, StorageWrite};

use crate::device::Device;
use crate::error::{FullCause, StorageError};
use crate::format::{self, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::replay::{self, Layout, Replay, SegmentRead};
use crate::summary::Summary;

/// Size a new segment is created with (larger when one write needs more).
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest segment size [`StorageLimits`] chooses for a small `max_bytes`.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// Most bytes the first segment of a new log takes: a device may fill it with zeros at once.
pub const FIRST_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Most capacity the write buffer keeps between writes (a snapshot's frames make it grow to
/// the snapshot's size once).
const BUFFER_KEPT_BYTES_MAX: usize = 4 * 1024 * 1024;

/// How large the log may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageLimits {
    /// Size a new segment is created with (larger when one write needs more).
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

    /// The size of the first segment of a new log.
    pub fn first_segment_bytes(&self) -> u64 {
        self.segment_bytes.min(FIRST_SEGMENT_BYTES)
    }
}

/// How a log runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogConfig {
    pub limits: StorageLimits,
    /// A deliberately wrong engine (only with the `mutants` feature): `SkipReadVerify`.
    pub mutant: Option<Mutant>,
}

impl LogConfig {
    /// Whether records are verified when read: always, but for the `skip-read-verify` mutant.
    fn verify(&self) -> bool {
        let wrong = cfg!(feature = "mutants")
            && keyspace_core::mutant::is(self.mutant, Mutant::SkipReadVerify);
        !wrong
    }
}

/// One segment on the device.
#[derive(Debug)]
struct Segment {
    index: u64,
    /// Its size on the device.
    bytes: u64,
    /// What its synced records hold.
    summary: Summary,
    /// What its records written since the last sync hold.
    unsynced: Option<Summary>,
}

/// The log engine over device `D`.
pub struct Log<D: Device> {
    device: D,
    config: LogConfig,
    /// Every segment on the device, oldest first; the last one is the active one.
    segments: Vec<Segment>,
    /// Where the next write goes in the active segment.
    offset: u64,
    /// The next write starts a new segment (the active one is damaged or of the old format).
    fresh_needed: bool,
    /// Where the records of the segment before the active one end (for its header).
    previous_end: u64,
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
    /// A write or sync failed: what is durable is unknown, so nothing more is accepted.
    failed: Option<String>,
}

/// A log, the state it holds (`damaged` when a record failed verification) and the number of
/// records it replayed.
pub type Opened<D> = (Log<D>, DurableState, usize);

impl<D: Device> Log<D> {
    /// Opens the log on `device` (creating its first segment if it has none) and replays it.
    pub fn open(mut device: D, config: LogConfig) -> Result<Opened<D>, StorageError> {
        assert!(
            config.limits.segment_bytes > SEGMENT_HEADER_BYTES as u64,
            "a segment holds its header and more"
        );
        let location = device.location();
        let mut found = device
            .segments()
            .map_err(|e| StorageError::device(location, e))?;
        found.sort_unstable();
        let mut replay = Replay::default();
        let mut reads = Vec::with_capacity(found.len());
        for (i, &segment) in found.iter().enumerate() {
            let is_last = i + 1 == found.len();
            let read = replay::replay_segment(
                &mut device,
                segment,
                is_last,
                config.verify(),
                &mut replay,
            )?;
            reads.push(read);
        }
        check_previous_ends(&found, &mut reads, &mut replay);
        let (state, records, compacted_through) = replay.finish();
        let mut log = Log {
            device,
            config,
            segments: Vec::with_capacity(found.len().max(1)),
            offset: 0,
            fresh_needed: false,
            previous_end: 0,
            buffer: Vec::new(),
            buffered: Summary::default(),
            compacted_through,
            collect_due: compacted_through.is_some(),
            awaiting_recovery: state.damaged,
            failed: None,
        };
        log.take_segments(&found, &reads)?;
        log.assert_invariants();
        Ok((log, state, records))
    }

    /// Takes the replayed segments as the log's, and decides where the next write goes.
    fn take_segments(
        &mut self,
        found: &[(u64, u64)],
        reads: &[SegmentRead],
    ) -> Result<(), StorageError> {
        for (&(index, bytes), read) in found.iter().zip(reads) {
            self.segments.push(Segment {
                index,
                bytes,
                summary: read.summary,
                unsynced: None,
            });
        }
        let Some(last) = reads.last() else {
            let bytes = self.config.limits.first_segment_bytes();
            let first = self.create_segment(1, bytes)?;
            self.segments.push(first);
            return Ok(());
        };
        let active = self.active();
        match last.layout {
            Layout::Empty => {
                // Started, but nothing of its first write survived: write it again.
                let before = found
                    .len()
                    .checked_sub(2)
                    .map(|i| (found[i].0, reads[i].end));
                self.previous_end = match before {
                    Some((index, end)) if index + 1 == active.index => end,
                    _ => 0,
                };
            }
            Layout::Sealed { .. } if !active.summary.damaged => self.offset = last.end,
            // After damage, or in a segment of the old format, the log goes on in a new one.
            Layout::Sealed { .. } | Layout::Unsealed => {
                self.offset = last.end;
                self.fresh_needed = true;
            }
        }
        Ok(())
    }

    /// The replica no longer recovers from damaged storage: segments that failed
    /// verification at open may be deleted once compaction has made them redundant (at the
    /// next sync).
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

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The device, once the log is done with it (the simulator crashes it).
    pub fn into_device(self) -> D {
        self.device
    }

    /// Queues `writes` to be written, after everything queued before.
    pub fn append(&mut self, writes: &[StorageWrite]) {
        for write in writes {
            let before = self.buffer.len();
            self.buffered.note(write);
            format::encode_record(write, &mut self.buffer);
            assert!(self.buffer.len() > before, "every record takes bytes");
        }
    }

    /// Writes everything appended to the device, not yet durably ([`Log::sync`] does that).
    pub fn write(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = self.write_buffer();
        self.note_failure(&result);
        result
    }

    /// Makes everything written durable; then deletes what compaction made redundant.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.sync_written();
        self.note_failure(&result);
        result?;
        if self.collect_due && !self.awaiting_recovery {
            self.collect();
        }
        self.assert_invariants();
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), StorageError> {
        let head = self.head(self.active().index, self.previous_end);
        if self.fresh_needed || !self.fits(head.len()) {
            self.roll_over()?;
        }
        if self.offset == 0 {
            let mut head = self.head(self.active().index, self.previous_end);
            head.append(&mut self.buffer);
            self.buffer = head;
            let ballot = self.max_ballot();
            self.buffered.note(&StorageWrite::Promise { ballot });
        }
        let (index, offset) = self.position();
        let body_from = if offset == 0 { SEGMENT_HEADER_BYTES } else { 0 };
        assert!(
            offset > 0 || SegmentHeader::decode(&self.buffer).is_some_and(|h| h.index == index),
            "a segment's first write opens with its header"
        );
        let end = offset + self.buffer.len() as u64;
        assert!(
            end <= self.active().bytes,
            "a write stays within its segment"
        );
        format::seal_frames(
            &mut self.buffer[body_from..],
            index,
            offset + body_from as u64,
        );
        self.device
            .write(index, offset, &self.buffer)
            .map_err(|e| StorageError::device(self.device.path(index), e))?;
        assert!(end > self.offset, "the log only grows");
        self.offset = end;
        let written = std::mem::take(&mut self.buffered);
        let active = self.segments.last_mut().expect("the active segment");
        active
            .unsynced
            .get_or_insert_with(Summary::default)
            .join(written);
        self.buffer.clear();
        if self.buffer.capacity() > BUFFER_KEPT_BYTES_MAX {
            self.buffer = Vec::new(); // a snapshot passed through: give its memory back
        }
        Ok(())
    }

    /// The bytes that open segment `index` (when nothing is written to the active segment
    /// yet): its header and a promise of the highest ballot so far (none when nothing was
    /// promised). Empty when the active segment has records already.
    fn head(&self, index: u64, previous_end: u64) -> Vec<u8> {
        if self.offset > 0 && index == self.active().index {
            return Vec::new();
        }
        let header = SegmentHeader::new(index, previous_end);
        let mut head = header.encode().to_vec();
        let ballot = self.max_ballot();
        if ballot > Ballot::ZERO {
            format::encode_record(&StorageWrite::Promise { ballot }, &mut head);
        }
        head
    }

    /// Whether the buffer, after a head of `head_bytes`, fits in the active segment.
    fn fits(&self, head_bytes: usize) -> bool {
        let needed = (head_bytes + self.buffer.len()) as u64;
        self.offset + needed <= self.active().bytes
    }

    fn sync_written(&mut self) -> Result<(), StorageError> {
        for i in 0..self.segments.len() {
            self.sync_segment(i)?;
        }
        Ok(())
    }

    /// Makes what was written to the `i`th segment durable, and takes note of what it holds.
    fn sync_segment(&mut self, i: usize) -> Result<(), StorageError> {
        let Some(written) = self.segments[i].unsynced else {
            return Ok(());
        };
        let index = self.segments[i].index;
        self.device
            .sync(index)
            .map_err(|e| StorageError::device(self.device.path(index), e))?;
        let segment = &mut self.segments[i];
        assert!(
            segment.index == index,
            "the segment synced is the one written"
        );
        segment.unsynced = None;
        segment.summary.join(written);
        if written.compact_through > self.compacted_through {
            self.compacted_through = written.compact_through;
            self.collect_due = true;
        }
        Ok(())
    }

    /// Continues the log in a new segment large enough for the buffer. What was written to
    /// the active one is made durable first, so a crash never keeps a later segment's write
    /// without an earlier one's.
    fn roll_over(&mut self) -> Result<(), StorageError> {
        self.sync_segment(self.segments.len() - 1)?;
        let (active, offset) = self.position();
        let index = active + 1;
        let needed = (self.head(index, offset).len() + self.buffer.len()) as u64;
        let bytes = self.config.limits.segment_bytes.max(needed);
        assert!(
            offset <= self.active().bytes,
            "the old segment was written within its size"
        );
        let segment = self.create_segment(index, bytes)?;
        self.segments.push(segment);
        self.offset = 0;
        self.previous_end = offset;
        self.fresh_needed = false;
        Ok(())
    }

    /// Creates segment `index` of `bytes` bytes, if the limit leaves room for it.
    fn create_segment(&mut self, index: u64, bytes: u64) -> Result<Segment, StorageError> {
        assert!(
            self.segments.last().is_none_or(|s| s.index < index),
            "segment indexes increase"
        );
        let path = self.device.path(index);
        let total_bytes = self.segments.iter().map(|s| s.bytes).sum::<u64>() + bytes;
        if let Some(max_bytes) = self.config.limits.max_bytes.filter(|m| total_bytes > *m) {
            let cause = FullCause::Limit {
                segment_bytes: bytes,
                total_bytes,
                max_bytes,
            };
            return Err(StorageError::Full { path, cause });
        }
        let size = self
            .device
            .create(index, bytes)
            .map_err(|e| StorageError::device(path, e))?;
        assert!(size >= bytes, "a device creates at least what is asked");
        Ok(Segment {
            index,
            bytes: size,
            summary: Summary::default(),
            unsynced: None,
        })
    }

    /// Deletes every segment but the active one that compaction has made redundant.
    fn collect(&mut self) {
        self.collect_due = false;
        let Some(through) = self.compacted_through else {
            return;
        };
        // From the newest down, against what the segments kept after each one hold.
        let mut later = self.active().summary;
        let mut doomed = Vec::new();
        for (i, segment) in self.segments.iter().enumerate().rev().skip(1) {
            if segment.unsynced.is_none() && segment.summary.redundant(through, &later) {
                doomed.push(i);
            } else {
                later.join(segment.summary);
            }
        }
        let mut deleted = 0;
        // Newest first, so the positions of those still to go do not move.
        for i in doomed {
            assert!(i + 1 < self.segments.len(), "the active segment stays");
            let index = self.segments[i].index;
            match self.device.remove(index) {
                Ok(()) => {
                    self.segments.remove(i);
                    deleted += 1;
                }
                // Harmless: it replays to the same state; the next compaction tries again.
                Err(error) => {
                    tracing::warn!(path = %self.device.path(index).display(), %error, "cannot delete a redundant log segment")
                }
            }
        }
        if deleted > 0 {
            tracing::info!(
                deleted,
                through,
                "deleted log segments compaction made redundant"
            );
        }
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("the active segment")
    }

    /// The highest ballot of any Promise or Accept record written.
    fn max_ballot(&self) -> Ballot {
        let written = self.segments.iter().map(|s| {
            let unsynced = s.unsynced.map_or(Ballot::ZERO, |u| u.max_ballot);
            s.summary.max_ballot.max(unsynced)
        });
        written.max().unwrap_or(Ballot::ZERO)
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        match &self.failed {
            None => Ok(()),
            Some(what) => Err(StorageError::Failed {
                path: self.device.location(),
                what: what.clone(),
            }),
        }
    }

    fn note_failure(&mut self, result: &Result<(), StorageError>) {
        if let Err(error) = result {
            self.failed = Some(error.to_string());
        }
    }

    /// What holds between calls: segments in order, the active one last and large enough for
    /// what was written to it, the next write within it.
    fn assert_invariants(&self) {
        assert!(!self.segments.is_empty(), "a log has an active segment");
        assert!(
            self.segments.windows(2).all(|w| w[0].index < w[1].index),
            "segments are in order"
        );
        let active = self.active();
        assert!(
            self.offset <= active.bytes,
            "the next write is within the active segment"
        );
        assert!(
            self.offset == 0 || self.offset >= SEGMENT_HEADER_BYTES as u64 || self.fresh_needed,
            "a written segment holds its header"
        );
    }
}

/// Marks damaged every segment that ends before the header of the segment after it says it
/// did: its last records were lost (a misdirected write, say), though what is left looks whole.
fn check_previous_ends(found: &[(u64, u64)], reads: &mut [SegmentRead], replay: &mut Replay) {
    assert_eq!(found.len(), reads.len(), "one read per segment");
    for i in 1..reads.len() {
        let Layout::Sealed {
            previous_end: Some(previous_end),
        } = reads[i].layout
        else {
            continue;
        };
        let (before, after) = (found[i - 1].0, found[i].0);
        if before + 1 == after && reads[i - 1].end != previous_end {
            tracing::warn!(segment = before, end = reads[i - 1].end, expected = previous_end, "a log segment ends before its successor says it did; the replica will recover what it may have forgotten from its peers before it votes");
            reads[i - 1].summary.damaged = true;
            replay.state.damaged = true;
        }
    }
}
