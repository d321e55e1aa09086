//! `keyspace member`: the `MEMBER` commands from the command line, against any replica.

use keyspace_node::peer;
use keyspace_node::resp_client::{Client, Value};

#[derive(clap::Args)]
pub struct MemberArgs {
    #[command(subcommand)]
    action: MemberAction,
    /// Any replica's client address: HOST:PORT or PORT (a follower forwards changes to the
    /// master).
    #[arg(long, global = true, default_value = "127.0.0.1:6379")]
    addr: String,
    /// Password the replica wants (AUTH).
    #[arg(long, global = true, env = "KEYSPACE_PASSWORD", hide_env_values = true)]
    requirepass: Option<String>,
}

#[derive(clap::Subcommand, Debug, PartialEq, Eq)]
enum MemberAction {
    /// List the members: id, addresses, kind, whether connected, how far behind (on the master).
    List,
    /// Add a replica that does not vote yet (a learner, or with --witness a witness).
    Add {
        /// A new id: ids of removed replicas are never used again.
        id: u16,
        /// Where the other replicas reach it: IP:PORT.
        peer_addr: String,
        /// Where clients reach it: IP:PORT.
        client_addr: String,
        #[arg(long)]
        witness: bool,
    },
    /// Make a caught-up learner or witness a voter.
    Promote { id: u16 },
    /// Remove a member; the removed replica stops (exit status 3).
    Remove { id: u16 },
}

/// Longest a change refused as "in progress" is asked again: the master refuses the next change
/// until the lease is granted under the configuration the last one made (a moment), or while
/// another operator's change is under way.
const IN_PROGRESS_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(10);
const IN_PROGRESS_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether `answer` refuses a change because another is in progress.
fn in_progress(answer: &Value) -> bool {
    matches!(answer, Value::Error(e) if e.contains("a membership change is in progress"))
}

/// The `MEMBER` command `action` sends.
fn command_args(action: &MemberAction) -> Vec<Vec<u8>> {
    let words: Vec<String> = match action {
        MemberAction::List => vec!["LIST".into()],
        MemberAction::Add {
            id,
            peer_addr,
            client_addr,
            witness,
        } => {
            let kind = if *witness { "WITNESS" } else { "LEARNER" };
            let add = ["ADD", &id.to_string(), peer_addr, client_addr, kind];
            add.map(String::from).to_vec()
        }
        MemberAction::Promote { id } => vec!["PROMOTE".into(), id.to_string()],
        MemberAction::Remove { id } => vec!["REMOVE".into(), id.to_string()],
    };
    let mut args = vec![b"MEMBER".to_vec()];
    args.extend(words.into_iter().map(String::into_bytes));
    args
}

/// What to print for the answer, or the error to report.
fn describe(answer: Value) -> Result<String, String> {
    match answer {
        Value::Array(rows) => {
            let lines: Vec<String> = rows
                .into_iter()
                .map(|row| match row {
                    Value::Bulk(line) => Ok(String::from_utf8_lossy(&line).into_owned()),
                    other => Err(format!("unexpected MEMBER LIST row {other:?}")),
                })
                .collect::<Result<_, _>>()?;
            Ok(lines.join("\n"))
        }
        Value::Int(epoch) => Ok(format!("done: the configuration is at epoch {epoch}")),
        Value::Error(error) => Err(error),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

pub fn run(args: MemberArgs) -> Result<(), String> {
    let addr = peer::parse_addr(&args.addr).map_err(|e| format!("--addr: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let answer: std::io::Result<Value> = runtime.block_on(async {
        let mut client = Client::connect(addr).await?;
        if let Some(password) = &args.requirepass {
            if let Value::Error(e) = client.call(&[b"AUTH", password.as_bytes()]).await? {
                return Ok(Value::Error(e));
            }
        }
        let command = command_args(&args.action);
        let command: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        let began = std::time::Instant::now();
        loop {
            let answer = client.call(&command).await?;
            if !in_progress(&answer) || began.elapsed() >= IN_PROGRESS_RETRY_MAX {
                return Ok(answer);
            }
            tokio::time::sleep(IN_PROGRESS_RETRY_PAUSE).await;
        }
    });
    let answer = answer.map_err(|e| format!("cannot talk to {addr}: {e}"))?;
    println!("{}", describe(answer)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(action: MemberAction) -> Vec<String> {
        let args = command_args(&action);
        args.into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    }

    #[test]
    fn each_member_subcommand_sends_its_member_command() {
        assert_eq!(words(MemberAction::List), ["MEMBER", "LIST"]);
        let add = MemberAction::Add {
            id: 4,
            peer_addr: "127.0.0.1:7004".into(),
            client_addr: "127.0.0.1:6304".into(),
            witness: false,
        };
        assert_eq!(
            words(add),
            [
                "MEMBER",
                "ADD",
                "4",
                "127.0.0.1:7004",
                "127.0.0.1:6304",
                "LEARNER"
            ]
        );
        let witness = MemberAction::Add {
            id: 5,
            peer_addr: "a".into(),
            client_addr: "b".into(),
            witness: true,
        };
        assert_eq!(words(witness)[5], "WITNESS");
        assert_eq!(
            words(MemberAction::Promote { id: 4 }),
            ["MEMBER", "PROMOTE", "4"]
        );
        assert_eq!(
            words(MemberAction::Remove { id: 2 }),
            ["MEMBER", "REMOVE", "2"]
        );
    }

    #[test]
    fn a_refusal_is_an_error_and_a_change_reports_its_epoch() {
        assert_eq!(
            describe(Value::Error("ERR membership change refused: x".into())),
            Err("ERR membership change refused: x".into())
        );
        assert_eq!(
            describe(Value::Int(3)),
            Ok("done: the configuration is at epoch 3".into())
        );
        let rows = Value::Array(vec![
            Value::Bulk(b"id=1".to_vec()),
            Value::Bulk(b"id=2".to_vec()),
        ]);
        assert_eq!(describe(rows), Ok("id=1\nid=2".into()));
        let busy = "ERR membership change refused: a membership change is in progress; retry once it is done";
        assert!(in_progress(&Value::Error(busy.into())));
        assert!(!in_progress(&Value::Error("ERR membership change refused: replica 9 is not a member; MEMBER LIST shows the members".into())));
    }
}
