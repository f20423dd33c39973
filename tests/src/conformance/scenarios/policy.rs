//! The HTTPS policy scenarios: the app's certificate validation callback and the redirect
//! policy, against real loopback servers and real TLS handshakes.

use std::sync::{Arc, Mutex};

use backhaul_core::{codes, ErrorContext, HResult, JobState};

use super::{Scenario, FINISH, KIB, MIN_RETRY_DELAY, SMALL_TRANSFER};
use crate::conformance::{
    assert_state, info, new_download_job, poll_info, wait_settled, Driver, Validator,
};
use crate::data::deterministic_bytes;
use crate::pki::TestPki;
use crate::server::{FileSpec, Route, Step, TestServer};

/// What the callback saw each time it was asked: (host, port, chain length, leaf is the
/// chain's first, requests the server had received by then).
type Asked = Arc<Mutex<Vec<(String, u16, usize, bool, usize)>>>;

/// A callback that records what it is asked (and how many requests `server` had seen then)
/// and answers `verdict`.
fn recording_validator(
    server: &Arc<TestServer>,
    verdict: Result<(), HResult>,
) -> (Validator, Asked) {
    let asked: Asked = Arc::default();
    let (log, server) = (asked.clone(), server.clone());
    let validator: Validator = Arc::new(move |request| {
        log.lock().unwrap().push((
            request.host.clone(),
            request.port,
            request.chain.len(),
            request.chain.first() == Some(&request.leaf),
            server.requests().len(),
        ));
        verdict
    });
    (validator, asked)
}

/// The callback runs after the built-in checks (a trusted chain), is handed the leaf and the
/// chain, and is asked before one request byte reaches the server; accepted, the file arrives.
pub fn certificate_callback_is_asked_after_the_checks_and_before_any_request<D: Driver>() {
    let pki = TestPki::new();
    let body = deterministic_bytes(64 * KIB, 21);
    let server = Arc::new(TestServer::start_tls(
        vec![Route::file("/a.bin", FileSpec::new(body.clone()))],
        &pki,
    ));
    let s = Scenario::<D>::start_trusting(
        "certificate_callback_is_asked_after_the_checks_and_before_any_request",
        &server,
        &pki,
        &["a.bin"],
    );
    let (validator, asked) = recording_validator(&server, Ok(()));
    s.driver
        .set_certificate_validator(s.job, Some(validator))
        .expect("register the callback while SUSPENDED");
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Transferred);
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "asked once: {asked:?}");
    let (_, port, chain_len, leaf_first, requests_then) = asked[0].clone();
    assert_eq!(port, server.port());
    assert!(chain_len >= 1 && leaf_first, "{asked:?}");
    assert_eq!(requests_then, 0, "no request before the verdict");
    s.driver.complete(s.job).expect("complete");
    assert_eq!(std::fs::read(&s.locals[0]).unwrap(), body);
    s.shutdown();
}

/// A rejection: TRANSIENT_ERROR with context SERVER_CERTIFICATE_CALLBACK (8) and the
/// callback's code, and the server never saw a request.
pub fn certificate_callback_rejection_is_a_transient_error_in_context_8<D: Driver>() {
    let pki = TestPki::new();
    let file = FileSpec::new(deterministic_bytes(KIB, 22));
    let server = Arc::new(TestServer::start_tls(
        vec![Route::file("/a.bin", file)],
        &pki,
    ));
    let s = Scenario::<D>::start_trusting(
        "certificate_callback_rejection_is_a_transient_error_in_context_8",
        &server,
        &pki,
        &["a.bin"],
    );
    let rejection = HResult(0x800B_0109); // CERT_E_UNTRUSTEDROOT, as an app might answer
    let (validator, asked) = recording_validator(&server, Err(rejection));
    s.driver
        .set_certificate_validator(s.job, Some(validator))
        .expect("register the callback");
    s.driver
        .set_minimum_retry_delay(s.job, MIN_RETRY_DELAY)
        .unwrap();
    s.resume();
    let info = poll_info(&s.driver, s.job, SMALL_TRANSFER, "TRANSIENT_ERROR", |i| {
        i.state == JobState::TransientError
    });
    let error = info.error.expect("TRANSIENT_ERROR carries an error");
    assert_eq!(error.context, ErrorContext::ServerCertificateCallback);
    assert_eq!(error.context as u32, 8);
    assert_eq!(error.code, rejection, "{error}");
    assert!(!asked.lock().unwrap().is_empty());
    assert!(server.requests().is_empty(), "{}", server.request_log());
    s.driver.cancel(s.job).expect("cancel");
    s.shutdown();
}

