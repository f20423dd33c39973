//! Crashes and restarts in the simulation: a restart resumes every file from its last
//! checkpoint, which is never ahead of the bytes synced to disk, and the files come out
//! byte-identical whatever the crash point (with or without losing unsynced bytes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use backhaul_core::{Config, JobId, JobState};
use backhaul_tests::sim::{for_each_seed, Resource, Sim};

const HOST: &str = "files.test";
const CHECKPOINT: u64 = 64 * 1024;

fn body(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// The two files of the job: (path on the server, local name, bytes).
fn files() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    vec![
        ("/a", "/dl/a", body(300_000, 1)),
        ("/b", "/dl/b", body(200_000, 2)),
    ]
}

/// A world checkpointing every 64 KiB, with a running two-file job.
fn world(seed: u64) -> (Sim, JobId) {
    let mut config = Config::new([0; 32]);
    config.receive_timeout = Duration::from_secs(60);
    config.checkpoint_bytes = CHECKPOINT;
    config.checkpoint_interval = Duration::from_secs(3600);
    let mut sim = Sim::with_config(seed, config);
    for (path, _, data) in files() {
        sim.serve(HOST, 80, path, Resource::new(data, path));
    }
    let job = sim.create_job("two files");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        for (path, local, _) in files() {
            j.add_file(&format!("http://{HOST}{path}"), Path::new(local))?;
        }
        j.set_minimum_retry_delay(5)?;
        j.resume()
    })
    .expect("job starts");
    (sim, job)
}

/// Runs `steps` steps of a fresh world.
fn world_after(seed: u64, steps: usize) -> (Sim, JobId) {
    let (mut sim, job) = world(seed);
    for _ in 0..steps {
        assert!(sim.step(), "the run ended before step {steps}");
    }
    (sim, job)
}

/// The step at which `done` first holds in a fresh world.
fn first_step_where(seed: u64, done: impl Fn(&Sim, JobId) -> bool) -> usize {
    let (mut sim, job) = world(seed);
    for step in 0..100_000 {
        if done(&sim, job) {
            return step;
        }
        assert!(sim.step(), "never happened (seed {seed})");
    }
    panic!("never happened (seed {seed})");
}

fn temp_of(sim: &Sim, job: JobId, file: usize) -> Option<PathBuf> {
    sim.engine.job(job).unwrap().files()[file]
        .temporary_name
        .clone()
}

/// The checkpoint invariant: every stored offset is covered by durable, correct bytes.
fn assert_checkpoints_are_on_disk(sim: &Sim, job: JobId) {
    let Some(record) = sim.stored(job) else {
        return;
    };
    for (i, (checkpoint, (_, _, data))) in record.checkpoints().into_iter().zip(files()).enumerate()
    {
        if checkpoint == 0 {
            continue;
        }
        let temp = temp_of(sim, job, i).expect("a checkpointed file has a temp file");
        let durable = &sim.files[&temp].durable;
        assert!(
            durable.len() as u64 >= checkpoint,
            "file {i}: checkpoint {checkpoint} but only {} bytes synced (seed {})",
            durable.len(),
            sim.seed
        );
        let n = checkpoint as usize;
        assert!(
            durable[..n] == data[..n],
            "file {i}: synced bytes differ (seed {})",
            sim.seed
        );
    }
}

/// The first `Range` start asked for `path` from request number `from` on (0: no Range).
fn resumed_at(sim: &Sim, from: usize, path: &str) -> u64 {
    let request = sim.requests[from..]
        .iter()
        .find(|r| r.path == path)
        .expect("the file is requested again");
    request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .map_or(0, |n| n.parse().unwrap())
}

fn finish_and_check(sim: &mut Sim, job: JobId) {
    sim.drive_to_state(job, JobState::Transferred);
    sim.command(|e| e.job_mut(job)?.complete())
        .expect("complete");
    assert_eq!(sim.state(job), JobState::Acknowledged);
    for (_, local, data) in files() {
        assert!(
            sim.file(local) == Some(&data[..]),
            "{local} differs (seed {})",
            sim.seed
        );
    }
    assert!(sim.stored(job).is_none(), "the record is forgotten");
}

