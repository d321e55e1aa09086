//! The state machine against a deliberately naive model, over random logs with retries.
//!
//! The model keeps its data as an unsorted `Vec` of pairs, remembers every reply forever and
//! applies the session rules (window, expiry, eviction) by plain scans, so it shares no data
//! structure and no code path with the state machine beyond the command types.

use proptest::prelude::*;
use proptest::sample::{select, Index};

use super::*;
use crate::command::{BitOp, ClientId, Seq, SetCondition, SetOp, Watched, DATABASES};

const KEYS: [&[u8]; 6] = [b"", b"a", b"ab", b"b", b"ba", b"bb"];
const VALUES: [&[u8]; 9] = [
    b"",
    b"0",
    b"1",
    b"-1",
    b"x",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"+1",
    b" 2",
];
const DELTAS: [i64; 6] = [0, 1, -1, 7, i64::MAX, i64::MIN];
const CLIENTS_MAX: ClientId = 5;

const PATTERNS: [&[u8]; 6] = [b"*", b"a*", b"?", b"[ab]b", b"*a", b"b\\*"];

/// A hash's or a set's elements, unsorted (a set's with empty values), and whether it ever
/// outgrew its compact encoding.
#[derive(Clone, Debug, PartialEq)]
struct Collection {
    kind: ValueKind,
    elements: Vec<(Vec<u8>, Vec<u8>)>,
    outgrown: bool,
}

impl Collection {
    fn new(kind: ValueKind) -> Self {
        Collection {
            kind,
            elements: Vec::new(),
            outgrown: false,
        }
    }

    fn get(&self, element: &[u8]) -> Option<&Vec<u8>> {
        (self.elements.iter())
            .find(|(e, _)| e == element)
            .map(|(_, v)| v)
    }

    /// Stores an element; whether it is new. Redis 7.0's limits, stated plainly.
    fn put(&mut self, element: &[u8], value: &[u8]) -> bool {
        let new = self.remove(element).is_none();
        self.elements.push((element.to_vec(), value.to_vec()));
        self.outgrown |= match self.kind {
            ValueKind::Hash => self.elements.len() > 128 || element.len() > 64 || value.len() > 64,
            ValueKind::SortedSet => self.elements.len() > 128 || element.len() > 64,
            _ => self.elements.len() > 512 || keyspace_integer(element).is_none(),
        };
        new
    }

    fn remove(&mut self, element: &[u8]) -> Option<Vec<u8>> {
        let old = self.get(element).cloned();
        self.elements.retain(|(e, _)| e != element);
        old
    }

    fn sorted(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut sorted = self.elements.clone();
        sorted.sort();
        sorted
    }

    fn members(&self) -> Vec<Vec<u8>> {
        let mut members: Vec<Vec<u8>> = self.sorted().into_iter().map(|(m, _)| m).collect();
        if !self.outgrown {
            members.sort_by_key(|m| keyspace_integer(m));
        }
        members
    }

    /// A sorted set's (member, score text), lowest score first, ties by member.
    fn ranked(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let value = |t: &[u8]| crate::strings::parse_float(t).expect("a stored score");
        let mut ranked = self.elements.clone();
        ranked.sort_by(|(ma, sa), (mb, sb)| {
            value(sa)
                .partial_cmp(&value(sb))
                .expect("no NaN")
                .then_with(|| ma.cmp(mb))
        });
        ranked
    }

    fn encoding(&self) -> &'static str {
        match (self.kind, self.outgrown) {
            (ValueKind::SortedSet, true) => "skiplist",
            (_, true) => "hashtable",
            (ValueKind::Hash | ValueKind::SortedSet, false) => "listpack",
            _ => "intset",
        }
    }
}

/// What a key holds in the model.
#[derive(Clone, Debug)]
enum Held {
    Str(Vec<u8>),
    Coll(Collection),
}

/// The naive model of data and sessions.
#[derive(Default)]
struct Model {
    /// Keys of every database, each as its database's byte followed by the key.
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys holding a hash or a set, qualified as in `pairs` (never a key of `pairs`).
    collections: Vec<(Vec<u8>, Collection)>,
    /// The database the command being modelled acts on.
    db: Db,
    /// `(client_id, last_slot, highest_seq)` of each live session.
    sessions: Vec<(ClientId, Slot, Seq)>,
    /// Every reply of every live session, never trimmed to a window.
    replies: Vec<(ClientId, Seq, Reply)>,
    /// The slot being applied.
    slot: Slot,
    /// Every change of a key ever: `(database, key, slot)`, never forgotten.
    changes: Vec<(Db, Vec<u8>, Slot)>,
    /// Every FLUSHDB, FLUSHALL and SWAPDB of a database: `(database, slot)`.
    resets: Vec<(Db, Slot)>,
}

impl Model {
    fn q(&self, key: &[u8]) -> Vec<u8> {
        [&[self.db][..], key].concat()
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let key = self.q(key);
        let found = self.pairs.iter().find(|(k, _)| *k == key);
        found.map(|(_, v)| v.clone())
    }

    fn set(&mut self, key: &[u8], value: Vec<u8>) {
        self.put(key, Held::Str(value));
    }

    fn collection(&self, key: &[u8]) -> Option<&Collection> {
        let key = self.q(key);
        (self.collections.iter())
            .find(|(k, _)| *k == key)
            .map(|(_, c)| c)
    }

    fn held(&self, key: &[u8]) -> Option<Held> {
        match (self.get(key), self.collection(key)) {
            (Some(value), _) => Some(Held::Str(value)),
            (None, Some(c)) => Some(Held::Coll(c.clone())),
            (None, None) => None,
        }
    }

    fn exists(&self, key: &[u8]) -> bool {
        self.held(key).is_some()
    }

    /// Stores `held` at `key` (an empty collection: removes the key, a change only if it
    /// was there).
    fn put(&mut self, key: &[u8], held: Held) {
        self.remove(key);
        match held {
            Held::Str(value) => self.pairs.push((self.q(key), value)),
            Held::Coll(c) if c.elements.is_empty() => return,
            Held::Coll(c) => self.collections.push((self.q(key), c)),
        }
        self.changes.push((self.db, key.to_vec(), self.slot));
    }

    fn remove(&mut self, key: &[u8]) -> Option<Held> {
        let old = self.held(key);
        let qualified = self.q(key);
        self.pairs.retain(|(k, _)| *k != qualified);
        self.collections.retain(|(k, _)| *k != qualified);
        if old.is_some() {
            self.changes.push((self.db, key.to_vec(), self.slot));
        }
        old
    }

