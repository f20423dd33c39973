//! Custom headers (bound to their origin) and ownership (E_ACCESSDENIED, TakeOwnership), in the
//! simulation.

use std::path::Path;

use backhaul_core::job::SecurityFlags;
use backhaul_core::{codes, Caller, JobId, JobState, Owner};
use backhaul_tests::sim::{for_each_seed, Reply, Resource, Sim};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

const SECRET: &str = "X-Secret: s3cr3t-token";

fn redirect(location: &str) -> Reply {
    Reply::Status(302, vec![("Location".into(), location.into())])
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A job with custom headers fetching `url` into `/dl/f`, resumed.
fn job_with_headers(sim: &mut Sim, url: &str, flags: SecurityFlags) -> JobId {
    let job = sim.create_job("headers");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file(url, Path::new("/dl/f"))?;
        j.set_custom_headers(Some(SECRET))?;
        j.set_security_flags(flags.bits())?;
        j.set_minimum_retry_delay(5)?;
        j.resume()
    })
    .expect("job starts");
    job
}

fn basic_challenge() -> Reply {
    Reply::Status(
        401,
        vec![("WWW-Authenticate".into(), "Basic realm=\"r\"".into())],
    )
}

fn basic_credentials() -> backhaul_core::auth::Credentials {
    use backhaul_core::auth::{AuthScheme, AuthTarget, Credentials, Secret};
    let password = Some(Secret::from("pw"));
    Credentials::new(
        AuthTarget::Server,
        AuthScheme::Basic,
        Some("u".into()),
        password,
    )
    .unwrap()
}

fn carries_secret(sim: &Sim, index: usize) -> bool {
    sim.requests[index].header("x-secret") == Some("s3cr3t-token")
}

#[test]
fn custom_headers_go_on_every_request_to_the_origin_including_resumes() {
    for_each_seed(8, |seed| {
        let mut sim = Sim::new(seed);
        sim.serve("files.test", 80, "/f", Resource::new(body(50_000), "v"));
        sim.script(
            "files.test",
            80,
            "/f",
            vec![Reply::Truncate(1000), Reply::Serve],
        );
        let job = job_with_headers(&mut sim, "http://files.test/f", SecurityFlags::default());
        sim.drive_to_state(job, JobState::Transferred);
        assert!(sim.requests.len() >= 2);
        for i in 0..sim.requests.len() {
            assert!(
                carries_secret(&sim, i),
                "request {i}: {:?}",
                sim.requests[i]
            );
        }
    });
}

#[test]
fn a_redirect_to_another_port_host_or_scheme_drops_them_for_the_rest_of_the_chain() {
    for (next, comes_back) in [
        ("http://files.test:8080/f", "http://files.test/back"),
        ("http://other.test/f", "http://files.test/back"),
        ("https://files.test/f", "http://files.test/back"),
    ] {
        let mut sim = Sim::new(3);
        sim.script("files.test", 80, "/start", vec![redirect(next)]);
        let parsed = url::Url::parse(next).unwrap();
        let (host, port) = (
            parsed.host_str().unwrap(),
            parsed.port_or_known_default().unwrap(),
        );
        sim.script(host, port, "/f", vec![redirect(comes_back)]);
        sim.serve("files.test", 80, "/back", Resource::new(body(100), "v"));
        let flags = SecurityFlags::default().with_allow_https_to_http(true);
        let job = job_with_headers(&mut sim, "http://files.test/start", flags);
        sim.drive_to_state(job, JobState::Transferred);
        assert_eq!(sim.requests.len(), 3, "{next}");
        assert!(carries_secret(&sim, 0), "{next}: the origin gets them");
        assert!(
            !carries_secret(&sim, 1),
            "{next}: another origin never does"
        );
        assert!(
            !carries_secret(&sim, 2),
            "{next}: nothing re-adds them after the chain left"
        );
    }
}

#[test]
fn a_redirect_within_the_origin_keeps_them_and_default_ports_are_the_same_origin() {
    let mut sim = Sim::new(4);
    sim.script(
        "files.test",
        443,
        "/a",
        vec![redirect("https://files.test:443/b")],
    );
    sim.serve("files.test", 443, "/b", Resource::new(body(100), "v"));
    let job = job_with_headers(&mut sim, "https://files.test/a", SecurityFlags::default());
    sim.drive_to_state(job, JobState::Transferred);
    assert!(carries_secret(&sim, 0) && carries_secret(&sim, 1));
}

