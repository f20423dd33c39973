//! Negotiate as the logged-on user in the simulation: core asks the driver's GSS-API for each
//! token (`Action::SecurityToken`, answered by the sim's `FakeGss`) and carries it on the
//! connection; no ticket, a refused token and a redirect to another origin end in 401.

use std::path::Path;

use backhaul_core::auth::{AuthScheme, AuthTarget, Credentials};
use backhaul_core::proxy::{ProxySettings, ProxyUsage};
use backhaul_core::{HResult, JobId, JobState};
use backhaul_tests::kerberos_peer::KerberosPeer;
use backhaul_tests::sim::{Reply, Resource, Sim};
use base64::Engine as _;

const BG_E_HTTP_ERROR_401: HResult = HResult(0x8019_0191);

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn b64(token: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(token)
}

/// A job downloading `http://intranet.test{path}` as the logged-on user (`target`'s implicit
/// Negotiate credentials), resumed.
fn implicit_job(sim: &mut Sim, path: &str, target: AuthTarget) -> JobId {
    let job = sim.create_job("kerberos");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file(
            &format!("http://intranet.test{path}"),
            Path::new(&format!("/dl{path}")),
        )?;
        j.set_credentials(Credentials::implicit(target, AuthScheme::Negotiate)?)?;
        j.resume()
    })
    .expect("job starts");
    job
}

fn protect(sim: &mut Sim, path: &str, size: usize, peer: KerberosPeer) {
    sim.serve("intranet.test", 80, path, Resource::new(body(size), "v1"));
    sim.kerberos("intranet.test", 80, path, peer);
}

fn error_of(sim: &Sim, job: JobId) -> (HResult, String) {
    let view = sim.engine.job(job).unwrap();
    let e = view.error().expect("an error is recorded");
    (e.code, e.description.clone())
}

#[test]
fn a_ticket_from_the_cache_answers_negotiate_and_the_file_arrives() {
    let mut sim = Sim::new(31);
    protect(&mut sim, "/a", 40_000, KerberosPeer::accepting(b"ap-req"));
    sim.gss.ticket = Some(b"ap-req".to_vec());
    let job = implicit_job(&mut sim, "/a", AuthTarget::Server);
    sim.drive_to_state(job, JobState::Transferred);
    sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    assert!(sim.file("/dl/a").expect("the file exists") == body(40_000));
    let asked = &sim.token_requests;
    assert_eq!(asked.len(), 1, "one leg: {asked:?}");
    assert_eq!(asked[0].job, job);
    assert_eq!(asked[0].target, AuthTarget::Server);
    assert_eq!(asked[0].service, "HTTP@intranet.test");
    assert_eq!(asked[0].input, None, "the first leg has no input token");
    let r = &sim.requests;
    assert_eq!(r.len(), 2, "{r:#?}");
    assert_eq!(r[0].header("authorization"), None);
    let expected = format!("Negotiate {}", b64(b"ap-req"));
    assert_eq!(r[1].header("authorization"), Some(expected.as_str()));
    assert_eq!(
        asked[0].conn, r[1].conn,
        "the token rides the connection it was made for"
    );
}

#[test]
fn implicit_proxy_credentials_also_answer_the_servers_negotiate() {
    let mut sim = Sim::new(32);
    protect(&mut sim, "/p", 5_000, KerberosPeer::accepting(b"ap-req"));
    sim.gss.ticket = Some(b"ap-req".to_vec());
    let job = implicit_job(&mut sim, "/p", AuthTarget::Proxy);
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(sim.token_requests.len(), 1);
    assert_eq!(sim.token_requests[0].service, "HTTP@intranet.test");
}

#[test]
fn no_ticket_in_the_cache_fails_the_job_with_401_and_the_kinit_hint() {
    let mut sim = Sim::new(33);
    protect(&mut sim, "/k", 100, KerberosPeer::accepting(b"ap-req"));
    sim.gss.ticket = None;
    let job = implicit_job(&mut sim, "/k", AuthTarget::Server);
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(why.contains("run kinit"), "{why}");
    assert!(
        why.contains("No Kerberos credentials available"),
        "the library's words are kept: {why}"
    );
    assert!(sim
        .requests
        .iter()
        .all(|r| r.header("authorization").is_none()));
    assert_eq!(sim.requests.len(), 1, "nothing is sent without a token");
    assert!(sim.file("/dl/k").is_none());
}

#[test]
fn a_refused_token_fails_the_job_with_401_without_a_loop() {
    let mut sim = Sim::new(34);
    protect(
        &mut sim,
        "/r",
        100,
        KerberosPeer::accepting(b"the-right-one"),
    );
    sim.gss.ticket = Some(b"for-another-service".to_vec());
    let job = implicit_job(&mut sim, "/r", AuthTarget::Server);
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(why.contains("refused"), "{why}");
    assert_eq!(sim.requests.len(), 2, "one token, then the refusal");
    assert_eq!(sim.token_requests.len(), 1);
}

