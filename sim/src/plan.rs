//! Fault profiles and the fault plan one seed draws from them (swarm testing: not only which
//! faults happen but how often is drawn from the seed, so a sweep covers many mixes).

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use keyspace_core::kv::StateMachineConfig;
use keyspace_core::Nanos;

pub const NANOS_PER_MICRO: Nanos = 1_000;
pub const NANOS_PER_MILLI: Nanos = 1_000_000;
pub const NANOS_PER_SEC: Nanos = 1_000_000_000;
/// Longest downtime of a replica that died right after its first lease grant: it comes back
/// while the lease it granted is still held.
pub const GRANT_CRASH_DOWNTIME_MAX_NS: Nanos = 100 * NANOS_PER_MILLI;

/// Which families of faults a run may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// A well-behaved cluster: short random delays only.
    None,
    /// Message loss, duplication, reordering, long-tail delays, partitions.
    Net,
    /// Clock skew and drift within the configured bound, process pauses.
    Clock,
    /// Crashes and restarts that lose unsynced writes, slow disks.
    Crash,
    /// Storage faults within the fault budget (bit flips, misdirected writes, latent read
    /// errors on a minority; torn writes and lost unsynced writes anywhere), with crashes.
    Disk,
    /// Every family above, each switched on or off by the seed.
    All,
}

impl Profile {
    pub const ALL: [Profile; 6] = [
        Profile::None,
        Profile::Net,
        Profile::Clock,
        Profile::Crash,
        Profile::Disk,
        Profile::All,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::None => "none",
            Profile::Net => "net",
            Profile::Clock => "clock",
            Profile::Crash => "crash",
            Profile::Disk => "disk",
            Profile::All => "all",
        }
    }

    fn net(self) -> bool {
        matches!(self, Profile::Net | Profile::All)
    }

    fn clock(self) -> bool {
        matches!(self, Profile::Clock | Profile::All)
    }

    fn crash(self) -> bool {
        matches!(self, Profile::Crash | Profile::All)
    }

    fn disk(self) -> bool {
        matches!(self, Profile::Disk | Profile::All)
    }

    fn membership(self) -> bool {
        matches!(self, Profile::Disk | Profile::All)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("unknown fault profile `{s}`; expected one of none, net, clock, crash, disk, all")
            })
    }
}

