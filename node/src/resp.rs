//! The Redis serialization protocol: parsing client commands (RESP arrays of bulk strings, and
//! inline commands for telnet-style use) and writing RESP2/RESP3 replies.

use keyspace_core::redis::Resp;

/// Most arguments one command may carry.
pub const ARGS_MAX: usize = 1024 * 1024;
/// Largest bulk string accepted. Above the store's value limit, so that an oversized value gets
/// a clear command error rather than a dropped connection; far above it is a protocol error.
pub const BULK_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Longest inline command or header line.
pub const LINE_MAX_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("Protocol error: expected '{expected}', got '{found}'")]
    Unexpected { expected: char, found: char },
    #[error("Protocol error: invalid multibulk length")]
    BadArrayLength,
    #[error("Protocol error: invalid bulk length")]
    BadBulkLength,
    #[error("Protocol error: too big inline request")]
    LineTooLong,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// One parsed command: its arguments, and how many bytes of the buffer it used.
pub type Parsed = (Vec<Vec<u8>>, usize);

/// Parses the command at the start of `buf`. `Ok(None)` means more bytes are needed. An empty
/// inline line parses as a command with no arguments (callers skip it).
pub fn parse(buf: &[u8]) -> Result<Option<Parsed>, RespError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_array(buf),
        Some(_) => parse_inline(buf),
    }
}

fn find_line(buf: &[u8], from: usize) -> Result<Option<usize>, RespError> {
    let window = &buf[from..buf.len().min(from + LINE_MAX_BYTES)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some(from + i)),
        None if window.len() >= LINE_MAX_BYTES => Err(RespError::LineTooLong),
        None => Ok(None),
    }
}

fn parse_int(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn parse_array(buf: &[u8]) -> Result<Option<Parsed>, RespError> {
    let Some(end) = find_line(buf, 1)? else {
        return Ok(None);
    };
    let count = parse_int(&buf[1..end]).ok_or(RespError::BadArrayLength)?;
    if count > ARGS_MAX as i64 {
        return Err(RespError::BadArrayLength);
    }
    let count = count.max(0) as usize;
    let mut pos = end + 2;
    let mut args = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let Some(&first) = buf.get(pos) else {
            return Ok(None);
        };
        if first != b'$' {
            return Err(RespError::Unexpected {
                expected: '$',
                found: first as char,
            });
        }
        let Some(end) = find_line(buf, pos + 1)? else {
            return Ok(None);
        };
        let len = parse_int(&buf[pos + 1..end]).ok_or(RespError::BadBulkLength)?;
        if !(0..=BULK_MAX_BYTES as i64).contains(&len) {
            return Err(RespError::BadBulkLength);
        }
        let start = end + 2;
        let stop = start + len as usize;
        if buf.len() < stop + 2 {
            return Ok(None);
        }
        if &buf[stop..stop + 2] != b"\r\n" {
            return Err(RespError::BadBulkLength);
        }
        args.push(buf[start..stop].to_vec());
        pos = stop + 2;
    }
    Ok(Some((args, pos)))
}

fn parse_inline(buf: &[u8]) -> Result<Option<Parsed>, RespError> {
    let window = &buf[..buf.len().min(LINE_MAX_BYTES)];
    let Some(newline) = window.iter().position(|b| *b == b'\n') else {
        if window.len() >= LINE_MAX_BYTES {
            return Err(RespError::LineTooLong);
        }
        return Ok(None);
    };
    let line = buf[..newline]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..newline]);
    Ok(Some((split_inline(line)?, newline + 1)))
}

/// Splits an inline command on spaces as Redis does: double quotes with escapes (`\n`, `\r`,
/// `\t`, `\b`, `\a`, `\xHH`, `\` before any other byte), single quotes with `\'`, a quote
/// inside a word opening a quoted part, and a closing quote followed by a space or the end.
fn split_inline(line: &[u8]) -> Result<Vec<Vec<u8>>, RespError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        let mut arg = Vec::new();
        while i < line.len() && !line[i].is_ascii_whitespace() {
            i = match line[i] {
                b'"' | b'\'' => quoted(line, i, &mut arg)?,
                byte => {
                    arg.push(byte);
                    i + 1
                }
            };
        }
        args.push(arg);
    }
}

