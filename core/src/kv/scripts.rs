//! Scripts at apply time: the replicated script cache and function libraries, and running a
//! script whose `redis.call`s parse with the core parser, apply to this state inside the same
//! log entry, and are shown with the core shaper. The same on every replica: the script crate
//! is deterministic and bounded, and its seed is the slot.

use std::collections::BTreeMap;

use keyspace_script as lua;
use serde::{Deserialize, Serialize};

use crate::command::{Command, Reply};
use crate::redis::{self, Kind, Resp};
use crate::scripting::{RestorePolicy, ScriptCommand, LIBRARIES_MAX, OOM_ERROR, SCRIPTS_MAX};
use crate::Db;

use super::StateMachine;

/// The script cache (sha → body) and the function libraries (name → code); the functions of
/// each library are derived from its code, so only the texts are encoded. Function names are
/// case-insensitive as in Redis (indexed in lower case); library names are not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRegistry {
    scripts: BTreeMap<String, Vec<u8>>,
    libraries: BTreeMap<String, Vec<u8>>,
    #[serde(skip)]
    functions: BTreeMap<String, Registered>,
}

/// A function as its library registered it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Registered {
    library: String,
    /// The name as registered (the index key is its lower case).
    name: String,
    flags: lua::ScriptFlags,
}

impl ScriptRegistry {
    /// Rebuilds the function index after decoding; the thread's warm Lua state starts over.
    pub(crate) fn rebuilt(mut self) -> Result<ScriptRegistry, String> {
        lua::reset();
        let codes: Vec<Vec<u8>> = self.libraries.values().cloned().collect();
        for code in codes {
            let library = lua::load_library(&code)?;
            self.index(&library);
        }
        self.assert_invariants();
        Ok(self)
    }

    fn index(&mut self, library: &lua::Library) {
        for f in &library.functions {
            let flags = lua::ScriptFlags {
                declared: true,
                no_writes: f.no_writes(),
                allow_oom: f.flags.iter().any(|flag| flag == "allow-oom"),
            };
            let registered = Registered {
                library: library.name.clone(),
                name: f.name.clone(),
                flags,
            };
            self.functions.insert(f.name.to_lowercase(), registered);
        }
    }

    pub(crate) fn assert_invariants(&self) {
        assert!(self.scripts.len() <= SCRIPTS_MAX && self.libraries.len() <= LIBRARIES_MAX);
        assert!(self.functions.iter().all(|(key, f)| {
            self.libraries.contains_key(&f.library) && *key == f.name.to_lowercase()
        }));
    }

    fn cache(&mut self, body: &[u8]) -> String {
        let sha = lua::sha1_hex(body);
        assert_eq!(sha.len(), 40, "a SHA1 is 40 hex digits");
        if self.scripts.len() < SCRIPTS_MAX || self.scripts.contains_key(&sha) {
            self.scripts.insert(sha.clone(), body.to_vec());
        }
        assert!(
            self.scripts.len() <= SCRIPTS_MAX,
            "the script cache stays bounded"
        );
        sha
    }

    fn load(&mut self, code: &[u8], replace: bool) -> Resp {
        let library = match lua::load_library(code) {
            Ok(library) => library,
            Err(error) => return Resp::Error(error),
        };
        let exists = self.libraries.contains_key(&library.name);
        if exists && !replace {
            return Resp::Error(format!("ERR Library '{}' already exists", library.name));
        }
        let clash = library.functions.iter().find(|f| {
            matches!(self.functions.get(&f.name.to_lowercase()), Some(r) if r.library != library.name)
        });
        if let Some(f) = clash {
            return Resp::Error(format!("ERR Function {} already exists", f.name));
        }
        if !exists && self.libraries.len() >= LIBRARIES_MAX {
            return Resp::Error(format!("ERR at most {LIBRARIES_MAX} function libraries"));
        }
        self.delete(&library.name);
        assert!(
            !self.libraries.contains_key(&library.name),
            "a replaced library is gone first"
        );
        self.libraries.insert(library.name.clone(), code.to_vec());
        self.index(&library);
        self.assert_invariants();
        Resp::Bulk(Some(library.name.into_bytes()))
    }

    fn delete(&mut self, name: &str) -> bool {
        self.functions.retain(|_, f| f.library != name);
        let existed = self.libraries.remove(name).is_some();
        assert!(
            self.functions.values().all(|f| f.library != name),
            "no function outlives its library"
        );
        existed
    }

