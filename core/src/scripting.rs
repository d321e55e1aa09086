//! Script commands (EVAL, EVALSHA, FCALL, SCRIPT, FUNCTION and their _RO forms) as log data:
//! the script text travels in the log and runs at apply time on every replica
//! (`kv::scripts`). Parsing from a client's argv lives here too.

use serde::{Deserialize, Serialize};

pub mod function_dump;

/// Scripts the state keeps (SCRIPT LOAD and every EVAL'd body); past this, EVAL still runs but
/// the body is not kept for EVALSHA.
pub const SCRIPTS_MAX: usize = 1_000;
/// Function libraries the state keeps; FUNCTION LOAD past this is refused.
pub const LIBRARIES_MAX: usize = 1_000;

/// One script command; `read_only` is the _RO form (writes are refused while it runs);
/// `over_maxmemory` says the replica that took the command was over `maxmemory`, so the run
/// refuses writes as Redis 7.0 does then (judged at apply time, the same on every replica);
/// `debug_allowed` says that replica had `DEBUG set-disable-deny-scripts 1`, so the run may
/// call DEBUG SLEEP.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScriptCommand {
    Eval {
        body: Vec<u8>,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
        read_only: bool,
        over_maxmemory: bool,
        debug_allowed: bool,
    },
    EvalSha {
        sha: String,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
        read_only: bool,
        over_maxmemory: bool,
        debug_allowed: bool,
    },
    Load {
        body: Vec<u8>,
    },
    Exists {
        shas: Vec<String>,
    },
    Flush,
    FunctionLoad {
        code: Vec<u8>,
        replace: bool,
    },
    FunctionDelete {
        library: String,
    },
    FunctionFlush,
    FunctionList {
        pattern: Option<Vec<u8>>,
        with_code: bool,
    },
    Fcall {
        function: String,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
        read_only: bool,
        over_maxmemory: bool,
        debug_allowed: bool,
    },
    /// FUNCTION STATS: the engine's library and function counts.
    FunctionStats,
    /// FUNCTION DUMP: every library's code in one checksummed payload ([`function_dump`]).
    FunctionDump,
    /// FUNCTION RESTORE of a payload the parser verified and opened: the libraries' codes.
    FunctionRestore {
        codes: Vec<Vec<u8>>,
        policy: RestorePolicy,
    },
}

/// What FUNCTION RESTORE does with the libraries already loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RestorePolicy {
    /// Keep them; a library of the same name is an error (the default).
    Append,
    /// A library of the same name is replaced.
    Replace,
    /// All are deleted first.
    Flush,
}

/// Redis's reply to a command refused over `maxmemory`.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

impl ScriptCommand {
    /// EVAL of `body` with KEYS and ARGV (not read-only, taken under `maxmemory`).
    pub fn eval(body: &[u8], keys: Vec<Vec<u8>>, args: Vec<Vec<u8>>) -> ScriptCommand {
        ScriptCommand::Eval {
            body: body.to_vec(),
            keys,
            args,
            read_only: false,
            over_maxmemory: false,
            debug_allowed: false,
        }
    }

    /// Whether a replica over `maxmemory` refuses the command before ordering it, as Redis 7.0
    /// does for its deny-oom commands: FUNCTION LOAD and RESTORE. A script run is not refused there: it
    /// is marked ([`ScriptCommand::mark_over_maxmemory`]) and judged by its flags when it runs.
    pub fn denied_over_maxmemory(&self) -> bool {
        matches!(
            self,
            ScriptCommand::FunctionLoad { .. } | ScriptCommand::FunctionRestore { .. }
        )
    }

    /// Marks a script run taken while the replica was over `maxmemory`.
    pub fn mark_over_maxmemory(&mut self) {
        match self {
            ScriptCommand::Eval { over_maxmemory, .. }
            | ScriptCommand::EvalSha { over_maxmemory, .. }
            | ScriptCommand::Fcall { over_maxmemory, .. } => *over_maxmemory = true,
            _ => {}
        }
    }

    /// Marks a script run taken while `DEBUG set-disable-deny-scripts` was on.
    pub fn mark_debug_allowed(&mut self) {
        match self {
            ScriptCommand::Eval { debug_allowed, .. }
            | ScriptCommand::EvalSha { debug_allowed, .. }
            | ScriptCommand::Fcall { debug_allowed, .. } => *debug_allowed = true,
            _ => {}
        }
    }

