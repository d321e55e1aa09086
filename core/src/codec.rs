//! The one framing codec for every record on disk and every frame on the wire.
//!
//! Layout (little-endian), 16-byte header then body:
//!
//! | offset | size | field                                           |
//! |--------|------|-------------------------------------------------|
//! | 0      | 4    | magic `KSPX`                                    |
//! | 4      | 2    | format version ([`FORMAT_VERSION`])             |
//! | 6      | 1    | kind ([`FrameKind`])                            |
//! | 7      | 1    | reserved, zero                                  |
//! | 8      | 4    | body length in bytes (≤ [`BODY_MAX_BYTES`])     |
//! | 12     | 4    | CRC32C over bytes 0..12 and the body            |
//! | 16     | len  | body: the value in postcard                     |
//!
//! Every frame is verified when it is read, and [`encode`] verifies its own output before
//! handing it out, so a bad encoder can never put an unreadable record on disk.
//!
//! A frame may be *sealed* with a 32-bit tag ([`seal`]): its stored checksum is then the
//! CRC32C XOR the tag, and it verifies only for a reader that expects that tag
//! ([`decode_sealed`]). The log seals each record with a tag of the place it is written to, so
//! a record found anywhere else fails verification. Wire frames are unsealed (tag 0).

use serde::de::DeserializeOwned;
use serde::Serialize;

pub const MAGIC: [u8; 4] = *b"KSPX";
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_BYTES: usize = 16;
/// Largest body accepted; bounds what a corrupt length field can make a reader allocate.
pub const BODY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// What a frame holds; a reader refuses a frame of a kind it did not expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A `StorageWrite` in a log segment.
    LogRecord = 1,
    /// A replica-to-replica `Message`.
    PeerMessage = 2,
    /// A snapshot header or chunk.
    Snapshot = 3,
    /// A peer handshake.
    Handshake = 4,
}