    /// FUNCTION RESTORE: all the payload's libraries join the loaded ones as `policy` says, or
    /// none does (Redis's errors: a library of the same name under APPEND, a function name
    /// another library has).
    fn restore(&mut self, codes: &[Vec<u8>], policy: RestorePolicy) -> Resp {
        let mut next = match policy {
            RestorePolicy::Flush => ScriptRegistry {
                scripts: self.scripts.clone(),
                ..ScriptRegistry::default()
            },
            RestorePolicy::Append | RestorePolicy::Replace => self.clone(),
        };
        let mut loaded = Vec::with_capacity(codes.len());
        for code in codes {
            match lua::load_library(code) {
                Ok(library) => loaded.push((library, code)),
                Err(error) => return Resp::Error(error),
            }
        }
        for (library, _) in &loaded {
            if next.libraries.contains_key(&library.name) {
                if policy == RestorePolicy::Append {
                    return Resp::Error(format!("ERR Library {} already exists", library.name));
                }
                next.delete(&library.name);
            }
        }
        for (library, code) in &loaded {
            if let Some(error) = next.join_error(library) {
                return Resp::Error(error);
            }
            next.libraries.insert(library.name.clone(), code.to_vec());
            next.index(library);
        }
        if next.libraries.len() > LIBRARIES_MAX {
            return Resp::Error(format!("ERR at most {LIBRARIES_MAX} function libraries"));
        }
        next.assert_invariants();
        assert!(loaded
            .iter()
            .all(|(l, _)| next.libraries.contains_key(&l.name)));
        *self = next;
        Resp::Simple("OK".into())
    }

    /// Why `library` cannot join the loaded ones as it is: its name or a function's is taken.
    fn join_error(&self, library: &lua::Library) -> Option<String> {
        if self.libraries.contains_key(&library.name) {
            return Some(format!("ERR Library {} already exists", library.name));
        }
        let clash = (library.functions.iter())
            .find(|f| self.functions.contains_key(&f.name.to_lowercase()))?;
        Some(format!("ERR Function {} already exists", clash.name))
    }

    /// FUNCTION STATS: no script is running while a command is answered (scripts run inside
    /// the apply of their log entry), and the one engine's counts.
    fn stats(&self) -> Resp {
        let bulk = |s: &str| Resp::Bulk(Some(s.as_bytes().to_vec()));
        let count = |n: usize| Resp::Int(i64::try_from(n).expect("bounded"));
        assert!(
            self.functions.len() >= self.libraries.len(),
            "every library registers a function"
        );
        let lua = Resp::Array(Some(vec![
            bulk("libraries_count"),
            count(self.libraries.len()),
            bulk("functions_count"),
            count(self.functions.len()),
        ]));
        Resp::Array(Some(vec![
            bulk("running_script"),
            Resp::Bulk(None),
            bulk("engines"),
            Resp::Array(Some(vec![bulk("LUA"), lua])),
        ]))
    }

    /// FUNCTION DUMP: every library's code, in name order.
    fn dump(&self) -> Resp {
        let payload =
            crate::scripting::function_dump::encode(self.libraries.values().map(Vec::as_slice));
        assert!(payload.len() > self.libraries.values().map(Vec::len).sum::<usize>());
        Resp::Bulk(Some(payload))
    }

    fn list(&self, pattern: Option<&[u8]>, with_code: bool) -> Resp {
        let bulk = |s: &str| Resp::Bulk(Some(s.as_bytes().to_vec()));
        let mut out = Vec::new();
        for (name, code) in &self.libraries {
            if pattern.is_some_and(|p| !super::glob::glob_match(p, name.as_bytes())) {
                continue;
            }
            let library = lua::load_library(code).expect("a kept library loads");
            let functions = library.functions.iter().map(|f| {
                let flags = f.flags.iter().map(|flag| bulk(flag)).collect();
                let description = Resp::Bulk(f.description.as_ref().map(|d| d.as_bytes().to_vec()));
                Resp::Array(Some(vec![
                    bulk("name"),
                    bulk(&f.name),
                    bulk("description"),
                    description,
                    bulk("flags"),
                    Resp::Array(Some(flags)),
                ]))
            });
            let mut entry = vec![
                bulk("library_name"),
                bulk(name),
                bulk("engine"),
                bulk("LUA"),
                bulk("functions"),
                Resp::Array(Some(functions.collect())),
            ];
            if with_code {
                entry.extend([bulk("library_code"), Resp::Bulk(Some(code.clone()))]);
            }
            out.push(Resp::Array(Some(entry)));
        }
        assert!(out.len() <= self.libraries.len());
        Resp::Array(Some(out))
    }
}