    /// Whether the command runs a script, which declares its keys (KEYS) by a count.
    pub fn declares_keys(&self) -> bool {
        matches!(
            self,
            ScriptCommand::Eval { .. }
                | ScriptCommand::EvalSha { .. }
                | ScriptCommand::Fcall { .. }
        )
    }

    /// The keys a script declares (KEYS), for size checks.
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            ScriptCommand::Eval { keys, .. }
            | ScriptCommand::EvalSha { keys, .. }
            | ScriptCommand::Fcall { keys, .. } => keys.iter().map(Vec::as_slice).collect(),
            _ => vec![],
        }
    }

    /// The script text and the arguments, for size checks (the text travels in the log).
    pub fn values(&self) -> Vec<&[u8]> {
        match self {
            ScriptCommand::Eval { body, args, .. } => std::iter::once(body.as_slice())
                .chain(args.iter().map(Vec::as_slice))
                .collect(),
            ScriptCommand::EvalSha { args, .. } | ScriptCommand::Fcall { args, .. } => {
                args.iter().map(Vec::as_slice).collect()
            }
            ScriptCommand::Load { body } => vec![body],
            ScriptCommand::FunctionLoad { code, .. } => vec![code],
            ScriptCommand::FunctionRestore { codes, .. } => {
                codes.iter().map(Vec::as_slice).collect()
            }
            _ => vec![],
        }
    }
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}

/// `numkeys key… arg…` as EVAL and FCALL take them.
/// A script's KEYS and ARGV.
type KeysAndArgs = (Vec<Vec<u8>>, Vec<Vec<u8>>);

fn keys_and_args(args: &[Vec<u8>]) -> Result<KeysAndArgs, String> {
    let count = crate::redis::parse_i64(&args[0]).ok_or(crate::redis::NOT_AN_INTEGER)?;
    if count < 0 {
        return Err("ERR Number of keys can't be negative".into());
    }
    let count = usize::try_from(count).expect("not negative");
    if count > args.len() - 1 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    let (keys, rest) = (args[1..=count].to_vec(), args[count + 1..].to_vec());
    assert_eq!(
        keys.len() + rest.len() + 1,
        args.len(),
        "every argument is a key or an arg"
    );
    Ok((keys, rest))
}

/// Parses a script command (`args[0]` is its name; the table checked the arity).
pub fn parse(name: &str, args: &[Vec<u8>]) -> Result<ScriptCommand, String> {
    assert!(
        args.len() >= 2,
        "the table's arity gives {name} an argument"
    );
    let read_only = name.ends_with("_RO");
    assert!(!read_only || ["EVAL_RO", "EVALSHA_RO", "FCALL_RO"].contains(&name));
    match name {
        "EVAL" | "EVAL_RO" | "EVALSHA" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" => {
            let is_fcall = name.starts_with("FCALL");
            if is_fcall && crate::redis::parse_i64(&args[2]).is_none() {
                return Err("ERR Bad number of keys provided".into());
            }
            let (keys, rest) = keys_and_args(&args[2..])?;
            let target = args[1].clone();
            Ok(match name {
                "EVAL" | "EVAL_RO" => ScriptCommand::Eval {
                    body: target,
                    keys,
                    args: rest,
                    read_only,
                    over_maxmemory: false,
                    debug_allowed: false,
                },
                "EVALSHA" | "EVALSHA_RO" => {
                    let sha = String::from_utf8_lossy(&target).to_ascii_lowercase();
                    ScriptCommand::EvalSha {
                        sha,
                        keys,
                        args: rest,
                        read_only,
                        over_maxmemory: false,
                        debug_allowed: false,
                    }
                }
                _ => ScriptCommand::Fcall {
                    function: String::from_utf8_lossy(&target).into(),
                    keys,
                    args: rest,
                    read_only,
                    over_maxmemory: false,
                    debug_allowed: false,
                },
            })
        }
        "SCRIPT" => parse_script(args),
        "FUNCTION" => parse_function(args),
        _ => unreachable!("{name} is not a script command"),
    }
}

fn unknown_subcommand(args: &[Vec<u8>], name: &str) -> String {
    assert!(args.len() >= 2, "a subcommand was given");
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {name} HELP.",
        String::from_utf8_lossy(&args[1])
    )
}

fn flush_mode_ok(args: &[Vec<u8>]) -> Result<(), String> {
    assert!(args.len() >= 2, "FLUSH was given");
    match args.len() {
        2 => Ok(()),
        3 if ["ASYNC", "SYNC"].contains(&upper(&args[2]).as_str()) => Ok(()),
        _ => Err("ERR SCRIPT FLUSH only support SYNC|ASYNC option".into()),
    }
}

