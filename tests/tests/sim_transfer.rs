//! Scenarios for resume, retries, timeouts, HTTP errors and redirects, in the simulation.

use std::path::Path;
use std::time::Duration;

use backhaul_core::{codes, ErrorContext, HResult, JobEvent, JobId, JobState};
use backhaul_tests::sim::{for_each_seed, Reply, Resource, Sim};

const HOST: &str = "files.test";

fn body(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(17).wrapping_add(salt))
        .collect()
}

/// A running job fetching `http://files.test/f` into `/dl/f`, retry delay 5 s.
fn running_job(sim: &mut Sim) -> JobId {
    let job = sim.create_job("t");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/f"))?;
        j.set_minimum_retry_delay(5)?;
        j.resume()
    })
    .expect("job starts");
    job
}

fn error_code(sim: &Sim, job: JobId) -> HResult {
    sim.engine
        .job(job)
        .unwrap()
        .error()
        .expect("an error is recorded")
        .code
}

fn complete_and_read(sim: &mut Sim, job: JobId) -> Vec<u8> {
    sim.command(|e| e.job_mut(job)?.complete())
        .expect("complete");
    assert_eq!(sim.state(job), JobState::Acknowledged);
    sim.file("/dl/f").expect("file in place").to_vec()
}

fn status(code: u16, headers: &[(&str, &str)]) -> Reply {
    Reply::Status(
        code,
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn resume_after_connection_drop_continues_with_range_and_if_range() {
    for_each_seed(25, |seed| {
        let mut sim = Sim::new(seed);
        let data = body(1_000_000, 3);
        sim.serve(HOST, 80, "/f", Resource::new(data.clone(), "v1"));
        sim.script(HOST, 80, "/f", vec![Reply::Truncate(400_000), Reply::Serve]);
        let job = running_job(&mut sim);
        sim.drive_to_state(job, JobState::TransientError);
        assert_eq!(error_code(&sim, job), codes::BG_E_CONNECTION_CLOSED);
        assert_eq!(sim.engine.job(job).unwrap().error_count(), 1);
        sim.drive_to_state(job, JobState::Transferred);
        let retry = sim.requests.last().unwrap();
        assert_eq!(retry.header("range"), Some("bytes=400000-"));
        assert_eq!(retry.header("if-range"), Some("\"v1\""));
        assert_eq!(complete_and_read(&mut sim, job), data);
    });
}

#[test]
fn resume_after_etag_change_restarts_from_zero_and_never_splices() {
    for_each_seed(25, |seed| {
        let mut sim = Sim::new(seed);
        let old = body(500_000, 1);
        let new = body(450_000, 2);
        sim.serve(HOST, 80, "/f", Resource::new(old, "v1"));
        let changed = Reply::ChangeTo(Resource::new(new.clone(), "v2"));
        sim.script(HOST, 80, "/f", vec![Reply::Truncate(200_000), changed]);
        let job = running_job(&mut sim);
        sim.drive_to_state(job, JobState::Transferred);
        assert_eq!(sim.requests.len(), 2);
        assert_eq!(sim.requests[1].header("if-range"), Some("\"v1\""));
        assert_eq!(
            complete_and_read(&mut sim, job),
            new,
            "the file is exactly the new version"
        );
    });
}

#[test]
fn resume_after_size_change_with_same_etag_restarts_from_zero() {
    // A broken server keeps the ETag but changes the file: the 206's total gives it away.
    let mut sim = Sim::new(4);
    let old = body(500_000, 1);
    let new = body(600_000, 2);
    sim.serve(HOST, 80, "/f", Resource::new(old, "same"));
    let changed = Reply::ChangeTo(Resource::new(new.clone(), "same"));
    sim.script(HOST, 80, "/f", vec![Reply::Truncate(100_000), changed]);
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(
        sim.requests.len(),
        3,
        "the mismatching 206 is dropped and the file re-requested"
    );
    assert_eq!(sim.requests[2].header("range"), None);
    assert_eq!(complete_and_read(&mut sim, job), new);
}

#[test]
fn a_file_without_validators_restarts_instead_of_resuming() {
    let mut sim = Sim::new(6);
    let data = body(300_000, 5);
    let mut resource = Resource::new(data.clone(), "x");
    resource.etag = None;
    sim.serve(HOST, 80, "/f", resource);
    sim.script(HOST, 80, "/f", vec![Reply::Truncate(100_000), Reply::Serve]);
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(
        sim.requests[1].header("range"),
        None,
        "no validator: no Range"
    );
    assert_eq!(complete_and_read(&mut sim, job), data);
}

#[test]
fn last_modified_is_the_validator_when_there_is_no_strong_etag() {
    let mut sim = Sim::new(6);
    let data = body(300_000, 5);
    let mut resource = Resource::new(data.clone(), "x");
    resource.etag = Some("W/\"weak\"".into());
    resource.last_modified = Some("Mon, 01 Dec 2025 10:00:00 GMT".into());
    sim.serve(HOST, 80, "/f", resource);
    sim.script(HOST, 80, "/f", vec![Reply::Truncate(100_000), Reply::Serve]);
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(
        sim.requests[1].header("if-range"),
        Some("Mon, 01 Dec 2025 10:00:00 GMT")
    );
    assert_eq!(sim.requests[1].header("range"), Some("bytes=100000-"));
    assert_eq!(complete_and_read(&mut sim, job), data);
}

#[test]
fn service_unavailable_is_transient_and_retried_after_the_minimum_retry_delay() {
    for_each_seed(10, |seed| {
        let mut sim = Sim::new(seed);
        let data = body(10_000, 8);
        sim.serve(HOST, 80, "/f", Resource::new(data.clone(), "v1"));
        sim.script(HOST, 80, "/f", vec![status(503, &[]), Reply::Serve]);
        let job = running_job(&mut sim);
        sim.drive_to_state(job, JobState::TransientError);
        let failed_at = sim.now();
        assert_eq!(error_code(&sim, job), HResult(0x8019_01F7));
        let context = sim.engine.job(job).unwrap().error().unwrap().context;
        assert_eq!(context, ErrorContext::RemoteFile);
        let job_error = |e: &JobEvent| matches!(e, JobEvent::JobError { .. });
        assert!(
            !sim.events.iter().any(job_error),
            "no JobError for transient errors"
        );
        sim.drive_until(10_000, |s| s.state(job) != JobState::TransientError);
        assert_eq!(
            sim.now().saturating_since(failed_at),
            Duration::from_secs(5)
        );
        sim.drive_to_state(job, JobState::Transferred);
        assert_eq!(
            complete_and_read(&mut sim, job),
            data,
            "the 503 body never reached the file"
        );
    });
}

#[test]
fn retry_after_longer_than_the_delay_is_honoured() {
    let mut sim = Sim::new(2);
    sim.serve(HOST, 80, "/f", Resource::new(body(100, 1), "v1"));
    sim.script(
        HOST,
        80,
        "/f",
        vec![status(429, &[("Retry-After", "120")]), Reply::Serve],
    );
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::TransientError);
    let failed_at = sim.now();
    sim.drive_until(10_000, |s| s.state(job) != JobState::TransientError);
    assert_eq!(
        sim.now().saturating_since(failed_at),
        Duration::from_secs(120)
    );
}

#[test]
fn resume_retries_a_transient_error_at_once() {
    let mut sim = Sim::new(2);
    sim.serve(HOST, 80, "/f", Resource::new(body(100, 1), "v1"));
    sim.script(HOST, 80, "/f", vec![status(500, &[]), Reply::Serve]);
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::TransientError);
    let failed_at = sim.now();
    sim.command(|e| e.job_mut(job)?.resume()).unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    assert!(sim.now().saturating_since(failed_at) < Duration::from_secs(1));
}

