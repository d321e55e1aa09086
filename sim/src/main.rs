//! `keyspace-sim`: runs seeds of the deterministic simulator and reports failures.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use keyspace_core::Mutant;
use keyspace_sim::{run_seed, run_seed_checked, FailureKind, Profile, SeedReport, SimOptions};

const AFTER_HELP: &str = "\
Exit codes:
  0  every seed passed
  1  the simulator itself could not run (I/O error)
  2  usage error
  3  safety: two values for a slot, diverging logs, two lease holders, a failed replica
     assertion, or an acknowledged write lost
  4  linearizability: the client history has no linearization
  5  liveness: after healing a majority, 3 writes did not complete within 10 simulated seconds
  6  determinism: two runs of one seed produced different event traces
With several kinds in one sweep the code of the most serious wins (in the order above).";

/// Deterministic simulation of a keyspace cluster under faults.
#[derive(Parser, Debug)]
#[command(name = "keyspace-sim", version, after_help = AFTER_HELP)]
struct Cli {
    /// Run one seed and print its drawn fault options.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run a range of seeds, `A..B` (B excluded).
    #[arg(long, value_parser = parse_range)]
    seeds: Option<Range<u64>>,
    /// Replicas: 1, 3 or 5.
    #[arg(long, default_value_t = 3, value_parser = parse_nodes)]
    nodes: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Fault profile: none, net, clock, crash, disk or all.
    #[arg(long, default_value = "all")]
    faults: Profile,
    /// Simulated seconds of the fault phase.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Run every seed twice and compare the hashes of the whole event traces.
    #[arg(long)]
    check_determinism: bool,
    /// Write the history (JSON lines) of the seed, or of a sweep's first failing seed.
    #[arg(long, value_name = "FILE")]
    history: Option<std::path::PathBuf>,
    /// Print every event to stderr.
    #[arg(long)]
    trace: bool,
    /// Write each seed's trace hash, one `SEED HASH` line per seed, to FILE: two builds that
    /// should behave the same (a refactoring) must write the same file.
    #[arg(long, value_name = "FILE")]
    trace_hashes: Option<std::path::PathBuf>,
    /// Run a deliberately wrong core (builds with `--features mutants` only).
    #[arg(long, value_name = "NAME")]
    mutant: Option<String>,
    /// Print the names of the mutants, one per line, and exit.
    #[arg(long)]
    list_mutants: bool,
    /// Corrupt the storage of a majority, beyond the fault budget: the cluster must refuse
    /// rather than serve wrong data (the seed's failures are expected refusals, not bugs).
    #[arg(long)]
    storage_beyond_budget: bool,
    /// Let every client name its own session, even where the store forgets sessions: a retry
    /// after the store forgot may then apply twice, and the checker must catch it.
    #[arg(long)]
    client_chosen_sessions: bool,
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or("expected A..B, for example 0..1000")?;
    let a: u64 = a.parse().map_err(|e| format!("bad start `{a}`: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("bad end `{b}`: {e}"))?;
    if a >= b {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok(a..b)
}

fn parse_nodes(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(n @ (1 | 3 | 5)) => Ok(n),
        _ => Err(format!("`{s}`: the simulator runs 1, 3 or 5 replicas")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list_mutants {
        for mutant in Mutant::ALL {
            println!("{}", mutant.name());
        }
        return ExitCode::SUCCESS;
    }
    let mutant = match &cli.mutant {
        None => None,
        Some(name) => match parse_mutant(name) {
            Ok(m) => Some(m),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        },
    };
    let base = SimOptions {
        nodes: cli.nodes,
        clients: cli.clients,
        faults: cli.faults,
        duration_s: cli.duration,
        mutant,
        trace: cli.trace,
        storage_beyond_budget: cli.storage_beyond_budget,
        client_chosen_sessions: cli.client_chosen_sessions,
        ..SimOptions::new(0)
    };
    let code = match (cli.seed, cli.seeds.clone()) {
        (Some(seed), _) => run_one(&cli, SimOptions { seed, ..base }),
        (None, Some(range)) => run_sweep(&cli, base, range),
        (None, None) => run_one(&cli, base),
    };
    ExitCode::from(code as u8)
}

fn parse_mutant(name: &str) -> Result<Mutant, String> {
    let mutant = Mutant::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Mutant::ALL.iter().map(|m| m.name()).collect();
        format!("unknown mutant `{name}`; known: {}", names.join(", "))
    })?;
    if !Mutant::ENABLED {
        return Err(
            "this build has no mutants; run with `cargo run --release -p keyspace-sim --features mutants -- …`"
                .to_string(),
        );
    }
    Ok(mutant)
}

fn run(cli: &Cli, options: &SimOptions) -> SeedReport {
    if cli.check_determinism {
        run_seed_checked(options)
    } else {
        run_seed(options)
    }
}

fn write_history(cli: &Cli, report: &SeedReport) -> Result<(), i32> {
    let Some(path) = &cli.history else {
        return Ok(());
    };
    let written = File::create(path).and_then(|file| {
        let mut out = BufWriter::new(file);
        report.recorder.write_jsonl(&mut out)?;
        out.flush()
    });
    written.map_err(|error| {
        eprintln!(
            "error: cannot write the history to {}: {error}",
            path.display()
        );
        1
    })
}

/// The file `--trace-hashes` names, created, if it names one.
fn trace_hash_file(cli: &Cli) -> Result<Option<BufWriter<File>>, i32> {
    let Some(path) = &cli.trace_hashes else {
        return Ok(None);
    };
    match File::create(path) {
        Ok(file) => Ok(Some(BufWriter::new(file))),
        Err(error) => {
            eprintln!("error: cannot create {}: {error}", path.display());
            Err(1)
        }
    }
}

fn run_one(cli: &Cli, options: SimOptions) -> i32 {
    println!(
        "seed {}: {} replicas, {} clients, faults {}, {}s{}",
        options.seed,
        options.nodes,
        options.clients,
        options.faults,
        options.duration_s,
        options
            .mutant
            .map_or(String::new(), |m| format!(", mutant {}", m.name()))
    );
    let plan = keyspace_sim::FaultPlan::draw_for(&options);
    println!("{plan}");
    let started = Instant::now();
    let report = run(cli, &options);
    let wall = started.elapsed();
    let s = &report.stats;
    println!(
        "{} events, {:.1}s simulated in {:.3}s wall; ops {} ({} ok, {} failed, {} unknown), {} sessions opened; {} slots; {} crashes, {} partitions, {} pauses; disk: {} faults at rest, {} torn writes, {} damaged loads; membership changes {} asked, {} applied; trace {:016x}",
        s.events,
        s.sim_ns as f64 / 1e9,
        wall.as_secs_f64(),
        s.ops_invoked,
        s.ops_ok,
        s.ops_failed,
        s.ops_unknown,
        s.sessions_opened,
        s.slots,
        s.crashes,
        s.partitions,
        s.pauses,
        s.storage_faults,
        s.torn_writes,
        s.loads_damaged,
        s.member_changes_asked,
        s.member_changes_applied,
        report.trace_hash
    );
    if let Some(reason) = &report.undecided {
        println!("checker undecided: {reason}");
    }
    if let Err(code) = write_history(cli, &report) {
        return code;
    }
    match report.failure_line() {
        Some(line) => {
            println!("{line}");
            report.failure.as_ref().map_or(0, |f| f.kind.exit_code())
        }
        None => {
            println!("seed {}: ok", options.seed);
            0
        }
    }
}

/// What a sweep has seen so far.
#[derive(Default)]
struct Tally {
    /// The most serious failure kind.
    worst: Option<FailureKind>,
    /// Failing seeds by kind.
    failures: [u64; 4],
    undecided: u64,
    sim_ns: u64,
    /// Membership changes asked for and applied, over every seed.
    member_changes: (u64, u64),
}

impl Tally {
    /// Counts one seed's report, printing what it found above the progress bar; returns whether
    /// the seed failed.
    fn record(&mut self, report: &SeedReport, bar: &ProgressBar) -> bool {
        let seed = report.options.seed;
        self.sim_ns += report.stats.sim_ns;
        self.member_changes.0 += report.stats.member_changes_asked;
        self.member_changes.1 += report.stats.member_changes_applied;
        if let Some(reason) = &report.undecided {
            self.undecided += 1;
            bar.suspend(|| println!("seed {seed}: checker undecided: {reason}"));
        }
        let (Some(line), Some(failure)) = (report.failure_line(), &report.failure) else {
            return false;
        };
        bar.suspend(|| println!("{line}"));
        self.failures[failure.kind as usize] += 1;
        self.worst = Some(self.worst.map_or(failure.kind, |w| w.min(failure.kind)));
        bar.set_message(format!("{} failed", self.failures.iter().sum::<u64>()));
        true
    }

    /// The sweep's one summary line.
    fn summary(&self, range: &Range<u64>, wall_s: f64) -> String {
        let count = range.end - range.start;
        let failures = &self.failures;
        format!(
            "seeds {}..{}: {} run, {} failed (safety {}, linearizability {}, determinism {}, liveness {}), {} undecided by the checker; membership changes {} asked, {} applied; {:.0} seeds/min, {:.0}x simulated/wall",
            range.start,
            range.end,
            count,
            failures.iter().sum::<u64>(),
            failures[FailureKind::Safety as usize],
            failures[FailureKind::Linearizability as usize],
            failures[FailureKind::Determinism as usize],
            failures[FailureKind::Liveness as usize],
            self.undecided,
            self.member_changes.0,
            self.member_changes.1,
            count as f64 / wall_s * 60.0,
            self.sim_ns as f64 / 1e9 / wall_s
        )
    }
}

fn run_sweep(cli: &Cli, base: SimOptions, range: Range<u64>) -> i32 {
    let bar = ProgressBar::new(range.end - range.start);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta} {msg}")
            .expect("a valid template"),
    );
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut history_written = false;
    let mut hashes = match trace_hash_file(cli) {
        Ok(file) => file,
        Err(code) => return code,
    };
    for seed in range.clone() {
        let options = SimOptions {
            seed,
            ..base.clone()
        };
        let report = run(cli, &options);
        if let Some(out) = hashes.as_mut() {
            if let Err(error) = writeln!(out, "{seed} {:016x}", report.trace_hash) {
                eprintln!("error: cannot write the trace hashes: {error}");
                return 1;
            }
        }
        if tally.record(&report, &bar) && !history_written {
            history_written = true;
            if let Err(code) = write_history(cli, &report) {
                return code;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(Err(error)) = hashes.as_mut().map(|out| out.flush()) {
        eprintln!("error: cannot write the trace hashes: {error}");
        return 1;
    }
    println!("{}", tally.summary(&range, started.elapsed().as_secs_f64()));
    tally.worst.map_or(0, |kind| kind.exit_code())
}