    /// The collection of `kind` at `key` (a new one if absent), or WRONGTYPE.
    fn of_kind(&self, key: &[u8], kind: ValueKind) -> Result<Collection, CommandError> {
        match self.held(key) {
            None => Ok(Collection::new(kind)),
            Some(Held::Coll(c)) if c.kind == kind => Ok(c),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// Every key of this database, of any kind, sorted.
    fn all_keys(&self) -> Vec<Vec<u8>> {
        let strings = self.pairs.iter().map(|(k, _)| k);
        let mut keys: Vec<Vec<u8>> = (strings.chain(self.collections.iter().map(|(k, _)| k)))
            .filter(|k| k[0] == self.db)
            .map(|k| k[1..].to_vec())
            .collect();
        keys.sort();
        keys
    }

    fn kind_name(&self, key: &[u8]) -> &'static str {
        match self.held(key) {
            Some(Held::Str(_)) => "string",
            Some(Held::Coll(c)) => c.kind.name(),
            None => "none",
        }
    }

    /// Whether a watched key changed after its slot (Redis 7.0's rules, stated plainly).
    fn watch_changed(&self, w: &Watched) -> bool {
        let keys =
            (self.pairs.iter().map(|(k, _)| k)).chain(self.collections.iter().map(|(k, _)| k));
        let present = keys.clone().any(|k| k[0] == w.db && k[1..] == w.key[..]);
        let written =
            (self.changes.iter()).any(|(d, k, s)| *d == w.db && *k == w.key && *s > w.slot);
        let reset = (self.resets.iter()).any(|(d, s)| *d == w.db && *s > w.slot);
        // A key that existed at WATCH and is absent now changed, even with no write
        // recorded: it expired (Redis 7.0 fails EXEC on a watched key that expired).
        written || (reset && present) || (w.existed && !present)
    }

    fn transaction(&mut self, commands: &[Command], watched: &[Watched]) -> Reply {
        if watched.iter().any(|w| self.watch_changed(w)) {
            return Reply::Transaction(None);
        }
        let replies = (commands.iter())
            .map(|c| {
                if c.is_write() {
                    self.write(c)
                } else {
                    self.read(c)
                }
            })
            .collect();
        Reply::Transaction(Some(replies))
    }

    /// This database's pairs (keys without the database byte), sorted.
    fn sorted_with_prefix(
        &self,
        prefix: &[u8],
        start: &Option<Vec<u8>>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut listed: Vec<_> = (self.pairs.iter())
            .filter(|(k, _)| k[0] == self.db)
            .map(|(k, v)| (k[1..].to_vec(), v.clone()))
            .filter(|(k, _)| k.starts_with(prefix) && start.iter().all(|s| k >= s))
            .collect();
        listed.sort();
        listed
    }

    /// This database's keys in scan order: by their scan hash.
    fn scan_ordered(&self) -> Vec<(u64, Vec<u8>)> {
        let keys = self.all_keys().into_iter();
        let mut ordered: Vec<_> = keys.map(|k| (hash::scan_hash(&k), k)).collect();
        ordered.sort();
        ordered
    }

    fn write(&mut self, command: &Command) -> Reply {
        if let Err(error) = command.validate() {
            return Reply::Error(error);
        }
        let (db, command) = command.db_and_command();
        self.db = db;
        let wrong_type = (command.string_keys().iter()).any(|k| self.collection(k).is_some());
        if wrong_type {
            return Reply::Error(CommandError::WrongType);
        }
        match command.clone() {
            Command::FlushDb => {
                self.pairs.retain(|(k, _)| k[0] != db);
                self.collections.retain(|(k, _)| k[0] != db);
                self.resets.push((db, self.slot));
                Reply::Ok
            }
            Command::FlushAll => {
                self.pairs.clear();
                self.collections.clear();
                (0..DATABASES).for_each(|db| self.resets.push((db, self.slot)));
                Reply::Ok
            }
            Command::Transaction { commands, watched } => self.transaction(&commands, &watched),
            Command::SwapDb { a, b } => {
                self.resets.push((a, self.slot));
                self.resets.push((b, self.slot));
                let strings = self.pairs.iter_mut().map(|(k, _)| k);
                for k in strings.chain(self.collections.iter_mut().map(|(k, _)| k)) {
                    k[0] = if k[0] == a {
                        b
                    } else if k[0] == b {
                        a
                    } else {
                        k[0]
                    };
                }
                Reply::Ok
            }
            Command::Move { key, to } => self.move_key(&key, to),
            Command::SetIf {
                key,
                value,
                condition,
                get,
            } => {
                let old = self.get(&key);
                let holds = match condition {
                    SetCondition::Always => true,
                    SetCondition::IfAbsent => !self.exists(&key),
                    SetCondition::IfPresent => self.exists(&key),
                };
                if holds {
                    self.set(&key, value);
                }
                match get {
                    true => Reply::Value(old),
                    false if holds => Reply::Ok,
                    false => Reply::Value(None),
                }
            }
            Command::Append { key, value } => {
                let joined = [self.get(&key).unwrap_or_default(), value].concat();
                let len = joined.len();
                if len > crate::command::VALUE_MAX_BYTES {
                    return Reply::Error(CommandError::ValueTooLarge { len });
                }
                self.set(&key, joined);
                Reply::Int(len as i64)
            }
            Command::MultiSetIfAbsent { pairs } => {
                let none = pairs.iter().all(|(k, _)| !self.exists(k));
                if none {
                    pairs.into_iter().for_each(|(k, v)| self.set(&k, v));
                }
                Reply::Bool(none)
            }
            Command::Set { key, value } => {
                self.set(&key, value);
                Reply::Ok
            }
            Command::TestAndSet { key, expected, new } => {
                let matches = self.get(&key) == Some(expected);
                if matches {
                    self.set(&key, new);
                }
                Reply::Bool(matches)
            }
            Command::Add { key, delta } => self.add(&key, delta),
            Command::Delete { key } => Reply::Bool(self.remove(&key).is_some()),
            Command::Remove { key } => Reply::Value(self.remove(&key).map(|held| match held {
                Held::Str(value) => value,
                Held::Coll(_) => panic!("GETDEL of a collection passed the kind check"),
            })),
            Command::Rename { from, to } => match self.held(&from) {
                None => Reply::Error(CommandError::NoSuchKey),
                Some(_) if from == to => Reply::Ok,
                Some(value) => {
                    self.remove(&from);
                    self.put(&to, value);
                    Reply::Ok
                }
            },
            Command::MultiSet { pairs } => {
                pairs
                    .into_iter()
                    .for_each(|(key, value)| self.set(&key, value));
                Reply::Ok
            }
            Command::MultiDelete { keys } => {
                let removed = keys.iter().filter(|k| self.remove(k).is_some()).count();
                Reply::Int(removed as i64)
            }
            Command::Prune { prefix } => {
                let doomed: Vec<Vec<u8>> = (self.all_keys().into_iter())
                    .filter(|k| k.starts_with(&prefix))
                    .collect();
                doomed.iter().for_each(|k| {
                    self.remove(k);
                });
                Reply::Int(doomed.len() as i64)
            }
            other => self.string_write(other),
        }
    }

    /// The hash and set writes, each the plainest way.
    fn collection_write(&mut self, command: Command) -> Result<Reply, CommandError> {
        let count = |n: usize| Reply::Int(n as i64);
        Ok(match command {
            Command::HashSet {
                key,
                pairs,
                if_absent,
            } => {
                let mut hash = self.of_kind(&key, ValueKind::Hash)?;
                let mut added = 0;
                for (f, v) in &pairs {
                    if !(if_absent && hash.get(f).is_some()) {
                        added += hash.put(f, v) as usize;
                    }
                }
                self.store_collection(&key, hash);
                count(added)
            }
            Command::HashDelete { key, fields } => {
                let mut hash = self.of_kind(&key, ValueKind::Hash)?;
                let removed = fields.iter().filter(|f| hash.remove(f).is_some()).count();
                if removed > 0 {
                    self.store_collection(&key, hash);
                }
                count(removed)
            }
            Command::HashAdd { key, field, delta } => {
                let mut hash = self.of_kind(&key, ValueKind::Hash)?;
                let old = match hash.get(&field) {
                    None => 0,
                    Some(v) => keyspace_integer(v).ok_or(CommandError::HashNotAnInteger)?,
                };
                let new = old.checked_add(delta).ok_or(CommandError::Overflow)?;
                hash.put(&field, new.to_string().as_bytes());
                self.store_collection(&key, hash);
                Reply::Int(new)
            }
            Command::HashAddFloat { key, field, delta } => {
                let mut hash = self.of_kind(&key, ValueKind::Hash)?;
                if crate::strings::parse_float(&delta).is_none() {
                    return Err(CommandError::NotAFloat);
                }
                let new = match crate::strings::add_float(hash.get(&field).map(|v| &v[..]), &delta)
                {
                    Ok(new) => new,
                    Err(crate::strings::FloatError::NotAFloat) => {
                        return Err(CommandError::HashNotAFloat)
                    }
                    Err(_) => return Err(CommandError::NanOrInfinity),
                };
                hash.put(&field, &new);
                self.store_collection(&key, hash);
                Reply::Value(Some(new))
            }
            Command::SetAdd { key, members } => {
                let mut set = self.of_kind(&key, ValueKind::Set)?;
                let added = members.iter().filter(|m| set.put(m, b"")).count();
                self.store_collection(&key, set);
                count(added)
            }
            Command::SetRemove { key, members } => {
                let mut set = self.of_kind(&key, ValueKind::Set)?;
                let removed = members.iter().filter(|m| set.remove(m).is_some()).count();
                if removed > 0 {
                    self.store_collection(&key, set);
                }
                count(removed)
            }
            Command::SetMove { from, to, member } => {
                let mut source = self.of_kind(&from, ValueKind::Set)?;
                let mut target = self.of_kind(&to, ValueKind::Set)?;
                if source.get(&member).is_none() {
                    return Ok(Reply::Bool(false));
                }
                if from != to {
                    source.remove(&member);
                    target.put(&member, b"");
                    self.store_collection(&from, source);
                    self.store_collection(&to, target);
                }
                Reply::Bool(true)
            }
            Command::SetStore { op, dest, keys } => {
                let members = self.combine(op, &keys)?;
                let mut set = Collection::new(ValueKind::Set);
                members.iter().for_each(|m| {
                    set.put(m, b"");
                });
                self.remove(&dest);
                self.store_collection(&dest, set);
                count(members.len())
            }
            Command::SetPop { key, count: wanted } => {
                let mut set = self.of_kind(&key, ValueKind::Set)?;
                let n = wanted
                    .map_or(1, |c| c.min(1 << 20) as usize)
                    .min(set.elements.len());
                let mut popped = Vec::new();
                for turn in 0..n {
                    let seed = hash::Hash64::new(hash::TAG_POP)
                        .word(self.slot)
                        .word(turn as u64);
                    let seed = seed.finish().to_be_bytes();
                    let sorted = set.sorted();
                    let at = sorted
                        .iter()
                        .find(|(m, _)| m[..] >= seed[..])
                        .or(sorted.first());
                    let member = at.expect("not empty").0.clone();
                    set.remove(&member);
                    popped.push(member);
                }
                if n > 0 {
                    self.store_collection(&key, set);
                }
                match wanted {
                    None => Reply::Value(popped.pop()),
                    Some(_) => Reply::Keys(popped),
                }
            }
            Command::ZsetAdd {
                key,
                members,
                options,
            } => {
                let mut zset = self.of_kind(&key, ValueKind::SortedSet)?;
                let (mut added, mut changed, mut last) = (0, 0, None);
                for m in &members {
                    let old = (zset.get(&m.member))
                        .map(|t| crate::strings::parse_float(t).expect("a score"));
                    let skip = matches!(
                        (old, options.condition),
                        (Some(_), SetCondition::IfAbsent) | (None, SetCondition::IfPresent)
                    );
                    if skip {
                        last = None;
                        continue;
                    }
                    let new = match (options.increment, old) {
                        (true, Some(old)) => old + m.score.value(),
                        _ => m.score.value(),
                    };
                    if new.is_nan() {
                        return Err(CommandError::ScoreNan);
                    }
                    let new = if new == 0.0 { 0.0 } else { new };
                    let refused = match (old, options.compare) {
                        (Some(old), Some(crate::scores::Compare::Greater)) => new <= old,
                        (Some(old), Some(crate::scores::Compare::Less)) => new >= old,
                        _ => false,
                    };
                    if refused {
                        last = None;
                        continue;
                    }
                    match old {
                        None => added += 1,
                        Some(old) if old != new => changed += 1,
                        Some(_) => {}
                    }
                    let text = crate::scores::format_score(new).into_bytes();
                    zset.put(&m.member, &text);
                    last = Some(text);
                }
                self.store_collection(&key, zset);
                match (options.increment, options.changed) {
                    (true, _) => Reply::Value(last),
                    (false, true) => count(added + changed),
                    (false, false) => count(added),
                }
            }
            Command::ZsetRemove { key, members } => {
                let mut zset = self.of_kind(&key, ValueKind::SortedSet)?;
                let removed = members.iter().filter(|m| zset.remove(m).is_some()).count();
                if removed > 0 {
                    self.store_collection(&key, zset);
                }
                count(removed)
            }
            other => panic!("not a write: {other:?}"),
        })
    }

    /// Stores a changed collection at `key`, keeping its deadline-free place (gone if empty).
    fn store_collection(&mut self, key: &[u8], collection: Collection) {
        self.put(key, Held::Coll(collection));
    }

    fn combine(&self, op: SetOp, keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, CommandError> {
        let sets: Vec<Vec<Vec<u8>>> = (keys.iter())
            .map(|k| {
                self.of_kind(k, ValueKind::Set)
                    .map(|s| s.sorted().into_iter().map(|(m, _)| m).collect())
            })
            .collect::<Result<_, _>>()?;
        let result = (sets[0].iter()).filter(|m| match op {
            SetOp::Inter => sets[1..].iter().all(|s| s.contains(m)),
            SetOp::Diff => !sets[1..].iter().any(|s| s.contains(m)),
            SetOp::Union => true,
        });
        let mut result: Vec<Vec<u8>> = result.cloned().collect();
        if op == SetOp::Union {
            result.extend(sets[1..].iter().flatten().cloned());
        }
        result.sort();
        result.dedup();
        Ok(result)
    }

    /// The hash and set reads.
    fn collection_read(&self, command: &Command) -> Result<Reply, CommandError> {
        Ok(match command {
            Command::Describe { key } => match self.held(key) {
                None => Reply::Value(None),
                Some(Held::Str(v)) => Reply::Described {
                    kind: ValueKind::String,
                    encoding: crate::redis::shape::encoding(&v).into(),
                    refcount: crate::redis::shape::refcount(&v),
                    bytes: v.len() as u64,
                },
                Some(Held::Coll(c)) => Reply::Described {
                    kind: c.kind,
                    encoding: c.encoding().into(),
                    refcount: 1,
                    bytes: (c.elements.iter())
                        .map(|(e, v)| match c.kind {
                            ValueKind::SortedSet => e.len(),
                            _ => e.len() + v.len(),
                        })
                        .sum::<usize>() as u64,
                },
            },
            Command::Exists { keys } => {
                Reply::Int(keys.iter().filter(|k| self.exists(k)).count() as i64)
            }
            Command::HashGet { key, fields } => {
                let hash = self.of_kind(key, ValueKind::Hash)?;
                Reply::Values(fields.iter().map(|f| hash.get(f).cloned()).collect())
            }
            Command::HashGetAll { key } => {
                Reply::KeyValues(self.of_kind(key, ValueKind::Hash)?.sorted())
            }
            Command::Cardinality { key, kind } => {
                Reply::Int(self.of_kind(key, *kind)?.elements.len() as i64)
            }
            Command::SetMembers { key } => {
                Reply::Keys(self.of_kind(key, ValueKind::Set)?.members())
            }
            Command::SetContains { key, members } => {
                let set = self.of_kind(key, ValueKind::Set)?;
                Reply::Values(
                    members
                        .iter()
                        .map(|m| set.get(m).map(|_| m.clone()))
                        .collect(),
                )
            }
            Command::SetCombine { op, keys } => Reply::Keys(self.combine(*op, keys)?),
            Command::ZsetScores { key, members } => {
                let zset = self.of_kind(key, ValueKind::SortedSet)?;
                Reply::Values(members.iter().map(|m| zset.get(m).cloned()).collect())
            }
            Command::ZsetRange { key, spec } => {
                let ranked = self.of_kind(key, ValueKind::SortedSet)?.ranked();
                let crate::scores::Range::Rank { start, stop } = spec.range else {
                    panic!("the model ranges by rank only")
                };
                let len = ranked.len() as i64;
                let from_end = |i: i64| if i < 0 { i + len } else { i };
                let (start, stop) = (from_end(start), from_end(stop));
                let ordered: Vec<_> = match spec.rev {
                    true => ranked.into_iter().rev().collect(),
                    false => ranked,
                };
                let picked = (ordered.into_iter().enumerate())
                    .filter(|(i, _)| (start.max(0)..=stop).contains(&(*i as i64)))
                    .map(|(_, pair)| pair);
                Reply::KeyValues(picked.collect())
            }
            other => panic!("not a read: {other:?}"),
        })
    }

    /// The string and bit writes, each the plainest way.
    fn string_write(&mut self, command: Command) -> Reply {
        match command {
            Command::RenameIfAbsent { from, to } => match self.held(&from) {
                None => Reply::Error(CommandError::NoSuchKey),
                Some(_) if from == to || self.exists(&to) => Reply::Bool(false),
                Some(value) => {
                    self.remove(&from);
                    self.put(&to, value);
                    Reply::Bool(true)
                }
            },
            Command::Copy {
                from,
                to,
                to_db,
                replace,
            } => self.copy(&from, &to, to_db.unwrap_or(self.db), replace),
            Command::SetRange { key, offset, value } => {
                let old = self.get(&key);
                if value.is_empty() {
                    return Reply::Int(old.map_or(0, |v| v.len() as i64));
                }
                let mut new = old.unwrap_or_default();
                for (i, byte) in value.iter().enumerate() {
                    let at = offset as usize + i;
                    while new.len() <= at {
                        new.push(0);
                    }
                    new[at] = *byte;
                }
                let len = new.len() as i64;
                self.set(&key, new);
                Reply::Int(len)
            }
            Command::AddFloat { key, delta } => {
                match crate::strings::add_float(self.get(&key).as_deref(), &delta) {
                    Ok(new) => {
                        self.set(&key, new.clone());
                        Reply::Value(Some(new))
                    }
                    Err(crate::strings::FloatError::NotAFloat) => {
                        Reply::Error(CommandError::NotAFloat)
                    }
                    Err(_) => Reply::Error(CommandError::NanOrInfinity),
                }
            }
            Command::SetBit { key, offset, bit } => {
                let mut bits = self.get(&key).map_or(vec![], |v| to_bits(&v));
                while bits.len() <= offset as usize || !bits.len().is_multiple_of(8) {
                    bits.push(false);
                }
                let old = std::mem::replace(&mut bits[offset as usize], bit);
                self.set(&key, from_bits(&bits));
                Reply::Int(old as i64)
            }
            Command::BitOp { op, dest, keys } => {
                let values: Vec<Vec<bool>> = (keys.iter())
                    .map(|k| self.get(k).map_or(vec![], |v| to_bits(&v)))
                    .collect();
                let len = values.iter().map(Vec::len).max().unwrap_or(0);
                let result: Vec<bool> = (0..len)
                    .map(|i| {
                        let mut each = values.iter().map(|v| v.get(i) == Some(&true));
                        match op {
                            BitOp::Not => !each.next().unwrap(),
                            BitOp::And => each.all(|b| b),
                            BitOp::Or => each.any(|b| b),
                            BitOp::Xor => each.filter(|b| *b).count() % 2 == 1,
                        }
                    })
                    .collect();
                match len {
                    0 => drop(self.remove(&dest)),
                    _ => self.set(&dest, from_bits(&result)),
                }
                Reply::Int((len / 8) as i64)
            }
            other => self.collection_write(other).unwrap_or_else(Reply::Error),
        }
    }

    fn copy(&mut self, from: &[u8], to: &[u8], to_db: Db, replace: bool) -> Reply {
        let db = self.db;
        if db == to_db && from == to {
            return Reply::Error(CommandError::SameObject);
        }
        let Some(value) = self.held(from) else {
            return Reply::Bool(false);
        };
        self.db = to_db;
        let stored = replace || !self.exists(to);
        if stored {
            self.put(to, value);
        }
        self.db = db;
        Reply::Bool(stored)
    }

    fn move_key(&mut self, key: &[u8], to: Db) -> Reply {
        let from = self.db;
        if from == to {
            return Reply::Error(CommandError::SameObject);
        }
        self.db = to;
        let there = self.exists(key);
        self.db = from;
        if there {
            return Reply::Bool(false);
        }
        let Some(value) = self.remove(key) else {
            return Reply::Bool(false);
        };
        self.db = to;
        self.put(key, value);
        Reply::Bool(true)
    }

    fn scan(&self, cursor: u64, count: u64, filter: impl Fn(&[u8]) -> bool) -> Reply {
        let count = count.clamp(1, 10_000) as usize;
        let from: Vec<_> = (self.scan_ordered().into_iter())
            .filter(|(h, _)| *h >= cursor)
            .collect();
        let next = from.get(count).map_or(0, |(h, _)| *h);
        let keys = (from.into_iter())
            .filter(|(h, _)| next == 0 || *h < next)
            .map(|(_, k)| k)
            .filter(|k| filter(k))
            .collect();
        Reply::Scan { cursor: next, keys }
    }

    fn add(&mut self, key: &[u8], delta: i64) -> Reply {
        let old = match self.get(key) {
            None => Some(0),
            Some(value) => keyspace_integer(&value),
        };
        let Some(old) = old else {
            return Reply::Error(CommandError::NotAnInteger);
        };
        let Some(new) = old.checked_add(delta) else {
            return Reply::Error(CommandError::Overflow);
        };
        self.set(key, new.to_string().into_bytes());
        Reply::Int(new)
    }

    fn read(&mut self, command: &Command) -> Reply {
        if let Err(error) = command.validate() {
            return Reply::Error(error);
        }
        let (db, command) = command.db_and_command();
        self.db = db;
        if (command.string_keys().iter()).any(|k| self.collection(k).is_some()) {
            return Reply::Error(CommandError::WrongType);
        }
        let clamp = |count: Option<u64>| count.unwrap_or(10_000).min(10_000) as usize;
        let list = |prefix, start, count| {
            let mut listed = self.sorted_with_prefix(prefix, start);
            listed.truncate(clamp(count));
            listed
        };
        match command {
            Command::Get { key } | Command::DirtyGet { key } => Reply::Value(self.get(key)),
            Command::Watch { keys } => Reply::Watched {
                slot: self.slot,
                values: (keys.iter())
                    .map(|k| self.get(k).or(self.exists(k).then(Vec::new)))
                    .collect(),
            },
            Command::MultiGet { keys } => Reply::Values(keys.iter().map(|k| self.get(k)).collect()),
            Command::ListKeys {
                prefix,
                start,
                count,
            } => Reply::Keys(
                list(prefix, start, *count)
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect(),
            ),
            Command::ListKeyValues {
                prefix,
                start,
                count,
            } => Reply::KeyValues(list(prefix, start, *count)),
            Command::Count { prefix } => Reply::Int(
                self.all_keys()
                    .iter()
                    .filter(|k| k.starts_with(prefix))
                    .count() as i64,
            ),
            Command::Keys { pattern } => Reply::Keys(
                (self.all_keys().into_iter())
                    .filter(|k| glob::glob_match(pattern, k))
                    .collect(),
            ),
            Command::Scan {
                cursor,
                pattern,
                count,
                type_name,
            } => self.scan(*cursor, *count, |key| {
                pattern.as_ref().is_none_or(|p| glob::glob_match(p, key))
                    && type_name
                        .as_ref()
                        .is_none_or(|t| t == self.kind_name(key).as_bytes())
            }),
            Command::RandomKey { seed } => {
                let ordered = self.scan_ordered();
                let at = ordered.iter().find(|(h, _)| h >= seed).or(ordered.first());
                Reply::Value(at.map(|(_, k)| k.clone()))
            }
            other => self.collection_read(other).unwrap_or_else(Reply::Error),
        }
    }
}

/// The session rules, stated as plainly as possible.
impl Model {
    fn forget_session(&mut self, client_id: ClientId) {
        self.sessions.retain(|s| s.0 != client_id);
        self.replies.retain(|r| r.0 != client_id);
    }

    fn least_recently_used(&self) -> (Slot, ClientId) {
        let lru = self.sessions.iter().map(|&(c, slot, _)| (slot, c)).min();
        lru.expect("a session exists")
    }

    fn begin_slot(&mut self, slot: Slot, config: &StateMachineConfig) {
        self.slot = slot;
        let idle: Vec<ClientId> = (self.sessions.iter())
            .filter(|s| slot - s.1 > config.session_idle_slots_max)
            .map(|s| s.0)
            .collect();
        for client_id in idle {
            self.forget_session(client_id);
        }
        while self.sessions.len() > config.sessions_max {
            self.forget_session(self.least_recently_used().1);
        }
    }

    fn request(
        &mut self,
        slot: Slot,
        request: &ClientRequest,
        config: &StateMachineConfig,
    ) -> Reply {
        let (client_id, seq) = (request.client_id, request.seq);
        let stale = Reply::Error(CommandError::StaleRequest { seq });
        if !self.sessions.iter().any(|s| s.0 == client_id) {
            if seq == 0 || seq > SESSION_REPLIES_MAX {
                return stale;
            }
            if self.sessions.len() >= config.sessions_max && self.least_recently_used().0 < slot {
                self.forget_session(self.least_recently_used().1);
            }
            self.sessions.push((client_id, slot, 0));
        }
        let session = self.sessions.iter_mut().find(|s| s.0 == client_id).unwrap();
        session.1 = slot;
        if seq == 0 || seq + SESSION_REPLIES_MAX <= session.2 {
            return stale;
        }
        session.2 = session.2.max(seq);
        if let Some(done) = self.replies.iter().find(|r| r.0 == client_id && r.1 == seq) {
            return done.2.clone();
        }
        let reply = self.write(&request.command);
        self.replies.push((client_id, seq, reply.clone()));
        reply
    }
}

fn key() -> impl Strategy<Value = Vec<u8>> + Clone {
    select(&KEYS[..]).prop_map(<[u8]>::to_vec)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    select(&VALUES[..]).prop_map(<[u8]>::to_vec)
}

/// Mostly database 0, sometimes 1 or 2, rarely one out of range.
fn db() -> impl Strategy<Value = Db> {
    prop_oneof![6 => Just(0), 2 => 1..3u8, 1 => Just(DATABASES)]
}

fn in_some_db(command: impl Strategy<Value = Command>) -> impl Strategy<Value = Command> {
    (command, db()).prop_map(|(command, db)| match db {
        DATABASES => Command::InDb {
            db,
            command: Box::new(command),
        },
        db => command.in_db(db),
    })
}

fn write_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        12 => in_some_db(prop_oneof![
            20 => key_write_command(),
            1 => Just(Command::FlushDb),
            1 => Just(Command::FlushAll),
            1 => (db(), db()).prop_map(|(a, b)| Command::SwapDb { a, b }),
            2 => (key(), db()).prop_map(|(key, to)| Command::Move { key, to }),
        ]),
        2 => transaction_command(),
    ]
}

