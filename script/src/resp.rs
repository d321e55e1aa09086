//! The plain reply value a script returns and a `redis.call` callback answers with (RESP2).

/// A RESP2 value; `Simple` and `Error` hold the line without its leading `+`/`-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// An error reply; `message` starts with its code (`ERR …`, `WRONGTYPE …`).
    pub fn error(message: impl Into<String>) -> Resp {
        let message = message.into();
        assert!(
            !message.starts_with('-'),
            "error text is stored without its '-'"
        );
        Resp::Error(message)
    }

    /// A bulk string reply.
    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Resp {
        Resp::Bulk(Some(bytes.into()))
    }
}
