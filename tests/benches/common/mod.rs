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

/// Descriptors this process has open now: number → what it refers to (`socket:[…]`,
/// `anon_inode:[eventpoll]`, a path), read_dir's own excluded.
pub fn open_fds() -> std::collections::BTreeMap<u32, String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Default::default();
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let fd = entry.file_name().to_str()?.parse().ok()?;
        // read_dir's own descriptor is gone by the time it is read: no link.
        let target = std::fs::read_link(entry.path()).ok()?;
        Some((fd, target.display().to_string()))
    })
    .collect()
}

/// What is open in `now` that was not in `before`, as `fd → target` text.
pub fn fds_opened_since(
    before: &std::collections::BTreeMap<u32, String>,
    now: &std::collections::BTreeMap<u32, String>,
) -> Vec<String> {
    now.iter()
        .filter(|(fd, target)| before.get(fd) != Some(target))
        .map(|(fd, target)| format!("{fd} → {target}"))
        .collect()
}

/// An environment variable as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
