//! The `keyspace` command line a newcomer meets first.

use std::process::Command;

fn keyspace(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_keyspace"))
        .args(args)
        .output()
        .expect("run keyspace");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn help_names_every_subcommand_and_the_quick_start() {
    let (ok, text) = keyspace(&["--help"]);
    assert!(ok, "{text}");
    for word in ["node", "cluster", "bench", "redis-cli -p 6379"] {
        assert!(text.contains(word), "help lacks {word}:\n{text}");
    }
    let (ok, text) = keyspace(&["node", "--help"]);
    assert!(
        ok && text.contains("--peers") && text.contains("--data"),
        "{text}"
    );
}

#[test]
fn a_bad_peer_list_is_refused_with_a_reason() {
    let (ok, text) = keyspace(&[
        "node",
        "--id",
        "1",
        "--peers",
        "1=nonsense",
        "--data",
        "/nonexistent",
    ]);
    assert!(!ok);
    assert!(text.contains("--peers"), "{text}");
}
