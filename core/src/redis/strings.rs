//! Parsing Redis 7.0's string and bit commands (SETRANGE, INCRBYFLOAT, SETBIT, GETBIT,
//! BITCOUNT, BITPOS, BITOP, LCS, RENAMENX, COPY, OBJECT) into a store command and its shape.

use crate::bits::{RangeUnit, BIT_OFFSET_LIMIT};
use crate::redis::args::{parse_db, parse_i64, text, NOT_AN_INTEGER, SYNTAX_ERROR};
use crate::redis::shape::{LcsOptions, ObjectField, Shape};
use crate::{BitOp, Command};

/// One store command and how its reply is shown, or Redis's error.
pub type Parsed = Result<(Command, Shape), String>;

const BIT_OFFSET_ERROR: &str = "ERR bit offset is not an integer or out of range";

/// Parses the string or bit command `name` (upper case) of the table's arity.
pub fn parse_string_command(name: &str, args: &[Vec<u8>]) -> Parsed {
    assert!(
        args.len() >= 2,
        "every string command names a key or a subcommand"
    );
    let key = || args[1].clone();
    let plain = |command| Ok((command, Shape::Plain));
    let get = |shape| Ok((Command::Get { key: key() }, shape));
    match name {
        "SETRANGE" => match parse_i64(&args[2]) {
            None => Err(NOT_AN_INTEGER.into()),
            Some(offset) if offset < 0 => Err("ERR offset is out of range".into()),
            Some(offset) => plain(Command::SetRange {
                key: key(),
                offset: offset.unsigned_abs(),
                value: args[3].clone(),
            }),
        },
        "INCRBYFLOAT" => match crate::strings::parse_float(&args[2]) {
            None => Err("ERR value is not a valid float".into()),
            Some(_) => plain(Command::AddFloat {
                key: key(),
                delta: args[2].clone(),
            }),
        },
        "SETBIT" => plain(Command::SetBit {
            key: key(),
            offset: bit_offset(&args[2])?,
            bit: match parse_i64(&args[3]) {
                Some(bit @ (0 | 1)) => bit == 1,
                _ => return Err("ERR bit is not an integer or out of range".into()),
            },
        }),
        "GETBIT" => get(Shape::GetBit {
            offset: bit_offset(&args[2])?,
        }),
        "BITCOUNT" => get(Shape::BitCount {
            range: parse_range(&args[2..])?,
        }),
        "BITPOS" => get(parse_bitpos(args)?),
        "BITOP" => parse_bitop(args),
        "LCS" => parse_lcs(args),
        "RENAMENX" => plain(Command::RenameIfAbsent {
            from: key(),
            to: args[2].clone(),
        }),
        "COPY" => parse_copy(args),
        "OBJECT" => parse_object(args),
        _ => unreachable!("not a string command: {name}"),
    }
}

fn bit_offset(arg: &[u8]) -> Result<u64, String> {
    match parse_i64(arg) {
        Some(offset) if (0..BIT_OFFSET_LIMIT as i64).contains(&offset) => {
            let offset = offset.unsigned_abs();
            assert!(
                offset < BIT_OFFSET_LIMIT,
                "the offset is inside the value limit"
            );
            Ok(offset)
        }
        _ => Err(BIT_OFFSET_ERROR.into()),
    }
}

