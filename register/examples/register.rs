//! The register as a library: three in-memory stores (swap in `RedisStore::new("host:port",
//! timeout)` for real ones), two clients writing, one store failing, reads still correct.
//!
//!   cargo run --release -p keyspace-register --example register

use keyspace_register::{Config, MemStore, Register, Store, StoreError, Variant};
use std::sync::{Arc, Mutex};

/// A store shared by the example's clients, which can be switched off.
#[derive(Clone)]
struct Shared {
    store: Arc<Mutex<MemStore>>,
    down: Arc<Mutex<bool>>,
}

impl Shared {
    fn check(&self) -> Result<(), StoreError> {
        if *self.down.lock().unwrap() {
            return Err(StoreError("the store is down".to_string()));
        }
        Ok(())
    }
}

impl Store for Shared {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        self.store.lock().unwrap().put(key, value)
    }
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.store.lock().unwrap().get(key)
    }
    fn list(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.check()?;
        self.store.lock().unwrap().list(prefix)
    }
    fn remove(&mut self, key: &str) -> Result<(), StoreError> {
        self.check()?;
        self.store.lock().unwrap().remove(key)
    }
}

fn config(client_id: u64) -> Config {
    Config::new(3, Variant::Atomic, client_id, "greeting")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stores: Vec<Shared> = (0..3)
        .map(|_| Shared {
            store: Arc::new(Mutex::new(MemStore::new())),
            down: Arc::new(Mutex::new(false)),
        })
        .collect();
    let mut alice = Register::new(stores.clone(), config(1))?;
    let mut bob = Register::new(stores.clone(), config(2))?;

    let ts = alice.write(b"hello")?;
    println!("alice wrote `hello` at {ts}");
    *stores[0].down.lock().unwrap() = true;
    println!("store 0 is down");
    bob.write(b"hi")?;
    let (ts, value) = alice.read()?;
    println!(
        "alice reads `{}` (written at {ts})",
        String::from_utf8_lossy(&value.unwrap_or_default())
    );
    Ok(())
}
