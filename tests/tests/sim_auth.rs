//! Server authentication in the simulation: Basic and Digest answers, rejections, the origin
//! rule, and BITS' SetCredentials rules.

use std::path::Path;

use backhaul_core::auth::{AuthScheme, AuthTarget, Credentials, RemoveOutcome, Secret};
use backhaul_core::{codes, Caller, HResult, JobId, JobState, Owner};
use backhaul_tests::sim::{Reply, Resource, Sim};

const BG_E_HTTP_ERROR_401: HResult = HResult(0x8019_0191);
/// `Basic base64("alice:wonder land")`.
const ALICE_BASIC: &str = "Basic YWxpY2U6d29uZGVyIGxhbmQ=";

fn challenge(value: &str) -> Reply {
    Reply::Status(401, vec![("WWW-Authenticate".into(), value.into())])
}

fn creds(scheme: AuthScheme, user: &str, password: &str) -> Credentials {
    Credentials::new(
        AuthTarget::Server,
        scheme,
        Some(user.into()),
        Some(Secret::from(password)),
    )
    .expect("valid credentials")
}

/// A job for `http://files.test/f` with `credentials`, resumed (retry delay 5 s).
fn job_with(sim: &mut Sim, credentials: Option<Credentials>) -> JobId {
    let job = sim.create_job("auth");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/f"))?;
        j.set_minimum_retry_delay(5)?;
        if let Some(c) = credentials {
            j.set_credentials(c)?;
        }
        j.resume()
    })
    .expect("job starts");
    job
}

fn error_of(sim: &Sim, job: JobId) -> (HResult, String) {
    let view = sim.engine.job(job).unwrap();
    let e = view.error().expect("an error is recorded");
    (e.code, e.description.clone())
}

fn body() -> Vec<u8> {
    (0..20_000).map(|i| (i % 253) as u8).collect()
}

#[test]
fn a_basic_challenge_is_answered_and_later_requests_carry_it_at_once() {
    let mut sim = Sim::new(1);
    sim.serve("files.test", 80, "/f", Resource::new(body(), "v"));
    sim.script(
        "files.test",
        80,
        "/f",
        vec![
            challenge("Basic realm=\"files\""),
            Reply::Truncate(1000),
            Reply::Serve,
        ],
    );
    let job = job_with(
        &mut sim,
        Some(creds(AuthScheme::Basic, "alice", "wonder land")),
    );
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(sim.requests[0].header("authorization"), None);
    for r in &sim.requests[1..] {
        assert_eq!(r.header("authorization"), Some(ALICE_BASIC), "{r:?}");
    }
    assert_eq!(
        sim.requests.len(),
        3,
        "the resume authenticated without a new challenge"
    );
    assert!(sim.requests[2].header("range").is_some());
}

#[test]
fn no_credentials_end_in_error_401_naming_the_schemes() {
    let mut sim = Sim::new(2);
    sim.script(
        "files.test",
        80,
        "/f",
        vec![challenge("Basic realm=\"x\", Bearer")],
    );
    let job = job_with(&mut sim, None);
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(why.contains("Basic") && why.contains("Bearer"), "{why}");
}

#[test]
fn rejected_credentials_fail_then_new_ones_and_resume_continue_from_where_it_was() {
    let mut sim = Sim::new(3);
    sim.serve("files.test", 80, "/f", Resource::new(body(), "v"));
    let basic = challenge("Basic realm=\"files\"");
    sim.script(
        "files.test",
        80,
        "/f",
        vec![Reply::Truncate(4000), basic.clone(), basic, Reply::Serve],
    );
    let job = job_with(&mut sim, Some(creds(AuthScheme::Basic, "alice", "wrong")));
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(why.contains("refused"), "{why}");
    let seen = sim.requests.len();
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.set_credentials(creds(AuthScheme::Basic, "alice", "wonder land"))?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    let resumed = &sim.requests[seen];
    assert_eq!(resumed.header("range"), Some("bytes=4000-"), "{resumed:?}");
    sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    assert_eq!(sim.file("/dl/f").unwrap(), &body()[..]);
}

