//! The `#!lua …` first line of scripts and libraries, parsed as Redis 7.0 does.

/// Flags a script body declares in its shebang (`#!lua flags=no-writes,…`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// The body has a shebang: Redis then judges it by its flags, not as a legacy script.
    pub declared: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
}

/// Flags Redis knows for scripts and functions.
pub(crate) const FLAG_NAMES: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

fn first_line(body: &[u8]) -> Option<&[u8]> {
    let end = body.iter().position(|&b| b == b'\n')?;
    Some(&body[..end])
}

/// The words of a shebang line split as Redis's `sdssplitargs` splits them: on blanks, with
/// "double quotes" (escapes `\n`, `\xHH`, …) and 'single quotes'; a NUL ends the line as it
/// ends a C string. `None` for an unbalanced quote or a quote not followed by a blank.
fn words(line: &[u8]) -> Option<Vec<String>> {
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let (mut words, mut i) = (Vec::new(), 0);
    loop {
        while line.get(i).is_some_and(is_space) {
            i += 1;
        }
        if i == line.len() {
            assert!(words.len() <= line.len(), "each word takes a byte at least");
            return Some(words);
        }
        let (word, next) = word_at(line, i)?;
        assert!(next > i, "every word moves the cursor");
        words.push(String::from_utf8_lossy(&word).into_owned());
        i = next;
    }
}

/// C's `isspace`.
fn is_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// One word of `line` from `start` (not a blank): its bytes and where the next one may begin.
fn word_at(line: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    let (mut word, mut i, mut quote) = (Vec::new(), start, None::<u8>);
    let ends_quote = |at: usize| line.get(at + 1).is_none_or(is_space);
    while i < line.len() {
        let b = line[i];
        match quote {
            None if matches!(b, b' ' | b'\n' | b'\r' | b'\t') => break,
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None => word.push(b),
            Some(b'"')
                if b == b'\\'
                    && line.get(i + 1) == Some(&b'x')
                    && hex_at(line, i + 2).is_some() =>
            {
                word.push(hex_at(line, i + 2).expect("checked"));
                i += 3;
            }
            Some(b'"') if b == b'\\' && i + 1 < line.len() => {
                i += 1;
                word.push(match line[i] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 8,
                    b'a' => 7,
                    other => other,
                });
            }
            Some(b'\'') if b == b'\\' && line.get(i + 1) == Some(&b'\'') => {
                word.push(b'\'');
                i += 1;
            }
            Some(q) if b == q => match ends_quote(i) {
                true => return Some((word, i + 1)),
                false => return None,
            },
            Some(_) => word.push(b),
        }
        i += 1;
    }
    quote.is_none().then_some((word, i))
}

/// The byte `HH` of two hex digits at `at`.
fn hex_at(line: &[u8], at: usize) -> Option<u8> {
    let digits = line.get(at..at + 2)?;
    let value = |d: u8| char::from(d).to_digit(16);
    Some(u8::try_from(value(digits[0])? * 16 + value(digits[1])?).expect("two hex digits"))
}

/// The flags of an EVAL body, or Redis's error for a bad shebang.
pub fn script_flags(body: &[u8]) -> Result<ScriptFlags, String> {
    if !body.starts_with(b"#!") {
        return Ok(ScriptFlags::default());
    }
    let line = first_line(body).ok_or("ERR Invalid script shebang")?;
    let parts = words(line).ok_or("ERR Invalid engine in script shebang")?;
    let engine = parts
        .first()
        .ok_or("ERR Invalid engine in script shebang")?;
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = ScriptFlags {
        declared: true,
        ..ScriptFlags::default()
    };
    for part in &parts[1..] {
        let list = part
            .strip_prefix("flags=")
            .ok_or_else(|| format!("ERR Unknown lua shebang option: {part}"))?;
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            if !FLAG_NAMES.contains(&flag) {
                return Err(format!("ERR Unexpected flag in script shebang: {flag}"));
            }
            flags.no_writes |= flag == "no-writes";
            flags.allow_oom |= flag == "allow-oom";
        }
    }
    Ok(flags)
}

