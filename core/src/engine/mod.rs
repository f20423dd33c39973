//! The [`Engine`]: every job, the scheduler, the connections, and the one input/output loop.
//!
//! The engine is split by concern into sibling files, all `impl Engine` blocks:
//! - `commands.rs`: the application's calls on a job ([`JobMut`]);
//! - `view.rs`: read access ([`JobView`], [`JobInfo`], [`FileInfo`]);
//! - `transfer.rs`: the current file of a running job, its temp file and its failures;
//! - `connection.rs`: the connection pool, requests, and what connections report;
//! - `response.rs`: what a response means for the file, and its body;
//! - `failure.rs`: turning faults into job errors, transient or fatal;
//! - `schedule.rs`: which jobs hold transfer slots, and every timer;
//! - `checkpoint.rs`: syncing a temp file before its progress is persisted;
//! - `restore.rs`: putting a job back from its record after a restart.
//!
//! State changes go through [`Engine::apply`], the only caller of [`transition`]; it is the one
//! place that writes a job's state.

mod auth;
mod bulk;
mod checkpoint;
mod commands;
mod connection;
mod failure;
mod kerberos;
mod live;
mod notify_cmd;
mod proxy;
mod ranged;
mod response;
mod restore;
mod revocation;
mod schedule;
mod transfer;
mod validation;
mod view;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::auth::CredentialSet;
use crate::codes;
use crate::config::Config;
use crate::error::{BitsError, JobError};
use crate::ids::{ConnId, FileIndex, JobId};
use crate::input::Input;
use crate::job::file::JobFile;
use crate::job::headers::CustomHeaders;
use crate::job::notify_cmd::NotifyCmdLine;
use crate::job::state::transition;
use crate::job::{
    Caller, JobPriority, JobState, JobTimes, JobType, NotifyFlags, Outcome, Owner, SecurityFlags,
    Trigger,
};
use crate::output::{Action, JobEvent, Output};
use crate::proxy::ProxySettings;
use crate::time::Timestamp;
use crate::tls::{Crl, CrlCache, TrustStore};

pub use self::commands::JobMut;
pub use self::view::{FileInfo, JobInfo, JobView};

use self::auth::ServerAuth;
use self::connection::Conn;
use self::live::LiveJobs;
use self::notify_cmd::NotifyRun;
use self::revocation::CrlWait;
use self::transfer::Fetch;
use self::validation::Validation;

/// BITS' floor for MinimumRetryDelay, in seconds.
const MIN_RETRY_DELAY_FLOOR: u32 = 5;
/// BITS' default MinimumRetryDelay, in seconds.
const DEFAULT_MIN_RETRY_DELAY: u32 = 600;
/// BITS' default NoProgressTimeout, in seconds (14 days).
const DEFAULT_NO_PROGRESS_TIMEOUT: u32 = 1_209_600;
/// BITS' default MaxDownloadTime, in seconds (90 days).
const DEFAULT_MAX_DOWNLOAD_TIME: u32 = 7_776_000;
/// `JobModification` for transferred bytes is sent at most this often per job.
const MODIFICATION_EVENT_INTERVAL: Duration = Duration::from_secs(1);

/// The sans-IO transfer engine. See the crate documentation for the loop a driver runs.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    trust: TrustStore,
    rng: ChaCha20Rng,
    now: Timestamp,
    jobs: BTreeMap<JobId, Job>,
    /// How many of `jobs` are not final, in all and per owner (the job limits).
    live: LiveJobs,
    /// Ids a new job must not get: records the store holds but could not restore.
    reserved_ids: BTreeSet<JobId>,
    /// The jobs the scheduler and the timers look at (see `schedule::needs_attention`), so that
    /// thousands of idle jobs cost nothing per input. Follows every `Persist` and `Forget`: a
    /// change that matters to it is a change to the record.
    attention: BTreeSet<JobId>,
    conns: BTreeMap<ConnId, Conn>,
    /// CRLs: configured and fetched (`BG_SSL_ENABLE_CRL_CHECK`).
    crls: CrlCache,
    /// Connections whose chain passed and that wait for CRLs before their request.
    crl_waits: BTreeMap<ConnId, CrlWait>,
    next_conn: u64,
    next_seq: u64,
    out: VecDeque<Output>,
    needs_schedule: bool,
}

