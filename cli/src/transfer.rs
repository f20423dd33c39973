//! `backhaul transfer`: one job, its files, resume, wait, complete, check.
//!
//! The flow is written once, in [`drive`], against [`Backend`]: a few blocking calls on a
//! driver's `Manager`. [`TokioBackend`] runs the tokio driver's futures on its own runtime;
//! [`BlockingBackend`] calls the blocking driver directly. Validation of URLs and local names
//! belongs to the driver's `add_file`; the CLI only relays its refusals.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use backhaul_core::{
    codes, BitsError, CompleteOutcome, ErrorContext, FileIndex, FileInfo, JobId, JobInfo,
    JobPriority, JobState, JobType, SIZE_UNKNOWN,
};

use backhaul_core::auth::Credentials;
use backhaul_core::proxy::ProxySettings;

use crate::report::{describe_pair, Failure, FailureKind, Outcome, Progress};
use crate::security::pin_verdict;

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

/// A driver's `Manager`, seen through blocking calls: all the transfer flow needs.
pub(crate) trait Backend: Sized {
    /// Start the driver for `request`: trusting its CA files besides the system roots, with
    /// its CRL files, over its job store (or none).
    fn start(request: &Request) -> Result<Self, Failure>;
    /// `EnumJobs`: the jobs in the driver (those its store held, after a restart).
    fn jobs(&self) -> Result<Vec<JobId>, BitsError>;
    /// `Suspend`.
    fn suspend(&self, job: JobId) -> Result<(), BitsError>;
    /// `CreateJob`.
    fn create_job(&self, display_name: &str) -> Result<JobId, BitsError>;
    /// `AddFile`.
    fn add_file(&self, job: JobId, url: &str, local: &Path) -> Result<FileIndex, BitsError>;
    /// `SetPriority`.
    fn set_priority(&self, job: JobId, priority: JobPriority) -> Result<(), BitsError>;
    /// `SetMinimumRetryDelay`.
    fn set_minimum_retry_delay(&self, job: JobId, secs: u32) -> Result<(), BitsError>;
    /// `SetNoProgressTimeout`.
    fn set_no_progress_timeout(&self, job: JobId, secs: u32) -> Result<(), BitsError>;
    /// `SetSecurityFlags`.
    fn set_security_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError>;
    /// `SetCustomHeaders`.
    fn set_custom_headers(&self, job: JobId, headers: &str) -> Result<(), BitsError>;
    /// `SetCredentials`.
    fn set_credentials(&self, job: JobId, credentials: Credentials) -> Result<(), BitsError>;
    /// `SetProxySettings`.
    fn set_proxy_settings(&self, job: JobId, settings: ProxySettings) -> Result<(), BitsError>;
    /// Register a validation callback accepting only leaf certificates with these SHA-256s.
    fn pin_certificates(&self, job: JobId, pins: Vec<[u8; 32]>) -> Result<(), BitsError>;
    /// `Resume`.
    fn resume(&self, job: JobId) -> Result<(), BitsError>;
    /// `Cancel`.
    fn cancel(&self, job: JobId) -> Result<(), BitsError>;
    /// `Complete`.
    fn complete(&self, job: JobId) -> Result<CompleteOutcome, BitsError>;
    /// A snapshot of the job.
    fn info(&self, job: JobId) -> Result<JobInfo, BitsError>;
    /// Start waiting for TRANSFERRED, ERROR, ACKNOWLEDGED or CANCELLED; the state (or a
    /// refusal) arrives on the receiver. The sender is dropped if the driver stops.
    fn spawn_wait(&self, job: JobId) -> Receiver<Result<JobState, BitsError>>;
    /// Stop the driver once its queued actions (temp deletions, renames) are done.
    fn shutdown(self);
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

/// The driver configuration of `request`: its CA and CRL files, and its job store (a file, or
/// memory when it names none).
fn driver_config(request: &Request) -> backhaul_io::DriverConfig {
    let mut config = backhaul_io::DriverConfig::new();
    config.ca_files = request.ca_files.clone();
    config.crl_files = request.crl_files.clone();
    if let Some(store) = &request.store {
        config.store = backhaul_io::StoreLocation::File(store.clone());
    }
    config
}

/// The tokio driver, on a runtime of its own; each call is `block_on` its future.
pub(crate) struct TokioBackend {
    runtime: tokio::runtime::Runtime,
    manager: backhaul_tokio::Manager,
}

impl Backend for TokioBackend {
    fn start(request: &Request) -> Result<Self, Failure> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("backhaul-tokio")
            .build()
            .map_err(|e| {
                Failure::plain(FailureKind::Transfer, format!("cannot start tokio: {e}"))
            })?;
        let config = driver_config(request);
        let manager = {
            let _inside = runtime.enter();
            backhaul_tokio::Manager::new(config)
        };
        let manager = manager.map_err(|e| {
            let kind = match e {
                backhaul_tokio::DriverError::CaFile { .. }
                | backhaul_tokio::DriverError::CrlFile { .. } => FailureKind::Usage,
                _ => FailureKind::Transfer,
            };
            Failure::plain(kind, e.to_string())
        })?;
        Ok(Self { runtime, manager })
    }

