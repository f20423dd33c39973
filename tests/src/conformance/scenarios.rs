//! The scenarios every driver must pass. Each is `fn name<D: Driver>()`, self-contained (its own
//! server, driver and temp directory) and bounded in time.
//!
//! The common shape of a successful download, checked by `download_and_complete`: the job
//! reaches TRANSFERRED; until `complete` the local name does not exist while the temp file
//! (`FileInfo::temporary_name`, in the destination directory) does; after `complete` the job is
//! ACKNOWLEDGED, the temp file is gone and the local file holds exactly the served bytes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use backhaul_core::{CompleteOutcome, ErrorContext, HResult, JobId, JobState};
use bytes::Bytes;

use super::{
    assert_state, dir_entries, eventually, info, new_download_job, poll_info, run_to_settled,
    start_driver, wait_settled, Driver, DriverSetup, OnTransient,
};
use crate::data::{deterministic_bytes, sha256_hex};
use crate::pki::TestPki;
use crate::server::{Behavior, FileSpec, Route, Step, TestServer};

/// A transfer of a few hundred KiB over loopback settles within this.
const SMALL_TRANSFER: Duration = Duration::from_secs(60);
/// A transfer of tens of MiB in a debug build settles within this.
const LARGE_TRANSFER: Duration = Duration::from_secs(240);
/// A transfer that needs one retry (MinimumRetryDelay 5 s plus jitter) settles within this.
const RETRIED_TRANSFER: Duration = Duration::from_secs(120);
/// `complete` / `cancel` reach their final state, and their file operations finish, within this.
const FINISH: Duration = Duration::from_secs(30);

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// BITS' floor for MinimumRetryDelay.
const MIN_RETRY_DELAY: u32 = 5;

const BG_E_HTTP_ERROR_404: HResult = HResult(0x8019_0194);
const BG_E_HTTP_ERROR_503: HResult = HResult(0x8019_01F7);
const ERROR_WINHTTP_SECURE_INVALID_CA: HResult = HResult(0x8007_2F0D);

/// A small file over plain HTTP, byte for byte, visible only after `complete`.
pub fn downloads_plain_http_file<D: Driver>() {
    let file = FileSpec::new(deterministic_bytes(200 * KIB + 17, 1));
    let server = TestServer::start(vec![Route::file("/small.bin", file.clone())]);
    let dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting_nothing("downloads_plain_http_file"));
    let local = dir.path().join("small.bin");

    let job = new_download_job(
        &driver,
        "downloads_plain_http_file",
        &[(&server.url("/small.bin"), &local)],
    );
    driver.resume(job).expect("resume");
    download_and_complete(&driver, job, &[(&local, &file.body)], SMALL_TRANSFER);
    driver.shutdown();
}

/// A small file over HTTPS from a server whose CA the driver was given as a file.
pub fn downloads_https_file_with_test_ca<D: Driver>() {
    let pki = TestPki::new();
    let file = FileSpec::new(deterministic_bytes(200 * KIB + 17, 2));
    let server = TestServer::start_tls(vec![Route::file("/small.bin", file.clone())], &pki);
    let dir = tempdir();
    let ca_dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting(
        "downloads_https_file_with_test_ca",
        pki.write_ca_pem(ca_dir.path()),
    ));
    let local = dir.path().join("small.bin");

    let job = new_download_job(
        &driver,
        "downloads_https_file_with_test_ca",
        &[(&server.url("/small.bin"), &local)],
    );
    driver.resume(job).expect("resume");
    download_and_complete(&driver, job, &[(&local, &file.body)], SMALL_TRANSFER);
    assert!(!server.requests().is_empty());
    driver.shutdown();
}

/// 64 MiB over plain HTTP arrive intact (compared by SHA-256).
pub fn downloads_64_mib_file_identical_by_hash<D: Driver>() {
    large_download::<D>("downloads_64_mib_file_identical_by_hash", 64 * MIB, false);
}

