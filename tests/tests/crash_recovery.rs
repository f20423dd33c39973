//! Crash safety with real processes: `crash_worker` (tests/src/bin) runs multi-file jobs from a
//! slow loopback server over a redb store and is SIGKILLed at ≥ 20 seeded random points,
//! alternating the tokio and the blocking driver. In the end every job completes exactly once
//! with byte-identical files, no local name appears before its job's `complete`, no job is
//! lost or duplicated, and no temp file or record is left.
//!
//! The seed is printed; `BACKHAUL_CRASH_SEED=<n>` replays a run's kill schedule. The same
//! harness against `backhaul daemon`, driven by the verbs, is `cli/tests/daemon_crash.rs`
//! (docs/store.md, "Crash safety: how it is tested").

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backhaul_store::{JobStore, RedbStore};
use backhaul_tests::crash::{seed, Rng};
use backhaul_tests::{deterministic_bytes, FileSpec, Route, TestServer};

const JOBS: usize = 3;
const FILES_PER_JOB: usize = 2;
const FILE_LEN: usize = 768 * 1024;
/// Per connection: each file takes about 4 s unkilled, each job (its files in turn) about 8 s.
const RATE: u64 = 192 * 1024;
const KILLS: usize = 20;

fn worker() -> &'static str {
    env!("CARGO_BIN_EXE_crash_worker")
}

fn spawn(driver: &str, state: &Path, out: &Path, jobs: &[String]) -> Child {
    Command::new(worker())
        .arg(driver)
        .arg(state)
        .arg(out)
        .args(jobs)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash_worker")
}

/// At any moment: a job's local names exist only once the worker has started its `complete`.
fn check_nothing_at_local_names_before_complete(state: &Path, out: &Path, when: &str) {
    for i in 0..JOBS {
        if state.join(format!("completing-{i}")).exists() {
            continue;
        }
        for j in 0..FILES_PER_JOB {
            let local = out.join(format!("job{i}-{j}"));
            assert!(
                !local.exists(),
                "{} exists before job {i} was completed ({when})",
                local.display()
            );
        }
    }
}

#[test]
fn sigkill_at_random_points_never_loses_duplicates_or_corrupts_a_job() {
    let mut rng = Rng::new(seed());
    let mut routes = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..JOBS {
        for j in 0..FILES_PER_JOB {
            let body = deterministic_bytes(FILE_LEN, (i * 10 + j) as u64);
            routes.push(Route::file(
                &format!("/f{i}-{j}"),
                FileSpec::new(body.clone()).throttled(RATE),
            ));
            bodies.push(((i, j), body));
        }
    }
    let server = TestServer::start(routes);
    let jobs: Vec<String> = (0..JOBS)
        .map(|i| {
            (0..FILES_PER_JOB)
                .map(|j| server.url(&format!("/f{i}-{j}")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (state, out) = (dir.path().join("state"), dir.path().join("out"));
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&out).unwrap();

    // Kill every run at a random point until one finishes. Lives stay short for the first
    // KILLS kills, so they all land mid-transfer; then they lengthen, so the jobs finish (and
    // the later kills may land during `complete`).
    let started = Instant::now();
    let mut kills: usize = 0;
    let mut runs = 0;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no run finished in 90 s ({kills} kills)"
        );
        let driver = if rng.below(2) == 0 {
            "tokio"
        } else {
            "blocking"
        };
        let mut child = spawn(driver, &state, &out, &jobs);
        runs += 1;
        let extra = kills.saturating_sub(KILLS) as u64 * 50;
        let life = Duration::from_millis(60 + rng.below(240) + extra);
        std::thread::sleep(life);
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "worker run {runs} failed: {status}");
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        check_nothing_at_local_names_before_complete(
            &state,
            &out,
            &format!("after kill {kills}, {life:?} into a {driver} run"),
        );
    }
    eprintln!("{kills} kills in {runs} runs, {:?}", started.elapsed());
    assert!(
        kills >= KILLS,
        "the jobs finished after only {kills} kills: slow the server down"
    );

    for ((i, j), body) in &bodies {
        assert!(
            state.join(format!("done-{i}")).exists(),
            "job {i} completed"
        );
        let got = std::fs::read(out.join(format!("job{i}-{j}"))).unwrap();
        assert!(got == body[..], "job{i}-{j} is byte-identical");
    }
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
    let log = std::fs::read_to_string(state.join("runs.log")).unwrap();
    for (n, line) in log.lines().enumerate() {
        let names: Vec<&str> = line.split_whitespace().collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "run {n} found a job twice: {line}"
        );
        assert!(names.len() <= JOBS, "run {n} found extra jobs: {line}");
    }
    let store = RedbStore::open(state.join("jobs.redb")).unwrap();
    assert!(
        store.load_all().unwrap().is_empty(),
        "every record is forgotten once its job is acknowledged"
    );
    drop(server);
}