    fn create_job(&self, display_name: &str) -> Result<JobId, BitsError> {
        self.runtime
            .block_on(self.manager.create_job(display_name, JobType::Download))
    }

    fn jobs(&self) -> Result<Vec<JobId>, BitsError> {
        self.runtime.block_on(self.manager.jobs())
    }

    fn suspend(&self, job: JobId) -> Result<(), BitsError> {
        self.runtime.block_on(self.manager.suspend(job))
    }

    fn add_file(&self, job: JobId, url: &str, local: &Path) -> Result<FileIndex, BitsError> {
        self.runtime
            .block_on(self.manager.add_file(job, url, local))
    }

    fn set_priority(&self, job: JobId, priority: JobPriority) -> Result<(), BitsError> {
        self.runtime
            .block_on(self.manager.set_priority(job, priority))
    }

    fn set_minimum_retry_delay(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.runtime
            .block_on(self.manager.set_minimum_retry_delay(job, secs))
    }

    fn set_no_progress_timeout(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.runtime
            .block_on(self.manager.set_no_progress_timeout(job, secs))
    }

    fn set_security_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError> {
        self.runtime
            .block_on(self.manager.set_security_flags(job, flags))
    }

    fn set_custom_headers(&self, job: JobId, headers: &str) -> Result<(), BitsError> {
        self.runtime
            .block_on(self.manager.set_custom_headers(job, Some(headers)))
    }

    fn set_credentials(&self, job: JobId, credentials: Credentials) -> Result<(), BitsError> {
        self.runtime
            .block_on(self.manager.set_credentials(job, credentials))
    }

    fn set_proxy_settings(&self, job: JobId, settings: ProxySettings) -> Result<(), BitsError> {
        self.runtime
            .block_on(self.manager.set_proxy_settings(job, settings))
    }

    fn pin_certificates(&self, job: JobId, pins: Vec<[u8; 32]>) -> Result<(), BitsError> {
        let validator = backhaul_tokio::certificate_validator(move |request| {
            let verdict = pin_verdict(&pins, &request.leaf);
            async move { verdict }
        });
        self.runtime.block_on(
            self.manager
                .set_server_certificate_validation(job, Some(validator)),
        )
    }

    fn resume(&self, job: JobId) -> Result<(), BitsError> {
        self.runtime.block_on(self.manager.resume(job))
    }

    fn cancel(&self, job: JobId) -> Result<(), BitsError> {
        self.runtime.block_on(self.manager.cancel(job))
    }

    fn complete(&self, job: JobId) -> Result<CompleteOutcome, BitsError> {
        self.runtime.block_on(self.manager.complete(job))
    }

    fn info(&self, job: JobId) -> Result<JobInfo, BitsError> {
        self.runtime.block_on(self.manager.info(job))
    }

    fn spawn_wait(&self, job: JobId) -> Receiver<Result<JobState, BitsError>> {
        let (tx, rx) = mpsc::channel();
        let manager = self.manager.clone();
        self.runtime.spawn(async move {
            let _ = tx.send(manager.wait(job).await);
        });
        rx
    }