#[test]
fn an_allow_report_rename_to_another_origin_does_not_carry_them_on_retry() {
    let mut sim = Sim::new(5);
    sim.script("files.test", 80, "/f", vec![redirect("http://cdn.test/f")]);
    sim.serve("cdn.test", 80, "/f", Resource::new(body(20_000), "v"));
    sim.script(
        "cdn.test",
        80,
        "/f",
        vec![Reply::Truncate(500), Reply::Serve],
    );
    let flags = SecurityFlags::default()
        .with_redirect_policy(backhaul_core::job::RedirectPolicy::AllowReport);
    let job = job_with_headers(&mut sim, "http://files.test/f", flags);
    sim.drive_to_state(job, JobState::Transferred);
    assert!(carries_secret(&sim, 0));
    for i in 1..sim.requests.len() {
        assert_eq!(sim.requests[i].host, "cdn.test");
        assert!(
            !carries_secret(&sim, i),
            "request {i} to the renamed remote"
        );
    }
}

/// One hop of a random redirect chain: scheme, host, port.
fn hop() -> impl Strategy<Value = (bool, &'static str, Option<u16>)> {
    (
        any::<bool>(),
        prop_oneof![Just("a.test"), Just("b.test")],
        prop_oneof![
            Just(None),
            Just(Some(8080u16)),
            Just(Some(443u16)),
            Just(Some(80u16))
        ],
    )
}

fn hop_url((https, host, port): (bool, &str, Option<u16>), index: usize) -> String {
    let scheme = if https { "https" } else { "http" };
    match port {
        Some(port) => format!("{scheme}://{host}:{port}/h{index}"),
        None => format!("{scheme}://{host}/h{index}"),
    }
}

#[test]
fn no_request_carries_a_custom_header_or_credentials_outside_its_origin() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(ProptestConfig::with_cases(cases));
    let strategy = (proptest::collection::vec(hop(), 1..7), any::<u64>());
    let result = runner.run(&strategy, |(hops, seed)| {
        let urls: Vec<url::Url> = hops
            .iter()
            .enumerate()
            .map(|(i, h)| url::Url::parse(&hop_url(*h, i)).unwrap())
            .collect();
        let mut sim = Sim::new(seed);
        for (i, u) in urls.iter().enumerate() {
            let (host, port) = (u.host_str().unwrap(), u.port_or_known_default().unwrap());
            // The first hop asks for credentials once, so the job holds an answer for it.
            let mut replies = if i == 0 {
                vec![basic_challenge()]
            } else {
                vec![]
            };
            match urls.get(i + 1) {
                Some(next) => replies.push(redirect(next.as_str())),
                None => {
                    sim.serve(host, port, u.path(), Resource::new(body(64), "v"));
                    replies.push(Reply::Serve);
                }
            }
            sim.script(host, port, u.path(), replies);
        }
        let flags = SecurityFlags::default().with_allow_https_to_http(true);
        let job = job_with_headers(&mut sim, urls[0].as_str(), flags);
        sim.command(|e| e.job_mut(job)?.set_credentials(basic_credentials()))
            .unwrap();
        sim.drive_until(10_000, |s| s.state(job).is_settled());
        let origin = urls[0].origin();
        for (n, request) in sim.requests.iter().enumerate() {
            let hop: usize = request.path[2..].parse().unwrap();
            let stayed = urls[..=hop].iter().all(|u| u.origin() == origin);
            let carried = request.header("x-secret").is_some();
            prop_assert!(
                !carried || stayed,
                "seed {seed}: request to {} (hop {hop}) carried the header; chain {:?}",
                urls[hop],
                urls.iter().map(url::Url::as_str).collect::<Vec<_>>()
            );
            prop_assert!(carried || !stayed, "seed {seed}: hop {hop} lost its header");
            let authorized = request.header("authorization").is_some();
            prop_assert!(
                !authorized || stayed,
                "seed {seed}: request to {} (hop {hop}) carried credentials; chain {:?}",
                urls[hop],
                urls.iter().map(url::Url::as_str).collect::<Vec<_>>()
            );
            // Only the very first request goes out before the origin asked.
            prop_assert!(
                authorized || !stayed || n == 0,
                "seed {seed}: hop {hop} unanswered"
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n(replay: the failing case and its seed are printed above)");
    }
}

#[test]
fn custom_headers_read_back_until_made_write_only_and_clear_with_none() {
    let mut sim = Sim::new(6);
    let job = sim.create_job("h");
    let read = |sim: &Sim| sim.engine.job(job).unwrap().custom_headers();
    assert_eq!(read(&sim), Ok(None), "none set: S_FALSE");
    sim.command(|e| e.job_mut(job)?.set_custom_headers(Some("A: 1\r\nB: 2")))
        .unwrap();
    assert_eq!(read(&sim), Ok(Some("A: 1\r\nB: 2\r\n".to_string())));
    sim.command(|e| e.job_mut(job)?.set_custom_headers(None))
        .unwrap();
    assert_eq!(read(&sim), Ok(None));
    let too_long = format!("A: {}", "x".repeat(16_381));
    let err = sim
        .command(|e| e.job_mut(job)?.set_custom_headers(Some(&too_long)))
        .unwrap_err();
    assert_eq!(err.code(), codes::BG_E_STRING_TOO_LONG);
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.set_custom_headers(Some("A: 1"))?;
        j.make_custom_headers_write_only()?;
        j.set_custom_headers(Some("A: 2"))
    })
    .unwrap();
    let err = read(&sim).unwrap_err();
    assert_eq!(
        err.code(),
        codes::E_ACCESSDENIED,
        "write-only is irreversible"
    );
}