/// Every rate and bound of one run, drawn from the seed. Probabilities are in parts per million.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultPlan {
    pub profile: Profile,
    // Network.
    pub delay_min_ns: Nanos,
    pub delay_jitter_ns: Nanos,
    pub tail_ppm: u32,
    pub tail_max_ns: Nanos,
    pub loss_ppm: u32,
    pub dup_ppm: u32,
    /// Mean time between partitions; 0 means none.
    pub partition_every_ns: Nanos,
    pub partition_max_ns: Nanos,
    // Clocks and scheduling.
    /// The drift-rate bound every replica is configured with (ρ).
    pub drift_bound_ppm: u64,
    /// Each replica's actual drift rate, within ±`drift_bound_ppm`.
    pub drift_ppm: Vec<i64>,
    /// Each replica's clock offset (skew): local clocks never agree.
    pub clock_offset_ns: Vec<Nanos>,
    /// Mean time between process pauses; 0 means none.
    pub pause_every_ns: Nanos,
    pub pause_max_ns: Nanos,
    // Crashes and disks.
    /// Mean time between crashes; 0 means none.
    pub crash_every_ns: Nanos,
    pub downtime_max_ns: Nanos,
    pub sync_min_ns: Nanos,
    pub sync_jitter_ns: Nanos,
    /// Whether a crash may keep a random prefix of the unsynced writes (they reached the disk
    /// without a sync) instead of losing all of them.
    pub crash_keeps_unsynced_prefix: bool,
    /// The replicas that die right after their first lease grant to another replica, often
    /// before anything they wrote is durable, and come straight back (the case the restart
    /// quiet period exists for, which only a brand-new cluster may skip).
    pub crash_after_first_grant: Vec<bool>,
    // Storage faults (see the fault budget in the README).
    /// The fault atlas: the replicas whose storage may be corrupted at rest (a minority).
    pub storage_faulty: Vec<bool>,
    /// Mean time between faults at rest on the atlas's replicas; 0 means none.
    pub storage_fault_every_ns: Nanos,
    pub bit_flips: bool,
    pub misdirected_writes: bool,
    pub read_errors: bool,
    /// Whether a crash may tear the write in flight (keep a prefix of its sectors).
    pub torn_writes: bool,
    /// The size of a log segment: small ones make the log roll over into new segments and
    /// compaction delete old ones often (drawn last, so adding it changed no other field).
    pub segment_bytes: u64,
    // Snapshots (not faults, but drawn too: small intervals exercise compaction and transfer).
    pub snapshot_interval_slots: u64,
    pub log_retain_slots: u64,
    /// How often the master logs a consistency checkpoint (derived, not drawn, so that adding
    /// it changed no seed's plan).
    pub checkpoint_interval_slots: u64,
    /// The state machine's session limits: small ones make the store forget sessions, so
    /// clients see `StaleRequest` and open new ones (drawn after everything else, so adding
    /// them changed no other field of any seed's plan).
    pub sessions_max: usize,
    pub session_idle_slots_max: u64,
    // Liveness phase.
    /// Whether the liveness phase leaves a minority crashed or cut off.
    pub liveness_minority_down: bool,
    // Membership (drawn from a stream of its own, so adding it changed no other draw).
    /// Mean time between membership changes the simulator asks the master for; 0 means none.
    pub membership_every_ns: Nanos,
    /// Replicas with new ids the simulator may start and add (ids after the founding ones).
    pub spare_ids: usize,
    // Wall clocks (drawn last, so adding them changed no other field of any seed's plan).
    /// Every replica's wall clock is within this of true time (the expiry drift bound).
    pub clock_error_max_ms: u64,
    /// Derives each replica's wall clock error (see [`FaultPlan::wall_error_ms`]).
    pub wall_error_seed: u64,
    /// The lagging-voter fault (drawn from a stream of its own): while the master and a
    /// replica of the atlas choose two membership changes, the other voters (a minority) are
    /// down; then the master and any other voter crash, and the atlas replica restarts with
    /// everything it wrote since the first change damaged, next to the voters that lag.
    pub lagging_voter: bool,
}

/// The Unix time (ms) the simulated world starts at: wall clocks read it plus true time.
pub const WALL_EPOCH_MS: u64 = 1_800_000_000_000;

impl FaultPlan {
    /// Replica `index`'s wall clock error, within ±`clock_error_max_ms`, the bound's ends
    /// favoured (where expiry is judged most differently).
    pub fn wall_error_ms(&self, index: usize) -> i64 {
        let bound = self.clock_error_max_ms as i64;
        if bound == 0 {
            return 0;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.wall_error_seed ^ index as u64);
        match rng.gen_range(0..3) {
            0 => bound,
            1 => -bound,
            _ => rng.gen_range(-bound..=bound),
        }
    }

    /// Replica `index`'s wall clock at true time `true_ns`, in Unix milliseconds.
    pub fn wall_ms(&self, index: usize, true_ns: Nanos) -> u64 {
        let true_ms = WALL_EPOCH_MS + true_ns / NANOS_PER_MILLI;
        true_ms.saturating_add_signed(self.wall_error_ms(index))
    }

    fn draw_wall_clocks(&mut self, rng: &mut ChaCha8Rng, skew: bool) {
        self.wall_error_seed = rng.gen();
        self.clock_error_max_ms = match skew {
            true => pick(rng, &[0, 5, 50, 200]),
            false => 0,
        };
    }
}

/// Draws `true` with probability `ppm / 1e6`.
pub fn chance(rng: &mut ChaCha8Rng, ppm: u32) -> bool {
    ppm > 0 && rng.gen_range(0..1_000_000u32) < ppm
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, options: &[T]) -> T {
    options[rng.gen_range(0..options.len())]
}

