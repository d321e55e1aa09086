//! The store's databases (`SELECT 0` to `SELECT 15`): one [`Store`] each, and the state's
//! encoding, which holds them all.
//!
//! Database 0 is what the store had before it had databases: its commands, its encoding in the
//! log and its share of the state hash are unchanged, and an image encoded before databases
//! existed (the v1 encoding) still decodes, as database 0.

use super::scripts::ScriptRegistry;
use serde::{Deserialize, Serialize};

use super::deadlines::UnixMs;
use super::hash::database_hash;
use super::objects::{object_entry_hash, Object};
use super::session::SessionTable;
use super::store::{Store, StoreDigest};
use super::transaction::Changes;
use super::StateMachineConfig;
use crate::command::{Db, DATABASES};
use crate::types::Slot;

/// Every database's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Databases {
    /// Exactly [`DATABASES`] stores, database `d` at index `d`.
    stores: Vec<Store>,
}

impl Default for Databases {
    fn default() -> Self {
        Databases {
            stores: vec![Store::default(); usize::from(DATABASES)],
        }
    }
}

impl Databases {
    pub(crate) fn db(&self, db: Db) -> &Store {
        &self.stores[usize::from(db)]
    }

    pub(crate) fn db_mut(&mut self, db: Db) -> &mut Store {
        &mut self.stores[usize::from(db)]
    }

    /// Keys in every database.
    pub(crate) fn len(&self) -> usize {
        self.stores.iter().map(Store::len).sum()
    }

    /// Database 0's entries hash plus, for every other database with keys, a hash of its number
    /// and its entries hash: a state with keys in database 0 only hashes as before databases.
    pub(crate) fn entries_hash(&self) -> u64 {
        self.hash_with(Store::entries_hash)
    }

    /// The sum of every database's deadline hash, each with its database number.
    pub(crate) fn deadlines_hash(&self) -> u64 {
        self.stores
            .iter()
            .enumerate()
            .fold(0u64, |sum, (db, store)| {
                let db = Db::try_from(db).expect("fewer than 256 databases");
                sum.wrapping_add(database_hash(db, store.deadlines.hash()))
            })
    }

    /// The earliest deadline in any database.
    pub(crate) fn first_deadline_ms(&self) -> Option<UnixMs> {
        self.stores
            .iter()
            .filter_map(|s| s.deadlines.first_ms())
            .min()
    }

    pub(crate) fn recompute_entries_hash(&self) -> u64 {
        self.hash_with(Store::recompute_entries_hash)
    }

    fn hash_with(&self, entries_hash: impl Fn(&Store) -> u64) -> u64 {
        let mut sum = entries_hash(&self.stores[0]);
        for (db, store) in self.stores.iter().enumerate().skip(1) {
            if store.len() > 0 {
                let db = Db::try_from(db).expect("fewer than 256 databases");
                sum = sum.wrapping_add(database_hash(db, entries_hash(store)));
            }
        }
        sum
    }

    /// Every key inserted or removed since the last call, with its database.
    pub(crate) fn take_touched(&mut self) -> Vec<(Db, Vec<u8>)> {
        let mut touched = Vec::new();
        for (db, store) in self.stores.iter_mut().enumerate() {
            let db = Db::try_from(db).expect("fewer than 256 databases");
            touched.extend(store.take_touched().into_iter().map(|key| (db, key)));
        }
        touched
    }

    pub(crate) fn swap(&mut self, a: Db, b: Db) {
        let keys = self.len();
        self.stores.swap(usize::from(a), usize::from(b));
        assert_eq!(self.len(), keys, "SWAPDB moves keys, never drops them");
    }

    pub(crate) fn flush_all(&mut self) {
        self.stores.iter_mut().for_each(Store::clear);
        assert_eq!(self.len(), 0, "FLUSHALL leaves no key");
    }

    pub(crate) fn assert_invariants(&self) {
        assert_eq!(self.stores.len(), usize::from(DATABASES));
        self.stores.iter().for_each(Store::assert_scan_order);
    }
}