/// A job's durable record: what the store keeps and a restart reloads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub(crate) id: JobId,
    pub(crate) owner: Owner,
    pub(crate) display_name: String,
    pub(crate) description: String,
    pub(crate) job_type: JobType,
    pub(crate) priority: JobPriority,
    pub(crate) state: JobState,
    pub(crate) files: Vec<JobFile>,
    pub(crate) times: JobTimes,
    pub(crate) error: Option<JobError>,
    pub(crate) error_count: u32,
    pub(crate) notify_flags: NotifyFlags,
    pub(crate) minimum_retry_delay: u32,
    pub(crate) no_progress_timeout: u32,
    pub(crate) maximum_download_time: u32,
    /// When the job last made progress (or was resumed): the no-progress timer's origin.
    pub(crate) last_progress: Timestamp,
    /// When a TRANSIENT_ERROR is retried.
    pub(crate) retry_at: Option<Timestamp>,
    /// Time spent CONNECTING or TRANSFERRING since the last resume (MaxDownloadTime).
    pub(crate) download_time_used_ms: u64,
    /// `SetSecurityFlags`: certificate checks, revocation, redirect policy.
    #[serde(default)]
    pub(crate) security_flags: SecurityFlags,
    /// The app registered a server-certificate validation callback (the callback itself is
    /// never persisted: after a restart the app registers it again).
    #[serde(default)]
    pub(crate) wants_certificate_validation: bool,
    /// `SetCustomHeaders` (owner only; values never printed).
    #[serde(default)]
    pub(crate) custom_headers: Option<CustomHeaders>,
    /// `MakeCustomHeadersWriteOnly` was called (irreversible).
    #[serde(default)]
    pub(crate) custom_headers_write_only: bool,
    /// `SetNotifyCmdLine`.
    #[serde(default)]
    pub(crate) notify_cmd_line: Option<NotifyCmdLine>,
    /// A run of the command line that is owed (durable: a restart still runs it).
    #[serde(default)]
    pub(crate) notify_run: Option<NotifyRun>,
    /// `SetCredentials`: one slot per target and scheme (owner only; secrets never printed).
    #[serde(default)]
    pub(crate) credentials: CredentialSet,
    /// `SetProxySettings` (PRECONFIG by default: the environment).
    #[serde(default)]
    pub(crate) proxy: ProxySettings,
}

impl JobRecord {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }
}

/// A job: its durable record plus what only lives while the engine runs.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) rec: JobRecord,
    /// The request in flight for the current file.
    pub(crate) fetch: Option<Fetch>,
    /// When the job entered CONNECTING/TRANSFERRING (for MaxDownloadTime).
    pub(crate) running_since: Option<Timestamp>,
    /// When the job's current round-robin slice began.
    pub(crate) slice_started: Option<Timestamp>,
    /// Position in the round-robin order among jobs of its priority (lower goes first).
    pub(crate) seq: u64,
    /// Set between `complete` and the last commit result.
    pub(crate) completing: Option<Completing>,
    /// When the last `JobModification` for bytes was sent.
    pub(crate) last_modification_event: Option<Timestamp>,
    /// Bytes written since the last checkpoint.
    pub(crate) bytes_since_persist: u64,
    /// The certificate validation callback's registration and accepted servers.
    pub(crate) validation: Validation,
    /// The notification program is running, for the event of this state.
    pub(crate) notify_running: Option<JobState>,
    /// How the job answers the origins that challenged it.
    pub(crate) server_auth: ServerAuth,
    /// When the running file's last checkpoint was asked for (None: not since it started).
    pub(crate) last_checkpoint: Option<Timestamp>,
    /// The `SyncFile` awaiting its `FileSynced`: (file, len).
    pub(crate) sync_pending: Option<(FileIndex, u64)>,
}