#[test]
fn not_found_is_fatal_with_bg_e_http_error_404_and_a_job_error_event() {
    let mut sim = Sim::new(1);
    sim.serve(HOST, 80, "/other", Resource::new(body(10, 1), "v"));
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::Error);
    let error = sim.engine.job(job).unwrap().error().unwrap().clone();
    assert_eq!(error.code, HResult(0x8019_0194));
    assert_eq!(error.code.name().as_deref(), Some("BG_E_HTTP_ERROR_404"));
    assert_eq!(error.context, ErrorContext::RemoteFile);
    assert_eq!(error.file, Some(0));
    let job_error = |e: &JobEvent| matches!(e, JobEvent::JobError { job: j, .. } if *j == job);
    assert!(sim.events.iter().any(job_error));
    let temp = sim.engine.job(job).unwrap().files()[0]
        .temporary_name
        .clone()
        .unwrap();
    assert_eq!(
        sim.files[&temp].data.len(),
        0,
        "a non-2xx body is never written"
    );
}

#[test]
fn fatal_statuses_and_transient_statuses_follow_the_documented_mapping() {
    for (code, expected) in [
        (400, JobState::Error),
        (401, JobState::Error),
        (403, JobState::Error),
        (407, JobState::Error),
        (410, JobState::Error),
        (501, JobState::Error),
        (408, JobState::TransientError),
        (429, JobState::TransientError),
        (500, JobState::TransientError),
        (502, JobState::TransientError),
        (503, JobState::TransientError),
        (504, JobState::TransientError),
    ] {
        let mut sim = Sim::new(u64::from(code));
        sim.serve(HOST, 80, "/f", Resource::new(body(10, 1), "v"));
        sim.script(HOST, 80, "/f", vec![status(code, &[])]);
        let job = running_job(&mut sim);
        let failed = |s: &Sim| matches!(s.state(job), JobState::Error | JobState::TransientError);
        sim.drive_until(10_000, failed);
        assert_eq!(sim.state(job), expected, "status {code}");
        assert_eq!(error_code(&sim, job), HResult::from_http_status(code));
    }
}