/// 16 MiB over HTTPS arrive intact (compared by SHA-256). Smaller than the HTTP case because
/// TLS in a debug build is slow.
pub fn downloads_16_mib_https_file_identical_by_hash<D: Driver>() {
    large_download::<D>(
        "downloads_16_mib_https_file_identical_by_hash",
        16 * MIB,
        true,
    );
}

/// The server cuts the connection after 1 MiB of 8 MiB: the job goes through TRANSIENT_ERROR,
/// the retry timer brings it back, and the retry asks for the rest only (`Range: bytes=N-` with
/// `If-Range: <etag>`, answered 206). The file is intact and fewer than 8 MiB were re-fetched.
pub fn resumes_after_connection_dropped_mid_body<D: Driver>() {
    let len = 8 * MIB;
    let cut = MIB as u64;
    let file = FileSpec::new(deterministic_bytes(len, 3));
    let etag = file.etag.clone().expect("the file has an ETag");
    let server = TestServer::start(vec![Route {
        path: "/big.bin".into(),
        behavior: Behavior::drop_after(file.clone(), cut, 1),
    }]);
    let dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting_nothing(
        "resumes_after_connection_dropped_mid_body",
    ));
    let local = dir.path().join("big.bin");

    let job = new_download_job(
        &driver,
        "resumes_after_connection_dropped_mid_body",
        &[(&server.url("/big.bin"), &local)],
    );
    driver
        .set_minimum_retry_delay(job, MIN_RETRY_DELAY)
        .expect("set_minimum_retry_delay");
    driver.resume(job).expect("resume");
    let run = run_to_settled(&driver, job, RETRIED_TRANSFER, OnTransient::WaitForRetry);
    eprintln!("requests:\n{}", server.request_log());
    assert_state(&driver, job, run.state, JobState::Transferred);
    assert!(
        run.saw_transient,
        "a dropped connection puts the job in TRANSIENT_ERROR; events: {:?}",
        driver.events().states_of(job)
    );

    let gets = server.requests_to("GET", "/big.bin");
    assert!(gets.len() >= 2, "a retry followed the cut: {gets:#?}");
    assert_eq!(
        gets[0].body_bytes_sent, cut,
        "the first GET was the one cut"
    );
    let resumed = &gets[1];
    let range = resumed
        .header("Range")
        .unwrap_or_else(|| panic!("the retry carries Range: {resumed:#?}"));
    let offset =
        parse_open_range(range).unwrap_or_else(|| panic!("Range {range:?} is not bytes=N-"));
    assert!(
        offset > 0 && offset <= cut,
        "the retry resumes within what was received: {range}"
    );
    assert_eq!(
        resumed.header("If-Range"),
        Some(etag.as_str()),
        "the retry is conditional on the ETag"
    );
    assert_eq!(resumed.status, 206);
    let refetched: u64 = gets[1..].iter().map(|r| r.body_bytes_sent).sum();
    assert!(
        refetched < len as u64,
        "only the rest was re-fetched ({refetched} bytes)"
    );
    assert_eq!(
        refetched,
        len as u64 - offset,
        "exactly the rest was fetched"
    );

    complete_and_check(&driver, job, &[(&local, &file.body)]);
    driver.shutdown();
}

