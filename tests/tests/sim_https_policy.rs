//! The HTTPS policy in the simulation: security flags, the redirect policy, and the app's
//! server-certificate validation callback.

use std::path::Path;

use backhaul_core::job::{RedirectPolicy, SecurityFlags};
use backhaul_core::{codes, ErrorContext, HResult, JobId, JobState};
use backhaul_tests::sim::{for_each_seed, Reply, Resource, Sim};

const HOST: &str = "files.test";

fn body(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8) ^ salt).collect()
}

fn redirect(status: u16, location: &str) -> Reply {
    Reply::Status(status, vec![("Location".into(), location.into())])
}

/// A job for `url` into `/dl/f` with `flags`, resumed.
fn job_with_flags(sim: &mut Sim, url: &str, flags: SecurityFlags) -> JobId {
    let job = sim.create_job("policy");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file(url, Path::new("/dl/f"))?;
        j.set_security_flags(flags.bits())?;
        j.resume()
    })
    .expect("job starts");
    job
}

fn error_of(sim: &Sim, job: JobId) -> (ErrorContext, HResult, String) {
    let view = sim.engine.job(job).unwrap();
    let e = view.error().expect("an error is recorded");
    (e.context, e.code, e.description.clone())
}

fn remote_name(sim: &Sim, job: JobId) -> String {
    sim.engine.job(job).unwrap().files()[0].remote_name.clone()
}

#[test]
fn every_undefined_flag_combination_is_not_implemented_and_changes_nothing() {
    let mut sim = Sim::new(1);
    let job = sim.create_job("flags");
    sim.command(|e| e.job_mut(job)?.set_security_flags(0x0105))
        .unwrap();
    for bad in [
        0x0020,
        0x0040,
        0x1000,
        0x8000_0000,
        0x0300,
        0x0400,
        0x0700,
        0x0F1F,
    ] {
        let err = sim
            .command(|e| e.job_mut(job)?.set_security_flags(bad))
            .unwrap_err();
        assert_eq!(err.code(), codes::E_NOTIMPL, "0x{bad:X}");
        let flags = sim.engine.job(job).unwrap().security_flags();
        assert_eq!(flags.bits(), 0x0105, "0x{bad:X} changed the flags");
    }
}

#[test]
fn disallow_fails_with_the_win32_status_and_names_the_target() {
    let cases = [
        (300, codes::ERROR_HTTP_REDIRECT_AMBIGUOUS),
        (301, codes::ERROR_HTTP_REDIRECT_MOVED),
        (302, codes::ERROR_HTTP_REDIRECT_FOUND),
        (303, codes::ERROR_HTTP_REDIRECT_SEE_OTHER),
        (307, codes::ERROR_HTTP_REDIRECT_KEEP_VERB),
        (308, codes::ERROR_HTTP_REDIRECT_PERMANENT),
    ];
    for (status, code) in cases {
        let mut sim = Sim::new(2);
        sim.serve("mirror.test", 80, "/real", Resource::new(body(10, 1), "v"));
        sim.script(
            HOST,
            80,
            "/f",
            vec![redirect(status, "http://mirror.test/real")],
        );
        let flags = SecurityFlags::default().with_redirect_policy(RedirectPolicy::Disallow);
        let job = job_with_flags(&mut sim, "http://files.test/f", flags);
        sim.drive_to_state(job, JobState::Error);
        let (context, got, _) = error_of(&sim, job);
        assert_eq!((context, got), (ErrorContext::RemoteFile, code), "{status}");
        assert_eq!(
            remote_name(&sim, job),
            "http://mirror.test/real",
            "{status}"
        );
        assert_eq!(sim.requests.len(), 1, "{status}: the target is never asked");
    }
}

#[test]
fn allow_report_follows_and_renames_the_remote_name_to_the_final_url() {
    for_each_seed(8, |seed| {
        let mut sim = Sim::new(seed);
        let data = body(5000, 3);
        sim.serve("cdn.test", 80, "/v2/f", Resource::new(data.clone(), "v"));
        sim.script(HOST, 80, "/f", vec![redirect(302, "http://mirror.test/f")]);
        sim.script(
            "mirror.test",
            80,
            "/f",
            vec![redirect(301, "http://cdn.test/v2/f")],
        );
        let flags = SecurityFlags::default().with_redirect_policy(RedirectPolicy::AllowReport);
        let job = job_with_flags(&mut sim, "http://files.test/f", flags);
        sim.drive_to_state(job, JobState::Transferred);
        assert_eq!(remote_name(&sim, job), "http://cdn.test/v2/f");
        sim.command(|e| e.job_mut(job)?.complete()).unwrap();
        assert_eq!(sim.file("/dl/f").unwrap(), &data[..]);
    });
}

#[test]
fn allow_silent_follows_and_keeps_the_remote_name() {
    let mut sim = Sim::new(4);
    sim.serve("mirror.test", 80, "/f", Resource::new(body(100, 4), "v"));
    sim.script(HOST, 80, "/f", vec![redirect(307, "http://mirror.test/f")]);
    let job = job_with_flags(&mut sim, "http://files.test/f", SecurityFlags::default());
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(remote_name(&sim, job), "http://files.test/f");
}

#[test]
fn https_to_http_is_followed_only_with_allow_https_to_http() {
    for (allow, expected) in [(false, JobState::Error), (true, JobState::Transferred)] {
        let mut sim = Sim::new(5);
        sim.serve("plain.test", 80, "/f", Resource::new(body(100, 5), "v"));
        sim.script(HOST, 443, "/f", vec![redirect(302, "http://plain.test/f")]);
        let flags = SecurityFlags::default().with_allow_https_to_http(allow);
        let job = job_with_flags(&mut sim, "https://files.test/f", flags);
        sim.drive_to_state(job, expected);
        if !allow {
            let (_, code, why) = error_of(&sim, job);
            assert_eq!(code, codes::ERROR_WINHTTP_REDIRECT_FAILED);
            assert!(why.contains("ALLOW_HTTPS_TO_HTTP"), "{why}");
        }
    }
}

