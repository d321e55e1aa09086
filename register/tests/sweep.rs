//! Sweeps of the register's simulator: both variants over 3 and 5 stores pass every seed, and
//! a seed runs the same way twice.

use keyspace_register::sim::{run_seed, SimOptions};
use keyspace_register::Variant;

/// Seeds per sweep here; the README's sweeps run 2,000.
const SEEDS: u64 = 300;

fn sweep(stores: usize, variant: Variant) {
    let mut idle_stores = 0;
    for seed in 0..SEEDS {
        let report = run_seed(&SimOptions::new(seed, stores, variant));
        if let Some(failure) = report.failure {
            panic!(
                "seed {seed} failed ({}): {}\n  reproduce: keyspace-register-sim --seeds {seed}..{} --stores {stores} --variant {variant:?}",
                failure.kind.name(),
                failure.message,
                seed + 1
            );
        }
        assert!(report.stats.idle_copies.iter().all(|&c| c == 2));
        idle_stores += report.stats.idle_copies.len();
    }
    // Most seeds end with a last write on every live store; the check above is not vacuous.
    assert!(
        idle_stores as u64 > SEEDS * (stores as u64 / 2),
        "{idle_stores}"
    );
}

#[test]
fn atomic_register_over_3_stores_is_linearizable_live_and_compact() {
    sweep(3, Variant::Atomic);
}

#[test]
fn atomic_register_over_5_stores_is_linearizable_live_and_compact() {
    sweep(5, Variant::Atomic);
}

#[test]
fn regular_register_over_3_stores_is_regular_live_and_compact() {
    sweep(3, Variant::Regular);
}

#[test]
fn regular_register_over_5_stores_is_regular_live_and_compact() {
    sweep(5, Variant::Regular);
}

#[test]
fn a_seed_runs_the_same_way_twice() {
    for seed in 0..20 {
        let options = SimOptions::new(seed, 3, Variant::Atomic);
        let (a, b) = (run_seed(&options), run_seed(&options));
        assert_eq!(a.stats.trace_hash, b.stats.trace_hash, "seed {seed}");
        assert_eq!(a.stats.round_trips, b.stats.round_trips, "seed {seed}");
    }
}
