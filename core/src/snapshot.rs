//! Snapshots of the state machine as checksummed data: one image format for disk and wire.
//!
//! An image is the encoding of the whole [`StateMachine`] (data *and* sessions; see
//! [`StateMachine::encode`], which reads images from before databases too) plus a
//! [`SnapshotMeta`] naming the log slot and chain hash it covers and a CRC32C over the body. On
//! disk and on the wire it travels as codec frames (`FrameKind::Snapshot`): the meta first, then
//! the body in chunks of at most [`SNAPSHOT_CHUNK_BYTES`], each checksummed on its own, so a
//! transfer can resume at any chunk boundary and a bad chunk is caught where it is.
//!
//! The body is the state machine's encoding followed by the [`Configuration`] in force at the
//! image's slot. Images taken before configurations were replicated end after the state; they
//! still read, and carry no configuration (the replica's founding one applies).

use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError, FrameKind};
use crate::kv::StateMachine;
use crate::membership::Configuration;
use crate::types::{Ballot, Slot};

/// Largest chunk of an image body in one frame.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;
/// Most bytes a frame's body holds besides a chunk's bytes: the variant, the offset and the
/// length (varints), or a whole meta.
const FRAME_FIELDS_BYTES_MAX: usize = 128;

/// What an image covers and how to check it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last log slot applied to the image's state.
    pub slot: Slot,
    /// The replica's applied-log hash chain at `slot`.
    pub applied_chain: u64,
    /// The acceptor's promise when the image was taken.
    pub promised: Ballot,
    /// `StateMachine::state_hash` of the image's state.
    pub state_hash: u64,
    pub body_len: u64,
    pub body_crc: u32,
}