/// A transaction of a few key commands (in any database), watching a few keys at slots
/// before, at or after the ones the test reaches.
fn transaction_command() -> impl Strategy<Value = Command> {
    let inner = prop_oneof![
        2 => in_some_db(key_write_command()),
        1 => in_some_db(key_read_command()),
        1 => Just(Command::FlushDb),
    ];
    let watched =
        (db(), key(), 0..100u64, any::<bool>()).prop_map(|(db, key, slot, existed)| Watched {
            db,
            key,
            slot,
            existed,
        });
    (
        proptest::collection::vec(inner, 0..4),
        proptest::collection::vec(watched, 0..3),
    )
        .prop_map(|(commands, watched)| Command::Transaction { commands, watched })
}

/// Bytes as bits, most significant first.
fn to_bits(bytes: &[u8]) -> Vec<bool> {
    (bytes.iter())
        .flat_map(|b| (0..8).map(move |i| b & (0x80 >> i) != 0))
        .collect()
}

fn from_bits(bits: &[bool]) -> Vec<u8> {
    (bits.chunks(8))
        .map(|c| c.iter().fold(0u8, |acc, b| (acc << 1) | *b as u8))
        .collect()
}

const FLOATS: [&[u8]; 8] = [
    b"1", b"-1.5", b"0.1", b"1e308", b"+inf", b"x", b"", b"2.5e-3",
];
const OPS: [BitOp; 4] = [BitOp::And, BitOp::Or, BitOp::Xor, BitOp::Not];

