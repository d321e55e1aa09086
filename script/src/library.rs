//! FUNCTION LOAD: a library's header and the functions its code registers.

use mlua::{Function as LuaFunction, Result, Table, Value};

use crate::convert::error_line;
use crate::limits::{LOAD_BUDGET_ERROR, LOAD_INSTRUCTIONS_MAX};
use crate::resp::Resp;
use crate::run::{raised_error, with_session, Session};
use crate::shebang::library_name;

/// One registered function, as FUNCTION LIST shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub description: Option<String>,
    pub flags: Vec<String>,
}

impl Function {
    /// Declared read-only: FCALL_RO may run it and it may not write.
    pub fn no_writes(&self) -> bool {
        self.flags.iter().any(|f| f == "no-writes")
    }
}

/// A loaded library: its name (from `#!lua name=…`) and its functions, sorted by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Library {
    pub name: String,
    pub functions: Vec<Function>,
}

fn registered_functions(session: &Session) -> Result<Vec<Function>> {
    let registered: Table = session
        .internals
        .get::<LuaFunction>("registered")?
        .call(())?;
    let mut functions = Vec::new();
    for pair in registered.pairs::<String, Table>() {
        let (name, entry) = pair?;
        let flags: Table = entry.get("flags")?;
        functions.push(Function {
            name,
            description: entry.get("description")?,
            flags: flags.sequence_values::<String>().collect::<Result<_>>()?,
        });
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(functions)
}

/// Loads `code` (`#!lua name=<lib>` then Lua that calls `redis.register_function`), or Redis's
/// error line. Loading cannot reach redis.call: the callback refuses everything.
pub fn load_library(code: &[u8]) -> std::result::Result<Library, String> {
    let name = library_name(code)?;
    let mut refuse =
        |_: &[Vec<u8>]| Resp::error("ERR redis.call is not available while loading a library");
    let mut functions = Vec::new();
    let reply = with_session(
        0,
        LOAD_INSTRUCTIONS_MAX,
        LOAD_BUDGET_ERROR,
        &mut refuse,
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
            let load: LuaFunction = session.internals.get("load_library")?;
            let (loaded, error): (bool, Value) = load.call(chunk)?;
            if !loaded {
                let Resp::Error(message) = raised_error(&error, "load")? else {
                    unreachable!("raised_error answers errors")
                };
                let message = message
                    .split(" script: ")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                return Ok(Resp::error(format!(
                    "ERR Error registering functions: {message}"
                )));
            }
            functions = registered_functions(session)?;
            Ok(Resp::Simple("OK".into()))
        },
    );
    match reply {
        Resp::Error(message) => Err(message),
        _ if functions.is_empty() => Err("ERR No functions registered".into()),
        _ => Ok(Library { name, functions }),
    }
}
