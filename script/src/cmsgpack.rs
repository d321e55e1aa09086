//! lua-cmsgpack 0.4 (`cmsgpack.*`), which Redis bundles: MessagePack pack/unpack of Lua values
//! with its encodings (integers in the smallest form, floats as float32 when exact, tables as
//! arrays when their keys are 1..n), its nesting limit of 16 (deeper tables become nil, so
//! circular references encode as a finite deep copy) and its error messages.
//!
//! Bounded where the C library is not: a packed string is capped at [`PACKED_BYTES_MAX`] (a
//! table that references itself many times would otherwise grow without end), and unpacking
//! refuses nesting deeper than [`UNPACK_NESTING_MAX`] with the error Lua's stack limit gives
//! lua-cmsgpack.

use mlua::{Error, Lua, LuaString, Result, Table, Value, Variadic};

use crate::limits::MEMORY_BYTES_MAX;

/// Tables nested deeper than this are packed as nil (LUACMSGPACK_MAX_NESTING).
const PACK_NESTING_MAX: usize = 16;
/// The longest string `pack` returns.
const PACKED_BYTES_MAX: usize = MEMORY_BYTES_MAX;
/// The deepest nesting `unpack` decodes.
const UNPACK_NESTING_MAX: usize = 1000;

fn fail<T>(message: &str) -> Result<T> {
    Err(Error::RuntimeError(message.into()))
}