#[test]
fn a_continuation_leg_runs_on_the_challenged_connection() {
    let mut sim = Sim::new(35);
    let peer = KerberosPeer::accepting(b"leg-2").with_challenge(b"leg-1", b"server-leg");
    protect(&mut sim, "/c", 20_000, peer);
    sim.gss.ticket = Some(b"leg-1".to_vec());
    sim.gss
        .continuations
        .insert(b"server-leg".to_vec(), b"leg-2".to_vec());
    let job = implicit_job(&mut sim, "/c", AuthTarget::Server);
    sim.drive_to_state(job, JobState::Transferred);
    let asked = &sim.token_requests;
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[1].input.as_deref(), Some(&b"server-leg"[..]));
    assert_eq!(asked[0].conn, asked[1].conn, "one context, one connection");
    let r = &sim.requests;
    assert_eq!(r.len(), 3, "{r:#?}");
    assert_eq!(
        r[1].conn, r[2].conn,
        "the answer rides the challenged connection"
    );
    let expected = format!("Negotiate {}", b64(b"leg-2"));
    assert_eq!(r[2].header("authorization"), Some(expected.as_str()));
}

#[test]
fn the_token_never_follows_a_redirect_to_another_origin() {
    let mut sim = Sim::new(36);
    protect(&mut sim, "/a", 100, KerberosPeer::accepting(b"ap-req"));
    sim.script(
        "intranet.test",
        80,
        "/a",
        vec![Reply::Status(
            302,
            vec![("Location".into(), "http://other.test/b".into())],
        )],
    );
    sim.serve("other.test", 80, "/b", Resource::new(body(100), "v1"));
    sim.kerberos("other.test", 80, "/b", KerberosPeer::accepting(b"ap-req"));
    sim.gss.ticket = Some(b"ap-req".to_vec());
    let job = implicit_job(&mut sim, "/a", AuthTarget::Server);
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(why.contains("another origin"), "{why}");
    assert!(
        sim.requests.iter().any(|r| r.host == "other.test"),
        "the redirect was followed"
    );
    for r in sim.requests.iter().filter(|r| r.host == "other.test") {
        assert_eq!(r.header("authorization"), None, "{r:?}");
    }
    assert!(
        sim.token_requests
            .iter()
            .all(|t| t.service == "HTTP@intranet.test"),
        "no token is made for the other origin: {:?}",
        sim.token_requests
    );
}

#[test]
fn implicit_ntlm_alone_keeps_its_clear_error_and_asks_no_token() {
    let mut sim = Sim::new(37);
    sim.serve("intranet.test", 80, "/n", Resource::new(body(100), "v1"));
    sim.ntlm("intranet.test", 80, "/n", ("TESTDOM", "gina"), "ntlmpw");
    sim.gss.ticket = Some(b"ap-req".to_vec());
    let job = sim.create_job("implicit ntlm");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://intranet.test/n", Path::new("/dl/n"))?;
        j.set_credentials(Credentials::implicit(AuthTarget::Server, AuthScheme::Ntlm)?)?;
        j.resume()
    })
    .expect("job starts");
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(
        why.contains("no password") && why.contains("Negotiate"),
        "{why}"
    );
    assert!(sim.token_requests.is_empty(), "NTLM never asks the GSS-API");
}

#[test]
fn a_rejection_token_in_the_401_fails_the_job_with_401() {
    let mut sim = Sim::new(38);
    // The server answers the token with one the client's context cannot take (SPNEGO's
    // reject), as Apache does for a ticket made with a key it does not hold.
    let peer = KerberosPeer::accepting(b"never").with_challenge(b"ap-req", b"reject");
    protect(&mut sim, "/x", 100, peer);
    sim.gss.ticket = Some(b"ap-req".to_vec());
    sim.gss
        .continuations
        .insert(b"something-else".to_vec(), b"never".to_vec());
    let job = implicit_job(&mut sim, "/x", AuthTarget::Server);
    sim.drive_to_state(job, JobState::Error);
    let (code, why) = error_of(&sim, job);
    assert_eq!(code, BG_E_HTTP_ERROR_401);
    assert!(why.contains("did not accept"), "{why}");
    assert_eq!(
        sim.token_requests.len(),
        2,
        "the first leg, then the server's answer"
    );
    assert!(sim.file("/dl/x").is_none());
}

