//! The authentication gate: raw requests over TCP, and the core's Digest client against the
//! server's own verifier.

use backhaul_core::auth::{parse_challenges, Challenge, DigestState, Secret, Update};
use proptest::prelude::*;

use super::super::auth::Gate;
use super::super::wire::Request;
use super::*;

const ALADDIN: &str = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==";

fn protected(spec: AuthSpec) -> (TestServer, FileSpec) {
    let file = file_of(1000, 40);
    let server = TestServer::start(vec![Route {
        path: "/f".into(),
        behavior: spec.protect(Behavior::File(file.clone())),
    }]);
    (server, file)
}

fn challenge_of(response: &RawResponse, header: &str) -> Challenge {
    let value = response.header(header).expect("a challenge header");
    parse_challenges(value)
        .expect("the challenge parses")
        .remove(0)
}

fn body_text(response: &RawResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// Gets `/f` with a Digest answer made by the core's client from `state`.
fn digest_get(
    client: &mut RawClient<TcpStream>,
    state: &mut DigestState,
    password: &str,
    cnonce: &str,
) -> RawResponse {
    let value = state.authorization("GET", "/f", "Mufasa", &Secret::from(password), cnonce);
    client.get("/f", &[("Authorization", value.expose())])
}

#[test]
fn basic_gate_challenges_refuses_wrong_and_serves_right_credentials() {
    let (server, file) = protected(AuthSpec::basic("Aladdin", "open sesame"));
    let mut client = RawClient::connect(&server);
    let none = client.get("/f", &[]);
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("WWW-Authenticate"),
        Some(r#"Basic realm="backhaul-test", charset="UTF-8""#)
    );
    assert!(body_text(&none).contains("no Authorization header"));
    let wrong = client.get(
        "/f",
        &[("Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZR==")],
    );
    assert_eq!(wrong.status, 401);
    assert!(body_text(&wrong).contains("wrong user or password"));
    let right = client.get("/f", &[("Authorization", ALADDIN)]);
    assert_eq!(right.status, 200);
    assert_eq!(right.body, file.body.to_vec());
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 200]);
}

#[test]
fn digest_gate_accepts_the_core_client_for_every_algorithm_with_rising_nc() {
    for algorithm in ServerDigestAlgorithm::ALL {
        let (server, file) = protected(AuthSpec::digest("Mufasa", "Circle of Life", algorithm));
        let mut client = RawClient::connect(&server);
        let first = client.get("/f", &[]);
        assert_eq!(first.status, 401, "{algorithm:?}");
        let challenge = challenge_of(&first, "WWW-Authenticate");
        assert_eq!(challenge.param("algorithm"), Some(algorithm.name()));
        let mut state = DigestState::from_challenge(&challenge).expect("usable challenge");
        for round in 1..=3 {
            let response = digest_get(
                &mut client,
                &mut state,
                "Circle of Life",
                &format!("cn{round}"),
            );
            assert_eq!(
                response.status,
                200,
                "{algorithm:?} round {round}: {}",
                body_text(&response)
            );
            assert_eq!(response.body, file.body.to_vec());
        }
    }
}

#[test]
fn digest_gate_refuses_a_replayed_nonce_count() {
    let (server, _) = protected(AuthSpec::digest(
        "Mufasa",
        "Circle of Life",
        ServerDigestAlgorithm::Sha256,
    ));
    let mut client = RawClient::connect(&server);
    let challenge = challenge_of(&client.get("/f", &[]), "WWW-Authenticate");
    let mut state = DigestState::from_challenge(&challenge).unwrap();
    let value = state.authorization("GET", "/f", "Mufasa", &Secret::from("Circle of Life"), "c");
    assert_eq!(
        client
            .get("/f", &[("Authorization", value.expose())])
            .status,
        200
    );
    let replay = client.get("/f", &[("Authorization", value.expose())]);
    assert_eq!(replay.status, 401);
    assert!(
        body_text(&replay).contains("does not go up"),
        "{}",
        body_text(&replay)
    );
}

