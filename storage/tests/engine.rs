//! The log engine's specification, run on the in-memory device with no faults but those each
//! test makes by hand.

use keyspace_core::codec::{self, FrameKind};
use keyspace_core::command::{ClientRequest, Command};
use keyspace_core::kv::{StateMachine, StateMachineConfig};
use keyspace_core::snapshot::SnapshotImage;
use keyspace_core::{Ballot, DurableState, LogValue, Slot, StorageWrite};
use keyspace_storage::format::{self, SegmentHeader, SECTOR_BYTES, SEGMENT_HEADER_BYTES};
use keyspace_storage::{
    Device, Log, LogConfig, MemoryDevice, StorageError, StorageLimits, READ_SECTOR_BYTES,
    SEGMENT_BYTES_MIN,
};

/// Segments small enough that a few records fill one.
const SMALL: LogConfig = LogConfig {
    limits: StorageLimits {
        segment_bytes: SEGMENT_BYTES_MIN,
        max_bytes: None,
    },
    mutant: None,
};

type MemLog = Log<MemoryDevice>;

fn open(device: MemoryDevice) -> (MemLog, DurableState, usize) {
    Log::open(device, SMALL).expect("the log opens")
}

fn new_log() -> MemLog {
    open(MemoryDevice::new()).0
}