/// First bytes of an encoding with a version: a v1 encoding starts with `sessions_max`, a
/// varint of a number of at least 1, whose first byte is never 0.
const VERSIONED_MARK: u8 = 0;
/// The encoding with every database.
const ENCODING_V2: u8 = 2;
/// V2 followed by WATCH's record of recent changes.
const ENCODING_V3: u8 = 3;
/// V3 followed by the state's time and every database's deadlines.
const ENCODING_V4: u8 = 4;

/// What v4 adds to v3: the time of the last timed entry and, per database, its keys'
/// deadlines in key order.
#[derive(Serialize, Deserialize)]
struct ClockV4 {
    now_ms: UnixMs,
    deadlines: Vec<Vec<(serde_bytes::ByteBuf, UnixMs)>>,
}

impl ClockV4 {
    fn of(data: &Databases, now_ms: UnixMs) -> Self {
        let deadlines = data
            .stores
            .iter()
            .map(|store| {
                let pairs = store.deadlines.pairs();
                pairs
                    .map(|(key, at)| (serde_bytes::ByteBuf::from(key.clone()), *at))
                    .collect()
            })
            .collect();
        ClockV4 { now_ms, deadlines }
    }

    /// Gives the decoded stores their deadlines; each must name a key present.
    fn restore(self, data: &mut Databases) -> Result<UnixMs, String> {
        if self.deadlines.len() != data.stores.len() {
            return Err("deadlines for a wrong number of databases".into());
        }
        for (store, pairs) in data.stores.iter_mut().zip(self.deadlines) {
            for (key, at) in pairs {
                if !store.exists(&key) || store.deadlines.get(&key).is_some() {
                    return Err("a deadline for an absent key, or twice".into());
                }
                store.deadlines.set(&key, at);
            }
        }
        Ok(self.now_ms)
    }

    /// The deadlines' hash as `Databases::deadlines_hash` computes it.
    fn hash(&self) -> u64 {
        let mut data = Databases::default();
        for (store, pairs) in data.stores.iter_mut().zip(&self.deadlines) {
            pairs
                .iter()
                .for_each(|(key, at)| store.deadlines.set(key, *at));
        }
        data.deadlines_hash()
    }
}
/// V4 followed by the script registry (script cache and function libraries).
const ENCODING_V5: u8 = 5;
/// V5 followed by every database's hashes and sets.
const ENCODING_V6: u8 = 6;
/// V6 whose objects may be sorted sets or lists too (same layout; a v6 reader refuses them).
const ENCODING_V7: u8 = 7;

/// What v6 adds to v5: per database, its keys holding a hash or a set, in key order.
type ObjectsV6 = Vec<Vec<(serde_bytes::ByteBuf, Object)>>;

fn objects_of(data: &Databases) -> Vec<Vec<(&serde_bytes::Bytes, &Object)>> {
    (data.stores.iter())
        .map(|store| {
            (store.objects())
                .map(|(key, object)| (serde_bytes::Bytes::new(key), object))
                .collect()
        })
        .collect()
}

/// The objects section of a v6 encoding, after the scripts.
fn take_objects(version: u8, after: &[u8]) -> Result<(ObjectsV6, &[u8]), String> {
    if version < ENCODING_V6 {
        return Ok((vec![Vec::new(); usize::from(DATABASES)], after));
    }
    let (objects, rest): (ObjectsV6, &[u8]) =
        postcard::take_from_bytes(after).map_err(|e| e.to_string())?;
    if objects.len() != usize::from(DATABASES) {
        return Err("objects for a wrong number of databases".into());
    }
    Ok((objects, rest))
}

/// Gives the decoded stores their objects.
fn restore_objects(data: &mut Databases, objects: ObjectsV6) -> Result<(), String> {
    for (store, objects) in data.stores.iter_mut().zip(objects) {
        let mut previous: Option<Vec<u8>> = None;
        for (key, _) in &objects {
            if previous.as_deref().is_some_and(|p| p >= key.as_slice()) {
                return Err("object keys out of order".into());
            }
            previous = Some(key.to_vec());
        }
        let (declared, len_before) = (objects.len(), store.len());
        store.restore_objects(objects.into_iter().map(|(k, o)| (k.into_vec(), o)))?;
        assert_eq!(
            store.len(),
            len_before + declared,
            "every declared object restored"
        );
    }
    Ok(())
}

