//! Parsing Redis 7.0's sorted-set commands into store commands, and showing their replies.
//!
//! The blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) never wait: the store answers at once, so
//! one that finds nothing answers as its timeout would (a null array).

use crate::command::AddOptions;
use crate::command::SetCondition;
use crate::kv::ValueKind;
use crate::redis::args::{parse_i64, text, NOT_AN_INTEGER, SYNTAX_ERROR};
use crate::redis::shape::{Shape, ZsetShape};
use crate::scores::{self, Aggregate, Compare, LexBound, Range, RangeSpec, Score, ScoredMember};
use crate::{Command, SetOp};

type Parsed = Result<(Command, Shape), String>;

const NOT_A_FLOAT: &str = "ERR value is not a valid float";

fn plain(command: Command) -> Parsed {
    Ok((command, Shape::Plain))
}

fn zshaped(command: Command, shape: ZsetShape) -> Parsed {
    Ok((command, Shape::Zset(shape)))
}

/// Whether `name` (upper case) is a sorted-set command.
pub fn is_zset_command(name: &str) -> bool {
    name.starts_with('Z') || matches!(name, "BZPOPMIN" | "BZPOPMAX" | "BZMPOP")
}

/// Parses the sorted-set command `name` (upper case) of the table's arity.
pub fn parse_zset_command(name: &str, args: &[Vec<u8>]) -> Parsed {
    let key = || args[1].clone();
    match name {
        "ZADD" => parse_add(args),
        "ZINCRBY" => {
            let score = scores::parse_score(&args[2]).ok_or(NOT_A_FLOAT)?;
            let options = AddOptions {
                condition: SetCondition::Always,
                compare: None,
                changed: false,
                increment: true,
            };
            let member = args[3].clone();
            let members = vec![ScoredMember { score, member }];
            zshaped(
                Command::ZsetAdd {
                    key: key(),
                    members,
                    options,
                },
                ZsetShape::Score,
            )
        }
        "ZREM" => plain(Command::ZsetRemove {
            key: key(),
            members: args[2..].to_vec(),
        }),
        "ZCARD" => plain(Command::Cardinality {
            key: key(),
            kind: ValueKind::SortedSet,
        }),
        "ZSCORE" | "ZMSCORE" => zshaped(
            Command::ZsetScores {
                key: key(),
                members: args[2..].to_vec(),
            },
            if name == "ZSCORE" {
                ZsetShape::Score
            } else {
                ZsetShape::Scores
            },
        ),
        "ZRANK" | "ZREVRANK" => plain(Command::ZsetRank {
            key: key(),
            member: args[2].clone(),
            rev: name == "ZREVRANK",
        }),
        "ZCOUNT" | "ZLEXCOUNT" => {
            let range = match name {
                "ZCOUNT" => score_range(&args[2], &args[3])?,
                _ => lex_range(&args[2], &args[3])?,
            };
            let spec = RangeSpec {
                range,
                rev: false,
                limit: None,
            };
            zshaped(
                Command::ZsetRange {
                    key: key(),
                    spec: Box::new(spec),
                },
                ZsetShape::Count { limit: 0 },
            )
        }
        "ZREMRANGEBYRANK" | "ZREMRANGEBYSCORE" | "ZREMRANGEBYLEX" => {
            let range = match name {
                "ZREMRANGEBYRANK" => rank_range(&args[2], &args[3])?,
                "ZREMRANGEBYSCORE" => score_range(&args[2], &args[3])?,
                _ => lex_range(&args[2], &args[3])?,
            };
            plain(Command::ZsetRemoveRange {
                key: key(),
                range: Box::new(range),
            })
        }
        "ZRANGE" | "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" | "ZRANGEBYLEX" | "ZREVRANGEBYLEX"
        | "ZREVRANGE" | "ZRANGESTORE" => parse_range(name, args),
        "ZSCAN" => {
            let all = Command::ZsetRange {
                key: key(),
                spec: Box::new(RangeSpec::all()),
            };
            crate::redis::collections::parse_scan(all, args)
        }
        "ZRANDMEMBER" => {
            let with_scores = args.len() == 4 && text(&args[3]) == "WITHSCORES";
            if args.len() > 4 || (args.len() == 4 && !with_scores) {
                return Err(SYNTAX_ERROR.into());
            }
            let all = Command::ZsetRange {
                key: key(),
                spec: Box::new(RangeSpec::all()),
            };
            let args = &args[..args.len().min(3)];
            crate::redis::collections::parse_random(all, args, with_scores)
        }
        "ZPOPMIN" | "ZPOPMAX" => parse_pop(name, args),
        "BZPOPMIN" | "BZPOPMAX" => {
            parse_timeout(&args[args.len() - 1])?;
            let keys = args[1..args.len() - 1].to_vec();
            let command = Command::ZsetPop {
                keys,
                max: name == "BZPOPMAX",
                count: None,
            };
            zshaped(command, ZsetShape::BlockingPop)
        }
        "ZMPOP" => parse_multi_pop(args, 1),
        "BZMPOP" => {
            parse_timeout(&args[1])?;
            parse_multi_pop(args, 2)
        }
        "ZUNIONSTORE" | "ZINTERSTORE" | "ZDIFFSTORE" | "ZUNION" | "ZINTER" | "ZDIFF" => {
            parse_combine(name, args)
        }
        "ZINTERCARD" => parse_intercard(args),
        _ => unreachable!("not a sorted-set command: {name}"),
    }
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`.
fn parse_add(args: &[Vec<u8>]) -> Parsed {
    let mut options = AddOptions {
        condition: SetCondition::Always,
        compare: None,
        changed: false,
        increment: false,
    };
    let (mut nx, mut xx) = (false, false);
    let mut at = 2;
    while let Some(arg) = args.get(at) {
        match text(arg).as_str() {
            "NX" => nx = true,
            "XX" => xx = true,
            "GT" if options.compare != Some(Compare::Less) => {
                options.compare = Some(Compare::Greater)
            }
            "LT" if options.compare != Some(Compare::Greater) => {
                options.compare = Some(Compare::Less)
            }
            "GT" | "LT" => return Err(GT_LT_NX.into()),
            "CH" => options.changed = true,
            "INCR" => options.increment = true,
            _ => break,
        }
        at += 1;
    }
    let pairs = &args[at..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(SYNTAX_ERROR.into());
    }
    if nx && xx {
        return Err("ERR XX and NX options at the same time are not compatible".into());
    }
    if nx && options.compare.is_some() {
        return Err(GT_LT_NX.into());
    }
    if options.increment && pairs.len() > 2 {
        return Err("ERR INCR option supports a single increment-element pair".into());
    }
    options.condition = match (nx, xx) {
        (true, _) => SetCondition::IfAbsent,
        (_, true) => SetCondition::IfPresent,
        _ => SetCondition::Always,
    };
    let members = (pairs.chunks_exact(2))
        .map(|p| {
            let score = scores::parse_score(&p[0]).ok_or(NOT_A_FLOAT)?;
            Ok(ScoredMember {
                score,
                member: p[1].clone(),
            })
        })
        .collect::<Result<Vec<_>, &str>>()?;
    assert_eq!(members.len() * 2, pairs.len(), "one member per pair");
    zshaped(
        Command::ZsetAdd {
            key: args[1].clone(),
            members,
            options,
        },
        ZsetShape::Score,
    )
}

const GT_LT_NX: &str = "ERR GT, LT, and/or NX options at the same time are not compatible";

fn rank_range(start: &[u8], stop: &[u8]) -> Result<Range, String> {
    match (parse_i64(start), parse_i64(stop)) {
        (Some(start), Some(stop)) => Ok(Range::Rank { start, stop }),
        _ => Err(NOT_AN_INTEGER.into()),
    }
}

fn score_range(min: &[u8], max: &[u8]) -> Result<Range, String> {
    let min = scores::parse_score_bound(min)?;
    let max = scores::parse_score_bound(max)?;
    Ok(Range::Score { min, max })
}

fn lex_range(min: &[u8], max: &[u8]) -> Result<Range, String> {
    let min: LexBound = scores::parse_lex_bound(min)?;
    let max: LexBound = scores::parse_lex_bound(max)?;
    Ok(Range::Lex { min, max })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// ZRANGE and its family, as Redis 7.0's `zrangeGenericCommand` reads them.
fn parse_range(name: &str, args: &[Vec<u8>]) -> Parsed {
    let store = name == "ZRANGESTORE";
    let first = if store { 2 } else { 1 };
    let (mut by, mut rev) = match name {
        "ZRANGEBYSCORE" => (Some(By::Score), Some(false)),
        "ZREVRANGEBYSCORE" => (Some(By::Score), Some(true)),
        "ZRANGEBYLEX" => (Some(By::Lex), Some(false)),
        "ZREVRANGEBYLEX" => (Some(By::Lex), Some(true)),
        "ZREVRANGE" => (Some(By::Rank), Some(true)),
        _ => (None, None),
    };
    let (mut with_scores, mut limit) = (false, None);
    let mut at = first + 3;
    while at < args.len() {
        let left = args.len() - at - 1;
        match text(&args[at]).as_str() {
            "WITHSCORES" if !store => with_scores = true,
            "LIMIT" if left >= 2 => {
                match (parse_i64(&args[at + 1]), parse_i64(&args[at + 2])) {
                    (Some(offset), Some(count)) => limit = Some((offset, count)),
                    _ => return Err(NOT_AN_INTEGER.into()),
                }
                at += 2;
            }
            "REV" if rev.is_none() => rev = Some(true),
            "BYLEX" if by.is_none() => by = Some(By::Lex),
            "BYSCORE" if by.is_none() => by = Some(By::Score),
            _ => return Err(SYNTAX_ERROR.into()),
        }
        at += 1;
    }
    let (by, rev) = (by.unwrap_or(By::Rank), rev.unwrap_or(false));
    if limit.is_some() && by == By::Rank {
        return Err(
            "ERR syntax error, LIMIT is only supported in combination with either \
                    BYSCORE or BYLEX"
                .into(),
        );
    }
    if with_scores && by == By::Lex {
        return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX".into());
    }
    let (mut low, mut high) = (&args[first + 1], &args[first + 2]);
    if rev && by != By::Rank {
        std::mem::swap(&mut low, &mut high);
    }
    let range = match by {
        By::Rank => rank_range(low, high)?,
        By::Score => score_range(low, high)?,
        By::Lex => lex_range(low, high)?,
    };
    let spec = RangeSpec { range, rev, limit };
    assert!(
        spec.limit.is_none() || by != By::Rank,
        "LIMIT only by score or lex"
    );
    match store {
        true => plain(Command::ZsetRangeStore {
            dest: args[1].clone(),
            key: args[2].clone(),
            spec: Box::new(spec),
        }),
        false => zshaped(
            Command::ZsetRange {
                key: args[1].clone(),
                spec: Box::new(spec),
            },
            ZsetShape::Members { with_scores },
        ),
    }
}

/// `ZPOPMIN|ZPOPMAX key [count]`.
fn parse_pop(name: &str, args: &[Vec<u8>]) -> Parsed {
    if args.len() > 3 {
        return Err(SYNTAX_ERROR.into());
    }
    let count = match args.get(2).map(|c| parse_i64(c)) {
        None => None,
        Some(Some(n)) if n >= 0 => Some(n.unsigned_abs()),
        Some(Some(_)) => return Err("ERR value is out of range, must be positive".into()),
        Some(None) => return Err(NOT_AN_INTEGER.into()),
    };
    let counted = count.is_some();
    let command = Command::ZsetPop {
        keys: vec![args[1].clone()],
        max: name == "ZPOPMAX",
        count,
    };
    zshaped(command, ZsetShape::Pop { counted })
}

/// A blocking pop's timeout in seconds: a float, not negative.
fn parse_timeout(arg: &[u8]) -> Result<(), String> {
    match crate::strings::parse_float(arg) {
        Some(t) if t < 0.0 => Err("ERR timeout is negative".into()),
        Some(t) if t.is_finite() => Ok(()),
        _ => Err("ERR timeout is not a float or out of range".into()),
    }
}

/// ZMPOP's `numkeys key [key ...]` at `at`: the keys, or Redis's error.
fn numbered_keys(args: &[Vec<u8>], at: usize) -> Result<Vec<Vec<u8>>, String> {
    let numkeys = match parse_i64(&args[at]) {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => return Err("ERR numkeys should be greater than 0".into()),
    };
    if numkeys > args.len() - at - 1 {
        return Err(SYNTAX_ERROR.into());
    }
    Ok(args[at + 1..at + 1 + numkeys].to_vec())
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]` (BZMPOP's after its timeout).
fn parse_multi_pop(args: &[Vec<u8>], numkeys_at: usize) -> Parsed {
    let keys = numbered_keys(args, numkeys_at)?;
    let where_at = numkeys_at + keys.len() + 1;
    let max = match args.get(where_at).map(|w| text(w)).as_deref() {
        Some("MIN") => false,
        Some("MAX") => true,
        _ => return Err(SYNTAX_ERROR.into()),
    };
    let mut count = None;
    let mut at = where_at + 1;
    while at < args.len() {
        match (text(&args[at]).as_str(), args.get(at + 1)) {
            ("COUNT", Some(n)) if count.is_none() => match parse_i64(n) {
                Some(n) if n > 0 => count = Some(n.unsigned_abs()),
                _ => return Err("ERR count should be greater than 0".into()),
            },
            _ => return Err(SYNTAX_ERROR.into()),
        }
        at += 2;
    }
    let count = Some(count.unwrap_or(1));
    assert!(count >= Some(1), "ZMPOP pops at least one");
    zshaped(Command::ZsetPop { keys, max, count }, ZsetShape::MultiPop)
}

/// The `numkeys key [key ...]` at `at` of ZUNION and its kin (`name`): the keys, or Redis's
/// error.
fn combined_keys(name: &str, args: &[Vec<u8>], at: usize) -> Result<Vec<Vec<u8>>, String> {
    let numkeys = parse_i64(&args[at]).ok_or(NOT_AN_INTEGER)?;
    if numkeys < 1 {
        let name = name.to_lowercase();
        return Err(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - at - 1 {
        return Err(SYNTAX_ERROR.into());
    }
    let keys = args[at + 1..at + 1 + numkeys].to_vec();
    assert!(!keys.is_empty() && keys.len() == numkeys, "numkeys keys");
    Ok(keys)
}

/// `ZUNION|ZINTER|ZDIFF[STORE] [dest] numkeys key ... [WEIGHTS w ...] [AGGREGATE a] [WITHSCORES]`.
fn parse_combine(name: &str, args: &[Vec<u8>]) -> Parsed {
    let store = name.ends_with("STORE");
    let op = match name.trim_end_matches("STORE") {
        "ZUNION" => SetOp::Union,
        "ZINTER" => SetOp::Inter,
        _ => SetOp::Diff,
    };
    let numkeys_at = if store { 2 } else { 1 };
    let keys = combined_keys(name, args, numkeys_at)?;
    let numkeys = keys.len();
    let (mut weights, mut aggregate, mut with_scores) = (vec![], Aggregate::Sum, false);
    let mut at = numkeys_at + 1 + numkeys;
    while at < args.len() {
        let left = args.len() - at - 1;
        match text(&args[at]).as_str() {
            "WEIGHTS" if op != SetOp::Diff && left >= numkeys => {
                weights = (args[at + 1..at + 1 + numkeys].iter())
                    .map(|w| scores::parse_score(w).ok_or("ERR weight value is not a float"))
                    .collect::<Result<Vec<Score>, &str>>()?;
                at += numkeys;
            }
            "AGGREGATE" if op != SetOp::Diff && left >= 1 => {
                aggregate = match text(&args[at + 1]).as_str() {
                    "SUM" => Aggregate::Sum,
                    "MIN" => Aggregate::Min,
                    "MAX" => Aggregate::Max,
                    _ => return Err(SYNTAX_ERROR.into()),
                };
                at += 1;
            }
            "WITHSCORES" if !store => with_scores = true,
            _ => return Err(SYNTAX_ERROR.into()),
        }
        at += 1;
    }
    match store {
        true => plain(Command::ZsetStore {
            op,
            dest: args[1].clone(),
            keys,
            weights,
            aggregate,
        }),
        false => zshaped(
            Command::ZsetCombine {
                op,
                keys,
                weights,
                aggregate,
            },
            ZsetShape::Members { with_scores },
        ),
    }
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`.
fn parse_intercard(args: &[Vec<u8>]) -> Parsed {
    let keys = combined_keys("ZINTERCARD", args, 1)?;
    let limit = crate::redis::collections::parse_card_limit(&args[2 + keys.len()..])?;
    let command = Command::ZsetCombine {
        op: SetOp::Inter,
        keys,
        weights: vec![],
        aggregate: Aggregate::Sum,
    };
    zshaped(command, ZsetShape::Count { limit })
}
