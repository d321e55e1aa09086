//! MULTI, EXEC, DISCARD, WATCH and UNWATCH, as Redis 7.0 answers them.
//!
//! Between MULTI and EXEC a connection queues its commands ([`Queue`]) and answers `QUEUED`;
//! an unknown command or a wrong number of arguments answers its error and dooms the
//! transaction (EXEC then answers `EXECABORT`). Other errors are the command's own and show in
//! EXEC's array, as in Redis. EXEC sends the queued store commands as ONE
//! `Command::Transaction`, with the keys WATCH saw and the slot it saw them at: one log entry,
//! applied in one step on every replica, or not at all (a nil array) if a watched key changed.

use keyspace_core::{Command, Reply, Watched};

use crate::action::{Action, Queue, Queued, Shape};
use crate::commands;
use crate::connection::Connection;
use crate::resp::Writer;

/// Most commands one connection may queue between MULTI and EXEC.
pub const QUEUED_MAX: usize = keyspace_core::TRANSACTION_COMMANDS_MAX;

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// Whether `action` is one of this module's.
pub fn is_transaction_action(action: &Action) -> bool {
    matches!(
        action,
        Action::Multi | Action::Exec | Action::Discard | Action::Watch(_) | Action::Unwatch
    )
}

/// Inside MULTI: runs what Redis runs at once (EXEC, DISCARD, MULTI, WATCH, QUIT) and queues
/// the rest. `action` is what `args` parsed to.
pub async fn execute_in_multi(
    conn: &mut Connection<'_>,
    args: &[Vec<u8>],
    action: Action,
    out: &mut Vec<u8>,
) {
    let queue = conn.multi.as_mut().expect("called inside MULTI");
    let runs_now = matches!(
        action,
        Action::Exec | Action::Discard | Action::Multi | Action::Watch(_) | Action::Quit
    );
    if runs_now {
        return match is_transaction_action(&action) {
            true => Box::pin(run(action, conn, out)).await,
            false => commands::run(action, conn, out).await,
        };
    }
    let mut w = Writer {
        out,
        resp3: conn.resp3,
    };
    if let Action::Error(text) = &action {
        if is_queueing_error(args, conn.authenticated) {
            queue.failed = true;
            return w.error(text);
        }
    }
    let item = match action {
        Action::Store { commands, shape } => Queued::Store {
            commands: commands.into_iter().map(|c| c.in_db(queue.db)).collect(),
            shape,
        },
        Action::RandomKey => Queued::Store {
            commands: vec![Command::RandomKey {
                seed: crate::random::<u64>(),
            }
            .in_db(queue.db)],
            shape: Shape::Plain,
        },
        Action::Select(db) => {
            queue.db = db;
            Queued::Select(db)
        }
        other => Queued::Local(other),
    };
    if let Queued::Store { commands, .. } = &item {
        queue.commands += commands.len();
    }
    if queue.commands > QUEUED_MAX {
        queue.failed = true;
        return w.error(&format!(
            "ERR a transaction holds at most {QUEUED_MAX} commands; EXEC will be refused"
        ));
    }
    let name = keyspace_core::redis::spec(&keyspace_core::redis::text(&args[0])).map(|s| s.name);
    queue.stale_denied |= name.is_some_and(crate::cmd_admin::denied_when_stale);
    queue.items.push(item);
    w.simple("QUEUED");
}

/// Refuses a command for `reason` (such as OOM) before it runs, as Redis does: inside MULTI the
/// transaction is doomed; EXEC itself discards it and answers EXECABORT with the reason.
pub fn refuse(conn: &mut Connection<'_>, action: &Action, reason: &str, out: &mut Vec<u8>) {
    let mut w = Writer {
        out,
        resp3: conn.resp3,
    };
    match (action, conn.multi.as_mut()) {
        (Action::Exec, Some(_)) => {
            conn.multi = None;
            conn.watched.clear();
            w.error(&format!(
                "EXECABORT Transaction discarded because of: {reason}"
            ))
        }
        (_, Some(queue)) => {
            queue.failed = true;
            w.error(reason)
        }
        (_, None) => w.error(reason),
    }
}

/// Whether a queued transaction holds a command that writes.
pub fn queue_writes(queue: &Queue) -> bool {
    queue.items.iter().any(|item| match item {
        Queued::Store { commands, .. } => commands.iter().any(Command::is_write),
        _ => false,
    })
}