/// Reads the quoted part opening at `line[open]` into `arg`; returns the index after it.
fn quoted(line: &[u8], open: usize, arg: &mut Vec<u8>) -> Result<usize, RespError> {
    let quote = line[open];
    let mut i = open + 1;
    loop {
        let byte = *line.get(i).ok_or(RespError::UnbalancedQuotes)?;
        let next = line.get(i + 1).copied();
        if byte == quote {
            // The closing quote must end the word.
            return match next {
                None => Ok(i + 1),
                Some(b) if b.is_ascii_whitespace() => Ok(i + 1),
                Some(_) => Err(RespError::UnbalancedQuotes),
            };
        }
        match (quote, byte, next) {
            (b'"', b'\\', Some(b'x')) if hex_byte(line.get(i + 2..i + 4)).is_some() => {
                arg.push(hex_byte(line.get(i + 2..i + 4)).expect("checked"));
                i += 4;
            }
            (b'"', b'\\', Some(c)) => {
                let escaped = match c {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                };
                arg.push(escaped);
                i += 2;
            }
            (b'\'', b'\\', Some(b'\'')) => {
                arg.push(b'\'');
                i += 2;
            }
            _ => {
                arg.push(byte);
                i += 1;
            }
        }
    }
}

fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let text = std::str::from_utf8(digits?).ok()?;
    u8::from_str_radix(text, 16).ok()
}

/// Writes replies in the protocol version the connection chose (2, or 3 after `HELLO 3`).
pub struct Writer<'a> {
    pub out: &'a mut Vec<u8>,
    pub resp3: bool,
}