/// One frame of an image as stored or sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotFrame {
    Meta(SnapshotMeta),
    Chunk {
        offset: u64,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot frame: {0}")]
    Frame(#[from] DecodeError),
    #[error("snapshot has no meta frame first")]
    MissingMeta,
    #[error("snapshot chunk at offset {offset} where {expected} was expected")]
    OutOfOrder { offset: u64, expected: u64 },
    #[error("snapshot body is {found} bytes, meta says {expected}")]
    WrongLength { found: u64, expected: u64 },
    #[error("snapshot body checksum mismatch: meta {expected:#010x}, body {found:#010x}")]
    BadChecksum { expected: u32, found: u32 },
    #[error("snapshot body does not decode: {0}")]
    Malformed(String),
    #[error("snapshot state is at slot {found}, meta says {expected}")]
    WrongSlot { found: Slot, expected: Slot },
    #[error("snapshot state hash {found:#018x} differs from meta {expected:#018x}")]
    WrongStateHash { found: u64, expected: u64 },
}

/// A complete, verified-on-restore snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotImage {
    pub meta: SnapshotMeta,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl SnapshotImage {
    /// Captures `state`, which has applied everything through `state.applied_slot()`, without
    /// a configuration (as images were before configurations were replicated).
    pub fn capture(state: &StateMachine, applied_chain: u64, promised: Ballot) -> Self {
        Self::capture_configured(state, applied_chain, promised, None)
    }

    /// Captures `state` and the configuration in force after its applied slot.
    pub fn capture_configured(
        state: &StateMachine,
        applied_chain: u64,
        promised: Ballot,
        configuration: Option<&Configuration>,
    ) -> Self {
        let mut body = state.encode();
        let state_len = body.len();
        if let Some(configuration) = configuration {
            configuration.check_invariants();
            let encoded = postcard::to_allocvec(configuration).expect("configuration encodes");
            body.extend_from_slice(&encoded);
        }
        let meta = SnapshotMeta {
            slot: state.applied_slot(),
            applied_chain,
            promised,
            state_hash: state.state_hash(),
            body_len: body.len() as u64,
            body_crc: crc32c::crc32c(&body),
        };
        // Verify before the image goes anywhere.
        if let Err(what) = state.verify_encoding(&body[..state_len]) {
            panic!("a fresh snapshot does not encode its state: {what}");
        }
        let read_back = decode_configuration(&body[state_len..]).expect("a fresh image decodes");
        assert_eq!(
            read_back.as_ref(),
            configuration,
            "configuration lost in the image"
        );
        SnapshotImage { meta, body }
    }

    /// Decodes and verifies the state: length, checksum, slot and state hash.
    pub fn restore(&self) -> Result<StateMachine, SnapshotError> {
        self.restore_configured().map(|(state, _)| state)
    }

    /// Like [`SnapshotImage::restore`], with the configuration the image carries, if any.
    pub fn restore_configured(
        &self,
    ) -> Result<(StateMachine, Option<Configuration>), SnapshotError> {
        let meta = &self.meta;
        verify_body(meta, &self.body)?;
        let (state, rest) =
            StateMachine::decode_prefix(&self.body).map_err(SnapshotError::Malformed)?;
        let configuration = decode_configuration(rest)?;
        if state.applied_slot() != meta.slot {
            return Err(SnapshotError::WrongSlot {
                found: state.applied_slot(),
                expected: meta.slot,
            });
        }
        if state.state_hash() != meta.state_hash {
            return Err(SnapshotError::WrongStateHash {
                found: state.state_hash(),
                expected: meta.state_hash,
            });
        }
        // The running hashes and indexes were read back, not rebuilt: check them against the
        // state they summarize before it is used.
        state.assert_invariants();
        Ok((state, configuration))
    }

    /// The body bytes of the chunk starting at `offset` (empty at or past the end).
    pub fn chunk_at(&self, offset: u64) -> &[u8] {
        let start = (offset as usize).min(self.body.len());
        let end = (start + SNAPSHOT_CHUNK_BYTES).min(self.body.len());
        &self.body[start..end]
    }

    /// The image as a sequence of codec frames: meta, then chunks.
    pub fn encode_frames(&self, out: &mut Vec<u8>) {
        // Room for everything at once: growing by doubling would copy the image again and
        // touch twice its size in fresh pages, on the replica's event loop.
        let chunks = self.body.len().div_ceil(SNAPSHOT_CHUNK_BYTES) + 1;
        out.reserve(self.body.len() + chunks * (codec::HEADER_BYTES + FRAME_FIELDS_BYTES_MAX));
        codec::encode(FrameKind::Snapshot, &SnapshotFrame::Meta(self.meta), out);
        let mut offset = 0u64;
        while offset < self.meta.body_len {
            let bytes = self.chunk_at(offset).to_vec();
            let len = bytes.len() as u64;
            codec::encode(
                FrameKind::Snapshot,
                &SnapshotFrame::Chunk { offset, bytes },
                out,
            );
            offset += len;
        }
        assert_eq!(offset, self.meta.body_len, "chunks cover the body exactly");
    }

    /// Reads an image written by [`SnapshotImage::encode_frames`], verifying every frame and
    /// then the whole body. Does not decode the state; [`SnapshotImage::restore`] does.
    pub fn decode_frames(buf: &[u8]) -> Result<SnapshotImage, SnapshotError> {
        Self::decode_frames_prefix(buf).map(|(image, _)| image)
    }

    /// Like [`SnapshotImage::decode_frames`] for an image at the start of `buf`, with the
    /// number of bytes it took (what follows it is left alone).
    pub fn decode_frames_prefix(buf: &[u8]) -> Result<(SnapshotImage, usize), SnapshotError> {
        Self::decode_sealed_frames_prefix(buf, |_| 0)
    }

    /// Like [`SnapshotImage::decode_frames_prefix`] for frames sealed (see [`codec::seal`])
    /// with `tag_at(offset)`, the offset of each frame in `buf`.
    pub fn decode_sealed_frames_prefix(
        buf: &[u8],
        tag_at: impl Fn(usize) -> u32,
    ) -> Result<(SnapshotImage, usize), SnapshotError> {
        let (first, mut used) =
            codec::decode_sealed::<SnapshotFrame>(FrameKind::Snapshot, buf, tag_at(0))?;
        let SnapshotFrame::Meta(meta) = first else {
            return Err(SnapshotError::MissingMeta);
        };
        let mut assembly = SnapshotAssembly::new(meta);
        while !assembly.is_complete() {
            let tag = tag_at(used);
            let (frame, n) =
                codec::decode_sealed::<SnapshotFrame>(FrameKind::Snapshot, &buf[used..], tag)?;
            used += n;
            let SnapshotFrame::Chunk { offset, bytes } = frame else {
                return Err(SnapshotError::MissingMeta);
            };
            assembly.offer(offset, &bytes)?;
        }
        assert!(used <= buf.len());
        Ok((assembly.finish()?, used))
    }
}

/// The configuration that follows the state in an image's body: none in an image taken before
/// configurations were replicated (nothing follows the state).
fn decode_configuration(rest: &[u8]) -> Result<Option<Configuration>, SnapshotError> {
    if rest.is_empty() {
        return Ok(None);
    }
    let (configuration, after): (Configuration, &[u8]) = postcard::take_from_bytes(rest)
        .map_err(|e| SnapshotError::Malformed(format!("configuration: {e}")))?;
    if !after.is_empty() {
        return Err(SnapshotError::Malformed(
            "bytes after the configuration".into(),
        ));
    }
    Ok(Some(configuration))
}

fn verify_body(meta: &SnapshotMeta, body: &[u8]) -> Result<(), SnapshotError> {
    if body.len() as u64 != meta.body_len {
        return Err(SnapshotError::WrongLength {
            found: body.len() as u64,
            expected: meta.body_len,
        });
    }
    let found = crc32c::crc32c(body);
    if found != meta.body_crc {
        return Err(SnapshotError::BadChecksum {
            expected: meta.body_crc,
            found,
        });
    }
    Ok(())
}

/// Reassembles an image from chunks received in order; a transfer resumes at
/// [`SnapshotAssembly::next_offset`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotAssembly {
    meta: SnapshotMeta,
    body: Vec<u8>,
}

impl SnapshotAssembly {
    pub fn new(meta: SnapshotMeta) -> Self {
        Self {
            meta,
            body: Vec::new(),
        }
    }

    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    pub fn next_offset(&self) -> u64 {
        self.body.len() as u64
    }

