//! Checks the partitions of a history, in parallel, stopping at the first violation.

use crate::engine::{self, Limits, PartSearch, SearchResult};
use crate::history::Operation;
use crate::log_clock::LogClock;
use crate::model::Model;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// How the store's time relates to the history's clock, for judging keys with deadlines
    /// (see [`LogClock`]); without it, the parts of a history that hold an expiry command are
    /// left out.
    pub log_clock: Option<LogClock>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: None,
            memory_max_bytes: MEMORY_MAX_BYTES_DEFAULT,
            threads: 0,
            partition: true,
            log_clock: None,
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
    let results: Mutex<Vec<(usize, CheckResult)>> = Mutex::new(Vec::new());
    let work = |worker: usize| {
        let mine: Vec<usize> = (worker..parts.len()).step_by(threads).collect();
        for (index, result) in interleave(ops, &parts, &mine, &limits, &stop) {
            results
                .lock()
                .expect("no worker panicked")
                .push((index, result));
        }
    };
    if threads == 1 {
        work(0);
    } else {
        std::thread::scope(|scope| {
            for worker in 0..threads {
                scope.spawn(move || work(worker));
            }
        });
    }
    merge(results.into_inner().expect("no worker panicked"))
}

/// Search steps a partition gets in the first round; each round doubles it.
const ROUND_STEPS_FIRST: u64 = 1 << 14;

/// Checks the parts `mine` in rounds of doubling step budgets, so an easy violation in one part
/// is found before a hard part is finished; stops all workers at the first violation.
fn interleave<M: Model>(
    ops: &[Operation<M::Input, M::Output>],
    parts: &[Part<M>],
    mine: &[usize],
    limits: &Limits,
    stop: &AtomicBool,
) -> Vec<(usize, CheckResult)> {
    let part_ops: Vec<Vec<&Operation<M::Input, M::Output>>> = mine
        .iter()
        .map(|&p| parts[p].ops.iter().map(|&i| &ops[i]).collect())
        .collect();
    let mut open: Vec<(usize, PartSearch<'_, M>)> = mine
        .iter()
        .zip(&part_ops)
        .map(|(&p, local)| (p, PartSearch::new(&parts[p].model, local)))
        .collect();
    let mut done = Vec::new();
    let mut budget = ROUND_STEPS_FIRST;
    while !open.is_empty() && !stop.load(Ordering::Relaxed) {
        let mut still_open = Vec::with_capacity(open.len());
        for (p, mut search) in open {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match search.run(limits, stop, budget) {
                None => still_open.push((p, search)),
                Some(SearchResult::Stopped) => {}
                Some(result) => {
                    let local = &part_ops[mine.iter().position(|&q| q == p).expect("mine")];
                    let result = verdict(&parts[p], local, result);
                    if result.is_violation() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    done.push((p, result));
                }
            }
        }
        open = still_open;
        budget = budget.saturating_mul(2);
    }
    done
}

fn verdict<M: Model>(
    part: &Part<M>,
    part_ops: &[&Operation<M::Input, M::Output>],
    result: SearchResult,
) -> CheckResult {
    match result {
        SearchResult::Linearizable => CheckResult::Linearizable,
        SearchResult::Unknown(reason) => CheckResult::Unknown(reason),
        SearchResult::Stopped => unreachable!("a stopped search has no verdict"),
        SearchResult::Violation(partial) => {
            CheckResult::Violation(Box::new(explain(&part.model, part_ops, part, partial)))
        }
    }
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
