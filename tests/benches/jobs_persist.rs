//! Scale: 10,000 jobs created (one file each) and persisted. The engine alone with each
//! `Action::Persist` written to the store as its own transaction, then through each driver's
//! `Manager` (a command round trip per call; the host groups the writes of what arrives
//! together into one commit and answers after it) with one creator calling after another, and
//! with several creating at once; then through `Manager::create_jobs`, all the jobs in one
//! call, in calls of 100 and one job (with its file) per call. Prints the time, jobs/s and the records stored.
//!
//! The store is [`store_under_test`]: the redb file store (`RedbStore`) in a temp directory,
//! each transaction committed and synced, as the drivers persist.
//!
//! `cargo bench -p backhaul-tests --bench jobs_persist` (BENCH_JOBS to change the count,
//! BENCH_CREATORS the creators of the concurrent runs, BENCH_STORE=memory for no disk store).

mod common;

use std::path::Path;
use std::time::Instant;

use backhaul_core::{Action, Config, Engine, JobType, NewJob, Output, Owner, Timestamp};
use backhaul_store::{JobStore, MemoryStore, RedbStore};

use common::{env_usize, peak_rss_mib};

/// The store every measurement here persists to: a `RedbStore` in `dir` (empty, removed
/// afterwards); with `BENCH_STORE=memory`, a `MemoryStore` (records encoded as on disk, kept in
/// memory), to tell the engine's and the drivers' cost from the store's.
fn store_under_test(dir: &Path) -> Box<dyn JobStore> {
    if std::env::var("BENCH_STORE").is_ok_and(|s| s == "memory") {
        return Box::new(MemoryStore::default());
    }
    std::fs::create_dir_all(dir).expect("create the store directory");
    Box::new(RedbStore::open(dir.join("jobs.redb")).expect("open the redb store"))
}

/// Jobs per `create_jobs` call in the second bulk measurement, as a package manager might send
/// one transaction's downloads (the first: all in one call; the third: one job with its file
/// per call, one commit per job instead of `create_job` + `add_file`'s two).
const BULK_CALL: usize = 100;

/// The URL every job's file names (nothing is downloaded: the jobs stay SUSPENDED).
const FILE_URL: &str = "http://127.0.0.1:8080/file.bin";

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
    let mut store = store_under_test(dir);
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
            .add_file(FILE_URL, &dir.join(format!("f{i}.bin")))
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

/// Through the blocking driver's `Manager`: `creators` threads, each creating its share of
/// the jobs one call after another (the driver groups what arrives together into one store
/// commit).
fn blocking_driver(jobs: usize, creators: usize, dir: &Path) {
    let manager =
        backhaul_blocking::Manager::new(driver_config(jobs, dir)).expect("blocking manager");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for creator in 0..creators {
            let manager = manager.clone();
            scope.spawn(move || {
                for i in (creator..jobs).step_by(creators) {
                    let job = manager
                        .create_job(&format!("job {i}"), JobType::Download)
                        .expect("create_job");
                    manager
                        .add_file(job, FILE_URL, &dir.join(format!("f{i}.bin")))
                        .expect("add_file");
                }
            });
        }
    });
    let listed = manager.jobs().expect("jobs").len();
    report(
        &format!("blocking, {creators} creator(s):"),
        jobs,
        started,
        listed,
    );
    manager.shutdown();
}

/// The jobs of a bulk measurement: `jobs` download jobs of one file each, in batches of
/// `per_call` (one `create_jobs` call each).
fn batches(jobs: usize, per_call: usize, dir: &Path) -> Vec<Vec<NewJob>> {
    let all: Vec<NewJob> = (0..jobs)
        .map(|i| NewJob::download(format!("job {i}")).file(FILE_URL, dir.join(format!("f{i}.bin"))))
        .collect();
    all.chunks(per_call).map(<[NewJob]>::to_vec).collect()
}

/// Through the blocking driver's `Manager::create_jobs`: the jobs in calls of `per_call` jobs,
/// one after another (each call is one command and one store commit).
fn blocking_bulk(jobs: usize, per_call: usize, dir: &Path) {
    let manager =
        backhaul_blocking::Manager::new(driver_config(jobs, dir)).expect("blocking manager");
    let batches = batches(jobs, per_call, dir);
    let started = Instant::now();
    for batch in batches {
        manager.create_jobs(batch).expect("create_jobs");
    }
    let listed = manager.jobs().expect("jobs").len();
    report(
        &format!("blocking, bulk of {per_call}:"),
        jobs,
        started,
        listed,
    );
    manager.shutdown();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Through the tokio driver's `Manager::create_jobs`, as [`blocking_bulk`].
fn tokio_bulk(jobs: usize, per_call: usize, dir: &Path) {
    runtime().block_on(async {
        let manager =
            backhaul_tokio::Manager::new(driver_config(jobs, dir)).expect("tokio manager");
        let batches = batches(jobs, per_call, dir);
        let started = Instant::now();
        for batch in batches {
            manager.create_jobs(batch).await.expect("create_jobs");
        }
        let listed = manager.jobs().await.expect("jobs").len();
        report(
            &format!("tokio, bulk of {per_call}:"),
            jobs,
            started,
            listed,
        );
        manager.shutdown().await;
    });
}

/// Through the tokio driver's `Manager`: `creators` tasks, as [`blocking_driver`].
fn tokio_driver(jobs: usize, creators: usize, dir: &Path) {
    runtime().block_on(async {
        let manager =
            backhaul_tokio::Manager::new(driver_config(jobs, dir)).expect("tokio manager");
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for creator in 0..creators {
            let manager = manager.clone();
            let dir = dir.to_path_buf();
            tasks.spawn(async move {
                for i in (creator..jobs).step_by(creators) {
                    let job = manager
                        .create_job(&format!("job {i}"), JobType::Download)
                        .await
                        .expect("create_job");
                    manager
                        .add_file(job, FILE_URL, &dir.join(format!("f{i}.bin")))
                        .await
                        .expect("add_file");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a creator task");
        }
        let listed = manager.jobs().await.expect("jobs").len();
        report(
            &format!("tokio, {creators} creator(s):"),
            jobs,
            started,
            listed,
        );
        manager.shutdown().await;
    });
}

fn main() {
    let jobs = env_usize("BENCH_JOBS", 10_000);
    let creators = env_usize("BENCH_CREATORS", 16);
    let dir = tempfile::tempdir().expect("temp dir");
    println!("jobs: {jobs} jobs created with one file each, every record persisted");
    engine_alone(jobs, &fresh(dir.path(), "engine"));
    for n in [1, creators] {
        blocking_driver(jobs, n, &fresh(dir.path(), &format!("blocking-{n}")));
        tokio_driver(jobs, n, &fresh(dir.path(), &format!("tokio-{n}")));
    }
    for per_call in [jobs, BULK_CALL, 1] {
        blocking_bulk(
            jobs,
            per_call,
            &fresh(dir.path(), &format!("blocking-bulk-{per_call}")),
        );
        tokio_bulk(
            jobs,
            per_call,
            &fresh(dir.path(), &format!("tokio-bulk-{per_call}")),
        );
    }
    println!("  peak RSS {:.1} MiB", peak_rss_mib());
}

/// An empty directory `name` under `root`, for one measurement's store and files.
fn fresh(root: &Path, name: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir(&dir).expect("a directory for the measurement");
    dir
}
