//! A map of string keys to string values, every value initially "": the model of the
//! key/value histories (get, put, append).

use crate::fxhash::FxHasher;
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

/// A value: shared, with its hash computed once, so states clone, hash and compare cheaply.
#[derive(Clone, Debug)]
pub struct Text(Rc<(String, u64)>);

impl Text {
    fn new(text: String) -> Text {
        let mut hasher = FxHasher::default();
        hasher.write(text.as_bytes());
        let hash = hasher.finish();
        Text(Rc::new((text, hash)))
    }

    pub fn as_str(&self) -> &str {
        &self.0 .0
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        Rc::ptr_eq(&self.0, &other.0) || (self.0 .1 == other.0 .1 && self.0 .0 == other.0 .0)
    }
}

impl Eq for Text {}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0 .1);
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

    fn set(&self, state: &MapState, key: &str, text: String) -> MapState {
        let mut next = state.clone();
        next[self.index(key)] = Text::new(text);
        next
    }
}

impl Model for StringMap {
    type Input = MapInput;
    type Output = MapOutput;
    type State = MapState;

    fn init(&self) -> MapState {
        let empty = Text::new(String::new());
        vec![empty; self.keys.len()].into_boxed_slice()
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
                (state[self.index(key)].as_str() == value).then(|| state.clone())
            }
            (MapInput::Put { key, value }, None | Some(MapOutput::Done)) => {
                Some(self.set(state, key, value.clone()))
            }
            (MapInput::Append { key, value }, None | Some(MapOutput::Done)) => {
                let current = state[self.index(key)].as_str();
                let mut text = String::with_capacity(current.len() + value.len());
                text.push_str(current);
                text.push_str(value);
                Some(self.set(state, key, text))
            }
            _ => None,
        }
    }

    fn is_read_only(&self, input: &MapInput) -> bool {
        matches!(input, MapInput::Get { .. })
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
            .filter(|(_, v)| !v.as_str().is_empty())
            .map(|(k, v)| format!("{k:?}: {:?}", v.as_str()))
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