/// Version A is cut mid-body; every later request gets version B (other bytes, other length,
/// other ETag and Last-Modified). The file restarts: the result is B exactly, never A's first
/// part spliced onto B.
pub fn restarts_when_file_changes_between_attempts<D: Driver>() {
    let a = FileSpec::new(deterministic_bytes(4 * MIB, 4))
        .with_etag(Some("\"version-a\""))
        .with_last_modified(Some("Wed, 21 Oct 2015 07:28:00 GMT"));
    let b = FileSpec::new(deterministic_bytes(4 * MIB + 4099, 5))
        .with_etag(Some("\"version-b\""))
        .with_last_modified(Some("Thu, 22 Oct 2015 09:00:00 GMT"));
    let server = TestServer::start(vec![Route::script(
        "/changing.bin",
        vec![
            Step::Truncate {
                file: a,
                after: MIB as u64,
            },
            Step::Serve(b.clone()),
        ],
    )]);
    let dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting_nothing(
        "restarts_when_file_changes_between_attempts",
    ));
    let local = dir.path().join("changing.bin");

    let job = new_download_job(
        &driver,
        "restarts_when_file_changes_between_attempts",
        &[(&server.url("/changing.bin"), &local)],
    );
    driver
        .set_minimum_retry_delay(job, MIN_RETRY_DELAY)
        .expect("set_minimum_retry_delay");
    driver.resume(job).expect("resume");
    let run = run_to_settled(&driver, job, RETRIED_TRANSFER, OnTransient::Resume);
    eprintln!("requests:\n{}", server.request_log());
    assert_state(&driver, job, run.state, JobState::Transferred);
    assert_eq!(
        run.info.files[0].progress.bytes_total,
        b.len(),
        "the size is B's"
    );
    assert_eq!(run.info.files[0].progress.bytes_transferred, b.len());

    complete_and_check(&driver, job, &[(&local, &b.body)]);
    driver.shutdown();
}

/// 404: the job goes to ERROR with `BG_E_HTTP_ERROR_404` in the remote-file context, nothing
/// appears at the local name, and `cancel` leaves the directory empty.
pub fn not_found_is_error_0x80190194<D: Driver>() {
    let server = TestServer::start(vec![Route::status("/missing.bin", 404)]);
    let dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting_nothing(
        "not_found_is_error_0x80190194",
    ));
    let local = dir.path().join("missing.bin");

    let job = new_download_job(
        &driver,
        "not_found_is_error_0x80190194",
        &[(&server.url("/missing.bin"), &local)],
    );
    driver.resume(job).expect("resume");
    let state = wait_settled(&driver, job, SMALL_TRANSFER);
    assert_state(&driver, job, state, JobState::Error);
    let info = info(&driver, job);
    let error = info.error.clone().expect("ERROR carries an error");
    assert_eq!(error.code, BG_E_HTTP_ERROR_404, "{error}");
    assert_eq!(error.context, ErrorContext::RemoteFile, "{error}");
    assert!(!local.exists(), "nothing appears at the local name");
    let temp = info.files[0].temporary_name.clone();

    cancel_and_check_nothing_left(&driver, job, dir.path(), temp.as_deref());
    driver.shutdown();
}

/// 503 with `Retry-After: 1`, then 200: TRANSIENT_ERROR with `BG_E_HTTP_ERROR_503`, then (on
/// `resume`, which retries at once) TRANSFERRED, and the file is intact.
pub fn service_unavailable_then_ok_is_transient_then_transferred<D: Driver>() {
    let file = FileSpec::new(deterministic_bytes(300 * KIB, 6));
    let server = TestServer::start(vec![Route::script(
        "/busy.bin",
        vec![
            Step::status_with_headers(503, &[("Retry-After", "1")]),
            Step::Serve(file.clone()),
        ],
    )]);
    let dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting_nothing(
        "service_unavailable_then_ok_is_transient_then_transferred",
    ));
    let local = dir.path().join("busy.bin");

    let job = new_download_job(
        &driver,
        "service_unavailable_then_ok_is_transient_then_transferred",
        &[(&server.url("/busy.bin"), &local)],
    );
    driver
        .set_minimum_retry_delay(job, MIN_RETRY_DELAY)
        .expect("set_minimum_retry_delay");
    driver.resume(job).expect("resume");
    let run = run_to_settled(&driver, job, RETRIED_TRANSFER, OnTransient::Resume);
    eprintln!("requests:\n{}", server.request_log());
    assert_state(&driver, job, run.state, JobState::Transferred);
    assert!(
        run.saw_transient,
        "503 is transient; states: {:?}",
        driver.events().states_of(job)
    );
    let first = run
        .transient_errors
        .first()
        .expect("the TRANSIENT_ERROR carried an error");
    assert_eq!(first.code, BG_E_HTTP_ERROR_503, "{first}");

    complete_and_check(&driver, job, &[(&local, &file.body)]);
    driver.shutdown();
}

