//! `keyspace-register-sim`: sweeps seeds of the register's simulator and reports failures.

use std::ops::Range;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use keyspace_register::sim::{run_seed, SeedReport, SimOptions, OPS_DEFAULT};
use keyspace_register::Variant;

const AFTER_HELP: &str = "\
Each seed draws its clients (2 to 8, each replaced by a new one when it crashes), its delays
(a long tail, sometimes one store slow throughout), client crashes after any request of a write,
and store crashes (up to t, and t + 1 in one seed in eight). It checks the history
(linearizable for atomic, regular for regular), that every operation of a correct client
finishes in its bound of round trips while at most t stores are down, and that a last write in a
calm network leaves exactly two copies on every live store.

Exit codes: 0 every seed passed; 1 a seed failed (each failure prints the command that
reproduces it); 2 usage error.";

/// Deterministic simulation of the shared register over n key-value stores.
#[derive(Parser, Debug)]
#[command(name = "keyspace-register-sim", version, after_help = AFTER_HELP)]
struct Cli {
    /// Seeds to run, `A..B` (B excluded).
    #[arg(long, value_parser = parse_range, default_value = "0..100")]
    seeds: Range<u64>,
    /// Stores: 1 to 15 (t = (n - 1) / 2 may fail).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=15))]
    stores: u8,
    /// `atomic` (linearizable; reads write back) or `regular` (reads store nothing).
    #[arg(long, default_value = "atomic")]
    variant: Variant,
    /// Operations per seed.
    #[arg(long, default_value_t = OPS_DEFAULT)]
    ops: usize,
    /// Run a deliberately wrong client (builds with `--features mutants` only).
    #[arg(long, value_name = "NAME")]
    mutant: Option<String>,
    /// Print the names of the mutants, one per line, and exit.
    #[arg(long)]
    list_mutants: bool,
    /// Print each seed's figures.
    #[arg(long)]
    verbose: bool,
    /// Print every event of every seed to stderr.
    #[arg(long)]
    trace: bool,
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or("expected A..B, for example 0..2000")?;
    let a: u64 = a.parse().map_err(|e| format!("bad start `{a}`: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("bad end `{b}`: {e}"))?;
    if a >= b {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok(a..b)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list_mutants {
        for name in mutant_names() {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    let mut base = SimOptions::new(0, usize::from(cli.stores), cli.variant);
    base.ops = cli.ops;
    base.trace = cli.trace;
    if let Err(message) = set_mutant(&mut base, cli.mutant.as_deref()) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    sweep(&cli, &base)
}

#[cfg(feature = "mutants")]
fn mutant_names() -> Vec<&'static str> {
    keyspace_register::Mutant::ALL
        .iter()
        .map(|m| m.name())
        .collect()
}

#[cfg(not(feature = "mutants"))]
fn mutant_names() -> Vec<&'static str> {
    Vec::new()
}

#[cfg(feature = "mutants")]
fn set_mutant(options: &mut SimOptions, name: Option<&str>) -> Result<(), String> {
    let Some(name) = name else { return Ok(()) };
    options.mutant = Some(keyspace_register::Mutant::from_name(name).ok_or_else(|| {
        format!(
            "unknown mutant `{name}`; known: {}",
            mutant_names().join(", ")
        )
    })?);
    Ok(())
}

#[cfg(not(feature = "mutants"))]
fn set_mutant(_: &mut SimOptions, name: Option<&str>) -> Result<(), String> {
    match name {
        None => Ok(()),
        Some(_) => Err("this build has no mutants; run with `cargo run --release -p keyspace-register --features mutants --bin keyspace-register-sim -- …`".to_string()),
    }
}

fn reproduce(cli: &Cli, seed: u64) -> String {
    let variant = match cli.variant {
        Variant::Atomic => "atomic",
        Variant::Regular => "regular",
    };
    let mut line = format!(
        "keyspace-register-sim --seeds {seed}..{} --stores {} --variant {variant}",
        seed + 1,
        cli.stores
    );
    if cli.ops != OPS_DEFAULT {
        line += &format!(" --ops {}", cli.ops);
    }
    if let Some(mutant) = &cli.mutant {
        line += &format!(" --mutant {mutant}");
    }
    line
}

/// Totals over a sweep.
#[derive(Default)]
struct Totals {
    failed: u64,
    ops: usize,
    client_crashes: usize,
    beyond_t: u64,
    round_trips: std::collections::BTreeMap<(&'static str, u32), usize>,
    peak_copies_by_writers: std::collections::BTreeMap<usize, usize>,
    idle_copies: std::collections::BTreeMap<usize, usize>,
}

impl Totals {
    fn add(&mut self, report: &SeedReport) {
        let stats = &report.stats;
        self.ops += stats.ops_returned;
        self.client_crashes += stats.client_crashes;
        self.beyond_t += u64::from(stats.beyond_t);
        for (key, count) in &stats.round_trips {
            *self.round_trips.entry(*key).or_default() += count;
        }
        for (writers, copies) in &stats.peak_copies_by_writers {
            let peak = self.peak_copies_by_writers.entry(*writers).or_default();
            *peak = (*peak).max(*copies);
        }
        for copies in &stats.idle_copies {
            *self.idle_copies.entry(*copies).or_default() += 1;
        }
    }
}

fn sweep(cli: &Cli, base: &SimOptions) -> ExitCode {
    let started = Instant::now();
    let count = cli.seeds.end - cli.seeds.start;
    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {elapsed} (eta {eta}) {msg}")
            .expect("valid template"),
    );
    let mut totals = Totals::default();
    for seed in cli.seeds.clone() {
        let report = run_seed(&SimOptions {
            seed,
            ..base.clone()
        });
        totals.add(&report);
        if cli.verbose {
            bar.suspend(|| println!("seed {seed}: {:?}", report.stats));
        }
        if let Some(failure) = &report.failure {
            totals.failed += 1;
            bar.suspend(|| {
                println!(
                    "seed {seed} FAILED {}: {}\n  reproduce: {}",
                    failure.kind.name(),
                    failure.message,
                    reproduce(cli, seed)
                )
            });
        }
        bar.set_message(format!("{} failed", totals.failed));
        bar.inc(1);
    }
    bar.finish_and_clear();
    summarize(cli, &totals, count, started.elapsed());
    if totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn summarize(cli: &Cli, totals: &Totals, seeds: u64, elapsed: std::time::Duration) {
    let minutes = elapsed.as_secs_f64() / 60.0;
    println!(
        "{seeds} seeds, {} stores, {:?}: {} failed; {} operations returned, {} client crashes, {} seeds with t + 1 stores down; {:.1} s ({:.0} seeds/min)",
        cli.stores,
        cli.variant,
        totals.failed,
        totals.ops,
        totals.client_crashes,
        totals.beyond_t,
        elapsed.as_secs_f64(),
        seeds as f64 / minutes.max(1e-9),
    );
    let rt: Vec<String> = totals
        .round_trips
        .iter()
        .map(|((kind, n), count)| format!("{kind} {n}: {count}"))
        .collect();
    println!("round trips per operation: {}", rt.join(", "));
    let peaks: Vec<String> = totals
        .peak_copies_by_writers
        .iter()
        .map(|(writers, copies)| format!("{writers} writers: {copies}"))
        .collect();
    println!(
        "peak copies on one store, by writes in progress: {}",
        peaks.join(", ")
    );
    let idle: Vec<String> = totals
        .idle_copies
        .iter()
        .map(|(copies, stores)| format!("{copies} copies: {stores} stores"))
        .collect();
    println!(
        "copies per live store once writes stopped: {}",
        idle.join(", ")
    );
}
