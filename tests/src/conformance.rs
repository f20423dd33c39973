//! The cross-driver conformance suite: one list of scenarios, run on every driver.
//!
//! # Theory of operation
//!
//! A driver is reached through [`Driver`], a blocking facade over its `Manager` (the tokio
//! driver's adapter runs each call on its own runtime with `block_on`). Each scenario in
//! [`scenarios`] is a generic function `fn name<D: Driver>()` that starts a
//! [`TestServer`](crate::TestServer), a driver and a temp directory, runs one job and asserts on
//! the job, the files on disk and the server's request log. [`conformance_suite!`](crate::conformance_suite)
//! turns the one list of scenario names into `#[test]`s for a given driver; `tests/conformance.rs`
//! invokes it once per driver.
//!
//! Nothing waits unbounded: every scenario runs on its own thread under
//! [`SCENARIO_TIME_LIMIT`] ([`run_bounded`]), and every wait inside one has its own deadline.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backhaul_blocking::CertificateRequest;
use backhaul_core::{
    BitsError, CompleteOutcome, FileIndex, FileRange, HResult, JobError, JobEvent, JobId, JobInfo,
    JobPriority, JobState, JobType, NewJob,
};

pub mod restart;
pub mod scenarios;

/// The longest any one scenario may run before it is failed as hung.
pub const SCENARIO_TIME_LIMIT: Duration = Duration::from_secs(300);

/// How a scenario wants its driver set up (what varies between scenarios).
#[derive(Clone, Debug)]
pub struct DriverSetup {
    /// PEM files of CAs to trust.
    pub ca_files: Vec<PathBuf>,
    /// Trust the system's roots too. Scenarios keep this false so results do not depend on the
    /// machine.
    pub use_system_roots: bool,
    /// The engine's RNG seed (job ids, temp names, retry jitter), fixed per scenario so a failure
    /// can be replayed.
    pub rng_seed: [u8; 32],
    /// The job store file (`None`: in memory).
    pub store: Option<PathBuf>,
    /// `Config::checkpoint_bytes` (`None`: the default).
    pub checkpoint_bytes: Option<u64>,
}

