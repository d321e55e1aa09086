//! Every reference history in `checker/testdata/histories` gets the verdict its `expected.tsv`
//! gives.
//!
//! The folder holds histories recorded by other systems (Jepsen's etcd test, a key/value lab)
//! with verdicts independent checkers agree on. The test walks `expected.tsv`, so a file added
//! there is checked too; a missing folder is a failure, not a skip.

use keyspace_checker::formats::{self, Parsed};
use keyspace_checker::{check_kv, check_register, check_string_map, CheckOptions, CheckResult};
use std::path::PathBuf;
use std::time::Duration;

fn histories_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/histories")
}

fn check(parsed: &Parsed, options: &CheckOptions) -> CheckResult {
    match parsed {
        Parsed::Register(ops) => check_register(ops, options),
        Parsed::StringMap(ops) => check_string_map(ops, options),
        Parsed::Keyspace(history) => check_kv(history, options),
    }
}

#[test]
fn every_reference_history_gets_its_expected_verdict() {
    let dir = histories_dir();
    let listing = std::fs::read_to_string(dir.join("expected.tsv")).unwrap_or_else(|e| {
        panic!(
            "the reference histories must be at {} (expected.tsv: {e})",
            dir.display()
        )
    });
    let options = CheckOptions {
        timeout: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (number, line) in listing.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (path, expected) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("expected.tsv:{}: not <path>\\t<verdict>", number + 1));
        let want_linearizable = match expected.trim() {
            "linearizable" => true,
            "not" | "violation" => false,
            other => panic!("expected.tsv:{}: unknown verdict {other:?}", number + 1),
        };
        let parsed = formats::parse_file(&dir.join(path), None).unwrap_or_else(|e| panic!("{e}"));
        let result = check(&parsed, &options);
        let right = match &result {
            CheckResult::Linearizable => want_linearizable,
            CheckResult::Violation(_) => !want_linearizable,
            CheckResult::Unknown(_) => false,
        };
        if !right {
            wrong.push(format!(
                "{path}: expected {expected}, got {}",
                result.word()
            ));
        }
        checked += 1;
    }
    assert!(checked > 0, "expected.tsv lists no history");
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn reference_kv_histories_get_the_same_verdict_unpartitioned() {
    let dir = histories_dir().join("kv");
    let options = CheckOptions {
        partition: false,
        ..CheckOptions::default()
    };
    for (name, linearizable) in [
        ("c01-ok.txt", true),
        ("c01-bad.txt", false),
        ("c10-bad.txt", false),
    ] {
        let parsed = formats::parse_file(&dir.join(name), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            check(&parsed, &options).is_linearizable(),
            linearizable,
            "{name}"
        );
    }
}
