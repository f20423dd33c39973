//! Scale: 10,000 jobs created (one file each) and persisted. Three ways: the engine alone with
//! each `Action::Persist` written to the store, then through each driver's `Manager` (a command
//! round trip per call, the host persisting). Prints the time, jobs/s and the store's size.
//!
//! The store is [`store_under_test`]: the redb file store (`RedbStore`) in a temp directory,
//! each record a committed (fsynced) transaction, as the drivers persist.
//!
//! `cargo bench -p backhaul-tests --bench jobs_persist` (BENCH_JOBS to change the count).

mod common;

use std::path::Path;
use std::time::Instant;

use backhaul_core::{Action, Config, Engine, JobType, Output, Owner, Timestamp};
use backhaul_store::{JobStore, RedbStore};

use common::{env_usize, peak_rss_mib};

/// The store every measurement here persists to: a `RedbStore` in `dir` (empty, removed
/// afterwards).
fn store_under_test(dir: &Path) -> Box<dyn JobStore> {
    std::fs::create_dir_all(dir).expect("create the store directory");
    Box::new(RedbStore::open(dir.join("jobs.redb")).expect("open the redb store"))
}

/// A core config that admits `jobs` jobs for one owner.
fn config_for(jobs: usize) -> Config {
    let mut config = Config::new([3; 32]);
    config.max_jobs = jobs + 1;
    config.max_jobs_per_owner = jobs + 1;
    config
}

fn report(how: &str, jobs: usize, started: Instant, records: usize) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  {how:<28} {jobs} jobs in {secs:.3} s ({:.0} jobs/s), {records} records stored",
        jobs as f64 / secs
    );
}

/// The engine alone: create, add a file, drain, write each persisted record to the store.
fn engine_alone(jobs: usize, dir: &Path) {
    let mut store = store_under_test(&dir.join("engine"));
    let mut engine = Engine::new(config_for(jobs), Timestamp::from_secs(1_800_000_000));
    let started = Instant::now();
    let mut puts = 0usize;
    for i in 0..jobs {
        let job = engine
            .create_job(
                &format!("job {i}"),
                JobType::Download,
                Owner("bench".into()),
            )
            .expect("create_job");
        engine
            .job_mut(job)
            .expect("job")
            .add_file(
                "http://127.0.0.1:8080/file.bin",
                &dir.join(format!("f{i}.bin")),
            )
            .expect("add_file");
        loop {
            match engine.poll_output() {
                Output::Timeout(_) => break,
                Output::Action(Action::Persist { job }) => {
                    let record = engine.job_record(job).expect("record");
                    store.put(job, record).expect("put");
                    puts += 1;
                }
                Output::Action(_) | Output::Event(_) => {}
            }
        }
    }
    let records = store.load_all().expect("load_all").len();
    report("engine + store:", jobs, started, records);
    println!("    ({puts} puts)");
}

fn driver_config(jobs: usize, dir: &Path) -> backhaul_blocking::DriverConfig {
    let mut config = backhaul_blocking::DriverConfig::new();
    config.core = config_for(jobs);
    config.use_system_roots = false;
    config.store = backhaul_blocking::StoreLocation::Custom(store_under_test(dir));
    config
}

fn blocking_driver(jobs: usize, dir: &Path) {
    let manager = backhaul_blocking::Manager::new(driver_config(jobs, &dir.join("blocking")))
        .expect("blocking manager");
    let started = Instant::now();
    for i in 0..jobs {
        let job = manager
            .create_job(&format!("job {i}"), JobType::Download)
            .expect("create_job");
        manager
            .add_file(
                job,
                "http://127.0.0.1:8080/file.bin",
                &dir.join(format!("f{i}.bin")),
            )
            .expect("add_file");
    }
    let listed = manager.jobs().expect("jobs").len();
    report("blocking driver:", jobs, started, listed);
    manager.shutdown();
}

fn tokio_driver(jobs: usize, dir: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let manager = backhaul_tokio::Manager::new(driver_config(jobs, &dir.join("tokio")))
            .expect("tokio manager");
        let started = Instant::now();
        for i in 0..jobs {
            let job = manager
                .create_job(&format!("job {i}"), JobType::Download)
                .await
                .expect("create_job");
            manager
                .add_file(
                    job,
                    "http://127.0.0.1:8080/file.bin",
                    &dir.join(format!("f{i}.bin")),
                )
                .await
                .expect("add_file");
        }
        let listed = manager.jobs().await.expect("jobs").len();
        report("tokio driver:", jobs, started, listed);
        manager.shutdown().await;
    });
}

fn main() {
    let jobs = env_usize("BENCH_JOBS", 10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["engine", "blocking", "tokio"] {
        std::fs::create_dir(dir.path().join(sub)).expect("store dir");
    }
    println!("jobs: {jobs} jobs created with one file each, every record persisted");
    engine_alone(jobs, dir.path());
    blocking_driver(jobs, dir.path());
    tokio_driver(jobs, dir.path());
    println!("  peak RSS {:.1} MiB", peak_rss_mib());
}
