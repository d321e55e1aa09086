//! Parsing the expiry commands: SET's EX/PX/EXAT/PXAT/KEEPTTL, SETEX, PSETEX, GETEX,
//! EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with NX/XX/GT/LT, PERSIST and the TTL family, with
//! Redis 7.0's errors. Relative times stay relative: the log entry that applies them adds its
//! own time (see `kv::expiry`).

use crate::redis::args::{parse_i64, text, NOT_AN_INTEGER, SYNTAX_ERROR};
use crate::{Command, Deadline, ExpireCondition, ExpireName, SetCondition, TtlChange, TtlUnit};

fn invalid_expire_time(command: &str) -> String {
    format!("ERR invalid expire time in '{command}' command")
}

/// A SET/GETEX/SETEX time argument (`seconds` or milliseconds; `absolute` for EXAT/PXAT):
/// positive, and in milliseconds without overflow.
fn option_deadline(
    arg: &[u8],
    seconds: bool,
    absolute: bool,
    command: &str,
) -> Result<Deadline, String> {
    let value = parse_i64(arg).ok_or(NOT_AN_INTEGER)?;
    if value <= 0 || (seconds && value > i64::MAX / 1000) {
        return Err(invalid_expire_time(command));
    }
    let ms = if seconds { value * 1000 } else { value };
    assert!(ms > 0, "a checked deadline is positive");
    Ok(match absolute {
        true => Deadline::At { ms },
        false => Deadline::In { ms },
    })
}

/// Reads `EX n | PX n | EXAT n | PXAT n` at `args[i]` (the option name upper-cased in `option`).
fn time_option(option: &str, value: Option<&Vec<u8>>, command: &str) -> Result<Deadline, String> {
    let value = value.ok_or(SYNTAX_ERROR)?;
    match option {
        "EX" => option_deadline(value, true, false, command),
        "PX" => option_deadline(value, false, false, command),
        "EXAT" => option_deadline(value, true, true, command),
        _ => option_deadline(value, false, true, command),
    }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
pub fn parse_set(args: &[Vec<u8>]) -> Result<Command, String> {
    let (mut condition, mut get) = (SetCondition::Always, false);
    let mut ttl = TtlChange::Clear;
    let mut i = 3;
    while i < args.len() {
        let option = text(&args[i]);
        match (option.as_str(), condition, ttl) {
            ("NX", SetCondition::Always | SetCondition::IfAbsent, _) => {
                condition = SetCondition::IfAbsent
            }
            ("XX", SetCondition::Always | SetCondition::IfPresent, _) => {
                condition = SetCondition::IfPresent
            }
            ("GET", _, _) => get = true,
            ("KEEPTTL", _, TtlChange::Clear | TtlChange::Keep) => ttl = TtlChange::Keep,
            ("EX" | "PX" | "EXAT" | "PXAT", _, TtlChange::Clear) if i + 1 < args.len() => {
                ttl = TtlChange::Set(time_option(&option, args.get(i + 1), "set")?);
                i += 1;
            }
            _ => return Err(SYNTAX_ERROR.into()),
        }
        i += 1;
    }
    assert_eq!(i, args.len(), "every option read");
    Ok(set_command(args, condition, get, ttl))
}

fn set_command(args: &[Vec<u8>], condition: SetCondition, get: bool, ttl: TtlChange) -> Command {
    let (key, value) = (args[1].clone(), args[2].clone());
    match ttl {
        TtlChange::Clear => Command::SetIf {
            key,
            value,
            condition,
            get,
        },
        ttl => Command::SetExpiring {
            key,
            value,
            condition,
            get,
            ttl,
        },
    }
}

/// `SETEX key seconds value`, `PSETEX key ms value`.
pub fn parse_setex(name: &str, args: &[Vec<u8>]) -> Result<Command, String> {
    let seconds = name == "SETEX";
    let deadline = option_deadline(&args[2], seconds, false, &name.to_lowercase())?;
    Ok(Command::SetExpiring {
        key: args[1].clone(),
        value: args[3].clone(),
        condition: SetCondition::Always,
        get: false,
        ttl: TtlChange::Set(deadline),
    })
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`; without an option it is a GET.
pub fn parse_getex(args: &[Vec<u8>]) -> Result<Command, String> {
    let key = args[1].clone();
    let option = args.get(2).map(|a| text(a));
    let ttl = match (option.as_deref(), args.len()) {
        (None, _) => return Ok(Command::Get { key }),
        (Some("PERSIST"), 3) => TtlChange::Clear,
        (Some(o @ ("EX" | "PX" | "EXAT" | "PXAT")), 4) => {
            TtlChange::Set(time_option(o, args.get(3), "getex")?)
        }
        _ => return Err(SYNTAX_ERROR.into()),
    };
    Ok(Command::GetEx { key, ttl })
}

/// `EXPIRE key n [NX|XX|GT|LT]` and PEXPIRE, EXPIREAT, PEXPIREAT.
pub fn parse_expire(name: &str, args: &[Vec<u8>]) -> Result<Command, String> {
    let condition = expire_condition(&args[3..])?;
    let (expire_name, seconds, absolute) = match name {
        "EXPIRE" => (ExpireName::Expire, true, false),
        "PEXPIRE" => (ExpireName::PExpire, false, false),
        "EXPIREAT" => (ExpireName::ExpireAt, true, true),
        _ => (ExpireName::PExpireAt, false, true),
    };
    let value = parse_i64(&args[2]).ok_or(NOT_AN_INTEGER)?;
    if seconds && !(i64::MIN / 1000..=i64::MAX / 1000).contains(&value) {
        return Err(invalid_expire_time(expire_name.as_str()));
    }
    let ms = if seconds { value * 1000 } else { value };
    assert!(
        !seconds || ms / 1000 == value,
        "seconds convert without overflow"
    );
    let deadline = match absolute {
        true => Deadline::At { ms },
        false => Deadline::In { ms },
    };
    Ok(Command::Expire {
        key: args[1].clone(),
        deadline,
        condition,
        name: expire_name,
    })
}

/// EXPIRE's options, with Redis's errors for the combinations it refuses.
fn expire_condition(options: &[Vec<u8>]) -> Result<ExpireCondition, String> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in options {
        match text(option).as_str() {
            "NX" => nx = true,
            "XX" => xx = true,
            "GT" => gt = true,
            "LT" => lt = true,
            _ => {
                let shown = String::from_utf8_lossy(option);
                return Err(format!("ERR Unsupported option {shown}"));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if gt && lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    assert!(!(nx && (xx || gt || lt)) && !(gt && lt), "refused above");
    // GT never holds without a deadline (none counts as infinite), so XX adds nothing to it.
    Ok(match (nx, xx, gt, lt) {
        (true, ..) => ExpireCondition::NoDeadline,
        (_, _, true, _) => ExpireCondition::Later,
        (_, true, _, true) => ExpireCondition::EarlierWithDeadline,
        (_, _, _, true) => ExpireCondition::Earlier,
        (_, true, ..) => ExpireCondition::HasDeadline,
        _ => ExpireCondition::Always,
    })
}

/// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`.
pub fn parse_ttl(name: &str, args: &[Vec<u8>]) -> Command {
    let unit = match name {
        "TTL" => TtlUnit::Seconds,
        "PTTL" => TtlUnit::Millis,
        "EXPIRETIME" => TtlUnit::UnixSeconds,
        _ => TtlUnit::UnixMillis,
    };
    Command::TimeToLive {
        key: args[1].clone(),
        unit,
    }
}