/// Setting the callback is refused while the job is active.
pub fn certificate_callback_cannot_be_set_while_the_job_is_active<D: Driver>() {
    let server = TestServer::start(vec![Route::script(
        "/slow.bin",
        vec![Step::Stall {
            file: FileSpec::new(deterministic_bytes(64 * KIB, 25)),
            after: KIB as u64,
            hold: std::time::Duration::from_secs(20),
        }],
    )]);
    let s = Scenario::<D>::start(
        "certificate_callback_cannot_be_set_while_the_job_is_active",
        &server,
        &["slow.bin"],
    );
    s.resume();
    poll_info(&s.driver, s.job, FINISH, "an active state", |i| {
        matches!(i.state, JobState::Connecting | JobState::Transferring)
    });
    let refused = s
        .driver
        .set_certificate_validator(s.job, Some(Arc::new(|_| Ok(()))))
        .unwrap_err();
    assert_eq!(refused.code(), codes::BG_E_READ_ONLY_WHEN_JOB_ACTIVE);
    s.driver.cancel(s.job).expect("cancel");
    s.shutdown();
}

/// Under DISALLOW a redirect is an ERROR with `HRESULT_FROM_WIN32(status)`, and the file's
/// remote name becomes the redirect's target; the target is never requested.
pub fn redirect_disallowed_fails_with_the_win32_status_and_names_the_target<D: Driver>() {
    let server = TestServer::start(vec![
        Route::script(
            "/old.bin",
            vec![Step::status_with_headers(301, &[("Location", "/new.bin")])],
        ),
        Route::file("/new.bin", FileSpec::new(deterministic_bytes(KIB, 23))),
    ]);
    let s = Scenario::<D>::start(
        "redirect_disallowed_fails_with_the_win32_status_and_names_the_target",
        &server,
        &["old.bin"],
    );
    s.driver.set_security_flags(s.job, 0x0200).unwrap();
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Error);
    let info = info(&s.driver, s.job);
    let error = info.error.expect("ERROR carries an error");
    assert_eq!(error.code, codes::ERROR_HTTP_REDIRECT_MOVED, "{error}");
    assert_eq!(info.files[0].remote_name, server.url("/new.bin"));
    assert!(server.requests_to("GET", "/new.bin").is_empty());
    s.driver.cancel(s.job).expect("cancel");
    s.shutdown();
}

/// https → http is refused by default and followed with ALLOW_HTTPS_TO_HTTP (0x0800).
pub fn https_to_http_redirect_needs_allow_https_to_http<D: Driver>() {
    let pki = TestPki::new();
    let body = deterministic_bytes(KIB, 24);
    let plain = TestServer::start(vec![Route::file("/f.bin", FileSpec::new(body.clone()))]);
    let target = plain.url("/f.bin");
    let secure = TestServer::start_tls(
        vec![Route::script(
            "/f.bin",
            vec![Step::status_with_headers(302, &[("Location", &target)])],
        )],
        &pki,
    );
    let s = Scenario::<D>::start_trusting(
        "https_to_http_redirect_needs_allow_https_to_http",
        &secure,
        &pki,
        &["f.bin"],
    );
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Error);
    let error = info(&s.driver, s.job).error.unwrap();
    assert_eq!(error.code, codes::ERROR_WINHTTP_REDIRECT_FAILED, "{error}");
    assert!(plain.requests().is_empty());

    let local = s.dir().join("allowed.bin");
    let allowed = new_download_job(&s.driver, "allowed", &[(&secure.url("/f.bin"), &local)]);
    s.driver.set_security_flags(allowed, 0x0800).unwrap();
    s.driver.resume(allowed).unwrap();
    let state = wait_settled(&s.driver, allowed, SMALL_TRANSFER);
    assert_state(&s.driver, allowed, state, JobState::Transferred);
    s.driver.complete(allowed).unwrap();
    assert_eq!(std::fs::read(&local).unwrap(), body);
    s.driver.cancel(s.job).expect("cancel");
    s.shutdown();
}

