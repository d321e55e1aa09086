//! Client connections: the Redis protocol in, core requests out. Each connection is served
//! by one task that parses commands ([`commands`]) and sends them through its
//! [`Connection`] (sessions, retries: see [`crate::connection`]).
//!
//! Pipelined writes: consecutive plain `SET key value`s that arrive in one read are stored as
//! one atomic command (the one MSET uses) and each gets its own `+OK`: one trip through the log
//! instead of one per SET. Stored at one point, in order, they are still a valid order of the
//! client's writes, and a command other than a plain SET waits for them first.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use keyspace_core::command::{KEY_MAX_BYTES, VALUE_MAX_BYTES};
use keyspace_core::scripting::ScriptCommand;
use keyspace_core::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::clients::ClientView;
use crate::commands::{self, ConnectionFlags, ServerCommand};
pub use crate::connection::ClientContext;
use crate::connection::{Connection, ReplyMode};
use crate::resp::{self, Writer};

/// Bytes of unanswered replies after which a connection writes them out mid-batch.
const OUT_FLUSH_BYTES: usize = 64 * 1024;
/// Most SETs of one pipelined run stored as one command.
const SET_RUN_PAIRS_MAX: usize = 512;
/// Most bytes of keys and values in one pipelined run (well under `REQUEST_MAX_BYTES`).
const SET_RUN_BYTES_MAX: usize = 1024 * 1024;

