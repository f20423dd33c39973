//! Server authentication against the loopback test server's checking gate (it verifies Basic
//! and Digest answers itself), on real sockets.

use std::net::TcpListener;

use backhaul_core::auth::{AuthScheme, AuthTarget, Credentials, Secret};
use backhaul_core::{HResult, JobState};

use super::{Scenario, KIB, SMALL_TRANSFER};
use crate::conformance::{assert_state, info, wait_settled, Driver};
use crate::data::deterministic_bytes;
use crate::pki::TestPki;
use crate::server::{
    AuthSpec, Behavior, FileSpec, RecordedRequest, Route, ServerDigestAlgorithm, Step, TestServer,
};

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

/// Where [`credentials_never_reach_a_redirect_target`] sends the job from its origin
/// (`http://127.0.0.1:P`): each differs from it in one part of the origin only, so each part is
/// shown to drop the credentials on its own (scheme also changes the port: two servers cannot
/// share one address).
#[derive(Clone, Copy, Debug)]
enum RedirectTarget {
    /// `http://127.0.0.1:Q`.
    AnotherPort,
    /// `http://127.0.0.2:P`: the same port on another loopback address.
    AnotherHost,
    /// `https://localhost:Q`.
    Https,
}

/// The custom headers the job sends to its origin: a cookie and a token, both origin-bound.
const ORIGIN_HEADERS: &str = "Cookie: session=origin-only\r\nX-Api-Token: t0k3n";

/// From the authenticated origin, a redirect to another port, another host (127.0.0.2) and
/// another scheme (https): the origin gets Authorization and the custom headers (Cookie among
/// them), the target never sees Authorization, Cookie, Proxy-Authorization or a custom header,
/// and the file still arrives.
pub fn credentials_never_reach_a_redirect_target<D: Driver>() {
    for target in [
        RedirectTarget::AnotherPort,
        RedirectTarget::AnotherHost,
        RedirectTarget::Https,
    ] {
        credentials_never_reach::<D>(target);
    }
}

/// One origin, one redirect target, one job: see [`credentials_never_reach_a_redirect_target`].
fn credentials_never_reach<D: Driver>(target_kind: RedirectTarget) {
    let body = deterministic_bytes(8 * KIB, 33).to_vec();
    let routes = || vec![Route::file("/t.bin", FileSpec::new(body.clone().into()))];
    let pki = TestPki::new();
    let origin_listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the origin");
    let port = origin_listener.local_addr().expect("origin address").port();
    let (target, location) = match target_kind {
        RedirectTarget::AnotherPort => {
            let target = TestServer::start(routes());
            let location = target.url("/t.bin");
            (target, location)
        }
        RedirectTarget::AnotherHost => {
            let listener = TcpListener::bind(("127.0.0.2", port)).expect("bind 127.0.0.2");
            let target = TestServer::start_on(listener, routes());
            (target, format!("http://127.0.0.2:{port}/t.bin"))
        }
        RedirectTarget::Https => {
            let target = TestServer::start_tls(routes(), &pki);
            let location = target.url("/t.bin");
            (target, location)
        }
    };
    let redirect = Behavior::Script(vec![Step::status_with_headers(
        302,
        &[("Location", &location)],
    )]);
    let origin = TestServer::start_on(
        origin_listener,
        vec![Route {
            path: "/p.bin".into(),
            behavior: AuthSpec::basic("alice", "s3cret").protect(redirect),
        }],
    );
    let s = Scenario::<D>::start_trusting(
        "credentials_never_reach_a_redirect_target",
        &origin,
        &pki,
        &["p.bin"],
    );
    let creds = credentials(AuthScheme::Basic, "alice", "s3cret");
    s.driver.set_credentials(s.job, creds).unwrap();
    s.driver
        .set_custom_headers(s.job, Some(ORIGIN_HEADERS))
        .unwrap();
    s.resume();
    let state = wait_settled(&s.driver, s.job, SMALL_TRANSFER);
    eprintln!(
        "{target_kind:?} → {location}\norigin:\n{}target:\n{}",
        origin.request_log(),
        target.request_log()
    );
    assert_state(&s.driver, s.job, state, JobState::Transferred);
    let sent = |r: &RecordedRequest, name: &str| r.header(name).is_some();
    let origin_requests = origin.requests();
    for name in ["authorization", "cookie", "x-api-token"] {
        assert!(
            origin_requests.iter().any(|r| sent(r, name)),
            "{target_kind:?}: the origin never got {name}"
        );
    }
    let target_requests = target.requests();
    assert!(
        !target_requests.is_empty(),
        "{target_kind:?}: the redirect was not followed"
    );
    for r in &target_requests {
        for name in [
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-api-token",
        ] {
            assert!(
                !sent(r, name),
                "{target_kind:?}: the redirect target saw {name}: {:?}",
                r.headers
            );
        }
    }
    s.driver.complete(s.job).unwrap();
    assert_eq!(std::fs::read(&s.locals[0]).unwrap(), body);
    s.shutdown();
}
