//! NTLM and Negotiate in the simulation: the three-leg exchange on one keep-alive connection
//! against a real (sspi) acceptor, the 401 bodies read to their end, rejection, the pool key
//! that keeps an authenticated connection to its job (implicit credentials: sim_kerberos.rs).

use std::path::Path;

use backhaul_core::auth::{AuthScheme, AuthTarget, Credentials, Secret};
use backhaul_core::{HResult, JobId, JobState};
use backhaul_tests::sim::{Resource, Sim};

const BG_E_HTTP_ERROR_401: HResult = HResult(0x8019_0191);

fn creds(scheme: AuthScheme, user: &str, password: &str) -> Credentials {
    Credentials::new(
        AuthTarget::Server,
        scheme,
        Some(user.into()),
        Some(Secret::from(password)),
    )
    .expect("valid credentials")
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// A job downloading `paths` from `http://intranet.test` with `credentials`, resumed.
fn job_with(sim: &mut Sim, paths: &[&str], credentials: Option<Credentials>) -> JobId {
    let job = sim.create_job("ntlm");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        for path in paths {
            let local = format!("/dl{path}");
            j.add_file(&format!("http://intranet.test{path}"), Path::new(&local))?;
        }
        if let Some(c) = credentials {
            j.set_credentials(c)?;
        }
        j.resume()
    })
    .expect("job starts");
    job
}

fn protect(sim: &mut Sim, path: &str, size: usize) {
    sim.serve("intranet.test", 80, path, Resource::new(body(size), "v1"));
    sim.ntlm("intranet.test", 80, path, ("TESTDOM", "gina"), "ntlmpw");
}

/// Completes the job and checks `path`'s content (without printing megabytes on failure).
fn assert_delivered(sim: &mut Sim, job: JobId, path: &str, expected: &[u8]) {
    sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    let got = sim.file(path).expect("the file exists");
    assert!(
        got == expected,
        "{path}: {} bytes, not the {} expected",
        got.len(),
        expected.len()
    );
}

fn error_of(sim: &Sim, job: JobId) -> (HResult, String) {
    let view = sim.engine.job(job).unwrap();
    let e = view.error().expect("an error is recorded");
    (e.code, e.description.clone())
}

#[test]
fn ntlm_runs_its_three_legs_on_one_connection_and_the_file_arrives() {
    let mut sim = Sim::new(7);
    protect(&mut sim, "/a", 50_000);
    let job = job_with(
        &mut sim,
        &["/a"],
        Some(creds(AuthScheme::Ntlm, "TESTDOM\\gina", "ntlmpw")),
    );
    sim.drive_to_state(job, JobState::Transferred);
    assert_delivered(&mut sim, job, "/dl/a", &body(50_000));
    let r = &sim.requests;
    assert_eq!(r.len(), 3, "{r:#?}");
    assert_eq!(r[0].header("authorization"), None);
    let type1 = r[1].header("authorization").expect("the first token");
    let type3 = r[2].header("authorization").expect("the answer");
    assert!(type1.starts_with("NTLM ") && type3.starts_with("NTLM "));
    assert_ne!(type1, type3);
    assert_eq!(
        r[1].conn, r[2].conn,
        "the answer rides the challenged connection"
    );
    let peer = sim.ntlm_peer("intranet.test", 80).unwrap();
    assert_eq!(peer.authenticated(), &[r[2].conn]);
}

#[test]
fn ntlm_wrong_password_ends_in_error_401_without_a_loop() {
    let mut sim = Sim::new(8);
    protect(&mut sim, "/a", 1000);
    let job = job_with(
        &mut sim,
        &["/a"],
        Some(creds(AuthScheme::Ntlm, "TESTDOM\\gina", "wrong")),
    );
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(why.contains("refused the job's NTLM credentials"), "{why}");
    assert!(!why.contains("wrong"), "no secret in the error: {why}");
    assert_eq!(sim.requests.len(), 3, "one exchange, then the refusal");
}

#[test]
fn an_authenticated_connection_carries_the_jobs_next_file_without_a_header() {
    let mut sim = Sim::new(9);
    protect(&mut sim, "/a", 3000);
    protect(&mut sim, "/b", 4000);
    let job = job_with(
        &mut sim,
        &["/a", "/b"],
        Some(creds(AuthScheme::Ntlm, "TESTDOM\\gina", "ntlmpw")),
    );
    sim.drive_to_state(job, JobState::Transferred);
    assert_delivered(&mut sim, job, "/dl/b", &body(4000));
    let last = sim.requests.last().unwrap();
    assert_eq!(last.path, "/b");
    assert_eq!(
        last.header("authorization"),
        None,
        "the connection is logged in"
    );
    assert_eq!(
        last.conn, sim.requests[2].conn,
        "the authenticated connection again"
    );
}

#[test]
fn another_job_never_reuses_a_connection_logged_in_by_the_first() {
    let mut sim = Sim::new(10);
    protect(&mut sim, "/a", 3000);
    sim.serve("intranet.test", 80, "/open", Resource::new(body(100), "o"));
    let first = job_with(
        &mut sim,
        &["/a"],
        Some(creds(AuthScheme::Ntlm, "TESTDOM\\gina", "ntlmpw")),
    );
    sim.drive_to_state(first, JobState::Transferred);
    let logged_in = sim.requests[2].conn;
    // A job without credentials, then one with other NTLM credentials.
    let plain = job_with(&mut sim, &["/open"], None);
    sim.drive_to_state(plain, JobState::Transferred);
    let other = job_with(
        &mut sim,
        &["/a"],
        Some(creds(AuthScheme::Ntlm, "TESTDOM\\gina", "not-her-password")),
    );
    sim.drive_to_state(other, JobState::Error);
    for r in &sim.requests[3..] {
        assert_ne!(r.conn, logged_in, "{r:?} reused another job's login");
    }
    assert_eq!(error_of(&sim, other).0, BG_E_HTTP_ERROR_401);
}

#[test]
fn a_challenge_the_job_has_no_ntlm_credentials_for_is_error_401() {
    let mut sim = Sim::new(11);
    protect(&mut sim, "/a", 10);
    let job = job_with(
        &mut sim,
        &["/a"],
        Some(creds(AuthScheme::Basic, "gina", "ntlmpw")),
    );
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(why.contains("NTLM"), "{why}");
    assert_eq!(sim.requests.len(), 1);
}

#[test]
fn new_credentials_and_resume_finish_the_file_after_a_refusal() {
    let mut sim = Sim::new(13);
    protect(&mut sim, "/a", 2000);
    let job = job_with(
        &mut sim,
        &["/a"],
        Some(creds(AuthScheme::Ntlm, "TESTDOM\\gina", "wrong")),
    );
    sim.drive_to_state(job, JobState::Error);
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.set_credentials(creds(AuthScheme::Ntlm, "TESTDOM\\gina", "ntlmpw"))?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    assert_delivered(&mut sim, job, "/dl/a", &body(2000));
}