    fn shutdown(self) {
        let Self { runtime, manager } = self;
        runtime.block_on(manager.shutdown());
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

/// The blocking driver, called directly.
pub(crate) struct BlockingBackend {
    manager: backhaul_blocking::Manager,
}

impl Backend for BlockingBackend {
    fn start(request: &Request) -> Result<Self, Failure> {
        let config = driver_config(request);
        let manager = backhaul_blocking::Manager::new(config).map_err(|e| {
            let kind = match e {
                backhaul_blocking::DriverError::CaFile { .. }
                | backhaul_blocking::DriverError::CrlFile { .. } => FailureKind::Usage,
                _ => FailureKind::Transfer,
            };
            Failure::plain(kind, e.to_string())
        })?;
        Ok(Self { manager })
    }

    fn create_job(&self, display_name: &str) -> Result<JobId, BitsError> {
        self.manager.create_job(display_name, JobType::Download)
    }

    fn jobs(&self) -> Result<Vec<JobId>, BitsError> {
        self.manager.jobs()
    }

    fn suspend(&self, job: JobId) -> Result<(), BitsError> {
        self.manager.suspend(job)
    }

    fn add_file(&self, job: JobId, url: &str, local: &Path) -> Result<FileIndex, BitsError> {
        self.manager.add_file(job, url, local)
    }

    fn set_priority(&self, job: JobId, priority: JobPriority) -> Result<(), BitsError> {
        self.manager.set_priority(job, priority)
    }

    fn set_minimum_retry_delay(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.manager.set_minimum_retry_delay(job, secs)
    }

    fn set_no_progress_timeout(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.manager.set_no_progress_timeout(job, secs)
    }

    fn set_security_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError> {
        self.manager.set_security_flags(job, flags)
    }

    fn set_custom_headers(&self, job: JobId, headers: &str) -> Result<(), BitsError> {
        self.manager.set_custom_headers(job, Some(headers))
    }

    fn set_credentials(&self, job: JobId, credentials: Credentials) -> Result<(), BitsError> {
        self.manager.set_credentials(job, credentials)
    }

    fn set_proxy_settings(&self, job: JobId, settings: ProxySettings) -> Result<(), BitsError> {
        self.manager.set_proxy_settings(job, settings)
    }

    fn pin_certificates(&self, job: JobId, pins: Vec<[u8; 32]>) -> Result<(), BitsError> {
        let validator: backhaul_blocking::CertificateValidator =
            std::sync::Arc::new(move |request| pin_verdict(&pins, &request.leaf));
        self.manager
            .set_server_certificate_validation(job, Some(validator))
    }

    fn resume(&self, job: JobId) -> Result<(), BitsError> {
        self.manager.resume(job)
    }

    fn cancel(&self, job: JobId) -> Result<(), BitsError> {
        self.manager.cancel(job)
    }

    fn complete(&self, job: JobId) -> Result<CompleteOutcome, BitsError> {
        self.manager.complete(job)
    }

    fn info(&self, job: JobId) -> Result<JobInfo, BitsError> {
        self.manager.info(job)
    }

    fn spawn_wait(&self, job: JobId) -> Receiver<Result<JobState, BitsError>> {
        let (tx, rx) = mpsc::channel();
        let manager = self.manager.clone();
        std::thread::Builder::new()
            .name("backhaul-wait".into())
            .spawn(move || {
                let _ = tx.send(manager.wait(job));
            })
            .expect("a thread can be spawned");
        rx
    }

    fn shutdown(self) {
        self.manager.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use backhaul_core::{
        ErrorContext, FileProgress, HResult, JobError, JobProgress, JobTimes, NotifyFlags, Owner,
        Timestamp,
    };

    use super::*;
    use crate::report::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};

    /// How the fake job ends once resumed.
    #[derive(Clone)]
    enum Ending {
        /// TRANSFERRED; `complete` writes each file with `size` bytes (or not, if `write` is false).
        Transferred { size: u64, write: bool },
        /// ERROR with this error.
        Error(JobError),
    }

    /// A scripted `Manager`: records every call, refuses `add_file` for one pair if asked.
    struct Fake {
        ending: Ending,
        refuse_file: Option<(usize, BitsError)>,
        calls: Mutex<Vec<String>>,
        files: Mutex<Vec<PathBuf>>,
        state: Mutex<JobState>,
    }

    impl Fake {
        fn new(ending: Ending) -> Self {
            Self {
                ending,
                refuse_file: None,
                calls: Mutex::new(Vec::new()),
                files: Mutex::new(Vec::new()),
                state: Mutex::new(JobState::Suspended),
            }
        }

        fn log(&self, call: &str) {
            self.calls.lock().unwrap().push(call.to_string());
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Backend for Fake {
        fn start(_: &Request) -> Result<Self, Failure> {
            unreachable!("tests build the fake themselves")
        }
        fn jobs(&self) -> Result<Vec<JobId>, BitsError> {
            self.log("jobs");
            Ok(vec![JobId(7)])
        }
        fn suspend(&self, _: JobId) -> Result<(), BitsError> {
            self.log("suspend");
            *self.state.lock().unwrap() = JobState::Suspended;
            Ok(())
        }
        fn create_job(&self, _: &str) -> Result<JobId, BitsError> {
            self.log("create_job");
            Ok(JobId(7))
        }
        fn add_file(&self, _: JobId, _: &str, local: &Path) -> Result<FileIndex, BitsError> {
            self.log("add_file");
            let mut files = self.files.lock().unwrap();
            if let Some((i, e)) = &self.refuse_file {
                if *i == files.len() {
                    return Err(e.clone());
                }
            }
            files.push(local.to_path_buf());
            Ok(files.len() as FileIndex - 1)
        }
        fn set_priority(&self, _: JobId, p: JobPriority) -> Result<(), BitsError> {
            self.log(&format!("set_priority {}", p.name()));
            Ok(())
        }
        fn set_minimum_retry_delay(&self, _: JobId, secs: u32) -> Result<(), BitsError> {
            self.log(&format!("set_minimum_retry_delay {secs}"));
            Ok(())
        }
        fn set_no_progress_timeout(&self, _: JobId, secs: u32) -> Result<(), BitsError> {
            self.log(&format!("set_no_progress_timeout {secs}"));
            Ok(())
        }
        fn set_security_flags(&self, _: JobId, flags: u32) -> Result<(), BitsError> {
            self.log(&format!("set_security_flags 0x{flags:04X}"));
            Ok(())
        }
        fn set_custom_headers(&self, _: JobId, headers: &str) -> Result<(), BitsError> {
            self.log(&format!("set_custom_headers {}", headers.lines().count()));
            Ok(())
        }
        fn set_credentials(&self, _: JobId, c: Credentials) -> Result<(), BitsError> {
            self.log(&format!("set_credentials {} {}", c.target(), c.scheme()));
            Ok(())
        }
        fn set_proxy_settings(&self, _: JobId, s: ProxySettings) -> Result<(), BitsError> {
            self.log(&format!("set_proxy_settings {}", s.usage().name()));
            Ok(())
        }
        fn pin_certificates(&self, _: JobId, pins: Vec<[u8; 32]>) -> Result<(), BitsError> {
            self.log(&format!("pin_certificates {}", pins.len()));
            Ok(())
        }
        fn resume(&self, _: JobId) -> Result<(), BitsError> {
            self.log("resume");
            *self.state.lock().unwrap() = match self.ending {
                Ending::Transferred { .. } => JobState::Transferred,
                Ending::Error(_) => JobState::Error,
            };
            Ok(())
        }
        fn cancel(&self, _: JobId) -> Result<(), BitsError> {
            self.log("cancel");
            *self.state.lock().unwrap() = JobState::Cancelled;
            Ok(())
        }
        fn complete(&self, _: JobId) -> Result<CompleteOutcome, BitsError> {
            self.log("complete");
            if let Ending::Transferred { size, write: true } = self.ending {
                for path in self.files.lock().unwrap().iter() {
                    std::fs::write(path, vec![0u8; size as usize]).unwrap();
                }
            }
            *self.state.lock().unwrap() = JobState::Acknowledged;
            Ok(CompleteOutcome::Complete)
        }
        fn info(&self, job: JobId) -> Result<JobInfo, BitsError> {
            let state = *self.state.lock().unwrap();
            let size = match self.ending {
                Ending::Transferred { size, .. } => size,
                Ending::Error(_) => SIZE_UNKNOWN,
            };
            let done = state == JobState::Transferred || state == JobState::Acknowledged;
            let files: Vec<FileInfo> = self
                .files
                .lock()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, path)| FileInfo {
                    index: i as FileIndex,
                    remote_name: format!("http://h/{i}"),
                    local_name: path.clone(),
                    temporary_name: None,
                    progress: FileProgress {
                        bytes_total: size,
                        bytes_transferred: if done { size } else { 0 },
                        completed: done,
                    },
                })
                .collect();
            let error = match (&self.ending, state) {
                (Ending::Error(e), JobState::Error) => Some(e.clone()),
                _ => None,
            };
            Ok(JobInfo {
                id: job,
                display_name: "t".into(),
                description: String::new(),
                job_type: JobType::Download,
                priority: JobPriority::Foreground,
                owner: Owner("me".into()),
                state,
                progress: JobProgress {
                    bytes_total: SIZE_UNKNOWN,
                    bytes_transferred: 0,
                    files_total: files.len() as u32,
                    files_transferred: 0,
                },
                files,
                times: JobTimes {
                    creation: Timestamp::EPOCH,
                    modification: Timestamp::EPOCH,
                    transfer_completion: None,
                },
                error,
                error_count: 0,
                notify_flags: NotifyFlags::DEFAULT,
                minimum_retry_delay: 10,
                no_progress_timeout: 300,
                maximum_download_time: 0,
                security_flags: Default::default(),
            })
        }
        fn spawn_wait(&self, _: JobId) -> Receiver<Result<JobState, BitsError>> {
            let (tx, rx) = mpsc::channel();
            tx.send(Ok(*self.state.lock().unwrap())).unwrap();
            rx
        }
        fn shutdown(self) {}
    }

    fn request(dir: &Path, names: &[&str]) -> Request {
        Request {
            runtime: Runtime::Blocking,
            pairs: names
                .iter()
                .map(|n| (format!("http://h/{n}"), dir.join(n)))
                .collect(),
            display_name: "t".into(),
            priority: JobPriority::Foreground,
            ca_files: Vec::new(),
            crl_files: Vec::new(),
            retry_delay: 10,
            no_progress_timeout: 300,
            security_flags: 0,
            credentials: Vec::new(),
            proxy: None,
            headers: Vec::new(),
            pins: Vec::new(),
            json: false,
            quiet: true,
            store: None,
        }
    }

    #[test]
    fn with_a_store_the_job_that_writes_the_same_files_is_resumed_not_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Ending::Transferred {
            size: 5,
            write: true,
        });
        // The fake names file i `http://h/{i}`: a stored job with `dir/0` is this request's.
        fake.files.lock().unwrap().push(dir.path().join("0"));
        let mut request = request(dir.path(), &["0"]);
        request.store = Some(dir.path().join("jobs.redb"));
        let outcome = drive(&fake, &request, &AtomicBool::new(false));
        assert_eq!(outcome.failure, None);
        assert_eq!(outcome.state, Some(JobState::Acknowledged));
        let calls = fake.calls();
        assert!(
            !calls.iter().any(|c| c == "create_job" || c == "add_file"),
            "{calls:?}"
        );
        assert!(calls.iter().any(|c| c == "resume"), "{calls:?}");
    }

