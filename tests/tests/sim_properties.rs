//! Properties over random fault scripts, in the simulation: whatever the server does (drops the
//! connection anywhere, changes the file between attempts, answers 503), a job that ends
//! TRANSFERRED holds exactly one version of the file — the one served last — never a splice.

use std::path::Path;
use std::time::Duration;

use backhaul_core::JobState;
use backhaul_tests::sim::{Reply, Resource, Sim};
use proptest::prelude::*;

const HOST: &str = "files.test";

/// Version `n` of the file: its own bytes and its own strong ETag, as HTTP requires.
fn version(n: usize, len: usize) -> Resource {
    let body: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ (n as u8))
        .collect();
    Resource::new(body, &format!("v{n}"))
}

#[derive(Clone, Debug)]
enum Fault {
    Truncate(u64),
    Change(usize),
    ChangeTruncated(usize, u64),
    Unavailable,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0u64..300_000).prop_map(Fault::Truncate),
        (1usize..300_000).prop_map(Fault::Change),
        (1usize..300_000, 0u64..300_000).prop_map(|(len, t)| Fault::ChangeTruncated(len, t)),
        Just(Fault::Unavailable),
    ]
}

proptest! {
    // PROPTEST_CASES=n runs more cases (CI runs the default).
    #![proptest_config(ProptestConfig::with_cases(cases(200)))]

    #[test]
    fn a_transferred_file_is_exactly_the_last_version_served(
        seed in any::<u64>(),
        faults in proptest::collection::vec(fault(), 0..6),
    ) {
        let mut sim = Sim::new(seed);
        sim.serve(HOST, 80, "/f", version(0, 250_000));
        let mut script = Vec::new();
        for (i, f) in faults.iter().enumerate() {
            script.push(match f.clone() {
                Fault::Truncate(n) => Reply::Truncate(n),
                Fault::Change(len) => Reply::ChangeTo(version(i + 1, len)),
                Fault::ChangeTruncated(len, t) => Reply::ChangeToTruncated(version(i + 1, len), t),
                Fault::Unavailable => Reply::Status(503, vec![]),
            });
        }
        script.push(Reply::Serve);
        sim.script(HOST, 80, "/f", script);
        let job = sim.create_job("prop");
        sim.command(|e| {
            let mut j = e.job_mut(job)?;
            j.add_file("http://files.test/f", Path::new("/dl/f"))?;
            j.set_minimum_retry_delay(5)?;
            j.resume()
        }).unwrap();
        sim.drive_until(1_000_000, |s| matches!(s.state(job), JobState::Transferred | JobState::Error));
        prop_assert_eq!(sim.state(job), JobState::Transferred, "seed {}", seed);
        sim.command(|e| e.job_mut(job)?.complete()).unwrap();
        // The server's resource now is what its last answer served.
        let last = sim.resource(HOST, 80, "/f").expect("served").clone();
        let file = sim.file("/dl/f").expect("file in place").to_vec();
        prop_assert!(file == last.body, "seed {}: the file is not the last version served", seed);
        let progress = sim.engine.job(job).unwrap().progress();
        prop_assert_eq!(progress.bytes_transferred, last.body.len() as u64);
        prop_assert!(sim.now().saturating_since(backhaul_tests::sim::START) < Duration::from_secs(3600));
    }
}

/// `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
