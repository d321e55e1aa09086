//! The multi-writer regularity check: histories that are regular but not linearizable pass it,
//! and each way a history can fail to be regular is caught.

use keyspace_checker::{
    check_register, check_regular, CheckOptions, CheckResult, Irregular, Operation, Outcome,
    RegisterInput, RegisterOutput,
};

type Op = Operation<RegisterInput, RegisterOutput>;

fn write(client: u64, value: i64, invoke_ns: u64, return_ns: Option<u64>) -> Op {
    Operation {
        client,
        invoke_ns,
        input: RegisterInput::Write(value),
        outcome: match return_ns {
            Some(at_ns) => Outcome::Returned {
                at_ns,
                output: RegisterOutput::Write,
            },
            None => Outcome::Unknown,
        },
    }
}

fn read(client: u64, value: Option<i64>, invoke_ns: u64, return_ns: u64) -> Op {
    Operation {
        client,
        invoke_ns,
        input: RegisterInput::Read,
        outcome: Outcome::Returned {
            at_ns: return_ns,
            output: RegisterOutput::Read(value),
        },
    }
}

fn linearizable(ops: &[Op]) -> bool {
    let options = CheckOptions {
        threads: 1,
        ..Default::default()
    };
    matches!(check_register(ops, &options), CheckResult::Linearizable)
}

#[test]
fn new_then_old_during_a_write_is_regular_but_not_linearizable() {
    let ops = [
        write(1, 1, 0, Some(10)),
        write(2, 2, 20, Some(100)),
        read(3, Some(2), 30, 40),
        read(3, Some(1), 50, 60),
    ];
    assert_eq!(check_regular(&ops), Ok(()));
    assert!(!linearizable(&ops));
}

#[test]
fn readers_disagreeing_on_the_order_of_concurrent_writes_is_regular_but_not_linearizable() {
    // Two concurrent writes; one reader sees 1 then 2, the other 2 then 1, all while both
    // writes are in progress.
    let ops = [
        write(1, 1, 0, Some(100)),
        write(2, 2, 0, Some(100)),
        read(3, Some(1), 10, 20),
        read(3, Some(2), 30, 40),
        read(4, Some(2), 10, 20),
        read(4, Some(1), 30, 40),
    ];
    assert_eq!(check_regular(&ops), Ok(()));
    assert!(!linearizable(&ops));
}

#[test]
fn a_value_of_a_crashed_write_may_be_read_any_time_after_its_invoke() {
    let ops = [
        write(1, 1, 0, Some(10)),
        write(2, 2, 20, None),
        read(3, Some(2), 30, 40),
        read(3, Some(1), 50, 60),
        read(3, Some(2), 70, 80),
    ];
    assert_eq!(check_regular(&ops), Ok(()));
}

#[test]
fn reading_an_overwritten_value_after_the_overwrite_returned_is_not_regular() {
    let ops = [
        write(1, 1, 0, Some(10)),
        write(1, 2, 20, Some(30)),
        read(2, Some(1), 40, 50),
    ];
    let verdict = check_regular(&ops);
    assert!(
        matches!(verdict, Err(Irregular::Cycle { .. })),
        "{verdict:?}"
    );
}

#[test]
fn reads_that_order_sequential_writes_backwards_are_not_regular() {
    // Writes 1 and 2 are concurrent; a read after both returned sees 1, so 2 < 1; another read
    // after both returned sees 2, so 1 < 2.
    let ops = [
        write(1, 1, 0, Some(10)),
        write(2, 2, 0, Some(10)),
        read(3, Some(1), 20, 30),
        read(4, Some(2), 20, 30),
    ];
    let verdict = check_regular(&ops);
    let Err(Irregular::Cycle { cycle, .. }) = verdict else {
        panic!("expected a cycle, got {verdict:?}");
    };
    assert_eq!(cycle.len(), 2);
}

#[test]
fn nil_after_a_returned_write_is_not_regular() {
    let ops = [write(1, 1, 0, Some(10)), read(2, None, 20, 30)];
    assert_eq!(
        check_regular(&ops),
        Err(Irregular::NilAfterWrite { read: 1, write: 0 })
    );
    // Nil while the first write is still in progress is.
    let ops = [write(1, 1, 0, Some(50)), read(2, None, 20, 30)];
    assert_eq!(check_regular(&ops), Ok(()));
}

#[test]
fn a_value_never_written_or_written_later_is_not_regular() {
    let ops = [write(1, 1, 0, Some(10)), read(2, Some(7), 20, 30)];
    assert_eq!(
        check_regular(&ops),
        Err(Irregular::UnknownValue { read: 1, value: 7 })
    );
    let ops = [read(2, Some(1), 0, 10), write(1, 1, 20, Some(30))];
    assert_eq!(
        check_regular(&ops),
        Err(Irregular::FromTheFuture { read: 0, write: 1 })
    );
}

#[test]
fn a_cycle_through_real_time_and_reads_is_found() {
    // 1 returns before 2 starts (1 < 2); 2 returns before 3 starts (2 < 3); a read after 3
    // returned reads 1, so 3 < 1 as well.
    let ops = [
        write(1, 1, 0, Some(10)),
        write(1, 2, 20, Some(30)),
        write(1, 3, 40, Some(50)),
        read(2, Some(1), 60, 70),
    ];
    let verdict = check_regular(&ops);
    assert!(
        matches!(verdict, Err(Irregular::Cycle { .. })),
        "{verdict:?}"
    );
    assert!(verdict
        .unwrap_err()
        .to_string()
        .contains("no order of the writes fits"));
}

#[test]
fn linearizable_histories_are_regular() {
    // A sequential run with overlapping intervals stretched around each step.
    let mut ops = Vec::new();
    let mut current = None;
    for step in 0..200u64 {
        let t = step * 10;
        if step % 3 == 0 {
            let value = step as i64;
            ops.push(write(step % 4, value, t.saturating_sub(5), Some(t + 5)));
            current = Some(value);
        } else {
            ops.push(read(step % 4, current, t.saturating_sub(5), t + 5));
        }
    }
    assert!(linearizable(&ops));
    assert_eq!(check_regular(&ops), Ok(()));
}

#[test]
fn compare_and_set_and_repeated_values_are_refused_rather_than_judged() {
    let cas = Operation {
        client: 1,
        invoke_ns: 0,
        input: RegisterInput::Cas { from: 1, to: 2 },
        outcome: Outcome::Unknown,
    };
    assert!(matches!(
        check_regular(&[cas]),
        Err(Irregular::Unsupported(_))
    ));
    let twice = [write(1, 1, 0, Some(1)), write(2, 1, 2, Some(3))];
    assert!(matches!(
        check_regular(&twice),
        Err(Irregular::Unsupported(_))
    ));
}
