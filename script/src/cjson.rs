//! lua-cjson 2.1 (`cjson.*`), which Redis bundles: JSON encode/decode with its option setters.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Error, LightUserData, Lua, Result, Table, Value};

use crate::limits::NESTING_MAX;

/// The sparse-array rule of lua-cjson: arrays longer than this…
const SPARSE_SAFE: usize = 10;
/// …with more than this many slots per item are refused.
const SPARSE_RATIO: usize = 2;

#[derive(Clone, Copy)]
struct Settings {
    encode_depth_max: usize,
    decode_depth_max: usize,
    invalid_numbers: bool,
}

fn fail<T>(message: String) -> Result<T> {
    Err(Error::RuntimeError(message))
}

/// C's `%.{precision}g`.
pub(crate) fn format_g(n: f64, precision: usize) -> String {
    assert!(precision > 0 && precision <= 17);
    if n == 0.0 {
        return if n.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let scientific = format!("{:.*e}", precision - 1, n);
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("exponent is an integer");
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = strip_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
    strip_zeros(&format!("{n:.decimals$}")).to_string()
}

fn strip_zeros(text: &str) -> &str {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.')
}

fn encode_number(n: f64, settings: Settings, out: &mut String) -> Result<()> {
    if !n.is_finite() {
        if !settings.invalid_numbers {
            return fail("Cannot serialise number: must not be NaN or Inf".into());
        }
        out.push_str(if n.is_nan() {
            "nan"
        } else if n > 0.0 {
            "inf"
        } else {
            "-inf"
        });
        return Ok(());
    }
    out.push_str(&format_g(n, 14));
    Ok(())
}

fn encode_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// The array length lua-cjson sees: Some(max index) if every key is a positive integer.
fn array_length(table: &Table) -> Result<Option<usize>> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let index = match key {
            Value::Integer(i) if i >= 1 => i as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(index);
        items += 1;
    }
    if max > SPARSE_SAFE && max > items * SPARSE_RATIO {
        return fail("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

struct Encoder {
    settings: Settings,
    out: Vec<u8>,
}

impl Encoder {
    fn value(&mut self, value: &Value, depth: usize) -> Result<()> {
        match value {
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Integer(i) => self.number(*i as f64)?,
            Value::Number(n) => self.number(*n)?,
            Value::String(s) => encode_string(&s.as_bytes(), &mut self.out),
            Value::Table(t) => self.table(t, depth + 1)?,
            other => {
                return fail(format!(
                    "Cannot serialise {}: type not supported",
                    other.type_name()
                ))
            }
        }
        Ok(())
    }

    fn number(&mut self, n: f64) -> Result<()> {
        let mut text = String::new();
        encode_number(n, self.settings, &mut text)?;
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn table(&mut self, table: &Table, depth: usize) -> Result<()> {
        if depth > self.settings.encode_depth_max {
            return fail(format!("Cannot serialise, excessive nesting ({depth})"));
        }
        match array_length(table)? {
            Some(length) if length > 0 => self.array(table, length, depth),
            _ => self.object(table, depth),
        }
    }

    fn array(&mut self, table: &Table, length: usize, depth: usize) -> Result<()> {
        self.out.push(b'[');
        for index in 1..=length {
            if index > 1 {
                self.out.push(b',');
            }
            let item: Value = table.raw_get(index)?;
            self.value(&item, depth)?;
        }
        self.out.push(b']');
        Ok(())
    }

    fn object(&mut self, table: &Table, depth: usize) -> Result<()> {
        self.out.push(b'{');
        let mut first = true;
        for pair in table.pairs::<Value, Value>() {
            let (key, item) = pair?;
            if !first {
                self.out.push(b',');
            }
            first = false;
            match &key {
                Value::String(s) => encode_string(&s.as_bytes(), &mut self.out),
                Value::Integer(_) | Value::Number(_) => {
                    let n = match key {
                        Value::Integer(i) => i as f64,
                        Value::Number(n) => n,
                        _ => unreachable!("matched a number"),
                    };
                    encode_string(format_g(n, 14).as_bytes(), &mut self.out)
                }
                _ => {
                    return fail(
                        "Cannot serialise table: table key must be a number or string".into(),
                    )
                }
            }
            self.out.push(b':');
            self.value(&item, depth)?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

fn decode_value(lua: &Lua, json: &serde_json::Value, depth: usize, max: usize) -> Result<Value> {
    use serde_json::Value as J;
    Ok(match json {
        J::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(items) => {
            let table = nested_table(lua, depth, max)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, decode_value(lua, item, depth + 1, max)?)?;
            }
            Value::Table(table)
        }
        J::Object(map) => {
            let table = nested_table(lua, depth, max)?;
            for (k, item) in map {
                table.raw_set(k.as_str(), decode_value(lua, item, depth + 1, max)?)?;
            }
            Value::Table(table)
        }
    })
}

fn nested_table(lua: &Lua, depth: usize, max: usize) -> Result<Table> {
    if depth > max {
        return fail(format!("Found too many nested data structures ({depth})"));
    }
    lua.create_table()
}

fn setter(
    lua: &Lua,
    settings: &Rc<Cell<Settings>>,
    set: fn(&mut Settings, Value),
) -> Result<mlua::Function> {
    let settings = settings.clone();
    lua.create_function(move |_, value: Value| {
        let mut current = settings.get();
        set(&mut current, value);
        settings.set(current);
        Ok(())
    })
}

fn depth_of(value: &Value, default: usize) -> usize {
    let n = match value {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        _ => return default,
    };
    (n.max(1.0) as usize).min(NESTING_MAX)
}

const DEFAULT_SETTINGS: Settings = Settings {
    encode_depth_max: NESTING_MAX,
    decode_depth_max: NESTING_MAX,
    invalid_numbers: false,
};

/// cjson's options as the setters left them; reset before every run, so they last for one.
pub(crate) struct Options(Rc<Cell<Settings>>);

impl Options {
    pub(crate) fn reset(&self) {
        self.0.set(DEFAULT_SETTINGS);
    }
}

/// Builds the `cjson` table and the handle on its options.
pub(crate) fn library(lua: &Lua) -> Result<(Table, Options)> {
    let settings = Rc::new(Cell::new(DEFAULT_SETTINGS));
    let cjson = lua.create_table()?;
    let s = settings.clone();
    cjson.set(
        "encode",
        lua.create_function(move |lua, value: Value| {
            let mut encoder = Encoder {
                settings: s.get(),
                out: Vec::new(),
            };
            encoder.value(&value, 0)?;
            lua.create_string(&encoder.out)
        })?,
    )?;
    let s = settings.clone();
    cjson.set(
        "decode",
        lua.create_function(move |lua, text: mlua::LuaString| {
            let json: serde_json::Value = match serde_json::from_slice(&text.as_bytes()) {
                Ok(json) => json,
                Err(e) => return fail(format!("Expected value but found invalid token: {e}")),
            };
            decode_value(lua, &json, 1, s.get().decode_depth_max)
        })?,
    )?;
    cjson.set(
        "encode_max_depth",
        setter(lua, &settings, |s, v| {
            s.encode_depth_max = depth_of(&v, NESTING_MAX)
        })?,
    )?;
    cjson.set(
        "decode_max_depth",
        setter(lua, &settings, |s, v| {
            s.decode_depth_max = depth_of(&v, NESTING_MAX)
        })?,
    )?;
    cjson.set(
        "encode_invalid_numbers",
        setter(lua, &settings, |s, v| {
            s.invalid_numbers = v.as_boolean().unwrap_or(false)
        })?,
    )?;
    for name in [
        "encode_keep_buffer",
        "encode_number_precision",
        "encode_sparse_array",
        "decode_invalid_numbers",
    ] {
        cjson.set(name, setter(lua, &settings, |_, _| {})?)?;
    }
    cjson.set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    Ok((cjson, Options(settings)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g_matches_c_printf() {
        assert_eq!(format_g(100.0, 14), "100");
        assert_eq!(format_g(0.0003, 14), "0.0003");
        assert_eq!(format_g(1023.2, 14), "1023.2");
        assert_eq!(format_g(1e20, 14), "1e+20");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(-5000.0, 17), "-5000");
        assert_eq!(format_g(1.5e-7, 14), "1.5e-07");
    }
}
