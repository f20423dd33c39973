//! NTLM to an HTTP proxy in the simulation, against a password-checking (sspi) acceptor on the
//! proxy: the three legs on one connection for absolute-form requests and for the CONNECT
//! (re-sent on the same connection with each leg), the 407 bodies read to their end, the
//! proxy's tokens kept off the origin, rejection, a proxy that closes after its 407s, NTLM to
//! the origin behind it, and a tunnel logged in by one job never carrying another's requests.

use std::path::Path;

use backhaul_core::auth::{AuthScheme, AuthTarget, ConnectionContext, Credentials, Secret, Step};
use backhaul_core::proxy::{ProxySettings, ProxyUsage};
use backhaul_core::{ConnId, HResult, JobId, JobState};
use backhaul_tests::ntlm_peer::{NtlmPeer, Verdict};
use backhaul_tests::sim::{Resource, SeenRequest, Sim};

const BG_E_HTTP_ERROR_407: HResult = HResult(0x8019_0197);
const PROXY: &str = "proxy.test:3128";
const URLS: [&str; 2] = ["http://files.test/f", "https://files.test/f"];
/// How an NTLM AUTHENTICATE_MESSAGE ("Type 3") header value starts (`NTLMSSP\0`, type 3).
const TYPE3: &str = "NTLM TlRMTVNTUAAD";

fn ntlm(target: AuthTarget, user: &str, password: &str) -> Credentials {
    let password = Some(Secret::from(password));
    Credentials::new(target, AuthScheme::Ntlm, Some(user.into()), password).unwrap()
}

fn body() -> Vec<u8> {
    (0..20_000).map(|i| (i % 239) as u8).collect()
}

/// A world with `files.test` (http and https) behind `proxy.test:3128`, whose NTLM gate wants
/// `PROXYDOM\dave` / `proxy pw` and closes its first `closes` 407s.
fn world(seed: u64, closes: u32) -> Sim {
    let mut sim = Sim::new(seed);
    sim.proxy("proxy.test", 3128, None);
    sim.proxy_ntlm("proxy.test", 3128, ("PROXYDOM", "dave"), "proxy pw", closes);
    sim.serve("files.test", 80, "/f", Resource::new(body(), "v"));
    sim.serve("files.test", 443, "/f", Resource::new(body(), "v"));
    sim
}

/// A job fetching `url` to `local` through the proxy with `credentials`, resumed.
fn job_through(sim: &mut Sim, url: &str, local: &str, credentials: &[Credentials]) -> JobId {
    let job = sim.create_job("proxied");
    let settings = ProxySettings::new(ProxyUsage::Override, Some(PROXY.into()), None).unwrap();
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file(url, Path::new(local))?;
        j.set_proxy_settings(settings)?;
        for c in credentials {
            j.set_credentials(c.clone())?;
        }
        j.resume()
    })
    .expect("job starts");
    job
}

fn dave(password: &str) -> Credentials {
    ntlm(AuthTarget::Proxy, "PROXYDOM\\dave", password)
}

fn assert_delivered(sim: &mut Sim, job: JobId, local: &str) {
    sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    let got = sim.file(local).expect("the file exists");
    assert!(got == body(), "{local}: {} bytes, not the file", got.len());
}

fn error_of(sim: &Sim, job: JobId) -> (HResult, String) {
    let view = sim.engine.job(job).unwrap();
    let e = view.error().expect("an error is recorded");
    (e.code, e.description.clone())
}

/// The requests the proxy itself answered or relayed: CONNECTs, or absolute-form requests.
fn to_proxy(sim: &Sim) -> Vec<&SeenRequest> {
    let proxied = |r: &&SeenRequest| r.path == "files.test:443" || r.path.starts_with("http://");
    sim.requests.iter().filter(proxied).collect()
}

fn proxy_token(r: &SeenRequest) -> &str {
    r.header("proxy-authorization")
        .unwrap_or_else(|| panic!("no Proxy-Authorization on {r:?}"))
}

#[test]
fn right_password_runs_three_legs_on_one_connection_to_the_proxy_then_the_file_arrives() {
    for (seed, url) in (1..).zip(URLS) {
        let mut sim = world(seed, 0);
        let job = job_through(&mut sim, url, "/dl/f", &[dave("proxy pw")]);
        sim.drive_to_state(job, JobState::Transferred);
        assert_delivered(&mut sim, job, "/dl/f");
        let legs = to_proxy(&sim);
        assert_eq!(
            legs.len(),
            3,
            "{url}: bare, Type 1, Type 3: {:#?}",
            sim.requests
        );
        assert_eq!(legs[0].header("proxy-authorization"), None, "{url}");
        let (type1, type3) = (proxy_token(legs[1]), proxy_token(legs[2]));
        assert!(type1.starts_with("NTLM ") && type3.starts_with("NTLM ") && type1 != type3);
        assert_eq!(
            legs[1].conn, legs[2].conn,
            "{url}: the answer rides the challenged one"
        );
        let peer = sim.proxy_ntlm_peer("proxy.test", 3128).unwrap();
        assert_eq!(peer.authenticated(), &[legs[2].conn], "{url}");
        for r in &sim.requests {
            assert_eq!(r.header("authorization"), None, "{url}: {r:?}");
        }
    }
}

