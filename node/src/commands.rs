//! The Redis commands keyspace understands, and how their replies are written.
//!
//! Parsing ([`parse`]) is pure: arguments in, an [`Action`] out (or the error a client sees for
//! an unknown command or a wrong number of arguments). The command table, the store commands'
//! parser and how store replies are shown are the core's (`keyspace_core::redis`), shared with
//! scripts; the connection's, server's and membership's commands are parsed here. [`run`]
//! carries an action out on a connection and writes the RESP reply.

use keyspace_core::redis::getkeys::key_arguments;
use keyspace_core::redis::{
    self, arity_error, parse_db, parse_i64, per_key, text, Kind, StoreCall, COMMANDS,
    NOT_AN_INTEGER,
};
use keyspace_core::{Change, Command, MemberKind, NodeId, Reply, Role};

use crate::connection::{Connection, Failure};
use crate::event::MemberRow;
use crate::resp::Writer;

pub use crate::action::{Action, ServerCommand, Shape};

pub fn store(command: Command) -> Action {
    Action::from(StoreCall::plain(command))
}

impl From<StoreCall> for Action {
    fn from(call: StoreCall) -> Action {
        // A client's SRANDMEMBER or HRANDFIELD draws here, as RANDOMKEY does.
        Action::Store {
            commands: call.commands,
            shape: call.shape.seeded(crate::random::<u64>()),
        }
    }
}

/// The table's name of a known command (`name` in upper case).
pub fn known_name(name: &str) -> Option<&'static str> {
    redis::spec(name).map(|spec| spec.name)
}

/// What of a connection's state decides how its commands parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionFlags {
    /// AUTH succeeded, or no password is configured.
    pub authenticated: bool,
    /// Between `MULTI` and `EXEC` or `DISCARD`.
    pub in_multi: bool,
    /// `READONLY`: reads go to this replica, possibly stale.
    pub readonly: bool,
}

/// Turns a command's arguments into what to do: store commands as the core parses them, the
/// connection's, server's and membership's commands here.
pub fn parse(args: &[Vec<u8>], conn: ConnectionFlags) -> Action {
    let spec = match redis::lookup(args) {
        Ok(spec) => spec,
        Err(error) => return Action::Error(error),
    };
    let name = spec.name;
    if !conn.authenticated && !matches!(name, "AUTH" | "HELLO" | "QUIT") {
        return Action::Error("NOAUTH Authentication required.".into());
    }
    if conn.readonly && !conn.in_multi {
        // Each key read by this replica on its own (DIRTYGET), possibly stale.
        match name {
            "MGET" => return per_key(args, |key| Command::Get { key }, Shape::Array).into(),
            "EXISTS" => return per_key(args, |key| Command::Get { key }, Shape::Exists).into(),
            _ => {}
        }
    }
    if conn.in_multi && matches!(name, "SYNC" | "PSYNC") {
        return Action::Error("ERR Command not allowed inside a transaction".into());
    }
    match spec.kind {
        Kind::Store => redis::parse_store(name, args).map_or_else(Action::Error, Action::from),
        Kind::Local => parse_local(name, args),
    }
}

fn parse_local(name: &str, args: &[Vec<u8>]) -> Action {
    match name {
        "MEMBER" => parse_member(args),
        "RANDOMKEY" => Action::RandomKey,
        _ => parse_connection(name, args),
    }
}

/// `MEMBER LIST | ADD <id> <peer-host:port> <client-host:port> [LEARNER|WITNESS] |
/// PROMOTE <id> | REMOVE <id> | FOUNDERS`. Addresses are checked for shape here (a member nobody can dial
/// would join a configuration for good); whether the change may follow is the master's call.
fn parse_member(args: &[Vec<u8>]) -> Action {
    const USAGE: &str = "ERR usage: MEMBER LIST | MEMBER ADD <id> <peer-host:port> \
                         <client-host:port> [LEARNER|WITNESS] | MEMBER PROMOTE <id> | \
                         MEMBER REMOVE <id> | MEMBER FOUNDERS";
    let change = match (text(&args[1]).as_str(), args.len()) {
        ("LIST", 2) => return Action::MemberList,
        ("FOUNDERS", 2) => return Action::MemberFounders,
        ("ADD", 5 | 6) => parse_member_add(args),
        ("PROMOTE", 3) => parse_member_id(&args[2]).map(|id| Change::Promote { id }),
        ("REMOVE", 3) => parse_member_id(&args[2]).map(|id| Change::Remove { id }),
        _ => Err(USAGE.to_string()),
    };
    match change {
        Ok(change) => store(Command::Member(change)),
        Err(error) => Action::Error(error),
    }
}

