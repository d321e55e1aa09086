//! Checks the partitions of a history, in parallel, stopping at the first violation.

use crate::engine::{self, Limits, SearchResult};
use crate::history::Operation;
use crate::model::Model;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default memory budget of one check: the visited sets of all partitions together.
pub const MEMORY_MAX_BYTES_DEFAULT: usize = 2 << 30;

/// How a check runs.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Give up with [`CheckResult::Unknown`] after this long.
    pub timeout: Option<Duration>,
    /// Give up with [`CheckResult::Unknown`] when the search's tables would pass this size.
    pub memory_max_bytes: usize,
    /// Threads that check partitions; 0 means one per available core.
    pub threads: usize,
    /// Split the history into independent parts (per key) where the model allows it.
    pub partition: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: None,
            memory_max_bytes: MEMORY_MAX_BYTES_DEFAULT,
            threads: 0,
            partition: true,
        }
    }
}

/// The verdict on a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    Linearizable,
    Violation(Box<Violation>),
    /// The check could not decide (a time or memory limit); the reason.
    Unknown(String),
}

impl CheckResult {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, CheckResult::Linearizable)
    }

    pub fn is_violation(&self) -> bool {
        matches!(self, CheckResult::Violation(_))
    }

    /// `linearizable`, `violation` or `unknown`.
    pub fn word(&self) -> &'static str {
        match self {
            CheckResult::Linearizable => "linearizable",
            CheckResult::Violation(_) => "violation",
            CheckResult::Unknown(_) => "unknown",
        }
    }
}

/// Why a history is not linearizable: within one independent part of it, the longest
/// linearization the search found and the operation that cannot follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The operations of the part that failed (indices into the history), in history order.
    pub partition: Vec<usize>,
    /// The longest linearizable prefix found, in linearization order.
    pub linearized: Vec<LinearizedOp>,
    /// The operation that cannot be placed after `linearized` (index into the history): the
    /// completed operation with the earliest return among those left.
    pub blocked: Option<usize>,
    /// `blocked` described by the model.
    pub blocked_text: String,
    /// The model state after `linearized`.
    pub state: String,
}

/// One operation of a partial linearization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearizedOp {
    /// Index into the history.
    pub op: usize,
    /// The operation described by the model.
    pub text: String,
    /// The model state after it.
    pub state_after: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.blocked {
            Some(op) => write!(f, "cannot place op {op} `{}`", self.blocked_text)?,
            None => write!(f, "cannot complete the linearization")?,
        }
        write!(
            f,
            " after the longest linearizable prefix found ({} of the {} operations of its part; state {})",
            self.linearized.len(),
            self.partition.len(),
            self.state
        )
    }
}

/// One independent part of a history and the model that judges it.
pub(crate) struct Part<M> {
    pub model: M,
    /// Indices into the history, in history order.
    pub ops: Vec<usize>,
}

/// Checks every part; a violation in any part is a violation of the history.
pub(crate) fn check_parts<M>(
    ops: &[Operation<M::Input, M::Output>],
    mut parts: Vec<Part<M>>,
    options: &CheckOptions,
) -> CheckResult
where
    M: Model + Sync,
    M::Input: Sync,
    M::Output: Sync,
{
    // Largest first, so one long part does not start last.
    parts.sort_by_key(|part| std::cmp::Reverse(part.ops.len()));
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(parts.len())
    .max(1);
    let limits = Limits {
        deadline: options.timeout.map(|timeout| Instant::now() + timeout),
        memory_max_bytes: options.memory_max_bytes / threads,
    };
    let stop = AtomicBool::new(false);
    let next_part = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, CheckResult)>> = Mutex::new(Vec::new());
    let work = || loop {
        let index = next_part.fetch_add(1, Ordering::Relaxed);
        if index >= parts.len() || stop.load(Ordering::Relaxed) {
            return;
        }
        let result = check_part(ops, &parts[index], &limits, &stop);
        if let Some(result) = result {
            if result.is_violation() {
                stop.store(true, Ordering::Relaxed);
            }
            results
                .lock()
                .expect("no worker panicked")
                .push((index, result));
        }
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(work);
            }
        });
    }
    merge(results.into_inner().expect("no worker panicked"))
}

/// Violation over unknown over linearizable; among violations the one of the largest part.
fn merge(mut results: Vec<(usize, CheckResult)>) -> CheckResult {
    results.sort_by_key(|(index, _)| *index);
    let mut verdict = CheckResult::Linearizable;
    for (_, result) in results {
        match (&verdict, result) {
            (CheckResult::Violation(_), _) => break,
            (_, violation @ CheckResult::Violation(_)) => verdict = violation,
            (CheckResult::Linearizable, unknown @ CheckResult::Unknown(_)) => verdict = unknown,
            _ => {}
        }
    }
    verdict
}

/// `None` when the search was abandoned because another part failed.
fn check_part<M: Model>(
    ops: &[Operation<M::Input, M::Output>],
    part: &Part<M>,
    limits: &Limits,
    stop: &AtomicBool,
) -> Option<CheckResult> {
    let part_ops: Vec<&Operation<M::Input, M::Output>> =
        part.ops.iter().map(|&i| &ops[i]).collect();
    match engine::search(&part.model, &part_ops, limits, stop) {
        SearchResult::Linearizable => Some(CheckResult::Linearizable),
        SearchResult::Unknown(reason) => Some(CheckResult::Unknown(reason)),
        SearchResult::Stopped => None,
        SearchResult::Violation(partial) => Some(CheckResult::Violation(Box::new(explain(
            &part.model,
            &part_ops,
            part,
            partial,
        )))),
    }
}

/// Replays the partial linearization through the model to describe each step.
fn explain<M: Model>(
    model: &M,
    part_ops: &[&Operation<M::Input, M::Output>],
    part: &Part<M>,
    partial: engine::Partial,
) -> Violation {
    let mut state = model.init();
    let mut linearized = Vec::with_capacity(partial.order.len());
    for &local in &partial.order {
        let op = part_ops[local];
        state = model
            .step(&state, &op.input, op.output())
            .expect("the search only linearizes operations the model allows");
        linearized.push(LinearizedOp {
            op: part.ops[local],
            text: model.describe_op(&op.input, op.output()),
            state_after: model.describe_state(&state),
        });
    }
    Violation {
        partition: part.ops.clone(),
        linearized,
        blocked: partial.blocked.map(|local| part.ops[local]),
        blocked_text: partial.blocked.map_or_else(String::new, |local| {
            let op = part_ops[local];
            model.describe_op(&op.input, op.output())
        }),
        state: model.describe_state(&state),
    }
}
