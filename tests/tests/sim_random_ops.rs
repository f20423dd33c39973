//! Random sequences of application commands, server behaviour and time, in the simulation:
//! the engine never panics, and its promises hold after every step — nothing appears at a
//! local name before Complete, a file appears whole, final states stay final, and `error()` is
//! available exactly in ERROR and TRANSIENT_ERROR.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backhaul_core::{JobId, JobPriority, JobState};
use backhaul_tests::sim::{Reply, Resource, Sim};
use proptest::prelude::*;

const HOST: &str = "files.test";

#[derive(Clone, Debug)]
enum Op {
    Create,
    AddFile { job: usize, path: usize },
    Resume(usize),
    Suspend(usize),
    Cancel(usize),
    Complete(usize),
    Priority(usize, u32),
    RetryDelay(usize, u32),
    NoProgress(usize, u32),
    Script { path: usize, reply: u8, arg: u64 },
    Advance(u64),
    Step(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Create),
        3 => (0usize..4, 0usize..4).prop_map(|(job, path)| Op::AddFile { job, path }),
        3 => (0usize..4).prop_map(Op::Resume),
        1 => (0usize..4).prop_map(Op::Suspend),
        1 => (0usize..4).prop_map(Op::Cancel),
        2 => (0usize..4).prop_map(Op::Complete),
        1 => (0usize..4, 0u32..4).prop_map(|(j, p)| Op::Priority(j, p)),
        1 => (0usize..4, 0u32..30).prop_map(|(j, s)| Op::RetryDelay(j, s)),
        1 => (0usize..4, 0u32..120).prop_map(|(j, s)| Op::NoProgress(j, s)),
        2 => (0usize..4, 0u8..6, 0u64..40_000).prop_map(|(path, reply, arg)| Op::Script { path, reply, arg }),
        3 => (0u64..20_000).prop_map(Op::Advance),
        4 => (1u8..50).prop_map(Op::Step),
    ]
}

fn content(path: usize, version: u64) -> Resource {
    let len = 10_000 + path * 7_001 + (version as usize % 3) * 1_000;
    let body: Vec<u8> = (0..len)
        .map(|i| (i as u8) ^ (path as u8) ^ (version as u8))
        .collect();
    Resource::new(body, &format!("p{path}v{version}"))
}

proptest! {
    // PROPTEST_CASES=n runs more cases (CI runs the default).
    #![proptest_config(ProptestConfig::with_cases(cases(300)))]

    #[test]
    fn random_operations_keep_every_promise(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..60)) {
        let mut sim = Sim::new(seed);
        for path in 0..4 {
            sim.serve(HOST, 80, &format!("/p{path}"), content(path, 0));
        }
        let mut jobs: Vec<JobId> = Vec::new();
        let mut finals: BTreeMap<JobId, JobState> = BTreeMap::new();
        let mut versions = [0u64; 4];
        let mut file_n = 0;
        for op in ops {
            let pick = |i: usize, jobs: &[JobId]| (!jobs.is_empty()).then(|| jobs[i % jobs.len()]);
            match op {
                Op::Create => jobs.push(sim.create_job("random")),
                Op::AddFile { job, path } => if let Some(j) = pick(job, &jobs) {
                    file_n += 1;
                    let local = format!("/dl/f{file_n}");
                    let _ = sim.command(|e| e.job_mut(j)?.add_file(&format!("http://files.test/p{path}"), Path::new(&local)));
                },
                Op::Resume(i) => if let Some(j) = pick(i, &jobs) { let _ = sim.command(|e| e.job_mut(j)?.resume()); },
                Op::Suspend(i) => if let Some(j) = pick(i, &jobs) { let _ = sim.command(|e| e.job_mut(j)?.suspend()); },
                Op::Cancel(i) => if let Some(j) = pick(i, &jobs) { let _ = sim.command(|e| e.job_mut(j)?.cancel()); },
                Op::Complete(i) => if let Some(j) = pick(i, &jobs) { let _ = sim.command(|e| e.job_mut(j)?.complete()); },
                Op::Priority(i, p) => if let Some(j) = pick(i, &jobs) {
                    let p = JobPriority::from_u32(p).expect("0..4");
                    let _ = sim.command(|e| e.job_mut(j)?.set_priority(p));
                },
                Op::RetryDelay(i, s) => if let Some(j) = pick(i, &jobs) { let _ = sim.command(|e| e.job_mut(j)?.set_minimum_retry_delay(s)); },
                Op::NoProgress(i, s) => if let Some(j) = pick(i, &jobs) { let _ = sim.command(|e| e.job_mut(j)?.set_no_progress_timeout(s)); },
                Op::Script { path, reply, arg } => {
                    let reply = match reply {
                        0 => Reply::Serve,
                        1 => Reply::Truncate(arg),
                        2 => Reply::Status([404, 500, 503, 429, 302][arg as usize % 5], vec![("Location".into(), format!("/p{}", (path + 1) % 4)), ("Retry-After".into(), "7".into())]),
                        3 => { versions[path] += 1; Reply::ChangeTo(content(path, versions[path])) }
                        4 => { versions[path] += 1; Reply::ChangeToTruncated(content(path, versions[path]), arg) }
                        _ => Reply::Silence,
                    };
                    sim.script(HOST, 80, &format!("/p{path}"), vec![reply, Reply::Serve]);
                }
                Op::Advance(ms) => sim.advance(Duration::from_millis(ms)),
                Op::Step(n) => for _ in 0..n { if !sim.step() { break; } },
            }
            check_invariants(&sim, &jobs, &mut finals)?;
        }
    }
}

fn check_invariants(
    sim: &Sim,
    jobs: &[JobId],
    finals: &mut BTreeMap<JobId, JobState>,
) -> Result<(), TestCaseError> {
    for &job in jobs {
        let view = sim
            .engine
            .job(job)
            .expect("jobs are never forgotten while the engine runs");
        let state = view.state();
        if let Some(was) = finals.get(&job) {
            prop_assert_eq!(*was, state, "a final state changed (seed {})", sim.seed);
        }
        if state.is_final() {
            finals.insert(job, state);
        }
        let has_error = view.error().is_ok();
        let error_state = matches!(state, JobState::Error | JobState::TransientError);
        prop_assert_eq!(
            has_error,
            error_state,
            "error() availability in {} (seed {})",
            state,
            sim.seed
        );
        let progress = view.progress();
        prop_assert!(progress.files_transferred <= progress.files_total);
        for file in view.files() {
            let at_local: Option<&[u8]> =
                sim.files.get(&file.local_name).map(|f| f.data.as_slice());
            if state != JobState::Acknowledged && state != JobState::Transferred {
                // A rename that failed leaves a job TRANSFERRED; otherwise nothing is visible.
                prop_assert!(
                    at_local.is_none(),
                    "{} appeared while the job is {} (seed {})",
                    file.local_name.display(),
                    state,
                    sim.seed
                );
            }
            if let Some(bytes) = at_local {
                prop_assert!(
                    file.progress.completed,
                    "an incomplete file appeared (seed {})",
                    sim.seed
                );
                prop_assert_eq!(
                    bytes.len() as u64,
                    file.progress.bytes_total,
                    "a file appeared partial (seed {})",
                    sim.seed
                );
            }
            if state == JobState::Cancelled {
                if let Some(temp) = &file.temporary_name {
                    prop_assert!(
                        !sim.files.contains_key::<PathBuf>(temp),
                        "a cancelled job left its temp file (seed {})",
                        sim.seed
                    );
                }
            }
        }
    }
    Ok(())
}

/// `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