/// The v3 encoding's fields, borrowed for writing.
#[derive(Serialize)]
struct StateV3Ref<'a> {
    config: &'a StateMachineConfig,
    stores: &'a [Store],
    sessions: &'a SessionTable,
    applied_slot: Slot,
    changes: &'a Changes,
}

#[derive(Deserialize)]
struct StateV2 {
    config: StateMachineConfig,
    stores: Vec<Store>,
    sessions: SessionTable,
    applied_slot: Slot,
}

/// The v1 encoding: one database.
#[derive(Deserialize)]
struct StateV1 {
    config: StateMachineConfig,
    data: Store,
    sessions: SessionTable,
    applied_slot: Slot,
}

/// The v3 encoding read for checking: stores counted and hashed, not built.
#[derive(Deserialize)]
pub(crate) struct StateDigest {
    pub(crate) config: StateMachineConfig,
    pub(crate) stores: Vec<StoreDigest>,
    pub(crate) sessions: SessionTable,
    pub(crate) applied_slot: Slot,
    #[serde(deserialize_with = "rebuilt_changes")]
    pub(crate) changes: Changes,
    #[serde(skip)]
    pub(crate) now_ms: UnixMs,
    #[serde(skip)]
    pub(crate) deadlines_hash: u64,
}

fn rebuilt_changes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Changes, D::Error> {
    let changes = Changes::deserialize(d)?;
    changes.rebuilt().map_err(serde::de::Error::custom)
}

/// The parts of a decoded state.
pub(crate) struct StateParts {
    pub(crate) config: StateMachineConfig,
    pub(crate) data: Databases,
    pub(crate) sessions: SessionTable,
    pub(crate) applied_slot: Slot,
    pub(crate) changes: Changes,
    pub(crate) now_ms: UnixMs,
    pub(crate) scripts: ScriptRegistry,
}

/// The scripts section of a v5 or v6 encoding, after the v4 fields.
fn take_scripts(version: u8, after: &[u8]) -> Result<(ScriptRegistry, &[u8]), String> {
    if version < ENCODING_V5 {
        return Ok((ScriptRegistry::default(), after));
    }
    let (scripts, rest): (ScriptRegistry, &[u8]) =
        postcard::take_from_bytes(after).map_err(|e| e.to_string())?;
    Ok((scripts.rebuilt()?, rest))
}

pub(crate) fn encode(
    config: &StateMachineConfig,
    data: &Databases,
    sessions: &SessionTable,
    applied_slot: Slot,
    changes: &Changes,
    now_ms: UnixMs,
    scripts: &ScriptRegistry,
) -> Vec<u8> {
    let fields = StateV3Ref {
        config,
        stores: &data.stores,
        sessions,
        applied_slot,
        changes,
    };
    let mut out = vec![VERSIONED_MARK, ENCODING_V7];
    postcard::to_io(&fields, &mut out).expect("a state encodes into memory");
    let clock = ClockV4::of(data, now_ms);
    postcard::to_io(&clock, &mut out).expect("a state encodes into memory");
    postcard::to_io(scripts, &mut out).expect("scripts encode into memory");
    postcard::to_io(&objects_of(data), &mut out).expect("objects encode into memory");
    out
}

