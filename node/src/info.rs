//! `INFO [section …]`: Redis 7.0's sections and fields, where they apply to keyspace.
//!
//! Fields of mechanisms keyspace does not have (RDB saves, AOF rewrites, forks, eviction,
//! expiry, pub/sub, replication backlogs) show what Redis shows when they never ran: zeros and
//! `ok`. `used_memory` is the process's resident memory (the store does not count its data's
//! bytes apart). keyspace's own figures (the log, the lease, the replica's role) are extra
//! fields of `persistence` and `replication`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use keyspace_core::Role;

use crate::connection::{ClientContext, Connection};
use crate::event::Status;

/// Sections `INFO` and `INFO default` show.
const DEFAULT_SECTIONS: [&str; 11] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
/// Sections only `all`, `everything` or their name show.
const EXTRA_SECTIONS: [&str; 2] = ["commandstats", "latencystats"];

/// The highest resident memory seen by `INFO` (`used_memory_peak`).
static PEAK_BYTES: AtomicU64 = AtomicU64::new(0);

pub async fn info_text(conn: &Connection<'_>, wanted: &[String]) -> String {
    let context = conn.context;
    let status = conn.status().await;
    let mut text = String::new();
    let sections = DEFAULT_SECTIONS.iter().chain(&EXTRA_SECTIONS);
    for name in sections.filter(|name| info_wants(wanted, name)) {
        let body = match *name {
            "server" => server_text(context),
            "clients" => clients_text(context),
            "memory" => memory_text(context),
            "persistence" => persistence_text(context, status.as_ref()),
            "stats" => stats_text(context),
            "replication" => status.as_ref().map(replication_text).unwrap_or_default(),
            "cpu" => cpu_text(),
            "errorstats" => errorstats_text(context),
            "cluster" => "cluster_enabled:0\r\n".to_string(),
            "keyspace" => (status.as_ref()).map_or(String::new(), |s| {
                keyspace_text(&s.keys_per_db, &s.expires_per_db)
            }),
            "commandstats" => commandstats_text(context),
            _ => String::new(), // modules, latencystats: none here
        };
        let mut title = name.to_string();
        title[..1].make_ascii_uppercase();
        text.push_str(&format!("# {title}\r\n{body}\r\n"));
    }
    text
}

/// Whether `INFO` with these arguments (lower case) shows `section`: no argument or `default`
/// shows the default sections; `all` and `everything` show every section.
pub fn info_wants(wanted: &[String], section: &str) -> bool {
    let default = DEFAULT_SECTIONS.contains(&section);
    if wanted.is_empty() {
        return default;
    }
    wanted.iter().any(|w| match w.as_str() {
        "all" | "everything" => true,
        "default" => default,
        named => named == section,
    })
}

/// `name:value\r\n` lines.
fn fields(pairs: &[(&str, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect()
}

/// 40 hex characters, fixed for the life of the process (Redis's `run_id`).
pub(crate) fn run_id() -> &'static str {
    static RUN_ID: OnceLock<String> = OnceLock::new();
    RUN_ID.get_or_init(|| {
        let (a, b, c) = (
            crate::random::<u64>(),
            crate::random::<u64>(),
            crate::random::<u32>(),
        );
        format!("{a:016x}{b:016x}{c:08x}")
    })
}

fn unix_usec() -> u128 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_micros())
}

