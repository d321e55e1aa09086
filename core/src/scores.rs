//! Sorted-set scores and ranges as Redis 7.0 reads and writes them: a score is an `f64` that is
//! never NaN (and never negative zero: `-0` is stored as `0`, so equal scores have equal
//! bits), printed as C's `%.17g` (integers below 2^52 without a point, `inf`, `-inf`).
//! Ranges by rank, score and member (lex) with REV and LIMIT select from a set already in
//! (score, member) order. Pure functions: the state machine and the parser share them.

use serde::{Deserialize, Serialize};

/// A score: an `f64` that is neither NaN nor negative zero, ordered by value.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Score(f64);

impl Score {
    /// `value` as a score (`-0` becomes `0`), or `None` for NaN.
    pub fn new(value: f64) -> Option<Score> {
        if value.is_nan() {
            return None;
        }
        let score = Score(if value == 0.0 { 0.0 } else { value });
        assert!(score.0.to_bits() != (-0.0f64).to_bits(), "no negative zero");
        Some(score)
    }

    pub fn value(self) -> f64 {
        self.0
    }

    /// A decoded score, checked: a NaN or negative zero in an image is refused.
    pub fn checked(self) -> Result<Score, String> {
        match Score::new(self.0) {
            Some(s) if s.0.to_bits() == self.0.to_bits() => Ok(s),
            _ => Err(format!("score {} is not allowed", self.0)),
        }
    }

    /// The score as Redis 7.0 replies it (`%.17g`).
    pub fn text(self) -> Vec<u8> {
        format_score(self.0).into_bytes()
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Score {}

impl std::hash::Hash for Score {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> std::cmp::Ordering {
        // Without NaN and negative zero, the total order is the order of values.
        self.0.total_cmp(&other.0)
    }
}

/// A score argument (ZADD, ZINCRBY, a weight): a decimal or `inf`, `+inf`, `-inf`; no
/// leading space, no NaN.
pub fn parse_score(text: &[u8]) -> Option<Score> {
    crate::float::parse_float(text).and_then(Score::new)
}

/// C's `printf("%.17g")`, as Redis 7.0's `addReplyDouble` prints a score in every reply
/// (`inf` and `-inf` for the infinities).
pub fn format_score(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    assert!(!value.is_nan(), "a score is never NaN");
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let scientific = format!("{value:.16e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    if !(-4..17).contains(&exponent) {
        let mantissa = trim_fraction(mantissa);
        assert!(!mantissa.is_empty(), "a mantissa has digits");
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs());
    }
    let decimals = usize::try_from(16 - exponent).expect("exponent below 17");
    let text = trim_fraction(&format!("{value:.decimals$}")).to_string();
    assert_eq!(
        text.parse::<f64>().ok(),
        Some(value),
        "17 digits read back the same"
    );
    text
}

/// `text` without trailing zeros after a point, nor a trailing point.
fn trim_fraction(text: &str) -> &str {
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.'),
        false => text,
    }
}

/// One end of a score range: `(` before the number makes it exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScoreBound {
    pub score: Score,
    pub exclusive: bool,
}

/// One end of a member (lex) range: `-`, `+`, `[member` or `(member`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LexBound {
    Lowest,
    Highest,
    Inclusive(#[serde(with = "serde_bytes")] Vec<u8>),
    Exclusive(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// Which elements a range names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Range {
    /// Ranks `start..=stop`, negative ones counted from the end (Redis's rules).
    Rank {
        start: i64,
        stop: i64,
    },
    Score {
        min: ScoreBound,
        max: ScoreBound,
    },
    Lex {
        min: LexBound,
        max: LexBound,
    },
}

/// A range with ZRANGE's REV and LIMIT (offset, count; a negative count means all).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RangeSpec {
    pub range: Range,
    pub rev: bool,
    pub limit: Option<(i64, i64)>,
}

impl RangeSpec {
    /// Every element, lowest first.
    pub fn all() -> RangeSpec {
        RangeSpec {
            range: Range::Rank { start: 0, stop: -1 },
            rev: false,
            limit: None,
        }
    }
}

/// A member with its score, as ZADD gives them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScoredMember {
    pub score: Score,
    #[serde(with = "serde_bytes")]
    pub member: Vec<u8>,
}

