//! The search for a linearization of one partition of a history.
//!
//! Depth-first search over linearizations in the style of Wing & Gong and Lowe, as Porcupine
//! does it: the calls and returns sit in a doubly linked list sorted by time; the operations
//! that may go next are the calls before the first return still in the list; linearizing one
//! lifts its call and return out of the list, backtracking puts them back. A set of visited
//! (linearized set, model state) pairs prunes what was already explored. On top of that:
//!
//! - **Unknown outcomes are linearized only when forced.** Operations of unknown outcome never
//!   return, so they never constrain others and never need to be linearized at all. They live in
//!   their own list and are tried only after every completed candidate at a node failed, never
//!   when they would not change the state, and among unknown operations with the same input only
//!   the earliest-invoked unlinearized one is tried (they are interchangeable from then on).
//! - **Dominance instead of equality.** A visited entry `(C, s, U)` (completed set, state,
//!   unknown set) prunes any later `(C, s, U')` with `U ⊆ U'`: the later node has the same
//!   obligations and fewer unknown operations left to help meet them.
//! - **Reads go first, alone.** A completed read (an operation the model says never changes
//!   the state) that is allowed now can be linearized at once with no alternative tried at that
//!   node: any linearization from the node can be reordered to start with it.
//! - **No allocation per step.** States are interned to `u32` and transitions memoized per
//!   (state, distinct operation); the linearized set is a bitset with an incrementally updated
//!   Zobrist hash; the stack and lists are preallocated.
//!
//! The search is exact: a hash is only ever a shortcut to a full comparison, and a limit on time
//! or memory ends it with "unknown", never with a verdict.

use crate::fxhash::{mix64, FxHashMap};
use crate::history::Operation;
use crate::model::Model;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

const NONE: u32 = u32::MAX;
/// A candidate whose transition is not computed yet.
const NOT_YET: u32 = u32::MAX - 1;
/// Search steps between two looks at the clock, the memory budget and the stop flag.
const STEPS_PER_POLL: u64 = 1 << 12;
/// Largest partition the search takes (indices are `u32`, with room for sentinels).
pub(crate) const PARTITION_OPS_MAX: usize = (u32::MAX / 4) as usize;

/// What may end a search early.
pub(crate) struct Limits {
    pub deadline: Option<Instant>,
    pub memory_max_bytes: usize,
}

pub(crate) enum SearchResult {
    Linearizable,
    Violation(Partial),
    /// A limit ended the search; the reason, for a person.
    Unknown(String),
    /// Another partition found a violation; this one was abandoned.
    Stopped,
}

/// The deepest partial linearization the search reached, as indices into the operations it was
/// given, and the operation it could not place after them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Partial {
    pub order: Vec<usize>,
    pub blocked: Option<usize>,
}

/// A resumable search for a linearization of one partition: `run` it with a step budget as
/// often as needed, so one thread can interleave many partitions and stop at the first that
/// fails.
pub(crate) struct PartSearch<'a, M: Model> {
    search: Search<'a, M>,
    /// Index (into the operations given) of each operation the search kept.
    kept: Vec<usize>,
}

impl<'a, M: Model> PartSearch<'a, M> {
    pub fn new(model: &'a M, ops: &[&'a Operation<M::Input, M::Output>]) -> Self {
        assert!(ops.len() <= PARTITION_OPS_MAX, "partition too large");
        // Unknown-outcome operations that cannot change the state constrain nothing.
        let kept: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].output().is_some() || !model.is_read_only(&ops[i].input))
            .collect();
        let kept_ops: Vec<&Operation<M::Input, M::Output>> = kept.iter().map(|&i| ops[i]).collect();
        PartSearch {
            search: Search::new(model, &kept_ops),
            kept,
        }
    }

    /// Runs at most about `steps_max` steps; `None` if the search is not over yet.
    pub fn run(
        &mut self,
        limits: &Limits,
        stop: &AtomicBool,
        steps_max: u64,
    ) -> Option<SearchResult> {
        let result = self.search.run(limits, stop, steps_max)?;
        Some(match result {
            SearchResult::Violation(partial) => SearchResult::Violation(Partial {
                order: partial.order.iter().map(|&i| self.kept[i]).collect(),
                blocked: partial.blocked.map(|i| self.kept[i]),
            }),
            other => other,
        })
    }
}

