//! Scale: 1,000 jobs of one 1 MiB file each, from a loopback server, on the tokio driver (all
//! transferring at once: foreground jobs) and on the blocking driver with a bounded pool
//! (`max_foreground_jobs`, default 64, so at most that many connection threads). Prints the
//! time until every job is TRANSFERRED and until every file is committed, the peak RSS
//! (`VmHWM`), and the descriptors open while idle and after shutdown.
//!
//! Each part runs in its own process (this binary, re-run with `BACKHAUL_BENCH_ROLE`), so peak
//! RSS and descriptors are the driver's own; the server (`backhaul_tests::TestServer`, a thread
//! per connection) runs in a third process.
//!
//! The files go to /dev/shm (or `BENCH_DIR`), so commits' fsyncs cost nothing there.
//!
//! `cargo bench -p backhaul-tests --bench concurrent` (BENCH_JOBS, BENCH_FILE_KIB, BENCH_POOL,
//! BENCH_DIR).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backhaul_core::{JobId, JobPriority, JobState, JobType};
use backhaul_tests::data::deterministic_bytes;
use backhaul_tests::{FileSpec, Route, TestServer};

use common::{env_usize, fds_opened_since, open_fds, peak_rss_mib};

const ROLE: &str = "BACKHAUL_BENCH_ROLE";
const SERVER_URL: &str = "BACKHAUL_BENCH_URL";

fn file_len() -> usize {
    env_usize("BENCH_FILE_KIB", 1024) * 1024
}

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("server") => serve(),
        Ok("tokio") => client(Client::Tokio),
        Ok("blocking") => client(Client::Blocking),
        _ => parent(),
    }
}

/// Starts the server process, then each client process in turn.
fn parent() {
    let exe = std::env::current_exe().expect("current_exe");
    let mut server = Command::new(&exe)
        .env(ROLE, "server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut url = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut url)
        .expect("the server's URL");
    let jobs = env_usize("BENCH_JOBS", 1000);
    println!(
        "concurrent: {jobs} jobs of {} KiB each from {}",
        file_len() / 1024,
        url.trim()
    );
    for role in ["tokio", "blocking"] {
        let status = Command::new(&exe)
            .env(ROLE, role)
            .env(SERVER_URL, url.trim())
            .status()
            .expect("run a client process");
        if !status.success() {
            println!("  {role}: the client process failed ({status})");
        }
    }
    drop(server.stdin.take()); // the server exits when its stdin closes
    let _ = server.wait();
}

/// The server process: one route, `/file.bin`; prints its URL, serves until stdin closes.
fn serve() {
    let body = deterministic_bytes(file_len(), 1);
    let server = TestServer::start(vec![Route::file(
        "/file.bin",
        FileSpec::new(body).with_etag(Some("\"v1\"")),
    )]);
    println!("{}", server.url("/file.bin"));
    std::io::stdout().flush().expect("flush");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(server);
}

#[derive(Clone, Copy, Debug)]
enum Client {
    Tokio,
    Blocking,
}

/// What one client process measured.
struct Figures {
    transferred: Duration,
    committed: Duration,
    fds_idle: usize,
}

fn client(which: Client) {
    let jobs = env_usize("BENCH_JOBS", 1000);
    let pool = env_usize("BENCH_POOL", 64);
    let url = std::env::var(SERVER_URL).expect("the server URL");
    let dir = scratch_dir();
    if let Client::Tokio = which {
        // tokio's signal driver (enabled when any crate in the build asks for `signal`, as the
        // CLI does) opens a process-wide socketpair when the first runtime starts and keeps it
        // for the life of the process: tokio's, not the driver's, so it is in the baseline.
        drop(runtime());
    }
    let fds_before = open_fds();
    let mut config = backhaul_blocking::DriverConfig::new();
    config.core.max_jobs = jobs + 1;
    config.core.max_jobs_per_owner = jobs + 1;
    config.use_system_roots = false;
    let (label, figures) = match which {
        Client::Tokio => (
            "tokio, all at once",
            run_tokio(config, jobs, &url, dir.path()),
        ),
        Client::Blocking => {
            config.core.max_foreground_jobs = pool;
            let label = format!("blocking, pool of {pool}");
            let figures = run_blocking(config, jobs, &url, dir.path());
            (label.leak() as &str, figures)
        }
    };
    std::thread::sleep(Duration::from_millis(200)); // connection threads exit after the shutdown
    let left_open = fds_opened_since(&fds_before, &open_fds());
    let files_ok = check_files(dir.path(), jobs);
    println!(
        "  {label:<22} all TRANSFERRED in {:.2} s, all committed in {:.2} s; peak RSS {:.1} MiB; \
         descriptors beyond the start: {} idle (pooled connections), {} after shutdown; \
         {files_ok} of {jobs} files whole",
        figures.transferred.as_secs_f64(),
        figures.committed.as_secs_f64(),
        peak_rss_mib(),
        figures.fds_idle.saturating_sub(fds_before.len()),
        left_open.len(),
    );
    if !left_open.is_empty() {
        println!("    left open: {}", left_open.join(", "));
    }
}

/// Where the files go: `BENCH_DIR`, else /dev/shm (tmpfs: a GiB of files, no disk), else the
/// system's temp dir.
fn scratch_dir() -> tempfile::TempDir {
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(base).expect("temp dir")
}

fn local(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("f{i}.bin"))
}

