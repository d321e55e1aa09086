//! Proof that the simulator can fail: each deliberately wrong core is caught by a sweep with
//! every fault enabled within 500 seeds. Needs `--features mutants`.
#![cfg(feature = "mutants")]

use keyspace_core::Mutant;
use keyspace_sim::{run_seed, Profile, SimOptions};

/// Seeds a mutant must be caught within.
const SEEDS_MAX: u64 = 500;

/// The first seed that catches `mutant`, and what it reported.
fn first_catch(mutant: Mutant) -> Option<(u64, String)> {
    (0..SEEDS_MAX).find_map(|seed| {
        let options = SimOptions {
            faults: Profile::All,
            mutant: Some(mutant),
            ..SimOptions::new(seed)
        };
        run_seed(&options).failure_line().map(|line| (seed, line))
    })
}

#[test]
fn every_mutant_is_caught_within_500_seeds() {
    let mut missed = Vec::new();
    for mutant in Mutant::ALL {
        match first_catch(mutant) {
            Some((seed, line)) => println!("{}: caught at seed {seed}: {line}", mutant.name()),
            None => missed.push(mutant.name()),
        }
    }
    assert!(missed.is_empty(), "mutants never caught: {missed:?}");
}

#[test]
fn the_correct_core_passes_the_seeds_that_catch_mutants() {
    for seed in 0..20 {
        let report = run_seed(&SimOptions::new(seed));
        assert_eq!(report.failure, None, "{:?}", report.failure_line());
    }
}