impl Writer<'_> {
    pub fn simple(&mut self, text: &str) {
        self.line(b'+', text.as_bytes());
    }

    /// `text` starts with an error code such as `ERR` or `WRONGTYPE`.
    pub fn error(&mut self, text: &str) {
        let clean: String = text
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        self.line(b'-', clean.as_bytes());
    }

    pub fn int(&mut self, n: i64) {
        self.out.push(b':');
        self.out.extend_from_slice(n.to_string().as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn bulk(&mut self, bytes: &[u8]) {
        self.out.push(b'$');
        self.out
            .extend_from_slice(bytes.len().to_string().as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(bytes);
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn null(&mut self) {
        if self.resp3 {
            self.out.extend_from_slice(b"_\r\n");
        } else {
            self.out.extend_from_slice(b"$-1\r\n");
        }
    }

    pub fn array(&mut self, len: usize) {
        self.line(b'*', len.to_string().as_bytes());
    }

    /// A map of `len` pairs (a flat array of `2 * len` in RESP2).
    pub fn map(&mut self, len: usize) {
        if self.resp3 {
            self.line(b'%', len.to_string().as_bytes());
        } else {
            self.array(2 * len);
        }
    }

    /// A verbatim text reply, such as INFO's.
    pub fn text(&mut self, text: &str) {
        if self.resp3 {
            self.out.push(b'=');
            self.out
                .extend_from_slice((text.len() + 4).to_string().as_bytes());
            self.out.extend_from_slice(b"\r\ntxt:");
            self.out.extend_from_slice(text.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }

    /// A command's `HELP`: an array of status lines.
    pub fn help(&mut self, lines: &[&str]) {
        self.array(lines.len());
        for line in lines {
            self.simple(line);
        }
    }

    /// A reply as a client reads it (see `keyspace_core::redis::show`).
    pub fn resp(&mut self, value: &Resp) {
        match value {
            Resp::Simple(text) => self.simple(text),
            Resp::Error(text) => self.error(text),
            Resp::Int(n) => self.int(*n),
            Resp::Bulk(Some(bytes)) => self.bulk(bytes),
            Resp::Bulk(None) => self.null(),
            Resp::Array(Some(items)) => {
                self.array(items.len());
                for item in items {
                    self.resp(item);
                }
            }
            Resp::Array(None) if self.resp3 => self.out.extend_from_slice(b"_\r\n"),
            Resp::Array(None) => self.out.extend_from_slice(b"*-1\r\n"),
            Resp::Double(text) if self.resp3 => self.line(b',', text),
            Resp::Double(text) => self.bulk(text),
            Resp::Pairs(pairs) => {
                self.array(if self.resp3 {
                    pairs.len()
                } else {
                    2 * pairs.len()
                });
                for (a, b) in pairs {
                    if self.resp3 {
                        self.array(2);
                    }
                    self.resp(a);
                    self.resp(b);
                }
            }
        }
    }

    /// A RESP3 type (`tag`) shown in RESP2 as `resp2`: a boolean (`#t`, RESP2 `:1`), a big
    /// number (`(`, a bulk), a double (`,`, a bulk), a set (`~`, an array) or a push (`>`,
    /// an array) of `body` items, or an attribute (`|`, nothing in RESP2: `None`).
    pub fn resp3(&mut self, tag: u8, body: &str, resp2: Option<(u8, &str)>) {
        match (self.resp3, resp2) {
            (true, _) => self.line(tag, body.as_bytes()),
            (false, Some((b'$', text))) => self.bulk(text.as_bytes()),
            (false, Some((tag2, text))) => self.line(tag2, text.as_bytes()),
            (false, None) => {}
        }
    }

    fn line(&mut self, tag: u8, body: &[u8]) {
        self.out.push(tag);
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn array_command_parses_and_reports_its_length() {
        let buf = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n*1\r\n";
        let (parsed, used) = parse(buf).unwrap().unwrap();
        assert_eq!(parsed, args(&["SET", "k", "vv"]));
        assert_eq!(&buf[used..], b"*1\r\n");
    }

    #[test]
    fn every_prefix_of_a_command_asks_for_more() {
        let buf = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn inline_commands_split_on_spaces_and_quotes() {
        let (parsed, used) = parse(b"set k \"hello world\"\r\n").unwrap().unwrap();
        assert_eq!(parsed, args(&["set", "k", "hello world"]));
        assert_eq!(used, 21);
    }

    #[test]
    fn inline_quotes_follow_redis_rules() {
        let split = |line: &[u8]| split_inline(line);
        assert_eq!(
            split(b"set \"a\\x41\\n\\\"\" 'it\\'s'"),
            Ok(vec![b"set".to_vec(), b"aA\n\"".to_vec(), b"it's".to_vec()])
        );
        assert_eq!(split(b"ab\"c d\""), Ok(vec![b"abc d".to_vec()]));
        assert_eq!(
            split(b"set \"\"\"test-key\"\"\" v"),
            Err(RespError::UnbalancedQuotes),
            "a closing quote must end the word"
        );
        assert_eq!(split(b"'open"), Err(RespError::UnbalancedQuotes));
        assert_eq!(split(b"  "), Ok(vec![]));
    }

    #[test]
    fn malformed_input_is_a_protocol_error() {
        assert_eq!(parse(b"*x\r\n"), Err(RespError::BadArrayLength));
        assert_eq!(parse(b"*1\r\n$-5\r\n"), Err(RespError::BadBulkLength));
        assert_eq!(parse(b"*1\r\n$1\r\nab\r\n"), Err(RespError::BadBulkLength));
        assert!(matches!(
            parse(b"*1\r\n:1\r\n"),
            Err(RespError::Unexpected { .. })
        ));
        assert_eq!(parse(b"set \"k\r\n"), Err(RespError::UnbalancedQuotes));
        assert_eq!(
            parse(&vec![b'a'; LINE_MAX_BYTES + 1]),
            Err(RespError::LineTooLong)
        );
    }

    fn encode(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer {
            out: &mut out,
            resp3: false,
        };
        w.array(args.len());
        for arg in args {
            w.bulk(arg);
        }
        out
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(Some((_, used))) = parse(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }

        #[test]
        fn encoded_commands_round_trip(list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8)) {
            let bytes = encode(&list);
            prop_assert_eq!(parse(&bytes), Ok(Some((list, bytes.len()))));
        }

        #[test]
        fn mutated_commands_never_panic_the_parser(
            list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..4),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encode(&list);
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = parse(&bytes);
        }
    }
}