fn check_files(dir: &Path, jobs: usize) -> usize {
    (0..jobs)
        .filter(|i| std::fs::metadata(local(dir, *i)).is_ok_and(|m| m.len() == file_len() as u64))
        .count()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn run_tokio(config: backhaul_tokio::DriverConfig, jobs: usize, url: &str, dir: &Path) -> Figures {
    runtime().block_on(async {
        let manager = backhaul_tokio::Manager::new(config).expect("tokio manager");
        let mut ids: Vec<JobId> = Vec::with_capacity(jobs);
        for i in 0..jobs {
            let job = manager
                .create_job(&format!("job {i}"), JobType::Download)
                .await
                .expect("create_job");
            manager
                .add_file(job, url, &local(dir, i))
                .await
                .expect("add_file");
            manager
                .set_priority(job, JobPriority::Foreground)
                .await
                .expect("priority");
            ids.push(job);
        }
        let start = Instant::now();
        for job in &ids {
            manager.resume(*job).await.expect("resume");
        }
        let waits: Vec<_> = ids
            .iter()
            .map(|job| {
                let manager = manager.clone();
                let job = *job;
                tokio::spawn(async move { manager.wait(job).await })
            })
            .collect();
        for wait in waits {
            let state = wait.await.expect("join").expect("wait");
            assert_eq!(state, JobState::Transferred, "a job did not transfer");
        }
        let transferred = start.elapsed();
        for job in &ids {
            manager.complete(*job).await.expect("complete");
        }
        let committed = start.elapsed();
        let fds_idle = open_fds().len();
        manager.shutdown().await;
        Figures {
            transferred,
            committed,
            fds_idle,
        }
    })
}

fn run_blocking(
    config: backhaul_blocking::DriverConfig,
    jobs: usize,
    url: &str,
    dir: &Path,
) -> Figures {
    let manager = backhaul_blocking::Manager::new(config).expect("blocking manager");
    let mut ids: Vec<JobId> = Vec::with_capacity(jobs);
    for i in 0..jobs {
        let job = manager
            .create_job(&format!("job {i}"), JobType::Download)
            .expect("create_job");
        manager
            .add_file(job, url, &local(dir, i))
            .expect("add_file");
        manager
            .set_priority(job, JobPriority::Foreground)
            .expect("priority");
        ids.push(job);
    }
    let start = Instant::now();
    for job in &ids {
        manager.resume(*job).expect("resume");
    }
    for job in &ids {
        let state = manager.wait(*job).expect("wait");
        assert_eq!(state, JobState::Transferred, "a job did not transfer");
    }
    let transferred = start.elapsed();
    for job in &ids {
        manager.complete(*job).expect("complete");
    }
    let committed = start.elapsed();
    let fds_idle = open_fds().len();
    manager.shutdown();
    Figures {
        transferred,
        committed,
        fds_idle,
    }
}