fn string_write_command() -> impl Strategy<Value = Command> {
    let offset = select(vec![0u64, 1, 7, 9, 30, (1 << 20) - 1, 1 << 23]);
    prop_oneof![
        (key(), key()).prop_map(|(from, to)| Command::RenameIfAbsent { from, to }),
        (key(), key(), proptest::option::of(db()), any::<bool>()).prop_map(
            |(from, to, to_db, replace)| Command::Copy {
                from,
                to,
                to_db,
                replace
            }
        ),
        (key(), offset.clone(), value()).prop_map(|(key, offset, value)| Command::SetRange {
            key,
            offset,
            value
        }),
        (key(), select(&FLOATS[..])).prop_map(|(key, delta)| Command::AddFloat {
            key,
            delta: delta.to_vec()
        }),
        (key(), offset, any::<bool>()).prop_map(|(key, offset, bit)| Command::SetBit {
            key,
            offset,
            bit
        }),
        (
            select(&OPS[..]),
            key(),
            proptest::collection::vec(key(), 0..3)
        )
            .prop_map(|(op, dest, keys)| Command::BitOp { op, dest, keys }),
    ]
}

/// Elements of hashes and sets: integers (an intset's), words, and one too long for a listpack.
fn element() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => select(&VALUES[..6]).prop_map(<[u8]>::to_vec),
        2 => select(vec![b"x".to_vec(), b"y".to_vec()]),
        1 => Just(vec![b'z'; 65]),
    ]
}

