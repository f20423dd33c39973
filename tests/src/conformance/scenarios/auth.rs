//! Server authentication against the loopback test server's checking gate (it verifies Basic
//! and Digest answers itself), on real sockets.

use backhaul_core::auth::{AuthScheme, AuthTarget, Credentials, Secret};
use backhaul_core::{HResult, JobState};

use super::{Scenario, KIB, SMALL_TRANSFER};
use crate::conformance::{assert_state, info, wait_settled, Driver};
use crate::data::deterministic_bytes;
use crate::server::{AuthSpec, Behavior, FileSpec, Route, ServerDigestAlgorithm, Step, TestServer};

const BG_E_HTTP_ERROR_401: HResult = HResult(0x8019_0191);

fn credentials(scheme: AuthScheme, user: &str, password: &str) -> Credentials {
    let password = Some(Secret::from(password));
    Credentials::new(AuthTarget::Server, scheme, Some(user.into()), password).unwrap()
}

fn protected(spec: AuthSpec, body: &[u8]) -> Route {
    Route {
        path: "/p.bin".into(),
        behavior: spec.protect(Behavior::File(FileSpec::new(body.to_vec().into()))),
    }
}

/// Basic: no credentials → ERROR 401; wrong ones → ERROR 401; right ones set on the same job
/// and resumed → the file.
pub fn basic_auth_without_wrong_and_right_credentials<D: Driver>() {
    let body = deterministic_bytes(64 * KIB, 31).to_vec();
    let server = TestServer::start(vec![protected(AuthSpec::basic("alice", "s3cret"), &body)]);
    let s = Scenario::<D>::start(
        "basic_auth_without_wrong_and_right_credentials",
        &server,
        &["p.bin"],
    );
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Error);
    assert_eq!(
        info(&s.driver, s.job).error.unwrap().code,
        BG_E_HTTP_ERROR_401
    );

    let wrong = credentials(AuthScheme::Basic, "alice", "guess");
    s.driver.set_credentials(s.job, wrong).unwrap();
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Error);
    let error = info(&s.driver, s.job).error.unwrap();
    assert_eq!(error.code, BG_E_HTTP_ERROR_401, "{error}");

    let right = credentials(AuthScheme::Basic, "alice", "s3cret");
    s.driver.set_credentials(s.job, right).unwrap();
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Transferred);
    s.driver.complete(s.job).unwrap();
    assert_eq!(std::fs::read(&s.locals[0]).unwrap(), body);
    s.shutdown();
}

/// Digest with every algorithm the gate knows (MD5, MD5-sess, SHA-256, SHA-256-sess,
/// SHA-512-256), userhash, and a stale nonce renewed mid-way.
pub fn digest_auth_every_algorithm_with_userhash_and_a_stale_nonce<D: Driver>() {
    let body = deterministic_bytes(16 * KIB, 32).to_vec();
    for (i, algorithm) in ServerDigestAlgorithm::ALL.into_iter().enumerate() {
        let mut spec = AuthSpec::digest("bob", "pässwörd", algorithm).realm("files@test");
        if i % 2 == 0 {
            spec = spec.userhash();
        }
        if i % 2 == 1 {
            spec = spec.stale_once();
        }
        let server = TestServer::start(vec![protected(spec, &body)]);
        let s = Scenario::<D>::start(
            "digest_auth_every_algorithm_with_userhash_and_a_stale_nonce",
            &server,
            &["p.bin"],
        );
        let creds = credentials(AuthScheme::Digest, "bob", "pässwörd");
        s.driver.set_credentials(s.job, creds).unwrap();
        s.resume();
        let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
        eprintln!("{}: {}", algorithm.name(), server.request_log());
        assert_state(&s.driver, s.job, state, JobState::Transferred);
        s.driver.complete(s.job).unwrap();
        assert_eq!(
            std::fs::read(&s.locals[0]).unwrap(),
            body,
            "{}",
            algorithm.name()
        );
        s.shutdown();
    }
}

/// From the authenticated origin, a redirect to another port (a second server): the target
/// never sees Authorization, Cookie or Proxy-Authorization.
pub fn credentials_never_reach_a_redirect_target<D: Driver>() {
    let body = deterministic_bytes(8 * KIB, 33).to_vec();
    let target = TestServer::start(vec![Route::file(
        "/t.bin",
        FileSpec::new(body.clone().into()),
    )]);
    let location = target.url("/t.bin");
    let redirect = Behavior::Script(vec![Step::status_with_headers(
        302,
        &[("Location", &location)],
    )]);
    let origin = TestServer::start(vec![Route {
        path: "/p.bin".into(),
        behavior: AuthSpec::basic("alice", "s3cret").protect(redirect),
    }]);
    let s = Scenario::<D>::start(
        "credentials_never_reach_a_redirect_target",
        &origin,
        &["p.bin"],
    );
    let creds = credentials(AuthScheme::Basic, "alice", "s3cret");
    s.driver.set_credentials(s.job, creds).unwrap();
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    assert_state(&s.driver, s.job, state, JobState::Transferred);
    let answered = origin.requests().iter().any(|r| {
        r.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    });
    assert!(
        answered,
        "the origin got the credentials: {}",
        origin.request_log()
    );
    for r in target.requests() {
        let leaked = r.headers.iter().find(|(n, _)| {
            ["authorization", "cookie", "proxy-authorization"]
                .iter()
                .any(|h| n.eq_ignore_ascii_case(h))
        });
        assert!(leaked.is_none(), "the redirect target saw {leaked:?}");
    }
    s.driver.complete(s.job).unwrap();
    assert_eq!(std::fs::read(&s.locals[0]).unwrap(), body);
    s.shutdown();
}