/// A job cancelled mid-transfer (the server stalls after 256 KiB) deletes its temp file and
/// leaves the directory empty; a job cancelled before it ever ran creates nothing either.
pub fn cancel_deletes_temp_files_and_creates_nothing<D: Driver>() {
    let file = FileSpec::new(deterministic_bytes(2 * MIB, 7));
    let server = TestServer::start(vec![Route::script(
        "/stalls.bin",
        vec![Step::Stall {
            file,
            after: 256 * KIB as u64,
            hold: Duration::from_secs(120),
        }],
    )]);
    let dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting_nothing(
        "cancel_deletes_temp_files_and_creates_nothing",
    ));
    let local = dir.path().join("stalls.bin");

    let job = new_download_job(
        &driver,
        "cancel_deletes_temp_files_and_creates_nothing",
        &[(&server.url("/stalls.bin"), &local)],
    );
    driver.resume(job).expect("resume");
    let info = poll_info(
        &driver,
        job,
        SMALL_TRANSFER,
        "transferring with bytes in the temp file",
        |i| {
            i.state == JobState::Transferring
                && i.files[0].progress.bytes_transferred > 0
                && i.files[0]
                    .temporary_name
                    .as_ref()
                    .is_some_and(|t| t.exists())
        },
    );
    let temp = info.files[0]
        .temporary_name
        .clone()
        .expect("a temp file while transferring");
    assert_eq!(
        temp.parent(),
        Some(dir.path()),
        "the temp file lives in the destination directory"
    );
    assert!(!local.exists());
    cancel_and_check_nothing_left(&driver, job, dir.path(), Some(&temp));

    let never_run = new_download_job(
        &driver,
        "never resumed",
        &[(&server.url("/stalls.bin"), &local)],
    );
    cancel_and_check_nothing_left(&driver, never_run, dir.path(), None);
    driver.shutdown();
}

/// Two files in one job: both arrive intact, and the first is fetched before the second (files
/// transfer in the order they were added).
pub fn two_files_in_one_job_transfer_in_order<D: Driver>() {
    let one = FileSpec::new(deterministic_bytes(300 * KIB, 8));
    let two = FileSpec::new(deterministic_bytes(500 * KIB + 3, 9));
    let server = TestServer::start(vec![
        Route::file("/one.bin", one.clone()),
        Route::file("/two.bin", two.clone()),
    ]);
    let dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting_nothing(
        "two_files_in_one_job_transfer_in_order",
    ));
    let (local_one, local_two) = (dir.path().join("one.bin"), dir.path().join("two.bin"));

    let job = new_download_job(
        &driver,
        "two_files_in_one_job_transfer_in_order",
        &[
            (&server.url("/one.bin"), &local_one),
            (&server.url("/two.bin"), &local_two),
        ],
    );
    driver.resume(job).expect("resume");
    download_and_complete(
        &driver,
        job,
        &[(&local_one, &one.body), (&local_two, &two.body)],
        SMALL_TRANSFER,
    );

    let gets: Vec<(usize, String)> = server
        .requests()
        .into_iter()
        .enumerate()
        .filter(|(_, r)| r.method == "GET")
        .map(|(i, r)| (i, r.path))
        .collect();
    let last_one = gets
        .iter()
        .rev()
        .find(|(_, p)| p == "/one.bin")
        .map(|(i, _)| *i)
        .expect("file 1 was fetched");
    let first_two = gets
        .iter()
        .find(|(_, p)| p == "/two.bin")
        .map(|(i, _)| *i)
        .expect("file 2 was fetched");
    assert!(
        last_one < first_two,
        "file 1 is fetched entirely before file 2: {gets:?}"
    );
    driver.shutdown();
}

