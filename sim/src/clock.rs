//! A replica's local clock: skewed by an offset and drifting at a fixed rate.

use keyspace_core::Nanos;

const PPM: i128 = 1_000_000;

/// `local(t) = offset + floor(t · (1e6 + drift_ppm) / 1e6)`: monotonic, never synchronized.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    offset_ns: Nanos,
    drift_ppm: i64,
}

impl Clock {
    pub fn new(offset_ns: Nanos, drift_ppm: i64) -> Self {
        assert!(
            drift_ppm.unsigned_abs() < 1_000_000,
            "a clock must run forward"
        );
        Clock {
            offset_ns,
            drift_ppm,
        }
    }

    /// The local reading at true time `true_ns`.
    pub fn local(&self, true_ns: Nanos) -> Nanos {
        let scaled = true_ns as i128 * (PPM + self.drift_ppm as i128) / PPM;
        self.offset_ns + scaled as Nanos
    }

    /// The earliest true time at which the local clock reads at least `local_ns`.
    pub fn true_at(&self, local_ns: Nanos) -> Nanos {
        if local_ns <= self.offset_ns {
            return 0;
        }
        let elapsed = (local_ns - self.offset_ns) as i128;
        let rate = PPM + self.drift_ppm as i128;
        let t = (elapsed * PPM + rate - 1) / rate;
        debug_assert!(self.local(t as Nanos) >= local_ns);
        t as Nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_at_inverts_local_at_extreme_drifts() {
        for drift in [-100_000, -1, 0, 7, 100_000] {
            let clock = Clock::new(123_456_789, drift);
            for t in [0, 1, 999, 1_000_000_007, 30_000_000_000] {
                let local = clock.local(t);
                let back = clock.true_at(local);
                assert!(back <= t, "drift {drift} t {t}");
                assert_eq!(clock.local(back), local, "drift {drift} t {t}");
                if back > 0 {
                    assert!(clock.local(back - 1) < local);
                }
            }
        }
    }
}
