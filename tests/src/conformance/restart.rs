//! Scenarios across a restart: a driver stopped mid-transfer and started again on the same job
//! store, and a store holding a corrupt record.

use std::path::Path;
use std::time::Duration;

use backhaul_core::{codes, JobPriority, JobState, JobType, NewJob};
use backhaul_store::{JobStore, RedbStore, StoreError};

use super::{
    assert_state, info, new_download_job, poll_info, start_driver, wait_settled, Driver,
    DriverSetup,
};
use crate::data::deterministic_bytes;
use crate::server::{FileSpec, Route, TestServer};

const KIB: usize = 1024;
const LIMIT: Duration = Duration::from_secs(60);

/// A driver on the store `state/jobs.redb`, checkpointing every 64 KiB.
fn setup_with_store(name: &str, state: &Path) -> DriverSetup {
    DriverSetup {
        store: Some(state.join("jobs.redb")),
        checkpoint_bytes: Some(64 * KIB as u64),
        ..DriverSetup::trusting_nothing(name)
    }
}

/// A driver stopped mid-transfer and started again on its store: the job is listed again,
/// events from before the new subscription arrive, the file resumes from its checkpoint with
/// `Range` + `If-Range`, and the result is byte-identical.
pub fn a_restarted_driver_reloads_its_jobs_and_resumes_from_the_checkpoint<D: Driver>() {
    let name = "a_restarted_driver_reloads_its_jobs_and_resumes_from_the_checkpoint";
    let one = FileSpec::new(deterministic_bytes(2048 * KIB, 21)).throttled(1024 * 1024);
    let two = FileSpec::new(deterministic_bytes(300 * KIB + 5, 22));
    let server = TestServer::start(vec![
        Route::file("/one.bin", one.clone()),
        Route::file("/two.bin", two.clone()),
    ]);
    let (dir, state) = (tempdir(), tempdir());
    let locals = [dir.path().join("one.bin"), dir.path().join("two.bin")];
    let (url_one, url_two) = (server.url("/one.bin"), server.url("/two.bin"));

    let first: D = start_driver(setup_with_store(name, state.path()));
    let job = new_download_job(
        &first,
        name,
        &[(&url_one, &locals[0]), (&url_two, &locals[1])],
    );
    first.resume(job).expect("resume");
    poll_info(&first, job, LIMIT, "half of file 1", |i| {
        i.files[0].progress.bytes_transferred >= 1024 * KIB as u64
    });
    first.shutdown();

    let second: D = start_driver(setup_with_store(name, state.path()));
    assert_eq!(second.jobs().expect("jobs"), vec![job], "the job is back");
    assert!(second.broken_records().is_empty());
    assert_eq!(info(&second, job).display_name, name);
    let settled = wait_settled(&second, job, LIMIT);
    assert_state(&second, job, settled, JobState::Transferred);
    assert_eq!(
        second.events().states_of(job).first(),
        Some(&JobState::Connecting),
        "the subscriber got the events from before it subscribed"
    );
    assert!(
        !locals[0].exists(),
        "nothing at the local name before complete"
    );
    second.complete(job).expect("complete");
    assert_eq!(info(&second, job).state, JobState::Acknowledged);
    assert!(std::fs::read(&locals[0]).unwrap() == one.body[..]);
    assert!(std::fs::read(&locals[1]).unwrap() == two.body[..]);

    let gets = server.requests_to("GET", "/one.bin");
    let resumed = gets
        .iter()
        .filter_map(|r| r.header("Range"))
        .filter_map(|r| {
            r.strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse::<u64>()
                .ok()
        })
        .next()
        .unwrap_or_else(|| panic!("file 1 resumed with a Range: {}", server.request_log()));
    assert!(
        resumed >= 64 * KIB as u64,
        "resumed from a checkpoint ({resumed})"
    );
    assert!(gets.iter().any(|r| r.header("If-Range").is_some()));
    second.shutdown();
    assert!(
        RedbStore::open(state.path().join("jobs.redb"))
            .unwrap()
            .load_all()
            .unwrap()
            .is_empty(),
        "the acknowledged job's record is gone"
    );
}

