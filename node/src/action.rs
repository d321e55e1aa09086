//! What a parsed Redis command asks for ([`Action`]), how its store replies are shown
//! ([`Shape`]), and a connection's queued transaction ([`Queue`]): plain data, so the
//! connection can hold a queue without knowing how commands run.

use keyspace_core::{Command, Db};

/// How a store reply is shown: the core's, the same for clients and scripts.
pub use keyspace_core::redis::Shape;

/// The commands [`Action::Server`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCommand {
    Client,
    Config,
    Debug,
    Memory,
    /// TIME, SAVE, SHUTDOWN, REPLICAOF, SLAVEOF.
    Admin,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Error(String),
    Ok,
    Pong(Option<Vec<u8>>),
    Echo(Vec<u8>),
    /// One or more store commands, answered as `shape` says: a single one with its reply,
    /// several with an array, or (EXISTS) the number of keys found.
    Store {
        commands: Vec<Command>,
        shape: Shape,
    },
    /// `INFO [section …]`, the sections in lower case.
    Info(Vec<String>),
    /// `MEMBER LIST`: the configuration as this replica applied it.
    MemberList,
    Hello {
        protocol: Option<u8>,
        auth: Option<Vec<u8>>,
        name: Option<Vec<u8>>,
    },
    Auth(Vec<u8>),
    CommandCount,
    /// `COMMAND GETKEYS command arg…`: the keys it names.
    CommandKeys(Vec<Vec<u8>>),
    EmptyArray,
    /// A command about the server or the connection, run by its own module with its
    /// arguments (name first): CLIENT, CONFIG, DEBUG, OBJECT, MEMORY.
    Server(ServerCommand, Vec<Vec<u8>>),
    ReadOnly(bool),
    /// `SELECT db`: the database later commands of the connection act on.
    Select(Db),
    /// `RANDOMKEY`: a store read with a seed drawn when it runs.
    RandomKey,
    Quit,
    /// `SYNC`, or `PSYNC` (`psync`): the connection becomes a replication stream.
    Sync {
        psync: bool,
    },
    /// `MEMBER FOUNDERS`: the voters the group was founded with, and their peer addresses.
    MemberFounders,
    // Transactions (MULTI/EXEC/WATCH), carried out by `cmd_multi`.
    Multi,
    Exec,
    Discard,
    Watch(Vec<Vec<u8>>),
    Unwatch,
}

/// A connection's transaction being queued.
#[derive(Debug)]
pub struct Queue {
    pub(crate) items: Vec<Queued>,
    /// The database the next queued command acts on (SELECT inside MULTI changes it).
    pub(crate) db: Db,
    /// A command could not be queued: EXEC answers EXECABORT.
    pub(crate) failed: bool,
    /// A queued command is one a Redis replica does not serve while its master link is down.
    pub(crate) stale_denied: bool,
    /// Store commands queued, in all items.
    pub(crate) commands: usize,
}

/// One queued command.
#[derive(Debug)]
pub(crate) enum Queued {
    /// Store commands (already in their database), shown together as `shape` says.
    Store {
        commands: Vec<Command>,
        shape: Shape,
    },
    /// SELECT: the connection's database from EXEC on.
    Select(Db),
    /// A command that does not touch the store, run when EXEC runs.
    Local(Action),
}