/// The notification program runs when the job is TRANSFERRED, directly (no shell: `;` and
/// `$()` arrive literally and run nothing), and runs again after the retry delay when it exits
/// non-zero.
pub fn notify_program_gets_literal_arguments_and_reruns_after_failure<D: Driver>() {
    use std::os::unix::fs::PermissionsExt;

    let server = TestServer::start(vec![Route::file(
        "/n.bin",
        FileSpec::new(deterministic_bytes(KIB, 26)),
    )]);
    let s = Scenario::<D>::start(
        "notify_program_gets_literal_arguments_and_reruns_after_failure",
        &server,
        &["n.bin"],
    );
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().display().to_string();
    let script = work.path().join("on-done");
    // Counts its runs, records its arguments one per line, fails the first run.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nn=$(cat '{dir}/count' 2>/dev/null || echo 0)\nn=$((n+1))\n\
             echo $n > '{dir}/count'\nprintf '%s\\n' \"$@\" > '{dir}/args.'$n\n\
             [ \"$BACKHAUL_JOB_ID\" != '' ] && [ $n -ge 2 ]\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pwned = work.path().join("pwned");
    let parameters = format!("on-done ';' '$(touch {})' 'a b'", pwned.display());
    s.driver
        .set_notify_cmd_line(s.job, Some(script.to_str().unwrap()), Some(&parameters))
        .expect("set_notify_cmd_line");
    s.driver
        .set_minimum_retry_delay(s.job, MIN_RETRY_DELAY)
        .unwrap();
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Transferred);
    let count = || std::fs::read_to_string(work.path().join("count")).unwrap_or_default();
    assert!(
        crate::conformance::eventually(SMALL_TRANSFER, || count().trim() == "2"),
        "the program ran {:?} times",
        count()
    );
    let args = std::fs::read_to_string(work.path().join("args.1")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [";", &format!("$(touch {})", pwned.display()), "a b"]
    );
    assert!(!pwned.exists(), "no shell ran the parameters");
    s.driver.complete(s.job).expect("complete");
    s.shutdown();
}