impl Job {
    /// A job around `rec` with nothing running, at round-robin position `seq`.
    pub(crate) fn new(rec: JobRecord, seq: u64) -> Self {
        Self {
            rec,
            fetch: None,
            running_since: None,
            slice_started: None,
            seq,
            completing: None,
            last_modification_event: None,
            bytes_since_persist: 0,
            last_checkpoint: None,
            sync_pending: None,
            validation: Validation::default(),
            notify_running: None,
            server_auth: ServerAuth::default(),
        }
    }
}

/// Progress of `complete`: commits not yet reported, and whether one failed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Completing {
    pub(crate) pending: u32,
    pub(crate) failed: bool,
}

impl Engine {
    /// An engine with no jobs, whose clock starts at `now`.
    ///
    /// Trust anchors in `config` that do not parse are skipped (see [`Engine::rejected_anchors`]).
    pub fn new(config: Config, now: Timestamp) -> Self {
        let (trust, _rejected) = TrustStore::new(&config.trust_anchors);
        let crls = config
            .crl_files
            .iter()
            .filter_map(|der| Crl::from_der(der).ok())
            .collect();
        Self {
            rng: ChaCha20Rng::from_seed(config.rng_seed),
            trust,
            config,
            now,
            jobs: BTreeMap::new(),
            live: LiveJobs::default(),
            reserved_ids: BTreeSet::new(),
            attention: BTreeSet::new(),
            conns: BTreeMap::new(),
            crls: CrlCache::new(crls),
            crl_waits: BTreeMap::new(),
            next_conn: 1,
            next_seq: 1,
            out: VecDeque::new(),
            needs_schedule: false,
        }
    }

    /// Trust anchors from the config that could not be parsed: `(index, reason)`.
    pub fn rejected_anchors(&self) -> Vec<(usize, String)> {
        TrustStore::new(&self.config.trust_anchors).1
    }

    /// CRLs from the config that could not be parsed: `(index, reason)`. Drivers check their
    /// files up front ([`Crl::from_der`]); this is for CRLs handed in some other way.
    pub fn rejected_crls(&self) -> Vec<(usize, String)> {
        let parsed = self.config.crl_files.iter().map(|der| Crl::from_der(der));
        parsed
            .enumerate()
            .filter_map(|(index, crl)| crl.err().map(|e| (index, e.to_string())))
            .collect()
    }

    /// The engine's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The latest time the engine has seen.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Feed one fact. Then drain [`Engine::poll_output`] until it returns `Output::Timeout`.
    ///
    /// Feed an input only once the outputs of the previous mutation are drained (and their
    /// actions performed): a fact about the world must come after the actions that shaped it.
    /// Debug builds check this.
    pub fn handle(&mut self, input: Input) {
        debug_assert!(
            self.out.is_empty(),
            "Engine::handle called with {} outputs not yet drained by poll_output",
            self.out.len()
        );
        self.advance_clock(input.now());
        match input {
            Input::Timeout { .. } => self.handle_timers(),
            Input::Connected {
                conn,
                peer_certificates,
                ..
            } => self.handle_connected(conn, peer_certificates),
            Input::ProgramExited { job, exit, .. } => self.handle_program_exited(job, exit),
            Input::CertificateVerdict { conn, verdict, .. } => {
                self.handle_certificate_verdict(conn, verdict)
            }
            Input::TlsStarted {
                conn,
                peer_certificates,
                ..
            } => self.handle_tls_started(conn, peer_certificates),
            Input::ConnectFailed { conn, error, .. } => self.handle_connect_failed(conn, error),
            Input::Received { conn, data, .. } => self.handle_received(conn, data),
            Input::Closed { conn, .. } => self.handle_closed(conn),
            Input::ConnectionFailed { conn, error, .. } => {
                self.handle_connection_failed(conn, error)
            }
            Input::TempOpened { job, file, len, .. } => self.handle_temp_opened(job, file, len),
            Input::FileFailed {
                job,
                file,
                op,
                error,
                ..
            } => self.handle_file_failed(job, file, op, error),
            Input::FileSynced { job, file, len, .. } => self.handle_file_synced(job, file, len),
            Input::FileCommitted { job, file, .. } => self.handle_file_committed(job, file),
            Input::CrlFetched { url, result, .. } => self.handle_crl_fetched(&url, result),
            Input::SecurityToken {
                job,
                conn,
                target,
                result,
                ..
            } => self.handle_security_token(job, conn, target, result),
        }
        self.schedule_if_needed();
    }