/// Whether `n` is a Lua number lua-cmsgpack packs as an integer (IS_INT64_EQUIVALENT).
fn is_int64(n: f64) -> bool {
    !n.is_infinite() && (n as i64) as f64 == n
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    let before = out.len();
    match n {
        0..=127 => out.push(n as u8),
        128..=0xff => out.extend([0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend((n as u32).to_be_bytes());
        }
        0x1_0000_0000.. => {
            out.push(0xcf);
            out.extend((n as u64).to_be_bytes());
        }
        -32..=-1 => out.push(n as i8 as u8),
        -128..=-33 => out.extend([0xd0, n as i8 as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend((n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend((n as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend(n.to_be_bytes());
        }
    }
    assert!([1, 2, 3, 5, 9].contains(&(out.len() - before)));
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    if is_int64(n) {
        return encode_int(n as i64, out);
    }
    let single = n as f32;
    if f64::from(single) == n {
        out.push(0xca);
        out.extend(single.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend(n.to_be_bytes());
    }
}

/// A header of a string, array or map: the fix form below `fix_max`, then 8 (strings only),
/// 16 and 32 bits.
fn encode_header(len: usize, fix: u8, fix_max: usize, codes: [Option<u8>; 3], out: &mut Vec<u8>) {
    let [code8, code16, code32] = codes;
    if len <= fix_max {
        return out.push(fix | len as u8);
    }
    match (len, code8) {
        (0..=0xff, Some(code8)) => out.extend([code8, len as u8]),
        (0..=0xffff, _) => {
            out.push(code16.expect("every header has a 16-bit form"));
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(code32.expect("every header has a 32-bit form"));
            out.extend((len as u32).to_be_bytes());
        }
    }
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    encode_header(
        bytes.len(),
        0xa0,
        31,
        [Some(0xd9), Some(0xda), Some(0xdb)],
        out,
    );
    out.extend_from_slice(bytes);
}

/// Whether the table's keys are exactly 1..n (table_is_an_array).
fn is_array(table: &Table) -> Result<bool> {
    let (mut count, mut max) = (0_u64, 0_u64);
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let n = match key {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(false),
        };
        if n <= 0.0 || f64::from(n as i32) != n {
            return Ok(false);
        }
        max = max.max(n as u64);
        count += 1;
    }
    Ok(max == count)
}

fn encode_table(table: &Table, level: usize, out: &mut Vec<u8>) -> Result<()> {
    if is_array(table)? {
        let len = table.raw_len();
        encode_header(len, 0x90, 15, [None, Some(0xdc), Some(0xdd)], out);
        for i in 1..=len {
            encode_value(&table.get::<Value>(i)?, level + 1, out)?;
        }
        return Ok(());
    }
    let len = table.pairs::<Value, Value>().count();
    encode_header(len, 0x80, 15, [None, Some(0xde), Some(0xdf)], out);
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair?;
        encode_value(&key, level + 1, out)?;
        encode_value(&value, level + 1, out)?;
    }
    Ok(())
}

/// mp_encode_lua_type: one value at nesting `level`.
fn encode_value(value: &Value, level: usize, out: &mut Vec<u8>) -> Result<()> {
    assert!(level <= PACK_NESTING_MAX, "tables past the limit are nil");
    if out.len() > PACKED_BYTES_MAX {
        return fail("MessagePack pack result is too large.");
    }
    match value {
        Value::String(s) => encode_bytes(&s.as_bytes(), out),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(*i as f64, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(t) if level < PACK_NESTING_MAX => encode_table(t, level, out)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn pack(lua: &Lua, values: Variadic<Value>) -> Result<LuaString> {
    if values.is_empty() {
        return fail("bad argument #0 to 'pack' (MessagePack pack needs input.)");
    }
    let mut out = Vec::new();
    for value in values.iter() {
        encode_value(value, 0, &mut out)?;
    }
    assert!(!out.is_empty(), "every value packs to at least one byte");
    lua.create_string(&out)
}

/// Why decoding stopped early: lua-cmsgpack's two cursor errors.
enum Stop {
    Eof,
    BadFormat,
    TooDeep,
    Lua(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Lua(e)
    }
}

/// A cursor over the packed bytes (mp_cur).
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// The next `n` bytes after a header of `skip` bytes; consumes both.
    fn take(&mut self, skip: usize, n: usize) -> std::result::Result<&[u8], Stop> {
        if self.left() < skip + n {
            return Err(Stop::Eof);
        }
        let start = self.at + skip;
        self.at = start + n;
        assert!(self.at <= self.bytes.len());
        Ok(&self.bytes[start..start + n])
    }

    fn be(&mut self, n: usize) -> std::result::Result<u64, Stop> {
        let bytes = self.take(1, n)?;
        Ok(bytes.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn decode(&mut self, lua: &Lua, depth: usize) -> std::result::Result<Value, Stop> {
        if depth > UNPACK_NESTING_MAX {
            return Err(Stop::TooDeep);
        }
        let Some(&code) = self.bytes.get(self.at) else {
            return Err(Stop::Eof);
        };
        let number = |n: f64| -> std::result::Result<Value, Stop> { Ok(Value::Number(n)) };
        match code {
            0xcc..=0xcf => {
                let width = 1 << (code - 0xcc);
                number(self.be(width)? as f64)
            }
            0xd0 => number(f64::from(self.be(1)? as u8 as i8)),
            0xd1 => number(f64::from(self.be(2)? as u16 as i16)),
            0xd2 => number(f64::from(self.be(4)? as u32 as i32)),
            0xd3 => number(self.be(8)? as i64 as f64),
            0xc0 => {
                self.at += 1;
                Ok(Value::Nil)
            }
            0xc2 | 0xc3 => {
                self.at += 1;
                Ok(Value::Boolean(code == 0xc3))
            }
            0xca => number(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => number(f64::from_bits(self.be(8)?)),
            0xd9..=0xdb => {
                let width = 1 << (code - 0xd9);
                let len = self.peek_len(width)?;
                let bytes = self.take(1 + width, len)?;
                Ok(Value::String(lua.create_string(bytes)?))
            }
            0xdc | 0xdd => {
                let len = self.be(2 << (code - 0xdc))? as usize;
                self.array(lua, len, depth)
            }
            0xde | 0xdf => {
                let len = self.be(2 << (code - 0xde))? as usize;
                self.map(lua, len, depth)
            }
            0x00..=0x7f => {
                self.at += 1;
                number(f64::from(code))
            }
            0xe0..=0xff => {
                self.at += 1;
                number(f64::from(code as i8))
            }
            0xa0..=0xbf => {
                let bytes = self.take(1, usize::from(code & 0x1f))?;
                Ok(Value::String(lua.create_string(bytes)?))
            }
            0x90..=0x9f => {
                self.at += 1;
                self.array(lua, usize::from(code & 0xf), depth)
            }
            0x80..=0x8f => {
                self.at += 1;
                self.map(lua, usize::from(code & 0xf), depth)
            }
            _ => Err(Stop::BadFormat),
        }
    }

    /// The length in the `width` bytes after the code, without consuming them.
    fn peek_len(&self, width: usize) -> std::result::Result<usize, Stop> {
        if self.left() < 1 + width {
            return Err(Stop::Eof);
        }
        let bytes = &self.bytes[self.at + 1..self.at + 1 + width];
        Ok(bytes.iter().fold(0, |acc, b| (acc << 8) | usize::from(*b)))
    }

    fn array(&mut self, lua: &Lua, len: usize, depth: usize) -> std::result::Result<Value, Stop> {
        let table = lua.create_table()?;
        for i in 1..=len {
            let value = self.decode(lua, depth + 1)?;
            table.set(i, value)?;
        }
        Ok(Value::Table(table))
    }

    fn map(&mut self, lua: &Lua, len: usize, depth: usize) -> std::result::Result<Value, Stop> {
        let table = lua.create_table()?;
        for _ in 0..len {
            let key = self.decode(lua, depth + 1)?;
            let value = self.decode(lua, depth + 1)?;
            table.set(key, value)?;
        }
        Ok(Value::Table(table))
    }
}

/// mp_unpack_full: decodes up to `limit` values from `offset` (all of them when both are 0);
/// unless decoding all, the next offset (-1 at the end) comes first.
fn unpack(lua: &Lua, packed: &[u8], limit: i64, offset: i64) -> Result<Variadic<Value>> {
    if offset < 0 || limit < 0 {
        return fail(&format!(
            "Invalid request to unpack with offset of {offset} and limit of {}.",
            packed.len()
        ));
    }
    if offset as u64 > packed.len() as u64 {
        return fail(&format!(
            "Start offset {offset} greater than input length {}.",
            packed.len()
        ));
    }
    let decode_all = limit == 0 && offset == 0;
    let limit = if decode_all { i64::MAX } else { limit };
    let mut cursor = Cursor {
        bytes: packed,
        at: offset as usize,
    };
    let mut values = Vec::new();
    while cursor.left() > 0 && (values.len() as i64) < limit {
        match cursor.decode(lua, 0) {
            Ok(value) => values.push(value),
            Err(Stop::Eof) => return fail("Missing bytes in input."),
            Err(Stop::BadFormat) => return fail("Bad data format in input."),
            Err(Stop::TooDeep) => {
                return fail("stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)")
            }
            Err(Stop::Lua(e)) => return Err(e),
        }
    }
    if !decode_all {
        let next = if cursor.left() == 0 {
            -1
        } else {
            cursor.at as i64
        };
        values.insert(0, Value::Number(next as f64));
    }
    Ok(Variadic::from_iter(values))
}

/// Lua's luaL_optinteger for an optional number argument.
fn integer(value: Option<f64>) -> i64 {
    value.map_or(0, |n| n as i64)
}

/// Builds the `cmsgpack` table.
pub(crate) fn library(lua: &Lua) -> Result<Table> {
    let cmsgpack = lua.create_table()?;
    cmsgpack.set("pack", lua.create_function(pack)?)?;
    cmsgpack.set(
        "unpack",
        lua.create_function(|lua, packed: LuaString| unpack(lua, &packed.as_bytes(), 0, 0))?,
    )?;
    cmsgpack.set(
        "unpack_one",
        lua.create_function(|lua, (packed, offset): (LuaString, Option<f64>)| {
            unpack(lua, &packed.as_bytes(), 1, integer(offset))
        })?,
    )?;
    cmsgpack.set(
        "unpack_limit",
        lua.create_function(
            |lua, (packed, limit, offset): (LuaString, f64, Option<f64>)| {
                unpack(lua, &packed.as_bytes(), limit as i64, integer(offset))
            },
        )?,
    )?;
    cmsgpack.set("_NAME", "cmsgpack")?;
    cmsgpack.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    cmsgpack.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    cmsgpack.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(cmsgpack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(lua: &Lua, code: &str) -> Vec<u8> {
        lua.globals()
            .set("cmsgpack", library(lua).unwrap())
            .unwrap();
        let s: LuaString = lua.load(code).eval().unwrap();
        s.as_bytes().to_vec()
    }

    #[test]
    fn numbers_pack_in_lua_cmsgpacks_smallest_forms() {
        let lua = Lua::new();
        assert_eq!(packed(&lua, "return cmsgpack.pack(0.1)")[0], 0xcb);
        assert_eq!(
            packed(&lua, "return cmsgpack.pack(0.5)"),
            [0xca, 0x3f, 0, 0, 0]
        );
        assert_eq!(
            packed(&lua, "return cmsgpack.pack(-1099511627776)"),
            [0xd3, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            packed(&lua, "return cmsgpack.pack(-1, 200)"),
            [0xff, 0xcc, 200]
        );
    }

    #[test]
    fn a_table_with_keys_one_to_n_packs_as_an_array_and_unpacks_back() {
        let lua = Lua::new();
        assert_eq!(
            packed(&lua, "return cmsgpack.pack({1, 'a'})"),
            [0x92, 1, 0xa1, b'a']
        );
        let ok: bool = lua
            .load("local t = cmsgpack.unpack(cmsgpack.pack({x = {1, 2}, y = 'z'})) return t.x[2] == 2 and t.y == 'z'")
            .eval()
            .unwrap();
        assert!(ok);
    }

    #[test]
    fn unpacking_truncated_or_too_deep_input_fails() {
        let lua = Lua::new();
        lua.globals()
            .set("cmsgpack", library(&lua).unwrap())
            .unwrap();
        let truncated = lua.load("return cmsgpack.unpack('\\218\\0\\9ab')").exec();
        assert!(truncated
            .unwrap_err()
            .to_string()
            .contains("Missing bytes in input."));
        let deep = lua
            .load("return cmsgpack.unpack(string.rep('\\145', 5000) .. '\\1')")
            .exec();
        assert!(deep.unwrap_err().to_string().contains("stack overflow"));
    }
}
