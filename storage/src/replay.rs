//! Reading a log back: every segment, frame by frame, with the torn-tail and damage rules.
//!
//! The unused, zero-filled remainder of a segment ends it. A frame that fails to decode at the
//! end of the last segment, with nothing but zeros after it, is a torn write that was never
//! acknowledged: it is cut off, and that is not damage. Any other failure — a bad checksum or
//! garbage in the middle of the log, a frame sealed for another place, a sector that cannot be
//! read, a damaged segment header, a segment that ends before the next one's header says it
//! did — is skipped: the replay resumes at the next offset where a whole record verifies, and
//! the state comes back with `damaged` set. A record or segment header of a newer format
//! version refuses to start, naming the file and the offset: that is a newer build's data, not
//! damage.

use std::path::Path;

use keyspace_core::codec::{self, DecodeError, FrameKind};
use keyspace_core::{DurableState, Slot, StorageWrite};

use crate::device::{Device, DeviceError};
use crate::error::StorageError;
use crate::format::{
    all_zero, decode_record, failed_frame_extent, find_magic, is_snapshot_frame,
    snapshot_run_failure, Framing, SegmentHeader, LOG_FORMAT_VERSION, SECTOR_BYTES,
    SEGMENT_HEADER_BYTES,
};
use crate::summary::Summary;

/// A segment is read in blocks of this size at open ...
pub const READ_BLOCK_BYTES: usize = 64 * 1024;
/// ... and a block that fails to read is read again sector by sector.
pub const READ_SECTOR_BYTES: usize = 512;
/// What stands in for a sector that cannot be read: never a valid frame header.
pub const UNREADABLE_FILL: u8 = 0xff;

/// The state replayed so far, and what decides at the end whether it is damaged.
#[derive(Default)]
pub struct Replay {
    pub state: DurableState,
    pub records: usize,
    /// The highest slot of a Chosen record whose Accept record was not there.
    orphan_chosen: Option<Slot>,
    pub compacted_through: Option<Slot>,
}

impl Replay {
    pub fn apply(&mut self, write: &StorageWrite) {
        let promised = self.state.promised;
        self.apply_one(write);
        assert!(
            self.state.promised >= promised,
            "a replayed promise never goes back"
        );
    }

    fn apply_one(&mut self, write: &StorageWrite) {
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

    pub fn finish(mut self) -> (DurableState, usize, Option<Slot>) {
        if self.orphan_chosen > self.compacted_through {
            self.state.damaged = true;
        }
        (self.state, self.records, self.compacted_through)
    }
}

/// How a segment begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Nothing written yet: all zeros.
    Empty,
    /// Format 2: a header, then sealed frames. `previous_end` is the header's, when the
    /// header is intact and this segment's own.
    Sealed { previous_end: Option<u64> },
    /// Format 1: unsealed frames from offset 0.
    Unsealed,
}

/// What one segment holds.
#[derive(Debug)]
pub struct SegmentRead {
    pub layout: Layout,
    pub summary: Summary,
    /// Where its records end.
    pub end: u64,
}

/// How the records of a segment end.
#[derive(Debug, PartialEq, Eq)]
pub enum Tail {
    /// At this offset, followed by zeros.
    Clean(usize),
    /// At this offset, followed by a torn write of `len` bytes (then zeros).
    Torn { at: usize, len: usize },
}

