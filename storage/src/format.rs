//! The log's format on a device.
//!
//! A segment opens with a [`SegmentHeader`] (magic `KSPL`, the log format version, the
//! segment's own index, where the segment before it ended, a CRC32C). Records follow it back
//! to back: each one frame of the core codec (`FrameKind::LogRecord`: magic, version, length,
//! CRC32C, postcard body), a snapshot a run of `FrameKind::Snapshot` frames. Every frame is
//! sealed ([`codec::seal`]) with the tag of its own place ([`position_tag`]: segment index and
//! offset), so a frame read from anywhere else fails verification — a misdirected write is
//! caught even when it lands exactly on a record boundary. The unused remainder of a segment
//! holds zeros.
//!
//! Format version 1 (before segment headers and sealing) had no header and unsealed frames
//! from offset 0; such segments are still read, and the log goes on in a new segment.

use keyspace_core::codec::{self, DecodeError, FrameKind};
use keyspace_core::snapshot::{SnapshotError, SnapshotFrame, SnapshotImage};
use keyspace_core::StorageWrite;

/// The format version this build writes in segment headers.
pub const LOG_FORMAT_VERSION: u16 = 2;
/// The format of logs written before segments had headers; still read.
pub const LOG_FORMAT_VERSION_UNSEALED: u16 = 1;
pub const SEGMENT_MAGIC: [u8; 4] = *b"KSPL";
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// The unit a write reaches the medium in whole: a crash tears a write only at a multiple of
/// it, counted from the start of the segment.
pub const SECTOR_BYTES: usize = 512;

/// What opens every segment of format 2.
///
/// | offset | size | field                                        |
/// |--------|------|----------------------------------------------|
/// | 0      | 4    | magic `KSPL`                                 |
/// | 4      | 2    | log format version                           |
/// | 6      | 2    | reserved, zero                               |
/// | 8      | 8    | this segment's index                         |
/// | 16     | 8    | where the records of segment `index - 1` end |
/// | 24     | 4    | CRC32C of bytes 0..24                        |
/// | 28     | 4    | reserved, zero                               |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u16,
    pub index: u64,
    /// Where the records of the segment before this one ended when this one was started (0
    /// for the first segment of a log): a replay that finds them ending earlier lost some.
    pub previous_end: u64,
}

impl SegmentHeader {
    pub fn new(index: u64, previous_end: u64) -> SegmentHeader {
        assert!(index > 0, "segments are numbered from 1");
        assert!(
            index > 1 || previous_end == 0,
            "nothing comes before segment 1"
        );
        SegmentHeader {
            version: LOG_FORMAT_VERSION,
            index,
            previous_end,
        }
    }

    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut bytes = [0u8; SEGMENT_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&SEGMENT_MAGIC);
        bytes[4..6].copy_from_slice(&self.version.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.index.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.previous_end.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[0..24]);
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Self::decode(&bytes), Some(*self), "header round trip");
        bytes
    }

    /// The header at the start of `bytes` if it is intact, whatever its version.
    pub fn decode(bytes: &[u8]) -> Option<SegmentHeader> {
        let bytes = bytes.get(..SEGMENT_HEADER_BYTES)?;
        let field = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let stored = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
        let intact = bytes[0..4] == SEGMENT_MAGIC
            && bytes[6..8] == [0, 0]
            && bytes[28..32] == [0; 4]
            && crc32c::crc32c(&bytes[0..24]) == stored;
        intact.then(|| SegmentHeader {
            version: u16::from_le_bytes([bytes[4], bytes[5]]),
            index: field(8),
            previous_end: field(16),
        })
    }
}

/// The tag a frame written at `offset` of segment `index` is sealed with.
pub fn position_tag(index: u64, offset: u64) -> u32 {
    let mut place = [0u8; 16];
    place[0..8].copy_from_slice(&index.to_le_bytes());
    place[8..16].copy_from_slice(&offset.to_le_bytes());
    crc32c::crc32c(&place)
}

/// How the frames of one segment are read.
#[derive(Clone, Copy, Debug)]
pub struct Framing {
    pub index: u64,
    /// Format 2: every frame sealed with its position. Format 1: none is.
    pub sealed: bool,
    /// Checksums are checked (always, but for the `skip-read-verify` mutant).
    pub verify: bool,
}

impl Framing {
    /// The tag a frame at `offset` of this segment must carry.
    pub fn tag(&self, offset: usize) -> u32 {
        if self.sealed {
            position_tag(self.index, offset as u64)
        } else {
            0
        }
    }
}

/// Appends the frames of `write` to `out`, unsealed (see [`seal_frames`]).
pub fn encode_record(write: &StorageWrite, out: &mut Vec<u8>) {
    let start = out.len();
    match write {
        // A snapshot travels as its own frames (meta, then chunks of at most 1 MiB), so no
        // frame comes near the codec's size limit however large the state grows.
        StorageWrite::Snapshot(image) => image.encode_frames(out),
        _ => codec::encode(FrameKind::LogRecord, write, out),
    }
    assert!(
        out.len() >= start + codec::HEADER_BYTES,
        "a record is at least one frame"
    );
}

/// Seals every frame of `frames`, which will be written at `offset` of segment `index`, with
/// the tag of its place. `frames` holds whole frames and nothing else.
pub fn seal_frames(frames: &mut [u8], index: u64, offset: u64) {
    assert!(
        offset >= SEGMENT_HEADER_BYTES as u64,
        "records follow the segment header"
    );
    let mut at = 0;
    // Each turn moves `at` past one whole frame.
    while at < frames.len() {
        let len = claimed_len(&frames[at..]).expect("a fresh frame is whole");
        codec::seal(&mut frames[at..], position_tag(index, offset + at as u64));
        at += len;
    }
    assert_eq!(at, frames.len(), "frames tile the write exactly");
}

