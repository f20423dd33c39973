//! `backhaul transfer`: one job, its files, resume, wait, complete, check.
//!
//! The flow is written once, in [`drive`], against [`Backend`]: a few blocking calls on a
//! driver's `Manager`. [`TokioBackend`] runs the tokio driver's futures on its own runtime;
//! [`BlockingBackend`] calls the blocking driver directly. Validation of URLs and local names
//! belongs to the driver's `add_file`; the CLI only relays its refusals.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use backhaul_core::{
    codes, BitsError, ErrorContext, FileInfo, JobId, JobInfo, JobPriority, JobState, SIZE_UNKNOWN,
};

use backhaul_core::auth::Credentials;
use backhaul_core::proxy::ProxySettings;

use crate::report::{describe_pair, Failure, FailureKind, Outcome, Progress};

mod backend;

pub(crate) use backend::{Backend, BlockingBackend, TokioBackend};

/// How often the job is polled for the progress bar (and Ctrl+C is checked).
const POLL: Duration = Duration::from_millis(200);

/// Which driver runs the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Runtime {
    /// backhaul-tokio: the tokio driver.
    Tokio,
    /// backhaul-blocking: the driver on plain threads.
    Blocking,
}

/// A `transfer` command, checked for shape by the argument parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// The driver.
    pub(crate) runtime: Runtime,
    /// URL/DEST pairs, in order.
    pub(crate) pairs: Vec<(String, PathBuf)>,
    /// The job's display name.
    pub(crate) display_name: String,
    /// The job's priority.
    pub(crate) priority: JobPriority,
    /// Extra CA certificates (PEM) trusted for HTTPS.
    pub(crate) ca_files: Vec<PathBuf>,
    /// CRL files (PEM or DER) for revocation checks.
    pub(crate) crl_files: Vec<PathBuf>,
    /// `SetMinimumRetryDelay`, seconds.
    pub(crate) retry_delay: u32,
    /// `SetNoProgressTimeout`, seconds.
    pub(crate) no_progress_timeout: u32,
    /// `SetSecurityFlags`, already checked.
    pub(crate) security_flags: u32,
    /// Server and proxy credentials.
    pub(crate) credentials: Vec<Credentials>,
    /// Proxy settings (`None`: PRECONFIG, the environment).
    pub(crate) proxy: Option<ProxySettings>,
    /// Custom headers, one `Name: value` each.
    pub(crate) headers: Vec<String>,
    /// SHA-256 pins of acceptable leaf certificates (empty: no pinning callback).
    pub(crate) pins: Vec<[u8; 32]>,
    /// Print one JSON object on stdout at the end.
    pub(crate) json: bool,
    /// No progress bar, no output but errors.
    pub(crate) quiet: bool,
    /// Keep the job in this job store (a redb file) while it runs, so that the same command
    /// run again after a crash or Ctrl+C picks it up where it stopped.
    pub(crate) store: Option<PathBuf>,
}

/// Run the transfer on the chosen driver. `interrupted` is set by the Ctrl+C handler.
pub(crate) fn run(request: &Request, interrupted: &AtomicBool) -> Outcome {
    let started = Instant::now();
    let mut outcome = match request.runtime {
        Runtime::Tokio => start_and_drive::<TokioBackend>(request, interrupted),
        Runtime::Blocking => start_and_drive::<BlockingBackend>(request, interrupted),
    };
    outcome.elapsed = started.elapsed();
    outcome
}

fn start_and_drive<B: Backend>(request: &Request, interrupted: &AtomicBool) -> Outcome {
    match B::start(request) {
        Ok(backend) => {
            let outcome = drive(&backend, request, interrupted);
            backend.shutdown();
            outcome
        }
        Err(failure) => {
            let mut outcome = Outcome::new(&request.display_name, &request.pairs);
            outcome.failure = Some(failure);
            outcome
        }
    }
}

/// The whole flow on a started driver: create, add, set, resume, wait, complete, check.
pub(crate) fn drive<B: Backend>(
    backend: &B,
    request: &Request,
    interrupted: &AtomicBool,
) -> Outcome {
    let mut outcome = Outcome::new(&request.display_name, &request.pairs);
    let mut progress = Progress::new(!request.quiet);
    if let Err(failure) = transfer(backend, request, interrupted, &mut progress, &mut outcome) {
        outcome.failure = Some(failure);
    }
    progress.clear();
    outcome
}