#[test]
fn digest_is_answered_and_a_stale_nonce_is_renewed_without_failing() {
    let mut sim = Sim::new(4);
    sim.serve("files.test", 80, "/f", Resource::new(body(), "v"));
    sim.script(
        "files.test",
        80,
        "/f",
        vec![
            challenge(r#"Digest realm="r", qop="auth", algorithm=SHA-256, nonce="n1", opaque="o""#),
            challenge(r#"Digest realm="r", qop="auth", algorithm=SHA-256, nonce="n2", stale=true"#),
            Reply::Serve,
        ],
    );
    let job = job_with(&mut sim, Some(creds(AuthScheme::Digest, "alice", "pw")));
    sim.drive_to_state(job, JobState::Transferred);
    let answers: Vec<&str> = sim.requests[1..]
        .iter()
        .map(|r| r.header("authorization").unwrap())
        .collect();
    assert!(answers[0].starts_with("Digest ") && answers[0].contains("nonce=\"n1\""));
    assert!(answers[0].contains("nc=00000001") && answers[0].contains("algorithm=SHA-256"));
    assert!(answers[1].contains("nonce=\"n2\"") && answers[1].contains("nc=00000001"));
}

#[test]
fn credentials_never_follow_a_redirect_to_another_origin() {
    let mut sim = Sim::new(5);
    sim.script(
        "files.test",
        80,
        "/f",
        vec![
            challenge("Basic realm=\"files\""),
            Reply::Status(
                302,
                vec![("Location".into(), "http://files.test:8080/f".into())],
            ),
        ],
    );
    sim.script(
        "files.test",
        8080,
        "/f",
        vec![challenge("Basic realm=\"files\"")],
    );
    let job = job_with(
        &mut sim,
        Some(creds(AuthScheme::Basic, "alice", "wonder land")),
    );
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(why.contains("another origin"), "{why}");
    assert_eq!(sim.requests[1].header("authorization"), Some(ALICE_BASIC));
    assert_eq!(
        sim.requests[2].header("authorization"),
        None,
        "port 8080 is another origin"
    );
}

#[test]
fn a_passport_challenge_ends_in_401_even_with_passport_credentials() {
    let mut sim = Sim::new(6);
    sim.script(
        "files.test",
        80,
        "/f",
        vec![challenge("Passport1.4 da-status=srealm")],
    );
    let job = job_with(&mut sim, Some(creds(AuthScheme::Passport, "alice", "pw")));
    sim.drive_to_state(job, JobState::Error);
    assert_eq!(error_of(&sim, job).0, BG_E_HTTP_ERROR_401);
}

#[test]
fn credentials_are_the_owners_and_go_with_a_change_of_owner() {
    let mut sim = Sim::new(7);
    let job = sim.create_job("owned");
    let root = Caller {
        owner: Owner("uid:0".into()),
        admin: true,
    };
    let err = sim
        .command(|e| {
            e.job_mut_as(job, &root)?
                .set_credentials(creds(AuthScheme::Basic, "a", "b"))
        })
        .unwrap_err();
    assert_eq!(
        err.code(),
        codes::E_ACCESSDENIED,
        "an administrator is not the owner"
    );
    sim.command(|e| {
        e.job_mut(job)?
            .set_credentials(creds(AuthScheme::Basic, "a", "b"))
    })
    .unwrap();
    let removed = sim.command(|e| {
        let mut j = e.job_mut(job)?;
        let first = j.remove_credentials(AuthTarget::Server, AuthScheme::Basic)?;
        let second = j.remove_credentials(AuthTarget::Server, AuthScheme::Basic)?;
        Ok::<_, backhaul_core::BitsError>((first, second))
    });
    assert_eq!(
        removed,
        Ok((RemoveOutcome::Removed, RemoveOutcome::NothingSet))
    );

    // Taken over, the job has no credentials left: the next challenge fails.
    sim.command(|e| {
        e.job_mut(job)?
            .set_credentials(creds(AuthScheme::Basic, "a", "b"))
    })
    .unwrap();
    sim.command(|e| {
        e.job_mut_as(job, &root)?
            .take_ownership(Owner("uid:0".into()))
    })
    .unwrap();
    sim.script("files.test", 80, "/f", vec![challenge("Basic realm=\"x\"")]);
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/f"))?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Error);
    assert!(sim
        .requests
        .iter()
        .all(|r| r.header("authorization").is_none()));
}

#[test]
fn debug_output_never_shows_a_password() {
    let mut sim = Sim::new(8);
    sim.serve("files.test", 80, "/f", Resource::new(body(), "v"));
    sim.script(
        "files.test",
        80,
        "/f",
        vec![
            challenge(r#"Digest realm="r", qop="auth", nonce="n1""#),
            Reply::Serve,
        ],
    );
    let secret = creds(AuthScheme::Digest, "alice", "hunter2-secret");
    let job = job_with(&mut sim, Some(secret));
    sim.drive_to_state(job, JobState::Transferred);
    let shown = format!("{:?} {:?}", sim.engine, sim.engine.job_record(job));
    assert!(!shown.contains("hunter2-secret"), "{shown}");
}
