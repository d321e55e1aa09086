//! A map of string keys to string values, every value initially "": the model of the
//! key/value histories (get, put, append).

use crate::history::Operation;
use crate::model::Model;
use crate::runner::{check_parts, CheckOptions, CheckResult, Part};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MapInput {
    Get { key: String },
    Put { key: String, value: String },
    Append { key: String, value: String },
}

impl MapInput {
    pub fn key(&self) -> &str {
        match self {
            MapInput::Get { key } | MapInput::Put { key, .. } | MapInput::Append { key, .. } => key,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MapOutput {
    /// What a get returned.
    Value(String),
    /// A put or append completed.
    Done,
}

/// A value as a persistent chain of appended pieces: an append shares its prefix, so it costs
/// one small allocation however long the value is. Its length and a content hash (polynomial,
/// so equal text has an equal hash however it was pieced together) are kept with it; equality
/// compares the text itself.
#[derive(Clone, Debug)]
pub struct Text(Option<Rc<Piece>>);

#[derive(Debug)]
struct Piece {
    prefix: Text,
    piece: Box<str>,
    len: usize,
    hash: u64,
    /// `HASH_BASE` to the power `len`.
    power: u64,
}

const HASH_BASE: u64 = 0x100_0000_01b3;

impl Text {
    pub fn empty() -> Text {
        Text(None)
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn hash_and_power(&self) -> (u64, u64) {
        self.0.as_ref().map_or((0, 1), |p| (p.hash, p.power))
    }

    /// This text followed by `piece`.
    pub fn append(&self, piece: &str) -> Text {
        if piece.is_empty() {
            return self.clone();
        }
        let (mut hash, mut power) = self.hash_and_power();
        for &byte in piece.as_bytes() {
            hash = hash
                .wrapping_mul(HASH_BASE)
                .wrapping_add(u64::from(byte) + 1);
            power = power.wrapping_mul(HASH_BASE);
        }
        Text(Some(Rc::new(Piece {
            prefix: self.clone(),
            piece: piece.into(),
            len: self.len() + piece.len(),
            hash,
            power,
        })))
    }

    /// The pieces, last first.
    fn pieces(&self) -> impl Iterator<Item = &str> {
        let mut at = self.0.as_deref();
        std::iter::from_fn(move || {
            let piece = at?;
            at = piece.prefix.0.as_deref();
            Some(&*piece.piece)
        })
    }

    /// Whether the text is exactly `text`, compared from the end (where wrong states differ).
    pub fn equals(&self, text: &str) -> bool {
        self.len() == text.len() && self.is_prefix_of(text)
    }

    /// Whether `text` starts with this text.
    pub fn is_prefix_of(&self, text: &str) -> bool {
        if self.len() > text.len() {
            return false;
        }
        let mut end = self.len();
        for piece in self.pieces() {
            let start = end - piece.len();
            if text.as_bytes()[start..end] != *piece.as_bytes() {
                return false;
            }
            end = start;
        }
        true
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut pieces: Vec<&str> = self.pieces().collect();
        pieces.reverse();
        f.write_str(&pieces.concat())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) if Rc::ptr_eq(a, b) => true,
            _ => {
                self.len() == other.len()
                    && self.hash_and_power() == other.hash_and_power()
                    && self.equals(&other.to_string())
            }
        }
    }
}

impl Eq for Text {}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_and_power().0);
    }
}

impl Drop for Piece {
    /// Unlinks the chain iteratively: a long value must not recurse once per piece.
    fn drop(&mut self) {
        let mut next = self.prefix.0.take();
        while let Some(rc) = next {
            next = match Rc::try_unwrap(rc) {
                Ok(mut piece) => piece.prefix.0.take(),
                Err(_) => None,
            };
        }
    }
}

/// The values of the map's keys, in the order of [`StringMap::keys`].
pub type MapState = Box<[Text]>;

/// A map over a fixed set of keys (those of the history, or of one part of it).
#[derive(Clone, Debug, Default)]
pub struct StringMap {
    keys: Vec<String>,
}

