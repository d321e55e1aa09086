//! Running a script body or a library function in the thread's warm state (`warm`), with the
//! caller's `redis.call` and Redis 7.0's error formats.

use std::cell::RefCell;
use std::collections::HashMap;

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, Result, Table, Value};

use crate::convert::{error_line, lua_to_resp, resp_to_lua};
use crate::limits::{BUDGET_ERROR, INSTRUCTIONS_MAX, MEMORY_BYTES_MAX};
use crate::resp::Resp;
use crate::sha::sha1_hex;
use crate::shebang::without_shebang;
use crate::warm::{ChunkKey, Warm, COMPILED_MAX};

/// The arguments of one run. `seed` seeds `math.random`: the caller derives it from the log
/// (e.g. the entry's position) so every replica draws the same numbers.
pub struct Invocation<'a> {
    pub keys: &'a [Vec<u8>],
    pub args: &'a [Vec<u8>],
    pub seed: u64,
}

/// What `redis.call`/`redis.pcall` reach: the caller parses argv into a command, applies it
/// and answers its reply (an error reply for a refused command).
pub type CallBack<'c> = dyn FnMut(&[Vec<u8>]) -> Resp + 'c;

/// The prelude's internals and the state they live in, for the body of one run.
pub(crate) struct Session<'a> {
    pub(crate) lua: &'a Lua,
    pub(crate) internals: Table,
    compiled: &'a RefCell<HashMap<ChunkKey, Function>>,
}

impl Session<'_> {
    /// Compiles user code as `chunk_name` (text only: binary chunks are refused), or takes
    /// the chunk compiled from the same code before. A chunk holds no state of its own: every
    /// call runs it from its first line.
    pub(crate) fn compile(
        &self,
        code: &[u8],
        chunk_name: &'static str,
    ) -> std::result::Result<Function, String> {
        let key = (chunk_name, sha1_hex(code));
        if let Some(f) = self.compiled.borrow().get(&key) {
            return Ok(f.clone());
        }
        let chunk = self
            .lua
            .load(without_shebang(code))
            .set_name(chunk_name)
            .set_mode(ChunkMode::Text);
        let f = chunk.into_function().map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } => message,
            other => other.to_string(),
        })?;
        let mut compiled = self.compiled.borrow_mut();
        if compiled.len() >= COMPILED_MAX {
            compiled.clear();
        }
        compiled.insert(key, f.clone());
        assert!(compiled.len() <= COMPILED_MAX);
        Ok(f)
    }

    /// Runs `f(a, b)` under the error handler: Ok(value) or Err(error table).
    pub(crate) fn run(
        &self,
        f: Function,
        a: Value,
        b: Value,
    ) -> Result<std::result::Result<Value, Value>> {
        let run: Function = self.internals.get("run")?;
        let (ok, value): (bool, Value) = run.call((f, a, b))?;
        Ok(if ok { Ok(value) } else { Err(value) })
    }

    fn strings(&self, items: &[Vec<u8>]) -> Result<Table> {
        let table = self.lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            table.raw_set(i + 1, self.lua.create_string(item)?)?;
        }
        Ok(table)
    }
}

/// Runs `body` in the thread's warm state with `call` behind redis.call; the budget error wins
/// over whatever the script made of it. The state is kept for the next run only when the run
/// ended inside Lua, within its budget, and left the state intact.
pub(crate) fn with_session(
    seed: u64,
    instructions_max: u64,
    budget_error: &str,
    call: &mut CallBack<'_>,
    body: impl FnOnce(&Session) -> Result<Resp>,
) -> Resp {
    let mut kept = None;
    let outcome = Warm::take().and_then(|warm| {
        let reply = run_in(&warm, seed, instructions_max, call, body);
        let exceeded = warm.handles.budget.exceeded();
        let intact = warm.end_run()?;
        if reply.is_ok() && intact && !exceeded && warm.lua.used_memory() <= MEMORY_BYTES_MAX {
            kept = Some(warm);
        }
        Ok(if exceeded {
            Resp::error(budget_error)
        } else {
            reply?
        })
    });
    if let Some(warm) = kept {
        warm.keep();
    }
    outcome.unwrap_or_else(|e| Resp::error(format!("ERR {}", error_line(&e.to_string()))))
}