#[test]
fn through_the_tunnel_the_origin_sees_no_proxy_token_on_the_logged_in_connection() {
    let mut sim = world(3, 0);
    let job = job_through(&mut sim, URLS[1], "/dl/f", &[dave("proxy pw")]);
    sim.drive_to_state(job, JobState::Transferred);
    let inside: Vec<_> = sim.requests.iter().filter(|r| r.path == "/f").collect();
    assert_eq!(inside.len(), 1, "{:#?}", sim.requests);
    assert_eq!(
        inside[0].header("proxy-authorization"),
        None,
        "never inside the tunnel"
    );
    assert_eq!(inside[0].header("authorization"), None);
    assert_eq!(
        inside[0].conn,
        to_proxy(&sim)[2].conn,
        "the tunnel the Type 3 opened"
    );
}

#[test]
fn wrong_proxy_password_is_error_407_after_one_exchange() {
    for (seed, url) in (4..).zip(URLS) {
        let mut sim = world(seed, 0);
        let job = job_through(&mut sim, url, "/dl/f", &[dave("not the proxy pw")]);
        sim.drive_to_state(job, JobState::Error);
        let (code, why) = error_of(&sim, job);
        assert_eq!(code, BG_E_HTTP_ERROR_407, "{url}: {why}");
        assert!(
            why.contains("refused the job's NTLM credentials"),
            "{url}: {why}"
        );
        assert!(
            !why.contains("not the proxy pw"),
            "no secret in the error: {why}"
        );
        assert_eq!(
            sim.requests.len(),
            3,
            "{url}: one exchange, then the refusal"
        );
        assert!(
            !sim.requests.iter().any(|r| r.path == "/f"),
            "{url}: no tunnel opened"
        );
    }
}

#[test]
fn no_proxy_credentials_is_error_407_naming_ntlm() {
    for (seed, url) in (6..).zip(URLS) {
        let mut sim = world(seed, 0);
        let job = job_through(&mut sim, url, "/dl/f", &[]);
        sim.drive_to_state(job, JobState::Error);
        let (code, why) = error_of(&sim, job);
        assert_eq!(code, BG_E_HTTP_ERROR_407, "{url}: {why}");
        assert!(why.contains("NTLM"), "{url}: {why}");
        assert_eq!(sim.requests.len(), 1, "{url}");
    }
}

#[test]
fn a_proxy_closing_after_its_challenge_gets_the_handshake_again_on_a_new_connection() {
    // The bare 407 and the first Type 2 close their connections; the third try keeps it.
    for (seed, url) in (8..).zip(URLS) {
        let mut sim = world(seed, 2);
        let job = job_through(&mut sim, url, "/dl/f", &[dave("proxy pw")]);
        sim.drive_to_state(job, JobState::Transferred);
        assert_delivered(&mut sim, job, "/dl/f");
        let legs = to_proxy(&sim);
        assert_eq!(
            legs.len(),
            4,
            "{url}: bare, T1 (closed), T1, T3: {:#?}",
            sim.requests
        );
        assert_ne!(
            legs[1].conn, legs[2].conn,
            "{url}: started over on a new connection"
        );
        assert_eq!(legs[2].conn, legs[3].conn, "{url}");
    }
}

#[test]
fn a_proxy_closing_after_every_challenge_is_error_407_not_a_loop() {
    for (seed, url) in (10..).zip(URLS) {
        let mut sim = world(seed, u32::MAX);
        let job = job_through(&mut sim, url, "/dl/f", &[dave("proxy pw")]);
        sim.drive_to_state(job, JobState::Error);
        let (code, why) = error_of(&sim, job);
        assert_eq!(code, BG_E_HTTP_ERROR_407, "{url}: {why}");
        assert!(
            why.contains("the proxy closed every connection"),
            "{url}: {why}"
        );
        assert!(
            sim.requests.len() < 10,
            "{url}: bounded: {}",
            sim.requests.len()
        );
    }
}

#[test]
fn a_challenge_whose_body_runs_until_the_proxy_closes_is_read_then_the_handshake_restarts() {
    // Without Content-Length the 407's end is the close: that is a challenge read in full on a
    // connection that cannot carry the answer, not a connection lost while connecting.
    for (seed, url) in (16..).zip(URLS) {
        let mut sim = world(seed, 0);
        sim.proxy_ntlm_unframed("proxy.test", 3128);
        let job = job_through(&mut sim, url, "/dl/f", &[dave("proxy pw")]);
        sim.drive_to_state(job, JobState::Error);
        let (code, why) = error_of(&sim, job);
        assert_eq!(code, BG_E_HTTP_ERROR_407, "{url}: {why}");
        assert!(
            why.contains("the proxy closed every connection"),
            "{url}: {why}"
        );
        let legs = to_proxy(&sim);
        let type1s = legs
            .iter()
            .filter(|r| r.header("proxy-authorization").is_some());
        assert!(type1s.count() > 1, "{url}: started over on new connections");
    }
}