/// `[start end [BYTE|BIT]]` of BITCOUNT.
fn parse_range(args: &[Vec<u8>]) -> Result<Option<(i64, i64, RangeUnit)>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    if args.len() == 1 || args.len() > 3 {
        return Err(SYNTAX_ERROR.into());
    }
    assert!(args.len() == 2 || args.len() == 3, "start end [unit]");
    let number = |arg: &[u8]| parse_i64(arg).ok_or_else(|| NOT_AN_INTEGER.to_string());
    let unit = match args.get(2).map(|a| text(a)).as_deref() {
        None | Some("BYTE") => RangeUnit::Byte,
        Some("BIT") => RangeUnit::Bit,
        Some(_) => return Err(SYNTAX_ERROR.into()),
    };
    Ok(Some((number(&args[0])?, number(&args[1])?, unit)))
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`.
fn parse_bitpos(args: &[Vec<u8>]) -> Result<Shape, String> {
    assert!(args.len() >= 3, "BITPOS key bit");
    let bit = match parse_i64(&args[2]) {
        None => return Err(NOT_AN_INTEGER.into()),
        Some(bit @ (0 | 1)) => bit == 1,
        Some(_) => return Err("ERR The bit argument must be 1 or 0.".into()),
    };
    let range = match &args[3..] {
        [] => None,
        [start] => {
            let start = parse_i64(start).ok_or_else(|| NOT_AN_INTEGER.to_string())?;
            Some((start, -1, RangeUnit::Byte))
        }
        rest => parse_range(rest)?,
    };
    let end_given = args.len() > 4;
    Ok(Shape::BitPos {
        bit,
        range,
        end_given,
    })
}

fn parse_bitop(args: &[Vec<u8>]) -> Parsed {
    let op = match text(&args[1]).as_str() {
        "AND" => BitOp::And,
        "OR" => BitOp::Or,
        "XOR" => BitOp::Xor,
        "NOT" => BitOp::Not,
        _ => return Err(SYNTAX_ERROR.into()),
    };
    assert!(args.len() >= 4, "BITOP op dest key");
    let keys = args[3..].to_vec();
    assert!(!keys.is_empty(), "BITOP has a source");
    if op == BitOp::Not && keys.len() != 1 {
        return Err("ERR BITOP NOT must be called with a single source key.".into());
    }
    let dest = args[2].clone();
    Ok((Command::BitOp { op, dest, keys }, Shape::Plain))
}

/// `LCS a b [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`: both values read at one point.
fn parse_lcs(args: &[Vec<u8>]) -> Parsed {
    let mut options = LcsOptions::default();
    let mut rest = args[3..].iter();
    while let Some(option) = rest.next() {
        match text(option).as_str() {
            "LEN" => options.len = true,
            "IDX" => options.idx = true,
            "WITHMATCHLEN" => options.with_match_len = true,
            "MINMATCHLEN" => {
                let n = rest.next().ok_or_else(|| SYNTAX_ERROR.to_string())?;
                let n = parse_i64(n).ok_or_else(|| NOT_AN_INTEGER.to_string())?;
                options.min_match_len = n.max(0).unsigned_abs();
            }
            _ => return Err(SYNTAX_ERROR.into()),
        }
    }
    if options.len && options.idx {
        return Err("ERR If you want both the length and indexes, please just use IDX.".into());
    }
    let keys = args[1..3].to_vec();
    assert_eq!(keys.len(), 2, "LCS compares two keys");
    Ok((Command::MultiGet { keys }, Shape::Lcs(options)))
}

/// `COPY source destination [DB n] [REPLACE]`.
fn parse_copy(args: &[Vec<u8>]) -> Parsed {
    let (mut to_db, mut replace) = (None, false);
    let mut rest = args[3..].iter();
    while let Some(option) = rest.next() {
        match (text(option).as_str(), rest.len()) {
            ("REPLACE", _) => replace = true,
            ("DB", 1..) => to_db = Some(parse_db(rest.next().expect("counted"), NOT_AN_INTEGER)?),
            _ => return Err(SYNTAX_ERROR.into()),
        }
    }
    let (from, to) = (args[1].clone(), args[2].clone());
    let copy = Command::Copy {
        from,
        to,
        to_db,
        replace,
    };
    Ok((copy, Shape::Plain))
}

/// `OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key` and `OBJECT HELP` (a read of nothing, shown
/// as the help text).
fn parse_object(args: &[Vec<u8>]) -> Parsed {
    let sub = text(&args[1]);
    let field = match (sub.as_str(), args.len()) {
        ("HELP", 2) => ObjectField::Help,
        ("ENCODING", 3) => ObjectField::Encoding,
        ("REFCOUNT", 3) => ObjectField::RefCount,
        ("IDLETIME", 3) => ObjectField::IdleTime,
        ("FREQ", 3) => ObjectField::Freq,
        _ => {
            return Err(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try OBJECT HELP.",
                String::from_utf8_lossy(&args[1])
            ))
        }
    };
    assert!(
        (field == ObjectField::Help) == (args.len() == 2),
        "every subcommand but HELP names a key"
    );
    let key = args.get(2).cloned().unwrap_or_default();
    Ok((Command::Describe { key }, Shape::Object(field)))
}