/// A driver that trusts no CA (no system roots, no CA file) refuses the test server's
/// certificate: ERROR with `ERROR_WINHTTP_SECURE_INVALID_CA`, and no request reached the server.
pub fn https_with_untrusted_certificate_fails_with_invalid_ca<D: Driver>() {
    let pki = TestPki::new();
    let file = FileSpec::new(deterministic_bytes(10 * KIB, 10));
    let server = TestServer::start_tls(vec![Route::file("/secret.bin", file)], &pki);
    let dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting_nothing(
        "https_with_untrusted_certificate_fails_with_invalid_ca",
    ));
    let local = dir.path().join("secret.bin");

    let job = new_download_job(
        &driver,
        "https_with_untrusted_certificate_fails_with_invalid_ca",
        &[(&server.url("/secret.bin"), &local)],
    );
    driver.resume(job).expect("resume");
    let state = wait_settled(&driver, job, SMALL_TRANSFER);
    assert_state(&driver, job, state, JobState::Error);
    let error = info(&driver, job).error.expect("ERROR carries an error");
    assert_eq!(error.code, ERROR_WINHTTP_SECURE_INVALID_CA, "{error}");
    assert!(
        server.requests().is_empty(),
        "no request went to an untrusted server: {:#?}",
        server.requests()
    );
    assert!(!local.exists());

    cancel_and_check_nothing_left(&driver, job, dir.path(), None);
    driver.shutdown();
}

/// A body sent with `Transfer-Encoding: chunked` (no `Content-Length` on the GET) arrives whole.
pub fn chunked_response_downloads_completely<D: Driver>() {
    let file = FileSpec::new(deterministic_bytes(300 * KIB + 5, 11)).chunked();
    let server = TestServer::start(vec![Route::file("/chunked.bin", file.clone())]);
    let dir = tempdir();
    let driver: D = start_driver(DriverSetup::trusting_nothing(
        "chunked_response_downloads_completely",
    ));
    let local = dir.path().join("chunked.bin");

    let job = new_download_job(
        &driver,
        "chunked_response_downloads_completely",
        &[(&server.url("/chunked.bin"), &local)],
    );
    driver.resume(job).expect("resume");
    download_and_complete(&driver, job, &[(&local, &file.body)], SMALL_TRANSFER);
    driver.shutdown();
}

// ---------------------------------------------------------------------------------------------
// Shared steps.

fn large_download<D: Driver>(name: &str, len: usize, tls: bool) {
    let file = FileSpec::new(deterministic_bytes(len, 12));
    let expected_hash = sha256_hex(&file.body);
    let pki = TestPki::new();
    let routes = vec![Route::file("/large.bin", file.clone())];
    let server = if tls {
        TestServer::start_tls(routes, &pki)
    } else {
        TestServer::start(routes)
    };
    let dir = tempdir();
    let ca_dir = tempdir();
    let setup = if tls {
        DriverSetup::trusting(name, pki.write_ca_pem(ca_dir.path()))
    } else {
        DriverSetup::trusting_nothing(name)
    };
    let driver: D = start_driver(setup);
    let local = dir.path().join("large.bin");

    let job = new_download_job(&driver, name, &[(&server.url("/large.bin"), &local)]);
    driver.resume(job).expect("resume");
    let state = wait_settled(&driver, job, LARGE_TRANSFER);
    assert_state(&driver, job, state, JobState::Transferred);
    let info = info(&driver, job);
    assert_eq!(info.progress.bytes_total, len as u64);
    assert_eq!(info.progress.bytes_transferred, len as u64);
    assert_eq!(
        driver.complete(job).expect("complete"),
        CompleteOutcome::Complete
    );
    let state = wait_settled(&driver, job, FINISH);
    assert_state(&driver, job, state, JobState::Acknowledged);
    assert!(
        eventually(FINISH, || local.exists()),
        "{} appears after complete",
        local.display()
    );
    let got = std::fs::read(&local).expect("read the downloaded file");
    assert_eq!(got.len(), len, "length");
    assert_eq!(
        sha256_hex(&got),
        expected_hash,
        "SHA-256 of the downloaded file"
    );
    driver.shutdown();
}