/// The body Lua compiles: a shebang line becomes empty, so line numbers stay the user's.
pub(crate) fn without_shebang(body: &[u8]) -> &[u8] {
    if !body.starts_with(b"#!") {
        return body;
    }
    match body.iter().position(|&b| b == b'\n') {
        Some(end) => &body[end..],
        None => &[],
    }
}

/// The library name of a `#!<engine> name=<lib>` header, or Redis's error.
pub(crate) fn library_name(code: &[u8]) -> Result<String, String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let line = first_line(code).ok_or("ERR Invalid library metadata")?;
    let words = words(line).filter(|w| !w.is_empty());
    let mut parts = words.ok_or("ERR Invalid library metadata")?.into_iter();
    let engine = parts.next().expect("a line of `#!…` has a word")[2..].to_string();
    let mut name = None;
    for part in parts {
        let value = match part.get(..5) {
            Some(prefix) if prefix.eq_ignore_ascii_case("name=") => part[5..].to_string(),
            _ => return Err(format!("ERR Invalid metadata value given: {part}")),
        };
        if name.replace(value).is_some() {
            return Err(
                "ERR Invalid metadata value, name argument was given multiple times".into(),
            );
        }
    }
    let name = name.ok_or("ERR Library name was not given")?;
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_shebang_flags_and_errors_match_redis() {
        assert_eq!(script_flags(b"return 1"), Ok(ScriptFlags::default()));
        let flags = script_flags(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(flags.declared && flags.no_writes && flags.allow_oom);
        assert!(script_flags(b"#!not-lua\nreturn 1")
            .unwrap_err()
            .contains("Unexpected engine in script shebang"));
        assert!(script_flags(b"#!lua badger=data\n")
            .unwrap_err()
            .contains("Unknown lua shebang option"));
        assert!(script_flags(b"#!lua flags=allow-oom,what?\n")
            .unwrap_err()
            .contains("Unexpected flag in script shebang"));
    }

    #[test]
    fn library_header_errors_match_redis() {
        assert_eq!(library_name(b"#!lua name=lib\ncode"), Ok("lib".to_string()));
        assert_eq!(
            library_name(b"#! name=test\n"),
            Err("ERR Engine '' not found".to_string())
        );
        assert_eq!(
            library_name(b"#!lua name=test foo=bar\n"),
            Err("ERR Invalid metadata value given: foo=bar".to_string())
        );
        assert_eq!(
            library_name(b"#!lua\n"),
            Err("ERR Library name was not given".to_string())
        );
        assert!(library_name(b"#!lua name=foo name=bar\n")
            .unwrap_err()
            .contains("multiple times"));
        assert!(library_name(b"#!lua name=bad\\0x\n")
            .unwrap_err()
            .contains("Library names can only"));
    }

    #[test]
    fn shebang_words_split_as_redis_splits_arguments() {
        let split = |line: &[u8]| words(line).map(|w| w.join("|"));
        assert_eq!(
            split(b"#!lua  name=\"foo\"\t x"),
            Some("#!lua|name=foo|x".into())
        );
        assert_eq!(split(b"'a\\'b' \"\\x41\\n\""), Some("a'b|A\n".into()));
        assert_eq!(split(b"name=lib\0 junk"), Some("name=lib".into()));
        assert_eq!(split(b"name=\"foo"), None);
        assert_eq!(split(b"name=\"foo\"bar"), None);
        assert_eq!(library_name(b"#!lua name=\"foo\"\n"), Ok("foo".to_string()));
        assert_eq!(
            library_name(b"#!lua name=\"foo\n"),
            Err("ERR Invalid library metadata".to_string())
        );
    }

    #[test]
    fn shebang_line_becomes_empty_keeping_line_numbers() {
        assert_eq!(without_shebang(b"#!lua\nreturn 1"), b"\nreturn 1");
        assert_eq!(without_shebang(b"return 1"), b"return 1");
    }
}
