//! Seed sweeps: every fault profile at 3 and 5 replicas passes every check, and runs are
//! deterministic. (The full acceptance sweeps are `--seeds 0..2000`; these keep CI short.)

use keyspace_sim::{run_seed, run_seed_checked, FailureKind, Profile, SimOptions};

fn sweep(profile: Profile, nodes: usize, seeds: std::ops::Range<u64>) {
    let mut failures = Vec::new();
    for seed in seeds {
        let options = SimOptions {
            nodes,
            faults: profile,
            ..SimOptions::new(seed)
        };
        let report = run_seed(&options);
        if let Some(line) = report.failure_line() {
            failures.push(line);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn three_replicas_pass_every_check_under_each_fault_profile() {
    for profile in Profile::ALL {
        sweep(profile, 3, 0..200);
    }
}

#[test]
fn five_replicas_pass_every_check_under_each_fault_profile() {
    for profile in Profile::ALL {
        sweep(profile, 5, 1_000..1_060);
    }
}

#[test]
fn one_replica_passes_every_check_with_all_faults() {
    sweep(Profile::All, 1, 0..50);
}

#[test]
fn a_seed_replays_the_same_event_trace() {
    for seed in 0..40 {
        let options = SimOptions::new(seed);
        let report = run_seed_checked(&options);
        assert_eq!(report.failure, None, "{:?}", report.failure_line());
    }
}

#[test]
fn different_seeds_draw_different_runs() {
    let a = run_seed(&SimOptions::new(1));
    let b = run_seed(&SimOptions::new(2));
    assert_ne!(a.trace_hash, b.trace_hash);
}

/// Outside the fault budget (a majority's storage corrupted at rest) the cluster may stop
/// making progress, but it must never serve wrong data: no safety or linearizability failure,
/// and a run that stops does so with replicas refusing to vote while they recover.
#[test]
fn a_corrupted_majority_refuses_rather_than_serves_wrong_data() {
    let mut stopped = 0;
    for seed in 0..60 {
        let options = SimOptions {
            faults: Profile::Disk,
            storage_beyond_budget: true,
            ..SimOptions::new(seed)
        };
        let report = run_seed(&options);
        match &report.failure {
            None => {}
            Some(failure) if failure.kind == FailureKind::Liveness => {
                assert!(
                    report.stats.recovering_at_end > 0,
                    "seed {seed} stopped without a replica recovering storage: {failure}"
                );
                if stopped == 0 {
                    let line = report.failure_line().unwrap_or_default();
                    assert_reproduces(&line, FailureKind::Liveness);
                }
                stopped += 1;
            }
            Some(_) => panic!("{}", report.failure_line().unwrap_or_default()),
        }
    }
    assert!(stopped > 0, "no seed drove the cluster beyond its budget");
}

/// Where the store forgets sessions (a seed's drawn limits), the clients open theirs through
/// the log and open new ones after `StaleRequest`: every check passes, and sessions are forgotten
/// and reopened for real.
#[test]
fn clients_reopen_the_sessions_a_forgetful_store_drops_and_every_check_passes() {
    let (mut forgetful, mut reopened) = (0, 0);
    for seed in 0..150 {
        if !forgets_sessions(seed) {
            continue;
        }
        let options = SimOptions::new(seed);
        forgetful += 1;
        let report = run_seed(&options);
        assert_eq!(report.failure, None, "{:?}", report.failure_line());
        let clients = options.clients as u64 + 1;
        reopened += report.stats.sessions_opened.saturating_sub(clients);
    }
    assert!(forgetful >= 50, "only {forgetful} seeds forget sessions");
    assert!(
        reopened >= 100,
        "only {reopened} sessions were opened again"
    );
}

/// The reason sessions are opened through the log: with client-chosen ids, a retry that
/// reaches the store after it forgot the session starts the session again and applies a
/// second time, and the checker sees it.
#[test]
fn client_chosen_sessions_that_the_store_forgets_let_a_retry_apply_twice() {
    for seed in (0..300).filter(|seed| forgets_sessions(*seed)) {
        let options = SimOptions {
            client_chosen_sessions: true,
            ..SimOptions::new(seed)
        };
        let report = run_seed(&options);
        match &report.failure {
            None => {}
            Some(failure) if failure.kind == FailureKind::Linearizability => {
                let line = report.failure_line().unwrap_or_default();
                assert_reproduces(&line, FailureKind::Linearizability);
                return;
            }
            Some(_) => panic!("{}", report.failure_line().unwrap_or_default()),
        }
    }
    panic!("no seed applied a retried write twice");
}

/// Whether the seed's drawn session limits make the store forget sessions.
fn forgets_sessions(seed: u64) -> bool {
    keyspace_sim::FaultPlan::draw_for(&SimOptions::new(seed)).forgets_sessions()
}

/// Runs the `keyspace-sim` arguments of a failure line's reproduce command and checks that
/// they fail again, with the same kind's exit code.
fn assert_reproduces(line: &str, kind: FailureKind) {
    let (_, command) = line.split_once("reproduce: ").expect("a reproduce command");
    let (_, args) = command.split_once(" -- ").expect("arguments after --");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_keyspace-sim"))
        .args(args.split_whitespace())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("keyspace-sim runs");
    assert_eq!(
        status.code(),
        Some(kind.exit_code()),
        "`{command}` did not reproduce {line}"
    );
}
