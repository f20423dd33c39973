//! Proxies in the simulation: absolute form and CONNECT tunnels, proxy authentication on the
//! proxy hop only, a list tried in order, bypass, the environment, and bad settings.

use std::path::Path;
use std::time::Duration;

use backhaul_core::auth::{AuthScheme, AuthTarget, Credentials, Secret};
use backhaul_core::proxy::{ProxyEnvironment, ProxySettings, ProxyUsage};
use backhaul_core::{codes, Config, HResult, JobId, JobState};
use backhaul_tests::sim::{Resource, Sim};

const BG_E_HTTP_ERROR_407: HResult = HResult(0x8019_0197);
/// `Basic base64("carol:proxy pw")`.
const CAROL: &str = "Basic Y2Fyb2w6cHJveHkgcHc=";

fn proxy_credentials() -> Credentials {
    let password = Some(Secret::from("proxy pw"));
    Credentials::new(
        AuthTarget::Proxy,
        AuthScheme::Basic,
        Some("carol".into()),
        password,
    )
    .unwrap()
}

fn override_list(list: &str, bypass: Option<&str>) -> ProxySettings {
    ProxySettings::new(
        ProxyUsage::Override,
        Some(list.into()),
        bypass.map(str::to_string),
    )
    .unwrap()
}

fn job_through(sim: &mut Sim, url: &str, settings: ProxySettings, creds: bool) -> JobId {
    let job = sim.create_job("proxied");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file(url, Path::new("/dl/f"))?;
        j.set_proxy_settings(settings)?;
        j.set_minimum_retry_delay(5)?;
        if creds {
            j.set_credentials(proxy_credentials())?;
        }
        j.resume()
    })
    .expect("job starts");
    job
}

fn body() -> Vec<u8> {
    (0..5000).map(|i| (i % 241) as u8).collect()
}

#[test]
fn http_goes_to_the_proxy_in_absolute_form_with_proxy_credentials_after_a_407() {
    let mut sim = Sim::new(1);
    sim.proxy("proxy.test", 3128, Some(CAROL));
    sim.serve("files.test", 80, "/f", Resource::new(body(), "v"));
    let job = job_through(
        &mut sim,
        "http://files.test/f",
        override_list("proxy.test:3128", None),
        true,
    );
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(sim.requests.len(), 2, "{:?}", sim.requests);
    for r in &sim.requests {
        assert_eq!(r.host, "proxy.test");
        assert_eq!(r.path, "http://files.test/f");
        assert_eq!(r.header("authorization"), None);
    }
    assert_eq!(sim.requests[0].header("proxy-authorization"), None);
    assert_eq!(sim.requests[1].header("proxy-authorization"), Some(CAROL));
    sim.command(|e| e.job_mut(job)?.complete()).unwrap();
    assert_eq!(sim.file("/dl/f").unwrap(), &body()[..]);
}

#[test]
fn https_goes_through_a_connect_tunnel_and_the_proxy_credentials_stay_outside_it() {
    let mut sim = Sim::new(2);
    sim.proxy("proxy.test", 3128, Some(CAROL));
    sim.serve("files.test", 443, "/f", Resource::new(body(), "v"));
    let job = job_through(
        &mut sim,
        "https://files.test/f",
        override_list("proxy.test:3128", None),
        true,
    );
    sim.drive_to_state(job, JobState::Transferred);
    let connects: Vec<_> = sim
        .requests
        .iter()
        .filter(|r| r.path == "files.test:443")
        .collect();
    assert_eq!(
        connects.len(),
        2,
        "a 407, then the tunnel: {:?}",
        sim.requests
    );
    assert_eq!(connects[1].header("proxy-authorization"), Some(CAROL));
    let inside: Vec<_> = sim.requests.iter().filter(|r| r.path == "/f").collect();
    assert_eq!(inside.len(), 1);
    assert_eq!(
        inside[0].header("proxy-authorization"),
        None,
        "never inside the tunnel"
    );
    assert_eq!(
        inside[0].host, "proxy.test",
        "the request went through the proxy's connection"
    );
}

