//! Redis's glob patterns (KEYS, SCAN MATCH): `*` any run of bytes, `?` any one byte, `[abc]`,
//! `[^abc]` and `[a-z]` one byte of a class, `\x` the byte `x` itself.
//!
//! Public so that every model of the store (the checker's, the tests') shares this one definition.

/// One element of a parsed pattern: `Star` matches any run of bytes, the rest one byte each.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Star,
    Any,
    Byte(u8),
    Class { negated: bool, items: Vec<(u8, u8)> },
}

/// Parses a class after its `[`: items up to `]` (or the pattern's end, as Redis does with an
/// unclosed class); returns the token and the index after it.
fn parse_class(pattern: &[u8], mut i: usize) -> (Token, usize) {
    let negated = pattern.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            items.push((pattern[i + 1], pattern[i + 1]));
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' {
            let (a, b) = (pattern[i], pattern[i + 2]);
            items.push((a.min(b), a.max(b)));
            i += 3;
        } else {
            items.push((pattern[i], pattern[i]));
            i += 1;
        }
    }
    (Token::Class { negated, items }, i + 1)
}

fn parse(pattern: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        let (token, next) = match pattern[i] {
            b'*' => (Token::Star, i + 1),
            b'?' => (Token::Any, i + 1),
            b'[' => parse_class(pattern, i + 1),
            b'\\' if i + 1 < pattern.len() => (Token::Byte(pattern[i + 1]), i + 2),
            byte => (Token::Byte(byte), i + 1),
        };
        // Consecutive stars match what one does.
        if !(token == Token::Star && tokens.last() == Some(&Token::Star)) {
            tokens.push(token);
        }
        i = next;
    }
    tokens
}

fn matches_one(token: &Token, byte: u8) -> bool {
    match token {
        Token::Star => unreachable!("a star is matched by the caller"),
        Token::Any => true,
        Token::Byte(b) => *b == byte,
        Token::Class { negated, items } => {
            items.iter().any(|&(lo, hi)| (lo..=hi).contains(&byte)) != *negated
        }
    }
}

/// Whether `text` matches `pattern`. O(pattern × text) at worst: a failed match after a star
/// retries from one byte further, never from every earlier star.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let tokens = parse(pattern);
    let (mut t, mut s) = (0, 0);
    // The last star seen and the text position its match would extend from.
    let mut retry: Option<(usize, usize)> = None;
    while s < text.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                retry = Some((t, s));
                t += 1;
            }
            Some(token) if matches_one(token, text[s]) => {
                t += 1;
                s += 1;
            }
            _ => match retry {
                Some((star, from)) => {
                    retry = Some((star, from + 1));
                    t = star + 1;
                    s = from + 1;
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|token| *token == Token::Star)
}

/// The bytes every match of `pattern` starts with (up to its first special byte).
pub fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_as_redis_does() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("a*", "abc", true),
            ("a*", "bac", false),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("[\\]]", "]", true),
            ("ab[c", "abc", true),
            ("a\\", "a\\", true),
            ("", "", true),
            ("", "a", false),
            ("key:*:x", "key:1:x", true),
            ("key:*:x", "key:1:y", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes()),
                *expected,
                "{pattern:?} on {text:?}"
            );
        }
    }

    #[test]
    fn glob_of_many_stars_stays_polynomial() {
        let pattern = "a*".repeat(30) + "b";
        let text = "a".repeat(200);
        assert!(!glob_match(pattern.as_bytes(), text.as_bytes()));
    }

    #[test]
    fn literal_prefix_stops_at_the_first_special_byte() {
        assert_eq!(literal_prefix(b"user:*"), b"user:");
        assert_eq!(literal_prefix(b"a?b"), b"a");
        assert_eq!(literal_prefix(b"plain"), b"plain");
        assert_eq!(literal_prefix(b"\\*x"), b"");
    }
}