fn server_text(context: &ClientContext) -> String {
    let uptime = context.started.elapsed().as_secs();
    let hz = context.config.get("hz");
    let executable = std::env::current_exe().map_or(String::new(), |p| p.display().to_string());
    fields(&[
        ("redis_version", "7.0.0".into()),
        ("keyspace_version", env!("CARGO_PKG_VERSION").into()),
        ("redis_git_sha1", "00000000".into()),
        ("redis_git_dirty", "0".into()),
        ("redis_build_id", "0".into()),
        ("redis_mode", "standalone".into()),
        ("os", std::env::consts::OS.into()),
        ("arch_bits", "64".into()),
        ("monotonic_clock", "POSIX clock_gettime".into()),
        ("multiplexing_api", "epoll".into()),
        ("atomicvar_api", "c11-builtin".into()),
        ("gcc_version", "0.0.0".into()),
        ("process_id", std::process::id().to_string()),
        ("process_supervised", "no".into()),
        ("run_id", run_id().into()),
        ("tcp_port", context.client_addr.port().to_string()),
        ("server_time_usec", unix_usec().to_string()),
        ("uptime_in_seconds", uptime.to_string()),
        ("uptime_in_days", (uptime / 86_400).to_string()),
        ("hz", hz.clone()),
        ("configured_hz", hz),
        (
            "lru_clock",
            ((unix_usec() / 1_000_000) & 0xFF_FFFF).to_string(),
        ),
        ("executable", executable),
        ("config_file", String::new()),
        ("io_threads_active", "0".into()),
    ])
}

fn clients_text(context: &ClientContext) -> String {
    fields(&[
        ("connected_clients", context.clients.len().to_string()),
        ("cluster_connections", "0".into()),
        ("maxclients", context.config.get("maxclients")),
        ("client_recent_max_input_buffer", "0".into()),
        ("client_recent_max_output_buffer", "0".into()),
        ("blocked_clients", "0".into()),
        ("tracking_clients", "0".into()),
        ("clients_in_timeout_table", "0".into()),
    ])
}