/// Waits for TRANSFERRED, checks progress and that only temp files exist, then completes and
/// checks the files (see the module docs).
fn download_and_complete<D: Driver>(
    driver: &D,
    job: JobId,
    files: &[(&Path, &Bytes)],
    limit: Duration,
) {
    let state = wait_settled(driver, job, limit);
    assert_state(driver, job, state, JobState::Transferred);
    let info = info(driver, job);
    assert_eq!(info.files.len(), files.len());
    let total: u64 = files.iter().map(|(_, body)| body.len() as u64).sum();
    assert_eq!(info.progress.bytes_total, total, "job bytes total");
    assert_eq!(
        info.progress.bytes_transferred, total,
        "job bytes transferred"
    );
    assert_eq!(info.progress.files_transferred as usize, files.len());
    for (file, (local, body)) in info.files.iter().zip(files) {
        assert_eq!(file.local_name, *local);
        assert_eq!(
            file.progress.bytes_total,
            body.len() as u64,
            "{}",
            local.display()
        );
        assert_eq!(
            file.progress.bytes_transferred,
            body.len() as u64,
            "{}",
            local.display()
        );
        assert!(file.progress.completed, "{} is completed", local.display());
        let temp = file
            .temporary_name
            .as_ref()
            .unwrap_or_else(|| panic!("{} has a temp file", local.display()));
        assert!(
            temp.exists(),
            "the temp file {} exists before complete",
            temp.display()
        );
        assert_eq!(
            temp.parent(),
            local.parent(),
            "the temp file lives in the destination directory"
        );
        assert!(
            !local.exists(),
            "{} must not exist before complete",
            local.display()
        );
    }
    complete_and_check(driver, job, files);
}

/// `complete`, then ACKNOWLEDGED, each local file identical, no temp file left.
fn complete_and_check<D: Driver>(driver: &D, job: JobId, files: &[(&Path, &Bytes)]) {
    let temps: Vec<Option<PathBuf>> = info(driver, job)
        .files
        .iter()
        .map(|f| f.temporary_name.clone())
        .collect();
    assert_eq!(
        driver.complete(job).expect("complete"),
        CompleteOutcome::Complete
    );
    let state = wait_settled(driver, job, FINISH);
    assert_state(driver, job, state, JobState::Acknowledged);
    for ((local, body), temp) in files.iter().zip(&temps) {
        assert!(
            eventually(FINISH, || local.exists()),
            "{} appears after complete",
            local.display()
        );
        let got = std::fs::read(local).unwrap_or_else(|e| panic!("read {}: {e}", local.display()));
        assert_eq!(got.len(), body.len(), "length of {}", local.display());
        assert!(
            got == body[..],
            "{} differs from what the server sent",
            local.display()
        );
        if let Some(temp) = temp {
            assert!(
                eventually(FINISH, || !temp.exists()),
                "the temp file {} is gone",
                temp.display()
            );
        }
    }
}

/// `cancel`, then CANCELLED, the temp file (if any) gone and `dir` empty.
fn cancel_and_check_nothing_left<D: Driver>(
    driver: &D,
    job: JobId,
    dir: &Path,
    temp: Option<&Path>,
) {
    driver.cancel(job).expect("cancel");
    let state = wait_settled(driver, job, FINISH);
    assert_state(driver, job, state, JobState::Cancelled);
    if let Some(temp) = temp {
        assert!(
            eventually(FINISH, || !temp.exists()),
            "cancel deletes the temp file {}",
            temp.display()
        );
    }
    assert!(
        eventually(FINISH, || dir_entries(dir).is_empty()),
        "nothing is left in the directory: {:?}",
        dir_entries(dir)
    );
}

/// `bytes=N-` → N.
fn parse_open_range(value: &str) -> Option<u64> {
    value
        .trim()
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temp directory")
}
