//! Proof that the register's simulator can fail: each deliberately wrong client is caught
//! within 500 seeds.

use keyspace_register::sim::{run_seed, SimOptions};
use keyspace_register::{Mutant, Variant};

const SEEDS_MAX: u64 = 500;

/// The first seed that catches `mutant`, and what it reported.
fn first_catch(mutant: Mutant, stores: usize, variant: Variant) -> Option<(u64, String)> {
    (0..SEEDS_MAX).find_map(|seed| {
        let mut options = SimOptions::new(seed, stores, variant);
        options.mutant = Some(mutant);
        let failure = run_seed(&options).failure?;
        Some((
            seed,
            format!("{}: {}", failure.kind.name(), failure.message),
        ))
    })
}

#[test]
fn every_mutant_is_caught_within_500_seeds() {
    let mut missed = Vec::new();
    for stores in [3, 5] {
        for mutant in Mutant::ALL {
            // Regular reads never write back, so that mutant is a no-op there.
            let variants: &[Variant] = match mutant {
                Mutant::ReadWithoutWriteBack => &[Variant::Atomic],
                _ => &[Variant::Atomic, Variant::Regular],
            };
            for &variant in variants {
                match first_catch(mutant, stores, variant) {
                    Some((seed, line)) => println!(
                        "{} ({stores} stores, {variant:?}): caught at seed {seed}: {line}",
                        mutant.name()
                    ),
                    None => missed.push(format!("{} ({stores}, {variant:?})", mutant.name())),
                }
            }
        }
    }
    assert!(missed.is_empty(), "mutants never caught: {missed:?}");
}