/// Whether parsing refused the command for what Redis refuses while queueing: an unknown
/// command, a wrong number of arguments, or no authentication.
fn is_queueing_error(args: &[Vec<u8>], authenticated: bool) -> bool {
    keyspace_core::redis::lookup(args).is_err() || !authenticated
}

/// Carries out a transaction command outside MULTI, or EXEC, DISCARD, MULTI and WATCH inside.
pub async fn run(action: Action, conn: &mut Connection<'_>, out: &mut Vec<u8>) {
    let in_multi = conn.multi.is_some();
    let resp3 = conn.resp3;
    let mut w = Writer { out, resp3 };
    match action {
        Action::Multi if in_multi => w.error("ERR MULTI calls can not be nested"),
        Action::Multi => {
            conn.multi = Some(Queue {
                items: Vec::new(),
                db: conn.db,
                failed: false,
                stale_denied: false,
                commands: 0,
            });
            w.simple("OK")
        }
        Action::Watch(_) if in_multi => w.error("ERR WATCH inside MULTI is not allowed"),
        Action::Watch(keys) => watch(conn, keys, out).await,
        Action::Unwatch => {
            conn.watched.clear();
            w.simple("OK")
        }
        Action::Discard => match conn.multi.take() {
            None => w.error("ERR DISCARD without MULTI"),
            Some(_) => {
                conn.watched.clear();
                w.simple("OK")
            }
        },
        Action::Exec => exec(conn, out).await,
        other => unreachable!("not a transaction command: {other:?}"),
    }
}

/// WATCH: reads the keys' state through the master and remembers the slot it was read at.
async fn watch(conn: &mut Connection<'_>, keys: Vec<Vec<u8>>, out: &mut Vec<u8>) {
    let db = conn.db;
    let reply = conn.submit(Command::Watch { keys: keys.clone() }).await;
    let mut w = Writer {
        out,
        resp3: conn.resp3,
    };
    match reply {
        Ok(Reply::Watched { slot, values }) => {
            assert_eq!(values.len(), keys.len(), "one value per watched key");
            for (key, value) in keys.into_iter().zip(values) {
                conn.watched.push(Watched {
                    db,
                    key,
                    slot,
                    existed: value.is_some(),
                });
            }
            w.simple("OK")
        }
        Ok(other) => commands::write_reply(&other, &mut w),
        Err(failure) => commands::write_failure(&failure, &mut w),
    }
}

/// EXEC: the queued store commands as one transaction, then each queued command's reply.
async fn exec(conn: &mut Connection<'_>, out: &mut Vec<u8>) {
    let Some(queue) = conn.multi.take() else {
        return Writer {
            out,
            resp3: conn.resp3,
        }
        .error("ERR EXEC without MULTI");
    };
    let watched = std::mem::take(&mut conn.watched);
    if queue.failed {
        return Writer {
            out,
            resp3: conn.resp3,
        }
        .error(EXECABORT);
    }
    let commands: Vec<Command> = queue
        .items
        .iter()
        .flat_map(|item| match item {
            Queued::Store { commands, .. } => commands.clone(),
            _ => Vec::new(),
        })
        .collect();
    let reply = match commands.is_empty() && watched.is_empty() {
        true => Ok(Reply::Transaction(Some(Vec::new()))),
        false => {
            conn.submit(Command::Transaction { commands, watched })
                .await
        }
    };
    match reply {
        Ok(Reply::Transaction(Some(replies))) => write_exec(conn, queue.items, &replies, out).await,
        Ok(other) => commands::write_reply(
            &other,
            &mut Writer {
                out,
                resp3: conn.resp3,
            },
        ),
        Err(failure) => commands::write_failure(
            &failure,
            &mut Writer {
                out,
                resp3: conn.resp3,
            },
        ),
    }
}

