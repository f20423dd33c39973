//! Wall time for the engine: [`now`] for every input, [`sleep_for`] to wait for a deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backhaul_core::Timestamp;

/// Longest a driver sleeps without looking at the wall clock again.
///
/// Deadlines are wall time, but timers sleep on a monotonic clock, which stops while the machine
/// is suspended and ignores clock steps. Waking at least this often bounds how late a deadline
/// fires after either. A wake-up before the deadline feeds nothing to the engine.
pub const MAX_SLEEP: Duration = Duration::from_secs(5);

/// The current wall time.
pub fn now() -> Timestamp {
    Timestamp::from_millis(u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX))
}

/// Whether `deadline` has passed.
pub fn is_due(deadline: Timestamp) -> bool {
    now() >= deadline
}

/// How long to sleep before looking at `deadline` again: the time left, at most [`MAX_SLEEP`].
///
/// Computed from the precise clock, so that after sleeping this long [`now`] (which truncates to
/// milliseconds) has reached the deadline.
pub fn sleep_for(deadline: Timestamp) -> Duration {
    deadline
        .since_epoch()
        .saturating_sub(since_epoch())
        .min(MAX_SLEEP)
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}