/// One run of `body` in `warm`, with `call` behind redis.call for the run's length.
fn run_in(
    warm: &Warm,
    seed: u64,
    instructions_max: u64,
    call: &mut CallBack<'_>,
    body: impl FnOnce(&Session) -> Result<Resp>,
) -> Result<Resp> {
    warm.start_run(seed, instructions_max)?;
    let lua = &warm.lua;
    lua.scope(|scope| {
        let raw_call = scope.create_function_mut(|lua, argv: Table| {
            let argv = argv
                .sequence_values::<mlua::LuaString>()
                .map(|s| s.map(|s| s.as_bytes().to_vec()))
                .collect::<Result<Vec<_>>>()?;
            assert!(!argv.is_empty(), "the prelude refuses an empty call");
            let reply = call(&argv);
            let failed = matches!(reply, Resp::Error(_));
            Ok((resp_to_lua(lua, &reply)?, failed))
        })?;
        warm.host.set("call", raw_call)?;
        body(&Session {
            lua,
            internals: warm.internals.clone(),
            compiled: &warm.compiled,
        })
    })
}

/// The reply for an error raised out of a script: Redis 7.0's
/// "<err> script: <name>, on <source>:<line>."
pub(crate) fn raised_error(value: &Value, name: &str) -> Result<Resp> {
    let Value::Table(table) = value else {
        let text = value.to_string().unwrap_or_default();
        return Ok(Resp::error(format!(
            "ERR Error running script {name}, {}",
            error_line(&text)
        )));
    };
    let message = match table.raw_get::<Value>("err")? {
        Value::String(s) => s.to_string_lossy(),
        _ => "ERR unknown error".into(),
    };
    let source: Option<String> = table.raw_get("source")?;
    let line: Option<i64> = table.raw_get("line")?;
    Ok(Resp::error(match (source, line) {
        (Some(source), Some(line)) => format!(
            "{} script: {name}, on {source}:{line}.",
            error_line(&message)
        ),
        _ => error_line(&message),
    }))
}

/// EVAL: runs `body` with KEYS and ARGV as globals.
pub fn eval(body: &[u8], invocation: &Invocation, call: &mut CallBack<'_>) -> Resp {
    let name = format!("f_{}", sha1_hex(body));
    with_session(
        invocation.seed,
        INSTRUCTIONS_MAX,
        BUDGET_ERROR,
        call,
        |session| {
            let set: Function = session.internals.get("set_global")?;
            set.call::<()>(("KEYS", session.strings(invocation.keys)?))?;
            set.call::<()>(("ARGV", session.strings(invocation.args)?))?;
            let f = match session.compile(body, "@user_script") {
                Ok(f) => f,
                Err(message) => {
                    return Ok(Resp::error(format!(
                        "ERR Error compiling script (new function): {}",
                        error_line(&message)
                    )))
                }
            };
            match session.run(f, Value::Nil, Value::Nil)? {
                Ok(value) => lua_to_resp(&value),
                Err(error) => raised_error(&error, &name),
            }
        },
    )
}

/// FCALL: loads the library `code` and runs its function `function` with (KEYS, ARGV).
pub fn fcall(
    code: &[u8],
    function: &str,
    invocation: &Invocation,
    call: &mut CallBack<'_>,
) -> Resp {
    with_session(
        invocation.seed,
        INSTRUCTIONS_MAX,
        BUDGET_ERROR,
        call,
        |session| {
            let chunk = match session.compile(code, "@user_function") {
                Ok(f) => f,
                Err(message) => {
                    return Ok(Resp::error(format!(
                        "ERR Error compiling function: {}",
                        error_line(&message)
                    )))
                }
            };
            let load: Function = session.internals.get("load_library")?;
            let (loaded, error): (bool, Value) = load.call(chunk)?;
            if !loaded {
                return raised_error(&error, function);
            }
            let registered: Table = session.internals.get::<Function>("registered")?.call(())?;
            let Some(entry) = registered.get::<Option<Table>>(function)? else {
                return Ok(Resp::error("ERR Function not found"));
            };
            let callback: Function = entry.get("callback")?;
            let keys = Value::Table(session.strings(invocation.keys)?);
            let args = Value::Table(session.strings(invocation.args)?);
            match session.run(callback, keys, args)? {
                Ok(value) => lua_to_resp(&value),
                Err(error) => raised_error(&error, function),
            }
        },
    )
}