    /// The next output; `Output::Timeout` when there is nothing more to do now.
    pub fn poll_output(&mut self) -> Output {
        if let Some(out) = self.out.pop_front() {
            return out;
        }
        Output::Timeout(self.next_deadline())
    }

    /// `CreateJob`: a new job in SUSPENDED, owned by `owner`.
    pub fn create_job(
        &mut self,
        display_name: &str,
        job_type: JobType,
        owner: Owner,
    ) -> Result<JobId, BitsError> {
        if job_type != JobType::Download {
            return Err(BitsError::new(
                codes::E_NOTIMPL,
                "only download jobs are implemented",
            ));
        }
        commands::check_display_name(display_name)?;
        let (live, owned) = (self.live.total(), self.live.of(&owner));
        if live >= self.config.max_jobs {
            return Err(BitsError::new(
                codes::BG_E_TOO_MANY_JOBS_PER_MACHINE,
                format!(
                    "there are already {live} jobs (the limit is {})",
                    self.config.max_jobs
                ),
            ));
        }
        if owned >= self.config.max_jobs_per_owner {
            return Err(BitsError::new(
                codes::BG_E_TOO_MANY_JOBS_PER_USER,
                format!(
                    "{owner} already has {owned} jobs (the limit is {})",
                    self.config.max_jobs_per_owner
                ),
            ));
        }
        let id = loop {
            let hi = u128::from(self.rng.next_u64());
            let id = JobId((hi << 64) | u128::from(self.rng.next_u64()));
            if !self.jobs.contains_key(&id) && !self.reserved_ids.contains(&id) {
                break id;
            }
        };
        let now = self.now;
        let rec = JobRecord {
            id,
            owner,
            display_name: display_name.to_string(),
            description: String::new(),
            job_type,
            priority: JobPriority::Normal,
            state: JobState::Suspended,
            files: Vec::new(),
            times: JobTimes {
                creation: now,
                modification: now,
                transfer_completion: None,
            },
            error: None,
            error_count: 0,
            notify_flags: NotifyFlags::DEFAULT,
            minimum_retry_delay: DEFAULT_MIN_RETRY_DELAY,
            no_progress_timeout: DEFAULT_NO_PROGRESS_TIMEOUT,
            maximum_download_time: DEFAULT_MAX_DOWNLOAD_TIME,
            last_progress: now,
            retry_at: None,
            download_time_used_ms: 0,
            security_flags: SecurityFlags::default(),
            wants_certificate_validation: false,
            custom_headers: None,
            custom_headers_write_only: false,
            notify_cmd_line: None,
            notify_run: None,
            credentials: CredentialSet::new(),
            proxy: ProxySettings::default(),
        };
        let seq = self.take_seq();
        self.live.add(&rec.owner);
        self.jobs.insert(id, Job::new(rec, seq));
        self.push_action(Action::Persist { job: id });
        Ok(id)
    }