/// A store holding one corrupt record: that job is reported broken (and its record left as
/// it is), the other job is listed and runs.
pub fn a_corrupt_record_is_reported_and_the_other_jobs_still_run<D: Driver>() {
    let name = "a_corrupt_record_is_reported_and_the_other_jobs_still_run";
    let file = FileSpec::new(deterministic_bytes(100 * KIB, 23));
    let server = TestServer::start(vec![Route::file("/a.bin", file.clone())]);
    let (dir, state) = (tempdir(), tempdir());
    let (good_local, bad_local) = (dir.path().join("good.bin"), dir.path().join("bad.bin"));
    let url = server.url("/a.bin");

    let first: D = start_driver(setup_with_store(name, state.path()));
    let good = new_download_job(&first, "good", &[(&url, &good_local)]);
    let bad = new_download_job(&first, "bad", &[(&url, &bad_local)]);
    first.shutdown();
    let path = state.path().join("jobs.redb");
    RedbStore::open(&path)
        .unwrap()
        .put_raw(bad, b"BHJR\x01\x00\x00\x00{\"id\": broken")
        .unwrap();

    let second: D = start_driver(setup_with_store(name, state.path()));
    let broken = second.broken_records();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0].0, bad);
    assert!(broken[0].1.contains("corrupt"), "{}", broken[0].1);
    assert_eq!(second.jobs().expect("jobs"), vec![good]);
    let other = second
        .create_job("new", JobType::Download)
        .expect("create_job");
    assert!(other != good && other != bad);
    second.resume(good).expect("resume");
    let settled = wait_settled(&second, good, LIMIT);
    assert_state(&second, good, settled, JobState::Transferred);
    second.complete(good).expect("complete");
    assert!(std::fs::read(&good_local).unwrap() == file.body[..]);
    second.shutdown();

    let kept = RedbStore::open(&path).unwrap().load_all().unwrap();
    let bad_record = kept
        .iter()
        .find(|r| r.id == bad)
        .expect("kept in the store");
    assert!(matches!(bad_record.record, Err(StoreError::Corrupt(_))));
}

/// `create_jobs`: three jobs (one with two files, one HIGH and resumed) in one call; all are
/// listed with their files, the resumed one downloads, and after a restart on the same store
/// every job is back as it was.
pub fn a_batch_of_jobs_is_created_in_one_call_and_survives_a_restart<D: Driver>() {
    let name = "a_batch_of_jobs_is_created_in_one_call_and_survives_a_restart";
    let file = FileSpec::new(deterministic_bytes(100 * KIB, 24));
    let server = TestServer::start(vec![Route::file("/a.bin", file.clone())]);
    let (dir, state) = (tempdir(), tempdir());
    let local = |n: &str| dir.path().join(n);
    let url = server.url("/a.bin");
    let batch = vec![
        NewJob::download("one").file(&url, local("one.bin")),
        NewJob::download("two")
            .file(&url, local("two-a.bin"))
            .file(&url, local("two-b.bin")),
        NewJob::download("three")
            .file(&url, local("three.bin"))
            .priority(JobPriority::High)
            .resumed(),
    ];

    let first: D = start_driver(setup_with_store(name, state.path()));
    let ids = first.create_jobs(batch).expect("create_jobs");
    assert_eq!(ids.len(), 3);
    let mut listed = first.jobs().expect("jobs");
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let settled = wait_settled(&first, ids[2], LIMIT);
    assert_state(&first, ids[2], settled, JobState::Transferred);
    first.shutdown();

    let second: D = start_driver(setup_with_store(name, state.path()));
    let mut reloaded = second.jobs().expect("jobs");
    reloaded.sort();
    assert_eq!(reloaded, expected, "every job of the batch is back");
    let infos: Vec<_> = ids.iter().map(|&id| info(&second, id)).collect();
    assert_eq!(
        infos
            .iter()
            .map(|i| i.display_name.as_str())
            .collect::<Vec<_>>(),
        ["one", "two", "three"]
    );
    assert_eq!(infos[1].files.len(), 2);
    assert_eq!(infos[1].files[1].local_name, local("two-b.bin"));
    assert_eq!(infos[0].state, JobState::Suspended);
    assert_eq!(infos[2].priority, JobPriority::High);
    assert_eq!(infos[2].state, JobState::Transferred);
    second.complete(ids[2]).expect("complete");
    assert!(std::fs::read(local("three.bin")).unwrap() == file.body[..]);
    second.shutdown();
}

/// `create_jobs` with one file whose directory does not exist: refused with `E_INVALIDARG`
/// naming that job and file, and no job of the batch is created: none listed, and nothing in
/// the store.
pub fn a_bad_file_in_a_batch_is_named_and_leaves_no_job_behind<D: Driver>() {
    let name = "a_bad_file_in_a_batch_is_named_and_leaves_no_job_behind";
    let (dir, state) = (tempdir(), tempdir());
    let missing = dir.path().join("no-such-dir").join("b.bin");
    let batch = vec![
        NewJob::download("good").file("http://127.0.0.1:9/a", dir.path().join("a.bin")),
        NewJob::download("bad")
            .file("http://127.0.0.1:9/c", dir.path().join("c.bin"))
            .file("http://127.0.0.1:9/b", &missing),
    ];

    let first: D = start_driver(setup_with_store(name, state.path()));
    let error = first
        .create_jobs(batch)
        .expect_err("a file in a missing directory");
    assert_eq!(error.code(), codes::E_INVALIDARG, "{error}");
    let detail = error.detail();
    for part in ["job #1", "\"bad\"", "file #1", "http://127.0.0.1:9/b"] {
        assert!(detail.contains(part), "{part:?} in {detail}");
    }
    assert!(detail.contains(&missing.display().to_string()), "{detail}");
    assert!(first.jobs().expect("jobs").is_empty(), "no job left behind");
    first.shutdown();

    let records = RedbStore::open(state.path().join("jobs.redb"))
        .unwrap()
        .load_all()
        .unwrap();
    assert!(records.is_empty(), "nothing persisted: {records:?}");
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temp directory")
}
