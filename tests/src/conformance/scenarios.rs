//! The scenarios every driver must pass. Each is `fn name<D: Driver>()`, self-contained (its own
//! server, driver and temp directory) and bounded in time.
//!
//! The common shape of a successful download, checked by `download_and_complete`: the job
//! reaches TRANSFERRED; until `complete` the local name does not exist while the temp file
//! (`FileInfo::temporary_name`, in the destination directory) does; after `complete` the job is
//! ACKNOWLEDGED, the temp file is gone and the local file holds exactly the served bytes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use backhaul_core::{
    CompleteOutcome, ErrorContext, FileRange, HResult, JobId, JobState, LENGTH_TO_EOF,
};
use bytes::Bytes;
use tempfile::TempDir;

use super::{
    assert_state, dir_entries, eventually, info, new_download_job, poll_info, run_to_settled,
    start_driver, wait_settled, Driver, DriverSetup, OnTransient, Run,
};
use crate::data::{deterministic_bytes, sha256_hex};
use crate::pki::TestPki;
use crate::server::{Behavior, FileSpec, Route, Step, TestServer};

mod auth;
mod policy;
pub use self::auth::*;
pub use self::policy::*;
pub use super::restart::{
    a_bad_file_in_a_batch_is_named_and_leaves_no_job_behind,
    a_batch_of_jobs_is_created_in_one_call_and_survives_a_restart,
    a_corrupt_record_is_reported_and_the_other_jobs_still_run,
    a_restarted_driver_reloads_its_jobs_and_resumes_from_the_checkpoint,
};

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
const ERROR_PATH_NOT_FOUND: HResult = HResult(0x8007_0003);

/// `AddFileWithRanges`: three ranges of a file (the last to EOF), out of order, one bounded
/// `Range` request each on one keep-alive connection; the local file is the ranges'
/// bytes concatenated in the order given, and `GetFileRanges` gives them back.
pub fn downloads_ranges_concatenated_in_the_order_given<D: Driver>() {
    let file = FileSpec::new(deterministic_bytes(300 * KIB + 5, 21));
    let server = TestServer::start(vec![Route::file("/ranged.bin", file.clone())]);
    let name = "downloads_ranges_concatenated_in_the_order_given";
    let s = Scenario::<D>::start(name, &server, &[]);
    let ranges = [
        FileRange::new(200_000, 50_000),
        FileRange::new(10, 1_000),
        FileRange::new(300_000, LENGTH_TO_EOF),
    ];
    let local = s.dir().join("ranged.bin");
    s.driver
        .add_file_with_ranges(s.job, &server.url("/ranged.bin"), &local, &ranges)
        .expect("add_file_with_ranges");
    let mut expected = Vec::new();
    expected.extend_from_slice(&file.body[200_000..250_000]);
    expected.extend_from_slice(&file.body[10..1_010]);
    expected.extend_from_slice(&file.body[300_000..]);

    s.resume();
    download_and_complete(
        &s.driver,
        s.job,
        &[(&local, &Bytes::from(expected))],
        SMALL_TRANSFER,
    );
    let asked: Vec<Option<String>> = server
        .requests_to("GET", "/ranged.bin")
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("range"))
                .map(|(_, v)| v.clone())
        })
        .collect();
    let want = [
        "bytes=200000-249999",
        "bytes=10-1009",
        "bytes=300000-307204",
    ];
    assert_eq!(asked, want.map(|v| Some(v.to_string())));
    s.shutdown();
}

/// A small file over plain HTTP, byte for byte, visible only after `complete`.
pub fn downloads_plain_http_file<D: Driver>() {
    let file = FileSpec::new(deterministic_bytes(200 * KIB + 17, 1));
    let server = TestServer::start(vec![Route::file("/small.bin", file.clone())]);
    let s = Scenario::<D>::start("downloads_plain_http_file", &server, &["small.bin"]);

    s.resume();
    download_and_complete(
        &s.driver,
        s.job,
        &[(&s.locals[0], &file.body)],
        SMALL_TRANSFER,
    );
    s.shutdown();
}

