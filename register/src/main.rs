//! `keyspace-register`: put or get one register kept over several key-value stores.
//!
//!   keyspace-register --stores 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381 put config v1
//!   keyspace-register --stores 127.0.0.1:6379,127.0.0.1:6380,127.0.0.1:6381 --atomic get config

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use keyspace_register::{Config, RedisStore, Register, Variant};

/// Put or get a register that survives the failure of any minority of its stores. The stores
/// are Redis-protocol servers (redis-server, or keyspace nodes); nothing is needed on them but
/// SET, GET, DEL and KEYS (or LISTKEYS).
#[derive(Parser, Debug)]
#[command(name = "keyspace-register", version)]
struct Cli {
    /// The stores, `HOST:PORT,HOST:PORT,…` (3 tolerate one failed store, 5 tolerate two).
    #[arg(long, value_delimiter = ',', required = true)]
    stores: Vec<String>,
    /// Atomic (linearizable) reads: a read writes back what it returns when fewer than a
    /// majority of the stores hold it. Without it reads are regular and store nothing.
    #[arg(long)]
    atomic: bool,
    /// Give up on an operation after this many milliseconds without a majority of answers.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write VALUE to register NAME.
    Put { name: String, value: String },
    /// Print the value of register NAME (nothing, and exit status 1, while it was never written).
    Get { name: String },
}

/// A client id no other client is likely to have: the standard library's per-process random
/// hash keys, mixed with the process id and the time.
fn random_client_id() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.finish() | 1
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    let name = match &cli.command {
        Command::Put { name, .. } | Command::Get { name } => name.clone(),
    };
    let timeout = Duration::from_millis(cli.timeout_ms);
    let stores: Vec<RedisStore> = cli
        .stores
        .iter()
        .map(|addr| RedisStore::new(addr, timeout))
        .collect();
    let variant = if cli.atomic {
        Variant::Atomic
    } else {
        Variant::Regular
    };
    let config = Config::new(stores.len(), variant, random_client_id(), &name);
    let mut register = Register::new(stores, config).map_err(|e| e.to_string())?;
    register.set_timeout(timeout);
    match &cli.command {
        Command::Put { value, .. } => {
            register
                .write(value.as_bytes())
                .map_err(|e| e.to_string())?;
            // Let the clean-up reach the stores before the process ends.
            register.settle(timeout);
            Ok(ExitCode::SUCCESS)
        }
        Command::Get { .. } => match register.read().map_err(|e| e.to_string())? {
            (_, Some(value)) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&value).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(|e| e.to_string())?;
                Ok(ExitCode::SUCCESS)
            }
            (_, None) => Ok(ExitCode::from(1)),
        },
    }
}