    /// Read access to a job (`BG_E_NOT_FOUND` if there is none with that id).
    pub fn job(&self, id: JobId) -> Result<JobView<'_>, BitsError> {
        match self.jobs.get(&id) {
            Some(job) => Ok(JobView::new(job)),
            None => Err(not_found(id)),
        }
    }

    /// What `complete` returns once the driver has performed its commits: drivers call it in
    /// the command after `complete`'s. `Ok` when every file is in place (the job is
    /// ACKNOWLEDGED, or already forgotten); else, as BITS' `Complete` returns the rename's
    /// error, the error of the file that could not be moved into place (the job stays
    /// TRANSFERRED).
    pub fn commit_result(&self, id: JobId) -> Result<(), BitsError> {
        let Some(job) = self.jobs.get(&id) else {
            return Ok(());
        };
        match JobView::new(job).commit_error() {
            Some(error) => Err(BitsError::new(error.code, error.description.clone())),
            None => Ok(()),
        }
    }

    /// Commands on a job (`BG_E_NOT_FOUND` if there is none with that id), as its owner: for
    /// the application that embeds the engine.
    pub fn job_mut(&mut self, id: JobId) -> Result<JobMut<'_>, BitsError> {
        if !self.jobs.contains_key(&id) {
            return Err(not_found(id));
        }
        Ok(JobMut::new(self, id, None))
    }

    /// Read access on behalf of `caller`: `E_ACCESSDENIED` unless it owns the job or is an
    /// administrator.
    pub fn job_as(&self, id: JobId, caller: &Caller) -> Result<JobView<'_>, BitsError> {
        let view = self.job(id)?;
        check_access(view.owner(), id, caller)?;
        Ok(view.for_caller(caller))
    }

    /// Commands on behalf of `caller`: `E_ACCESSDENIED` unless it owns the job or is an
    /// administrator; credentials and custom headers are the owner's alone.
    pub fn job_mut_as(&mut self, id: JobId, caller: &Caller) -> Result<JobMut<'_>, BitsError> {
        check_access(self.job(id)?.owner(), id, caller)?;
        Ok(JobMut::new(self, id, Some(caller.clone())))
    }

    /// `EnumJobs` on behalf of `caller`: its own live jobs, or every user's with `all_users`
    /// (`BG_JOB_ENUM_ALL_USERS`, administrators only, else `E_ACCESSDENIED`).
    pub fn jobs_as(&self, caller: &Caller, all_users: bool) -> Result<Vec<JobId>, BitsError> {
        if all_users && !caller.admin {
            return Err(BitsError::new(
                codes::E_ACCESSDENIED,
                format!(
                    "{} is not an administrator: only its own jobs can be listed",
                    caller.owner
                ),
            ));
        }
        let mut ids = self.jobs();
        if !all_users {
            ids.retain(|id| self.jobs[id].rec.owner == caller.owner);
        }
        Ok(ids)
    }

    /// The ids of every job not in a final state, oldest first (`EnumJobs`).
    pub fn jobs(&self) -> Vec<JobId> {
        let mut live: Vec<&Job> = self
            .jobs
            .values()
            .filter(|j| !j.rec.state.is_final())
            .collect();
        live.sort_by_key(|j| (j.rec.times.creation, j.seq));
        live.into_iter().map(|j| j.rec.id).collect()
    }

    /// The durable record of a job, for [`Action::Persist`].
    pub fn job_record(&self, id: JobId) -> Option<&JobRecord> {
        self.jobs.get(&id).map(|j| &j.rec)
    }

    // ---- internals shared by the sibling files ----

    fn advance_clock(&mut self, now: Timestamp) {
        // Time that goes backwards (a wall-clock step) is ignored: the engine keeps the latest.
        self.now = self.now.max(now);
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn push_action(&mut self, action: Action) {
        if let Action::Persist { job } | Action::Forget { job } = action {
            self.reindex(job);
        }
        self.out.push_back(Output::Action(action));
    }

    fn push_event(&mut self, event: JobEvent) {
        self.out.push_back(Output::Event(event));
    }

    /// Sends a BITS callback event if the job's notify flags ask for it.
    fn notify(&mut self, id: JobId, flag: u32, event: JobEvent) {
        let wanted = self
            .jobs
            .get(&id)
            .is_some_and(|j| j.rec.notify_flags.wants(flag));
        if wanted {
            self.push_event(event);
        }
    }

    /// The job was modified by a command: bump its time, tell the app, persist it.
    fn touch(&mut self, id: JobId) {
        if let Some(job) = self.jobs.get_mut(&id) {
            job.rec.times.modification = self.now;
        }
        self.notify(
            id,
            NotifyFlags::JOB_MODIFICATION,
            JobEvent::JobModification { job: id },
        );
        self.push_action(Action::Persist { job: id });
    }

    fn job_state(&self, id: JobId) -> Option<JobState> {
        self.jobs.get(&id).map(|j| j.rec.state)
    }

    /// Applies a trigger through the transition table; the only writer of a job's state.
    fn apply(&mut self, id: JobId, trigger: Trigger) -> Outcome {
        let Some(from) = self.job_state(id) else {
            return Outcome::Ignore;
        };
        let outcome = transition(from, trigger);
        if let Outcome::Move(to) = outcome {
            if to != from {
                self.enter_state(id, from, to);
            }
        }
        outcome
    }

    fn enter_state(&mut self, id: JobId, from: JobState, to: JobState) {
        let now = self.now;
        if !to.is_running() {
            self.stop_fetch(id);
        }
        // Invariant: `apply` only calls this for a job it just found.
        let job = self.jobs.get_mut(&id).expect("job exists");
        job.rec.state = to;
        if to.is_final() && !from.is_final() {
            self.live.remove(&job.rec.owner);
        }
        job.rec.times.modification = now;
        if from.is_running() && !to.is_running() {
            if let Some(since) = job.running_since.take() {
                let ran = now.saturating_since(since).as_millis();
                job.rec.download_time_used_ms = job
                    .rec
                    .download_time_used_ms
                    .saturating_add(u64::try_from(ran).unwrap_or(u64::MAX));
            }
            job.slice_started = None;
        }
        if !from.is_running() && to.is_running() {
            job.running_since = Some(now);
            job.slice_started = Some(now);
        }
        if to != JobState::TransientError {
            job.rec.retry_at = None;
        }
        match to {
            // BITS: the error object lasts until the next TRANSFERRING.
            JobState::Transferring => job.rec.error = None,
            JobState::Transferred => job.rec.times.transfer_completion = Some(now),
            _ => {}
        }
        let error = job.rec.error.clone();
        self.push_event(JobEvent::StateChanged { job: id, from, to });
        match to {
            JobState::Transferred => self.notify(
                id,
                NotifyFlags::JOB_TRANSFERRED,
                JobEvent::JobTransferred { job: id },
            ),
            JobState::Error => {
                if let Some(error) = error {
                    self.notify(
                        id,
                        NotifyFlags::JOB_ERROR,
                        JobEvent::JobError { job: id, error },
                    );
                }
            }
            // BITS sends no JobModification for the change to ERROR or TRANSFERRED.
            _ => self.notify(
                id,
                NotifyFlags::JOB_MODIFICATION,
                JobEvent::JobModification { job: id },
            ),
        }
        self.owe_notify_run(id, to);
        if to.is_final() && to != JobState::Cancelled {
            self.push_action(Action::Forget { job: id });
        } else {
            // CANCELLED is persisted until `cancel` has deleted the temp files (then it forgets
            // the job): a crash in between leaves a record that a restart finishes cancelling.
            self.push_action(Action::Persist { job: id });
        }
        self.needs_schedule = true;
    }
}