/// The history as the search walks it: events in time order in two linked lists.
struct Layout {
    completed: Vec<bool>,
    n_completed: usize,
    /// Distinct (input, output) per operation, for memoizing transitions.
    kind: Vec<u32>,
    /// For an unknown-outcome operation, the previous one (in invoke order) with the same kind.
    prev_same_unknown: Vec<u32>,
    zobrist: Vec<u64>,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Event to operation (`NONE` for sentinels); events are numbered in time order.
    event_op: Vec<u32>,
    is_call: Vec<bool>,
    call_of: Vec<u32>,
    return_of: Vec<u32>,
    /// Sentinels: completed operations' calls and returns in one list, unknown-outcome
    /// operations' calls in another.
    head_main: u32,
    head_unknown: u32,
}

impl Layout {
    fn new<I, O>(ops: &[&Operation<I, O>], kind: Vec<u32>) -> Layout {
        let n = ops.len();
        let completed: Vec<bool> = ops.iter().map(|op| op.output().is_some()).collect();
        // Calls sort before returns at the same instant: equal times count as concurrent.
        let mut events: Vec<(u64, u8, u32)> = Vec::with_capacity(2 * n);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoke_ns, 0, i as u32));
            if let Some(at_ns) = op.return_ns() {
                assert!(
                    at_ns >= op.invoke_ns,
                    "an operation returned before its invoke"
                );
                events.push((at_ns, 1, i as u32));
            }
        }
        events.sort_unstable();
        let e = events.len() as u32;
        let (head_main, tail_main, head_unknown, tail_unknown) = (e, e + 1, e + 2, e + 3);
        let total = e as usize + 4;
        let mut layout = Layout {
            n_completed: completed.iter().filter(|&&c| c).count(),
            completed,
            kind,
            prev_same_unknown: vec![NONE; n],
            zobrist: (0..n as u64)
                .map(|i| mix64(i ^ 0x6a09_e667_f3bc_c908))
                .collect(),
            next: vec![NONE; total],
            prev: vec![NONE; total],
            event_op: vec![NONE; total],
            is_call: vec![false; total],
            call_of: vec![NONE; n],
            return_of: vec![NONE; n],
            head_main,
            head_unknown,
        };
        let (mut last_main, mut last_unknown) = (head_main, head_unknown);
        let mut last_of_kind: FxHashMap<u32, u32> = FxHashMap::default();
        for (index, &(_, class, op)) in events.iter().enumerate() {
            let event = index as u32;
            layout.event_op[index] = op;
            layout.is_call[index] = class == 0;
            let tail = if layout.completed[op as usize] {
                &mut last_main
            } else {
                let kind = layout.kind[op as usize];
                layout.prev_same_unknown[op as usize] =
                    last_of_kind.insert(kind, op).unwrap_or(NONE);
                &mut last_unknown
            };
            layout.next[*tail as usize] = event;
            layout.prev[index] = *tail;
            *tail = event;
            if class == 0 {
                layout.call_of[op as usize] = event;
            } else {
                layout.return_of[op as usize] = event;
            }
        }
        layout.next[last_main as usize] = tail_main;
        layout.prev[tail_main as usize] = last_main;
        layout.next[last_unknown as usize] = tail_unknown;
        layout.prev[tail_unknown as usize] = last_unknown;
        layout
    }

    fn unlink(&mut self, event: u32) {
        let (p, n) = (self.prev[event as usize], self.next[event as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    fn relink(&mut self, event: u32) {
        let (p, n) = (self.prev[event as usize], self.next[event as usize]);
        self.next[p as usize] = event;
        self.prev[n as usize] = event;
    }

    fn lift(&mut self, op: u32) {
        self.unlink(self.call_of[op as usize]);
        if self.return_of[op as usize] != NONE {
            self.unlink(self.return_of[op as usize]);
        }
    }

    /// Undoes `lift`; lifts are undone in reverse order, so the links it reads are intact.
    fn unlift(&mut self, op: u32) {
        if self.return_of[op as usize] != NONE {
            self.relink(self.return_of[op as usize]);
        }
        self.relink(self.call_of[op as usize]);
    }
}

/// For each completed read, the writes that may reset it and can be linearized before it (those
/// invoked before it returns), flattened: `(start per op, plus one; lists)`.
fn reset_lists<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    layout: &Layout,
) -> (Vec<u32>, Vec<u32>) {
    let writes: Vec<usize> = (0..ops.len())
        .filter(|&w| !model.is_read_only(&ops[w].input))
        .collect();
    let mut start = Vec::with_capacity(ops.len() + 1);
    let mut lists = Vec::new();
    for (r, read) in ops.iter().enumerate() {
        start.push(lists.len() as u32);
        if read.output().is_none() || !model.is_read_only(&read.input) {
            continue;
        }
        let returns = layout.return_of[r];
        let output = read.output().expect("a completed read");
        lists.extend(
            writes
                .iter()
                .filter(|&&w| {
                    layout.call_of[w] < returns && model.resets(&ops[w].input, &read.input, output)
                })
                .map(|&w| w as u32),
        );
    }
    start.push(lists.len() as u32);
    (start, lists)
}

/// Visited (completed set, state, unknown set) triples, chained by (completed set, state).
struct Visited {
    words: usize,
    heads: FxHashMap<u64, u32>,
    bits: Vec<u64>,
    state: Vec<u32>,
    next: Vec<u32>,
    completed_mask: Vec<u64>,
    unknown_mask: Vec<u64>,
}

impl Visited {
    fn new(completed: &[bool]) -> Visited {
        let words = completed.len().div_ceil(64).max(1);
        let mut completed_mask = vec![0u64; words];
        for (i, &c) in completed.iter().enumerate() {
            if c {
                completed_mask[i / 64] |= 1 << (i % 64);
            }
        }
        let mut unknown_mask: Vec<u64> = completed_mask.iter().map(|w| !w).collect();
        if completed.len() & 63 != 0 {
            unknown_mask[words - 1] &= (1u64 << (completed.len() % 64)) - 1;
        }
        Visited {
            words,
            heads: FxHashMap::default(),
            bits: Vec::new(),
            state: Vec::new(),
            next: Vec::new(),
            completed_mask,
            unknown_mask,
        }
    }

    /// Records the node unless a visited one dominates it; returns whether it was new.
    fn insert_if_new(&mut self, completed_hash: u64, state: u32, current: &[u64]) -> bool {
        let key = completed_hash ^ mix64(u64::from(state) + 1);
        let new_entry = self.state.len() as u32;
        let head = self.heads.entry(key).or_insert(NONE);
        let mut entry = *head;
        while entry != NONE {
            let at = entry as usize;
            if self.state[at] == state {
                let stored = &self.bits[at * self.words..(at + 1) * self.words];
                if dominates(stored, current, &self.completed_mask, &self.unknown_mask) {
                    return false;
                }
            }
            entry = self.next[at];
        }
        self.next.push(*head);
        *head = new_entry;
        self.state.push(state);
        self.bits.extend_from_slice(current);
        true
    }

    fn bytes(&self) -> usize {
        // Entry payload plus the table's slot, control byte and spare capacity.
        self.state.len() * (self.words * 8 + 8) + self.heads.capacity() * 13
    }
}

/// Same completed operations, and the stored unknown set a subset of the current one.
#[inline]
fn dominates(stored: &[u64], current: &[u64], completed: &[u64], unknown: &[u64]) -> bool {
    stored
        .iter()
        .zip(current)
        .enumerate()
        .all(|(i, (&s, &c))| (s ^ c) & completed[i] == 0 && (s & !c) & unknown[i] == 0)
}

#[derive(Clone, Copy)]
struct Frame {
    op: u32,
    prev_state: u32,
    /// Linearized as a read that must go first: when it fails, the node fails.
    greedy: bool,
    /// Where the node it left resumes: a position in `candidates`, or (for an
    /// unknown-outcome operation) ignored, as the unknown list itself says where.
    resume: u32,
}

/// A node being explored: its completed candidates `candidates[start..end]`, and the first
/// return still in the list, which bounds the unknown-outcome candidates.
#[derive(Clone, Copy)]
struct Node {
    start: u32,
    end: u32,
    bound: u32,
}

/// Where the search goes next.
#[derive(Clone, Copy)]
enum Next {
    /// A node was just entered.
    Enter,
    /// Trying the current node's completed candidates from position `at`.
    Completed { at: u32 },
    /// Trying the current node's unknown-outcome candidates from event `cursor`.
    Unknown { cursor: u32 },
}

struct Search<'a, M: Model> {
    model: &'a M,
    layout: Layout,
    kind_input: Vec<&'a M::Input>,
    kind_output: Vec<Option<&'a M::Output>>,
    /// Per kind: the model says it never changes the state.
    kind_read_only: Vec<bool>,
    /// Look-ahead: for each completed read, the writes invoked before it returns that might
    /// reset what it reads (`resets[reset_start[op]..reset_start[op + 1]]`); empty without it.
    reset_start: Vec<u32>,
    resets: Vec<u32>,
    /// Look-ahead answers, memoized per (state << 32 | kind).
    may_succeed: FxHashMap<u64, bool>,
    states: Vec<M::State>,
    state_ids: FxHashMap<M::State, u32>,
    /// (state << 32 | kind) to the next state, `NONE` if not allowed.
    transitions: FxHashMap<u64, u32>,
    visited: Visited,
    bits: Vec<u64>,
    completed_hash: u64,
    stack: Vec<Frame>,
    nodes: Vec<Node>,
    /// The nodes' candidate lists, stacked: (operation, state it leads to).
    candidates: Vec<(u32, u32)>,
    state: u32,
    done: usize,
    deepest: Vec<u32>,
    deepest_blocked: u32,
    /// Where the next `run` resumes; `None` before the first.
    next: Option<Next>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &[&'a Operation<M::Input, M::Output>]) -> Self {
        let mut kind_ids: FxHashMap<(&M::Input, Option<&M::Output>), u32> = FxHashMap::default();
        let (mut kind_input, mut kind_output) = (Vec::new(), Vec::new());
        let kind: Vec<u32> = ops
            .iter()
            .map(|op| {
                let key = (&op.input, op.output());
                *kind_ids.entry(key).or_insert_with(|| {
                    kind_input.push(&op.input);
                    kind_output.push(op.output());
                    kind_input.len() as u32 - 1
                })
            })
            .collect();
        let kind_read_only = kind_input
            .iter()
            .map(|input| model.is_read_only(input))
            .collect();
        let layout = Layout::new(ops, kind);
        let (reset_start, resets) = if model.looks_ahead() {
            reset_lists(model, ops, &layout)
        } else {
            (Vec::new(), Vec::new())
        };
        let visited = Visited::new(&layout.completed);
        let words = visited.words;
        let init = model.init();
        let mut state_ids = FxHashMap::default();
        state_ids.insert(init.clone(), 0);
        Search {
            model,
            kind_input,
            kind_output,
            kind_read_only,
            reset_start,
            resets,
            may_succeed: FxHashMap::default(),
            states: vec![init],
            state_ids,
            transitions: FxHashMap::default(),
            visited,
            bits: vec![0; words],
            completed_hash: 0,
            stack: Vec::with_capacity(ops.len()),
            nodes: Vec::with_capacity(ops.len()),
            candidates: Vec::new(),
            state: 0,
            done: 0,
            deepest: Vec::new(),
            deepest_blocked: NONE,
            next: None,
            layout,
        }
    }

    /// `None` when `steps_max` steps ran and the search is not over.
    fn run(&mut self, limits: &Limits, stop: &AtomicBool, steps_max: u64) -> Option<SearchResult> {
        let mut next = match self.next {
            Some(next) => next,
            None => {
                self.visited.insert_if_new(0, 0, &self.bits);
                if let Some(read) = self.read_never_allowed() {
                    self.deepest_blocked = read;
                    return Some(self.violation());
                }
                Next::Enter
            }
        };
        let mut steps: u64 = 0;
        loop {
            steps += 1;
            if steps & (STEPS_PER_POLL - 1) == 0 {
                if let Some(ended) = self.poll(limits, stop) {
                    return Some(ended);
                }
                if steps >= steps_max {
                    self.next = Some(next);
                    return None;
                }
            }
            let resumed = match next {
                Next::Enter => {
                    if self.done == self.layout.n_completed {
                        return Some(SearchResult::Linearizable);
                    }
                    self.enter()
                }
                Next::Completed { at } => Some(self.try_completed(at)),
                Next::Unknown { cursor } => self.try_unknown(cursor),
            };
            next = match resumed {
                Some(next) => next,
                None => match self.backtrack() {
                    Some(next) => next,
                    None => return Some(self.violation()),
                },
            };
        }
    }

    /// Lists the node's candidates, or takes a read that must go first; `None`: the node fails.
    fn enter(&mut self) -> Option<Next> {
        let start = self.candidates.len();
        let mut cursor = self.layout.next[self.layout.head_main as usize];
        while self.layout.is_call[cursor as usize] {
            let op = self.layout.event_op[cursor as usize];
            let kind = self.layout.kind[op as usize];
            if self.kind_read_only[kind as usize] {
                // Only a read goes first alone: a write that happens to change nothing here may
                // change the state wherever else it is placed.
                let to = self.transition(self.state, kind);
                if to == self.state {
                    self.candidates.truncate(start);
                    return self.descend(op, to, true, 0).then_some(Next::Enter);
                }
                if !self.reset_start.is_empty() && !self.read_may_succeed(op) {
                    // A read that must still be linearized can never be: the node is dead.
                    self.candidates.truncate(start);
                    return None;
                }
            } else {
                // Its transition waits until it is tried: most candidates never are.
                self.candidates.push((op, NOT_YET));
            }
            cursor = self.layout.next[cursor as usize];
        }
        // Candidates stay in invoke order: a long-running operation is tried early, where a
        // wrong guess fails at the next read. (Earliest return first searched several times
        // more on the key/value histories.)
        let end = self.candidates.len() as u32;
        self.nodes.push(Node {
            start: start as u32,
            end,
            bound: cursor,
        });
        Some(Next::Completed { at: start as u32 })
    }

    fn try_completed(&mut self, at: u32) -> Next {
        let node = *self.nodes.last().expect("a node is being explored");
        if at == node.end {
            return Next::Unknown {
                cursor: self.layout.next[self.layout.head_unknown as usize],
            };
        }
        let (op, to) = self.candidates[at as usize];
        let to = match to {
            NOT_YET => self.transition(self.state, self.layout.kind[op as usize]),
            to => to,
        };
        if to != NONE && self.descend(op, to, false, at) {
            Next::Enter
        } else {
            Next::Completed { at: at + 1 }
        }
    }

    /// `None` when the node has no candidate left.
    fn try_unknown(&mut self, cursor: u32) -> Option<Next> {
        let node = *self.nodes.last().expect("a node is being explored");
        if cursor >= node.bound {
            self.note_dead_end(node.bound);
            self.nodes.pop();
            self.candidates.truncate(node.start as usize);
            return None;
        }
        let op = self.layout.event_op[cursor as usize];
        if self.unknown_allowed(op) {
            let to = self.transition(self.state, self.layout.kind[op as usize]);
            // An unknown-outcome operation that changes nothing is never worth linearizing.
            if to != self.state && self.descend(op, to, false, 0) {
                return Some(Next::Enter);
            }
        }
        Some(Next::Unknown {
            cursor: self.layout.next[cursor as usize],
        })
    }

    fn poll(&self, limits: &Limits, stop: &AtomicBool) -> Option<SearchResult> {
        if stop.load(Ordering::Relaxed) {
            return Some(SearchResult::Stopped);
        }
        if limits
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Some(SearchResult::Unknown("time limit reached".into()));
        }
        let bytes = self.visited.bytes()
            + self.transitions.capacity() * 13
            + self.states.len() * (std::mem::size_of::<M::State>() + 16);
        if bytes > limits.memory_max_bytes {
            return Some(SearchResult::Unknown(format!(
                "memory limit reached ({} MiB)",
                limits.memory_max_bytes >> 20
            )));
        }
        None
    }

    /// Look-ahead from the initial state: a completed read that nothing could ever allow (the
    /// value read was never written, say) makes the history a violation at once.
    fn read_never_allowed(&mut self) -> Option<u32> {
        if self.reset_start.is_empty() {
            return None;
        }
        (0..self.layout.completed.len() as u32).find(|&op| {
            let kind = self.layout.kind[op as usize];
            self.layout.completed[op as usize]
                && self.kind_read_only[kind as usize]
                && self.transition(self.state, kind) == NONE
                && !self.read_may_succeed(op)
        })
    }

    /// Look-ahead for a completed read not allowed now: can it still be, later?
    fn read_may_succeed(&mut self, op: u32) -> bool {
        let (from, to) = (
            self.reset_start[op as usize],
            self.reset_start[op as usize + 1],
        );
        if self.resets[from as usize..to as usize]
            .iter()
            .any(|&w| !self.bit(w))
        {
            return true;
        }
        let kind = self.layout.kind[op as usize];
        let key = (u64::from(self.state) << 32) | u64::from(kind);
        if let Some(&answer) = self.may_succeed.get(&key) {
            return answer;
        }
        let output = self.kind_output[kind as usize].expect("a completed read has an output");
        let answer = self.model.may_allow_later(
            &self.states[self.state as usize],
            self.kind_input[kind as usize],
            output,
        );
        self.may_succeed.insert(key, answer);
        answer
    }

    fn unknown_allowed(&self, op: u32) -> bool {
        let earlier = self.layout.prev_same_unknown[op as usize];
        earlier == NONE || self.bit(earlier)
    }

    /// Linearizes `op` (allowed, leading to `to`) if the node it leads to is new.
    fn descend(&mut self, op: u32, to: u32, greedy: bool, resume: u32) -> bool {
        let completed = self.layout.completed[op as usize];
        let zobrist = if completed {
            self.layout.zobrist[op as usize]
        } else {
            0
        };
        self.flip(op);
        self.completed_hash ^= zobrist;
        if !self
            .visited
            .insert_if_new(self.completed_hash, to, &self.bits)
        {
            self.flip(op);
            self.completed_hash ^= zobrist;
            return false;
        }
        self.stack.push(Frame {
            op,
            prev_state: self.state,
            greedy,
            resume,
        });
        self.state = to;
        self.layout.lift(op);
        self.done += usize::from(completed);
        true
    }

    /// Undoes frames up to the innermost node with candidates left; `None` when none is left.
    fn backtrack(&mut self) -> Option<Next> {
        loop {
            let frame = self.stack.pop()?;
            let op = frame.op;
            let completed = self.layout.completed[op as usize];
            self.layout.unlift(op);
            self.flip(op);
            if completed {
                self.completed_hash ^= self.layout.zobrist[op as usize];
                self.done -= 1;
            }
            self.state = frame.prev_state;
            if frame.greedy {
                continue;
            }
            return Some(if completed {
                Next::Completed {
                    at: frame.resume + 1,
                }
            } else {
                Next::Unknown {
                    cursor: self.layout.next[self.layout.call_of[op as usize] as usize],
                }
            });
        }
    }

    fn note_dead_end(&mut self, bound: u32) {
        if self.stack.len() > self.deepest.len() || self.deepest_blocked == NONE {
            self.deepest.clear();
            self.deepest.extend(self.stack.iter().map(|f| f.op));
            self.deepest_blocked = self.layout.event_op[bound as usize];
        }
    }

    fn violation(&self) -> SearchResult {
        SearchResult::Violation(Partial {
            order: self.deepest.iter().map(|&op| op as usize).collect(),
            blocked: (self.deepest_blocked != NONE).then_some(self.deepest_blocked as usize),
        })
    }

    fn transition(&mut self, state: u32, kind: u32) -> u32 {
        let key = (u64::from(state) << 32) | u64::from(kind);
        if let Some(&to) = self.transitions.get(&key) {
            return to;
        }
        let output = self.kind_output[kind as usize];
        let stepped = self.model.step(
            &self.states[state as usize],
            self.kind_input[kind as usize],
            output,
        );
        let to = match stepped {
            Some(_) if self.kind_read_only[kind as usize] => state,
            Some(next) => self.intern(next),
            None => {
                assert!(
                    output.is_some(),
                    "a model refused an operation of unknown outcome"
                );
                NONE
            }
        };
        self.transitions.insert(key, to);
        to
    }

    fn intern(&mut self, state: M::State) -> u32 {
        if let Some(&id) = self.state_ids.get(&state) {
            return id;
        }
        let id = self.states.len() as u32;
        assert!(id < NOT_YET, "too many model states");
        self.states.push(state.clone());
        self.state_ids.insert(state, id);
        id
    }

    fn flip(&mut self, op: u32) {
        self.bits[op as usize / 64] ^= 1 << (op % 64);
    }

    fn bit(&self, op: u32) -> bool {
        self.bits[op as usize / 64] & (1 << (op % 64)) != 0
    }
}