fn elements() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(element(), 1..4)
}

const SET_OPS: [SetOp; 3] = [SetOp::Inter, SetOp::Union, SetOp::Diff];

fn collection_write_command() -> impl Strategy<Value = Command> {
    let pairs = proptest::collection::vec((element(), element()), 1..3);
    let count = proptest::option::of(select(vec![0u64, 1, 2, 9]));
    prop_oneof![
        (key(), pairs, any::<bool>()).prop_map(|(key, pairs, if_absent)| Command::HashSet {
            key,
            pairs,
            if_absent
        }),
        (key(), elements()).prop_map(|(key, fields)| Command::HashDelete { key, fields }),
        (key(), element(), select(&DELTAS[..])).prop_map(|(key, field, delta)| Command::HashAdd {
            key,
            field,
            delta
        }),
        (key(), element(), select(&FLOATS[..])).prop_map(|(key, field, delta)| {
            Command::HashAddFloat {
                key,
                field,
                delta: delta.to_vec(),
            }
        }),
        (key(), elements()).prop_map(|(key, members)| Command::SetAdd { key, members }),
        (key(), elements()).prop_map(|(key, members)| Command::SetRemove { key, members }),
        (key(), key(), element()).prop_map(|(from, to, member)| Command::SetMove {
            from,
            to,
            member
        }),
        (
            select(&SET_OPS[..]),
            key(),
            proptest::collection::vec(key(), 1..3)
        )
            .prop_map(|(op, dest, keys)| Command::SetStore { op, dest, keys }),
        (key(), count).prop_map(|(key, count)| Command::SetPop { key, count }),
        (key(), scored_members(), add_options()).prop_map(|(key, mut members, options)| {
            if options.increment {
                members.truncate(1);
            }
            Command::ZsetAdd {
                key,
                members,
                options,
            }
        }),
        (key(), elements()).prop_map(|(key, members)| Command::ZsetRemove { key, members }),
    ]
}