impl DriverSetup {
    /// No trust anchor at all, and the RNG seed derived from `scenario`'s name.
    pub fn trusting_nothing(scenario: &str) -> Self {
        let digest = crate::data::sha256_hex(scenario.as_bytes());
        let mut rng_seed = [0u8; 32];
        for (i, byte) in rng_seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).expect("hex digest");
        }
        Self {
            ca_files: Vec::new(),
            use_system_roots: false,
            rng_seed,
            store: None,
            checkpoint_bytes: None,
        }
    }

    /// Trusting only the CA in `ca_file`.
    pub fn trusting(scenario: &str, ca_file: PathBuf) -> Self {
        Self {
            ca_files: vec![ca_file],
            ..Self::trusting_nothing(scenario)
        }
    }

    /// The seed as hex, for failure messages.
    pub fn seed_hex(&self) -> String {
        self.rng_seed.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A certificate validation callback as the scenarios write it.
pub type Validator = Arc<dyn Fn(&CertificateRequest) -> Result<(), HResult> + Send + Sync>;

/// One driver, as the scenarios use it: the `Manager` API, blocking, plus bounded waits and a
/// log of every event since start.
pub trait Driver: Sized {
    /// `tokio` or `blocking`, for messages.
    const NAME: &'static str;

    /// Starts a manager configured from `setup`. Panics if it cannot start.
    fn start(setup: DriverSetup) -> Self;
    /// `Manager::create_job`.
    fn create_job(&self, display_name: &str, job_type: JobType) -> Result<JobId, BitsError>;
    /// `Manager::create_jobs`.
    fn create_jobs(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, BitsError>;
    /// `Manager::add_file`.
    fn add_file(&self, job: JobId, url: &str, local: &Path) -> Result<FileIndex, BitsError>;
    /// `Manager::add_file_with_ranges`.
    fn add_file_with_ranges(
        &self,
        job: JobId,
        url: &str,
        local: &Path,
        ranges: &[FileRange],
    ) -> Result<FileIndex, BitsError>;
    /// `Manager::resume`.
    fn resume(&self, job: JobId) -> Result<(), BitsError>;
    /// `Manager::suspend`.
    fn suspend(&self, job: JobId) -> Result<(), BitsError>;
    /// `Manager::cancel`.
    fn cancel(&self, job: JobId) -> Result<(), BitsError>;
    /// `Manager::complete`.
    fn complete(&self, job: JobId) -> Result<CompleteOutcome, BitsError>;
    /// `Manager::set_priority`.
    fn set_priority(&self, job: JobId, priority: JobPriority) -> Result<(), BitsError>;
    /// `Manager::set_minimum_retry_delay`, seconds.
    fn set_minimum_retry_delay(&self, job: JobId, secs: u32) -> Result<(), BitsError>;
    /// `Manager::set_no_progress_timeout`, seconds.
    fn set_no_progress_timeout(&self, job: JobId, secs: u32) -> Result<(), BitsError>;
    /// `Manager::set_security_flags`.
    fn set_security_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError>;
    /// `Manager::set_server_certificate_validation` with a plain closure (the tokio adapter
    /// wraps it in a future).
    fn set_certificate_validator(
        &self,
        job: JobId,
        validator: Option<Validator>,
    ) -> Result<(), BitsError>;
    /// `Manager::set_credentials`.
    fn set_credentials(
        &self,
        job: JobId,
        credentials: backhaul_core::auth::Credentials,
    ) -> Result<(), BitsError>;
    /// `Manager::set_custom_headers`.
    fn set_custom_headers(&self, job: JobId, headers: Option<&str>) -> Result<(), BitsError>;
    /// `Manager::set_notify_cmd_line`.
    fn set_notify_cmd_line(
        &self,
        job: JobId,
        program: Option<&str>,
        parameters: Option<&str>,
    ) -> Result<(), BitsError>;
    /// `Manager::info`.
    fn info(&self, job: JobId) -> Result<JobInfo, BitsError>;
    /// `Manager::jobs`.
    fn jobs(&self) -> Result<Vec<JobId>, BitsError>;
    /// `Manager::broken_records`, as (job, reason).
    fn broken_records(&self) -> Vec<(JobId, String)>;
    /// `Manager::wait`, given up after `limit` (`None`).
    fn wait_timeout(&self, job: JobId, limit: Duration) -> Option<Result<JobState, BitsError>>;
    /// Every event received since [`Driver::start`].
    fn events(&self) -> &EventLog;
    /// `Manager::shutdown`, bounded.
    fn shutdown(self);
}

/// Events collected from a driver's subscription (by a thread the adapter starts).
#[derive(Clone, Debug, Default)]
pub struct EventLog {
    events: Arc<Mutex<Vec<JobEvent>>>,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one event.
    pub fn push(&self, event: JobEvent) {
        self.lock().push(event);
    }

    /// Every event so far.
    pub fn snapshot(&self) -> Vec<JobEvent> {
        self.lock().clone()
    }

    /// The states `job` moved to, in order (from [`JobEvent::StateChanged`]).
    pub fn states_of(&self, job: JobId) -> Vec<JobState> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                JobEvent::StateChanged { job: j, to, .. } if *j == job => Some(*to),
                _ => None,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<JobEvent>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs `scenario` on its own thread for at most [`SCENARIO_TIME_LIMIT`]: a panic inside is
/// re-raised here, and a scenario still running at the limit fails the test (its thread is
/// abandoned, so a hung driver cannot hang the test binary's other tests).
pub fn run_bounded(name: &str, scenario: fn()) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let result = std::panic::catch_unwind(scenario);
            let _ = tx.send(result);
        })
        .expect("spawn the scenario thread");
    match rx.recv_timeout(SCENARIO_TIME_LIMIT) {
        Ok(Ok(())) => {
            let _ = thread.join();
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => {
            panic!("scenario {name} still running after {SCENARIO_TIME_LIMIT:?}: treated as hung")
        }
    }
}

/// Starts `D` with `setup`, printing the seed (shown by the test harness on failure).
pub fn start_driver<D: Driver>(setup: DriverSetup) -> D {
    eprintln!("driver {}: engine RNG seed {}", D::NAME, setup.seed_hex());
    D::start(setup)
}

/// A download job with `files` (URL, local path) added, not yet resumed.
pub fn new_download_job<D: Driver>(driver: &D, name: &str, files: &[(&str, &Path)]) -> JobId {
    let job = driver
        .create_job(name, JobType::Download)
        .expect("create_job");
    for (url, local) in files {
        driver
            .add_file(job, url, local)
            .unwrap_or_else(|e| panic!("add_file({url}, {}): {e}", local.display()));
    }
    job
}

/// `wait` for `job`, failing the scenario (with the job's info) if it takes longer than `limit`.
pub fn wait_settled<D: Driver>(driver: &D, job: JobId, limit: Duration) -> JobState {
    match driver.wait_timeout(job, limit) {
        Some(Ok(state)) => state,
        Some(Err(e)) => panic!("wait({job}) failed: {e}"),
        None => panic!(
            "job {job} not settled after {limit:?}; info: {:#?}",
            driver.info(job)
        ),
    }
}

/// `info`, which must succeed.
pub fn info<D: Driver>(driver: &D, job: JobId) -> JobInfo {
    driver
        .info(job)
        .unwrap_or_else(|e| panic!("info({job}): {e}"))
}

/// Asserts `state` is `expected`, showing the job's error when it is not.
pub fn assert_state<D: Driver>(driver: &D, job: JobId, state: JobState, expected: JobState) {
    if state != expected {
        let detail = driver
            .info(job)
            .map(|i| format!("{:?}", i.error))
            .unwrap_or_else(|e| e.to_string());
        panic!(
            "job {job} is {} where {} was expected; error: {detail}",
            state.name(),
            expected.name()
        );
    }
}

/// Polls `info` every 10 ms until `done` holds, failing after `limit` with the last info.
pub fn poll_info<D: Driver>(
    driver: &D,
    job: JobId,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&JobInfo) -> bool,
) -> JobInfo {
    let deadline = Instant::now() + limit;
    loop {
        let info = info(driver, job);
        if done(&info) {
            return info;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not reached after {limit:?}; last info: {info:#?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What [`run_to_settled`] does when it sees the job in `TRANSIENT_ERROR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTransient {
    /// Nothing: the retry timer (MinimumRetryDelay) must bring the job back.
    WaitForRetry,
    /// Call `resume` once per episode ("Resume retries immediately").
    Resume,
}

/// What [`run_to_settled`] saw.
#[derive(Debug)]
pub struct Run {
    /// The settled state (TRANSFERRED, ERROR, ACKNOWLEDGED or CANCELLED).
    pub state: JobState,
    /// The job's info at that moment.
    pub info: JobInfo,
    /// The errors seen while the job was in TRANSIENT_ERROR, one per episode.
    pub transient_errors: Vec<JobError>,
    /// True when the job was seen in TRANSIENT_ERROR, by polling or in the events.
    pub saw_transient: bool,
}

/// Polls `job` every 10 ms until it settles (or fails the scenario after `limit`), recording
/// every TRANSIENT_ERROR episode and its error, and reacting to it as `on_transient` says.
pub fn run_to_settled<D: Driver>(
    driver: &D,
    job: JobId,
    limit: Duration,
    on_transient: OnTransient,
) -> Run {
    let deadline = Instant::now() + limit;
    let mut transient_errors = Vec::new();
    let mut in_episode = false;
    loop {
        let info = info(driver, job);
        match info.state {
            JobState::TransientError => {
                if !in_episode {
                    in_episode = true;
                    if let Some(error) = &info.error {
                        transient_errors.push(error.clone());
                    }
                    if on_transient == OnTransient::Resume {
                        // The job may have left TRANSIENT_ERROR meanwhile; resume is harmless then.
                        let _ = driver.resume(job);
                    }
                }
            }
            JobState::Transferred
            | JobState::Error
            | JobState::Acknowledged
            | JobState::Cancelled => {
                let saw_transient = !transient_errors.is_empty()
                    || in_episode
                    || driver
                        .events()
                        .states_of(job)
                        .contains(&JobState::TransientError);
                return Run {
                    state: info.state,
                    info,
                    transient_errors,
                    saw_transient,
                };
            }
            _ => in_episode = false,
        }
        if Instant::now() >= deadline {
            panic!("job {job} not settled after {limit:?}; last info: {info:#?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to `limit` for `cond`; true if it held in time.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The entries of `dir`, sorted.
pub fn dir_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir({}): {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    entries
}

/// Instantiates every conformance scenario as a `#[test]` in module `$module` for driver type
/// `$driver` (which implements [`Driver`](crate::conformance::Driver)). The list below is the one
/// list of scenarios; add new ones here and in [`scenarios`](crate::conformance::scenarios).
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $driver:ty) => {
        mod $module {
            $crate::conformance_suite!(@tests $driver;
                downloads_plain_http_file,
                downloads_ranges_concatenated_in_the_order_given,
                downloads_https_file_with_test_ca,
                downloads_64_mib_file_identical_by_hash,
                downloads_16_mib_https_file_identical_by_hash,
                resumes_after_connection_dropped_mid_body,
                restarts_when_file_changes_between_attempts,
                not_found_is_error_0x80190194,
                service_unavailable_then_ok_is_transient_then_transferred,
                cancel_deletes_temp_files_and_creates_nothing,
                a_vanished_temp_file_fails_complete_and_leaves_the_previous_version,
                two_files_in_one_job_transfer_in_order,
                https_with_untrusted_certificate_fails_with_invalid_ca,
                chunked_response_downloads_completely,
                certificate_callback_is_asked_after_the_checks_and_before_any_request,
                certificate_callback_rejection_is_a_transient_error_in_context_8,
                certificate_callback_cannot_be_set_while_the_job_is_active,
                redirect_disallowed_fails_with_the_win32_status_and_names_the_target,
                https_to_http_redirect_needs_allow_https_to_http,
                notify_program_gets_literal_arguments_and_reruns_after_failure,
                each_certificate_problem_is_waived_only_by_its_own_flag,
                a_restarted_job_that_wants_a_callback_stops_until_one_is_registered,
                basic_auth_without_wrong_and_right_credentials,
                digest_auth_every_algorithm_with_userhash_and_a_stale_nonce,
                credentials_never_reach_a_redirect_target,
                crl_check_downloads_when_the_certificate_is_not_revoked,
                crl_check_fails_a_revoked_certificate_with_0x80072f8a,
                crl_check_fails_closed_when_the_crl_is_unreachable_with_0x80072f19,
                a_restarted_driver_reloads_its_jobs_and_resumes_from_the_checkpoint,
                a_corrupt_record_is_reported_and_the_other_jobs_still_run,
                a_batch_of_jobs_is_created_in_one_call_and_survives_a_restart,
                a_bad_file_in_a_batch_is_named_and_leaves_no_job_behind,
            );
        }
    };
    (@tests $driver:ty; $($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                $crate::conformance::run_bounded(
                    concat!(stringify!($scenario)),
                    $crate::conformance::scenarios::$scenario::<$driver>,
                );
            }
        )*
    };
}