/// The record at the start of `rest`, which sits at `offset` of its segment: a log record
/// frame, or a snapshot's run of frames; and how many bytes it took.
pub fn decode_record(
    rest: &[u8],
    offset: usize,
    framing: Framing,
) -> Result<(StorageWrite, usize), DecodeError> {
    if !is_snapshot_frame(rest) {
        if !framing.verify {
            return decode_unverified(rest);
        }
        let tag = framing.tag(offset);
        return codec::decode_sealed::<StorageWrite>(FrameKind::LogRecord, rest, tag);
    }
    let tag_at = |at: usize| framing.tag(offset + at);
    match SnapshotImage::decode_sealed_frames_prefix(rest, tag_at) {
        Ok((image, used)) => Ok((StorageWrite::Snapshot(image.into()), used)),
        Err(SnapshotError::Frame(error)) => Err(error),
        Err(other) => Err(DecodeError::Malformed {
            reason: other.to_string(),
        }),
    }
}

/// Wrong on purpose (the `skip-read-verify` mutant): the header is checked for framing, the
/// body is trusted without its checksum.
fn decode_unverified(rest: &[u8]) -> Result<(StorageWrite, usize), DecodeError> {
    let len = codec::frame_len(FrameKind::LogRecord, rest)?;
    let body = &rest[codec::HEADER_BYTES..codec::HEADER_BYTES + len];
    postcard::from_bytes(body)
        .map(|write| (write, codec::HEADER_BYTES + len))
        .map_err(|e| DecodeError::Malformed {
            reason: e.to_string(),
        })
}

/// The length of the frame at the start of `rest`, when its header is well formed and the
/// whole frame is there (its checksum not checked).
pub fn claimed_len(rest: &[u8]) -> Option<usize> {
    [FrameKind::LogRecord, FrameKind::Snapshot]
        .into_iter()
        .find_map(|kind| codec::frame_len(kind, rest).ok())
        .map(|len| codec::HEADER_BYTES + len)
}

pub fn is_snapshot_frame(rest: &[u8]) -> bool {
    rest.len() >= codec::HEADER_BYTES
        && rest[..4] == codec::MAGIC
        && rest[6] == FrameKind::Snapshot as u8
}

/// Where, in the snapshot run at the start of `rest`, the first frame that fails verification
/// starts (frames sealed with `tag_at(offset in rest)`). A run torn between two frames has
/// whole frames up to the tear; the frame after them is the one the tear cut.
pub fn snapshot_run_failure(rest: &[u8], tag_at: impl Fn(usize) -> u32) -> usize {
    let mut at = 0;
    // `at` moves past one whole frame every turn, so this ends within `rest.len()` turns.
    while let Ok((_, used)) =
        codec::decode_sealed::<SnapshotFrame>(FrameKind::Snapshot, &rest[at..], tag_at(at))
    {
        assert!(used > 0, "a frame takes bytes");
        at += used;
    }
    assert!(at <= rest.len(), "frames lie within the bytes");
    at
}

/// How far the frame of `kind` at the start of `rest`, which failed verification, reaches: as
/// far as its header claims, all of `rest` when it claims more, one header when the header
/// itself is garbage.
pub fn failed_frame_extent(kind: FrameKind, rest: &[u8]) -> usize {
    match codec::frame_len(kind, rest) {
        Ok(len) => codec::HEADER_BYTES + len,
        Err(error) if error.is_truncated() => rest.len(),
        Err(_) => codec::HEADER_BYTES.min(rest.len()),
    }
}

/// Where the codec's magic next occurs in `bytes` at or after `from`.
pub fn find_magic(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let at = rest
        .windows(codec::MAGIC.len())
        .position(|w| w == codec::MAGIC)?;
    Some(from + at)
}

/// Whether `bytes` holds nothing but zeros (the unused remainder of a segment: often most of
/// it, so this goes a word at a time).
pub fn all_zero(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let zero_words = words
        .by_ref()
        .all(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")) == 0);
    zero_words && words.remainder().iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyspace_core::{Ballot, LogValue};

    fn accept(slot: u64) -> StorageWrite {
        StorageWrite::Accept {
            slot,
            ballot: Ballot { round: 1, node: 1 },
            value: LogValue::Noop,
        }
    }

    const VERIFIED: Framing = Framing {
        index: 3,
        sealed: true,
        verify: true,
    };

    #[test]
    fn a_header_survives_its_round_trip_and_any_flipped_bit_spoils_it() {
        let header = SegmentHeader::new(7, 4_096);
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Some(header));
        for bit in 0..SEGMENT_HEADER_BYTES * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(SegmentHeader::decode(&bad), None, "bit {bit}");
        }
    }

    #[test]
    fn a_sealed_record_verifies_only_at_its_own_place() {
        let mut frames = Vec::new();
        encode_record(&accept(1), &mut frames);
        let len = frames.len();
        encode_record(&accept(2), &mut frames);
        seal_frames(&mut frames, 3, 64);
        let first = decode_record(&frames, 64, VERIFIED).unwrap();
        assert_eq!(first, (accept(1), len));
        let second = decode_record(&frames[len..], 64 + len, VERIFIED).unwrap();
        assert_eq!(second.0, accept(2));
        // The same bytes one record further on, or in another segment: not a record.
        assert!(decode_record(&frames, 64 + len, VERIFIED).is_err());
        let elsewhere = Framing {
            index: 4,
            ..VERIFIED
        };
        assert!(decode_record(&frames, 64, elsewhere).is_err());
    }
}