impl FrameKind {
    fn from_u8(byte: u8) -> Option<FrameKind> {
        match byte {
            1 => Some(FrameKind::LogRecord),
            2 => Some(FrameKind::PeerMessage),
            3 => Some(FrameKind::Snapshot),
            4 => Some(FrameKind::Handshake),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not enough bytes yet: `needed` in total for this frame (at least the header).
    #[error("truncated frame: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("bad magic {found:02x?}: not a keyspace frame")]
    BadMagic { found: [u8; 4] },
    #[error("format version {found} is newer than this build understands ({FORMAT_VERSION})")]
    UnsupportedVersion { found: u16 },
    #[error("frame kind {found} where {expected:?} was expected")]
    WrongKind { found: u8, expected: FrameKind },
    #[error("frame body of {len} bytes exceeds the limit of {BODY_MAX_BYTES}")]
    Oversized { len: usize },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadChecksum { stored: u32, computed: u32 },
    #[error("checksum matched but the body does not decode: {reason}")]
    Malformed { reason: String },
}

impl DecodeError {
    /// True when more bytes could complete the frame (a torn tail, or a stream mid-frame).
    pub fn is_truncated(&self) -> bool {
        matches!(self, DecodeError::Truncated { .. })
    }
}

/// Appends one frame holding `value` to `out`.
pub fn encode<T: Serialize + DeserializeOwned + PartialEq>(
    kind: FrameKind,
    value: &T,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    let body = postcard::to_extend(value, std::mem::take(out)).expect("postcard encoding");
    *out = body;
    let len = out.len() - start - HEADER_BYTES;
    assert!(
        len <= BODY_MAX_BYTES,
        "frame body of {len} bytes is over the limit"
    );
    let header = &mut out[start..start + HEADER_BYTES];
    header[0..4].copy_from_slice(&MAGIC);
    header[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[6] = kind as u8;
    header[7] = 0;
    header[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    let crc = checksum(&out[start..start + 12], &out[start + HEADER_BYTES..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
    // Verify before anything is written anywhere.
    let (decoded, used): (T, usize) = decode(kind, &out[start..]).expect("fresh frame decodes");
    assert!(
        used == out.len() - start && decoded == *value,
        "frame round trip"
    );
}

/// Reads the frame at the start of `buf`: its value and how many bytes it took.
pub fn decode<T: DeserializeOwned>(kind: FrameKind, buf: &[u8]) -> Result<(T, usize), DecodeError> {
    decode_sealed(kind, buf, 0)
}

/// Like [`decode`] for a frame sealed with `tag` (see [`seal`]).
pub fn decode_sealed<T: DeserializeOwned>(
    kind: FrameKind,
    buf: &[u8],
    tag: u32,
) -> Result<(T, usize), DecodeError> {
    let len = frame_len(kind, buf)?;
    let total = HEADER_BYTES + len;
    assert!(
        len <= BODY_MAX_BYTES && total <= buf.len(),
        "frame_len let a bad frame by"
    );
    let body = &buf[HEADER_BYTES..total];
    let stored = stored_checksum(buf) ^ tag;
    let computed = checksum(&buf[0..12], body);
    if stored != computed {
        return Err(DecodeError::BadChecksum { stored, computed });
    }
    let value = postcard::from_bytes(body).map_err(|e| DecodeError::Malformed {
        reason: e.to_string(),
    })?;
    Ok((value, total))
}

/// Checks the header at the start of `buf` and returns the body length, or why not. Succeeds
/// only when the whole frame is present.
pub fn frame_len(kind: FrameKind, buf: &[u8]) -> Result<usize, DecodeError> {
    let truncated = |needed| DecodeError::Truncated {
        needed,
        available: buf.len(),
    };
    if buf.len() < HEADER_BYTES {
        // Judge what is there already, so garbage is refused without waiting for more.
        check_magic(&buf[..buf.len().min(4)])?;
        return Err(truncated(HEADER_BYTES));
    }
    check_magic(&buf[0..4])?;
    let version = u16::from_le_bytes([buf[4], buf[5]]);
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version });
    }
    if FrameKind::from_u8(buf[6]) != Some(kind) {
        return Err(DecodeError::WrongKind {
            found: buf[6],
            expected: kind,
        });
    }
    let len = u32::from_le_bytes(buf[8..12].try_into().expect("4 bytes")) as usize;
    if len > BODY_MAX_BYTES {
        return Err(DecodeError::Oversized { len });
    }
    if buf.len() < HEADER_BYTES + len {
        return Err(truncated(HEADER_BYTES + len));
    }
    Ok(len)
}

fn check_magic(prefix: &[u8]) -> Result<(), DecodeError> {
    if prefix != &MAGIC[..prefix.len()] {
        let mut found = [0u8; 4];
        found[..prefix.len()].copy_from_slice(prefix);
        return Err(DecodeError::BadMagic { found });
    }
    Ok(())
}

/// Seals the whole frame at the start of `frame` with `tag`: a reader must expect that tag
/// ([`decode_sealed`]) for it to verify. Sealing twice with the same tag unseals.
pub fn seal(frame: &mut [u8], tag: u32) {
    assert!(
        frame.len() >= HEADER_BYTES && frame[0..4] == MAGIC,
        "only a frame is sealed"
    );
    let sealed = stored_checksum(frame) ^ tag;
    frame[12..16].copy_from_slice(&sealed.to_le_bytes());
}

fn stored_checksum(frame: &[u8]) -> u32 {
    u32::from_le_bytes(frame[12..16].try_into().expect("4 bytes"))
}

/// The format version of the frame at the start of `buf` (sealed with `tag`) when it is newer
/// than this build's and the frame is intact. The header layout (magic, version, kind, a spare byte, body length,
/// CRC32C over the first 12 header bytes and the body) is the same in every version — a newer
/// version may change bodies, never the header — so an older build can still tell a frame a
/// newer build wrote (refuse to run: its data is not this build's to interpret) from a version
/// field that a flipped bit made look newer (damage, to be recovered like any other).
pub fn newer_version(buf: &[u8], tag: u32) -> Option<u16> {
    if buf.len() < HEADER_BYTES || buf[0..4] != MAGIC {
        return None;
    }
    let version = u16::from_le_bytes([buf[4], buf[5]]);
    let len = u32::from_le_bytes(buf[8..12].try_into().expect("4 bytes")) as usize;
    let body = buf.get(HEADER_BYTES..HEADER_BYTES.checked_add(len)?)?;
    let stored = stored_checksum(buf) ^ tag;
    (version > FORMAT_VERSION && checksum(&buf[0..12], body) == stored).then_some(version)
}

/// Whether the frame at the start of `buf` (sealed with `tag`) verifies once one bit of its
/// length field is flipped back: a whole frame whose length was damaged at rest, not one a
/// crash cut short.
pub fn length_bit_flipped(buf: &[u8], tag: u32) -> bool {
    if buf.len() < HEADER_BYTES || buf[0..4] != MAGIC {
        return false;
    }
    let mut header: [u8; 12] = buf[0..12].try_into().expect("12 bytes");
    let len = u32::from_le_bytes(buf[8..12].try_into().expect("4 bytes"));
    let stored = stored_checksum(buf) ^ tag;
    (0..32).any(|bit| {
        let candidate = len ^ (1 << bit);
        header[8..12].copy_from_slice(&candidate.to_le_bytes());
        let end = HEADER_BYTES.saturating_add(candidate as usize);
        end <= buf.len() && checksum(&header, &buf[HEADER_BYTES..end]) == stored
    })
}

/// Sets the version field of the frame at the start of `frame` and its checksum to match, as a
/// build of that version would have written it. For tests of version handling.
pub fn rewrite_version(frame: &mut [u8], version: u16) {
    assert!(
        frame.len() >= HEADER_BYTES && frame[0..4] == MAGIC,
        "not a frame"
    );
    frame[4..6].copy_from_slice(&version.to_le_bytes());
    let len = u32::from_le_bytes(frame[8..12].try_into().expect("4 bytes")) as usize;
    let crc = checksum(&frame[0..12], &frame[HEADER_BYTES..HEADER_BYTES + len]);
    frame[12..16].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(header: &[u8], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_field_with_one_flipped_bit_is_told_from_a_short_frame() {
        let mut out = Vec::new();
        encode(FrameKind::LogRecord, &vec![7u8; 40], &mut out);
        out.extend_from_slice(&[0; 64]); // the zeros after the last record
        assert!(!length_bit_flipped(&out, 0), "an intact frame");
        let mut flipped = out.clone();
        flipped[8] ^= 0x20; // the length now points into the zeros
        assert!(length_bit_flipped(&flipped, 0));
        let mut torn = out.clone();
        torn[HEADER_BYTES + 10..].fill(0); // the body cut short, its length intact
        assert!(!length_bit_flipped(&torn, 0));
    }

    #[test]
    fn a_newer_version_is_recognised_only_on_an_intact_frame() {
        let mut out = Vec::new();
        encode(FrameKind::LogRecord, &7u64, &mut out);
        assert_eq!(newer_version(&out, 0), None, "this build's own version");
        rewrite_version(&mut out, FORMAT_VERSION + 1);
        assert_eq!(newer_version(&out, 0), Some(FORMAT_VERSION + 1));
        let mut flipped = out.clone();
        flipped[5] ^= 0x01; // a flipped bit makes the version look newer still
        assert_eq!(newer_version(&flipped, 0), None);
        let mut rotten = out.clone();
        rotten[HEADER_BYTES] ^= 0x01;
        assert_eq!(newer_version(&rotten, 0), None);
    }
    use crate::msg::LogValue;
    use crate::storage::StorageWrite;
    use crate::types::Ballot;
    use proptest::prelude::*;

    fn record() -> StorageWrite {
        StorageWrite::Accept {
            slot: 7,
            ballot: Ballot { round: 3, node: 2 },
            value: LogValue::Noop,
        }
    }

    fn frame() -> Vec<u8> {
        let mut out = Vec::new();
        encode(FrameKind::LogRecord, &record(), &mut out);
        out
    }

    #[test]
    fn a_sealed_frame_verifies_only_under_its_own_tag() {
        let mut sealed = frame();
        seal(&mut sealed, 0x5eed_0001);
        let read = decode_sealed::<StorageWrite>(FrameKind::LogRecord, &sealed, 0x5eed_0001);
        assert_eq!(read.unwrap().0, record());
        for tag in [0, 0x5eed_0002, 0xffff_ffff] {
            let err = decode_sealed::<StorageWrite>(FrameKind::LogRecord, &sealed, tag);
            assert!(
                matches!(err, Err(DecodeError::BadChecksum { .. })),
                "tag {tag:#x}"
            );
        }
        seal(&mut sealed, 0x5eed_0001);
        assert_eq!(sealed, frame(), "sealing twice with one tag unseals");
    }

    #[test]
    fn round_trip_reports_the_bytes_used() {
        let mut buf = frame();
        buf.extend_from_slice(b"next");
        let (value, used): (StorageWrite, usize) = decode(FrameKind::LogRecord, &buf).unwrap();
        assert_eq!(value, record());
        assert_eq!(used, buf.len() - 4);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let clean = frame();
        for byte in 0..clean.len() {
            for bit in 0..8 {
                let mut bad = clean.clone();
                bad[byte] ^= 1 << bit;
                let result = decode::<StorageWrite>(FrameKind::LogRecord, &bad);
                assert!(
                    result.is_err(),
                    "flip of byte {byte} bit {bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn every_torn_prefix_is_truncated_not_corrupt() {
        let clean = frame();
        for cut in 0..clean.len() {
            let err = decode::<StorageWrite>(FrameKind::LogRecord, &clean[..cut]).unwrap_err();
            assert!(err.is_truncated(), "cut at {cut}: {err}");
        }
    }

    #[test]
    fn newer_format_version_is_refused_by_name() {
        let mut bad = frame();
        bad[4] = 9;
        let err = decode::<StorageWrite>(FrameKind::LogRecord, &bad).unwrap_err();
        assert_eq!(err, DecodeError::UnsupportedVersion { found: 9 });
    }

    #[test]
    fn garbage_is_refused_at_the_first_byte() {
        let err = decode::<StorageWrite>(FrameKind::LogRecord, b"G").unwrap_err();
        assert!(matches!(err, DecodeError::BadMagic { .. }), "{err}");
    }

    #[test]
    fn a_frame_of_another_kind_is_refused() {
        let err = decode::<StorageWrite>(FrameKind::PeerMessage, &frame()).unwrap_err();
        assert!(matches!(err, DecodeError::WrongKind { .. }), "{err}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<StorageWrite>(FrameKind::LogRecord, &bytes);
        }
    }
}