/// A small file over HTTPS from a server whose CA the driver was given as a file.
pub fn downloads_https_file_with_test_ca<D: Driver>() {
    let pki = TestPki::new();
    let file = FileSpec::new(deterministic_bytes(200 * KIB + 17, 2));
    let server = TestServer::start_tls(vec![Route::file("/small.bin", file.clone())], &pki);
    let s = Scenario::<D>::start_trusting(
        "downloads_https_file_with_test_ca",
        &server,
        &pki,
        &["small.bin"],
    );

    s.resume();
    download_and_complete(
        &s.driver,
        s.job,
        &[(&s.locals[0], &file.body)],
        SMALL_TRANSFER,
    );
    assert!(!server.requests().is_empty());
    s.shutdown();
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
    let s = Scenario::<D>::start(
        "resumes_after_connection_dropped_mid_body",
        &server,
        &["big.bin"],
    );

    let run = s.transfer_with_retries(&server, OnTransient::WaitForRetry);
    assert!(
        run.saw_transient,
        "a dropped connection puts the job in TRANSIENT_ERROR; events: {:?}",
        s.driver.events().states_of(s.job)
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

    complete_and_check(&s.driver, s.job, &[(&s.locals[0], &file.body)]);
    s.shutdown();
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
    let s = Scenario::<D>::start(
        "restarts_when_file_changes_between_attempts",
        &server,
        &["changing.bin"],
    );

    let run = s.transfer_with_retries(&server, OnTransient::Resume);
    assert_eq!(
        run.info.files[0].progress.bytes_total,
        b.len(),
        "the size is B's"
    );
    assert_eq!(run.info.files[0].progress.bytes_transferred, b.len());

    complete_and_check(&s.driver, s.job, &[(&s.locals[0], &b.body)]);
    s.shutdown();
}

/// 404: the job goes to ERROR with `BG_E_HTTP_ERROR_404` in the remote-file context, nothing
/// appears at the local name, and `cancel` leaves the directory empty.
pub fn not_found_is_error_0x80190194<D: Driver>() {
    let server = TestServer::start(vec![Route::status("/missing.bin", 404)]);
    let s = Scenario::<D>::start("not_found_is_error_0x80190194", &server, &["missing.bin"]);

    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Error);
    let info = info(&s.driver, s.job);
    let error = info.error.clone().expect("ERROR carries an error");
    assert_eq!(error.code, BG_E_HTTP_ERROR_404, "{error}");
    assert_eq!(error.context, ErrorContext::RemoteFile, "{error}");
    assert!(!s.locals[0].exists(), "nothing appears at the local name");
    let temp = info.files[0].temporary_name.clone();

    cancel_and_check_nothing_left(&s.driver, s.job, s.dir(), temp.as_deref());
    s.shutdown();
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
    let s = Scenario::<D>::start(
        "service_unavailable_then_ok_is_transient_then_transferred",
        &server,
        &["busy.bin"],
    );

    let run = s.transfer_with_retries(&server, OnTransient::Resume);
    assert!(
        run.saw_transient,
        "503 is transient; states: {:?}",
        s.driver.events().states_of(s.job)
    );
    let first = run
        .transient_errors
        .first()
        .expect("the TRANSIENT_ERROR carried an error");
    assert_eq!(first.code, BG_E_HTTP_ERROR_503, "{first}");

    complete_and_check(&s.driver, s.job, &[(&s.locals[0], &file.body)]);
    s.shutdown();
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
    let s = Scenario::<D>::start(
        "cancel_deletes_temp_files_and_creates_nothing",
        &server,
        &["stalls.bin"],
    );
    let local = &s.locals[0];

    s.resume();
    let info = poll_info(
        &s.driver,
        s.job,
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
        Some(s.dir()),
        "the temp file lives in the destination directory"
    );
    assert!(!local.exists());
    cancel_and_check_nothing_left(&s.driver, s.job, s.dir(), Some(&temp));

    let never_run = new_download_job(
        &s.driver,
        "never resumed",
        &[(&server.url("/stalls.bin"), local)],
    );
    cancel_and_check_nothing_left(&s.driver, never_run, s.dir(), None);
    s.shutdown();
}

