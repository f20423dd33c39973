//! Scenarios for scheduling: foreground concurrency, background priorities, round robin.

use std::path::Path;
use std::time::Duration;

use backhaul_core::{JobId, JobPriority, JobState};
use backhaul_tests::sim::{Reply, Resource, Sim};

const HOST: &str = "files.test";

/// A job on `/path` (a server that never answers, so it stays running) at `priority`.
fn stuck_job(sim: &mut Sim, name: &str, priority: JobPriority) -> JobId {
    let path = format!("/{name}");
    sim.serve(HOST, 80, &path, Resource::new(vec![1; 10], "v"));
    sim.script(HOST, 80, &path, vec![Reply::Silence]);
    let job = sim.create_job(name);
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file(
            &format!("http://files.test{path}"),
            Path::new(&format!("/dl/{name}")),
        )?;
        j.set_priority(priority)?;
        j.resume()
    })
    .unwrap();
    job
}

fn running(sim: &Sim, jobs: &[JobId]) -> Vec<bool> {
    jobs.iter().map(|j| sim.state(*j).is_running()).collect()
}

fn long_receive_timeout() -> backhaul_core::Config {
    let mut config = backhaul_core::Config::new([0; 32]);
    config.receive_timeout = Duration::from_secs(100_000);
    config
}

#[test]
fn foreground_jobs_all_run_at_once_beside_one_background_job() {
    let mut sim = Sim::with_config(1, long_receive_timeout());
    let fg: Vec<JobId> = (0..5)
        .map(|i| stuck_job(&mut sim, &format!("fg{i}"), JobPriority::Foreground))
        .collect();
    let bg: Vec<JobId> = (0..3)
        .map(|i| stuck_job(&mut sim, &format!("bg{i}"), JobPriority::Normal))
        .collect();
    sim.advance(Duration::from_millis(100));
    assert_eq!(running(&sim, &fg), [true; 5]);
    assert_eq!(running(&sim, &bg), [true, false, false]);
    assert_eq!(sim.state(bg[1]), JobState::Queued);
}

#[test]
fn a_higher_priority_background_job_preempts_a_lower_one() {
    let mut sim = Sim::with_config(1, long_receive_timeout());
    let low = stuck_job(&mut sim, "low", JobPriority::Low);
    sim.advance(Duration::from_millis(100));
    assert!(sim.state(low).is_running());
    let high = stuck_job(&mut sim, "high", JobPriority::High);
    sim.advance(Duration::from_millis(100));
    assert!(sim.state(high).is_running());
    assert_eq!(sim.state(low), JobState::Queued);
    sim.command(|e| e.job_mut(high)?.suspend()).unwrap();
    sim.advance(Duration::from_millis(100));
    assert!(
        sim.state(low).is_running(),
        "the lower job runs again once the higher one yields"
    );
}

#[test]
fn background_jobs_of_one_priority_take_turns_by_time_slice() {
    let mut sim = Sim::with_config(1, long_receive_timeout());
    let a = stuck_job(&mut sim, "a", JobPriority::Normal);
    let b = stuck_job(&mut sim, "b", JobPriority::Normal);
    sim.advance(Duration::from_secs(1));
    assert_eq!(running(&sim, &[a, b]), [true, false]);
    let slice = sim.engine.config().time_slice;
    sim.advance(slice);
    assert_eq!(running(&sim, &[a, b]), [false, true]);
    sim.advance(slice);
    assert_eq!(running(&sim, &[a, b]), [true, false]);
}

#[test]
fn raising_a_queued_jobs_priority_to_foreground_runs_it_at_once() {
    let mut sim = Sim::with_config(1, long_receive_timeout());
    let a = stuck_job(&mut sim, "a", JobPriority::Normal);
    let b = stuck_job(&mut sim, "b", JobPriority::Normal);
    sim.advance(Duration::from_millis(100));
    assert_eq!(sim.state(b), JobState::Queued);
    sim.command(|e| e.job_mut(b)?.set_priority(JobPriority::Foreground))
        .unwrap();
    sim.advance(Duration::from_millis(100));
    assert_eq!(running(&sim, &[a, b]), [true, true]);
}

#[test]
fn the_concurrency_limits_are_configuration() {
    let mut config = long_receive_timeout();
    config.max_foreground_jobs = 2;
    config.max_background_jobs = 2;
    let mut sim = Sim::with_config(1, config);
    let fg: Vec<JobId> = (0..3)
        .map(|i| stuck_job(&mut sim, &format!("fg{i}"), JobPriority::Foreground))
        .collect();
    let bg: Vec<JobId> = (0..3)
        .map(|i| stuck_job(&mut sim, &format!("bg{i}"), JobPriority::Low))
        .collect();
    sim.advance(Duration::from_millis(100));
    assert_eq!(running(&sim, &fg), [true, true, false]);
    assert_eq!(running(&sim, &bg), [true, true, false]);
}