#[test]
fn no_progress_timeout_turns_a_persistent_transient_error_into_error() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(10, 1), "v"));
    sim.script(HOST, 80, "/f", vec![status(503, &[])]);
    let job = sim.create_job("stuck");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/f"))?;
        j.set_minimum_retry_delay(60)?;
        j.set_no_progress_timeout(600)?;
        j.resume()
    })
    .unwrap();
    let started = sim.now();
    sim.drive_to_state(job, JobState::Error);
    let waited = sim.now().saturating_since(started);
    assert!(
        waited >= Duration::from_secs(600) && waited < Duration::from_secs(700),
        "{waited:?}"
    );
    assert_eq!(
        error_code(&sim, job),
        HResult(0x8019_01F7),
        "the last transient error is kept"
    );
    assert!(sim.engine.job(job).unwrap().error_count() >= 10);
}

#[test]
fn zero_no_progress_timeout_makes_every_error_fatal() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(10, 1), "v"));
    sim.script(HOST, 80, "/f", vec![status(503, &[])]);
    let job = sim.create_job("fatal");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/f"))?;
        j.set_no_progress_timeout(0)?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Error);
    assert!(!sim.states_of(job).contains(&JobState::TransientError));
}

#[test]
fn retry_delay_longer_than_no_progress_timeout_means_no_retry() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(10, 1), "v"));
    sim.script(HOST, 80, "/f", vec![status(503, &[])]);
    let job = sim.create_job("no retry");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/f"))?;
        j.set_minimum_retry_delay(100)?;
        j.set_no_progress_timeout(50)?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Error);
    assert!(!sim.states_of(job).contains(&JobState::TransientError));
}

#[test]
fn a_silent_server_is_a_transient_receive_timeout() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(10, 1), "v"));
    sim.script(HOST, 80, "/f", vec![Reply::Silence, Reply::Serve]);
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::TransientError);
    assert_eq!(error_code(&sim, job), codes::ERROR_WINHTTP_TIMEOUT);
    sim.drive_to_state(job, JobState::Transferred);
}

#[test]
fn connection_refused_is_transient_and_recovers_when_the_server_returns() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(1000, 1), "v"));
    sim.refuse_connections(HOST, 80, true);
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::TransientError);
    assert_eq!(error_code(&sim, job), codes::ERROR_WINHTTP_CANNOT_CONNECT);
    sim.refuse_connections(HOST, 80, false);
    sim.drive_to_state(job, JobState::Transferred);
}

#[test]
fn maximum_download_time_expires_into_bg_e_maxdownload_timeout() {
    let mut config = backhaul_core::Config::new([0; 32]);
    config.receive_timeout = Duration::from_secs(3600);
    let mut sim = Sim::with_config(3, config);
    sim.serve(HOST, 80, "/f", Resource::new(body(10, 1), "v"));
    sim.script(HOST, 80, "/f", vec![Reply::Silence]);
    let job = sim.create_job("slow");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/f"))?;
        j.set_maximum_download_time(30)?;
        j.resume()
    })
    .unwrap();
    let started = sim.now();
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(error_code(&sim, job), codes::BG_E_MAXDOWNLOAD_TIMEOUT);
    assert_eq!(sim.now().saturating_since(started), Duration::from_secs(30));
}