fn parse_member_add(args: &[Vec<u8>]) -> Result<Change, String> {
    let id = parse_member_id(&args[2])?;
    let peer_addr = parse_member_addr(&args[3], "peer")?;
    let client_addr = parse_member_addr(&args[4], "client")?;
    let kind = match args.get(5).map(|a| text(a)).as_deref() {
        None | Some("LEARNER") => MemberKind::Full,
        Some("WITNESS") => MemberKind::Witness,
        Some(other) => {
            return Err(format!(
                "ERR unknown member kind '{other}': LEARNER (the default) or WITNESS"
            ))
        }
    };
    Ok(Change::Add {
        id,
        peer_addr,
        client_addr,
        kind,
    })
}

fn parse_member_id(arg: &[u8]) -> Result<NodeId, String> {
    match std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<NodeId>().ok())
    {
        Some(id) if id > 0 => Ok(id),
        _ => Err(format!(
            "ERR invalid replica id '{}': a number from 1 to {}",
            String::from_utf8_lossy(arg),
            NodeId::MAX
        )),
    }
}

/// A `host:port` another replica can dial: an IP address (peers dial without name lookups).
fn parse_member_addr(arg: &[u8], what: &str) -> Result<String, String> {
    let text = String::from_utf8_lossy(arg);
    match text.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Ok(addr.to_string()),
        _ => Err(format!(
            "ERR invalid {what} address '{text}': give IP:PORT, such as 127.0.0.1:7001"
        )),
    }
}

fn parse_connection(name: &str, args: &[Vec<u8>]) -> Action {
    match name {
        "PING" if args.len() <= 2 => Action::Pong(args.get(1).cloned()),
        "PING" => Action::Error(arity_error(name)),
        "ECHO" => Action::Echo(args[1].clone()),
        "QUIT" => Action::Quit,
        "SYNC" => Action::Sync { psync: false },
        "PSYNC" => Action::Sync { psync: true },
        "MULTI" => Action::Multi,
        "EXEC" => Action::Exec,
        "DISCARD" => Action::Discard,
        "WATCH" => Action::Watch(args[1..].to_vec()),
        "UNWATCH" => Action::Unwatch,
        "READONLY" => Action::ReadOnly(true),
        "READWRITE" => Action::ReadOnly(false),
        "SELECT" if args.len() == 2 => {
            parse_db(&args[1], NOT_AN_INTEGER).map_or_else(Action::Error, Action::Select)
        }
        "SELECT" => Action::Error(arity_error(name)),
        "AUTH" if args.len() <= 3 => Action::Auth(args[args.len() - 1].clone()),
        "AUTH" => Action::Error("ERR syntax error".into()),
        "INFO" => Action::Info(
            (args[1..].iter())
                .map(|s| String::from_utf8_lossy(s).to_lowercase())
                .collect(),
        ),
        "HELLO" => parse_hello(args),
        "CLIENT" => Action::Server(ServerCommand::Client, args.to_vec()),
        "COMMAND" => match args.get(1).map(|a| text(a).to_ascii_uppercase()).as_deref() {
            Some("COUNT") => Action::CommandCount,
            Some("GETKEYS") if args.len() >= 4 => {
                key_arguments(&args[2..]).map_or_else(Action::Error, Action::CommandKeys)
            }
            Some("GETKEYS") => Action::Error(arity_error("command|getkeys")),
            _ => Action::EmptyArray,
        },
        "CONFIG" => Action::Server(ServerCommand::Config, args.to_vec()),
        "DEBUG" => Action::Server(ServerCommand::Debug, args.to_vec()),
        "MEMORY" => Action::Server(ServerCommand::Memory, args.to_vec()),
        "TIME" | "SAVE" | "SHUTDOWN" | "REPLICAOF" | "SLAVEOF" => {
            Action::Server(ServerCommand::Admin, args.to_vec())
        }
        _ => unreachable!("every named command is handled: {name}"),
    }
}