/// ZADD's GT and LT: an existing member's score changes only upwards or only downwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Compare {
    Greater,
    Less,
}

/// How ZUNION and ZINTER combine a member's scores from several sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// `a` and `b` combined (a sum of `inf` and `-inf` is 0, as in Redis).
    pub fn apply(self, a: Score, b: Score) -> Score {
        match self {
            Aggregate::Sum => Score::new(a.0 + b.0).unwrap_or(Score(0.0)),
            Aggregate::Min => a.min(b),
            Aggregate::Max => a.max(b),
        }
    }
}

/// `score` times `weight` (0 times an infinity is 0, as in Redis).
pub fn weighted(score: Score, weight: Score) -> Score {
    Score::new(score.0 * weight.0).unwrap_or(Score(0.0))
}

/// Redis's error for a score range end that is no number.
pub const MIN_MAX_NOT_FLOAT: &str = "ERR min or max is not a float";
/// Redis's error for a lex range end of another form.
pub const MIN_MAX_NOT_LEX: &str = "ERR min or max not valid string range item";

/// A score range end as ZRANGEBYSCORE reads it.
pub fn parse_score_bound(text: &[u8]) -> Result<ScoreBound, &'static str> {
    let (exclusive, number) = match text.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, text),
    };
    let score = parse_score(number).ok_or(MIN_MAX_NOT_FLOAT)?;
    Ok(ScoreBound { score, exclusive })
}

/// A lex range end as ZRANGEBYLEX reads it.
pub fn parse_lex_bound(text: &[u8]) -> Result<LexBound, &'static str> {
    match text.split_first() {
        Some((b'-', [])) => Ok(LexBound::Lowest),
        Some((b'+', [])) => Ok(LexBound::Highest),
        Some((b'[', rest)) => Ok(LexBound::Inclusive(rest.to_vec())),
        Some((b'(', rest)) => Ok(LexBound::Exclusive(rest.to_vec())),
        _ => Err(MIN_MAX_NOT_LEX),
    }
}

impl ScoreBound {
    fn below_or_at(&self, score: Score) -> bool {
        match self.exclusive {
            true => self.score < score,
            false => self.score <= score,
        }
    }

    fn above_or_at(&self, score: Score) -> bool {
        match self.exclusive {
            true => score < self.score,
            false => score <= self.score,
        }
    }
}

impl LexBound {
    fn below_or_at(&self, member: &[u8]) -> bool {
        match self {
            LexBound::Lowest => true,
            LexBound::Highest => false,
            LexBound::Inclusive(m) => m.as_slice() <= member,
            LexBound::Exclusive(m) => m.as_slice() < member,
        }
    }

    fn above_or_at(&self, member: &[u8]) -> bool {
        match self {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(m) => member <= m.as_slice(),
            LexBound::Exclusive(m) => member < m.as_slice(),
        }
    }
}

/// The ranks `start..=stop` of `len` elements name, by Redis's rules, or `None` if none.
fn rank_bounds(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).expect("a length fits in i64");
    let from_end = |i: i64| if i < 0 { i.saturating_add(len) } else { i };
    let (start, stop) = (from_end(start).max(0), from_end(stop));
    if start > stop || start >= len {
        return None;
    }
    let stop = stop.min(len - 1);
    assert!(
        0 <= start && start <= stop && stop < len,
        "ranks inside the set"
    );
    Some((start as usize, stop as usize))
}