#[test]
fn no_proxy_credentials_end_in_error_407() {
    for url in ["http://files.test/f", "https://files.test/f"] {
        let mut sim = Sim::new(3);
        sim.proxy("proxy.test", 3128, Some(CAROL));
        let job = job_through(&mut sim, url, override_list("proxy.test:3128", None), false);
        sim.drive_to_state(job, JobState::Error);
        let view = sim.engine.job(job).unwrap();
        let error = view.error().unwrap();
        assert_eq!(error.code, BG_E_HTTP_ERROR_407, "{url}: {error}");
    }
}

#[test]
fn the_proxy_list_is_tried_in_order() {
    let mut sim = Sim::new(4);
    sim.proxy("second.test", 8080, None);
    sim.serve("files.test", 80, "/f", Resource::new(body(), "v"));
    let list = override_list("first.test:3128; second.test:8080", None);
    let job = job_through(&mut sim, "http://files.test/f", list, false);
    sim.drive_to_state(job, JobState::Transferred);
    assert!(sim.requests.iter().all(|r| r.host == "second.test"));
}

#[test]
fn a_bypassed_host_is_reached_directly() {
    let mut sim = Sim::new(5);
    sim.serve("files.internal", 80, "/f", Resource::new(body(), "v"));
    let list = override_list("proxy.test:3128", Some("*.internal;<local>"));
    let job = job_through(&mut sim, "http://files.internal/f", list, false);
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(sim.requests[0].host, "files.internal");
    assert_eq!(sim.requests[0].path, "/f");
}

#[test]
fn a_bad_proxy_list_is_found_at_run_time_as_invalid_proxy_info() {
    let mut sim = Sim::new(6);
    let list = override_list("http://proxy.test:notaport", None);
    let job = job_through(&mut sim, "http://files.test/f", list, false);
    sim.drive_to_state(job, JobState::Error);
    let view = sim.engine.job(job).unwrap();
    assert_eq!(view.error().unwrap().code, codes::BG_E_INVALID_PROXY_INFO);
}

#[test]
fn preconfig_follows_the_environment_and_no_proxy() {
    let mut config = Config::new([0; 32]);
    config.receive_timeout = Duration::from_secs(60);
    config.proxy_environment = ProxyEnvironment::from_vars([
        (
            "http_proxy".to_string(),
            "http://envproxy.test:3128".to_string(),
        ),
        ("NO_PROXY".to_string(), "direct.test".to_string()),
    ]);
    let mut sim = Sim::with_config(7, config);
    sim.proxy("envproxy.test", 3128, None);
    sim.serve("files.test", 80, "/f", Resource::new(body(), "v"));
    sim.serve("direct.test", 80, "/f", Resource::new(body(), "v"));
    let job = sim.create_job("env");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file("http://files.test/f", Path::new("/dl/a"))?;
        j.add_file("http://direct.test/f", Path::new("/dl/b"))?;
        j.resume()
    })
    .unwrap();
    sim.drive_to_state(job, JobState::Transferred);
    assert_eq!(sim.requests[0].host, "envproxy.test");
    assert_eq!(sim.requests[0].path, "http://files.test/f");
    assert_eq!(sim.requests[1].host, "direct.test");
}

#[test]
fn socks5_carries_http_and_https_with_user_and_password() {
    for url in ["http://files.test/f", "https://files.test/f"] {
        let mut sim = Sim::new(8);
        sim.socks5_proxy("socks.test", 1080, Some(("dave", "s0cks")));
        sim.serve("files.test", 80, "/f", Resource::new(body(), "v"));
        sim.serve("files.test", 443, "/f", Resource::new(body(), "v"));
        let list = override_list("socks5://dave:s0cks@socks.test:1080", None);
        let job = job_through(&mut sim, url, list, false);
        sim.drive_to_state(job, JobState::Transferred);
        assert_eq!(sim.requests.len(), 1, "{url}: {:?}", sim.requests);
        assert_eq!(
            sim.requests[0].path, "/f",
            "{url}: origin form through the tunnel"
        );
        sim.command(|e| e.job_mut(job)?.complete()).unwrap();
        assert_eq!(sim.file("/dl/f").unwrap(), &body()[..], "{url}");
    }
}