pub async fn listen(listener: TcpListener, context: Arc<ClientContext>) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let context = context.clone();
                tokio::spawn(async move {
                    if let Err(error) = serve(stream, addr, &context).await {
                        tracing::debug!(%addr, %error, "client connection ended");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "client accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Leaves the node's table of live connections when the connection ends, however it ends.
struct Registered<'a>(&'a ClientContext, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.clients.remove(self.1);
    }
}

/// The socket's descriptor, as `CLIENT LIST` shows it (-1 where there is none).
fn socket_fd(stream: &TcpStream) -> i64 {
    #[cfg(not(madsim))]
    {
        use std::os::fd::AsRawFd;
        i64::from(stream.as_raw_fd())
    }
    #[cfg(madsim)]
    {
        let _ = stream;
        -1
    }
}

/// Returns when a connection idle this long should close (`timeout`, 0: never).
async fn idle_timeout(context: &ClientContext) {
    match context.config.number("timeout") {
        0 => std::future::pending().await,
        seconds => tokio::time::sleep(Duration::from_secs(seconds as u64)).await,
    }
}

async fn serve(
    mut stream: TcpStream,
    addr: std::net::SocketAddr,
    context: &ClientContext,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut conn = Connection::new(context);
    let laddr = stream.local_addr().unwrap_or(context.client_addr);
    let limit = usize::try_from(context.config.number("maxclients")).unwrap_or(usize::MAX);
    let Some(entry) = context
        .clients
        .register(conn.id, addr, laddr, socket_fd(&stream), limit)
    else {
        stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await?;
        stream.flush().await?; // a no-op on real TCP; madsim sends on flush
        return Ok(());
    };
    let _registered = Registered(context, conn.id);
    conn.entry = Some(entry.clone());
    let mut input = Vec::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut run = SetRun::default();
    loop {
        let mut used = 0;
        loop {
            match resp::parse(&input[used..]) {
                Ok(Some((args, n))) => {
                    used += n;
                    let args = match conn.plain_set(args) {
                        Ok((key, value)) => {
                            if !run.has_room_for(&key, &value) {
                                conn.store_run(&mut run, &mut out).await;
                            }
                            run.push(key, value);
                            context.commands_processed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Err(args) => args,
                    };
                    conn.store_run(&mut run, &mut out).await;
                    if !args.is_empty() {
                        conn.execute(args, &mut out).await;
                        context.commands_processed.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(psync) = conn.sync_requested.take() {
                        return crate::sync::serve(stream, context, psync, out).await;
                    }
                    if conn.quit || entry.is_killed() {
                        stream.write_all(&out).await?;
                        stream.flush().await?; // a no-op on real TCP; madsim sends on flush
                        return Ok(());
                    }
                    if out.len() >= OUT_FLUSH_BYTES {
                        stream.write_all(&out).await?;
                        stream.flush().await?; // a no-op on real TCP; madsim sends on flush
                        out.clear();
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    conn.store_run(&mut run, &mut out).await;
                    // Like Redis: answer the protocol error, then close.
                    Writer {
                        out: &mut out,
                        resp3: conn.resp3,
                    }
                    .error(&format!("ERR {error}"));
                    stream.write_all(&out).await?;
                    stream.flush().await?; // a no-op on real TCP; madsim sends on flush
                    return Ok(());
                }
            }
        }
        input.drain(..used);
        conn.store_run(&mut run, &mut out).await;
        if !out.is_empty() {
            stream.write_all(&out).await?;
            stream.flush().await?; // a no-op on real TCP; madsim sends on flush
            out.clear();
        }
        let n = tokio::select! {
            read = stream.read(&mut chunk) => read?,
            () = entry.killed() => return Ok(()),
            () = idle_timeout(context) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&chunk[..n]);
    }
}

/// Redis's answer to a write over `maxmemory`.
const OOM: &str = keyspace_core::scripting::OOM_ERROR;
/// How often a paused command looks whether the pause ended (CLIENT UNPAUSE).
const PAUSE_CHECK: Duration = Duration::from_millis(10);
/// Commands `CLIENT LIST` shows with their subcommand (`client|list`).
const CONTAINERS: [&str; 6] = [
    "client", "config", "object", "memory", "command", "function",
];

/// Whether `action` writes to the store.
fn writes(action: &commands::Action) -> bool {
    match action {
        commands::Action::Store { commands, .. } => commands.iter().any(|c| c.is_write()),
        _ => false,
    }
}

/// Whether Redis refuses `command` over `maxmemory` before running it: a write, except a
/// script command, which says so itself (a script run is marked and judged as it runs).
fn denied_over_maxmemory(command: &Command) -> bool {
    match command {
        Command::Script(script) => script.denied_over_maxmemory(),
        _ => command.is_write(),
    }
}

/// Marks the script runs of `action` with `mark` (over `maxmemory`, DEBUG allowed).
fn mark_scripts(action: &mut commands::Action, mark: fn(&mut ScriptCommand)) {
    if let commands::Action::Store { commands, .. } = action {
        for command in commands {
            if let Command::Script(script) = command {
                mark(script);
            }
        }
    }
}

/// A command's arguments, its name first.
type Args = Vec<Vec<u8>>;
/// A key and its value.
type Pair = (Vec<u8>, Vec<u8>);

/// Consecutive plain SETs of one read, waiting to be stored together.
#[derive(Default)]
struct SetRun {
    pairs: Vec<Pair>,
    /// Bytes of the keys and values in `pairs`.
    bytes: usize,
}

impl SetRun {
    fn has_room_for(&self, key: &[u8], value: &[u8]) -> bool {
        let bytes = self.bytes + key.len() + value.len();
        self.pairs.len() < SET_RUN_PAIRS_MAX && bytes <= SET_RUN_BYTES_MAX
    }

    fn push(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += key.len() + value.len();
        self.pairs.push((key, value));
    }

    fn take(&mut self) -> Vec<Pair> {
        self.bytes = 0;
        std::mem::take(&mut self.pairs)
    }
}

impl Connection<'_> {
    pub(crate) async fn execute(&mut self, args: Vec<Vec<u8>>, out: &mut Vec<u8>) {
        let flags = ConnectionFlags {
            authenticated: self.authenticated,
            in_multi: self.multi.is_some(),
            readonly: self.readonly,
        };
        let mut action = commands::parse(&args, flags);
        self.publish_command(&args);
        self.wait_while_paused(&action).await;
        let refusal = self.refusal(&args[0], &mut action);
        let rejected = refusal.is_some() || matches!(action, commands::Action::Error(_));
        let (start, began) = (out.len(), std::time::Instant::now());
        match self.multi.is_some() {
            _ if refusal.is_some() => {
                let reason = refusal.expect("checked by the guard");
                crate::cmd_multi::refuse(self, &action, reason, out)
            }
            true => crate::cmd_multi::execute_in_multi(self, &args, action, out).await,
            false if crate::cmd_multi::is_transaction_action(&action) => {
                crate::cmd_multi::run(action, self, out).await
            }
            false => commands::run(action, self, out).await,
        }
        let failed = out.get(start) == Some(&b'-');
        if failed {
            let code = out[start + 1..].split(|&c| c == b' ' || c == b'\r').next();
            self.context
                .count_error(&String::from_utf8_lossy(code.unwrap_or_default()));
        }
        let usec = began.elapsed().as_micros() as u64;
        let name = String::from_utf8_lossy(&args[0]).to_uppercase();
        if let Some(name) = commands::known_name(&name) {
            self.context.count_command(name, 1, usec, rejected, failed);
        }
        self.apply_reply_mode(out, start);
        if let Some(entry) = &self.entry {
            entry.publish(ClientView {
                command_bytes: 0,
                ..self.view()
            });
        }
    }

    /// Shows the command starting in `CLIENT LIST` (its name, its bytes as `qbuf`).
    fn publish_command(&self, args: &[Vec<u8>]) {
        let Some(entry) = &self.entry else { return };
        let mut command = String::from_utf8_lossy(&args[0]).to_lowercase();
        if CONTAINERS.contains(&command.as_str()) && args.len() > 1 {
            command = format!(
                "{command}|{}",
                String::from_utf8_lossy(&args[1]).to_lowercase()
            );
        }
        let digits = |n: usize| n.to_string().len();
        let bytes = args.iter().map(|a| 3 + digits(a.len()) + a.len() + 2);
        entry.publish(ClientView {
            command,
            command_bytes: 3 + digits(args.len()) + bytes.sum::<usize>(),
            ..self.view()
        });
    }

    /// `CLIENT PAUSE`: a command waits while the node is paused for it (CLIENT itself never).
    async fn wait_while_paused(&self, action: &commands::Action) {
        let write = writes(action);
        let client = matches!(action, commands::Action::Server(ServerCommand::Client, _));
        while let Some(left) = self.context.clients.paused_for(write).filter(|_| !client) {
            tokio::time::sleep(left.min(PAUSE_CHECK)).await;
        }
    }

    /// Why the command `name` (as `action`) is refused before it runs, in Redis's order: not
    /// allowed inside MULTI, `maxmemory`, then a Redis replica's refusals (`REPLICAOF`). EXEC
    /// is judged by the commands it queued.
    fn refusal(&self, name: &[u8], action: &mut commands::Action) -> Option<&'static str> {
        use crate::cmd_admin::{denied_when_stale, NOT_IN_MULTI, NOT_IN_MULTI_ERROR};
        let name = commands::known_name(&String::from_utf8_lossy(name).to_uppercase())?;
        if matches!(action, commands::Action::Error(_)) {
            return None;
        }
        if self.multi.is_some() && NOT_IN_MULTI.contains(&name) {
            return Some(NOT_IN_MULTI_ERROR);
        }
        let exec = self.multi.as_ref().filter(|_| name == "EXEC");
        let writes = writes(action) || exec.is_some_and(crate::cmd_multi::queue_writes);
        if self.context.scripts_may_debug.load(Ordering::Relaxed) {
            mark_scripts(action, ScriptCommand::mark_debug_allowed);
        }
        if self.over_maxmemory(action) {
            return Some(OOM);
        }
        let stale_denied = denied_when_stale(name) || exec.is_some_and(|q| q.stale_denied);
        crate::cmd_admin::replica_refusal(self.context, writes, stale_denied)
    }

    /// Whether `maxmemory` refuses `action`: the process is over the limit and the action
    /// is denied there (EXEC: a queued command writes). Over the limit, the action's script
    /// runs are marked so.
    fn over_maxmemory(&self, action: &mut commands::Action) -> bool {
        let limit = self.context.config.maxmemory_bytes();
        if limit == 0 || crate::info::resident_bytes() <= limit {
            return false;
        }
        mark_scripts(action, ScriptCommand::mark_over_maxmemory);
        let exec_writes = matches!(action, commands::Action::Exec)
            && self
                .multi
                .as_ref()
                .is_some_and(crate::cmd_multi::queue_writes);
        let denied = match action {
            commands::Action::Store { commands, .. } => commands.iter().any(denied_over_maxmemory),
            _ => false,
        };
        denied || exec_writes
    }

    /// `CLIENT REPLY`: drops the reply written from `start` when the connection is not
    /// answered, and moves a SKIP on to the next command.
    fn apply_reply_mode(&mut self, out: &mut Vec<u8>, start: usize) {
        match self.reply_mode {
            ReplyMode::On => {}
            ReplyMode::Off => out.truncate(start),
            ReplyMode::Skip => {
                out.truncate(start);
                self.reply_mode = ReplyMode::On;
            }
            ReplyMode::SkipNext => self.reply_mode = ReplyMode::Skip,
        }
    }

    /// The key and value of `args` if it is a plain `SET key value` this connection may send
    /// as part of a pipelined run: authenticated, and within the size limits (a SET over them is
    /// run alone, to get its own error). Anything else comes back as it was.
    fn plain_set(&self, args: Args) -> Result<Pair, Args> {
        let plain = matches!(args.as_slice(), [name, key, value]
            if name.eq_ignore_ascii_case(b"SET")
                && self.authenticated
                && self.reply_mode == ReplyMode::On
                && self.context.config.maxmemory_bytes() == 0
                && !self.context.replica_of.is_set()
                && self.multi.is_none()
                && key.len() <= KEY_MAX_BYTES
                && value.len() <= VALUE_MAX_BYTES);
        if !plain {
            return Err(args);
        }
        let [_, key, value]: [Vec<u8>; 3] = args.try_into().expect("three arguments");
        Ok((key, value))
    }

    /// Stores the SETs of `run` (one SET as itself, several as one atomic command) and writes
    /// one reply per SET, the same for all of them.
    async fn store_run(&mut self, run: &mut SetRun, out: &mut Vec<u8>) {
        let mut pairs = run.take();
        let sets = pairs.len();
        let command = match sets {
            0 => return,
            1 => {
                let (key, value) = pairs.pop().expect("one pair");
                Command::Set { key, value }
            }
            _ => Command::MultiSet { pairs },
        };
        let (start, began) = (out.len(), std::time::Instant::now());
        commands::run(commands::store(command), self, out).await;
        let failed = out.get(start) == Some(&b'-');
        let usec = began.elapsed().as_micros() as u64;
        self.context
            .count_command("SET", sets as u64, usec, false, failed);
        if sets > 1 {
            let reply = out[start..].to_vec();
            for _ in 1..sets {
                out.extend_from_slice(&reply);
            }
        }
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use keyspace_core::Reply;

    use super::*;
    use crate::connection::tests::{get, Harness};

    #[test]
    fn a_run_of_pipelined_sets_is_one_write_with_one_reply_per_set() {
        let harness = Harness::new();
        harness.runtime.block_on(async {
            let conn = &mut Connection::new(&harness.context);
            let mut run = SetRun::default();
            for (key, value) in [("a", "1"), ("b", "2"), ("a", "3")] {
                let args = vec![b"set".to_vec(), key.into(), value.into()];
                let (key, value) = conn.plain_set(args).expect("a plain SET");
                run.push(key, value);
            }
            let mut out = Vec::new();

            conn.store_run(&mut run, &mut out).await;

            assert_eq!(out, b"+OK\r\n+OK\r\n+OK\r\n");
            assert!(run.pairs.is_empty() && run.bytes == 0);
            assert_eq!(harness.store.lock().unwrap().writes, 1);
            let value = conn.submit(get(b"a")).await;
            assert!(matches!(value, Ok(Reply::Value(Some(v))) if v == b"3"));
        });
    }

    #[test]
    fn only_plain_sets_within_the_limits_join_a_run() {
        let harness = Harness::new();
        let mut conn = Connection::new(&harness.context);
        let args = |parts: &[&[u8]]| parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>();
        assert!(conn.plain_set(args(&[b"SET", b"k", b"v"])).is_ok());
        assert!(conn.plain_set(args(&[b"SET", b"k"])).is_err());
        let with_option = args(&[b"SET", b"k", b"v", b"EX"]);
        assert_eq!(conn.plain_set(with_option.clone()), Err(with_option));
        assert!(conn.plain_set(args(&[b"GETDEL", b"k"])).is_err());
        let big = vec![b'v'; VALUE_MAX_BYTES + 1];
        assert!(conn.plain_set(args(&[b"SET", b"k", &big])).is_err());
        conn.authenticated = false;
        assert!(conn.plain_set(args(&[b"SET", b"k", b"v"])).is_err());

        let mut run = SetRun::default();
        let value = vec![b'v'; SET_RUN_BYTES_MAX / 2];
        assert!(run.has_room_for(b"k", &value));
        run.push(b"k".to_vec(), value.clone());
        assert!(
            !run.has_room_for(b"k", &value),
            "a run stays under its byte limit"
        );
    }
}
