//! What the benches share: timing a closure several times, medians, and the process figures
//! (peak RSS, open descriptors) read from `/proc/self`. Benches print figures and never assert
//! on time.

#![allow(dead_code, unreachable_pub)] // each bench uses a different part

use std::time::{Duration, Instant};

/// Runs `f` `runs` times and returns each run's duration, after one warm-up run.
pub fn time_runs(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    f();
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

/// Median, minimum and maximum of `values`.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    };
    (median, sorted[0], sorted[sorted.len() - 1])
}

/// `median (min–max)` with `digits` decimals.
pub fn show(values: &[f64], digits: usize) -> String {
    let (median, min, max) = spread(values);
    format!("{median:.digits$} ({min:.digits$}–{max:.digits$})")
}

/// A `/proc/self/status` field in KiB (`VmHWM`, `VmRSS`), as MiB.
pub fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Peak RSS of this process so far, MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM")
}

/// Descriptors this process has open now.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count().saturating_sub(1))
    // read_dir's own
}

/// An environment variable as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