fn to_lua(resp: Resp) -> lua::Resp {
    match resp {
        Resp::Simple(s) => lua::Resp::Simple(s),
        Resp::Error(e) => lua::Resp::Error(e),
        Resp::Int(i) => lua::Resp::Int(i),
        Resp::Bulk(b) => lua::Resp::Bulk(b),
        Resp::Array(a) => lua::Resp::Array(a.map(|items| items.into_iter().map(to_lua).collect())),
        Resp::Double(text) => lua::Resp::Bulk(Some(text)),
        Resp::Pairs(pairs) => lua::Resp::Array(Some(
            (pairs.into_iter())
                .flat_map(|(a, b)| [to_lua(a), to_lua(b)])
                .collect(),
        )),
    }
}

fn from_lua(resp: lua::Resp) -> Resp {
    match resp {
        lua::Resp::Simple(s) => Resp::Simple(s),
        lua::Resp::Error(e) => Resp::Error(e),
        lua::Resp::Int(i) => Resp::Int(i),
        lua::Resp::Bulk(b) => Resp::Bulk(b),
        lua::Resp::Array(a) => {
            Resp::Array(a.map(|items| items.into_iter().map(from_lua).collect()))
        }
    }
}

/// A script's call of a command flagged `noscript`, or of a node command not answered here.
const NOT_FROM_SCRIPT: &str = "ERR This Redis command is not allowed from script";
/// A script's call with a wrong number of arguments.
const WRONG_ARITY_IN_SCRIPT: &str = "ERR Wrong number of args calling Redis command from script";

/// DEBUG from a run marked with `DEBUG set-disable-deny-scripts 1`: SLEEP answers OK without
/// sleeping (a script runs at apply time, where time stands still as it does for a script in
/// Redis). Other subcommands stay refused: PROTOCOL's samples are RESP3 types, which script
/// replies cannot carry yet.
fn debug_call(argv: &[Vec<u8>]) -> Resp {
    assert!(argv.len() >= 2, "DEBUG's arity gives it a subcommand");
    let sub = redis::text(&argv[1]).to_ascii_uppercase();
    match (sub.as_str(), argv.len()) {
        ("SLEEP", 3) => Resp::Simple("OK".into()),
        _ => Resp::Error(NOT_FROM_SCRIPT.into()),
    }
}

/// The connection commands a script may call, answered for the script's own connection:
/// PING, ECHO and SELECT (which changes `db` for the script's later calls only); None for
/// every other command.
fn connection_call(name: &str, argv: &[Vec<u8>], db: &mut Db) -> Option<Resp> {
    let bulk = |arg: &Vec<u8>| Resp::Bulk(Some(arg.clone()));
    Some(match (name, argv) {
        ("PING", [_]) => Resp::Simple("PONG".into()),
        ("PING", [_, message]) | ("ECHO", [_, message]) => bulk(message),
        ("PING", _) => Resp::Error(WRONG_ARITY_IN_SCRIPT.into()),
        ("SELECT", [_, index]) => match redis::parse_db(index, redis::NOT_AN_INTEGER) {
            Ok(selected) => {
                *db = selected;
                assert!(
                    *db < crate::command::DATABASES,
                    "SELECT stays within the databases"
                );
                Resp::Simple("OK".into())
            }
            Err(error) => Resp::Error(error),
        },
        ("SELECT", _) => Resp::Error(WRONG_ARITY_IN_SCRIPT.into()),
        _ => return None,
    })
}

/// What a script runs: an EVAL body or a library's function (with its flags).
enum Code<'a> {
    Body(&'a [u8]),
    Function {
        code: &'a [u8],
        name: &'a str,
        flags: lua::ScriptFlags,
    },
}

/// How a run was asked for: the _RO form, whether the replica that took it was over
/// `maxmemory`, and whether it allowed DEBUG in scripts.
#[derive(Clone, Copy)]
struct Mode {
    read_only: bool,
    over_maxmemory: bool,
    debug_allowed: bool,
}