/// Decodes either encoding at the start of `body`, with the bytes after it; the scan orders are
/// rebuilt.
pub(crate) fn decode(body: &[u8]) -> Result<(StateParts, &[u8]), String> {
    let (mut parts, after) = match body {
        [VERSIONED_MARK, version @ (ENCODING_V2 | ENCODING_V3 | ENCODING_V4 | ENCODING_V5 | ENCODING_V6
        | ENCODING_V7), rest @ ..] => {
            let (state, mut after): (StateV2, &[u8]) =
                postcard::take_from_bytes(rest).map_err(|e| e.to_string())?;
            if state.stores.len() != usize::from(DATABASES) {
                return Err(format!("{} databases", state.stores.len()));
            }
            let changes = match *version {
                ENCODING_V3 | ENCODING_V4 | ENCODING_V5 | ENCODING_V6 | ENCODING_V7 => {
                    let (changes, rest): (Changes, &[u8]) =
                        postcard::take_from_bytes(after).map_err(|e| e.to_string())?;
                    after = rest;
                    changes.rebuilt()?
                }
                _ => Changes::forgotten_through(state.applied_slot),
            };
            let mut data = Databases {
                stores: state.stores,
            };
            let mut clock = None;
            if *version >= ENCODING_V4 {
                let (read, rest): (ClockV4, &[u8]) =
                    postcard::take_from_bytes(after).map_err(|e| e.to_string())?;
                after = rest;
                clock = Some(read);
            }
            let (scripts, rest) = take_scripts(*version, after)?;
            after = rest;
            let (objects, rest) = take_objects(*version, after)?;
            after = rest;
            restore_objects(&mut data, objects)?;
            // After the objects: a hash, set or list may have a deadline too.
            let now_ms = clock.map_or(Ok(0), |clock| clock.restore(&mut data))?;
            let parts = StateParts {
                config: state.config,
                data,
                sessions: state.sessions,
                applied_slot: state.applied_slot,
                changes,
                now_ms,
                scripts,
            };
            (parts, after)
        }
        [VERSIONED_MARK, version, ..] => return Err(format!("unknown encoding version {version}")),
        v1 => {
            let (state, after): (StateV1, &[u8]) =
                postcard::take_from_bytes(v1).map_err(|e| e.to_string())?;
            let mut data = Databases::default();
            *data.db_mut(0) = state.data;
            let parts = StateParts {
                config: state.config,
                data,
                sessions: state.sessions,
                applied_slot: state.applied_slot,
                changes: Changes::forgotten_through(state.applied_slot),
                now_ms: 0,
                scripts: ScriptRegistry::default(),
            };
            (parts, after)
        }
    };
    parts
        .data
        .stores
        .iter_mut()
        .for_each(Store::rebuild_scan_order);
    Ok((parts, after))
}

/// Reads a v6 encoding for checking (see `StateMachine::verify_encoding`); the hashes and sets
/// are decoded whole, the strings only counted and hashed.
pub(crate) fn decode_digest(body: &[u8]) -> Result<(StateDigest, ScriptRegistry), String> {
    let rest = match body {
        [VERSIONED_MARK, ENCODING_V6 | ENCODING_V7, rest @ ..] => rest,
        _ => return Err("not a v6 or v7 encoding".into()),
    };
    let (mut digest, rest): (StateDigest, &[u8]) =
        postcard::take_from_bytes(rest).map_err(|e| format!("does not decode: {e}"))?;
    let (clock, rest): (ClockV4, &[u8]) =
        postcard::take_from_bytes(rest).map_err(|e| format!("does not decode: {e}"))?;
    digest.deadlines_hash = clock.hash();
    digest.now_ms = clock.now_ms;
    let (scripts, rest) = take_scripts(ENCODING_V7, rest)?;
    let (objects, rest) = take_objects(ENCODING_V7, rest)?;
    for (store, objects) in digest.stores.iter_mut().zip(objects) {
        for (key, object) in objects {
            let object = object.rebuilt()?;
            store.objects.len += 1;
            store.objects.entries_hash =
                (store.objects.entries_hash).wrapping_add(object_entry_hash(&key, &object));
        }
    }
    match rest.is_empty() {
        true => Ok((digest, scripts)),
        false => Err("bytes after the state".into()),
    }
}

/// The entries hash a digest's stores add up to, as [`Databases::entries_hash`] computes it.
pub(crate) fn digest_entries_hash(stores: &[StoreDigest]) -> u64 {
    let hash = |s: &StoreDigest| s.pairs.entries_hash.wrapping_add(s.objects.entries_hash);
    let mut sum = stores.first().map_or(0, hash);
    for (db, store) in stores.iter().enumerate().skip(1) {
        if store.pairs.len + store.objects.len > 0 {
            let db = Db::try_from(db).expect("fewer than 256 databases");
            sum = sum.wrapping_add(database_hash(db, hash(store)));
        }
    }
    sum
}