const SCORES: [f64; 7] = [f64::NEG_INFINITY, -1.5, 0.0, 0.1, 1.0, 2.0, f64::INFINITY];

fn scored_members() -> impl Strategy<Value = Vec<crate::scores::ScoredMember>> {
    let one = (select(&SCORES[..]), element()).prop_map(|(score, member)| {
        let score = crate::scores::Score::new(score).expect("not NaN");
        crate::scores::ScoredMember { score, member }
    });
    proptest::collection::vec(one, 1..3)
}

fn add_options() -> impl Strategy<Value = crate::command::AddOptions> {
    let compare = proptest::option::of(select(vec![
        crate::scores::Compare::Greater,
        crate::scores::Compare::Less,
    ]));
    (
        select(CONDITIONS.to_vec()),
        compare,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(condition, compare, changed, increment)| crate::command::AddOptions {
                condition,
                compare,
                changed,
                increment,
            },
        )
}

fn collection_read_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        key().prop_map(|key| Command::Describe { key }),
        proptest::collection::vec(key(), 1..4).prop_map(|keys| Command::Exists { keys }),
        (key(), elements()).prop_map(|(key, fields)| Command::HashGet { key, fields }),
        key().prop_map(|key| Command::HashGetAll { key }),
        (
            key(),
            select(vec![ValueKind::Hash, ValueKind::Set, ValueKind::SortedSet])
        )
            .prop_map(|(key, kind)| Command::Cardinality { key, kind }),
        key().prop_map(|key| Command::SetMembers { key }),
        (key(), elements()).prop_map(|(key, members)| Command::SetContains { key, members }),
        (select(&SET_OPS[..]), proptest::collection::vec(key(), 1..3))
            .prop_map(|(op, keys)| Command::SetCombine { op, keys }),
        (key(), elements()).prop_map(|(key, members)| Command::ZsetScores { key, members }),
        (key(), -3..3i64, -3..3i64, any::<bool>()).prop_map(|(key, start, stop, rev)| {
            let range = crate::scores::Range::Rank { start, stop };
            let spec = crate::scores::RangeSpec {
                range,
                rev,
                limit: None,
            };
            Command::ZsetRange {
                key,
                spec: Box::new(spec),
            }
        }),
    ]
}

