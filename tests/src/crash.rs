//! What the crash harnesses share (`tests/tests/crash_recovery.rs` against a bare manager,
//! `cli/tests/daemon_crash.rs` against `backhaul daemon`): the seed of a kill schedule, printed
//! so that a failing run can be replayed, and the small generator that draws the schedule.

/// The seed of this run's kill schedule: `BACKHAUL_CRASH_SEED` if set (a replay), else the
/// clock. Printed to stderr either way, with the variable that replays it.
pub fn seed() -> u64 {
    let seed = std::env::var("BACKHAUL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("crash schedule seed {seed}: replay with BACKHAUL_CRASH_SEED={seed}");
    seed
}

/// xorshift64*: enough for a kill schedule, and the same on every platform, so a seed replays.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value: xorshift needs a non-zero state, so the low bit is set).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}