fn transfer<B: Backend>(
    backend: &B,
    request: &Request,
    interrupted: &AtomicBool,
    progress: &mut Progress,
    outcome: &mut Outcome,
) -> Result<(), Failure> {
    let stored = match &request.store {
        Some(_) => stored_job(backend, request)?,
        None => None,
    };
    let job = match stored {
        Some(job) => job,
        None => backend
            .create_job(&request.display_name)
            .map_err(|e| Failure::refused(FailureKind::Transfer, &e, "creating the job"))?,
    };
    outcome.job = Some(job);
    outcome.state = Some(JobState::Suspended);

    // From here on, any failure cancels the job so nothing is left behind — except Ctrl+C
    // with a store: the job is suspended and kept there for the next run.
    let setup = Setup {
        job,
        reattached: stored.is_some(),
    };
    let result = setup_and_wait(backend, setup, request, interrupted, progress, outcome);
    if let Err(failure) = &result {
        progress.clear();
        if let (Some(store), FailureKind::Interrupted) = (&request.store, failure.kind) {
            if backend.suspend(job).is_ok() {
                outcome.state = Some(JobState::Suspended);
                let message = format!(
                    "job {job} suspended and kept in {}: the same command resumes it",
                    store.display()
                );
                return Err(Failure::plain(FailureKind::Interrupted, message));
            }
        }
        if backend.cancel(job).is_ok() {
            outcome.state = Some(JobState::Cancelled);
        }
    }
    result
}

/// The job a store kept for this very transfer: one that is not final and whose files are the
/// request's URL/DEST pairs, in order. A job that writes the same local files from other URLs
/// is an older transfer to the same places: it is cancelled (its partial bytes belong to
/// other URLs), so two jobs never race for one destination.
fn stored_job<B: Backend>(backend: &B, request: &Request) -> Result<Option<JobId>, Failure> {
    let listing =
        |e: BitsError| Failure::refused(FailureKind::Transfer, &e, "listing the stored jobs");
    let mut found = None;
    for job in backend.jobs().map_err(listing)? {
        let Ok(info) = backend.info(job) else {
            continue; // forgotten meanwhile
        };
        if info.state.is_final() {
            continue;
        }
        let locals: Vec<&Path> = info.files.iter().map(|f| f.local_name.as_path()).collect();
        let wanted: Vec<&Path> = request.pairs.iter().map(|(_, d)| d.as_path()).collect();
        if locals != wanted {
            continue;
        }
        let same_urls = info
            .files
            .iter()
            .zip(&request.pairs)
            .all(|(file, (url, _))| file.remote_name == *url);
        if same_urls && found.is_none() {
            found = Some(job);
        } else {
            backend.cancel(job).map_err(|e| {
                let doing = format!("cancelling stored job {job}, which writes the same files");
                Failure::refused(FailureKind::Transfer, &e, &doing)
            })?;
        }
    }
    Ok(found)
}

/// The job `setup_and_wait` drives.
#[derive(Clone, Copy)]
struct Setup {
    job: JobId,
    /// Found in the store (its files are there already), not created by this run.
    reattached: bool,
}

fn setup_and_wait<B: Backend>(
    backend: &B,
    setup: Setup,
    request: &Request,
    interrupted: &AtomicBool,
    progress: &mut Progress,
    outcome: &mut Outcome,
) -> Result<(), Failure> {
    let job = setup.job;
    let usage = |e: BitsError, doing: &str| Failure::refused(FailureKind::Usage, &e, doing);
    let transfer = |e: BitsError, doing: &str| Failure::refused(FailureKind::Transfer, &e, doing);
    if setup.reattached {
        let state = backend
            .info(job)
            .map_err(|e| transfer(e, "reading the job"))?
            .state;
        if state == JobState::Transferred {
            // Transferred before the last run stopped: only `complete` is left.
            return complete(backend, job, request, interrupted, progress, outcome);
        }
        if state != JobState::Suspended {
            // The settings below (the certificate callback among them) are set while SUSPENDED.
            backend
                .suspend(job)
                .map_err(|e| transfer(e, "suspending the stored job"))?;
        }
    }
    backend
        .set_priority(job, request.priority)
        .map_err(|e| usage(e, "--priority"))?;
    backend
        .set_minimum_retry_delay(job, request.retry_delay)
        .map_err(|e| usage(e, "--retry-delay"))?;
    backend
        .set_no_progress_timeout(job, request.no_progress_timeout)
        .map_err(|e| usage(e, "--no-progress-timeout"))?;
    if request.security_flags != 0 {
        backend
            .set_security_flags(job, request.security_flags)
            .map_err(|e| usage(e, "--security-flags"))?;
    }
    for credentials in &request.credentials {
        backend
            .set_credentials(job, credentials.clone())
            .map_err(|e| usage(e, "--server-auth/--proxy-auth"))?;
    }
    if let Some(settings) = &request.proxy {
        backend
            .set_proxy_settings(job, settings.clone())
            .map_err(|e| usage(e, "--proxy"))?;
    }
    if !request.headers.is_empty() {
        let text = request.headers.join("\r\n");
        backend
            .set_custom_headers(job, &text)
            .map_err(|e| usage(e, "--header"))?;
    }
    if !request.pins.is_empty() {
        backend
            .pin_certificates(job, request.pins.clone())
            .map_err(|e| usage(e, "--pin-sha256"))?;
    }
    if !setup.reattached {
        for (i, (url, dest)) in request.pairs.iter().enumerate() {
            backend
                .add_file(job, url, dest)
                .map_err(|e| usage(e, &describe_pair(i, url, dest)))?;
        }
    }
    backend
        .resume(job)
        .map_err(|e| transfer(e, "resuming the job"))?;
    outcome.state = Some(JobState::Queued);
    complete(backend, job, request, interrupted, progress, outcome)
}