#[test]
fn a_crash_right_after_a_checkpoint_resumes_from_it() {
    let (mut sim, job) = world(1);
    sim.drive_until(10_000, |s| s.syncs.len() == 2);
    let checkpoint = sim.stored(job).unwrap().checkpoints()[0];
    assert_eq!(checkpoint, sim.syncs[1].2);
    assert!(checkpoint >= 2 * CHECKPOINT);
    assert_checkpoints_are_on_disk(&sim, job);
    let before = sim.requests.len();
    sim.crash(true, Duration::from_secs(30));
    assert_eq!(sim.state(job), JobState::Connecting);
    sim.drive_until(10_000, |s| s.requests.len() > before);
    assert_eq!(resumed_at(&sim, before, "/a"), checkpoint);
    assert_eq!(
        sim.requests[before].header("if-range"),
        Some("\"/a\""),
        "the resume is conditional on the recorded version"
    );
    finish_and_check(&mut sim, job);
}

#[test]
fn a_crash_right_before_a_checkpoint_resumes_from_the_previous_one() {
    let second = first_step_where(1, |s, _| s.syncs.len() == 2);
    let (mut sim, job) = world_after(1, second - 1);
    assert_eq!(sim.syncs.len(), 1);
    let checkpoint = sim.stored(job).unwrap().checkpoints()[0];
    assert_eq!(checkpoint, sim.syncs[0].2);
    let written = sim.engine.job(job).unwrap().files()[0]
        .progress
        .bytes_transferred;
    assert!(
        written > checkpoint,
        "bytes were written past the checkpoint ({written} > {checkpoint})"
    );
    assert_checkpoints_are_on_disk(&sim, job);
    let before = sim.requests.len();
    sim.crash(true, Duration::from_secs(30));
    let temp = temp_of(&sim, job, 0).unwrap();
    assert_eq!(
        sim.files[&temp].data.len() as u64,
        checkpoint,
        "unsynced bytes lost"
    );
    sim.drive_until(10_000, |s| s.requests.len() > before);
    assert_eq!(resumed_at(&sim, before, "/a"), checkpoint);
    finish_and_check(&mut sim, job);
}

#[test]
fn a_crash_at_any_step_resumes_at_or_below_the_synced_bytes_and_finishes_byte_identical() {
    for_each_seed(3, |seed| {
        let total = first_step_where(seed, |s, job| s.state(job) == JobState::Transferred);
        for crash_at in 0..=total {
            let (mut sim, job) = world_after(seed, crash_at);
            assert_checkpoints_are_on_disk(&sim, job);
            let durable: Vec<u64> = (0..2)
                .map(|i| {
                    temp_of(&sim, job, i)
                        .and_then(|t| sim.files.get(&t))
                        .map_or(0, |f| f.durable.len() as u64)
                })
                .collect();
            let before = sim.requests.len();
            sim.crash(crash_at % 2 == 0, Duration::from_secs(5));
            sim.drive_to_state(job, JobState::Transferred);
            for (i, (path, _, _)) in files().into_iter().enumerate() {
                if sim.requests[before..].iter().any(|r| r.path == path) {
                    let at = resumed_at(&sim, before, path);
                    assert!(
                        at <= durable[i],
                        "file {i} resumed at {at}, past its {} synced bytes (seed {seed}, step {crash_at})",
                        durable[i]
                    );
                }
            }
            finish_and_check(&mut sim, job);
        }
    });
}

#[test]
fn a_temp_file_deleted_while_the_process_was_down_restarts_the_file_from_zero() {
    let (mut sim, job) = world(2);
    sim.drive_until(10_000, |s| s.syncs.len() == 2);
    let temp = temp_of(&sim, job, 0).unwrap();
    sim.files.remove(&temp);
    let before = sim.requests.len();
    sim.crash(false, Duration::from_secs(30));
    sim.drive_until(10_000, |s| s.requests.len() > before);
    assert_eq!(resumed_at(&sim, before, "/a"), 0);
    finish_and_check(&mut sim, job);
}

#[test]
fn repeated_crashes_lose_no_job_and_duplicate_none() {
    for_each_seed(3, |seed| {
        let (mut sim, job) = world(seed);
        let mut crashes = 0;
        while sim.state(job) != JobState::Transferred && crashes < 40 {
            for _ in 0..3 {
                sim.step();
            }
            sim.crash(crashes % 3 == 0, Duration::from_secs(1));
            crashes += 1;
            assert_eq!(sim.engine.jobs(), vec![job], "seed {seed}");
            assert_eq!(sim.store.len(), 1, "seed {seed}");
        }
        finish_and_check(&mut sim, job);
    });
}
