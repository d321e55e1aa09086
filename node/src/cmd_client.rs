//! `CLIENT …`, as Redis 7.0 answers it: LIST, INFO, KILL, SETNAME, GETNAME, ID, REPLY, PAUSE,
//! UNPAUSE, NO-EVICT, NO-TOUCH, UNBLOCK, GETREDIR, HELP. keyspace has no client-side caching,
//! so TRACKING and CACHING are refused with the reason.

use std::time::Duration;

use crate::clients::{client_line, ClientEntry, ClientView};
use crate::connection::{Connection, ReplyMode};
use crate::resp::Writer;

const SYNTAX: &str = "ERR syntax error";

fn arity(sub: &str) -> String {
    keyspace_core::redis::arity_error(&format!("client|{sub}"))
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_uppercase()
}

/// `CLIENT …` (`args` from the command's name on) on `conn`.
pub fn run(conn: &mut Connection<'_>, args: &[Vec<u8>], w: &mut Writer<'_>) {
    let sub = upper(&args[1]);
    let count = args.len();
    match (sub.as_str(), count) {
        ("ID", 2) => w.int(conn.id as i64),
        ("GETNAME", 2) => match &conn.name {
            Some(name) => w.bulk(name),
            None => w.null(),
        },
        ("SETNAME", 3) => match set_name(conn, &args[2]) {
            Ok(()) => w.simple("OK"),
            Err(error) => w.error(error),
        },
        ("INFO", 2) => {
            let line = own_line(conn);
            w.bulk(format!("{line}\n").as_bytes());
        }
        ("LIST", _) => list(conn, &args[2..], w),
        ("KILL", 3..) => kill(conn, &args[2..], w),
        ("REPLY", 3) => reply(conn, &args[2], w),
        ("PAUSE", 3 | 4) => pause(conn, &args[2..], w),
        ("UNPAUSE", 2) => {
            conn.context.clients.unpause();
            w.simple("OK");
        }
        ("NO-EVICT" | "NO-TOUCH", 3) => match upper(&args[2]).as_str() {
            "ON" | "OFF" => w.simple("OK"),
            _ => w.error(SYNTAX),
        },
        ("UNBLOCK", 3 | 4) => w.int(0),
        ("GETREDIR", 2) => w.int(-1),
        ("SETINFO", 4) => w.simple("OK"),
        ("TRACKING" | "CACHING" | "TRACKINGINFO", _) => w.error(
            "ERR keyspace has no client-side caching: CLIENT TRACKING, CACHING and TRACKINGINFO \
             are not supported",
        ),
        ("HELP", 2) => w.help(HELP),
        (
            "ID" | "GETNAME" | "SETNAME" | "INFO" | "KILL" | "REPLY" | "PAUSE" | "UNPAUSE"
            | "NO-EVICT" | "NO-TOUCH" | "UNBLOCK" | "GETREDIR" | "SETINFO" | "HELP",
            _,
        ) => w.error(&arity(&sub)),
        _ => w.error(&format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// Redis's rule: a name is printable ASCII without spaces; an empty one clears it.
fn set_name(conn: &mut Connection<'_>, name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    conn.name = (!name.is_empty()).then(|| name.to_vec());
    Ok(())
}

/// This connection's line: its state now, and the command running.
fn own_line(conn: &Connection<'_>) -> String {
    match &conn.entry {
        Some(entry) => client_line(entry, &conn.view()),
        None => format!("id={} addr=? laddr=? fd=-1 name=", conn.id),
    }
}

/// The line of another connection, or of this one with its state now.
fn line_of(conn: &Connection<'_>, entry: &ClientEntry) -> String {
    match entry.id == conn.id {
        true => own_line(conn),
        false => client_line(entry, &entry.view()),
    }
}

fn list(conn: &Connection<'_>, filters: &[Vec<u8>], w: &mut Writer<'_>) {
    let mut ids: Option<Vec<u64>> = None;
    match filters.first().map(|f| upper(f)).as_deref() {
        None => {}
        Some("ID") if filters.len() >= 2 => {
            let parsed: Option<Vec<u64>> = filters[1..].iter().map(|a| parse_u64(a)).collect();
            match parsed {
                Some(list) => ids = Some(list),
                None => return w.error("ERR Invalid client ID"),
            }
        }
        Some("TYPE") if filters.len() == 2 => match client_type(&filters[1]) {
            Ok(true) => {}
            Ok(false) => return w.bulk(b""),
            Err(error) => return w.error(&error),
        },
        Some(_) => return w.error(SYNTAX),
    }
    let lines: Vec<String> = (conn.context.clients.all().iter())
        .filter(|e| ids.as_ref().is_none_or(|ids| ids.contains(&e.id)))
        .map(|e| line_of(conn, e) + "\n")
        .collect();
    w.bulk(lines.concat().as_bytes());
}

fn parse_u64(arg: &[u8]) -> Option<u64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// Whether a client type names this node's connections (all are `normal`), or Redis's error.
fn client_type(arg: &[u8]) -> Result<bool, String> {
    match String::from_utf8_lossy(arg).to_lowercase().as_str() {
        "normal" => Ok(true),
        "master" | "replica" | "slave" | "pubsub" => Ok(false),
        other => Err(format!("ERR Unknown client type '{other}'")),
    }
}

/// Which connections `CLIENT KILL filter value …` names.
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    /// `TYPE` named a kind no connection here is.
    none: bool,
    skip_me: bool,
    max_age_s: Option<u64>,
}

impl KillFilter {
    fn parse(args: &[Vec<u8>]) -> Result<Self, String> {
        let mut filter = KillFilter {
            skip_me: true,
            ..KillFilter::default()
        };
        if !args.len().is_multiple_of(2) {
            return Err(SYNTAX.into());
        }
        for pair in args.chunks(2) {
            let value = String::from_utf8_lossy(&pair[1]).to_string();
            match upper(&pair[0]).as_str() {
                "ID" => match parse_u64(&pair[1]) {
                    Some(id) if id > 0 => filter.id = Some(id),
                    _ => return Err("ERR client-id should be greater than 0".into()),
                },
                "TYPE" => filter.none |= !client_type(&pair[1])?,
                "ADDR" => filter.addr = Some(value),
                "LADDR" => filter.laddr = Some(value),
                "USER" if value == "default" => {}
                "USER" => return Err(format!("ERR No such user '{value}'")),
                "SKIPME" => match value.to_lowercase().as_str() {
                    "yes" => filter.skip_me = true,
                    "no" => filter.skip_me = false,
                    _ => return Err(SYNTAX.into()),
                },
                "MAXAGE" => match parse_u64(&pair[1]) {
                    Some(age) => filter.max_age_s = Some(age),
                    None => return Err(SYNTAX.into()),
                },
                _ => return Err(SYNTAX.into()),
            }
        }
        Ok(filter)
    }

    fn matches(&self, entry: &ClientEntry, me: u64) -> bool {
        !self.none
            && self.id.is_none_or(|id| id == entry.id)
            && (self.addr.as_ref()).is_none_or(|a| *a == entry.addr.to_string())
            && (self.laddr.as_ref()).is_none_or(|a| *a == entry.laddr.to_string())
            && (self.max_age_s).is_none_or(|age| entry.created.elapsed().as_secs() >= age)
            && !(self.skip_me && entry.id == me)
    }
}

/// `CLIENT KILL addr:port` (one connection, `OK`) or `CLIENT KILL filter value …` (a count).
fn kill(conn: &Connection<'_>, args: &[Vec<u8>], w: &mut Writer<'_>) {
    let clients = conn.context.clients.all();
    if let [addr] = args {
        let addr = String::from_utf8_lossy(addr);
        return match clients.iter().find(|e| e.addr.to_string() == addr) {
            Some(entry) => {
                entry.kill();
                w.simple("OK")
            }
            None => w.error("ERR No such client"),
        };
    }
    match KillFilter::parse(args) {
        Ok(filter) => {
            let killed: Vec<_> = clients
                .iter()
                .filter(|e| filter.matches(e, conn.id))
                .collect();
            for entry in &killed {
                entry.kill();
            }
            w.int(killed.len() as i64);
        }
        Err(error) => w.error(&error),
    }
}

fn reply(conn: &mut Connection<'_>, mode: &[u8], w: &mut Writer<'_>) {
    match upper(mode).as_str() {
        "ON" => {
            conn.reply_mode = ReplyMode::On;
            w.simple("OK");
        }
        "OFF" => conn.reply_mode = ReplyMode::Off,
        "SKIP" if conn.reply_mode != ReplyMode::Off => conn.reply_mode = ReplyMode::SkipNext,
        "SKIP" => {}
        _ => w.error(SYNTAX),
    }
}

fn pause(conn: &Connection<'_>, args: &[Vec<u8>], w: &mut Writer<'_>) {
    let all = match args.get(1).map(|a| upper(a)).as_deref() {
        None | Some("ALL") => true,
        Some("WRITE") => false,
        Some(_) => return w.error(SYNTAX),
    };
    match std::str::from_utf8(&args[0])
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
    {
        Some(ms) if ms < 0 => w.error("ERR timeout is negative"),
        Some(ms) => {
            conn.context
                .clients
                .pause(Duration::from_millis(ms as u64), all);
            w.simple("OK");
        }
        None => w.error("ERR timeout is not an integer or out of range"),
    }
}

impl Connection<'_> {
    /// What `CLIENT LIST` shows of this connection now.
    pub(crate) fn view(&self) -> ClientView {
        let command = (self.entry.as_ref()).map(|e| e.view()).unwrap_or_default();
        ClientView {
            name: self.name.clone().unwrap_or_default(),
            db: u32::from(self.db),
            multi: self.multi.as_ref().map_or(-1, |q| q.items.len() as i64),
            resp: if self.resp3 { 3 } else { 2 },
            readonly: self.readonly,
            ..command
        }
    }
}

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID, TYPE, USER, ADDR, LADDR, SKIPME, MAXAGE.",
    "LIST [options ...]",
    "    Return information about client connections. Options: TYPE, ID.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Print this help.",
];