fn key_write_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => collection_write_command(),
        3 => string_write_command(),
        3 => (key(), value()).prop_map(|(key, value)| Command::Set { key, value }),
        1 => (key(), value(), value())
            .prop_map(|(key, expected, new)| Command::TestAndSet { key, expected, new }),
        3 => (key(), select(&DELTAS[..])).prop_map(|(key, delta)| Command::Add { key, delta }),
        1 => key().prop_map(|key| Command::Delete { key }),
        1 => key().prop_map(|key| Command::Remove { key }),
        1 => (key(), key()).prop_map(|(from, to)| Command::Rename { from, to }),
        1 => key().prop_map(|prefix| Command::Prune { prefix }),
        1 => proptest::collection::vec((key(), value()), 0..3)
            .prop_map(|pairs| Command::MultiSet { pairs }),
        1 => proptest::collection::vec(key(), 0..4).prop_map(|keys| Command::MultiDelete { keys }),
        2 => (key(), value(), select(CONDITIONS.to_vec()), any::<bool>()).prop_map(
            |(key, value, condition, get)| Command::SetIf { key, value, condition, get }
        ),
        1 => (key(), value()).prop_map(|(key, value)| Command::Append { key, value }),
        1 => proptest::collection::vec((key(), value()), 0..3)
            .prop_map(|pairs| Command::MultiSetIfAbsent { pairs }),
    ]
}

const CONDITIONS: [SetCondition; 3] = [
    SetCondition::Always,
    SetCondition::IfAbsent,
    SetCondition::IfPresent,
];

fn key_read_command() -> impl Strategy<Value = Command> {
    let start = proptest::option::of(key());
    let count = proptest::option::of(select(vec![0, 1, 2, u64::MAX]));
    prop_oneof![
        key().prop_map(|key| Command::Get { key }),
        key().prop_map(|key| Command::DirtyGet { key }),
        proptest::collection::vec(key(), 0..4).prop_map(|keys| Command::MultiGet { keys }),
        (key(), start.clone(), count.clone()).prop_map(|(prefix, start, count)| {
            Command::ListKeys {
                prefix,
                start,
                count,
            }
        }),
        (key(), start, count).prop_map(|(prefix, start, count)| Command::ListKeyValues {
            prefix,
            start,
            count
        }),
        key().prop_map(|prefix| Command::Count { prefix }),
        collection_read_command(),
    ]
}

fn read_command() -> impl Strategy<Value = Command> {
    let cursor = prop_oneof![Just(0u64), any::<u64>()];
    let pattern = proptest::option::of(select(&PATTERNS[..]).prop_map(<[u8]>::to_vec));
    let type_name = proptest::option::of(select(vec![
        b"string".to_vec(),
        b"list".to_vec(),
        b"hash".to_vec(),
        b"set".to_vec(),
    ]));
    in_some_db(prop_oneof![
        12 => key_read_command(),
        1 => select(&PATTERNS[..]).prop_map(|p| Command::Keys { pattern: p.to_vec() }),
        2 => (cursor, pattern, 0..4u64, type_name).prop_map(|(cursor, pattern, count, type_name)| {
            Command::Scan { cursor, pattern, count, type_name }
        }),
        1 => any::<u64>().prop_map(|seed| Command::RandomKey { seed }),
        1 => proptest::collection::vec(key(), 0..3).prop_map(|keys| Command::Watch { keys }),
    ])
}

