//! What a sequential specification must provide to be checked against.

use std::fmt::Debug;
use std::hash::Hash;

/// A deterministic sequential specification.
///
/// The search interns states and memoizes `step` per (state, input, output), so `step` runs at
/// most once for each distinct combination; it may allocate.
pub trait Model {
    type Input: Clone + Eq + Hash + Debug;
    type Output: Clone + Eq + Hash + Debug;
    type State: Clone + Eq + Hash + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`. With `Some(output)`, returns the next state if the
    /// specification allows that output, else `None`. With `None` (outcome unknown), returns the
    /// state after applying `input`, whatever it would have answered; it must not return `None`.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// True if `input` never changes the state. An operation of unknown outcome with such an
    /// input constrains nothing and is left out of the search.
    fn is_read_only(&self, input: &Self::Input) -> bool;

    /// Look-ahead, optional: whether the search should prune nodes where a pending read can no
    /// longer succeed (see [`Model::may_allow_later`]). Off by default.
    fn looks_ahead(&self) -> bool {
        false
    }

    /// Look-ahead: whether `write`, placed anywhere, might let the read `read -> read_output`
    /// become allowed (a put of the key a get reads; a set of the value it read). Conservative
    /// default: yes.
    fn resets(
        &self,
        _write: &Self::Input,
        _read: &Self::Input,
        _read_output: &Self::Output,
    ) -> bool {
        true
    }

    /// Look-ahead: `false` only if no sequence of operations that do not [`Model::resets`] the
    /// read can take `state` to one where the read `input -> output` is allowed.
    fn may_allow_later(
        &self,
        _state: &Self::State,
        _input: &Self::Input,
        _output: &Self::Output,
    ) -> bool {
        true
    }

    /// One short line for a person: `cas(1, 2) -> ok`.
    fn describe_op(&self, input: &Self::Input, output: Option<&Self::Output>) -> String;

    /// One short line for a person.
    fn describe_state(&self, state: &Self::State) -> String;
}
