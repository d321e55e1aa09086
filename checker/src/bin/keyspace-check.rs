//! `keyspace-check`: checks history files for linearizability.
//!
//! Exit status: 0 when every file is linearizable, 1 when any is a violation, otherwise 2 (a file
//! was unknown or could not be read). A violation outranks an unknown, as in Jepsen.

use clap::{Parser, ValueEnum};
use keyspace_checker::formats::{self, Format, Parsed};
use keyspace_checker::html::{self, FileView};
use keyspace_checker::{
    check_kv, check_register, check_string_map, CasRegister, CheckOptions, CheckResult,
    KeyspaceModel, LogClock, StringMap,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "keyspace-check",
    version,
    about = "Checks histories for linearizability."
)]
struct Args {
    /// History files: Jepsen etcd logs, EDN key/value logs or JSON-lines histories.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print exactly one line per file: <path> TAB <linearizable|violation|unknown> TAB <milliseconds>.
    #[arg(long)]
    tsv: bool,
    /// The model (and so the format); by default detected from each file's content.
    #[arg(long, value_enum, default_value_t = ModelArg::Auto)]
    model: ModelArg,
    /// Check the history as one whole instead of independent parts per key.
    #[arg(long)]
    no_partition: bool,
    /// For a violation, also print the longest linearizable prefix found, one operation a line.
    #[arg(long)]
    explain: bool,
    /// Write one self-contained HTML page that draws the histories and their verdicts.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Give up on a file (verdict unknown) after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Give up on a file (verdict unknown) when its search needs more memory than this.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    memory_mib: usize,
    /// Threads; 0 means one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Judge keys with deadlines: the store's time (Unix ms) at the history's time 0. Without
    /// it, the parts of a history that hold an expiry command are left out. The simulator's
    /// histories start at 1800000000000.
    #[arg(long, value_name = "UNIX_MS", requires = "clock_error_ms")]
    clock_epoch_ms: Option<i64>,
    /// With --clock-epoch-ms: the bound E on every replica's wall clock error, in ms (the
    /// simulator prints its plan's as clock_error_max_ms).
    #[arg(long, value_name = "MS", requires = "clock_epoch_ms")]
    clock_error_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelArg {
    /// Detect from the file's content.
    Auto,
    /// A compare-and-set register (Jepsen etcd logs).
    CasRegister,
    /// A string map with get, put and append (EDN key/value logs).
    StringMap,
    /// The store's own commands (JSON-lines histories).
    Keyspace,
}

/// What became of one file.
struct Report {
    result: Result<(CheckResult, Option<FileView>), String>,
    elapsed: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // Many files: one thread per file, each check single-threaded; one file: all threads on it.
    let per_file_threads = if args.files.len() > 1 { 1 } else { threads };
    let options = CheckOptions {
        timeout: args.timeout.map(Duration::from_secs_f64),
        memory_max_bytes: args.memory_mib << 20,
        threads: per_file_threads,
        partition: !args.no_partition,
        log_clock: args
            .clock_epoch_ms
            .zip(args.clock_error_ms)
            .map(|(epoch_ms, error_max_ms)| LogClock {
                epoch_ms,
                error_max_ms,
            }),
    };
    let reports = check_all(&args, &options, threads.min(args.files.len()));
    let mut stdout = std::io::stdout().lock();
    let mut views = Vec::new();
    let (mut violation, mut undecided) = (false, false);
    for (path, report) in args.files.iter().zip(reports) {
        print_report(&mut stdout, &args, path, &report);
        match &report.result {
            Ok((CheckResult::Linearizable, _)) => {}
            Ok((CheckResult::Violation(_), _)) => violation = true,
            Ok((CheckResult::Unknown(_), _)) | Err(_) => undecided = true,
        }
        if let Ok((_, Some(view))) = report.result {
            views.push(view);
        }
    }
    if let Some(page) = &args.html {
        if let Err(e) = std::fs::write(page, html::render(&views)) {
            eprintln!("keyspace-check: cannot write {}: {e}", page.display());
            return ExitCode::from(2);
        }
    }
    if violation {
        ExitCode::from(1)
    } else if undecided {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn check_all(args: &Args, options: &CheckOptions, threads: usize) -> Vec<Report> {
    let next = AtomicUsize::new(0);
    let reports: Mutex<Vec<Option<Report>>> =
        Mutex::new((0..args.files.len()).map(|_| None).collect());
    let work = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(path) = args.files.get(index) else {
            return;
        };
        let started = Instant::now();
        let result = check_file(path, args, options);
        let report = Report {
            result,
            elapsed: started.elapsed(),
        };
        reports.lock().expect("no worker panicked")[index] = Some(report);
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(work);
        }
    });
    reports
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|r| r.expect("every file checked"))
        .collect()
}

fn check_file(
    path: &Path,
    args: &Args,
    options: &CheckOptions,
) -> Result<(CheckResult, Option<FileView>), String> {
    let format = match args.model {
        ModelArg::Auto => None,
        ModelArg::CasRegister => Some(Format::JepsenEtcd),
        ModelArg::StringMap => Some(Format::EdnKv),
        ModelArg::Keyspace => Some(Format::Jsonl),
    };
    let parsed = formats::parse_file(path, format).map_err(|e| e.to_string())?;
    let want_view = args.html.is_some();
    let title = path.display().to_string();
    let (result, ops) = match &parsed {
        Parsed::Register(ops) => {
            let result = check_register(ops, options);
            (result, want_view.then(|| html::views(&CasRegister, ops)))
        }
        Parsed::StringMap(ops) => {
            let result = check_string_map(ops, options);
            (
                result,
                want_view.then(|| html::views(&StringMap::for_ops(ops), ops)),
            )
        }
        Parsed::Keyspace(history) => {
            let result = check_kv(history, options);
            (
                result,
                want_view.then(|| html::views(&KeyspaceModel, &history.ops)),
            )
        }
    };
    let view = ops.map(|ops| FileView {
        title,
        ops,
        result: result.clone(),
    });
    Ok((result, view))
}

fn print_report(out: &mut impl Write, args: &Args, path: &Path, report: &Report) {
    let ms = report.elapsed.as_secs_f64() * 1e3;
    let path = path.display();
    if let Err(error) = &report.result {
        eprintln!("keyspace-check: {error}");
    }
    let line = if args.tsv {
        let word = report
            .result
            .as_ref()
            .map_or("unknown", |(result, _)| result.word());
        format!("{path}\t{word}\t{ms:.3}")
    } else {
        match &report.result {
            Ok((CheckResult::Linearizable, _)) => format!("{path}: linearizable ({ms:.1} ms)"),
            Ok((CheckResult::Violation(v), _)) => format!("{path}: VIOLATION: {v} ({ms:.1} ms)"),
            Ok((CheckResult::Unknown(reason), _)) => {
                format!("{path}: unknown: {reason} ({ms:.1} ms)")
            }
            Err(_) => format!("{path}: error (see above)"),
        }
    };
    let _ = writeln!(out, "{line}");
    if let (false, true, Ok((CheckResult::Violation(v), _))) =
        (args.tsv, args.explain, &report.result)
    {
        for (i, step) in v.linearized.iter().enumerate() {
            let _ = writeln!(
                out,
                "    {:>4}. op {:<5} {:<40} state {}",
                i + 1,
                step.op,
                step.text,
                step.state_after
            );
        }
        if let Some(op) = v.blocked {
            let _ = writeln!(
                out,
                "       ✗ op {op:<5} {} cannot be placed here",
                v.blocked_text
            );
        }
    }
}