fn parse_hello(args: &[Vec<u8>]) -> Action {
    let mut protocol = None;
    let mut auth = None;
    let mut name = None;
    let mut i = 1;
    if let Some(version) = args.get(1) {
        match parse_i64(version) {
            Some(v @ 2..=3) => protocol = Some(v as u8),
            _ => return Action::Error("NOPROTO unsupported protocol version".into()),
        }
        i = 2;
    }
    while i < args.len() {
        match (text(&args[i]).as_str(), args.len() - i) {
            ("AUTH", 3..) => {
                auth = Some(args[i + 2].clone());
                i += 3;
            }
            ("SETNAME", 2..) => {
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => return Action::Error("ERR syntax error in HELLO option".into()),
        }
    }
    Action::Hello {
        protocol,
        auth,
        name,
    }
}

/// Carries out `action` on `conn` and writes its reply.
pub async fn run(action: Action, conn: &mut Connection<'_>, out: &mut Vec<u8>) {
    match action {
        Action::Store { commands, shape } => match shape.block_ms() {
            Some(timeout_ms) => run_blocking(commands, shape, timeout_ms, conn, out).await,
            None => run_store(commands, shape, conn, out).await,
        },
        Action::RandomKey => {
            let command = Command::RandomKey {
                seed: crate::random::<u64>(),
            };
            run_store(vec![command], Shape::Plain, conn, out).await
        }
        Action::Server(kind, args) => run_server(kind, &args, conn, out).await,
        Action::Info(section) => {
            let info = crate::info::info_text(conn, &section).await;
            Writer {
                out,
                resp3: conn.resp3,
            }
            .text(&info);
        }
        Action::MemberList => {
            let mut w = Writer {
                out,
                resp3: conn.resp3,
            };
            match conn.status().await {
                Some(status) => {
                    w.array(status.members.len());
                    for row in &status.members {
                        w.bulk(
                            member_line(row, status.node_id, conn.context.client_addr).as_bytes(),
                        );
                    }
                }
                None => w.error("TRYAGAIN the replica is shutting down"),
            }
        }
        Action::Hello {
            protocol,
            auth,
            name,
        } => run_hello(protocol, auth, name, conn, out).await,
        other => run_local(
            other,
            conn,
            &mut Writer {
                out,
                resp3: conn.resp3,
            },
        ),
    }
}

fn run_local(action: Action, conn: &mut Connection<'_>, w: &mut Writer<'_>) {
    match action {
        Action::Error(text) => w.error(&text),
        Action::Ok => w.simple("OK"),
        Action::Pong(None) => w.simple("PONG"),
        Action::Pong(Some(msg)) | Action::Echo(msg) => w.bulk(&msg),
        Action::Auth(password) => match check_password(conn, &password) {
            Ok(()) => w.simple("OK"),
            Err(text) => w.error(text),
        },
        Action::CommandCount => w.int(COMMAND_NAMES_COUNT),
        Action::CommandKeys(keys) => {
            w.array(keys.len());
            keys.iter().for_each(|key| w.bulk(key));
        }
        Action::EmptyArray => w.array(0),
        Action::ReadOnly(on) => {
            conn.readonly = on;
            w.simple("OK");
        }
        Action::Select(db) => {
            conn.db = db;
            w.simple("OK");
        }
        Action::Quit => {
            conn.quit = true;
            w.simple("OK");
        }
        Action::Sync { psync } => conn.sync_requested = Some(psync),
        Action::MemberFounders => {
            w.array(conn.context.founders.len());
            for (id, addr) in &conn.context.founders {
                w.bulk(format!("id={id} peer_addr={addr}").as_bytes());
            }
        }
        Action::Store { .. }
        | Action::Server(..)
        | Action::Info(_)
        | Action::MemberList
        | Action::Hello { .. }
        | Action::RandomKey
        | Action::Multi
        | Action::Exec
        | Action::Discard
        | Action::Watch(_)
        | Action::Unwatch => {
            unreachable!("handled in run")
        }
    }
}

/// CLIENT, CONFIG, DEBUG, OBJECT and MEMORY, each by its module.
async fn run_server(
    kind: ServerCommand,
    args: &[Vec<u8>],
    conn: &mut Connection<'_>,
    out: &mut Vec<u8>,
) {
    let mut w = Writer {
        out,
        resp3: conn.resp3,
    };
    match kind {
        ServerCommand::Client => crate::cmd_client::run(conn, args, &mut w),
        ServerCommand::Config => crate::cmd_config::run(conn.context, args, &mut w),
        ServerCommand::Admin => crate::cmd_admin::run(conn, args, &mut w),
        _ => {
            if let Err(failure) = crate::cmd_debug::run(kind, args, conn, &mut w).await {
                write_failure(&failure, &mut w);
            }
        }
    }
}

const COMMAND_NAMES_COUNT: i64 = COMMANDS.len() as i64;

/// One `MEMBER LIST` entry: `field=value` pairs separated by spaces; an address the
/// configuration does not carry is `-`, and so is how far behind a member is off the master.
pub fn member_line(row: &MemberRow, me: NodeId, my_client_addr: std::net::SocketAddr) -> String {
    let or_dash = |addr: &str| match addr {
        "" => "-".to_string(),
        addr => addr.to_string(),
    };
    let client_addr = match (row.client_addr.as_str(), row.id == me) {
        ("", true) => my_client_addr.to_string(),
        (addr, _) => or_dash(addr),
    };
    let connected = match row.connected {
        None => "self",
        Some(true) => "yes",
        Some(false) => "no",
    };
    let behind = row.behind_slots.map_or("-".to_string(), |n| n.to_string());
    format!(
        "id={} peer_addr={} client_addr={client_addr} kind={} connected={connected} behind_slots={behind}",
        row.id,
        or_dash(&row.peer_addr),
        row.kind
    )
}

fn check_password(conn: &mut Connection<'_>, given: &[u8]) -> Result<(), &'static str> {
    let Some(expected) = &conn.context.password else {
        return Err("ERR AUTH called without any password configured for the default user");
    };
    // Compare digests: constant time whatever the lengths.
    if blake3::hash(expected.as_bytes()) == blake3::hash(given) {
        conn.authenticated = true;
        Ok(())
    } else {
        Err("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

async fn run_hello(
    protocol: Option<u8>,
    auth: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    conn: &mut Connection<'_>,
    out: &mut Vec<u8>,
) {
    if let Some(password) = auth {
        if let Err(text) = check_password(conn, &password) {
            return Writer {
                out,
                resp3: conn.resp3,
            }
            .error(text);
        }
    }
    if !conn.authenticated {
        return Writer { out, resp3: conn.resp3 }.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(protocol) = protocol {
        conn.resp3 = protocol == 3;
    }
    if name.is_some() {
        conn.name = name;
    }
    let role = match conn.status().await.map(|s| s.role) {
        Some(Role::Master) => "master",
        _ => "replica",
    };
    let mut w = Writer {
        out,
        resp3: conn.resp3,
    };
    w.map(7);
    for (field, value) in [("server", "redis"), ("version", "7.0.0")] {
        w.bulk(field.as_bytes());
        w.bulk(value.as_bytes());
    }
    w.bulk(b"proto");
    w.int(if conn.resp3 { 3 } else { 2 });
    w.bulk(b"id");
    w.int(conn.id as i64);
    for (field, value) in [("mode", "standalone"), ("role", role)] {
        w.bulk(field.as_bytes());
        w.bulk(value.as_bytes());
    }
    w.bulk(b"modules");
    w.array(0);
}

async fn run_store(
    commands: Vec<Command>,
    shape: Shape,
    conn: &mut Connection<'_>,
    out: &mut Vec<u8>,
) {
    let mut replies = Vec::with_capacity(commands.len());
    for command in commands {
        match conn.submit(command).await {
            Ok(reply) => replies.push(reply),
            Err(failure) => {
                return write_failure(
                    &failure,
                    &mut Writer {
                        out,
                        resp3: conn.resp3,
                    },
                )
            }
        }
    }
    let mut w = Writer {
        out,
        resp3: conn.resp3,
    };
    write_replies(&replies, shape, &mut w);
}

/// How often a blocked client looks for a list to pop from.
const BLOCKED_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// A blocking list command (BLPOP…) of a client: pops at once if a key it names holds a list,
/// else looks again every [`BLOCKED_POLL`] (a read; the pop goes through the log only once a
/// key is there) until one does or `timeout_ms` passes (0: never), then answers as the
/// non-blocking command would. Inside MULTI and in scripts it never gets here: it runs once.
async fn run_blocking(
    commands: Vec<Command>,
    shape: Shape,
    timeout_ms: u64,
    conn: &mut Connection<'_>,
    out: &mut Vec<u8>,
) {
    assert_eq!(commands.len(), 1, "a blocking command is one store command");
    let began = tokio::time::Instant::now();
    let deadline = (timeout_ms > 0).then(|| began + std::time::Duration::from_millis(timeout_ms));
    let awaited = redis::lists::awaited_keys(&commands[0]);
    let mut first = true;
    loop {
        let gone = (conn.entry.as_ref()).is_some_and(|e| e.is_killed() || e.peer_closed());
        if gone {
            return; // nobody to answer: the connection's task sees the close next
        }
        let present = match first {
            true => true,
            false => match conn
                .submit(Command::Exists {
                    keys: awaited.clone(),
                })
                .await
            {
                Ok(Reply::Int(found)) => found > 0,
                _ => true,
            },
        };
        let timed_out = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        let reply = match present {
            true => match conn.submit(commands[0].clone()).await {
                Ok(reply) => reply,
                Err(failure) => {
                    return write_failure(
                        &failure,
                        &mut Writer {
                            out,
                            resp3: conn.resp3,
                        },
                    )
                }
            },
            false => Reply::Value(None),
        };
        if reply != Reply::Value(None) || timed_out {
            let mut w = Writer {
                out,
                resp3: conn.resp3,
            };
            return write_replies(&[reply], shape, &mut w);
        }
        first = false;
        let wake = tokio::time::Instant::now() + BLOCKED_POLL;
        tokio::time::sleep_until(deadline.map_or(wake, |d| d.min(wake))).await;
    }
}

/// The replies of one action's store commands, shown as `shape` says.
pub(crate) fn write_replies(replies: &[Reply], shape: Shape, w: &mut Writer<'_>) {
    w.resp(&redis::show_replies(replies, shape));
}

pub(crate) fn write_failure(failure: &Failure, w: &mut Writer<'_>) {
    match failure {
        Failure::Invalid(error) => w.error(&format!("ERR {error}")),
        Failure::Unavailable => w.error(
            "TRYAGAIN no master answered in time (a write may or may not have been applied); retry",
        ),
        Failure::Witness { master } => w.error(&crate::connection::witness_refusal(master)),
    }
}

pub fn write_reply(reply: &Reply, w: &mut Writer<'_>) {
    w.resp(&redis::show(reply));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    fn parsed(parts: &[&str]) -> Action {
        let conn = ConnectionFlags {
            authenticated: true,
            in_multi: false,
            readonly: false,
        };
        parse(&args(parts), conn)
    }

    fn error_of(parts: &[&str]) -> String {
        match parsed(parts) {
            Action::Error(e) => e,
            other => panic!("{parts:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn select_takes_databases_0_to_15_with_redis_errors_for_others() {
        assert_eq!(parsed(&["SELECT", "9"]), Action::Select(9));
        assert_eq!(parsed(&["RANDOMKEY"]), Action::RandomKey);
        assert_eq!(parsed(&["SELECT", "15"]), Action::Select(15));
        assert_eq!(error_of(&["SELECT", "16"]), "ERR DB index is out of range");
        assert_eq!(error_of(&["SELECT", "-1"]), "ERR DB index is out of range");
        assert_eq!(
            error_of(&["SELECT", "x"]),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn the_test_harness_preconditions_answer_as_redis_does() {
        assert!(matches!(
            parsed(&["FUNCTION", "FLUSH"]),
            Action::Store { .. }
        ));
        assert!(matches!(
            parsed(&["FUNCTION", "LOAD", "x"]),
            Action::Store { .. }
        ));
        // CONFIG and DEBUG run in their modules (server_config, cmd_debug), with their
        // arguments.
        for (parts, kind) in [
            (&["CONFIG", "SET", "foo", "bar"][..], ServerCommand::Config),
            (&["DEBUG", "SLEEP", "0"], ServerCommand::Debug),
            (&["client", "list"], ServerCommand::Client),
            (&["MEMORY", "USAGE", "k"], ServerCommand::Memory),
        ] {
            assert_eq!(parsed(parts), Action::Server(kind, args(parts)));
        }
    }

    #[test]
    fn echo_answers_its_one_argument_and_refuses_any_other_count() {
        assert_eq!(parsed(&["ECHO", "hi"]), Action::Echo(b"hi".to_vec()));
        let refused = Action::Error("ERR wrong number of arguments for 'echo' command".into());
        assert_eq!(parsed(&["ECHO"]), refused);
        assert_eq!(parsed(&["ECHO", "a", "b"]), refused);
    }

    fn member(parts: &[&str]) -> Action {
        let mut all = vec!["MEMBER"];
        all.extend_from_slice(parts);
        parsed(&all)
    }

    fn is_error_naming(action: &Action, needle: &str) -> bool {
        matches!(action, Action::Error(text) if text.starts_with("ERR ") && text.contains(needle))
    }

    #[test]
    fn member_add_is_a_change_through_the_log_and_a_learner_by_default() {
        let learner = Change::Add {
            id: 4,
            peer_addr: "127.0.0.1:7004".into(),
            client_addr: "127.0.0.1:6304".into(),
            kind: MemberKind::Full,
        };
        assert_eq!(
            member(&["ADD", "4", "127.0.0.1:7004", "127.0.0.1:6304"]),
            store(Command::Member(learner.clone()))
        );
        assert_eq!(
            member(&["add", "4", "127.0.0.1:7004", "127.0.0.1:6304", "learner"]),
            store(Command::Member(learner))
        );
        let witness = member(&["ADD", "5", "127.0.0.1:7005", "127.0.0.1:6305", "WITNESS"]);
        assert!(matches!(
            witness,
            Action::Store { commands, .. }
                if matches!(&commands[..], [Command::Member(Change::Add { id: 5, kind: MemberKind::Witness, .. })])
        ));
    }

    #[test]
    fn member_promote_and_remove_name_one_replica_by_id() {
        assert_eq!(
            member(&["PROMOTE", "4"]),
            store(Command::Member(Change::Promote { id: 4 }))
        );
        assert_eq!(
            member(&["remove", "2"]),
            store(Command::Member(Change::Remove { id: 2 }))
        );
        assert_eq!(member(&["LIST"]), Action::MemberList);
        assert_eq!(member(&["founders"]), Action::MemberFounders);
    }

    #[test]
    fn member_commands_with_bad_arguments_are_refused_with_the_reason() {
        assert!(is_error_naming(
            &member(&["PROMOTE", "0"]),
            "invalid replica id '0'"
        ));
        assert!(is_error_naming(
            &member(&["REMOVE", "65536"]),
            "invalid replica id"
        ));
        assert!(is_error_naming(
            &member(&["REMOVE", "x"]),
            "invalid replica id 'x'"
        ));
        let bad_peer = member(&["ADD", "4", "nohost", "127.0.0.1:6304"]);
        assert!(is_error_naming(&bad_peer, "invalid peer address 'nohost'"));
        let bad_client = member(&["ADD", "4", "127.0.0.1:7004", "127.0.0.1:0"]);
        assert!(is_error_naming(&bad_client, "invalid client address"));
        let bad_kind = member(&["ADD", "4", "127.0.0.1:7004", "127.0.0.1:6304", "VOTER"]);
        assert!(is_error_naming(&bad_kind, "unknown member kind 'VOTER'"));
        for wrong in [&["LIST", "x"][..], &["PROMOTE"], &["ADD", "4"], &["SHOW"]] {
            assert!(
                is_error_naming(&member(wrong), "usage: MEMBER LIST"),
                "{wrong:?}"
            );
        }
        assert!(matches!(
            member(&[]),
            Action::Error(text) if text == "ERR wrong number of arguments for 'member' command"
        ));
    }

    #[test]
    fn member_list_line_shows_unknown_fields_as_dashes_and_fills_in_its_own_client_address() {
        let me: std::net::SocketAddr = "127.0.0.1:6301".parse().unwrap();
        let row = |id, connected, behind_slots| MemberRow {
            id,
            peer_addr: format!("127.0.0.1:700{id}"),
            client_addr: String::new(),
            kind: "voter",
            connected,
            behind_slots,
        };
        assert_eq!(
            member_line(&row(1, None, Some(0)), 1, me),
            "id=1 peer_addr=127.0.0.1:7001 client_addr=127.0.0.1:6301 kind=voter connected=self behind_slots=0"
        );
        assert_eq!(
            member_line(&row(2, Some(false), None), 1, me),
            "id=2 peer_addr=127.0.0.1:7002 client_addr=- kind=voter connected=no behind_slots=-"
        );
    }
}
