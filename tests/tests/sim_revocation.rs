//! `BG_SSL_ENABLE_CRL_CHECK` in the simulation: CRLs fetched from the certificate's
//! distribution point before any request byte, shared and cached, failing closed, and the
//! mid-file restart when the flag is turned on.

use std::path::Path;
use std::time::Duration;

use backhaul_core::job::SecurityFlags;
use backhaul_core::{codes, HResult, JobId, JobPriority, JobState};
use backhaul_tests::sim::{sim_crl, sim_leaf_with_cdp, Resource, Sim};

const HOST: &str = "secure.test";
const CDP: &str = "http://crl.test/ca.crl";
const SERIAL: u64 = 0x5151;

fn body(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// A world where `secure.test` presents a leaf naming `CDP`, serves `/f` (and `/g`), and the
/// CDP serves a CRL that revokes `revoked`.
fn world(seed: u64, revoked: &[u64]) -> Sim {
    let mut sim = Sim::new(seed);
    sim.present_chain(HOST, vec![sim_leaf_with_cdp(HOST, SERIAL, CDP)]);
    sim.serve(HOST, 443, "/f", Resource::new(body(50_000, 1), "f1"));
    sim.serve(HOST, 443, "/g", Resource::new(body(300_000, 2), "g1"));
    sim.publish_crl(CDP, Some(sim_crl(revoked, (2026, 2, 1))));
    sim
}

/// A job fetching `https://secure.test/<name>` into `/dl/<local>` with `flags`, resumed.
fn start(sim: &mut Sim, files: &[(&str, &str)], flags: u32) -> JobId {
    let job = sim.create_job("crl");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        for (remote, local) in files {
            j.add_file(&format!("https://{HOST}/{remote}"), Path::new(local))?;
        }
        j.set_security_flags(flags)?;
        j.resume()
    })
    .expect("job starts");
    job
}

fn error_code(sim: &Sim, job: JobId) -> HResult {
    sim.engine.job(job).unwrap().error().expect("an error").code
}

#[test]
fn crl_check_fetches_the_distribution_point_then_downloads() {
    let mut sim = world(1, &[]);
    let job = start(&mut sim, &[("f", "/dl/f")], SecurityFlags::ENABLE_CRL_CHECK);
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(sim.crl_fetches, [CDP]);
    assert_eq!(sim.requests.len(), 1);
}

#[test]
fn without_the_flag_no_crl_is_fetched_even_for_a_revoked_certificate() {
    let mut sim = world(2, &[SERIAL]);
    let job = start(&mut sim, &[("f", "/dl/f")], 0);
    sim.drive_to_state(job, JobState::Transferred);
    assert!(sim.crl_fetches.is_empty());
}

#[test]
fn revoked_certificate_fails_the_job_before_any_request() {
    let mut sim = world(3, &[SERIAL]);
    let job = start(&mut sim, &[("f", "/dl/f")], SecurityFlags::ENABLE_CRL_CHECK);
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(
        error_code(&sim, job),
        codes::ERROR_WINHTTP_SECURE_CERT_REVOKED
    );
    assert_eq!(error_code(&sim, job), HResult(0x8007_2F8A));
    assert!(
        sim.requests.is_empty(),
        "no request byte before the verdict"
    );
}

#[test]
fn unreachable_crl_fails_closed_with_rev_failed() {
    let mut sim = world(4, &[]);
    // A URL nobody serves: the fetch fails as unreachable.
    let leaf = sim_leaf_with_cdp(HOST, SERIAL, "http://nowhere.test/ca.crl");
    sim.present_chain(HOST, vec![leaf]);
    let job = start(&mut sim, &[("f", "/dl/f")], SecurityFlags::ENABLE_CRL_CHECK);
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(error_code(&sim, job), HResult(0x8007_2F19));
    let error = sim.engine.job(job).unwrap().error().unwrap().clone();
    assert!(
        error.description.contains("nowhere.test"),
        "the error says which CRL failed: {}",
        error.description
    );
    assert!(sim.requests.is_empty());
}

#[test]
fn a_crl_that_is_not_current_fails_closed() {
    let mut sim = world(5, &[]);
    sim.publish_crl(CDP, Some(sim_crl(&[], (2025, 12, 15))));
    let job = start(&mut sim, &[("f", "/dl/f")], SecurityFlags::ENABLE_CRL_CHECK);
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(
        error_code(&sim, job),
        codes::ERROR_WINHTTP_SECURE_CERT_REV_FAILED
    );
}

#[test]
fn jobs_waiting_for_the_same_crl_share_one_fetch() {
    let mut sim = world(6, &[]);
    let a = start(&mut sim, &[("f", "/dl/a")], SecurityFlags::ENABLE_CRL_CHECK);
    let b = start(&mut sim, &[("g", "/dl/b")], SecurityFlags::ENABLE_CRL_CHECK);
    // Foreground: both connect at once, so the second finds the first one's fetch in flight.
    for job in [a, b] {
        sim.command(|e| e.job_mut(job)?.set_priority(JobPriority::Foreground))
            .expect("priority");
    }
    sim.drive_until(100_000, |s| {
        s.crl_fetches.len() == 1 && s.state(b) == JobState::Connecting
    });
    assert_eq!(sim.state(a), JobState::Connecting);
    sim.drive_to_state(a, JobState::Transferred);
    sim.drive_to_state(b, JobState::Transferred);
    assert_eq!(sim.crl_fetches, [CDP], "one fetch for both connections");
}