/// An updater's case: an older version is at the local name, the download finishes, and its
/// temp file is deleted behind the job's back before `complete`. The commit fails: `complete`
/// returns its error (`ERROR_PATH_NOT_FOUND`, naming the local file), as BITS' `Complete` returns
/// a rename's error, and the job stays TRANSFERRED — never ACKNOWLEDGED
/// over a file that is not the download — and the older version is left as it was, also by the
/// `cancel` that gives up on the job.
pub fn a_vanished_temp_file_fails_complete_and_leaves_the_previous_version<D: Driver>() {
    let file = FileSpec::new(deterministic_bytes(64 * KIB, 21));
    let server = TestServer::start(vec![Route::file("/app.bin", file)]);
    let s = Scenario::<D>::start(
        "a_vanished_temp_file_fails_complete_and_leaves_the_previous_version",
        &server,
        &["app.bin"],
    );
    let local = &s.locals[0];
    std::fs::write(local, b"version 1").unwrap();

    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Transferred);
    let temp = info(&s.driver, s.job).files[0]
        .temporary_name
        .clone()
        .expect("a temp file once transferred");
    std::fs::remove_file(&temp).unwrap();

    // BITS' `Complete` returns the rename's error.
    let error = s.driver.complete(s.job).expect_err("the commit fails");
    assert_eq!(error.code(), ERROR_PATH_NOT_FOUND, "{error}");
    assert!(
        error.to_string().contains(&local.display().to_string()),
        "names the local file: {error}"
    );
    for _ in 0..20 {
        let state = info(&s.driver, s.job).state;
        assert_eq!(
            state,
            JobState::Transferred,
            "the failed commit keeps the job"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read(local).unwrap(), b"version 1");

    s.driver.cancel(s.job).expect("cancel");
    assert_eq!(wait_settled(&s.driver, s.job, FINISH), JobState::Cancelled);
    assert_eq!(std::fs::read(local).unwrap(), b"version 1");
    s.shutdown();
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
    let s = Scenario::<D>::start(
        "two_files_in_one_job_transfer_in_order",
        &server,
        &["one.bin", "two.bin"],
    );

    s.resume();
    download_and_complete(
        &s.driver,
        s.job,
        &[(&s.locals[0], &one.body), (&s.locals[1], &two.body)],
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
    s.shutdown();
}

/// A driver that trusts no CA (no system roots, no CA file) refuses the test server's
/// certificate: ERROR with `ERROR_WINHTTP_SECURE_INVALID_CA`, and no request reached the server.
pub fn https_with_untrusted_certificate_fails_with_invalid_ca<D: Driver>() {
    let pki = TestPki::new();
    let file = FileSpec::new(deterministic_bytes(10 * KIB, 10));
    let server = TestServer::start_tls(vec![Route::file("/secret.bin", file)], &pki);
    let s = Scenario::<D>::start(
        "https_with_untrusted_certificate_fails_with_invalid_ca",
        &server,
        &["secret.bin"],
    );

    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Error);
    let error = info(&s.driver, s.job)
        .error
        .expect("ERROR carries an error");
    assert_eq!(error.code, ERROR_WINHTTP_SECURE_INVALID_CA, "{error}");
    assert!(
        server.requests().is_empty(),
        "no request went to an untrusted server: {:#?}",
        server.requests()
    );
    assert!(!s.locals[0].exists());

    cancel_and_check_nothing_left(&s.driver, s.job, s.dir(), None);
    s.shutdown();
}

/// A body sent with `Transfer-Encoding: chunked` (no `Content-Length` on the GET) arrives whole.
pub fn chunked_response_downloads_completely<D: Driver>() {
    let file = FileSpec::new(deterministic_bytes(300 * KIB + 5, 11)).chunked();
    let server = TestServer::start(vec![Route::file("/chunked.bin", file.clone())]);
    let s = Scenario::<D>::start(
        "chunked_response_downloads_completely",
        &server,
        &["chunked.bin"],
    );

    s.resume();
    download_and_complete(
        &s.driver,
        s.job,
        &[(&s.locals[0], &file.body)],
        SMALL_TRANSFER,
    );
    s.shutdown();
}

/// `BG_SSL_ENABLE_CRL_CHECK` with the leaf's CRL distribution point on a loopback HTTP server
/// serving a CRL that does not list it: the CRL is fetched, then the file downloads.
pub fn crl_check_downloads_when_the_certificate_is_not_revoked<D: Driver>() {
    let (crl_server, pki) = crl_world(Some(false));
    let crl_server = crl_server.expect("a CRL server");
    let file = FileSpec::new(deterministic_bytes(50 * KIB, 12));
    let server = TestServer::start_tls(vec![Route::file("/checked.bin", file.clone())], &pki);
    let name = "crl_check_downloads_when_the_certificate_is_not_revoked";
    let s = Scenario::<D>::start_trusting(name, &server, &pki, &["checked.bin"]);
    s.driver
        .set_security_flags(s.job, CRL_CHECK)
        .expect("set_security_flags");
    s.resume();
    download_and_complete(
        &s.driver,
        s.job,
        &[(&s.locals[0], &file.body)],
        SMALL_TRANSFER,
    );
    assert_eq!(crl_server.requests_to("GET", "/ca.crl").len(), 1);
    s.shutdown();
}

