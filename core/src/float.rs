//! Redis's floats: the one reading of a number argument or stored value as an `f64`
//! (INCRBYFLOAT's, HINCRBYFLOAT's, a sorted set's scores).

/// Longest text INCRBYFLOAT parses as a number (Redis's `MAX_LONG_DOUBLE_CHARS`).
pub const FLOAT_TEXT_MAX_BYTES: usize = 5 * 1024;

/// Parses a number as INCRBYFLOAT does: the whole text, no spaces around it, not NaN. `None`
/// if it is not such a number.
///
/// Redis reads it as an 80-bit `long double`; this store reads and adds `f64`s (the same on
/// every platform), so the last of about 17 significant digits may differ from Redis's.
pub fn parse_float(text: &[u8]) -> Option<f64> {
    if text.is_empty() || text.len() >= FLOAT_TEXT_MAX_BYTES {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    if text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (!value.is_nan()).then_some(value)
}