fn parse_script(args: &[Vec<u8>]) -> Result<ScriptCommand, String> {
    match (upper(&args[1]).as_str(), args.len()) {
        ("LOAD", 3) => Ok(ScriptCommand::Load {
            body: args[2].clone(),
        }),
        ("EXISTS", 3..) => Ok(ScriptCommand::Exists {
            shas: args[2..]
                .iter()
                .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
                .collect(),
        }),
        ("FLUSH", _) => flush_mode_ok(args).map(|()| ScriptCommand::Flush),
        ("KILL", 2) => Err("NOTBUSY No scripts in execution right now.".into()),
        _ => Err(unknown_subcommand(args, "SCRIPT")),
    }
}

fn parse_function(args: &[Vec<u8>]) -> Result<ScriptCommand, String> {
    match (upper(&args[1]).as_str(), args.len()) {
        ("LOAD", 3..) => parse_function_load(args),
        ("DELETE", 3) => Ok(ScriptCommand::FunctionDelete {
            library: String::from_utf8_lossy(&args[2]).into(),
        }),
        ("FLUSH", 2 | 3) => flush_mode_ok(args)
            .map_err(|_| "ERR FUNCTION FLUSH only supports SYNC|ASYNC option".to_string())
            .map(|()| ScriptCommand::FunctionFlush),
        ("LIST", _) => parse_function_list(&args[2..]),
        ("STATS", 2) => Ok(ScriptCommand::FunctionStats),
        ("DUMP", 2) => Ok(ScriptCommand::FunctionDump),
        ("STATS" | "DUMP", _) => Err(crate::redis::arity_error(&format!(
            "function|{}",
            upper(&args[1])
        ))),
        ("RESTORE", 3 | 4) => parse_function_restore(args),
        ("KILL", 2) => Err("NOTBUSY No scripts in execution right now.".into()),
        _ => Err(unknown_subcommand(args, "FUNCTION")),
    }
}

/// `FUNCTION LOAD [REPLACE] code`: options up to the last argument, which is the code.
fn parse_function_load(args: &[Vec<u8>]) -> Result<ScriptCommand, String> {
    assert!(args.len() >= 3, "LOAD was given an argument");
    let (options, code) = args[2..].split_at(args.len() - 3);
    let mut replace = false;
    for option in options {
        match upper(option).as_str() {
            "REPLACE" => replace = true,
            _ => {
                return Err(format!(
                    "ERR Unknown option given: {}",
                    String::from_utf8_lossy(option)
                ))
            }
        }
    }
    assert_eq!(code.len(), 1, "the code is the last argument");
    Ok(ScriptCommand::FunctionLoad {
        code: code[0].clone(),
        replace,
    })
}

/// `FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]`: the policy is checked first, as Redis
/// does, then the payload's version and checksum.
fn parse_function_restore(args: &[Vec<u8>]) -> Result<ScriptCommand, String> {
    assert!(
        matches!(args.len(), 3 | 4),
        "RESTORE takes a payload and a policy"
    );
    let policy = match args.get(3).map(|p| upper(p)).as_deref() {
        None | Some("APPEND") => RestorePolicy::Append,
        Some("REPLACE") => RestorePolicy::Replace,
        Some("FLUSH") => RestorePolicy::Flush,
        Some(_) => {
            return Err(
                "ERR Wrong restore policy given, value should be either FLUSH, \
                 APPEND or REPLACE."
                    .into(),
            )
        }
    };
    let codes = function_dump::decode(&args[2])?;
    Ok(ScriptCommand::FunctionRestore { codes, policy })
}

fn parse_function_list(options: &[Vec<u8>]) -> Result<ScriptCommand, String> {
    let (mut pattern, mut with_code, mut i) = (None, false, 0);
    while i < options.len() {
        match upper(&options[i]).as_str() {
            "WITHCODE" if !with_code => with_code = true,
            "LIBRARYNAME" if pattern.is_none() => {
                let value = options
                    .get(i + 1)
                    .ok_or("ERR library name argument was not given")?;
                pattern = Some(value.clone());
                i += 1;
            }
            _ => {
                return Err(format!(
                    "ERR Unknown argument {}",
                    String::from_utf8_lossy(&options[i])
                ))
            }
        }
        i += 1;
    }
    assert_eq!(i, options.len(), "every option was read");
    Ok(ScriptCommand::FunctionList { pattern, with_code })
}