#[test]
fn digest_gate_refuses_a_wrong_password_and_a_wrong_uri() {
    let (server, _) = protected(AuthSpec::digest(
        "Mufasa",
        "Circle of Life",
        ServerDigestAlgorithm::Md5,
    ));
    let mut client = RawClient::connect(&server);
    let challenge = challenge_of(&client.get("/f", &[]), "WWW-Authenticate");
    let mut state = DigestState::from_challenge(&challenge).unwrap();
    let wrong = digest_get(&mut client, &mut state, "Circle of Death", "c");
    assert_eq!(wrong.status, 401);
    assert!(
        body_text(&wrong).contains("wrong response"),
        "{}",
        body_text(&wrong)
    );
    let value = state.authorization(
        "GET",
        "/other",
        "Mufasa",
        &Secret::from("Circle of Life"),
        "c",
    );
    let misdirected = client.get("/f", &[("Authorization", value.expose())]);
    assert_eq!(misdirected.status, 401);
    assert!(
        body_text(&misdirected).contains("uri"),
        "{}",
        body_text(&misdirected)
    );
}

#[test]
fn digest_sess_gate_refuses_a_client_that_changes_its_cnonce_mid_session() {
    let (server, _) = protected(AuthSpec::digest(
        "Mufasa",
        "Circle of Life",
        ServerDigestAlgorithm::Md5Sess,
    ));
    let mut client = RawClient::connect(&server);
    let challenge = challenge_of(&client.get("/f", &[]), "WWW-Authenticate");
    let mut keeps = DigestState::from_challenge(&challenge).unwrap();
    assert_eq!(
        digest_get(&mut client, &mut keeps, "Circle of Life", "a").status,
        200
    );
    // A second client state with the same nonce and a different first cnonce: nc 2 is fresh,
    // but the session key the server computed from "a" no longer matches.
    let mut changes = DigestState::from_challenge(&challenge).unwrap();
    let _ = changes.authorization("GET", "/f", "Mufasa", &Secret::from("Circle of Life"), "b");
    let changed = digest_get(&mut client, &mut changes, "Circle of Life", "b");
    assert_eq!(changed.status, 401);
    // The core's client keeps "a", so it goes on being accepted.
    assert_eq!(
        digest_get(&mut client, &mut keeps, "Circle of Life", "z").status,
        200
    );
}

#[test]
fn digest_stale_once_rechallenges_and_the_new_nonce_is_accepted() {
    let spec =
        AuthSpec::digest("Mufasa", "Circle of Life", ServerDigestAlgorithm::Sha256).stale_once();
    let (server, file) = protected(spec);
    let mut client = RawClient::connect(&server);
    let challenge = challenge_of(&client.get("/f", &[]), "WWW-Authenticate");
    assert_eq!(challenge.param("stale"), None);
    let mut state = DigestState::from_challenge(&challenge).unwrap();
    let stale = digest_get(&mut client, &mut state, "Circle of Life", "c1");
    assert_eq!(stale.status, 401);
    let again = challenge_of(&stale, "WWW-Authenticate");
    assert_eq!(again.param("stale"), Some("true"));
    assert_ne!(again.param("nonce"), challenge.param("nonce"));
    assert_eq!(state.update(&again), Update::Stale);
    let served = digest_get(&mut client, &mut state, "Circle of Life", "c2");
    assert_eq!(served.status, 200, "{}", body_text(&served));
    assert_eq!(served.body, file.body.to_vec());
}

#[test]
fn digest_userhash_gate_requires_and_accepts_the_hashed_user_name() {
    let spec =
        AuthSpec::digest("Mufasa", "Circle of Life", ServerDigestAlgorithm::Sha256).userhash();
    let (server, _) = protected(spec);
    let mut client = RawClient::connect(&server);
    let challenge = challenge_of(&client.get("/f", &[]), "WWW-Authenticate");
    assert_eq!(challenge.param("userhash"), Some("true"));
    let mut state = DigestState::from_challenge(&challenge).unwrap();
    let response = digest_get(&mut client, &mut state, "Circle of Life", "c");
    assert_eq!(response.status, 200, "{}", body_text(&response));
    assert!(!server.requests()[1]
        .header("Authorization")
        .unwrap()
        .contains("Mufasa"));
}

