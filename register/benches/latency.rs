//! Latency of the register's put and get over local `redis-server`s, as a multiple of one
//! store's SET and GET; round trips per operation; copies per store while 1, 4 and 16 clients
//! write at once.
//!
//!   cargo bench -p keyspace-register --bench latency [-- OPS]
//!
//! Starts its own redis-servers on 127.0.0.1 (ports below the ephemeral range) and stops them
//! by pid. One store is slowed by a proxy that holds every request `SLOW_MS` before passing it
//! on, or killed. Needs `redis-server` on PATH.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyspace_register::{Config, RedisStore, Register, Store, Variant};

const SLOW_MS: u64 = 20;
const TIMEOUT: Duration = Duration::from_secs(10);

struct Servers {
    children: Vec<Option<Child>>,
    ports: Vec<u16>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = 20_000 + std::process::id() % 5_000;
    loop {
        let port = (start + NEXT.fetch_add(1, Ordering::Relaxed)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn start_servers(n: usize) -> Servers {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let children = ports
        .iter()
        .map(|port| {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on PATH");
            Some(child)
        })
        .collect();
    for port in &ports {
        let mut store = RedisStore::new(&format!("127.0.0.1:{port}"), TIMEOUT);
        let start = Instant::now();
        while store.put("probe", b"1").is_err() {
            assert!(
                start.elapsed() < TIMEOUT,
                "redis-server on {port} does not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Servers { children, ports }
}

/// A proxy on a new port that holds each chunk of a request `delay` before passing it to
/// `target`; answers pass straight back.
fn slow_proxy(target: u16, delay: Duration) -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("proxy port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || pipe(client, server, delay));
            std::thread::spawn(move || pipe(s2, c2, Duration::ZERO));
        }
    });
    port
}

fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let mut buf = vec![0u8; 64 << 10];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        std::thread::sleep(delay);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn register(ports: &[u16], variant: Variant, client: u64, name: &str) -> Register {
    let stores: Vec<RedisStore> = ports
        .iter()
        .map(|p| RedisStore::new(&format!("127.0.0.1:{p}"), TIMEOUT))
        .collect();
    let mut register =
        Register::new(stores, Config::new(ports.len(), variant, client, name)).unwrap();
    register.set_timeout(TIMEOUT);
    register
}

/// (median put, median get, put round trips, get round trips) over `ops` of each.
fn measure(ports: &[u16], variant: Variant, ops: usize) -> (Duration, Duration, f64, f64) {
    let mut reg = register(ports, variant, 7, "bench");
    let (mut puts, mut gets, mut put_rt, mut get_rt) = (vec![], vec![], 0u64, 0u64);
    for i in 0..ops {
        let start = Instant::now();
        reg.write(format!("value-{i}").as_bytes()).expect("write");
        puts.push(start.elapsed());
        put_rt += u64::from(reg.last_round_trips());
        reg.settle(TIMEOUT); // clean-up between operations, as a lone client's would be
        let start = Instant::now();
        reg.read().expect("read");
        gets.push(start.elapsed());
        get_rt += u64::from(reg.last_round_trips());
    }
    let ops = ops as f64;
    (
        median(puts),
        median(gets),
        put_rt as f64 / ops,
        get_rt as f64 / ops,
    )
}

fn baseline(port: u16, ops: usize) -> (Duration, Duration) {
    let mut store = RedisStore::new(&format!("127.0.0.1:{port}"), TIMEOUT);
    let (mut sets, mut gets) = (vec![], vec![]);
    for i in 0..ops {
        let start = Instant::now();
        store.put("base", format!("value-{i}").as_bytes()).unwrap();
        sets.push(start.elapsed());
        let start = Instant::now();
        store.get("base").unwrap();
        gets.push(start.elapsed());
    }
    (median(sets), median(gets))
}

fn report(label: &str, base: (Duration, Duration), ports: &[u16], ops: usize) {
    for variant in [Variant::Regular, Variant::Atomic] {
        let (put, get, put_rt, get_rt) = measure(ports, variant, ops);
        println!(
            "| {} | {label} | {variant:?} | {:.3} ms ({:.1}x SET) | {:.3} ms ({:.1}x GET) | {put_rt:.2} | {get_rt:.2} |",
            ports.len(),
            put.as_secs_f64() * 1e3,
            put.as_secs_f64() / base.0.as_secs_f64(),
            get.as_secs_f64() * 1e3,
            get.as_secs_f64() / base.1.as_secs_f64(),
        );
    }
}

fn latency(n: usize, ops: usize) {
    let mut servers = start_servers(n);
    let base = baseline(servers.ports[0], ops * 2);
    println!(
        "| {n} | one store alone | SET / GET | {:.3} ms | {:.3} ms | 1 | 1 |",
        base.0.as_secs_f64() * 1e3,
        base.1.as_secs_f64() * 1e3
    );
    let ports = servers.ports.clone();
    report("all up", base, &ports, ops);
    let mut slowed = ports.clone();
    slowed[0] = slow_proxy(ports[0], Duration::from_millis(SLOW_MS));
    report(&format!("one +{SLOW_MS} ms"), base, &slowed, ops);
    let child = servers.children[0].as_mut().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    servers.children[0] = None;
    report("one dead", base, &ports, ops);
}

/// Most and mean copies on one store while `writers` clients write without pause, sampled by
/// listing every store; then the copies once they stopped and settled.
fn copies(writers: usize, duration: Duration) {
    let servers = start_servers(3);
    let ports = servers.ports.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let rts = Arc::new(Mutex::new((0u64, 0u64)));
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (ports, stop, rts) = (ports.clone(), stop.clone(), rts.clone());
            std::thread::spawn(move || {
                let mut reg = register(&ports, Variant::Atomic, w as u64 + 100, "copies");
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    reg.write(format!("w{w}-{i}").as_bytes()).expect("write");
                    let mut rts = rts.lock().unwrap();
                    rts.0 += 1;
                    rts.1 += u64::from(reg.last_round_trips());
                    i += 1;
                }
                reg.settle(TIMEOUT);
            })
        })
        .collect();
    let mut samplers: Vec<RedisStore> = ports
        .iter()
        .map(|p| RedisStore::new(&format!("127.0.0.1:{p}"), TIMEOUT))
        .collect();
    let (mut most, mut sum, mut samples) = (0, 0, 0);
    let start = Instant::now();
    while start.elapsed() < duration {
        for store in &mut samplers {
            let count = store.list("copies/").unwrap().len();
            most = most.max(count);
            sum += count;
            samples += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    // One more write after everyone stopped: its clean-up leaves the idle state.
    let mut last = register(&ports, Variant::Atomic, 99, "copies");
    last.write(b"last").unwrap();
    last.settle(TIMEOUT);
    let idle: Vec<usize> = samplers
        .iter_mut()
        .map(|s| s.list("copies/").unwrap().len())
        .collect();
    let (writes, rt) = *rts.lock().unwrap();
    println!(
        "| {writers} | {writes} | {:.1} | {most} | {:.2} | {idle:?} |",
        rt as f64 / writes.max(1) as f64,
        sum as f64 / samples.max(1) as f64,
    );
    drop(servers);
}

fn main() {
    let ops: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: redis-server is not on PATH (apt-get install redis-server)");
        return;
    }
    println!("median of {ops} operations each; one client; a write's clean-up settles before the next operation\n");
    println!("| stores | condition | variant | put | get | put round trips | get round trips |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    latency(3, ops);
    latency(5, ops);
    println!("\ncopies per store over 3 stores, atomic writers writing without pause for 2 s\n");
    println!("| writers | writes | round trips per write | most copies on a store | mean copies | copies per store after a last write |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for writers in [1, 4, 16] {
        copies(writers, Duration::from_secs(2));
    }
}