impl StringMap {
    /// A map over `keys` (any order, duplicates allowed).
    pub fn new<'k>(keys: impl IntoIterator<Item = &'k str>) -> StringMap {
        let mut keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
        keys.sort_unstable();
        keys.dedup();
        StringMap { keys }
    }

    /// The map over every key the operations name.
    pub fn for_ops(ops: &[Operation<MapInput, MapOutput>]) -> StringMap {
        StringMap::new(ops.iter().map(|op| op.input.key()))
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    fn index(&self, key: &str) -> usize {
        self.keys
            .binary_search_by(|k| k.as_str().cmp(key))
            .expect("the map was built over every key of its operations")
    }

    fn set(&self, state: &MapState, key: &str, text: Text) -> MapState {
        let mut next = state.clone();
        next[self.index(key)] = text;
        next
    }
}

impl Model for StringMap {
    type Input = MapInput;
    type Output = MapOutput;
    type State = MapState;

    fn init(&self) -> MapState {
        vec![Text::empty(); self.keys.len()].into_boxed_slice()
    }

    fn step(
        &self,
        state: &MapState,
        input: &MapInput,
        output: Option<&MapOutput>,
    ) -> Option<MapState> {
        match (input, output) {
            (MapInput::Get { .. }, None) => Some(state.clone()),
            (MapInput::Get { key }, Some(MapOutput::Value(value))) => {
                state[self.index(key)].equals(value).then(|| state.clone())
            }
            (MapInput::Put { key, value }, None | Some(MapOutput::Done)) => {
                Some(self.set(state, key, Text::empty().append(value)))
            }
            (MapInput::Append { key, value }, None | Some(MapOutput::Done)) => {
                let text = state[self.index(key)].append(value);
                Some(self.set(state, key, text))
            }
            _ => None,
        }
    }

    fn is_read_only(&self, input: &MapInput) -> bool {
        matches!(input, MapInput::Get { .. })
    }

    /// Appends only extend a value: a get of `v` can succeed later only if the value is a
    /// prefix of `v`, unless a put of that key comes first.
    fn looks_ahead(&self) -> bool {
        true
    }

    fn resets(&self, write: &MapInput, read: &MapInput, _: &MapOutput) -> bool {
        matches!(write, MapInput::Put { key, .. } if key == read.key())
    }

    fn may_allow_later(&self, state: &MapState, input: &MapInput, output: &MapOutput) -> bool {
        match (input, output) {
            (MapInput::Get { key }, MapOutput::Value(value)) => {
                state[self.index(key)].is_prefix_of(value)
            }
            _ => true,
        }
    }

    fn describe_op(&self, input: &MapInput, output: Option<&MapOutput>) -> String {
        let call = match input {
            MapInput::Get { key } => format!("get({key:?})"),
            MapInput::Put { key, value } => format!("put({key:?}, {value:?})"),
            MapInput::Append { key, value } => format!("append({key:?}, {value:?})"),
        };
        match output {
            None => format!("{call} -> unknown"),
            Some(MapOutput::Value(value)) => format!("{call} -> {value:?}"),
            Some(MapOutput::Done) => call,
        }
    }

    fn describe_state(&self, state: &MapState) -> String {
        let entries: Vec<String> = self
            .keys
            .iter()
            .zip(state.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k:?}: {:?}", v.to_string()))
            .collect();
        format!("{{{}}}", entries.join(", "))
    }
}

/// Checks a string-map history; with `options.partition`, each key on its own.
pub fn check_string_map(
    ops: &[Operation<MapInput, MapOutput>],
    options: &CheckOptions,
) -> CheckResult {
    let parts = if options.partition {
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            by_key.entry(op.input.key()).or_default().push(i);
        }
        let mut parts: Vec<Part<StringMap>> = by_key
            .into_iter()
            .map(|(key, ops)| Part {
                model: StringMap::new([key]),
                ops,
            })
            .collect();
        parts.sort_by_key(|part| part.ops[0]);
        parts
    } else {
        vec![Part {
            model: StringMap::for_ops(ops),
            ops: (0..ops.len()).collect(),
        }]
    };
    check_parts(ops, parts, options)
}