/// What a restart after a clean stop finds.
fn reopen(log: MemLog) -> (MemLog, DurableState, usize) {
    open(log.into_device())
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

fn commit(log: &mut MemLog) {
    log.write().unwrap();
    log.sync().unwrap();
}

/// Appends, writes and syncs each write on its own; returns them.
fn write_each(log: &mut MemLog, writes: Vec<StorageWrite>) -> Vec<StorageWrite> {
    for write in &writes {
        log.append(std::slice::from_ref(write));
        commit(log);
    }
    writes
}

fn segment_indexes(device: &mut MemoryDevice) -> Vec<u64> {
    let mut found: Vec<u64> = device.segments().unwrap().iter().map(|s| s.0).collect();
    found.sort_unstable();
    found
}

/// Changes bytes at `offset` of segment `index` at rest, with `change`.
fn poke(
    device: &mut MemoryDevice,
    index: u64,
    offset: u64,
    len: usize,
    change: impl Fn(&mut [u8]),
) {
    let mut bytes = vec![0u8; len];
    device.read(index, offset, &mut bytes).unwrap();
    change(&mut bytes);
    device.write(index, offset, &bytes).unwrap();
    device.sync(index).unwrap();
}

fn flip(device: &mut MemoryDevice, index: u64, offset: u64) {
    poke(device, index, offset, 1, |b| b[0] ^= 0xff);
}

const HEADER: u64 = SEGMENT_HEADER_BYTES as u64;

#[test]
fn synced_writes_are_replayed_after_reopen() {
    let (mut log, state, _) = open(MemoryDevice::new());
    assert_eq!(state, DurableState::default());
    log.append(&[accept(1), accept(2)]);
    commit(&mut log);
    log.append(&[StorageWrite::Learn {
        slot: 1,
        value: LogValue::Noop,
    }]);
    commit(&mut log);
    let (_, state, records) = reopen(log);
    assert_eq!(records, 3);
    assert_eq!(state.chosen.len(), 1);
    assert_eq!(state.accepted.len(), 1);
    assert!(!state.damaged);
}

#[test]
fn a_write_not_synced_is_lost_on_a_crash_and_that_is_not_damage() {
    let mut log = new_log();
    write_each(&mut log, vec![accept(1)]);
    log.append(&[accept(2)]);
    log.write().unwrap();
    let mut device = log.into_device();
    device.crash(0);
    let (_, state, _) = open(device);
    assert_eq!(accepted_slots(&state), [1]);
    assert!(!state.damaged);
}

#[test]
fn a_torn_tail_is_cut_off_is_not_damage_and_the_log_stays_appendable() {
    let mut log = new_log();
    write_each(&mut log, vec![accept(1)]);
    log.append(&[StorageWrite::Accept {
        slot: 2,
        ballot: ballot(1, 1),
        value: set(2, 3_000),
    }]);
    log.write().unwrap();
    let mut device = log.into_device();
    let sectors = device.unsynced_sectors();
    assert!(
        sectors[0] > 2,
        "the record spans several sectors: {sectors:?}"
    );
    device.crash(1); // the crash kept only the write's first sector
    let (mut log, state, records) = open(device);
    assert_eq!(records, 1);
    assert_eq!(accepted_slots(&state), [1]);
    assert!(!state.damaged);
    write_each(&mut log, vec![accept(3)]);
    let (_, state, _) = reopen(log);
    assert_eq!(accepted_slots(&state), [1, 3]);
    assert!(!state.damaged);
}

#[test]
fn a_bad_checksum_in_the_middle_is_skipped_and_the_state_comes_back_damaged() {
    let mut log = new_log();
    write_each(&mut log, vec![accept(1), accept(2), accept(3)]);
    let mut device = log.into_device();
    let frame = frame_bytes(&accept(1));
    flip(&mut device, 1, HEADER + frame + 20); // inside the second record's body
    let (_, state, records) = open(device);
    assert!(state.damaged);
    assert_eq!(records, 2);
    assert_eq!(accepted_slots(&state), [1, 3]);
}

#[test]
fn garbage_over_a_record_header_is_skipped_by_resynchronising_at_the_next_record() {
    let mut log = new_log();
    write_each(&mut log, vec![accept(1), accept(2), accept(3), accept(4)]);
    let mut device = log.into_device();
    let frame = frame_bytes(&accept(1));
    // Garbage from the start of the second record's header into its body.
    poke(&mut device, 1, HEADER + frame, 20, |b| b.fill(0xa5));
    let (_, state, _) = open(device);
    assert!(state.damaged);
    assert_eq!(accepted_slots(&state), [1, 3, 4]);
}

#[test]
fn a_damaged_snapshot_chunk_drops_that_snapshot_and_replay_goes_on_after_it() {
    let image = snapshot_through(3, 700_000); // two chunks of the body
    let mut log = new_log();
    write_each(&mut log, vec![accept(1)]);
    log.append(&[StorageWrite::Snapshot(image.into()), accept(2)]);
    commit(&mut log);
    let (segment, _) = log.position();
    let mut device = log.into_device();
    // In the second chunk (the snapshot began a segment of its own).
    flip(&mut device, segment, 1_500_000);
    let (_, state, _) = open(device);
    assert!(state.damaged);
    assert_eq!(state.snapshot, None);
    assert_eq!(accepted_slots(&state), [1, 2]);
}

#[test]
fn an_unreadable_sector_is_read_around_and_the_state_comes_back_damaged() {
    let mut log = new_log();
    let writes: Vec<StorageWrite> = (1..=200).map(accept).collect();
    log.append(&writes);
    commit(&mut log);
    let mut device = log.into_device();
    // The one write is the one extent; its fourth sector goes bad.
    let mut picks = [0, 3 * READ_SECTOR_BYTES].into_iter();
    assert!(device.make_unreadable(&mut |_| picks.next().unwrap()));
    let (_, state, records) = open(device);
    assert!(state.damaged);
    // Only the records the sector touched are gone; replay went on after them.
    let frame = frame_bytes(&accept(1)) as usize;
    let lost = 200 - records;
    assert!(
        lost >= 1 && lost <= READ_SECTOR_BYTES / frame + 2,
        "{lost} of 200 lost"
    );
    assert!(state.accepted.contains_key(&1) && state.accepted.contains_key(&200));
}

#[test]
fn a_damaged_log_goes_on_in_a_new_segment_and_keeps_what_is_written_after() {
    let mut log = new_log();
    write_each(&mut log, vec![accept(1), accept(2), accept(3)]);
    let mut device = log.into_device();
    flip(&mut device, 1, HEADER + 20);
    let (mut log, state, _) = open(device);
    assert!(state.damaged);
    assert_eq!(accepted_slots(&state), [2, 3]);
    write_each(&mut log, vec![accept(4)]);
    assert_eq!(log.position().0, 2, "a new segment after the damaged one");
    let (_, state, _) = reopen(log);
    assert!(state.damaged, "the damaged bytes are still there");
    assert_eq!(accepted_slots(&state), [2, 3, 4]);
}

#[test]
fn a_version_field_made_newer_by_a_flipped_bit_is_damage_not_a_newer_format() {
    let mut log = new_log();
    write_each(&mut log, vec![accept(1), accept(2), accept(3)]);
    let mut record = log.into_device();
    let mut header = record.clone();
    flip(&mut record, 1, HEADER + 5); // the first record's version field, high byte
    let (_, state, _) = Log::open(record, SMALL).expect("starts, to recover from its peers");
    assert!(state.damaged);
    assert_eq!(accepted_slots(&state), [2, 3]);
    flip(&mut header, 1, 5); // the segment header's version field, high byte
    let (_, state, _) = Log::open(header, SMALL).expect("starts, to recover from its peers");
    assert!(
        state.damaged,
        "a segment header that fails verification is damage"
    );
    assert_eq!(accepted_slots(&state), [1, 2, 3]);
}

#[test]
fn a_newer_format_version_is_refused_by_name() {
    let mut log = new_log();
    log.append(&[accept(1), accept(2)]);
    commit(&mut log);
    let mut in_header = log.into_device();
    let mut in_record = in_header.clone();
    // As a build of log format version 9 wrote it.
    poke(&mut in_header, 1, 0, SEGMENT_HEADER_BYTES, |bytes| {
        let header = SegmentHeader::decode(bytes).unwrap();
        let newer = SegmentHeader {
            version: 9,
            ..header
        };
        bytes.copy_from_slice(&newer.encode());
    });
    // As a build of codec format version 9 wrote the first record.
    let len = frame_bytes(&accept(1)) as usize;
    poke(&mut in_record, 1, HEADER, len, |frame| {
        let tag = format::position_tag(1, HEADER);
        codec::seal(frame, tag);
        codec::rewrite_version(frame, 9);
        codec::seal(frame, tag);
    });
    for (device, offset) in [(in_header, 0), (in_record, HEADER)] {
        let err = Log::open(device, SMALL).err().expect("refused");
        assert!(
            matches!(err, StorageError::NewerFormat { found: 9, offset: o, .. } if o == offset),
            "{err}"
        );
        assert!(err.to_string().contains("log-00000001.seg"), "{err}");
    }
}

#[test]
fn a_snapshot_of_many_chunks_is_replayed_after_reopen() {
    let image = snapshot_through(3_000, 1_000);
    assert!(image.meta.body_len > 2 * 1024 * 1024, "several chunks");
    let mut log = new_log();
    log.append(&[
        accept(1),
        StorageWrite::Snapshot(image.clone().into()),
        accept(2),
    ]);
    commit(&mut log);
    let (_, recovered, records) = reopen(log);
    assert_eq!(records, 3);
    assert_eq!(recovered.snapshot, Some(image.into()));
    assert_eq!(recovered.accepted.len(), 2);
}

#[test]
fn a_snapshot_cut_short_at_the_end_of_the_log_is_a_torn_tail() {
    let image = snapshot_through(3, 1_000);
    let mut log = new_log();
    write_each(&mut log, vec![accept(1)]);
    log.append(&[StorageWrite::Snapshot(image.into())]);
    log.write().unwrap();
    let mut device = log.into_device();
    let sectors = device.unsynced_sectors();
    assert!(sectors[0] > 2, "{sectors:?}");
    device.crash(sectors[0] / 2); // the crash kept the first half of the snapshot's sectors
    let (_, recovered, records) = open(device);
    assert_eq!(records, 1);
    assert_eq!(recovered.snapshot, None);
    assert!(!recovered.damaged);
}

/// A crash tears a write at a sector boundary, and that boundary may fall between two frames
/// of a snapshot, or a few bytes into the header of the frame after a whole one: what is left
/// is a whole meta frame followed by zeros, or by a header cut short. Nothing of it was
/// acknowledged, so it is a torn tail, and taking it for damage would send the replica into
/// recovery on every restart (its segment is never rewritten).
#[test]
fn a_snapshot_torn_between_its_frames_is_a_torn_tail_not_damage() {
    let image = snapshot_through(3, 1_000);
    let mut frames = Vec::new();
    image.encode_frames(&mut frames);
    let meta_bytes = format::claimed_len(&frames).expect("a whole meta frame") as u64;
    assert!(meta_bytes < frames.len() as u64, "a chunk follows the meta");
    let start = HEADER + frame_bytes(&accept(1));
    let sector = SECTOR_BYTES as u64;
    for past_meta in 0..codec::HEADER_BYTES as u64 {
        // An accept of the size that puts the tear `past_meta` bytes after the meta frame.
        let pad = (0..2 * SECTOR_BYTES)
            .map(|n| StorageWrite::Accept {
                slot: 2,
                ballot: ballot(1, 1),
                value: set(2, n),
            })
            .find(|pad| (start + frame_bytes(pad) + meta_bytes + past_meta).is_multiple_of(sector))
            .expect("some padding lands the meta's end anywhere in a sector");
        let tear = start + frame_bytes(&pad) + meta_bytes + past_meta;
        let mut log = new_log();
        write_each(&mut log, vec![accept(1)]);
        log.append(&[pad, StorageWrite::Snapshot(image.clone().into())]);
        log.write().unwrap();
        let mut device = log.into_device();
        device.crash((tear / sector - start / sector) as usize);
        let (mut log, state, _) = open(device);
        assert!(
            !state.damaged,
            "torn {past_meta} bytes after the meta frame"
        );
        assert_eq!(accepted_slots(&state), [1, 2], "{past_meta}");
        assert_eq!(state.snapshot, None, "{past_meta}");
        write_each(&mut log, vec![accept(3)]);
        let (_, state, _) = reopen(log);
        assert!(
            !state.damaged,
            "reopened after a tear {past_meta} past the meta"
        );
        assert_eq!(accepted_slots(&state), [1, 2, 3], "{past_meta}");
    }
}

#[test]
fn a_flipped_bit_in_the_last_whole_record_is_damage_not_a_torn_tail() {
    for at in [4 + 2, 8, 9, 14, 20] {
        let mut log = new_log();
        write_each(&mut log, vec![accept(1), accept(2)]);
        let mut device = log.into_device();
        let second = HEADER + frame_bytes(&accept(1));
        // One bit: in the length field (offsets 8..12) it points the frame into the zeros.
        let bit = if (8..12).contains(&at) { 0x40 } else { 0x01 };
        poke(&mut device, 1, second + at, 1, |b| b[0] ^= bit);
        let (_, state, _) = open(device);
        assert!(state.damaged, "a flip at byte {at} of the last record");
        assert_eq!(accepted_slots(&state), [1], "byte {at}");
    }
}

#[test]
fn a_misdirected_write_onto_a_record_boundary_is_damage() {
    let mut log = new_log();
    write_each(&mut log, vec![accept(1), accept(2), accept(3)]);
    let mut device = log.into_device();
    let frame = frame_bytes(&accept(1));
    // The third record's write landed exactly on the second record; its own place kept zeros.
    let (second, third) = (HEADER + frame, HEADER + 2 * frame);
    let mut moved = vec![0u8; frame as usize];
    device.read(1, third, &mut moved).unwrap();
    poke(&mut device, 1, second, moved.len(), |b| {
        b.copy_from_slice(&moved)
    });
    poke(&mut device, 1, third, moved.len(), |b| b.fill(0));
    let (_, state, _) = open(device);
    assert!(
        state.damaged,
        "a whole, well-checksummed record in the wrong place"
    );
    assert_eq!(accepted_slots(&state), [1]);
}

#[test]
fn a_segment_whose_last_records_vanished_is_damage_though_the_rest_looks_whole() {
    let mut log = new_log();
    let mut slot = 0;
    while log.position().0 < 3 {
        slot += 1;
        write_each(&mut log, vec![accept(slot)]);
    }
    let mut device = log.into_device();
    // Segment 1's last record reads as zeros now, as if its write had gone elsewhere.
    let mut bytes = vec![0u8; SEGMENT_BYTES_MIN as usize];
    device.read(1, 0, &mut bytes).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    let last = end - frame_bytes(&accept(1)) as usize;
    poke(&mut device, 1, last as u64, end - last, |b| b.fill(0));
    let (_, state, _) = open(device);
    assert!(
        state.damaged,
        "segment 2's header says where segment 1 ended"
    );
}

#[test]
fn a_new_segment_whose_first_write_a_crash_lost_is_written_again() {
    let mut log = new_log();
    let mut writes = Vec::new();
    let mut slot = 0;
    while log.position().0 < 2 {
        slot += 1;
        writes.extend(write_each(&mut log, vec![accept(slot)]));
    }
    // Fill segment 2 up to its end, then crash in the write that starts segment 3.
    while log.position().0 < 3 {
        slot += 1;
        log.append(&[accept(slot)]);
        log.write().unwrap();
        if log.position().0 == 3 {
            break;
        }
        log.sync().unwrap();
        writes.push(accept(slot));
    }
    let mut device = log.into_device();
    device.crash(0);
    assert_eq!(segment_indexes(&mut device), [1, 2, 3]);
    let (mut log, state, _) = open(device);
    assert_eq!(state, replayed(&writes));
    assert!(!state.damaged);
    writes.extend(write_each(&mut log, vec![accept(1_000)]));
    assert_eq!(
        log.position().0,
        3,
        "the empty segment takes the next write"
    );
    let (_, state, _) = reopen(log);
    assert_eq!(state, replayed(&writes));
    assert!(!state.damaged);
}

#[test]
fn a_log_of_the_unsealed_format_is_read_and_goes_on_in_a_new_segment() {
    // Format 1: no segment header, unsealed frames from offset 0.
    let old = vec![accept(1), accept(2)];
    let mut bytes = Vec::new();
    for write in &old {
        codec::encode(FrameKind::LogRecord, write, &mut bytes);
    }
    let mut device = MemoryDevice::new();
    device.create(1, SEGMENT_BYTES_MIN).unwrap();
    device.write(1, 0, &bytes).unwrap();
    device.sync(1).unwrap();
    let (mut log, state, records) = open(device);
    assert_eq!((records, state.clone()), (2, replayed(&old)));
    assert!(!state.damaged);
    write_each(&mut log, vec![accept(3)]);
    assert_eq!(
        log.position().0,
        2,
        "nothing sealed is written into an unsealed segment"
    );
    let (_, state, _) = reopen(log);
    assert_eq!(accepted_slots(&state), [1, 2, 3]);
    assert!(!state.damaged);
}

/// Writes slots 1..=`slots` (each accept and its chosen record synced on its own) after a
/// promise of ballot 5.2 that no accept carries, into small segments.
fn many_small_syncs(log: &mut MemLog, slots: u64) -> Vec<StorageWrite> {
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
fn snapshot_and_compact(log: &mut MemLog, slot: u64) -> Vec<StorageWrite> {
    let snapshot = StorageWrite::Snapshot(snapshot_through(slot, 150).into());
    let compact = StorageWrite::Compact { through_slot: slot };
    write_each(log, vec![snapshot, compact])
}

#[test]
fn a_compaction_deletes_the_segments_it_made_redundant_and_reopen_gives_the_same_state() {
    let mut log = new_log();
    let mut writes = many_small_syncs(&mut log, 60);
    let before = segment_indexes(log.device_mut());
    assert!(before.len() >= 3, "{before:?}");
    writes.extend(snapshot_and_compact(&mut log, 45));
    writes.extend(write_each(&mut log, vec![accept(61)]));
    let after = segment_indexes(log.device_mut());
    assert!(!after.contains(&1), "{after:?}");
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
    let (_, state, _) = reopen(log);
    assert!(!state.damaged);
    assert_eq!(state, expected);
}

#[test]
fn a_promise_written_only_in_a_deleted_segment_survives_its_deletion() {
    let mut log = new_log();
    // Ballot 5.2 is written once, as the first record of segment 1; accepts carry 3.1.
    many_small_syncs(&mut log, 40);
    snapshot_and_compact(&mut log, 40);
    write_each(&mut log, vec![accept(41)]);
    let names = segment_indexes(log.device_mut());
    assert!(!names.contains(&1), "{names:?}");
    let (_, state, _) = reopen(log);
    assert_eq!(state.promised, ballot(5, 2));
    assert!(!state.damaged);
}

#[test]
fn a_damaged_log_deletes_no_segment_until_the_replica_has_recovered() {
    let mut log = new_log();
    many_small_syncs(&mut log, 40);
    let mut device = log.into_device();
    flip(&mut device, 1, 300); // a record in the middle of segment 1
    let (mut log, state, _) = open(device);
    assert!(state.damaged);
    snapshot_and_compact(&mut log, 40);
    write_each(&mut log, vec![accept(41)]);
    assert!(
        segment_indexes(log.device_mut()).contains(&1),
        "kept while recovering"
    );
    log.set_recovered();
    write_each(&mut log, vec![accept(42)]);
    assert!(
        !segment_indexes(log.device_mut()).contains(&1),
        "deleted once recovered"
    );
}

#[test]
fn a_write_over_the_size_limit_fails_full_naming_the_file_and_loses_nothing_synced_before() {
    let config = LogConfig {
        limits: StorageLimits {
            segment_bytes: SEGMENT_BYTES_MIN,
            max_bytes: Some(3 * SEGMENT_BYTES_MIN),
        },
        mutant: None,
    };
    let (mut log, _, _) = Log::open(MemoryDevice::new(), config).unwrap();
    let mut synced = Vec::new();
    let mut error = None;
    for slot in 1..=200 {
        let write = StorageWrite::Accept {
            slot,
            ballot: ballot(1, 1),
            value: set(slot, 150),
        };
        log.append(std::slice::from_ref(&write));
        match log.write().and_then(|()| log.sync()) {
            Ok(()) => synced.push(write),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let error = error.expect("the limit is reached within 200 records");
    let text = error.to_string();
    assert!(matches!(error, StorageError::Full { .. }), "{text}");
    assert!(
        text.contains("log-00000004.seg") && text.contains("--max-log-bytes"),
        "{text}"
    );
    assert!(synced.len() > 20, "{} synced", synced.len());
    let refused = log.sync().unwrap_err();
    assert!(matches!(refused, StorageError::Failed { .. }), "{refused}");
    let mut device = log.into_device();
    assert_eq!(segment_indexes(&mut device).len(), 3);
    let (_, state, _) = Log::open(device, config).unwrap();
    assert!(!state.damaged);
    assert_eq!(state, replayed(&synced));
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

/// A small deterministic generator for the randomized tests (xorshift64*).
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

/// One of a few kinds of record, about `bytes` long.
fn random_write(draw: &mut Draw, slot: u64) -> StorageWrite {
    let ballot = ballot(1 + draw.below(3) as u64, 1);
    match draw.below(6) {
        0 => StorageWrite::Promise { ballot },
        1 => StorageWrite::Learn {
            slot,
            value: set(slot, draw.below(900)),
        },
        _ => StorageWrite::Accept {
            slot,
            ballot,
            value: set(slot, draw.below(1_500)),
        },
    }
}

/// A batch of one to three records at `slot`; with `snapshots`, a third of them hold a
/// snapshot too, somewhere among the records.
fn random_batch(draw: &mut Draw, slot: u64, snapshots: bool) -> Vec<StorageWrite> {
    let mut batch: Vec<StorageWrite> = (0..1 + draw.below(3))
        .map(|_| random_write(draw, slot))
        .collect();
    if snapshots && draw.below(3) == 0 {
        let image = snapshot_through(1 + draw.below(4) as u64, draw.below(600));
        let at = draw.below(batch.len() + 1);
        batch.insert(at, StorageWrite::Snapshot(image.into()));
    }
    batch
}

#[test]
fn a_crash_anywhere_keeps_every_synced_write_and_is_never_damage() {
    for (seed, snapshots) in (1..=300u64).flat_map(|seed| [(seed, false), (seed, true)]) {
        let mut draw = Draw(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut log = new_log();
        let mut synced = Vec::new();
        for slot in 1..=draw.below(40) as u64 {
            let batch = random_batch(&mut draw, slot, snapshots);
            log.append(&batch);
            log.write().unwrap();
            if draw.below(4) == 0 {
                // Crashed before the sync: a sector prefix of the write may have survived.
                let mut device = log.into_device();
                let sectors: usize = device.unsynced_sectors().iter().sum();
                device.crash(draw.below(sectors + 1));
                let (reopened, state, _) = open(device);
                assert!(
                    !state.damaged,
                    "seed {seed} ({snapshots}): a crash is not damage"
                );
                // The synced writes, and of the write in flight a prefix of whole records.
                let kept = (0..=batch.len()).find(|&k| {
                    let mut all = synced.clone();
                    all.extend(batch[..k].iter().cloned());
                    state == replayed(&all)
                });
                let kept = kept.unwrap_or_else(|| panic!("seed {seed}: {state:?}"));
                synced.extend(batch[..kept].iter().cloned());
                log = reopened;
                continue;
            }
            log.sync().unwrap();
            synced.extend(batch);
        }
        let (_, state, _) = reopen(log);
        assert_eq!(state, replayed(&synced), "seed {seed}");
    }
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
            StorageWrite::Promise { ballot } | StorageWrite::Accept { ballot, .. } => ballot == b,
            _ => false,
        })
    };
    let chosen_written = |s: &Slot, v: &LogValue| {
        writes.iter().any(|w| match w {
            StorageWrite::Accept { slot, value, .. } | StorageWrite::Learn { slot, value } => {
                slot == s && value == v
            }
            _ => false,
        })
    };
    let snapshot_written = state
        .snapshot
        .as_ref()
        .is_none_or(|image| writes.contains(&StorageWrite::Snapshot(image.clone())));
    state.accepted.iter().all(|(s, a)| accepted(s, a))
        && state.chosen.iter().all(|(s, v)| chosen_written(s, v))
        && (state.promised == Ballot::ZERO || written_ballot(&state.promised))
        && snapshot_written
}

#[test]
fn faults_at_rest_are_flagged_or_harmless_and_never_invent_a_record() {
    let (mut flagged, mut harmless) = (0, 0);
    for seed in 1..=300u64 {
        let mut draw = Draw(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut log = new_log();
        let mut writes = Vec::new();
        for slot in 1..=10 + draw.below(30) as u64 {
            writes.extend(write_each(&mut log, vec![random_write(&mut draw, slot)]));
        }
        let mut device = log.into_device();
        let mut pick = |n: usize| draw.below(n);
        let hit = match seed % 3 {
            0 => device.flip_bit(&mut pick),
            1 => device.misdirect(&mut pick),
            _ => device.make_unreadable(&mut pick),
        };
        let (_, state, _) = open(device);
        if state.damaged {
            assert!(forgets_only(&state, &writes), "seed {seed}: {state:?}");
            flagged += 1;
        } else {
            assert_eq!(state, replayed(&writes), "seed {seed}: undetected damage");
            harmless += usize::from(hit);
        }
    }
    println!("300 faults at rest: {flagged} flagged, {harmless} harmless");
    assert!(flagged > 250, "{flagged} of 300 flagged");
}

#[test]
fn every_flipped_byte_of_a_real_log_is_replayed_exactly_or_flagged() {
    let mut log = new_log();
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
    let clean = log.into_device();
    let end = end as usize;
    let original = replayed(&writes);
    let before_last = replayed(&writes[..writes.len() - 1]);
    let (_, reopened, _) = open(clean.clone());
    assert_eq!(reopened, original);
    // The version fields: the segment header's and every frame's (snapshot frames included).
    let mut bytes = vec![0u8; end];
    clean.clone().read(1, 0, &mut bytes).unwrap();
    let mut version_bytes = vec![4, 5];
    let mut at = SEGMENT_HEADER_BYTES;
    while at < end {
        version_bytes.extend([at + 4, at + 5]);
        at += format::claimed_len(&bytes[at..]).expect("a clean frame");
    }
    let (mut equal, mut damaged, mut torn, mut version_damaged) = (0, 0, 0, 0);
    // Every byte written, and the zeros just after them.
    let flipped = 0..end + 64;
    for offset in flipped.clone() {
        let mut device = clean.clone();
        flip(&mut device, 1, offset as u64);
        let opened = std::panic::catch_unwind(|| Log::open(device, SMALL));
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
}

#[test]
fn sectors_are_the_unit_a_crash_keeps() {
    let mut device = MemoryDevice::new();
    device.create(1, 4 * SECTOR_BYTES as u64).unwrap();
    device.write(1, 100, &[7u8; 1_000]).unwrap(); // sectors 0, 1 and 2
    assert_eq!(device.unsynced_sectors(), [3]);
    device.crash(2);
    let mut bytes = vec![0u8; 4 * SECTOR_BYTES];
    device.read(1, 0, &mut bytes).unwrap();
    assert!(
        bytes[100..1_024].iter().all(|b| *b == 7),
        "two sectors kept"
    );
    assert!(bytes[1_024..].iter().all(|b| *b == 0), "the third lost");
    assert!(bytes[..100].iter().all(|b| *b == 0));
}