#[test]
fn a_socks5_proxy_refusing_the_password_is_a_407() {
    let mut sim = Sim::new(9);
    sim.socks5_proxy("socks.test", 1080, Some(("dave", "s0cks")));
    let list = override_list("socks5://dave:wrong@socks.test:1080", None);
    let job = job_through(&mut sim, "http://files.test/f", list, false);
    sim.drive_to_state(job, JobState::Error);
    let view = sim.engine.job(job).unwrap();
    assert_eq!(view.error().unwrap().code, BG_E_HTTP_ERROR_407);
    assert!(sim.requests.is_empty());
}

/// An https job through a proxy that answers every CONNECT with `reply`, driven until it is in
/// `settles_in`; nothing but CONNECTs was sent and no file appeared.
fn connect_answered(reply: &[u8], settles_in: JobState) -> (Sim, JobId) {
    let mut sim = Sim::new(11);
    sim.proxy_answering_connect("proxy.test", 3128, reply);
    sim.serve("files.test", 443, "/f", Resource::new(body(), "v"));
    let job = job_through(
        &mut sim,
        "https://files.test/f",
        override_list("proxy.test:3128", None),
        false,
    );
    sim.drive_to_state(job, settles_in);
    assert_only_connects(&sim);
    (sim, job)
}

fn assert_only_connects(sim: &Sim) {
    assert!(
        sim.requests.iter().all(|r| r.path == "files.test:443"),
        "nothing but CONNECT was sent: {:?}",
        sim.requests
    );
    assert!(sim.file("/dl/f").is_none(), "no file at the local name");
}

fn job_error(sim: &Sim, job: JobId) -> backhaul_core::JobError {
    sim.engine.job(job).unwrap().error().unwrap().clone()
}

#[test]
fn a_connect_refused_with_403_fails_the_job_naming_the_proxy_and_the_status() {
    let (sim, job) = connect_answered(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        JobState::Error,
    );
    let error = job_error(&sim, job);
    assert_eq!(
        error.code,
        HResult(0x8019_0193),
        "BG_E_HTTP_ERROR_403: {error}"
    );
    for part in ["proxy.test", "403 Forbidden", "CONNECT files.test:443"] {
        assert!(error.description.contains(part), "{part:?} in {error}");
    }
}

#[test]
fn a_connect_answered_502_is_transient_and_retried_after_the_delay() {
    let (mut sim, job) = connect_answered(
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
        JobState::TransientError,
    );
    let error = job_error(&sim, job);
    assert_eq!(
        error.code,
        HResult(0x8019_01F6),
        "BG_E_HTTP_ERROR_502: {error}"
    );
    assert!(error.description.contains("502 Bad Gateway"), "{error}");
    assert_eq!(sim.requests.len(), 1);
    sim.advance(Duration::from_secs(4));
    assert_eq!(sim.requests.len(), 1, "not before the 5 s retry delay");
    sim.advance(Duration::from_secs(2));
    sim.drive_to_state(job, JobState::TransientError);
    assert_eq!(sim.requests.len(), 2, "CONNECT again after the delay");
    assert_only_connects(&sim);
}

#[test]
fn bytes_after_a_2xx_to_connect_fail_the_job_as_an_invalid_server_response() {
    let (sim, job) = connect_answered(
        b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\n",
        JobState::Error,
    );
    let error = job_error(&sim, job);
    assert_eq!(
        error.code,
        codes::ERROR_WINHTTP_INVALID_SERVER_RESPONSE,
        "{error}"
    );
    assert!(
        error
            .description
            .contains("sent bytes after its 2xx to CONNECT"),
        "{error}"
    );
}
