//! Time as core sees it: a wall-clock [`Timestamp`] handed in by the driver with every input.
//!
//! Core never reads a clock. BITS' timers (retry delay, no-progress timeout, maximum download
//! time) must survive restarts, so they are kept in wall time. Time that goes backwards (a clock
//! step) is ignored by the engine: it keeps the latest time it has seen.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Wall-clock time in milliseconds since the Unix epoch, as given by the driver.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// A timestamp `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// A timestamp `secs` seconds after the Unix epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time since the Unix epoch, for APIs that want a [`Duration`].
    pub const fn since_epoch(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// `self + d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0 / 1000;
        let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
        write!(f, "{}", httpdate::fmt_http_date(t))
    }
}