/// Replays segment `index` of `bytes` bytes into `replay`; cuts off a torn tail on the device.
pub fn replay_segment<D: Device>(
    device: &mut D,
    (index, bytes): (u64, u64),
    is_last: bool,
    verify: bool,
    replay: &mut Replay,
) -> Result<SegmentRead, StorageError> {
    let path = device.path(index);
    let len = usize::try_from(bytes).expect("a segment fits in memory");
    let (data, unreadable) = read_blocks(len, |buf, at| device.read(index, at as u64, buf));
    assert_eq!(data.len(), len, "a segment is read whole");
    if let Some(first) = unreadable.first() {
        tracing::warn!(path = %path.display(), offset = first, sectors = unreadable.len(), "log sectors cannot be read; the replica will recover what it may have forgotten from its peers before it votes");
    }
    let (layout, header_damaged) = segment_layout(&path, &data, index)?;
    let (from, sealed) = match layout {
        Layout::Empty => {
            let summary = Summary::default();
            return Ok(SegmentRead {
                layout,
                summary,
                end: 0,
            });
        }
        Layout::Sealed { .. } => (SEGMENT_HEADER_BYTES, true),
        Layout::Unsealed => (0, false),
    };
    let framing = Framing {
        index,
        sealed,
        verify,
    };
    let damaged = !unreadable.is_empty();
    let scan = Scan {
        path: &path,
        bytes: &data,
        framing,
        unreadable: damaged,
        is_last,
    };
    let (tail, mut summary) = scan.replay(from, replay)?;
    summary.damaged |= header_damaged;
    replay.state.damaged |= header_damaged;
    let end = match tail {
        Tail::Clean(end) => end,
        Tail::Torn { at, len } => {
            let zeros = vec![0u8; len];
            let cut = device
                .write(index, at as u64, &zeros)
                .and_then(|()| device.sync(index));
            cut.map_err(|e| StorageError::device(path.clone(), e))?;
            at
        }
    };
    assert!(end >= from && end <= len, "records end within the segment");
    Ok(SegmentRead {
        layout,
        summary,
        end: end as u64,
    })
}

/// How segment `index` (its bytes `data`) begins, and whether its header is damaged.
fn segment_layout(path: &Path, data: &[u8], index: u64) -> Result<(Layout, bool), StorageError> {
    if all_zero(data) {
        return Ok((Layout::Empty, false));
    }
    if let Some(header) = SegmentHeader::decode(data) {
        if header.version > LOG_FORMAT_VERSION {
            return Err(StorageError::NewerFormat {
                path: path.to_path_buf(),
                offset: 0,
                found: header.version,
            });
        }
        let own = header.version == LOG_FORMAT_VERSION && header.index == index;
        if !own {
            tracing::warn!(path = %path.display(), found = header.index, "a segment header of another segment or version; the replica will recover what it may have forgotten from its peers before it votes");
        }
        let previous_end = own.then_some(header.previous_end);
        return Ok((Layout::Sealed { previous_end }, !own));
    }
    let unsealed = Framing {
        index,
        sealed: false,
        verify: true,
    };
    if decode_record(data, 0, unsealed).is_ok() {
        return Ok((Layout::Unsealed, false));
    }
    tracing::warn!(path = %path.display(), "a segment header failed verification; the replica will recover what it may have forgotten from its peers before it votes");
    Ok((Layout::Sealed { previous_end: None }, true))
}

/// One segment's bytes being replayed.
struct Scan<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    framing: Framing,
    /// Some of it could not be read.
    unreadable: bool,
    is_last: bool,
}

