//! Times script runs: `cargo run --release -p keyspace-script --example eval_cost [RUNS]`.

use keyspace_script::{eval, Invocation, Resp};

fn main() {
    let runs: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let body = b"return redis.call('SET', KEYS[1], ARGV[1])";
    let (keys, args) = (vec![b"k".to_vec()], vec![b"v".to_vec()]);
    let mut call = |_: &[Vec<u8>]| Resp::Simple("OK".into());
    let started = std::time::Instant::now();
    for seed in 0..runs {
        let invocation = Invocation {
            keys: &keys,
            args: &args,
            seed,
        };
        assert_eq!(
            eval(body, &invocation, &mut call),
            Resp::Simple("OK".into())
        );
    }
    let per_run_us = started.elapsed().as_secs_f64() * 1e6 / runs as f64;
    println!("{runs} runs, {per_run_us:.1} us per run");
}