/// Bytes as Redis's `*_human` fields write them.
fn human_bytes(bytes: u64) -> String {
    let units = [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    match units.iter().find(|(_, size)| bytes >= *size) {
        Some((unit, size)) => format!("{:.2}{unit}", bytes as f64 / *size as f64),
        None => format!("{bytes}B"),
    }
}

fn memory_text(context: &ClientContext) -> String {
    let used = resident_bytes();
    let peak = PEAK_BYTES.fetch_max(used, Ordering::Relaxed).max(used);
    let maxmemory = context.config.maxmemory_bytes();
    let mut pairs = vec![
        ("used_memory", used.to_string()),
        ("used_memory_human", human_bytes(used)),
        ("used_memory_rss", used.to_string()),
        ("used_memory_rss_human", human_bytes(used)),
        ("used_memory_peak", peak.to_string()),
        ("used_memory_peak_human", human_bytes(peak)),
        (
            "used_memory_peak_perc",
            format!("{:.2}%", used as f64 * 100.0 / peak.max(1) as f64),
        ),
        ("used_memory_overhead", "0".into()),
        ("used_memory_startup", "0".into()),
        ("used_memory_dataset", used.to_string()),
        ("used_memory_dataset_perc", "100.00%".into()),
        ("total_system_memory", system_memory_bytes().to_string()),
        (
            "total_system_memory_human",
            human_bytes(system_memory_bytes()),
        ),
    ];
    for zero in [
        "used_memory_lua",
        "used_memory_vm_eval",
        "used_memory_scripts_eval",
    ] {
        pairs.push((zero, "0".into()));
    }
    for zero in [
        "number_of_cached_scripts",
        "number_of_functions",
        "number_of_libraries",
    ] {
        pairs.push((zero, "0".into()));
    }
    pairs.extend([
        ("maxmemory", maxmemory.to_string()),
        ("maxmemory_human", human_bytes(maxmemory)),
        ("maxmemory_policy", context.config.get("maxmemory-policy")),
        ("mem_fragmentation_ratio", "1.00".into()),
        ("mem_fragmentation_bytes", "0".into()),
        ("mem_not_counted_for_evict", "0".into()),
        ("mem_replication_backlog", "0".into()),
        ("mem_clients_slaves", "0".into()),
        ("mem_clients_normal", "0".into()),
        ("mem_aof_buffer", "0".into()),
        ("mem_allocator", "libc".into()),
        ("active_defrag_running", "0".into()),
        ("lazyfree_pending_objects", "0".into()),
        ("lazyfreed_objects", "0".into()),
    ]);
    fields(&pairs)
}

fn persistence_text(context: &ClientContext, status: Option<&Status>) -> String {
    let started_unix = (unix_usec() / 1_000_000) as u64 - context.started.elapsed().as_secs();
    let mut text = fields(&[
        ("loading", "0".into()),
        ("async_loading", "0".into()),
        ("rdb_changes_since_last_save", "0".into()),
        ("rdb_bgsave_in_progress", "0".into()),
        ("rdb_last_save_time", started_unix.to_string()),
        ("rdb_last_bgsave_status", "ok".into()),
        ("rdb_last_bgsave_time_sec", "-1".into()),
        ("rdb_current_bgsave_time_sec", "-1".into()),
        ("rdb_saves", "0".into()),
        ("aof_enabled", "1".into()),
        ("aof_rewrite_in_progress", "0".into()),
        ("aof_rewrite_scheduled", "0".into()),
        ("aof_last_rewrite_time_sec", "-1".into()),
        ("aof_current_rewrite_time_sec", "-1".into()),
        ("aof_last_bgrewrite_status", "ok".into()),
        ("aof_rewrites", "0".into()),
        ("aof_last_write_status", "ok".into()),
        ("module_fork_in_progress", "0".into()),
    ]);
    if let Some(s) = status {
        text.push_str(&fields(&[
            ("log_syncs", s.log_syncs.to_string()),
            ("log_records", s.log_records.to_string()),
            ("log_sync_us", s.log_sync_us.to_string()),
            ("log_syncs_off_loop", s.log_syncs_off_loop.to_string()),
            ("log_sync_recent_us", s.log_sync_recent_us.to_string()),
        ]));
    }
    text
}

fn stats_text(context: &ClientContext) -> String {
    let counter = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
    let errors: u64 = context.error_counts().iter().map(|(_, n)| n).sum();
    let mut pairs = vec![
        (
            "total_connections_received",
            counter(&context.total_connections),
        ),
        (
            "total_commands_processed",
            counter(&context.commands_processed),
        ),
        ("instantaneous_ops_per_sec", "0".into()),
        (
            "rejected_connections",
            context.clients.rejected().to_string(),
        ),
    ];
    for zero in [
        "sync_full",
        "sync_partial_ok",
        "sync_partial_err",
        "expired_keys",
        "expired_time_cap_reached_count",
        "evicted_keys",
        "evicted_clients",
        "keyspace_hits",
        "keyspace_misses",
        "pubsub_channels",
        "pubsub_patterns",
        "pubsubshard_channels",
        "latest_fork_usec",
        "total_forks",
        "migrate_cached_sockets",
        "tracking_total_keys",
        "tracking_total_items",
        "tracking_total_prefixes",
        "unexpected_error_replies",
    ] {
        pairs.push((zero, "0".into()));
    }
    pairs.push(("total_error_replies", errors.to_string()));
    fields(&pairs)
}

fn errorstats_text(context: &ClientContext) -> String {
    (context.error_counts().iter())
        .map(|(code, count)| format!("errorstat_{code}:count={count}\r\n"))
        .collect()
}

/// The process's resident memory in bytes (Linux; 0 elsewhere): what `used_memory` shows, and
/// what `maxmemory` is held to.
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a configuration value.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page_bytes).unwrap_or(4096)
}

fn system_memory_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
    kib.unwrap_or(0) * 1024
}

fn cpu_text() -> String {
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let usage = |who| {
        // SAFETY: getrusage writes one rusage into the zeroed value it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut usage) };
        (seconds(usage.ru_stime), seconds(usage.ru_utime))
    };
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (sys_children, user_children) = usage(libc::RUSAGE_CHILDREN);
    let (sys_main, user_main) = usage(libc::RUSAGE_THREAD);
    format!(
        "used_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:{sys_children:.6}\r\nused_cpu_user_children:{user_children:.6}\r\nused_cpu_sys_main_thread:{sys_main:.6}\r\nused_cpu_user_main_thread:{user_main:.6}\r\n"
    )
}