/// The independent random streams of a run, all derived from its one seed.
pub struct Streams {
    pub plan: ChaCha8Rng,
    pub net: ChaCha8Rng,
    pub disk: ChaCha8Rng,
    pub faults: ChaCha8Rng,
    pub workload: ChaCha8Rng,
    pub node_seeds: ChaCha8Rng,
    /// Faults at rest (a stream of its own, so adding them left the other streams unchanged).
    pub storage: ChaCha8Rng,
    /// Membership changes (likewise).
    pub membership: ChaCha8Rng,
    /// The lagging-voter fault (likewise).
    pub lagging: ChaCha8Rng,
}

impl Streams {
    pub fn new(seed: u64) -> Streams {
        let mut master = ChaCha8Rng::seed_from_u64(seed);
        let mut sub = || ChaCha8Rng::seed_from_u64(master.gen());
        Streams {
            plan: sub(),
            net: sub(),
            disk: sub(),
            faults: sub(),
            workload: sub(),
            node_seeds: sub(),
            storage: sub(),
            membership: sub(),
            lagging: sub(),
        }
    }
}

/// Which faults of the enabled families a run has (swarm testing: each fault of an enabled
/// family is itself switched on with probability 3/4).
struct Switches {
    loss: bool,
    dup: bool,
    tail: bool,
    jitter: bool,
    partition: bool,
    skew: bool,
    drift: bool,
    pause: bool,
    crash: bool,
    slow_disk: bool,
}

impl Switches {
    fn draw(profile: Profile, rng: &mut ChaCha8Rng) -> Switches {
        let mut on = |enabled: bool| enabled && rng.gen_range(0..4) != 0;
        Switches {
            loss: on(profile.net()),
            dup: on(profile.net()),
            tail: on(profile.net()),
            jitter: on(profile.net()),
            partition: on(profile.net()),
            skew: on(profile.clock()),
            drift: on(profile.clock()),
            pause: on(profile.clock()),
            crash: on(profile.crash()),
            slow_disk: on(profile.crash()),
        }
    }
}

impl FaultPlan {
    /// The plan the run of `options` draws.
    pub fn draw_for(options: &crate::SimOptions) -> FaultPlan {
        let mut streams = Streams::new(options.seed);
        let mut plan = FaultPlan::draw(options.faults, options.nodes, &mut streams.plan);
        plan.draw_membership(&mut streams.membership);
        plan.draw_lagging_voter(&mut streams.lagging);
        if options.storage_beyond_budget {
            plan.exceed_storage_budget();
        }
        plan
    }

    /// Draws the plan of one run for `nodes` replicas.
    pub fn draw(profile: Profile, nodes: usize, rng: &mut ChaCha8Rng) -> FaultPlan {
        let on = Switches::draw(profile, rng);
        let keep_prefix = rng.gen_bool(0.5);
        let mut plan = FaultPlan {
            profile,
            delay_min_ns: rng.gen_range(50..=500) * NANOS_PER_MICRO,
            delay_jitter_ns: NANOS_PER_MILLI,
            tail_ppm: 0,
            tail_max_ns: 0,
            loss_ppm: 0,
            dup_ppm: 0,
            partition_every_ns: 0,
            partition_max_ns: 0,
            drift_bound_ppm: 10_000,
            drift_ppm: vec![0; nodes],
            clock_offset_ns: vec![0; nodes],
            pause_every_ns: 0,
            pause_max_ns: 0,
            crash_every_ns: 0,
            downtime_max_ns: 0,
            sync_min_ns: rng.gen_range(20..=200) * NANOS_PER_MICRO,
            sync_jitter_ns: 500 * NANOS_PER_MICRO,
            crash_keeps_unsynced_prefix: keep_prefix,
            crash_after_first_grant: vec![false; nodes],
            liveness_minority_down: profile != Profile::None && rng.gen_bool(0.5),
            snapshot_interval_slots: pick(rng, &[20, 100, 10_000]),
            log_retain_slots: pick(rng, &[0, 5, 50]),
            checkpoint_interval_slots: 0,
            sessions_max: 0,
            session_idle_slots_max: 0,
            storage_faulty: vec![false; nodes],
            storage_fault_every_ns: 0,
            bit_flips: false,
            misdirected_writes: false,
            read_errors: false,
            torn_writes: false,
            segment_bytes: 0,
            membership_every_ns: 0,
            spare_ids: 0,
            clock_error_max_ms: 0,
            wall_error_seed: 0,
            lagging_voter: false,
        };
        plan.draw_network(rng, &on, nodes);
        plan.draw_clocks(rng, on.skew, on.drift);
        plan.draw_process_faults(rng, &on);
        if profile.disk() {
            plan.draw_storage(rng, nodes);
        }
        plan.checkpoint_interval_slots = 7 + plan.snapshot_interval_slots % 13;
        plan.draw_session_limits(rng);
        plan.segment_bytes = pick(rng, &[16, 64, 256]) * 1024;
        plan.draw_grant_crashes(rng);
        plan.draw_wall_clocks(rng, on.skew);
        plan
    }