#[test]
fn a_redirect_chain_longer_than_the_limit_ends_in_error() {
    let mut sim = Sim::new(6);
    for i in 0..20 {
        let next = format!("/r{}", i + 1);
        sim.script(HOST, 80, &format!("/r{i}"), vec![redirect(302, &next)]);
    }
    let job = job_with_flags(&mut sim, "http://files.test/r0", SecurityFlags::default());
    sim.drive_to_state(job, JobState::Error);
    let (_, code, why) = error_of(&sim, job);
    assert_eq!(code, codes::ERROR_WINHTTP_REDIRECT_FAILED);
    assert!(why.contains("more than 10 redirects"), "{why}");
    assert_eq!(sim.requests.len(), 11, "the first request and 10 redirects");
}

#[test]
fn a_redirect_back_to_an_earlier_url_is_a_loop() {
    let mut sim = Sim::new(7);
    sim.script(HOST, 80, "/a", vec![redirect(302, "/b")]);
    sim.script(
        HOST,
        80,
        "/b",
        vec![redirect(302, "http://files.test:80/a")],
    );
    let job = job_with_flags(&mut sim, "http://files.test/a", SecurityFlags::default());
    sim.drive_to_state(job, JobState::Error);
    let (_, code, why) = error_of(&sim, job);
    assert_eq!(code, codes::ERROR_WINHTTP_REDIRECT_FAILED);
    assert!(why.contains("loop"), "{why}");
    assert_eq!(sim.requests.len(), 2);
}

#[test]
fn a_location_that_is_not_http_or_carries_userinfo_is_refused() {
    for location in [
        "ftp://files.test/f",
        "file:///etc/passwd",
        "http://user:pw@mirror.test/f",
    ] {
        let mut sim = Sim::new(8);
        sim.script(HOST, 80, "/f", vec![redirect(302, location)]);
        let job = job_with_flags(&mut sim, "http://files.test/f", SecurityFlags::default());
        sim.drive_to_state(job, JobState::Error);
        let (_, code, _) = error_of(&sim, job);
        assert_eq!(code, codes::ERROR_WINHTTP_REDIRECT_FAILED, "{location}");
        assert_eq!(sim.requests.len(), 1, "{location}");
    }
}

/// An HTTPS job with two files on one server and a registered callback.
fn validated_job(sim: &mut Sim) -> JobId {
    sim.serve(HOST, 443, "/a", Resource::new(body(300, 1), "a"));
    sim.serve(HOST, 443, "/b", Resource::new(body(300, 2), "b"));
    let job = sim.create_job("validated");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("https://files.test/a", Path::new("/dl/a"))?;
        j.add_file("https://files.test/b", Path::new("/dl/b"))?;
        j.set_minimum_retry_delay(5)?;
        j.set_server_certificate_validation(true)?;
        j.resume()
    })
    .expect("job starts");
    job
}

#[test]
fn an_accepted_certificate_is_cached_and_skips_the_callback() {
    let mut sim = Sim::new(9);
    // The first connection breaks mid-file, so the retry needs a new one.
    sim.script(HOST, 443, "/a", vec![Reply::Truncate(100), Reply::Serve]);
    let job = validated_job(&mut sim);
    sim.drive_to_state(job, JobState::Transferred);
    assert!(sim.connects >= 2, "{} connections", sim.connects);
    assert_eq!(
        sim.validations,
        vec![(job, HOST.to_string(), 443)],
        "asked once: the later connection hit the cache"
    );
}

#[test]
fn a_rejection_is_a_transient_error_in_the_callback_context_and_is_never_cached() {
    let mut sim = Sim::new(10);
    let rejected = HResult(0x8009_0325); // SEC_E_UNTRUSTED_ROOT, say
    sim.verdicts.push_back(Err(rejected));
    let job = validated_job(&mut sim);
    sim.drive_to_state(job, JobState::TransientError);
    let (context, code, _) = error_of(&sim, job);
    assert_eq!(context, ErrorContext::ServerCertificateCallback);
    assert_eq!(code, rejected);
    assert!(sim.requests.is_empty(), "no request byte before an accept");
    // The retry asks again (rejections are not cached) and this time the app accepts.
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(sim.validations.len(), 2);
}

#[test]
fn the_callback_can_only_be_set_while_the_job_is_not_active() {
    let mut sim = Sim::new(11);
    let job = validated_job(&mut sim);
    let err = sim
        .command(|e| e.job_mut(job)?.set_server_certificate_validation(false))
        .unwrap_err();
    assert_eq!(err.code(), codes::BG_E_READ_ONLY_WHEN_JOB_ACTIVE);
    assert_eq!(
        sim.engine.job(job).unwrap().certificate_validation(),
        (true, true)
    );
}

#[test]
fn registering_again_clears_the_cache() {
    let mut sim = Sim::new(12);
    let job = validated_job(&mut sim);
    sim.drive_to_state(job, JobState::Transferred);
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.suspend()?;
        j.add_file("https://files.test/a", Path::new("/dl/c"))?;
        j.set_server_certificate_validation(true)?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(sim.validations.len(), 2, "the new registration asked again");
}

#[test]
fn plain_http_never_asks_the_callback() {
    let mut sim = Sim::new(13);
    sim.serve(HOST, 80, "/f", Resource::new(body(10, 1), "v"));
    let job = sim.create_job("plain");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/f"))?;
        j.set_server_certificate_validation(true)?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    assert!(sim.validations.is_empty());
}