fn commandstats_text(context: &ClientContext) -> String {
    let stats = context
        .command_stats
        .lock()
        .expect("no panic while counting");
    stats
        .iter()
        .map(|(name, s)| {
            let per_call = s.usec as f64 / s.calls.max(1) as f64;
            format!(
                "cmdstat_{}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                name.to_lowercase(),
                s.calls,
                s.usec,
                s.rejected_calls,
                s.failed_calls
            )
        })
        .collect()
}

/// One line per database with keys, as Redis writes it.
pub fn keyspace_text(keys_per_db: &[usize], expires_per_db: &[usize]) -> String {
    let with_keys = keys_per_db.iter().enumerate().filter(|(_, &keys)| keys > 0);
    with_keys
        .map(|(db, keys)| {
            let expires = expires_per_db.get(db).copied().unwrap_or(0);
            format!("db{db}:keys={keys},expires={expires},avg_ttl=0\r\n")
        })
        .collect()
}

fn replication_text(s: &Status) -> String {
    let (role, keyspace_role) = match s.role {
        Role::Master => ("master", "master"),
        Role::Recovering => ("master", "recovering"),
        Role::Follower => ("slave", "follower"),
    };
    let master = s.master.map_or("none".to_string(), |m| m.to_string());
    let lease = match s.lease_remaining_ms {
        Some(ms) => format!("lease_held:1\r\nlease_remaining_ms:{ms}\r\n"),
        None => "lease_held:0\r\n".to_string(),
    };
    format!(
        "role:{role}\r\nconnected_slaves:{}\r\nkeyspace_role:{keyspace_role}\r\nnode_id:{}\r\nconfig_epoch:{}\r\nmember_kind:{}\r\nmaster_id:{master}\r\nballot:{}\r\ncommit_index:{}\r\napplied_index:{}\r\n{lease}connected_peers:{}/{}\r\nsessions:{}\r\nrequests_served:{}\r\nstorage_recovering:{}\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
        s.replication_streams, s.node_id, s.epoch, s.kind, s.ballot, s.chosen_through, s.applied_through, s.peers_connected, s.peers, s.sessions, s.requests_served, u8::from(s.storage_recovering), run_id(), s.applied_through,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_shows_default_sections_or_those_named() {
        let wanted =
            |args: &[&str]| -> Vec<String> { args.iter().map(|a| a.to_string()).collect() };
        assert!(info_wants(&wanted(&[]), "cpu"));
        assert!(info_wants(&wanted(&[]), "errorstats"));
        assert!(!info_wants(&wanted(&[]), "commandstats"));
        assert!(!info_wants(&wanted(&["default"]), "commandstats"));
        assert!(!info_wants(&wanted(&["default"]), "latencystats"));
        assert!(info_wants(&wanted(&["all"]), "commandstats"));
        assert!(info_wants(&wanted(&["everything"]), "latencystats"));
        assert!(info_wants(&wanted(&["cpu", "sentinel"]), "cpu"));
        assert!(!info_wants(&wanted(&["cpu", "sentinel"]), "memory"));
        assert!(info_wants(&wanted(&["cpu", "default"]), "memory"));
        assert!(cpu_text().contains("used_cpu_user:"));
    }

    #[test]
    fn info_keyspace_lists_each_database_with_keys() {
        let mut keys = vec![0; 16];
        assert_eq!(keyspace_text(&keys, &[]), "");
        keys[0] = 3;
        keys[9] = 1;
        assert_eq!(
            keyspace_text(&keys, &[]),
            "db0:keys=3,expires=0,avg_ttl=0\r\ndb9:keys=1,expires=0,avg_ttl=0\r\n"
        );
    }

    #[test]
    fn human_bytes_reads_as_redis_writes_it() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(3 << 20), "3.00M");
    }
}