fn caller(name: &str, admin: bool) -> Caller {
    Caller {
        owner: Owner(name.into()),
        admin,
    }
}

#[test]
fn another_user_is_denied_and_an_administrator_is_not_the_owner() {
    let mut sim = Sim::new(7);
    let job = sim.create_job("mine");
    sim.command(|e| e.job_mut(job)?.set_custom_headers(Some("A: 1")))
        .unwrap();
    let owner = sim.engine.job(job).unwrap().owner().clone();
    let (mallory, root) = (caller("uid:1001", false), caller("uid:0", true));

    assert_eq!(
        sim.engine.job_as(job, &mallory).unwrap_err().code(),
        codes::E_ACCESSDENIED
    );
    let err = sim
        .command(|e| e.job_mut_as(job, &mallory).map(|_| ()))
        .unwrap_err();
    assert_eq!(err.code(), codes::E_ACCESSDENIED);
    assert_eq!(sim.engine.jobs_as(&mallory, false), Ok(vec![]));
    assert_eq!(
        sim.engine.jobs_as(&mallory, true).unwrap_err().code(),
        codes::E_ACCESSDENIED
    );

    // root sees every job, but the headers are the owner's alone.
    assert_eq!(sim.engine.jobs_as(&root, true), Ok(vec![job]));
    let view = sim.engine.job_as(job, &root).unwrap();
    assert_eq!(
        view.custom_headers().unwrap_err().code(),
        codes::E_ACCESSDENIED
    );
    let err = sim
        .command(|e| e.job_mut_as(job, &root)?.set_custom_headers(Some("B: 2")))
        .unwrap_err();
    assert_eq!(err.code(), codes::E_ACCESSDENIED);

    // The owner reads them; taking ownership strips them.
    let me = Caller {
        owner,
        admin: false,
    };
    assert!(sim
        .engine
        .job_as(job, &me)
        .unwrap()
        .custom_headers()
        .unwrap()
        .is_some());
    sim.command(|e| {
        e.job_mut_as(job, &root)?
            .take_ownership(Owner("uid:0".into()))
    })
    .unwrap();
    let view = sim.engine.job_as(job, &root).unwrap();
    assert_eq!(view.owner(), &Owner("uid:0".into()));
    assert_eq!(
        view.custom_headers(),
        Ok(None),
        "stripped on the change of owner"
    );
    assert_eq!(
        sim.engine.job_as(job, &me).unwrap_err().code(),
        codes::E_ACCESSDENIED,
        "the old owner lost it"
    );
    let err = sim
        .command(|e| {
            e.job_mut_as(job, &mallory)?
                .take_ownership(Owner("uid:1001".into()))
        })
        .unwrap_err();
    assert_eq!(err.code(), codes::E_ACCESSDENIED);
}

#[test]
fn debug_output_of_the_engine_never_shows_a_header_value() {
    let mut sim = Sim::new(8);
    let job = sim.create_job("h");
    sim.command(|e| e.job_mut(job)?.set_custom_headers(Some(SECRET)))
        .unwrap();
    let shown = format!("{:?} {:?}", sim.engine, sim.engine.job_record(job));
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("X-Secret"));
}