#[test]
fn a_full_disk_is_transient_and_a_missing_directory_is_fatal() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(1000, 1), "v"));
    sim.fail_writes = Some(backhaul_core::IoFailureKind::DiskFull);
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::TransientError);
    assert_eq!(error_code(&sim, job), codes::ERROR_DISK_FULL);
    let context = sim.engine.job(job).unwrap().error().unwrap().context;
    assert_eq!(context, ErrorContext::LocalFile);
    sim.fail_writes = None;
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(complete_and_read(&mut sim, job), body(1000, 1));

    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(1000, 1), "v"));
    sim.dirs.clear();
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(error_code(&sim, job), codes::ERROR_PATH_NOT_FOUND);
}

#[test]
fn chunked_responses_download_completely_with_unknown_size_until_the_end() {
    for_each_seed(10, |seed| {
        let mut sim = Sim::new(seed);
        let data = body(523_457, 4);
        let mut resource = Resource::new(data.clone(), "c");
        resource.chunked = true;
        sim.serve(HOST, 80, "/f", resource);
        let job = running_job(&mut sim);
        let mid_body = |s: &Sim| {
            let p = s.engine.job(job).unwrap().progress();
            p.bytes_transferred > 0 && p.files_transferred == 0
        };
        sim.drive_until(10_000, mid_body);
        let total = sim.engine.job(job).unwrap().progress().bytes_total;
        assert_eq!(
            total,
            backhaul_core::SIZE_UNKNOWN,
            "size unknown until the last chunk"
        );
        sim.drive_to_state(job, JobState::Transferred);
        assert_eq!(
            sim.engine.job(job).unwrap().progress().bytes_total,
            data.len() as u64
        );
        assert_eq!(complete_and_read(&mut sim, job), data);
    });
}

#[test]
fn redirects_are_followed_and_https_to_http_is_refused() {
    let mut sim = Sim::new(3);
    let data = body(1000, 1);
    sim.serve("mirror.test", 80, "/real", Resource::new(data.clone(), "v"));
    sim.script(
        HOST,
        80,
        "/f",
        vec![status(302, &[("Location", "http://mirror.test/real")])],
    );
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(complete_and_read(&mut sim, job), data);

    let mut sim = Sim::new(3);
    sim.script(
        HOST,
        443,
        "/f",
        vec![status(301, &[("Location", "http://files.test/f")])],
    );
    let job = sim.create_job("downgrade");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("https://files.test/f", Path::new("/dl/f"))?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(error_code(&sim, job), codes::ERROR_WINHTTP_REDIRECT_FAILED);
}

#[test]
fn a_redirect_loop_ends_in_error() {
    let mut sim = Sim::new(3);
    sim.script(HOST, 80, "/f", vec![status(307, &[("Location", "/f")])]);
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(error_code(&sim, job), codes::ERROR_WINHTTP_REDIRECT_FAILED);
    assert_eq!(
        sim.requests.len(),
        1,
        "a Location naming the URL itself is a loop at once"
    );
}

#[test]
fn time_going_backwards_is_ignored() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(10, 1), "v"));
    sim.script(HOST, 80, "/f", vec![status(503, &[])]);
    let job = running_job(&mut sim);
    sim.drive_to_state(job, JobState::TransientError);
    let before = sim.engine.now();
    let past = backhaul_core::Timestamp::EPOCH;
    sim.engine
        .handle(backhaul_core::Input::Timeout { now: past });
    assert_eq!(sim.engine.now(), before);
    assert_eq!(sim.state(job), JobState::TransientError);
}

#[test]
fn bytes_before_connected_do_not_strand_the_job() {
    let mut sim = Sim::new(3);
    sim.serve(HOST, 80, "/f", Resource::new(body(100, 1), "v"));
    let job = running_job(&mut sim);
    // The engine asked for conn#1; a broken driver delivers bytes before `Connected`.
    let conn = backhaul_core::ConnId(1);
    let now = sim.now();
    let data = bytes::Bytes::from_static(b"HTTP/1.1 200 OK\r\n");
    sim.engine
        .handle(backhaul_core::Input::Received { now, conn, data });
    assert_eq!(sim.state(job), JobState::TransientError);
    assert_eq!(error_code(&sim, job), codes::ERROR_WINHTTP_CONNECTION_ERROR);
    sim.drive_to_state(job, JobState::Transferred);
}
