//! Redis 7.0's conversions between Lua values and RESP2 replies (script_lua.c).

use mlua::{Lua, Result, Table, Value};

use crate::limits::NESTING_MAX;
use crate::resp::Resp;

/// A command's reply as Lua sees it inside `redis.call`/`redis.pcall`: integers become numbers,
/// nil bulk and nil array become `false`, status and error become `{ok=…}` and `{err=…}`.
pub(crate) fn resp_to_lua(lua: &Lua, reply: &Resp) -> Result<Value> {
    Ok(match reply {
        Resp::Int(i) => Value::Number(*i as f64),
        Resp::Bulk(Some(bytes)) => Value::String(lua.create_string(bytes)?),
        Resp::Bulk(None) | Resp::Array(None) => Value::Boolean(false),
        Resp::Simple(text) => Value::Table(single_field(lua, "ok", text)?),
        Resp::Error(text) => Value::Table(single_field(lua, "err", text)?),
        Resp::Array(Some(items)) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, resp_to_lua(lua, item)?)?;
            }
            Value::Table(table)
        }
    })
}

fn single_field(lua: &Lua, name: &str, text: &str) -> Result<Table> {
    let table = lua.create_table()?;
    table.raw_set(name, text)?;
    Ok(table)
}

/// A script's return value as the client sees it: numbers truncate to integers, `true` is 1,
/// `false` and nil are a nil bulk, `{err=…}`/`{ok=…}` are error/status, other tables are arrays
/// cut at the first nil.
pub(crate) fn lua_to_resp(value: &Value) -> Result<Resp> {
    lua_to_resp_nested(value, 0)
}

fn lua_to_resp_nested(value: &Value, depth: usize) -> Result<Resp> {
    Ok(match value {
        Value::String(s) => Resp::Bulk(Some(s.as_bytes().to_vec())),
        Value::Boolean(true) => Resp::Int(1),
        Value::Integer(i) => Resp::Int(*i),
        Value::Number(n) => Resp::Int(*n as i64),
        Value::Table(t) => table_to_resp(t, depth)?,
        _ => Resp::Bulk(None),
    })
}

fn table_to_resp(table: &Table, depth: usize) -> Result<Resp> {
    if depth >= NESTING_MAX {
        return Ok(Resp::error("ERR reached lua stack limit"));
    }
    if let Value::String(err) = table.raw_get::<Value>("err")? {
        return Ok(Resp::error(error_line(&err.to_string_lossy())));
    }
    if let Value::String(ok) = table.raw_get::<Value>("ok")? {
        return Ok(Resp::Simple(single_line(&ok.to_string_lossy())));
    }
    let mut items = Vec::new();
    for index in 1.. {
        let item: Value = table.raw_get(index)?;
        if item.is_nil() {
            break;
        }
        items.push(lua_to_resp_nested(&item, depth + 1)?);
    }
    Ok(Resp::Array(Some(items)))
}

/// Reply lines cannot hold CR/LF; Redis turns them into spaces.
pub(crate) fn single_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// An error line as Redis 7.0 sends a Lua error table: one line, without a leading '-'.
pub(crate) fn error_line(text: &str) -> String {
    let line = single_line(text.strip_prefix('-').unwrap_or(text));
    if line.is_empty() {
        return "ERR".into();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_strips_the_dash_and_newlines() {
        assert_eq!(error_line("-ERR bad\r\nthing"), "ERR bad  thing");
        assert_eq!(error_line(""), "ERR");
    }
}
