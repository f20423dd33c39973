//! The process the crash-recovery test kills: it runs a backhaul manager over a job store and
//! drives its jobs to completion, surviving any SIGKILL by re-attaching to what the store
//! reloads.
//!
//! Usage: `crash_worker tokio|blocking STATE_DIR OUT_DIR URL,URL,… [URL,URL,… …]` — one job
//! per comma-separated list, job `i`'s file `j` saved as `OUT_DIR/job{i}-{j}`.
//!
//! The first run (no `STATE_DIR/created`) creates the jobs (cancelling any half-created ones
//! of a run killed while creating), resumes them, then writes `created`. Every run appends the
//! display names of the jobs it found to `STATE_DIR/runs.log`, waits for each job, writes
//! `completing-{i}` before calling `complete` and `done-{i}` after. A job missing from the store
//! whose `completing-{i}` exists was completed by a killed run; any other missing job is lost
//! (exit 3). Exit 0 once every job is done, 2 on a job error, 1 on bad usage.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use backhaul_core::{BitsError, FileIndex, JobId, JobInfo, JobPriority, JobState, JobType};
use backhaul_tokio::{DriverConfig, StoreLocation};

/// Either driver, called synchronously.
enum Driver {
    Tokio(tokio::runtime::Runtime, backhaul_tokio::Manager),
    Blocking(backhaul_blocking::Manager),
}

impl Driver {
    fn start(kind: &str, config: DriverConfig) -> Result<Self, String> {
        match kind {
            "tokio" => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                let manager = runtime
                    .block_on(async { backhaul_tokio::Manager::new(config) })
                    .map_err(|e| e.to_string())?;
                Ok(Driver::Tokio(runtime, manager))
            }
            "blocking" => backhaul_blocking::Manager::new(config)
                .map(Driver::Blocking)
                .map_err(|e| e.to_string()),
            other => Err(format!("unknown driver {other:?}")),
        }
    }

    fn jobs(&self) -> Result<Vec<JobId>, BitsError> {
        match self {
            Driver::Tokio(rt, m) => rt.block_on(m.jobs()),
            Driver::Blocking(m) => m.jobs(),
        }
    }

    fn info(&self, job: JobId) -> Result<JobInfo, BitsError> {
        match self {
            Driver::Tokio(rt, m) => rt.block_on(m.info(job)),
            Driver::Blocking(m) => m.info(job),
        }
    }

    fn create(&self, name: &str, urls: &[&str], out: &Path, i: usize) -> Result<JobId, BitsError> {
        let job = match self {
            Driver::Tokio(rt, m) => rt.block_on(m.create_job(name, JobType::Download))?,
            Driver::Blocking(m) => m.create_job(name, JobType::Download)?,
        };
        for (j, url) in urls.iter().enumerate() {
            let local = out.join(format!("job{i}-{j}"));
            let _: FileIndex = match self {
                Driver::Tokio(rt, m) => rt.block_on(m.add_file(job, url, &local))?,
                Driver::Blocking(m) => m.add_file(job, url, &local)?,
            };
        }
        match self {
            Driver::Tokio(rt, m) => rt.block_on(async {
                m.set_priority(job, JobPriority::Foreground).await?;
                m.set_minimum_retry_delay(job, 5).await?;
                m.resume(job).await
            })?,
            Driver::Blocking(m) => {
                m.set_priority(job, JobPriority::Foreground)?;
                m.set_minimum_retry_delay(job, 5)?;
                m.resume(job)?;
            }
        }
        Ok(job)
    }

    fn cancel(&self, job: JobId) -> Result<(), BitsError> {
        match self {
            Driver::Tokio(rt, m) => rt.block_on(m.cancel(job)),
            Driver::Blocking(m) => m.cancel(job),
        }
    }

    fn wait(&self, job: JobId) -> Result<JobState, BitsError> {
        match self {
            Driver::Tokio(rt, m) => rt.block_on(m.wait(job)),
            Driver::Blocking(m) => m.wait(job),
        }
    }

    fn complete(&self, job: JobId) -> Result<(), BitsError> {
        match self {
            Driver::Tokio(rt, m) => rt.block_on(m.complete(job)).map(drop),
            Driver::Blocking(m) => m.complete(job).map(drop),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: crash_worker tokio|blocking STATE_DIR OUT_DIR URL,URL,… …");
        return ExitCode::from(1);
    }
    match run(
        &args[0],
        Path::new(&args[1]),
        Path::new(&args[2]),
        &args[3..],
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, why)) => {
            eprintln!("crash_worker: {why}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn fail(why: impl std::fmt::Display) -> Failure {
    (1, why.to_string())
}

fn run(driver: &str, state: &Path, out: &Path, jobs: &[String]) -> Result<(), Failure> {
    let mut config = DriverConfig::new();
    config.use_system_roots = false;
    config.store = StoreLocation::File(state.join("jobs.redb"));
    // Checkpoint often, so that a run killed after a fraction of a second still made progress.
    config.core.checkpoint_bytes = 32 * 1024;
    config.core.checkpoint_interval = Duration::from_millis(100);
    let manager = Driver::start(driver, config).map_err(fail)?;

    let mut found: Vec<(String, JobId)> = Vec::new();
    for id in manager.jobs().map_err(fail)? {
        found.push((manager.info(id).map_err(fail)?.display_name, id));
    }
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    append(&state.join("runs.log"), &format!("{}\n", names.join(" "))).map_err(fail)?;

    let created = state.join("created");
    if !created.exists() {
        for (_, id) in found.drain(..) {
            manager.cancel(id).map_err(fail)?; // half-created by a killed run
        }
        for (i, urls) in jobs.iter().enumerate() {
            let urls: Vec<&str> = urls.split(',').collect();
            let name = job_name(i);
            let id = manager.create(&name, &urls, out, i).map_err(fail)?;
            found.push((name, id));
        }
        fs::write(&created, b"").map_err(fail)?;
    }

    for i in 0..jobs.len() {
        let name = job_name(i);
        let completing = state.join(format!("completing-{i}"));
        let Some(&(_, id)) = found.iter().find(|(n, _)| *n == name) else {
            if completing.exists() {
                fs::write(state.join(format!("done-{i}")), b"").map_err(fail)?;
                continue;
            }
            return Err((
                3,
                format!("{name} is lost: not in the store, never completed"),
            ));
        };
        match manager.wait(id).map_err(fail)? {
            JobState::Transferred => {}
            state => {
                let error = manager.info(id).ok().and_then(|i| i.error);
                return Err((2, format!("{name} ended {state}: {error:?}")));
            }
        }
        fs::write(&completing, b"").map_err(fail)?;
        manager.complete(id).map_err(fail)?;
        let after = manager.info(id).map_err(fail)?;
        if after.state != JobState::Acknowledged {
            return Err((2, format!("{name} did not complete: {:?}", after.error)));
        }
        fs::write(state.join(format!("done-{i}")), b"").map_err(fail)?;
    }
    Ok(())
}

fn job_name(i: usize) -> String {
    format!("crash-job-{i}")
}

fn append(path: &PathBuf, line: &str) -> std::io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}
