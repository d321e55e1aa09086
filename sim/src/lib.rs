//! keyspace-sim: a deterministic discrete-event simulator that drives the unmodified
//! `keyspace-core` replicas over a simulated network, disks and clocks, injects faults, records
//! the clients' history and checks it.
//!
//! What it promises:
//! - Determinism: one `u64` seed fixes everything (fault rates, network, disks, clocks,
//!   workload, each replica's randomness), through independent ChaCha8 streams. A run is
//!   single-threaded and its whole event trace hashes to [`SeedReport::trace_hash`].
//! - Two phases: faults for `duration_s` simulated seconds, then the network heals, a majority
//!   comes back, and [`LIVENESS_WRITES`] writes must complete within [`LIVENESS_BOUND_NS`].
//! - Checks after every event: at most one value applied per log slot, applied logs share a
//!   prefix (hash chain and state hash), at most one lease holder at any instant of true time,
//!   no replica assertion fails; at the end: no acknowledged write lost, and the history is
//!   linearizable (`keyspace-checker`).

mod checks;
mod clock;
mod guard;
pub mod plan;
mod storage;
mod trace;
mod workload;
mod workload_expiry;
mod workload_scripts;
mod workload_tx;
mod world;

use std::fmt;

use keyspace_checker::{check_kv, CheckOptions, CheckResult, LogClock, Recorder};
use keyspace_core::Mutant;

pub use plan::{FaultPlan, Profile};
pub use world::{LIVENESS_BOUND_NS, LIVENESS_WRITES};

/// Everything that defines one run besides the seed's own draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOptions {
    pub seed: u64,
    /// 1, 3 or 5 replicas.
    pub nodes: usize,
    pub clients: usize,
    pub faults: Profile,
    /// Length of the fault phase, in simulated seconds.
    pub duration_s: u64,
    /// A deliberately wrong core (needs the `mutants` feature).
    pub mutant: Option<Mutant>,
    /// Print every event to stderr.
    pub trace: bool,
    /// Corrupt the storage of a majority, beyond the fault budget (for tests: the cluster must
    /// refuse rather than serve wrong data).
    pub storage_beyond_budget: bool,
    /// Every client names its own session, even where the store forgets sessions (for tests:
    /// a retry after the store forgot may then apply twice, which is why node connections,
    /// and here the clients by default, open their sessions through the log).
    pub client_chosen_sessions: bool,
}

impl SimOptions {
    pub fn new(seed: u64) -> Self {
        SimOptions {
            seed,
            nodes: 3,
            clients: 4,
            faults: Profile::All,
            duration_s: 30,
            mutant: None,
            trace: false,
            storage_beyond_budget: false,
            client_chosen_sessions: false,
        }
    }

    /// The command that runs exactly this seed again.
    pub fn reproduce_command(&self) -> String {
        let features = if self.mutant.is_some() {
            " --features mutants"
        } else {
            ""
        };
        let mut command = format!(
            "cargo run --release -p keyspace-sim{features} -- --seed {} --nodes {} --clients {} --faults {} --duration {}",
            self.seed, self.nodes, self.clients, self.faults, self.duration_s
        );
        if let Some(mutant) = self.mutant {
            command.push_str(&format!(" --mutant {}", mutant.name()));
        }
        if self.storage_beyond_budget {
            command.push_str(" --storage-beyond-budget");
        }
        if self.client_chosen_sessions {
            command.push_str(" --client-chosen-sessions");
        }
        command
    }
}

/// The kinds of failure, each with its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    Safety,
    Linearizability,
    Determinism,
    Liveness,
}

impl FailureKind {
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Safety => "safety",
            FailureKind::Linearizability => "linearizability",
            FailureKind::Liveness => "liveness",
            FailureKind::Determinism => "determinism",
        }
    }

    /// The process exit code for a run whose most serious failure is of this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Safety => 3,
            FailureKind::Linearizability => 4,
            FailureKind::Liveness => 5,
            FailureKind::Determinism => 6,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    /// Simulated time the run covered.
    pub sim_ns: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub ops_invoked: u64,
    pub ops_ok: u64,
    pub ops_failed: u64,
    pub ops_unknown: u64,
    /// Sessions clients opened through the log.
    pub sessions_opened: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub pauses: u64,
    /// Log slots applied by some replica.
    pub slots: u64,
    /// Time from the end of the faults to the last liveness write.
    pub liveness_ns: Option<u64>,
    /// Faults at rest injected (bit flips, misdirected writes, read errors).
    pub storage_faults: u64,
    /// Crashes that tore the write in flight at a sector boundary.
    pub torn_writes: u64,
    /// Restarts whose load found damage (a torn tail is not damage).
    pub loads_damaged: u64,
    /// Replicas up and still recovering damaged storage when the run ended.
    pub recovering_at_end: u64,
    /// Membership changes the simulator asked for, and those applied.
    pub member_changes_asked: u64,
    pub member_changes_applied: u64,
}

/// The outcome of one seed.
pub struct SeedReport {
    pub options: SimOptions,
    pub plan: FaultPlan,
    pub failure: Option<Failure>,
    pub trace_hash: u64,
    pub stats: Stats,
    /// The checker could not decide (time or memory limit): the reason. Not a failure.
    pub undecided: Option<String>,
    pub recorder: Recorder,
}

impl SeedReport {
    /// The one line a failure prints: seed, kind, what, and how to reproduce it.
    pub fn failure_line(&self) -> Option<String> {
        self.failure.as_ref().map(|failure| {
            format!(
                "seed {}: {} — reproduce: {}",
                self.options.seed,
                failure,
                self.options.reproduce_command()
            )
        })
    }
}

/// How long the checker may spend on one history before it answers "undecided".
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs one seed: both phases, every check.
pub fn run_seed(options: &SimOptions) -> SeedReport {
    assert!(options.nodes >= 1, "at least one replica");
    let mut world = world::World::new(options);
    let result = world.run();
    let mut failure = result.err();
    let mut undecided = None;
    let check_history = failure
        .as_ref()
        .is_none_or(|f| f.kind == FailureKind::Liveness);
    if check_history {
        let check = CheckOptions {
            timeout: Some(CHECK_TIMEOUT),
            threads: 1,
            log_clock: Some(LogClock {
                epoch_ms: plan::WALL_EPOCH_MS as i64,
                error_max_ms: world.plan.clock_error_max_ms as i64,
            }),
            ..CheckOptions::default()
        };
        match check_kv(&world.recorder.history(), &check) {
            CheckResult::Linearizable => {}
            CheckResult::Violation(violation) => {
                failure = Some(Failure {
                    kind: FailureKind::Linearizability,
                    message: format!("history is not linearizable: {violation}"),
                });
            }
            CheckResult::Unknown(reason) => undecided = Some(reason),
        }
    }
    let trace_hash = world.trace_hash();
    SeedReport {
        options: options.clone(),
        plan: world.plan.clone(),
        failure,
        trace_hash,
        stats: world.stats.clone(),
        undecided,
        recorder: std::mem::take(&mut world.recorder),
    }
}

/// Runs a seed twice; a differing trace hash is a determinism failure.
pub fn run_seed_checked(options: &SimOptions) -> SeedReport {
    let mut first = run_seed(options);
    let second = run_seed(options);
    if first.trace_hash != second.trace_hash && first.failure.is_none() {
        first.failure = Some(Failure {
            kind: FailureKind::Determinism,
            message: format!(
                "two runs of the seed differ: trace hash {:016x} then {:016x} ({} then {} events)",
                first.trace_hash, second.trace_hash, first.stats.events, second.stats.events
            ),
        });
    }
    first
}
