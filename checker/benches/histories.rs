//! Benchmark: the checker over the reference histories in `checker/testdata/histories`, read and parsed from disk and
//! checked on one thread, as Porcupine's figures are taken.
//!
//! `cargo bench -p keyspace-checker --bench histories [-- RUNS [DIR ...]]`
//!
//! Prints min / median / max milliseconds over RUNS runs (default 20) for: all etcd logs
//! together, etcd_002 alone, and each kv file partitioned per key and as one unpartitioned map.
//! Extra DIRs (laid out like that folder: `jepsen-etcd/`, `kv/`) are measured the same way.

use keyspace_checker::formats::{self, Parsed};
use keyspace_checker::models::keyspace::{apply, StoreState};
use keyspace_checker::{
    check_kv, check_register, check_string_map, CheckOptions, CheckResult, History, Operation,
    Outcome,
};
use keyspace_core::Command;
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

/// A simulator-like store history: `clients` clients each running operations back to back,
/// each taking effect at a random instant inside its interval, on `keys` keys; one write in
/// twenty loses its outcome (and half of those never take effect). Deterministic in `seed`.
fn synthetic_store_history(seed: u64, ops: usize, clients: u64, keys: u64) -> History {
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut free_at = vec![0u64; clients as usize];
    // (linearization point, operation, return time, lost, applied)
    let mut drawn = Vec::with_capacity(ops);
    for _ in 0..ops {
        let client = next(clients);
        let invoke = free_at[client as usize] + next(50);
        let ret = invoke + 1 + next(200);
        free_at[client as usize] = ret;
        let key = vec![b'a' + next(keys) as u8];
        let value = next(4).to_string().into_bytes();
        let input = match next(10) {
            0..=2 => Command::Set { key, value },
            3 => Command::Add { key, delta: 1 },
            4 => Command::TestAndSet {
                key,
                expected: value,
                new: b"1".to_vec(),
            },
            5 => Command::Delete { key },
            _ => Command::Get { key },
        };
        let lost = input.is_write() && next(20) == 0;
        let applied = !lost || next(2) == 0;
        let point = invoke + next(ret - invoke + 1);
        let op = Operation {
            client,
            invoke_ns: invoke,
            input,
            outcome: Outcome::Unknown,
        };
        drawn.push((point, op, ret, lost, applied));
    }
    drawn.sort_by_key(|d| d.0);
    let mut state = StoreState::new();
    let mut history = History::default();
    for (_, mut op, ret, lost, applied) in drawn {
        let (changed, reply) = apply(&state, &op.input);
        if let (true, Some(changed)) = (applied, changed) {
            state = changed;
        }
        if !lost {
            op.outcome = Outcome::Returned {
                at_ns: ret,
                output: reply,
            };
        }
        history.ops.push(op);
    }
    history
}

/// The history with the middle completed GET answering another value of the workload's (one
/// that was written, so only the search can tell it is wrong).
fn with_a_wrong_read(history: &History) -> History {
    let mut history = history.clone();
    let reads: Vec<usize> = (0..history.len())
        .filter(|&i| {
            matches!(history.ops[i].input, Command::Get { .. }) && history.ops[i].output().is_some()
        })
        .collect();
    if let Outcome::Returned { output, .. } = &mut history.ops[reads[reads.len() / 2]].outcome {
        let other = match output {
            keyspace_core::Reply::Value(Some(v)) if v.as_slice() == b"1" => b"2".to_vec(),
            _ => b"1".to_vec(),
        };
        *output = keyspace_core::Reply::Value(Some(other));
    }
    history
}

/// Writes `history` in the JSON-lines format, for `keyspace-check`.
fn write_jsonl(history: &History, path: &Path) {
    let mut rec = keyspace_checker::Recorder::new();
    for op in &history.ops {
        let id = rec.invoke(op.client, op.invoke_ns, op.input.clone());
        if let Outcome::Returned { at_ns, output } = &op.outcome {
            rec.ok(id, *at_ns, output.clone());
        }
    }
    let mut file = std::fs::File::create(path).expect("create the history file");
    rec.write_jsonl(&mut file).expect("write the history file");
}

fn bench_synthetic(runs: usize) {
    let serial = CheckOptions {
        threads: 1,
        ..CheckOptions::default()
    };
    for (ops, clients, keys) in [(500, 4, 8), (2_000, 8, 8), (2_000, 8, 1)] {
        let histories: Vec<History> = (1..=10)
            .map(|seed| synthetic_store_history(seed, ops, clients, keys))
            .collect();
        for history in &histories {
            assert!(
                check_kv(history, &serial).is_linearizable(),
                "a sequential run is linearizable"
            );
        }
        let name = format!("store: 10 histories of {ops} ops, {clients} clients, {keys} keys");
        row(
            &name,
            measure(runs, || {
                for history in &histories {
                    check_kv(history, &serial);
                }
            }),
        );
        let broken: Vec<History> = histories.iter().map(with_a_wrong_read).collect();
        if let Some(dir) = std::env::var_os("KEYSPACE_BENCH_WRITE") {
            for (i, history) in broken.iter().enumerate() {
                let path =
                    PathBuf::from(&dir).join(format!("store-{ops}-{clients}-{keys}-{i}.jsonl"));
                write_jsonl(history, &path);
            }
        }
        if std::env::var_os("KEYSPACE_BENCH_WRITE").is_some() {
            continue;
        }
        let found = broken
            .iter()
            .filter(|h| check_kv(h, &serial).is_violation())
            .count();
        row(
            &format!("  the same, one read changed ({found} of 10 violations)"),
            measure(runs, || {
                for history in &broken {
                    check_kv(history, &serial);
                }
            }),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs: usize = args.first().and_then(|r| r.parse().ok()).unwrap_or(20);
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/histories");
    let mut dirs = vec![reference];
    dirs.extend(args.iter().skip(1).map(PathBuf::from));
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "milliseconds, one thread", "min", "median", "max"
    );
    for dir in &dirs {
        bench_dir(dir, runs);
    }
    bench_synthetic(runs);
}