/// The CDP serves a CRL that revokes the leaf: ERROR with `ERROR_WINHTTP_SECURE_CERT_REVOKED`,
/// and no request reaches the HTTPS server.
pub fn crl_check_fails_a_revoked_certificate_with_0x80072f8a<D: Driver>() {
    let (crl_server, pki) = crl_world(Some(true));
    let crl_server = crl_server.expect("a CRL server");
    crl_refused::<D>(
        "crl_check_fails_a_revoked_certificate_with_0x80072f8a",
        &pki,
        HResult(0x8007_2F8A),
    );
    assert_eq!(crl_server.requests_to("GET", "/ca.crl").len(), 1);
}

/// The CDP's port has nothing listening: the status cannot be checked, so the job fails
/// closed with `ERROR_WINHTTP_SECURE_CERT_REV_FAILED`.
pub fn crl_check_fails_closed_when_the_crl_is_unreachable_with_0x80072f19<D: Driver>() {
    let (_nothing, pki) = crl_world(None);
    crl_refused::<D>(
        "crl_check_fails_closed_when_the_crl_is_unreachable_with_0x80072f19",
        &pki,
        HResult(0x8007_2F19),
    );
}

/// `BG_SSL_ENABLE_CRL_CHECK`.
const CRL_CHECK: u32 = 0x0001;

/// A PKI whose leaf names `http://127.0.0.1:PORT/ca.crl` as its CRL distribution point, and
/// the server on PORT: serving the CA's CRL (revoking the leaf when `Some(true)`), or, for
/// `None`, nothing at all (the port was bound and released).
fn crl_world(revoke_leaf: Option<bool>) -> (Option<TestServer>, TestPki) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    let pki = TestPki::with_crl_distribution_point(&format!("http://127.0.0.1:{port}/ca.crl"));
    let Some(revoke_leaf) = revoke_leaf else {
        drop(listener);
        return (None, pki);
    };
    let crl = FileSpec::new(Bytes::from(pki.crl(revoke_leaf)));
    let server = TestServer::start_on(listener, vec![Route::file("/ca.crl", crl)]);
    (Some(server), pki)
}

/// Runs one HTTPS job with the CRL check on against `pki` and expects ERROR with `code`,
/// before any request reached the HTTPS server.
fn crl_refused<D: Driver>(name: &str, pki: &TestPki, code: HResult) {
    let file = FileSpec::new(deterministic_bytes(10 * KIB, 13));
    let server = TestServer::start_tls(vec![Route::file("/refused.bin", file)], pki);
    let s = Scenario::<D>::start_trusting(name, &server, pki, &["refused.bin"]);
    s.driver
        .set_security_flags(s.job, CRL_CHECK)
        .expect("set_security_flags");
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Error);
    let error = info(&s.driver, s.job)
        .error
        .expect("ERROR carries an error");
    assert_eq!(error.code, code, "{error}");
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    cancel_and_check_nothing_left(&s.driver, s.job, s.dir(), None);
    s.shutdown();
}

// ---------------------------------------------------------------------------------------------
// Shared steps.

/// What every scenario starts from: a driver, the destination directory and one download job,
/// created but not yet resumed. Built by [`Scenario::start`] / [`Scenario::start_trusting`] so
/// that the scenario's name (job name and RNG seed) is given once.
struct Scenario<D: Driver> {
    /// The driver under test.
    driver: D,
    /// The job, named after the scenario.
    job: JobId,
    /// The job's local names, `dir/<name>` for each name given, in that order.
    locals: Vec<PathBuf>,
    /// The destination directory. Deleted on drop, so held until the scenario ends.
    dir: TempDir,
    /// The directory of the CA file the driver trusts, if any; held for the same reason, so the
    /// driver could re-read the file at any time.
    _ca_dir: Option<TempDir>,
}