#[test]
fn a_cached_crl_is_used_until_its_next_update_then_fetched_again() {
    let mut sim = world(7, &[]);
    sim.publish_crl(CDP, Some(sim_crl(&[], (2026, 1, 3))));
    let first = start(&mut sim, &[("f", "/dl/1")], SecurityFlags::ENABLE_CRL_CHECK);
    sim.drive_to_state(first, JobState::Transferred);
    let second = start(&mut sim, &[("f", "/dl/2")], SecurityFlags::ENABLE_CRL_CHECK);
    sim.drive_to_state(second, JobState::Transferred);
    assert_eq!(sim.crl_fetches.len(), 1, "the cached CRL is current");
    sim.advance(Duration::from_secs(3 * 86_400));
    sim.publish_crl(CDP, Some(sim_crl(&[], (2026, 2, 1))));
    let third = start(&mut sim, &[("f", "/dl/3")], SecurityFlags::ENABLE_CRL_CHECK);
    sim.drive_to_state(third, JobState::Transferred);
    assert_eq!(
        sim.crl_fetches.len(),
        2,
        "past nextUpdate the CRL is fetched again"
    );
}

#[test]
fn a_crl_fetch_in_flight_holds_up_no_other_job_and_the_connect_timeout_still_runs() {
    let mut sim = world(8, &[]);
    sim.publish_crl(CDP, None); // never answers
    sim.serve("plain.test", 80, "/p", Resource::new(body(10_000, 3), "p1"));
    // Foreground: both run at once (background jobs would take turns on one slot).
    let waiting = start(&mut sim, &[("f", "/dl/f")], SecurityFlags::ENABLE_CRL_CHECK);
    sim.command(|e| e.job_mut(waiting)?.set_priority(JobPriority::Foreground))
        .expect("priority");
    let other = sim.create_job("other");
    sim.command(|e| {
        let mut j = e.job_mut(other)?;
        j.add_file("http://plain.test/p", Path::new("/dl/p"))?;
        j.set_priority(JobPriority::Foreground)?;
        j.resume()
    })
    .expect("other job starts");
    sim.drive_to_state(other, JobState::Transferred);
    assert_eq!(sim.state(waiting), JobState::Connecting);
    sim.drive_to_state(waiting, JobState::TransientError);
    assert_eq!(error_code(&sim, waiting), codes::ERROR_WINHTTP_TIMEOUT);
    assert!(sim.requests.iter().all(|r| r.host != HOST));
}

#[test]
fn turning_crl_check_on_mid_file_restarts_that_file_and_keeps_finished_ones() {
    let mut sim = world(9, &[]);
    let job = start(&mut sim, &[("f", "/dl/f"), ("g", "/dl/g")], 0);
    // Run until the second file is part way.
    sim.drive_until(100_000, |s| {
        let files = s.engine.job(job).unwrap().files();
        files[0].progress.completed && files[1].progress.bytes_transferred > 0
    });
    let files = sim.engine.job(job).unwrap().files();
    assert!(files[1].progress.bytes_transferred < 300_000, "mid-file");
    let requests_before = sim.requests.len();
    sim.command(|e| {
        e.job_mut(job)?
            .set_security_flags(SecurityFlags::ENABLE_CRL_CHECK)
    })
    .expect("flag set");
    let files = sim.engine.job(job).unwrap().files();
    assert_eq!(
        files[1].progress.bytes_transferred, 0,
        "the current file restarts"
    );
    assert!(files[0].progress.completed, "finished files are untouched");
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(sim.crl_fetches, [CDP]);
    let again = &sim.requests[requests_before..];
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].path, "/g");
    assert_eq!(again[0].header("range"), None, "from byte 0");
    sim.command(|e| e.job_mut(job)?.complete())
        .expect("complete");
    assert_eq!(sim.file("/dl/g").expect("g"), body(300_000, 2));
    assert_eq!(sim.file("/dl/f").expect("f"), body(50_000, 1));
}

#[test]
fn turning_crl_check_on_mid_file_against_a_revoked_certificate_fails_the_job() {
    let mut sim = world(10, &[SERIAL]);
    let job = start(&mut sim, &[("g", "/dl/g")], 0);
    sim.drive_until(100_000, |s| {
        s.engine.job(job).unwrap().files()[0]
            .progress
            .bytes_transferred
            > 0
    });
    sim.command(|e| {
        e.job_mut(job)?
            .set_security_flags(SecurityFlags::ENABLE_CRL_CHECK)
    })
    .expect("flag set");
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(
        error_code(&sim, job),
        codes::ERROR_WINHTTP_SECURE_CERT_REVOKED
    );
}

#[test]
fn a_job_checking_revocation_takes_no_idle_connection() {
    // Two files from the same origin: without the flag the second reuses the connection; with
    // it, each file is checked on a connection of its own.
    let mut plain = world(11, &[]);
    let job = start(&mut plain, &[("f", "/dl/f"), ("g", "/dl/g")], 0);
    plain.drive_to_state(job, JobState::Transferred);
    assert_eq!(plain.connects, 1);
    let mut checked = world(11, &[]);
    let job = start(
        &mut checked,
        &[("f", "/dl/f"), ("g", "/dl/g")],
        SecurityFlags::ENABLE_CRL_CHECK,
    );
    checked.drive_to_state(job, JobState::Transferred);
    assert_eq!(checked.connects, 2);
    assert_eq!(
        checked.crl_fetches.len(),
        1,
        "the second check uses the cached CRL"
    );
}
