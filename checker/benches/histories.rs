//! Benchmark: the checker over the shared reference histories, read and parsed from disk and
//! checked on one thread, as Porcupine's figures are taken.
//!
//! `cargo bench -p keyspace-checker --bench histories [-- RUNS [DIR ...]]`
//!
//! Prints min / median / max milliseconds over RUNS runs (default 20) for: all etcd logs
//! together, etcd_002 alone, and each kv file partitioned per key and as one unpartitioned map.
//! Extra DIRs (laid out like the shared folder: `jepsen-etcd/`, `kv/`) are measured the same way.

use keyspace_checker::formats::{self, Parsed};
use keyspace_checker::{check_kv, check_register, check_string_map, CheckOptions, CheckResult};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn check_file(path: &Path, options: &CheckOptions) -> CheckResult {
    let parsed = formats::parse_file(path, None).unwrap_or_else(|e| panic!("{e}"));
    match &parsed {
        Parsed::Register(ops) => check_register(ops, options),
        Parsed::StringMap(ops) => check_string_map(ops, options),
        Parsed::Keyspace(history) => check_kv(history, options),
    }
}

/// Min, median and max of `runs` timings of `f`, in milliseconds.
fn measure(runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    f(); // warm-up: page cache, allocator
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[0], ms[ms.len() / 2], ms[ms.len() - 1])
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.to_string_lossy().ends_with(suffix) && p.metadata().is_ok_and(|m| m.len() > 0)
    });
    files.sort();
    files
}

fn row(name: &str, (min, median, max): (f64, f64, f64)) {
    println!("{name:<44} {min:>10.3} {median:>10.3} {max:>10.3}");
}

fn bench_dir(dir: &Path, runs: usize) {
    let serial = CheckOptions {
        threads: 1,
        ..CheckOptions::default()
    };
    let whole = CheckOptions {
        partition: false,
        ..serial.clone()
    };
    let label = dir.display().to_string();
    let etcd = files(&dir.join("jepsen-etcd"), ".log");
    if !etcd.is_empty() {
        row(
            &format!("{} etcd logs, total", etcd.len()),
            measure(runs, || {
                for path in &etcd {
                    check_file(path, &serial);
                }
            }),
        );
        if let Some(path) = etcd.iter().find(|p| p.ends_with("etcd_002.log")) {
            row(
                "etcd_002",
                measure(runs, || {
                    check_file(path, &serial);
                }),
            );
        }
        let mut each: Vec<f64> = etcd
            .iter()
            .map(|path| {
                measure(3, || {
                    check_file(path, &serial);
                })
                .0
            })
            .collect();
        each.sort_by(f64::total_cmp);
        println!(
            "{:<44} {:>10.3} {:>10.3} {:>10.3}",
            "one etcd log (min of 3; min/median/max over logs)",
            each[0],
            each[each.len() / 2],
            each[each.len() - 1]
        );
    }
    for path in files(&dir.join("kv"), ".txt") {
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        row(
            &format!("kv {name}"),
            measure(runs, || {
                check_file(&path, &serial);
            }),
        );
        // Unpartitioned, the larger files take a search far beyond any benchmark's patience.
        if std::fs::read_to_string(&path).is_ok_and(|text| text.lines().count() <= 1000) {
            row(
                &format!("kv {name}, one unpartitioned map"),
                measure(runs.min(5), || {
                    check_file(&path, &whole);
                }),
            );
        }
    }
    println!("({label})");
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs: usize = args.first().and_then(|r| r.parse().ok()).unwrap_or(20);
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/histories");
    let mut dirs = vec![shared];
    dirs.extend(args.iter().skip(1).map(PathBuf::from));
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "milliseconds, one thread", "min", "median", "max"
    );
    for dir in &dirs {
        bench_dir(dir, runs);
    }
}