    #[test]
    fn with_a_store_a_job_writing_the_same_files_from_other_urls_is_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Ending::Transferred {
            size: 5,
            write: true,
        });
        // Stored: `http://h/0` → `dir/x`; asked for: `http://h/x` → `dir/x`.
        fake.files.lock().unwrap().push(dir.path().join("x"));
        let mut request = request(dir.path(), &["x"]);
        request.store = Some(dir.path().join("jobs.redb"));
        let _ = drive(&fake, &request, &AtomicBool::new(false));
        let calls = fake.calls();
        let cancelled = calls.iter().position(|c| c == "cancel");
        let created = calls.iter().position(|c| c == "create_job");
        assert!(
            cancelled.is_some() && created.is_some() && cancelled < created,
            "the old job is cancelled, then a new one created: {calls:?}"
        );
    }

    #[test]
    fn transferred_job_is_completed_and_its_files_checked() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Ending::Transferred {
            size: 5,
            write: true,
        });
        let outcome = drive(
            &fake,
            &request(dir.path(), &["a", "b"]),
            &AtomicBool::new(false),
        );
        assert_eq!(outcome.failure, None);
        assert_eq!(outcome.exit_code(), EXIT_OK);
        assert_eq!(outcome.state, Some(JobState::Acknowledged));
        assert_eq!(outcome.files[1].bytes, 5);
        assert_eq!(
            fake.calls(),
            [
                "create_job",
                "set_priority FOREGROUND",
                "set_minimum_retry_delay 10",
                "set_no_progress_timeout 300",
                "add_file",
                "add_file",
                "resume",
                "complete"
            ]
        );
    }

    #[test]
    fn fatal_job_error_cancels_and_reports_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = JobError::new(
            ErrorContext::RemoteFile,
            HResult::from_http_status(404),
            "the server answered HTTP 404 Not Found",
        )
        .for_file(0);
        let fake = Fake::new(Ending::Error(error));
        let outcome = drive(&fake, &request(dir.path(), &["x"]), &AtomicBool::new(false));
        assert_eq!(outcome.exit_code(), EXIT_FAILED);
        assert_eq!(outcome.state, Some(JobState::Cancelled));
        assert_eq!(fake.calls().last().map(String::as_str), Some("cancel"));
        let line = outcome.failure.unwrap().error_line();
        assert!(
            line.contains("BG_E_HTTP_ERROR_404 (0x80190194) in BG_ERROR_CONTEXT_REMOTE_FILE"),
            "{line}"
        );
        assert!(line.ends_with("for http://h/x"), "{line}");
    }

    #[test]
    fn refused_add_file_cancels_before_resume_and_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake::new(Ending::Transferred {
            size: 1,
            write: true,
        });
        fake.refuse_file = Some((
            1,
            BitsError::new(codes::E_INVALIDARG, "scheme \"ftp\" is not http or https"),
        ));
        let outcome = drive(
            &fake,
            &request(dir.path(), &["a", "b"]),
            &AtomicBool::new(false),
        );
        assert_eq!(outcome.exit_code(), EXIT_USAGE);
        let calls = fake.calls();
        assert!(!calls.contains(&"resume".to_string()), "{calls:?}");
        assert_eq!(calls.last().map(String::as_str), Some("cancel"));
        let line = outcome.failure.unwrap().error_line();
        assert!(
            line.contains("E_INVALIDARG (0x80070057): scheme \"ftp\""),
            "{line}"
        );
        assert!(line.contains("(file 2: http://h/b -> "), "{line}");
    }

    #[test]
    fn missing_file_after_complete_is_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Ending::Transferred {
            size: 3,
            write: false,
        });
        let outcome = drive(&fake, &request(dir.path(), &["a"]), &AtomicBool::new(false));
        assert_eq!(outcome.exit_code(), EXIT_FAILED);
        let line = outcome.failure.unwrap().error_line();
        assert!(line.contains("is missing after complete"), "{line}");
    }

    #[test]
    fn interrupt_cancels_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Ending::Transferred {
            size: 3,
            write: true,
        });
        let outcome = drive(&fake, &request(dir.path(), &["a"]), &AtomicBool::new(true));
        assert_eq!(outcome.exit_code(), EXIT_INTERRUPTED);
        assert_eq!(outcome.state, Some(JobState::Cancelled));
        assert_eq!(fake.calls().last().map(String::as_str), Some("cancel"));
    }
}