    /// Membership changes, for three seeds in four of a profile with them: how often, and how
    /// many spare replicas (each with a clock of its own within the drift bound).
    pub fn draw_membership(&mut self, rng: &mut ChaCha8Rng) {
        if !self.profile.membership() || rng.gen_range(0..4) == 0 {
            return;
        }
        self.membership_every_ns = pick(rng, &[300, 1_000, 2_000]) * NANOS_PER_MILLI;
        self.spare_ids = pick(rng, &[2, 4]);
        let bound = self.drift_bound_ppm as i64;
        for _ in 0..self.spare_ids {
            self.drift_ppm.push(rng.gen_range(-bound..=bound));
            self.clock_offset_ns
                .push(rng.gen_range(0..1_000) * NANOS_PER_SEC);
            self.storage_faulty.push(false);
            self.crash_after_first_grant.push(false);
        }
    }

    /// The lagging-voter fault, for one seed in two of those with membership changes and a
    /// replica whose storage may be damaged.
    pub fn draw_lagging_voter(&mut self, rng: &mut ChaCha8Rng) {
        let atlas = self.storage_faulty.iter().any(|&faulty| faulty);
        self.lagging_voter = self.membership_every_ns > 0 && atlas && rng.gen_bool(0.5);
    }

    /// The network's rates: delay jitter, long tails, loss, duplication, partitions.
    fn draw_network(&mut self, rng: &mut ChaCha8Rng, on: &Switches, nodes: usize) {
        if on.jitter {
            self.delay_jitter_ns = pick(rng, &[2, 5, 20, 50]) * NANOS_PER_MILLI;
        }
        if on.tail {
            self.tail_ppm = pick(rng, &[1_000, 10_000, 50_000]);
            self.tail_max_ns = pick(rng, &[200, 1_000, 3_000, 10_000]) * NANOS_PER_MILLI;
        }
        if on.loss {
            self.loss_ppm = pick(rng, &[1_000, 10_000, 50_000, 200_000]);
        }
        if on.dup {
            self.dup_ppm = pick(rng, &[1_000, 10_000, 100_000]);
        }
        if on.partition && nodes > 1 {
            self.partition_every_ns = pick(rng, &[1, 3, 8]) * NANOS_PER_SEC;
            self.partition_max_ns = pick(rng, &[500, 2_000, 5_000]) * NANOS_PER_MILLI;
        }
    }

    /// Pauses, crashes and slow disks.
    fn draw_process_faults(&mut self, rng: &mut ChaCha8Rng, on: &Switches) {
        if on.pause {
            self.pause_every_ns = pick(rng, &[1, 3, 8]) * NANOS_PER_SEC;
            self.pause_max_ns = pick(rng, &[100, 1_000, 3_000]) * NANOS_PER_MILLI;
        }
        if on.crash {
            self.crash_every_ns = pick(rng, &[1, 3, 8]) * NANOS_PER_SEC;
            self.downtime_max_ns = pick(rng, &[200, 1_000, 4_000]) * NANOS_PER_MILLI;
        }
        if on.slow_disk {
            self.sync_min_ns = pick(rng, &[200, 1_000]) * NANOS_PER_MICRO;
            self.sync_jitter_ns = pick(rng, &[2, 10, 50]) * NANOS_PER_MILLI;
        }
    }