/// A job fetching `http://files.test/f` through the HTTP proxy `proxy.test:3128` as the
/// logged-on user (implicit Negotiate proxy credentials, which also serve the server).
fn job_through_proxy(sim: &mut Sim) -> JobId {
    job_through_proxy_to(sim, "http://files.test/f")
}

/// As [`job_through_proxy`], for `url`.
fn job_through_proxy_to(sim: &mut Sim, url: &str) -> JobId {
    let job = sim.create_job("kerberos proxy");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file(url, Path::new("/dl/f"))?;
        let list = Some("proxy.test:3128".to_string());
        j.set_proxy_settings(ProxySettings::new(ProxyUsage::Override, list, None)?)?;
        j.set_credentials(Credentials::implicit(
            AuthTarget::Proxy,
            AuthScheme::Negotiate,
        )?)?;
        j.resume()
    })
    .expect("job starts");
    job
}

#[test]
fn a_negotiate_proxy_gets_a_token_made_for_its_own_host() {
    let mut sim = Sim::new(39);
    sim.negotiate_proxy("proxy.test", 3128, b"proxy-tok");
    sim.serve("files.test", 80, "/f", Resource::new(body(3000), "v"));
    sim.gss
        .tickets
        .insert("HTTP@proxy.test".into(), b"proxy-tok".to_vec());
    let job = job_through_proxy(&mut sim);
    sim.drive_to_state(job, JobState::Transferred);
    let asked = &sim.token_requests;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].target, AuthTarget::Proxy);
    assert_eq!(asked[0].service, "HTTP@proxy.test");
    let last = sim.requests.last().unwrap();
    let expected = format!("Negotiate {}", b64(b"proxy-tok"));
    assert_eq!(last.header("proxy-authorization"), Some(expected.as_str()));
    assert_eq!(
        last.header("authorization"),
        None,
        "the proxy's token stays on its hop"
    );
}

#[test]
fn proxy_and_server_each_get_their_own_token_on_one_request() {
    let mut sim = Sim::new(40);
    sim.negotiate_proxy("proxy.test", 3128, b"proxy-tok");
    sim.serve("files.test", 80, "/f", Resource::new(body(3000), "v"));
    sim.kerberos(
        "files.test",
        80,
        "/f",
        KerberosPeer::accepting(b"server-tok"),
    );
    sim.gss
        .tickets
        .insert("HTTP@proxy.test".into(), b"proxy-tok".to_vec());
    sim.gss
        .tickets
        .insert("HTTP@files.test".into(), b"server-tok".to_vec());
    let job = job_through_proxy(&mut sim);
    sim.drive_to_state(job, JobState::Transferred);
    sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    assert!(sim.file("/dl/f").expect("the file exists") == body(3000));
    let last = sim.requests.last().unwrap();
    let proxy = format!("Negotiate {}", b64(b"proxy-tok"));
    let server = format!("Negotiate {}", b64(b"server-tok"));
    assert_eq!(last.header("proxy-authorization"), Some(proxy.as_str()));
    assert_eq!(last.header("authorization"), Some(server.as_str()));
    let services: Vec<&str> = sim
        .token_requests
        .iter()
        .map(|t| t.service.as_str())
        .collect();
    assert!(services.contains(&"HTTP@proxy.test") && services.contains(&"HTTP@files.test"));
}

#[test]
fn an_https_url_through_a_negotiate_proxy_sends_the_connect_again_with_the_token() {
    let mut sim = Sim::new(41);
    sim.negotiate_proxy("proxy.test", 3128, b"proxy-tok");
    sim.serve("files.test", 443, "/f", Resource::new(body(3000), "v"));
    sim.gss
        .tickets
        .insert("HTTP@proxy.test".into(), b"proxy-tok".to_vec());
    let job = job_through_proxy_to(&mut sim, "https://files.test/f");
    sim.drive_to_state(job, JobState::Transferred);
    let asked = &sim.token_requests;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].service, "HTTP@proxy.test");
    let connects: Vec<_> = sim
        .requests
        .iter()
        .filter(|r| r.path == "files.test:443")
        .collect();
    let expected = format!("Negotiate {}", b64(b"proxy-tok"));
    assert_eq!(
        connects.len(),
        2,
        "a 407, then the tunnel: {:?}",
        sim.requests
    );
    assert_eq!(
        connects[1].header("proxy-authorization"),
        Some(expected.as_str())
    );
    let inside: Vec<_> = sim.requests.iter().filter(|r| r.path == "/f").collect();
    assert_eq!(inside.len(), 1);
    assert_eq!(
        inside[0].header("proxy-authorization"),
        None,
        "the proxy's token never goes inside the tunnel"
    );
    sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    assert_eq!(sim.file("/dl/f").unwrap(), &body(3000)[..]);
}