/// The elements of `ascending` (in (score, member) order) that `spec` selects, in reply
/// order (highest first with REV).
pub fn select<'a, T>(ascending: &'a [(T, Score)], spec: &RangeSpec) -> Vec<&'a (T, Score)>
where
    T: AsRef<[u8]>,
{
    let ordered: Box<dyn Iterator<Item = &'a (T, Score)>> = match spec.rev {
        true => Box::new(ascending.iter().rev()),
        false => Box::new(ascending.iter()),
    };
    let selected: Vec<&(T, Score)> = match &spec.range {
        Range::Rank { start, stop } => match rank_bounds(*start, *stop, ascending.len()) {
            Some((first, last)) => ordered.skip(first).take(last - first + 1).collect(),
            None => vec![],
        },
        Range::Score { min, max } => ordered
            .filter(|(_, s)| min.below_or_at(*s) && max.above_or_at(*s))
            .collect(),
        Range::Lex { min, max } => ordered
            .filter(|(m, _)| min.below_or_at(m.as_ref()) && max.above_or_at(m.as_ref()))
            .collect(),
    };
    let limited: Vec<&(T, Score)> = match spec.limit {
        None => selected,
        Some((offset, _)) if offset < 0 => vec![],
        Some((offset, count)) => {
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            let offset = usize::try_from(offset).expect("a nonnegative offset");
            selected.into_iter().skip(offset).take(count).collect()
        }
    };
    assert!(
        limited.len() <= ascending.len(),
        "a range selects no more than the set"
    );
    limited
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(v: f64) -> Score {
        Score::new(v).unwrap()
    }

    #[test]
    fn scores_print_as_redis_7_0_prints_them() {
        let cases: [(f64, &str); 14] = [
            (1.0, "1"),
            (-3.0, "-3"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1.1, "1.1000000000000001"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1e17, "1e+17"),
            (1.5e-5, "1.5e-05"),
            (123456789.125, "123456789.125"),
            (0.0001, "0.0001"),
            (3.0e15, "3000000000000000"),
            (9.881_312_916_824_93e-323, "9.8813129168249309e-323"),
            (-2.5e300, "-2.5000000000000001e+300"),
        ];
        for (value, text) in cases {
            assert_eq!(format_score(value), text, "{value}");
        }
    }

    #[test]
    fn negative_zero_and_nan_are_no_scores() {
        assert_eq!(
            Score::new(-0.0).unwrap().value().to_bits(),
            0.0f64.to_bits()
        );
        assert!(Score::new(f64::NAN).is_none());
        assert!(parse_score(b"nan").is_none());
        assert!(parse_score(b" 1").is_none());
        assert_eq!(parse_score(b"-inf"), Some(score(f64::NEG_INFINITY)));
    }

    #[test]
    fn range_ends_parse_as_redis_reads_them() {
        assert_eq!(
            parse_score_bound(b"(1.5"),
            Ok(ScoreBound {
                score: score(1.5),
                exclusive: true
            })
        );
        assert_eq!(parse_score_bound(b"x"), Err(MIN_MAX_NOT_FLOAT));
        assert_eq!(parse_lex_bound(b"-"), Ok(LexBound::Lowest));
        assert_eq!(
            parse_lex_bound(b"[a"),
            Ok(LexBound::Inclusive(b"a".to_vec()))
        );
        assert_eq!(parse_lex_bound(b"a"), Err(MIN_MAX_NOT_LEX));
    }

    #[test]
    fn select_follows_rank_score_lex_rev_and_limit() {
        let set: Vec<(Vec<u8>, Score)> = (1..=5)
            .map(|i| (vec![b'a' + i as u8], score(f64::from(i))))
            .collect();
        let members = |spec: RangeSpec| -> Vec<Score> {
            select(&set, &spec).into_iter().map(|(_, s)| *s).collect()
        };
        let spec = |range, rev, limit| RangeSpec { range, rev, limit };
        assert_eq!(
            members(spec(
                Range::Rank {
                    start: -2,
                    stop: 100
                },
                false,
                None
            )),
            vec![score(4.0), score(5.0)]
        );
        assert_eq!(
            members(spec(Range::Rank { start: 0, stop: 0 }, true, None)),
            vec![score(5.0)]
        );
        assert!(members(spec(Range::Rank { start: 3, stop: 1 }, false, None)).is_empty());
        let bound = |v, exclusive| ScoreBound {
            score: score(v),
            exclusive,
        };
        let by_score = Range::Score {
            min: bound(2.0, true),
            max: bound(4.0, false),
        };
        assert_eq!(
            members(spec(by_score.clone(), false, None)),
            vec![score(3.0), score(4.0)]
        );
        assert_eq!(
            members(spec(by_score.clone(), true, Some((1, 5)))),
            vec![score(3.0)]
        );
        assert!(members(spec(by_score, false, Some((-1, 5)))).is_empty());
        let lex = Range::Lex {
            min: LexBound::Exclusive(b"b".to_vec()),
            max: LexBound::Highest,
        };
        assert_eq!(
            members(spec(lex, false, Some((0, 2)))),
            vec![score(2.0), score(3.0)]
        );
    }
}