/// Expired, not yet valid, wrong host, unknown CA, wrong usage: each fails by default with its
/// own WinHTTP code, passes with exactly its own `BG_SSL_IGNORE_*` flag, and still fails with
/// each of the other ignore flags — over real TLS handshakes.
pub fn each_certificate_problem_is_waived_only_by_its_own_flag<D: Driver>() {
    use crate::pki::LeafProblem;
    const FLAGS: [u32; 4] = [0x0002, 0x0004, 0x0008, 0x0010];
    let cases = [
        (
            LeafProblem::Expired,
            true,
            0x0004,
            codes::ERROR_WINHTTP_SECURE_CERT_DATE_INVALID,
        ),
        (
            LeafProblem::NotYetValid,
            true,
            0x0004,
            codes::ERROR_WINHTTP_SECURE_CERT_DATE_INVALID,
        ),
        (
            LeafProblem::WrongHost,
            true,
            0x0002,
            codes::ERROR_WINHTTP_SECURE_CERT_CN_INVALID,
        ),
        (
            LeafProblem::None,
            false,
            0x0008,
            codes::ERROR_WINHTTP_SECURE_INVALID_CA,
        ),
        (
            LeafProblem::ClientAuthOnly,
            true,
            0x0010,
            codes::ERROR_WINHTTP_SECURE_CERT_WRONG_USAGE,
        ),
    ];
    let body = deterministic_bytes(KIB, 27);
    for (problem, trusted, own_flag, code) in cases {
        let pki = TestPki::with_problem(problem);
        let server = TestServer::start_tls(
            vec![Route::file("/c.bin", FileSpec::new(body.clone()))],
            &pki,
        );
        let name = "each_certificate_problem_is_waived_only_by_its_own_flag";
        let s = if trusted {
            Scenario::<D>::start_trusting(name, &server, &pki, &["c.bin"])
        } else {
            Scenario::<D>::start(name, &server, &["c.bin"])
        };
        let mut runs = vec![(0u32, false)];
        runs.extend(FLAGS.iter().map(|&flag| (flag, flag == own_flag)));
        for (i, (flags, passes)) in runs.into_iter().enumerate() {
            let local = s.dir().join(format!("c{i}.bin"));
            let job = new_download_job(&s.driver, name, &[(&server.url("/c.bin"), &local)]);
            s.driver.set_security_flags(job, flags).unwrap();
            s.driver.resume(job).unwrap();
            let state = wait_settled(&s.driver, job, SMALL_TRANSFER);
            let what = format!("{problem:?} with flags 0x{flags:04X}");
            if passes {
                assert_eq!(
                    state,
                    JobState::Transferred,
                    "{what}: {:?}",
                    info(&s.driver, job).error
                );
            } else {
                assert_eq!(state, JobState::Error, "{what}");
                let error = info(&s.driver, job).error.unwrap();
                assert_eq!(error.code, code, "{what}: {error}");
            }
            s.driver.cancel(job).unwrap();
        }
        s.driver.cancel(s.job).unwrap();
        s.shutdown();
    }
}

/// The callback is not persisted, but the job remembers it wants one: after a restart, its
/// HTTPS transfer stops in ERROR with `BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED` (context
/// 8) before any request, until the app registers a callback again and resumes.
pub fn a_restarted_job_that_wants_a_callback_stops_until_one_is_registered<D: Driver>() {
    use crate::conformance::{start_driver, DriverSetup};

    let name = "a_restarted_job_that_wants_a_callback_stops_until_one_is_registered";
    let pki = TestPki::new();
    let body = deterministic_bytes(32 * KIB, 28);
    let server = Arc::new(TestServer::start_tls(
        vec![Route::file("/v.bin", FileSpec::new(body.clone()))],
        &pki,
    ));
    let (dir, state, ca_dir) = (super::tempdir(), super::tempdir(), super::tempdir());
    let setup = DriverSetup {
        store: Some(state.path().join("jobs.redb")),
        ..DriverSetup::trusting(name, pki.write_ca_pem(ca_dir.path()))
    };
    let local = dir.path().join("v.bin");
    let first: D = start_driver(setup.clone());
    let job = new_download_job(&first, name, &[(&server.url("/v.bin"), &local)]);
    let (validator, _) = recording_validator(&server, Ok(()));
    first
        .set_certificate_validator(job, Some(validator))
        .unwrap();
    first.shutdown();

    let second: D = start_driver(setup);
    second.resume(job).unwrap();
    let state = wait_settled(&second, job, SMALL_TRANSFER);
    assert_state(&second, job, state, JobState::Error);
    let error = info(&second, job).error.unwrap();
    assert_eq!(
        error.code,
        codes::BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED,
        "{error}"
    );
    assert_eq!(error.context, ErrorContext::ServerCertificateCallback);
    assert!(server.requests().is_empty(), "{}", server.request_log());

    let (validator, asked) = recording_validator(&server, Ok(()));
    second
        .set_certificate_validator(job, Some(validator))
        .unwrap();
    second.resume(job).unwrap();
    let state = wait_settled(&second, job, SMALL_TRANSFER);
    assert_state(&second, job, state, JobState::Transferred);
    assert_eq!(asked.lock().unwrap().len(), 1);
    second.complete(job).unwrap();
    assert_eq!(std::fs::read(&local).unwrap(), body);
    second.shutdown();
}