#[test]
fn proxy_gate_answers_407_and_reads_proxy_authorization_on_absolute_targets() {
    let spec = AuthSpec::digest("Mufasa", "Circle of Life", ServerDigestAlgorithm::Md5).proxy();
    let (server, file) = protected(spec);
    let target = server.url("/f");
    let mut client = RawClient::connect(&server);
    let first = client.get(&target, &[]);
    assert_eq!(first.status, 407);
    assert!(first.header("WWW-Authenticate").is_none());
    let challenge = challenge_of(&first, "Proxy-Authenticate");
    let mut state = DigestState::from_challenge(&challenge).unwrap();
    let value = state.authorization(
        "GET",
        &target,
        "Mufasa",
        &Secret::from("Circle of Life"),
        "c",
    );
    let as_server = client.get(&target, &[("Authorization", value.expose())]);
    assert_eq!(
        as_server.status, 407,
        "a proxy reads Proxy-Authorization only"
    );
    let value = state.authorization(
        "GET",
        &target,
        "Mufasa",
        &Secret::from("Circle of Life"),
        "c",
    );
    let served = client.get(&target, &[("Proxy-Authorization", value.expose())]);
    assert_eq!(served.status, 200, "{}", body_text(&served));
    assert_eq!(served.body, file.body.to_vec());
}

#[test]
fn basic_proxy_gate_serves_with_proxy_authorization() {
    let (server, _) = protected(AuthSpec::basic("Aladdin", "open sesame").proxy());
    let mut client = RawClient::connect(&server);
    let target = server.url("/f");
    let first = client.get(&target, &[]);
    assert_eq!(first.status, 407);
    assert!(first
        .header("Proxy-Authenticate")
        .unwrap()
        .starts_with("Basic "));
    assert_eq!(
        client
            .get(&target, &[("Proxy-Authorization", ALADDIN)])
            .status,
        200
    );
}

#[test]
fn refused_requests_do_not_consume_script_steps() {
    let file = file_of(100, 41);
    let server = TestServer::start(vec![Route {
        path: "/s".into(),
        behavior: AuthSpec::basic("Aladdin", "open sesame").protect(Behavior::Script(vec![
            Step::status(503),
            Step::Serve(file.clone()),
        ])),
    }]);
    let mut client = RawClient::connect(&server);
    assert_eq!(client.get("/s", &[]).status, 401);
    assert_eq!(client.get("/s", &[("Authorization", ALADDIN)]).status, 503);
    assert_eq!(client.get("/s", &[("Authorization", ALADDIN)]).status, 200);
}

// --- the core's client against the verifier, without sockets ---------------------------------

fn request(target: &str, authorization: &str) -> Request {
    Request {
        method: "GET".into(),
        target: target.into(),
        version: "HTTP/1.1".into(),
        headers: vec![("Authorization".into(), authorization.into())],
    }
}

fn algorithm() -> impl Strategy<Value = ServerDigestAlgorithm> {
    proptest::sample::select(ServerDigestAlgorithm::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn digest_round_trip_client_answers_verify_on_the_server(
        user in "[ -~\u{e0}-\u{17f}]{0,12}",
        password in "\\PC{0,16}",
        realm in "[ -~\u{e0}-\u{17f}]{0,12}",
        algorithm in algorithm(),
        userhash in any::<bool>(),
        path in "/[a-z0-9/?=&%-]{0,16}",
        cnonces in proptest::collection::vec("[A-Za-z0-9+/]{4,24}", 1..4),
    ) {
        let mut spec = AuthSpec::digest(&user, &password, algorithm).realm(&realm);
        if userhash {
            spec = spec.userhash();
        }
        let gate = Gate::new(spec);
        let refusal = gate.check(&request(&path, "")).expect_err("no credentials yet");
        let challenge = parse_challenges(&refusal.headers[0].1).unwrap().remove(0);
        let mut state = DigestState::from_challenge(&challenge).unwrap();
        for cnonce in &cnonces {
            let value = state.authorization("GET", &path, &user, &Secret::from(password.as_str()), cnonce);
            let verdict = gate.check(&request(&path, value.expose()));
            prop_assert!(verdict.is_ok(), "{:?}: {}", algorithm, verdict.unwrap_err().reason);
        }
        let wrong = state.authorization("GET", &path, &user, &Secret::from(format!("{password}x")), "w");
        prop_assert!(gate.check(&request(&path, wrong.expose())).is_err());
    }
}