/// EXEC's array: each queued command's reply, in order.
async fn write_exec(
    conn: &mut Connection<'_>,
    items: Vec<Queued>,
    replies: &[Reply],
    out: &mut Vec<u8>,
) {
    Writer {
        out: &mut *out,
        resp3: conn.resp3,
    }
    .array(items.len());
    let mut next = 0;
    for item in items {
        match item {
            Queued::Store { commands, shape } => {
                let mine = &replies[next..next + commands.len()];
                next += commands.len();
                let mut w = Writer {
                    out: &mut *out,
                    resp3: conn.resp3,
                };
                commands::write_replies(mine, shape, &mut w);
            }
            Queued::Select(db) => {
                conn.db = db;
                Writer {
                    out: &mut *out,
                    resp3: conn.resp3,
                }
                .simple("OK");
            }
            Queued::Local(action) => Box::pin(commands::run(action, conn, out)).await,
        }
    }
    assert_eq!(next, replies.len(), "one reply per queued store command");
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use crate::connection::tests::Harness;
    use crate::connection::Connection;

    /// Sends one command on `conn` and returns the RESP it answered.
    async fn send(conn: &mut Connection<'_>, parts: &[&str]) -> String {
        let args = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
        let mut out = Vec::new();
        conn.execute(args, &mut out).await;
        String::from_utf8(out).expect("RESP of ASCII")
    }

    #[test]
    fn queued_commands_run_at_exec_as_one_write_with_each_reply_shaped() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            assert_eq!(send(conn, &["MULTI"]).await, "+OK\r\n");
            for command in [
                &["SET", "a", "1"][..],
                &["INCR", "a"],
                &["EXISTS", "a", "b"],
                &["PING"],
                &["GET", "a"],
            ] {
                assert_eq!(send(conn, command).await, "+QUEUED\r\n");
            }
            let writes_before = harness.store.lock().unwrap().writes;
            let reply = send(conn, &["EXEC"]).await;
            assert_eq!(reply, "*5\r\n+OK\r\n:2\r\n:1\r\n+PONG\r\n$1\r\n2\r\n");
            assert_eq!(harness.store.lock().unwrap().writes, writes_before + 1);
            assert_eq!(send(conn, &["EXEC"]).await, "-ERR EXEC without MULTI\r\n");
        });
    }

    #[test]
    fn errors_while_queueing_abort_exec_and_runtime_errors_do_not() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            send(conn, &["MULTI"]).await;
            send(conn, &["SET", "a", "1"]).await;
            let unknown = send(conn, &["NOSUCH", "x"]).await;
            assert!(unknown.starts_with("-ERR unknown command"), "{unknown}");
            let nested = send(conn, &["MULTI"]).await;
            assert_eq!(nested, "-ERR MULTI calls can not be nested\r\n");
            let watch = send(conn, &["WATCH", "a"]).await;
            assert_eq!(watch, "-ERR WATCH inside MULTI is not allowed\r\n");
            let exec = send(conn, &["EXEC"]).await;
            assert_eq!(exec, format!("-{}\r\n", super::EXECABORT));
            assert_eq!(
                send(conn, &["GET", "a"]).await,
                "$-1\r\n",
                "nothing applied"
            );

            send(conn, &["MULTI"]).await;
            send(conn, &["SET", "s", "text"]).await;
            assert_eq!(send(conn, &["INCRBY", "s", "x"]).await, "+QUEUED\r\n");
            send(conn, &["INCR", "s"]).await;
            send(conn, &["SET", "t", "2"]).await;
            let exec = send(conn, &["EXEC"]).await;
            let not_integer = "-ERR value is not an integer or out of range\r\n";
            assert_eq!(
                exec,
                format!("*4\r\n+OK\r\n{not_integer}{not_integer}+OK\r\n")
            );
        });
    }

    #[test]
    fn exec_is_nil_when_a_watched_key_changed_and_unwatch_or_discard_forget_watches() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            let other = &mut Connection::new(&harness.context);
            send(conn, &["SET", "x", "30"]).await;
            assert_eq!(send(conn, &["WATCH", "x"]).await, "+OK\r\n");
            send(other, &["SET", "x", "40"]).await;
            send(conn, &["MULTI"]).await;
            send(conn, &["SET", "y", "1"]).await;
            assert_eq!(send(conn, &["EXEC"]).await, "*-1\r\n");
            assert_eq!(send(conn, &["GET", "y"]).await, "$-1\r\n");

            send(conn, &["WATCH", "x"]).await;
            send(other, &["SET", "x", "50"]).await;
            assert_eq!(send(conn, &["UNWATCH"]).await, "+OK\r\n");
            send(conn, &["MULTI"]).await;
            send(conn, &["GET", "x"]).await;
            assert_eq!(send(conn, &["EXEC"]).await, "*1\r\n$2\r\n50\r\n");

            send(conn, &["WATCH", "x"]).await;
            send(other, &["SET", "x", "60"]).await;
            send(conn, &["MULTI"]).await;
            assert_eq!(send(conn, &["DISCARD"]).await, "+OK\r\n");
            send(conn, &["MULTI"]).await;
            assert_eq!(send(conn, &["EXEC"]).await, "*0\r\n");
        });
    }

    #[test]
    fn select_inside_multi_moves_the_commands_after_it_and_the_connection_at_exec() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            send(conn, &["MULTI"]).await;
            send(conn, &["SET", "k", "zero"]).await;
            send(conn, &["SELECT", "2"]).await;
            send(conn, &["SET", "k", "two"]).await;
            assert_eq!(conn.db, 0, "SELECT runs at EXEC");
            assert_eq!(send(conn, &["EXEC"]).await, "*3\r\n+OK\r\n+OK\r\n+OK\r\n");
            assert_eq!(conn.db, 2);
            assert_eq!(send(conn, &["GET", "k"]).await, "$3\r\ntwo\r\n");
            send(conn, &["SELECT", "0"]).await;
            assert_eq!(send(conn, &["GET", "k"]).await, "$4\r\nzero\r\n");
        });
    }

    fn set_maxmemory(conn: &Connection<'_>, value: &str) {
        let pairs: [(&[u8], &[u8]); 1] = [(b"maxmemory", value.as_bytes())];
        conn.context.config.set(&pairs).expect("a valid maxmemory");
    }

    #[test]
    fn over_maxmemory_a_queued_write_dooms_the_transaction_and_reads_still_run() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            send(conn, &["SET", "x", "value"]).await;
            set_maxmemory(conn, "1");
            send(conn, &["MULTI"]).await;
            assert_eq!(send(conn, &["GET", "x"]).await, "+QUEUED\r\n");
            let refused = send(conn, &["SET", "x", "1"]).await;
            assert_eq!(
                refused,
                format!(
                    "-{}\r\n",
                    "OOM command not allowed when used memory > 'maxmemory'."
                )
            );
            assert_eq!(
                send(conn, &["EXEC"]).await,
                format!("-{}\r\n", super::EXECABORT)
            );

            send(conn, &["MULTI"]).await;
            send(conn, &["GET", "x"]).await;
            send(conn, &["PING"]).await;
            assert_eq!(
                send(conn, &["EXEC"]).await,
                "*2\r\n$5\r\nvalue\r\n+PONG\r\n"
            );
        });
    }

    #[test]
    fn exec_of_queued_writes_once_over_maxmemory_is_discarded_with_the_reason() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            send(conn, &["MULTI"]).await;
            send(conn, &["SET", "x", "1"]).await;
            set_maxmemory(conn, "1");
            let exec = send(conn, &["EXEC"]).await;
            assert!(
                exec.starts_with("-EXECABORT Transaction discarded because of: OOM"),
                "{exec}"
            );
            assert_eq!(send(conn, &["EXEC"]).await, "-ERR EXEC without MULTI\r\n");
            set_maxmemory(conn, "0");
            assert_eq!(send(conn, &["SET", "x", "1"]).await, "+OK\r\n");
        });
    }

    #[test]
    fn config_set_inside_multi_runs_at_exec_with_its_own_reply() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            send(conn, &["MULTI"]).await;
            send(conn, &["SET", "foo", "bar"]).await;
            assert_eq!(send(conn, &["CONFIG", "SET", "maxmemory", "bla"]).await, "+QUEUED\r\n");
            let exec = send(conn, &["EXEC"]).await;
            assert!(exec.starts_with("*2\r\n+OK\r\n-ERR CONFIG SET failed (possibly related to argument 'maxmemory')"), "{exec}");
            assert_eq!(conn.context.config.maxmemory_bytes(), 0);
        });
    }

    #[test]
    fn client_reply_off_and_skip_silence_replies_until_on() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            assert_eq!(send(conn, &["CLIENT", "REPLY", "OFF"]).await, "");
            assert_eq!(send(conn, &["PING"]).await, "");
            assert_eq!(send(conn, &["CLIENT", "REPLY", "ON"]).await, "+OK\r\n");
            assert_eq!(send(conn, &["CLIENT", "REPLY", "SKIP"]).await, "");
            assert_eq!(send(conn, &["PING", "a"]).await, "");
            assert_eq!(send(conn, &["PING", "b"]).await, "$1\r\nb\r\n");
            send(conn, &["CLIENT", "REPLY", "SKIP"]).await;
            assert_eq!(send(conn, &["CLIENT", "REPLY", "ON"]).await, "+OK\r\n");
            assert_eq!(send(conn, &["PING"]).await, "+PONG\r\n");
        });
    }
}
