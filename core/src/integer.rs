//! Redis's integers: the one reading of a stored value or an argument as an `i64`.

/// Parses a stored value as a decimal `i64` by Redis's rules (`string2ll`): an optional leading
/// `-`, then ASCII digits with no leading zero (`0` alone is zero; `-0` and `007` are no
/// integers), nothing else (no `+`, no spaces). `None` if it is not such a number or does not fit
/// in an `i64`.
///
/// Public so that every model of the store (the checker's, the tests') shares this one definition.
pub fn parse_integer(value: &[u8]) -> Option<i64> {
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let leading_zero = digits[0] == b'0' && (digits.len() > 1 || digits.len() < value.len());
    if leading_zero {
        return None;
    }
    let text = std::str::from_utf8(value).expect("ASCII digits and '-' are UTF-8");
    text.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_integer_accepts_only_plain_decimal() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"-42"), Some(-42));
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"007",
            b"-01",
            b"+1",
            b" 1",
            b"1 ",
            b"1.0",
            b"--1",
            b"0x10",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"\xff",
        ] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }
}