impl Mode {
    fn of(read_only: bool, over_maxmemory: bool, debug_allowed: bool) -> Mode {
        Mode {
            read_only,
            over_maxmemory,
            debug_allowed,
        }
    }
}

/// What a run's `redis.call`s may not do: write at all (read-only scripts), or write while the
/// replica was over `maxmemory` (a script without a shebang: Redis refuses its deny-oom calls).
#[derive(Clone, Copy)]
struct Refusals {
    writes: bool,
    writes_over_maxmemory: bool,
    /// DEBUG is refused as Redis refuses it (`noscript`) unless the run was marked.
    debug: bool,
}

impl StateMachine {
    /// Applies one script command in database `db`.
    pub(super) fn apply_script(&mut self, db: Db, command: &ScriptCommand) -> Reply {
        let reply = self.apply_script_command(db, command);
        self.scripts.assert_invariants();
        reply
    }

    fn apply_script_command(&mut self, db: Db, command: &ScriptCommand) -> Reply {
        Reply::Resp(match command {
            ScriptCommand::Eval {
                body,
                keys,
                args,
                read_only,
                over_maxmemory,
                debug_allowed,
            } => {
                self.scripts.cache(body);
                self.run_script(
                    db,
                    Code::Body(body),
                    keys,
                    args,
                    Mode::of(*read_only, *over_maxmemory, *debug_allowed),
                )
            }
            ScriptCommand::EvalSha {
                sha,
                keys,
                args,
                read_only,
                over_maxmemory,
                debug_allowed,
            } => match self.scripts.scripts.get(sha).cloned() {
                Some(body) => self.run_script(
                    db,
                    Code::Body(&body),
                    keys,
                    args,
                    Mode::of(*read_only, *over_maxmemory, *debug_allowed),
                ),
                None => Resp::Error("NOSCRIPT No matching script. Please use EVAL.".into()),
            },
            ScriptCommand::Load { body } => Resp::Bulk(Some(self.scripts.cache(body).into_bytes())),
            ScriptCommand::Exists { shas } => Resp::Array(Some(
                shas.iter()
                    .map(|s| Resp::Int(i64::from(self.scripts.scripts.contains_key(s))))
                    .collect(),
            )),
            ScriptCommand::Flush => {
                lua::reset();
                self.scripts.scripts.clear();
                Resp::Simple("OK".into())
            }
            ScriptCommand::FunctionLoad { code, replace } => self.scripts.load(code, *replace),
            ScriptCommand::FunctionDelete { library } => match self.scripts.delete(library) {
                true => Resp::Simple("OK".into()),
                false => Resp::Error("ERR Library not found".into()),
            },
            ScriptCommand::FunctionFlush => {
                lua::reset();
                self.scripts.libraries.clear();
                self.scripts.functions.clear();
                Resp::Simple("OK".into())
            }
            ScriptCommand::FunctionList { pattern, with_code } => {
                self.scripts.list(pattern.as_deref(), *with_code)
            }
            ScriptCommand::FunctionStats => self.scripts.stats(),
            ScriptCommand::FunctionDump => self.scripts.dump(),
            ScriptCommand::FunctionRestore { codes, policy } => {
                self.scripts.restore(codes, *policy)
            }
            ScriptCommand::Fcall {
                function,
                keys,
                args,
                read_only,
                over_maxmemory,
                debug_allowed,
            } => self.fcall(
                db,
                function,
                keys,
                args,
                Mode::of(*read_only, *over_maxmemory, *debug_allowed),
            ),
        })
    }

    fn fcall(
        &mut self,
        db: Db,
        function: &str,
        keys: &[Vec<u8>],
        args: &[Vec<u8>],
        mode: Mode,
    ) -> Resp {
        let key = function.to_lowercase();
        let Some(Registered {
            library,
            name,
            flags,
        }) = self.scripts.functions.get(&key).cloned()
        else {
            return Resp::Error("ERR Function not found".into());
        };
        if mode.read_only && !flags.no_writes {
            return Resp::Error(
                "ERR Can not execute a script with write flag using *_ro command.".into(),
            );
        }
        let code = self.scripts.libraries[&library].clone();
        assert!(code.starts_with(b"#!"), "a kept library has its header");
        self.run_script(
            db,
            Code::Function {
                code: &code,
                name: &name,
                flags,
            },
            keys,
            args,
            mode,
        )
    }