fn check_access(owner: &Owner, id: JobId, caller: &Caller) -> Result<(), BitsError> {
    if caller.admin || *owner == caller.owner {
        return Ok(());
    }
    Err(BitsError::new(
        codes::E_ACCESSDENIED,
        format!(
            "job {id} belongs to another user; {} may not use it",
            caller.owner
        ),
    ))
}

fn not_found(id: JobId) -> BitsError {
    BitsError::new(codes::BG_E_NOT_FOUND, format!("there is no job {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobType;

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not yet drained")]
    fn an_input_before_the_outputs_are_drained_is_refused_in_debug_builds() {
        let mut engine = Engine::new(Config::new([1; 32]), Timestamp::from_secs(10));
        let _ = engine.create_job("j", JobType::Download, Owner("o".into()));
        // create_job queued a Persist action that nobody drained.
        engine.handle(Input::Timeout {
            now: Timestamp::from_secs(11),
        });
    }

    #[test]
    fn a_drained_engine_accepts_inputs_and_reports_no_timer_when_idle() {
        let mut engine = Engine::new(Config::new([1; 32]), Timestamp::from_secs(10));
        let job = engine
            .create_job("j", JobType::Download, Owner("o".into()))
            .unwrap();
        assert!(
            matches!(engine.poll_output(), Output::Action(Action::Persist { job: j }) if j == job)
        );
        assert!(matches!(engine.poll_output(), Output::Timeout(None)));
        engine.handle(Input::Timeout {
            now: Timestamp::from_secs(11),
        });
        assert!(matches!(engine.poll_output(), Output::Timeout(None)));
        assert_eq!(engine.now(), Timestamp::from_secs(11));
    }
}