/// One request of a batch, before seqs are assigned.
#[derive(Clone, Debug)]
enum Op {
    /// The client's next seq, `skip` beyond the highest it used (leaving gaps to fill later).
    Next {
        client_id: ClientId,
        skip: u64,
        command: Command,
    },
    /// A seq `back` below the client's highest used: fills a gap, or repeats an applied seq
    /// (possibly past the window, or seq 0).
    Back {
        client_id: ClientId,
        back: u64,
        command: Command,
    },
    /// Resends an earlier request exactly, as a client does after a timeout.
    Retry { earlier: Index },
}

fn op() -> impl Strategy<Value = Op> {
    let client_id = 1..=CLIENTS_MAX;
    let skip = prop_oneof![6 => Just(0u64), 2 => 1..4u64, 1 => 60..80u64];
    prop_oneof![
        5 => (client_id.clone(), skip, write_command())
            .prop_map(|(client_id, skip, command)| Op::Next { client_id, skip, command }),
        1 => (client_id, 1..80u64, write_command())
            .prop_map(|(client_id, back, command)| Op::Back { client_id, back, command }),
        3 => any::<Index>().prop_map(|earlier| Op::Retry { earlier }),
    ]
}

#[derive(Clone, Debug)]
struct Step {
    slot_gap: u64,
    ops: Vec<Op>,
    reads: Vec<Command>,
}

fn step() -> impl Strategy<Value = Step> {
    let ops = proptest::collection::vec(op(), 0..5);
    let reads = proptest::collection::vec(read_command(), 0..3);
    (1..4u64, ops, reads).prop_map(|(slot_gap, ops, reads)| Step {
        slot_gap,
        ops,
        reads,
    })
}

fn config() -> impl Strategy<Value = StateMachineConfig> {
    (1..=6usize, 1..=30u64).prop_map(
        |(sessions_max, session_idle_slots_max)| StateMachineConfig {
            sessions_max,
            session_idle_slots_max,
        },
    )
}

/// Turns ops into requests, tracking each client's highest seq used and every request sent.
#[derive(Default)]
struct Workload {
    highest_used: [Seq; CLIENTS_MAX as usize + 1],
    sent: Vec<ClientRequest>,
}

impl Workload {
    fn request(&mut self, op: &Op) -> Option<ClientRequest> {
        let request = match op.clone() {
            Op::Next {
                client_id,
                skip,
                command,
            } => {
                let highest = &mut self.highest_used[client_id as usize];
                *highest += 1 + skip;
                ClientRequest {
                    client_id,
                    seq: *highest,
                    command,
                }
            }
            Op::Back {
                client_id,
                back,
                command,
            } => {
                let seq = self.highest_used[client_id as usize].saturating_sub(back);
                ClientRequest {
                    client_id,
                    seq,
                    command,
                }
            }
            Op::Retry { earlier } if !self.sent.is_empty() => earlier.get(&self.sent).clone(),
            Op::Retry { .. } => return None,
        };
        self.sent.push(request.clone());
        Some(request)
    }
}

/// Reads that show every key's whole value in database `db`, whatever its kind.
fn whole_values(db: Db) -> Vec<Command> {
    let reads = KEYS.iter().flat_map(|key| {
        let key = key.to_vec();
        [
            Command::Describe { key: key.clone() },
            Command::Get { key: key.clone() },
            Command::HashGetAll { key: key.clone() },
            Command::SetMembers { key },
        ]
    });
    reads.map(|read| read.in_db(db)).collect()
}

/// The data or the sessions of two states are equal exactly when their running hashes are.
fn assert_hashes_separate(states: &[StateMachine]) {
    let last = states.last().expect("at least one state");
    for earlier in states {
        let same_data = earlier.data == last.data;
        let same_data_hash = earlier.data.entries_hash() == last.data.entries_hash();
        assert_eq!(same_data, same_data_hash, "data hash collision or drift");
        let same_sessions = earlier.sessions == last.sessions;
        let same_sessions_hash = earlier.sessions.sessions_hash() == last.sessions.sessions_hash();
        assert_eq!(
            same_sessions, same_sessions_hash,
            "session hash collision or drift"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn state_machine_matches_naive_model_with_retries(
        config in config(),
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let mut machine = StateMachine::new(config);
        let mut twin = StateMachine::new(config);
        let mut model = Model::default();
        let mut workload = Workload::default();
        let mut states = Vec::new();
        let mut slot = 0;
        for step in &steps {
            slot += step.slot_gap;
            let batch: Vec<ClientRequest> =
                step.ops.iter().filter_map(|op| workload.request(op)).collect();
            model.begin_slot(slot, &config);
            let expected: Vec<Reply> =
                batch.iter().map(|request| model.request(slot, request, &config)).collect();
            let got = super::tests::replies(machine.apply_batch(slot, &batch));
            prop_assert_eq!(got, expected, "batch {:?} at slot {}", batch, slot);
            if batch.is_empty() { twin.apply_noop(slot) } else { twin.apply_batch(slot, &batch); }
            for read in &step.reads {
                prop_assert_eq!(machine.read(read), model.read(read), "{:?}", read);
            }
            for read in whole_values(step.slot_gap as Db % 3) {
                prop_assert_eq!(machine.read(&read), model.read(&read), "{:?}", read);
            }
            machine.assert_invariants();
            prop_assert_eq!(&machine, &twin);
            prop_assert_eq!(machine.state_hash(), twin.state_hash());
            prop_assert_eq!(machine.sessions_len(), model.sessions.len());
            states.push(machine.clone());
            assert_hashes_separate(&states);
        }
        let bytes = machine.encode();
        let copy = StateMachine::decode(&bytes).unwrap();
        copy.assert_invariants();
        prop_assert_eq!(copy.state_hash(), machine.state_hash());
    }
}

/// The model's own reading of an integer value: Redis takes exactly the strings that are the
/// canonical decimal form of an `i64` (no sign but `-`, no leading zero, no `-0`).
fn keyspace_integer(value: &[u8]) -> Option<i64> {
    let number: i64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    (number.to_string().as_bytes() == value).then_some(number)
}