    fn run_script(
        &mut self,
        db: Db,
        code: Code,
        keys: &[Vec<u8>],
        args: &[Vec<u8>],
        mode: Mode,
    ) -> Resp {
        assert!(self.applied_slot > 0, "scripts run inside an applied entry");
        let invocation = lua::Invocation {
            keys,
            args,
            seed: self.applied_slot,
        };
        let flags = match code {
            Code::Body(body) => match lua::script_flags(body) {
                Ok(flags) => flags,
                Err(error) => return Resp::Error(error),
            },
            Code::Function { flags, .. } => flags,
        };
        let refusals = match refusals(flags, mode) {
            Ok(refusals) => refusals,
            Err(error) => return error,
        };
        // SELECT inside the script changes the database of its later calls only.
        let mut script_db = db;
        let mut call = |argv: &[Vec<u8>]| to_lua(self.script_call(&mut script_db, argv, refusals));
        let reply = from_lua(match code {
            Code::Body(body) => lua::eval(body, &invocation, &mut call),
            Code::Function { code, name, .. } => lua::fcall(code, name, &invocation, &mut call),
        });
        assert!(
            script_db < crate::command::DATABASES,
            "a script's SELECT leaves it in a database"
        );
        reply
    }

    /// One `redis.call` from a script: refused as Redis 7.0 refuses it (unknown, wrong
    /// arity, flagged `noscript`), answered here for the connection commands a script may
    /// call, else parsed by the core parser, applied here, shown as a client sees it.
    fn script_call(&mut self, db: &mut Db, argv: &[Vec<u8>], refusals: Refusals) -> Resp {
        let name = redis::text(&argv[0]).to_ascii_uppercase();
        let spec = redis::spec(&name);
        let noscript = redis::noscript(argv);
        match spec {
            None if !noscript => {
                return Resp::Error("ERR Unknown Redis command called from script".into())
            }
            Some(spec) if !redis::arity_ok(argv, spec.arity) => {
                return Resp::Error(WRONG_ARITY_IN_SCRIPT.into())
            }
            _ => {}
        }
        if name == "DEBUG" && !refusals.debug {
            return debug_call(argv);
        }
        if noscript {
            return Resp::Error(NOT_FROM_SCRIPT.into());
        }
        assert!(spec.is_some(), "an unknown command is refused above");
        let spec = spec.expect("known");
        if let Some(reply) = connection_call(&name, argv, db) {
            return reply;
        }
        if spec.kind != Kind::Store {
            return Resp::Error(NOT_FROM_SCRIPT.into());
        }
        let call = match redis::parse_store(&name, argv) {
            Ok(call) => call,
            Err(error) => return Resp::Error(error),
        };
        let writes = call.commands.iter().any(Command::is_write);
        if writes && refusals.writes {
            return Resp::Error(
                "ERR Write commands are not allowed from read-only scripts.".into(),
            );
        }
        if writes && refusals.writes_over_maxmemory {
            return Resp::Error(OOM_ERROR.into());
        }
        let commands = call.commands.len();
        let replies: Vec<Reply> = call
            .commands
            .into_iter()
            .map(|c| self.apply_in_transaction(&c.in_db(*db)))
            .collect();
        assert_eq!(replies.len(), commands, "one reply per command of the call");
        redis::show_replies(&replies, call.shape)
    }
}

/// Redis 7.0's rules for a run: a script that declares flags (a shebang, or a function) and
/// may write is refused whole over `maxmemory` unless it allows OOM; one without a shebang runs,
/// and its writes are refused then. Read-only runs (the _RO form, `no-writes`) never write.
fn refusals(flags: lua::ScriptFlags, mode: Mode) -> Result<Refusals, Resp> {
    let no_writes = mode.read_only || flags.no_writes;
    let declared_may_write = flags.declared && !no_writes && !flags.allow_oom;
    if mode.over_maxmemory && declared_may_write {
        return Err(Resp::Error(OOM_ERROR.into()));
    }
    let refusals = Refusals {
        writes: no_writes,
        writes_over_maxmemory: mode.over_maxmemory && !flags.declared,
        debug: !mode.debug_allowed,
    };
    assert!(
        !refusals.writes_over_maxmemory || mode.over_maxmemory,
        "writes are refused for memory only over maxmemory"
    );
    Ok(refusals)
}