#[test]
fn ntlm_to_the_origin_behind_an_ntlm_proxy_completes_both_exchanges() {
    for (seed, url) in (12..).zip(URLS) {
        let mut sim = world(seed, 0);
        let port = if url.starts_with("https") { 443 } else { 80 };
        sim.ntlm("files.test", port, "/f", ("TESTDOM", "gina"), "origin pw");
        let gina = ntlm(AuthTarget::Server, "TESTDOM\\gina", "origin pw");
        let job = job_through(&mut sim, url, "/dl/f", &[dave("proxy pw"), gina]);
        sim.drive_to_state(job, JobState::Transferred);
        assert_delivered(&mut sim, job, "/dl/f");
        let origin = sim.ntlm_peer("files.test", port).unwrap();
        assert_eq!(origin.authenticated().len(), 1, "{url}");
        // Type 1 messages are equal byte for byte; the answers (Type 3) name their user.
        let answers = |name: &str| -> Vec<String> {
            let headers = sim.requests.iter().filter_map(|r| r.header(name));
            headers
                .filter(|v| v.starts_with(TYPE3))
                .map(str::to_string)
                .collect()
        };
        let (to_origin, to_proxy) = (answers("authorization"), answers("proxy-authorization"));
        assert_eq!(
            (to_origin.len(), to_proxy.len()),
            (1, 2),
            "{url}: {:#?}",
            sim.requests
        );
        assert!(to_proxy.iter().all(|t| !to_origin.contains(t)), "{url}");
    }
}

#[test]
fn a_job_without_proxy_credentials_never_rides_another_jobs_logged_in_connection() {
    for (seed, url) in (14..).zip(URLS) {
        let mut sim = world(seed, 0);
        let first = job_through(&mut sim, url, "/dl/a", &[dave("proxy pw")]);
        sim.drive_to_state(first, JobState::Transferred);
        let logged_in = to_proxy(&sim)[2].conn;
        let before = sim.requests.len();
        let second = job_through(&mut sim, url, "/dl/b", &[]);
        sim.drive_to_state(second, JobState::Error);
        assert_eq!(error_of(&sim, second).0, BG_E_HTTP_ERROR_407, "{url}");
        for r in &sim.requests[before..] {
            assert_ne!(
                r.conn, logged_in,
                "{url}: {r:?} reused the first job's login"
            );
        }
    }
}

#[test]
fn another_job_with_the_same_proxy_credentials_logs_in_on_its_own_connection() {
    for (seed, url) in (18..).zip(URLS) {
        let mut sim = world(seed, 0);
        let first = job_through(&mut sim, url, "/dl/a", &[dave("proxy pw")]);
        sim.drive_to_state(first, JobState::Transferred);
        let logged_in = to_proxy(&sim)[2].conn;
        let before = sim.requests.len();
        let second = job_through(&mut sim, url, "/dl/b", &[dave("proxy pw")]);
        sim.drive_to_state(second, JobState::Transferred);
        assert_delivered(&mut sim, second, "/dl/b");
        let peer = sim.proxy_ntlm_peer("proxy.test", 3128).unwrap();
        assert_eq!(peer.authenticated().len(), 2, "{url}: a second login");
        for r in &sim.requests[before..] {
            assert_ne!(r.conn, logged_in, "{url}: {r:?} rode the first job's login");
        }
    }
}

/// The gate itself: a Type 3 is accepted only on the connection that carried its Type 1.
#[test]
fn the_proxy_gate_refuses_a_type3_on_another_connection_than_its_type1() {
    let (a, b) = (ConnId(1), ConnId(2));
    for (answer_on, accepted) in [(a, true), (b, false)] {
        let mut gate = NtlmPeer::new("PROXYDOM", "dave", "proxy pw");
        let mut client = ConnectionContext::new(AuthScheme::Ntlm, &dave("proxy pw")).unwrap();
        let Ok(Step::Send(type1)) = client.step(None) else {
            panic!("a first token")
        };
        let Verdict::Challenge(Some(type2)) = gate.judge(a, Some(type1.expose())) else {
            panic!("a challenge token")
        };
        let Ok(Step::Send(type3)) = client.step(Some(&type2)) else {
            panic!("an answer")
        };
        let verdict = gate.judge(answer_on, Some(type3.expose()));
        assert_eq!(
            verdict == Verdict::Serve,
            accepted,
            "{answer_on:?}: {verdict:?}"
        );
    }
}