/// Wait for the job to settle; complete it when it is TRANSFERRED and check the files.
fn complete<B: Backend>(
    backend: &B,
    job: JobId,
    request: &Request,
    interrupted: &AtomicBool,
    progress: &mut Progress,
    outcome: &mut Outcome,
) -> Result<(), Failure> {
    let pinned = !request.pins.is_empty();
    let state = wait(backend, job, interrupted, progress, pinned)?;
    let info = backend
        .info(job)
        .map_err(|e| Failure::refused(FailureKind::Transfer, &e, "reading the job"))?;
    outcome.record(&info);
    progress.update(&info);
    match state {
        JobState::Transferred => {}
        JobState::Error => return Err(job_failure(&info, outcome)),
        other => {
            let message = format!(
                "the job ended in state {} before it was transferred",
                other.name()
            );
            return Err(Failure::plain(FailureKind::Transfer, message));
        }
    }

    progress.clear();
    backend
        .complete(job)
        .map_err(|e| Failure::refused(FailureKind::Transfer, &e, "completing the job"))?;
    check_acknowledged(backend, job)?;
    outcome.state = Some(JobState::Acknowledged);
    check_files(&info.files)
}

/// Wait for the job to settle, polling for the progress bar and Ctrl+C meanwhile.
fn wait<B: Backend>(
    backend: &B,
    job: JobId,
    interrupted: &AtomicBool,
    progress: &mut Progress,
    pinned: bool,
) -> Result<JobState, Failure> {
    let settled = backend.spawn_wait(job);
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err(Failure::plain(
                FailureKind::Interrupted,
                format!("job {job} cancelled"),
            ));
        }
        match settled.recv_timeout(POLL) {
            Ok(Ok(state)) => return Ok(state),
            Ok(Err(e)) => {
                return Err(Failure::refused(
                    FailureKind::Transfer,
                    &e,
                    "waiting for the job",
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Failure::plain(
                    FailureKind::Transfer,
                    "the driver stopped while the job was running",
                ))
            }
            Err(RecvTimeoutError::Timeout) => {
                if !progress.is_shown() && !pinned {
                    continue;
                }
                let Ok(info) = backend.info(job) else {
                    continue;
                };
                progress.update(&info);
                // BITS retries a rejected certificate (TRANSIENT_ERROR); a pin that did not
                // match will not match on retry, so the CLI gives up at once.
                if let Some(e) = info.error.as_ref().filter(|e| {
                    info.state == JobState::TransientError
                        && e.context == ErrorContext::ServerCertificateCallback
                }) {
                    return Err(Failure::job_error(e, None));
                }
            }
        }
    }
}

/// The job is in ERROR: its recorded error, tied to the file it concerns.
fn job_failure(info: &JobInfo, outcome: &Outcome) -> Failure {
    match &info.error {
        Some(error) => {
            let file = error.file.and_then(|i| outcome.files.get(i as usize));
            Failure::job_error(error, file)
        }
        None => Failure::plain(
            FailureKind::Transfer,
            "the job is in ERROR but recorded no error",
        ),
    }
}

/// Both drivers return from `complete` once the commits (renames into place) were performed,
/// so the job is ACKNOWLEDGED now, or back in TRANSFERRED because a rename failed (BITS' rule).
/// It may also be forgotten already: `BG_E_NOT_FOUND` counts as acknowledged, since the files
/// are checked anyway.
fn check_acknowledged<B: Backend>(backend: &B, job: JobId) -> Result<(), Failure> {
    match backend.info(job) {
        Ok(info) if info.state == JobState::Acknowledged => Ok(()),
        Ok(info) => {
            let message = format!(
                "the files could not all be moved into place: the job is {} after complete",
                info.state.name()
            );
            Err(Failure::plain(FailureKind::Transfer, message))
        }
        Err(e) if e.code() == codes::BG_E_NOT_FOUND => Ok(()),
        Err(e) => Err(Failure::refused(
            FailureKind::Transfer,
            &e,
            "reading the job after complete",
        )),
    }
}

/// Every file is at its local name with the size the server gave.
fn check_files(files: &[FileInfo]) -> Result<(), Failure> {
    for file in files {
        let p = file.progress;
        let expected = if p.bytes_total == SIZE_UNKNOWN {
            p.bytes_transferred
        } else {
            p.bytes_total
        };
        let dest = file.local_name.display();
        let problem = match std::fs::metadata(&file.local_name) {
            Ok(m) if m.is_file() && m.len() == expected => continue,
            Ok(m) if m.is_file() => format!(
                "{dest} has {} bytes after complete, expected {expected}",
                m.len()
            ),
            Ok(_) => format!("{dest} is not a regular file after complete"),
            Err(e) => format!("{dest} is missing after complete: {e}"),
        };
        return Err(Failure::plain(FailureKind::Transfer, problem));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