    /// One seed in two of those that crash replicas has each replica die after its first
    /// lease grant with probability 1/2 (drawn last, so adding it changed no other field).
    fn draw_grant_crashes(&mut self, rng: &mut ChaCha8Rng) {
        if self.crash_every_ns > 0 && rng.gen_bool(0.5) {
            for crashes in &mut self.crash_after_first_grant {
                *crashes = rng.gen_bool(0.5);
            }
        }
    }

    /// Whether the store may forget a session during the run (limits below the defaults).
    pub fn forgets_sessions(&self) -> bool {
        let defaults = StateMachineConfig::default();
        self.sessions_max < defaults.sessions_max
            || self.session_idle_slots_max < defaults.session_idle_slots_max
    }

    /// One seed in three forgets sessions by count (the least recently used beyond 2 or 3, so
    /// one or two of the four clients are always out), one in three by idleness (no write for 5
    /// to 20 slots); the defaults otherwise. (At 4 or more, nothing is ever forgotten.)
    fn draw_session_limits(&mut self, rng: &mut ChaCha8Rng) {
        let defaults = StateMachineConfig::default();
        self.sessions_max = match rng.gen_range(0..3) {
            0 => pick(rng, &[2, 3]),
            _ => defaults.sessions_max,
        };
        self.session_idle_slots_max = match rng.gen_range(0..3) {
            0 => rng.gen_range(5..=20),
            _ => defaults.session_idle_slots_max,
        };
    }

    /// Storage faults, drawn last so the other profiles' plans are unchanged. Disk faults show
    /// only when a replica restarts and loads, so the `disk` profile always crashes.
    fn draw_storage(&mut self, rng: &mut ChaCha8Rng, nodes: usize) {
        if self.profile == Profile::Disk {
            self.crash_every_ns = pick(rng, &[1, 3, 8]) * NANOS_PER_SEC;
            self.downtime_max_ns = pick(rng, &[200, 1_000, 4_000]) * NANOS_PER_MILLI;
        }
        let mut on = || rng.gen_range(0..4) != 0;
        let (flips, misdirected, read_errors, torn) = (on(), on(), on(), on());
        self.bit_flips = flips;
        self.misdirected_writes = misdirected;
        self.read_errors = read_errors;
        self.torn_writes = torn;
        // The atlas: up to a minority, chosen up front.
        let minority = (nodes - 1) / 2;
        let faulty = rng.gen_range(0..=minority);
        let mut order: Vec<usize> = (0..nodes).collect();
        for i in 0..nodes {
            let j = rng.gen_range(i..nodes);
            order.swap(i, j);
        }
        for &i in &order[..faulty] {
            self.storage_faulty[i] = true;
        }
        if flips || misdirected || read_errors {
            self.storage_fault_every_ns = pick(rng, &[1, 3, 8]) * NANOS_PER_SEC;
        }
    }

    /// Outside the budget (for tests): a majority has faulty storage, with every fault at rest.
    pub fn exceed_storage_budget(&mut self) {
        let nodes = self.storage_faulty.len();
        let majority = nodes / 2 + 1;
        self.storage_faulty = (0..nodes).map(|i| i < majority).collect();
        self.storage_fault_every_ns = NANOS_PER_SEC;
        self.bit_flips = true;
        self.misdirected_writes = true;
        self.read_errors = true;
    }

    fn draw_clocks(&mut self, rng: &mut ChaCha8Rng, skew: bool, drift: bool) {
        if skew {
            for offset in &mut self.clock_offset_ns {
                *offset = rng.gen_range(0..1_000_000 * NANOS_PER_SEC);
            }
        }
        if drift {
            self.drift_bound_ppm = pick(rng, &[100, 1_000, 10_000, 50_000, 100_000]);
            let bound = self.drift_bound_ppm as i64;
            for rate in &mut self.drift_ppm {
                // The extremes are where the lease arithmetic is tight: favour them.
                *rate = match rng.gen_range(0..3) {
                    0 => bound,
                    1 => -bound,
                    _ => rng.gen_range(-bound..=bound),
                };
            }
        }
    }
}

fn ms(ns: Nanos) -> String {
    format!("{}ms", ns as f64 / NANOS_PER_MILLI as f64)
}