impl Scan<'_> {
    /// Replays the records from `from`; failed records are skipped to the next one that
    /// verifies.
    fn replay(&self, from: usize, replay: &mut Replay) -> Result<(Tail, Summary), StorageError> {
        let bytes = self.bytes;
        let mut summary = Summary {
            damaged: self.unreadable,
            ..Summary::default()
        };
        let mut offset = from;
        // Each turn moves `offset` forward, so this ends within `bytes.len()` turns.
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            match decode_record(rest, offset, self.framing) {
                Ok((write, used)) => {
                    assert!(
                        used > 0 && used <= rest.len(),
                        "a record lies within the segment"
                    );
                    replay.apply(&write);
                    summary.note(&write);
                    offset += used;
                }
                Err(_) if all_zero(rest) => break, // the unused, zero-filled remainder
                Err(error) => match self.failed(offset, error)? {
                    Some(tail) => {
                        replay.state.damaged |= summary.damaged;
                        return Ok((tail, summary));
                    }
                    None => {
                        let next = self.resync(offset);
                        assert!(next > offset, "resynchronising moves forward");
                        summary.damaged = true;
                        offset = next;
                    }
                },
            }
        }
        replay.state.damaged |= summary.damaged;
        assert!(offset <= bytes.len(), "records end within the segment");
        Ok((Tail::Clean(offset), summary))
    }

    /// What a record that failed at `offset` means: a newer build's data (an error), a torn
    /// tail (`Some`), or damage to skip (`None`).
    fn failed(&self, offset: usize, error: DecodeError) -> Result<Option<Tail>, StorageError> {
        let rest = &self.bytes[offset..];
        let tag = self.framing.tag(offset);
        if let Some(found) = codec::newer_version(rest, tag) {
            return Err(StorageError::NewerFormat {
                path: self.path.to_path_buf(),
                offset: offset as u64,
                found,
            });
        }
        if self.is_last && !self.unreadable && self.is_torn_tail(offset) {
            tracing::warn!(path = %self.path.display(), offset, %error, "cutting off a torn write at the end of the log");
            let len = rest.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
            assert!(len > 0, "a torn write left bytes behind");
            return Ok(Some(Tail::Torn { at: offset, len }));
        }
        tracing::warn!(path = %self.path.display(), offset, %error, "a log record failed verification; skipping to the next record that verifies. The replica will recover what it may have forgotten from its peers before it votes");
        Ok(None)
    }

    /// Where the next record that verifies starts after a failure at `from`, or the end of
    /// the bytes. The extent a frame header claims is passed over whole — that of a verified
    /// frame that starts no record (a chunk of a snapshot whose meta was lost), and that of
    /// the failed frame when its header is intact — so that bytes inside a frame's body, a
    /// client's value among them, are not taken for records of their own.
    fn resync(&self, from: usize) -> usize {
        let bytes = self.bytes;
        let mut at = from + crate::format::claimed_len(&bytes[from..]).unwrap_or(1);
        // `at` moves forward every turn.
        while let Some(found) = find_magic(bytes, at) {
            let rest = &bytes[found..];
            if decode_record(rest, found, self.framing).is_ok() {
                return found;
            }
            at = found + crate::format::claimed_len(rest).unwrap_or(1);
        }
        bytes.len()
    }

    /// Whether the failed frame at `offset` is a torn write: the last batch, cut short by a
    /// crash before it was acknowledged. Writes reach the medium in whole sectors, so a tear
    /// leaves the frame's bytes from some sector boundary on as the zeros the segment was
    /// created with, and nothing verifies after it. A frame that is all there but fails its
    /// checksum — a flipped bit, or a length field a flipped bit made point into the zeros —
    /// is damage, never a tear: it may be an acknowledged record.
    ///
    /// Within a snapshot's run of frames, the frame judged is the first that fails: a tear
    /// between two frames leaves the frames before it whole, and the next one all zeros.
    fn is_torn_tail(&self, offset: usize) -> bool {
        let rest = &self.bytes[offset..];
        let (failed, kind) = if is_snapshot_frame(rest) {
            let tag_at = |at: usize| self.framing.tag(offset + at);
            (snapshot_run_failure(rest, tag_at), FrameKind::Snapshot)
        } else {
            (0, FrameKind::LogRecord)
        };
        let covered = failed + failed_frame_extent(kind, &rest[failed..]);
        assert!(
            covered <= rest.len(),
            "a frame's extent lies within the segment"
        );
        let zeros_from = rest.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
        let first_zero_sector = (offset + zeros_from).next_multiple_of(SECTOR_BYTES) - offset;
        zeros_from <= covered
            && first_zero_sector < covered.max(1)
            && !codec::length_bit_flipped(&rest[failed..], self.framing.tag(offset + failed))
            && !self.record_after(offset)
    }

    /// Whether a whole record verifies anywhere after the first byte at `offset`.
    fn record_after(&self, offset: usize) -> bool {
        let mut at = offset + 1;
        // `at` moves forward every turn.
        while let Some(found) = find_magic(self.bytes, at) {
            if decode_record(&self.bytes[found..], found, self.framing).is_ok() {
                return true;
            }
            at = found + 1;
        }
        false
    }
}

/// Reads `len` bytes with `read_at` block by block; a block that fails is read again sector
/// by sector, and a sector that still fails is filled with [`UNREADABLE_FILL`] and reported.
pub fn read_blocks(
    len: usize,
    mut read_at: impl FnMut(&mut [u8], usize) -> Result<(), DeviceError>,
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
    assert!(
        unreadable.len() <= len.div_ceil(READ_SECTOR_BYTES),
        "at most every sector is unreadable"
    );
    (bytes, unreadable)
}
