//! String value operations as Redis 7.0 defines them (SETRANGE, INCRBYFLOAT, LCS): pure
//! functions of the bytes, shared by the state machine (writes), the reply shaping (reads) and
//! every model of the store.

use crate::command::VALUE_MAX_BYTES;

/// Most bytes of LCS's table (one `u32` per pair of prefixes): bounds the memory one LCS may
/// take, as Redis bounds it by `proto-max-bulk-len`.
pub const LCS_TABLE_MAX_BYTES: usize = 64 * 1024 * 1024;
pub use crate::float::{parse_float, FLOAT_TEXT_MAX_BYTES};

/// Formats an INCRBYFLOAT result as Redis does: plain decimal, never an exponent, no trailing
/// zeros after the point, no point after an integer, and no negative zero. The digits are the
/// shortest that read back as the same `f64`.
pub fn format_float(value: f64) -> Vec<u8> {
    assert!(value.is_finite(), "only finite results are stored");
    let value = if value == 0.0 { 0.0 } else { value };
    let text = format!("{value}");
    assert!(!text.contains(['e', 'E']), "Display never uses an exponent");
    text.into_bytes()
}

/// INCRBYFLOAT's new value: `old` (absent counts as 0) plus `delta`, or why it fails.
pub fn add_float(old: Option<&[u8]>, delta: &[u8]) -> Result<Vec<u8>, FloatError> {
    let delta = parse_float(delta).ok_or(FloatError::NotAFloat)?;
    let old = match old {
        None => 0.0,
        Some(old) => parse_float(old).ok_or(FloatError::NotAFloat)?,
    };
    let new = old + delta;
    if !new.is_finite() {
        return Err(FloatError::NanOrInfinity);
    }
    Ok(format_float(new))
}

/// Why an INCRBYFLOAT changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatError {
    NotAFloat,
    NanOrInfinity,
}

/// SETRANGE: `value` with `patch` written at `offset`, zero-padded up to it.
pub fn set_range(value: &mut Vec<u8>, offset: usize, patch: &[u8]) {
    let end = offset + patch.len();
    assert!(end <= VALUE_MAX_BYTES, "SETRANGE past the value limit");
    if value.len() < end {
        value.resize(end, 0);
    }
    value[offset..end].copy_from_slice(patch);
}

/// One LCS match: the ranges in `a` and `b` (inclusive) and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LcsMatch {
    pub a: (usize, usize),
    pub b: (usize, usize),
    pub len: usize,
}

/// The longest common subsequence of `a` and `b` and its matching ranges, from the end of the
/// strings backwards, as Redis's LCS lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lcs {
    pub text: Vec<u8>,
    pub matches: Vec<LcsMatch>,
}

/// LCS of `a` and `b` by Redis's dynamic program and walk (so ties resolve as Redis's do);
/// `None` when the table would exceed [`LCS_TABLE_MAX_BYTES`].
pub fn lcs(a: &[u8], b: &[u8]) -> Option<Lcs> {
    let cells = (a.len() + 1).checked_mul(b.len() + 1)?;
    if cells.checked_mul(4)? > LCS_TABLE_MAX_BYTES {
        return None;
    }
    let width = a.len() + 1;
    let mut table = vec![0u32; cells];
    for j in 1..=b.len() {
        for i in 1..=a.len() {
            table[i + j * width] = if a[i - 1] == b[j - 1] {
                table[(i - 1) + (j - 1) * width] + 1
            } else {
                table[(i - 1) + j * width].max(table[i + (j - 1) * width])
            };
        }
    }
    let at = |i: usize, j: usize| table[i + j * width];
    Some(lcs_walk(a, b, at))
}

/// Walks the LCS table back from the end, collecting the subsequence and its contiguous runs.
fn lcs_walk(a: &[u8], b: &[u8], at: impl Fn(usize, usize) -> u32) -> Lcs {
    let total = usize::try_from(at(a.len(), b.len())).expect("fits in usize");
    let mut text = vec![0u8; total];
    let mut matches = Vec::new();
    let (mut i, mut j, mut left) = (a.len(), b.len(), total);
    let mut run: Option<LcsMatch> = None;
    while i > 0 && j > 0 {
        let emit;
        if a[i - 1] == b[j - 1] {
            text[left - 1] = a[i - 1];
            run = Some(match run {
                None => LcsMatch {
                    a: (i - 1, i - 1),
                    b: (j - 1, j - 1),
                    len: 1,
                },
                Some(r) => {
                    assert!(
                        r.a.0 == i && r.b.0 == j,
                        "consecutive matches are contiguous"
                    );
                    LcsMatch {
                        a: (i - 1, r.a.1),
                        b: (j - 1, r.b.1),
                        len: r.len + 1,
                    }
                }
            });
            emit = i == 1 || j == 1;
            (i, j, left) = (i - 1, j - 1, left - 1);
        } else {
            if at(i - 1, j) > at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = run.is_some();
        }
        if emit {
            matches.extend(run.take());
        }
    }
    assert_eq!(left, 0, "the walk fills the whole subsequence");
    Lcs { text, matches }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_parse_refuses_spaces_nan_and_garbage() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_float(b"5.0e3"), Some(5000.0));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"1\x002", b"abc"] {
            assert_eq!(parse_float(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn float_results_print_plainly_without_negative_zero() {
        assert_eq!(add_float(None, b"1").unwrap(), b"1");
        assert_eq!(add_float(Some(b"1"), b"0.25").unwrap(), b"1.25");
        assert_eq!(
            add_float(Some(b"17179869184"), b"1.5").unwrap(),
            b"17179869185.5"
        );
        assert_eq!(add_float(Some(b"5.0e3"), b"2.0e2").unwrap(), b"5200");
        assert_eq!(add_float(Some(b"1e300"), b"0").unwrap().len(), 301);
        let tiny = format!("{}", 1.0f64 / 41.0);
        let neg = format!("-{tiny}");
        let once = add_float(None, tiny.as_bytes()).unwrap();
        assert_eq!(add_float(Some(&once), neg.as_bytes()).unwrap(), b"0");
        assert_eq!(
            add_float(Some(b"0"), b"+inf"),
            Err(FloatError::NanOrInfinity)
        );
        assert_eq!(add_float(Some(b" 1"), b"1"), Err(FloatError::NotAFloat));
        assert_eq!(add_float(Some(b"1"), b"x"), Err(FloatError::NotAFloat));
    }

    #[test]
    fn set_range_pads_with_zero_bytes() {
        let mut value = b"foo".to_vec();
        set_range(&mut value, 4, b"bar");
        assert_eq!(value, b"foo\0bar");
        set_range(&mut value, 0, b"b");
        assert_eq!(value, b"boo\0bar");
    }

    #[test]
    fn lcs_lists_runs_from_the_end_as_redis_does() {
        let found = lcs(b"ohmytext", b"mynewtext").unwrap();
        assert_eq!(found.text, b"mytext");
        let runs: Vec<_> = found.matches.iter().map(|m| (m.a, m.b, m.len)).collect();
        assert_eq!(runs, vec![((4, 7), (5, 8), 4), ((2, 3), (0, 1), 2)]);
        assert_eq!(lcs(b"", b"abc").unwrap().text, b"");
        assert!(lcs(&[b'a'; 5000], &[b'b'; 5000]).is_none());
    }
}
