//! Scenarios across a restart: a driver stopped mid-transfer and started again on the same job
//! store, and a store holding a corrupt record.

use std::path::Path;
use std::time::Duration;

use backhaul_core::{JobState, JobType};
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

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temp directory")
}