    pub fn is_complete(&self) -> bool {
        self.next_offset() >= self.meta.body_len
    }

    /// Appends the chunk at `offset`; a repeat of an earlier chunk is ignored.
    pub fn offer(&mut self, offset: u64, bytes: &[u8]) -> Result<(), SnapshotError> {
        let expected = self.next_offset();
        if offset < expected {
            return Ok(()); // a duplicate
        }
        if offset > expected {
            return Err(SnapshotError::OutOfOrder { offset, expected });
        }
        let room = self.meta.body_len - expected;
        if bytes.len() as u64 > room || bytes.len() > SNAPSHOT_CHUNK_BYTES {
            return Err(SnapshotError::WrongLength {
                found: expected + bytes.len() as u64,
                expected: self.meta.body_len,
            });
        }
        self.body.extend_from_slice(bytes);
        assert!(
            self.next_offset() <= self.meta.body_len,
            "assembly past its image"
        );
        Ok(())
    }

    /// The complete image, its body verified against the meta.
    pub fn finish(self) -> Result<SnapshotImage, SnapshotError> {
        verify_body(&self.meta, &self.body)?;
        Ok(SnapshotImage {
            meta: self.meta,
            body: self.body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{ClientRequest, Command};
    use crate::kv::StateMachineConfig;

    fn state_with(keys: usize, value_bytes: usize) -> StateMachine {
        let mut state = StateMachine::new(StateMachineConfig::default());
        let requests: Vec<ClientRequest> = (0..keys)
            .map(|i| ClientRequest {
                client_id: 1,
                seq: 1 + i as u64,
                command: Command::Set {
                    key: format!("key{i:06}").into_bytes(),
                    value: vec![b'v'; value_bytes],
                },
            })
            .collect();
        for (i, chunk) in requests.chunks(32).enumerate() {
            state.apply_batch(1 + i as Slot, chunk);
        }
        state
    }

    #[test]
    fn capture_then_restore_gives_the_same_state() {
        let state = state_with(100, 10);
        let image = SnapshotImage::capture(&state, 42, Ballot { round: 3, node: 1 });
        assert_eq!(image.meta.slot, state.applied_slot());
        assert_eq!(image.restore().unwrap(), state);
    }

    #[test]
    fn an_image_carries_its_configuration_and_an_image_without_one_still_restores() {
        let state = state_with(50, 10);
        let config = Configuration::initial(&[1, 2, 3])
            .apply(&crate::membership::Change::Remove { id: 2 })
            .unwrap();
        let image = SnapshotImage::capture_configured(&state, 9, Ballot::ZERO, Some(&config));
        assert_eq!(
            image.restore_configured().unwrap(),
            (state.clone(), Some(config))
        );
        let old = SnapshotImage::capture(&state, 9, Ballot::ZERO);
        assert!(old.body.len() < image.body.len());
        assert_eq!(old.restore_configured().unwrap(), (state, None));
    }

    #[test]
    fn frames_round_trip_across_many_chunks() {
        let state = state_with(3_000, 1_000); // ~3 MB: several chunks
        let image = SnapshotImage::capture(&state, 7, Ballot::ZERO);
        let mut buf = Vec::new();
        image.encode_frames(&mut buf);
        let decoded = SnapshotImage::decode_frames(&buf).unwrap();
        assert_eq!(decoded, image);
        assert!(image.meta.body_len as usize > 2 * SNAPSHOT_CHUNK_BYTES);
    }

    #[test]
    fn a_flipped_bit_anywhere_in_the_file_is_detected() {
        let image = SnapshotImage::capture(&state_with(20, 5), 1, Ballot::ZERO);
        let mut clean = Vec::new();
        image.encode_frames(&mut clean);
        for byte in (0..clean.len()).step_by(7) {
            let mut bad = clean.clone();
            bad[byte] ^= 0x10;
            assert!(
                SnapshotImage::decode_frames(&bad).is_err(),
                "flip at byte {byte} went unnoticed"
            );
        }
    }

    #[test]
    fn a_corrupt_body_is_refused_by_restore() {
        let mut image = SnapshotImage::capture(&state_with(20, 5), 1, Ballot::ZERO);
        let last = image.body.len() - 1;
        image.body[last] ^= 1;
        assert!(matches!(
            image.restore(),
            Err(SnapshotError::BadChecksum { .. })
        ));
    }

    #[test]
    fn assembly_ignores_repeats_and_refuses_gaps() {
        let image = SnapshotImage::capture(&state_with(10, 5), 1, Ballot::ZERO);
        let body = &image.body;
        let half = body.len() / 2;
        let mut assembly = SnapshotAssembly::new(image.meta);
        assembly.offer(0, &body[..half]).unwrap();
        assembly.offer(0, &body[..half]).unwrap();
        assert_eq!(assembly.next_offset(), half as u64);
        let gap = assembly.offer(half as u64 + 1, &body[half + 1..]);
        assert!(matches!(gap, Err(SnapshotError::OutOfOrder { .. })));
        assembly.offer(half as u64, &body[half..]).unwrap();
        assert!(assembly.is_complete());
        assert_eq!(assembly.finish().unwrap(), image);
    }
}