impl<D: Driver> Scenario<D> {
    /// A driver trusting nothing, seeded from `name`, and a job `name` that downloads each of
    /// `files` from `server`'s `/<file>` to `<temp dir>/<file>`.
    fn start(name: &str, server: &TestServer, files: &[&str]) -> Self {
        Self::build(name, server, None, files)
    }

    /// As [`Scenario::start`], but the driver trusts `pki`'s CA, written to a file in a temp
    /// directory of its own (so it never shows in the destination directory).
    fn start_trusting(name: &str, server: &TestServer, pki: &TestPki, files: &[&str]) -> Self {
        Self::build(name, server, Some(pki), files)
    }

    /// The two constructors' common body: directories first, then the driver, then the job.
    fn build(name: &str, server: &TestServer, pki: Option<&TestPki>, files: &[&str]) -> Self {
        let dir = tempdir();
        let (setup, ca_dir) = match pki {
            Some(pki) => {
                let ca_dir = tempdir();
                let setup = DriverSetup::trusting(name, pki.write_ca_pem(ca_dir.path()));
                (setup, Some(ca_dir))
            }
            None => (DriverSetup::trusting_nothing(name), None),
        };
        let driver: D = start_driver(setup);
        let locals: Vec<PathBuf> = files.iter().map(|f| dir.path().join(f)).collect();
        let urls: Vec<String> = files.iter().map(|f| server.url(&format!("/{f}"))).collect();
        let pairs: Vec<(&str, &Path)> = urls
            .iter()
            .map(String::as_str)
            .zip(locals.iter().map(PathBuf::as_path))
            .collect();
        let job = new_download_job(&driver, name, &pairs);
        Self {
            driver,
            job,
            locals,
            dir,
            _ca_dir: ca_dir,
        }
    }

    /// The destination directory.
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `resume`s the job, which must succeed.
    fn resume(&self) {
        self.driver.resume(self.job).expect("resume");
    }

    /// For the scenarios whose server fails the first attempt: sets BITS' minimum retry delay
    /// (so a retry timer comes within [`RETRIED_TRANSFER`]), resumes, runs the job to settled
    /// reacting to TRANSIENT_ERROR as `on_transient` says, prints `server`'s request log (shown
    /// on failure) and asserts the job ended TRANSFERRED.
    fn transfer_with_retries(&self, server: &TestServer, on_transient: OnTransient) -> Run {
        self.driver
            .set_minimum_retry_delay(self.job, MIN_RETRY_DELAY)
            .expect("set_minimum_retry_delay");
        self.resume();
        let run = run_to_settled(&self.driver, self.job, RETRIED_TRANSFER, on_transient);
        eprintln!("requests:\n{}", server.request_log());
        assert_state(&self.driver, self.job, run.state, JobState::Transferred);
        run
    }

    /// Shuts the driver down, and only then drops the temp directories.
    fn shutdown(self) {
        self.driver.shutdown();
    }
}

/// A download of `len` bytes (SHA-256 checked rather than compared, as `len` is large), over
/// HTTPS with a trusted test CA when `tls`.
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
    let s = if tls {
        Scenario::<D>::start_trusting(name, &server, &pki, &["large.bin"])
    } else {
        Scenario::<D>::start(name, &server, &["large.bin"])
    };
    let local = &s.locals[0];

    s.resume();
    let state = wait_settled(&s.driver, s.job, LARGE_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Transferred);
    let info = info(&s.driver, s.job);
    assert_eq!(info.progress.bytes_total, len as u64);
    assert_eq!(info.progress.bytes_transferred, len as u64);
    assert_eq!(
        s.driver.complete(s.job).expect("complete"),
        CompleteOutcome::Complete
    );
    let state = wait_settled(&s.driver, s.job, FINISH);
    assert_state(&s.driver, s.job, state, JobState::Acknowledged);
    assert!(
        eventually(FINISH, || local.exists()),
        "{} appears after complete",
        local.display()
    );
    let got = std::fs::read(local).expect("read the downloaded file");
    assert_eq!(got.len(), len, "length");
    assert_eq!(
        sha256_hex(&got),
        expected_hash,
        "SHA-256 of the downloaded file"
    );
    s.shutdown();
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

/// A fresh temp directory, deleted when dropped.
fn tempdir() -> TempDir {
    tempfile::tempdir().expect("create a temp directory")
}