fn every(ns: Nanos) -> String {
    if ns == 0 {
        "off".to_string()
    } else {
        format!("every ~{}s", ns / NANOS_PER_SEC)
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |ppm: u32| format!("{}%", ppm as f64 / 10_000.0);
        writeln!(
            f,
            "  network: delay {} + up to {}, long tail {} up to {}, loss {}, duplication {}",
            ms(self.delay_min_ns),
            ms(self.delay_jitter_ns),
            pct(self.tail_ppm),
            ms(self.tail_max_ns),
            pct(self.loss_ppm),
            pct(self.dup_ppm)
        )?;
        writeln!(
            f,
            "  partitions: {} lasting up to {}",
            every(self.partition_every_ns),
            ms(self.partition_max_ns)
        )?;
        let skewed = self.clock_offset_ns.iter().any(|o| *o != 0);
        writeln!(
            f,
            "  clocks: drift bound {}ppm, drift {:?}ppm, skew {}; pauses {} lasting up to {}; wall clocks within {}ms of true time (keyspace-check --clock-epoch-ms {WALL_EPOCH_MS} --clock-error-ms {})",
            self.drift_bound_ppm,
            self.drift_ppm,
            if skewed { "on" } else { "off" },
            every(self.pause_every_ns),
            ms(self.pause_max_ns),
            self.clock_error_max_ms,
            self.clock_error_max_ms
        )?;
        let grant_crashes: Vec<usize> = (0..self.crash_after_first_grant.len())
            .filter(|&i| self.crash_after_first_grant[i])
            .map(|i| i + 1)
            .collect();
        writeln!(
            f,
            "  crashes: {} down up to {}; sync {} + up to {}; unsynced prefix may survive: {}; right after the first lease grant: replicas {grant_crashes:?}",
            every(self.crash_every_ns),
            ms(self.downtime_max_ns),
            ms(self.sync_min_ns),
            ms(self.sync_jitter_ns),
            self.crash_keeps_unsynced_prefix
        )?;
        let faulty: Vec<usize> = (0..self.storage_faulty.len())
            .filter(|&i| self.storage_faulty[i])
            .map(|i| i + 1)
            .collect();
        writeln!(
            f,
            "  storage: faults at rest {} on replicas {faulty:?} (bit flips {}, misdirected writes {}, read errors {}); torn writes {}; segments of {} KiB",
            every(self.storage_fault_every_ns),
            self.bit_flips,
            self.misdirected_writes,
            self.read_errors,
            self.torn_writes,
            self.segment_bytes / 1024
        )?;
        self.fmt_rest(f)
    }
}

impl FaultPlan {
    /// The plan's last lines: sessions, membership changes, the liveness phase.
    fn fmt_rest(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  sessions: at most {}, forgotten after {} idle slots",
            self.sessions_max, self.session_idle_slots_max
        )?;
        writeln!(
            f,
            "  membership changes: every ~{} ms with {} spare replicas",
            self.membership_every_ns / NANOS_PER_MILLI,
            self.spare_ids
        )?;
        writeln!(f, "  lagging-voter fault: {}", self.lagging_voter)?;
        write!(
            f,
            "  liveness phase leaves a minority down: {}",
            self.liveness_minority_down
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(seed: u64) -> FaultPlan {
        let options = crate::SimOptions {
            faults: Profile::Disk,
            ..crate::SimOptions::new(seed)
        };
        FaultPlan::draw_for(&options)
    }

    #[test]
    fn the_lagging_voter_fault_is_drawn_only_with_membership_changes_and_an_atlas_replica() {
        let plans: Vec<FaultPlan> = (0..200).map(plan_of).collect();
        for plan in &plans {
            let atlas = plan.storage_faulty.iter().any(|&faulty| faulty);
            if plan.lagging_voter {
                assert!(plan.membership_every_ns > 0 && atlas, "{plan}");
            }
        }
        let drawn = plans.iter().filter(|plan| plan.lagging_voter).count();
        assert!((20..=80).contains(&drawn), "drawn in {drawn} of 200 plans");
    }
}
