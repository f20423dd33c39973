//! [`Host`]: the engine and everything a driver does without sockets — the drain loop, the file
//! actions, the store, the `wait` waiters. A driver implements [`Io`] and feeds the host.
//!
//! The loop every driver runs (DESIGN.md, "The drivers"):
//!
//! 0. [`Host::new`] opens the store and restores every job in it ([`Host::broken_records`]
//!    lists those it could not);
//! 1. start: [`Host::start`], then repeatedly
//! 2. wait for the first of: a connection's input → [`Host::handle`]; an application command →
//!    [`Host::call`]; [`Host::sleep_for`] elapsing → [`Host::handle_wake`].
//!
//! Each of those feeds the engine and drains it until `Output::Timeout`: network actions go to
//! the [`Io`], file actions to [`TempFiles`] (their results are fed back once the engine is
//! drained), `Persist`/`Forget` to the store, events to waiters and then to [`Io::publish`].
//!
//! 3. after a batch of those (whatever else was ready, up to [`BATCH`]), [`Host::flush`].
//!
//! **Group commit.** `Persist`/`Forget` are gathered (the last word per job) and written in one
//! store transaction by [`Host::flush`]; a command's answer ([`Host::reply`]) is held until the
//! writes before it are committed, so a caller never hears of a change that a crash could
//! still undo, and commands that arrive together share one sync. The gathered writes are also
//! committed before a temp file is renamed or deleted, so a record never lags behind those.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::time::Duration;

use backhaul_core::proxy::ProxyEnvironment;
use backhaul_core::{
    Action, BitsError, ConnId, Engine, FileIndex, FileOp, FileRange, Input, IoFailure, JobEvent,
    JobId, JobState, JobType, NewJob, Output, Owner, Timestamp,
};
use backhaul_store::JobStore;
use bytes::Bytes;

use crate::clock;
use crate::config::{DriverConfig, DriverError};
use crate::files::{check_local_name, TempFiles};
use crate::gss::{GssContexts, TokenRequest};
use crate::program::{run_program, RunAs};
use crate::reload::{open_store, reload, BrokenRecord};
use crate::tls::{load_crl_files, load_trust_anchors};
use crate::validation::CertificateRequest;

/// What differs between drivers: connections and how events reach the application.
pub trait Io {
    /// `Action::Connect`: start connecting in the background; the outcome comes back as an
    /// input. An error means the attempt could not even start (reported as `ConnectFailed`).
    fn connect(
        &mut self,
        conn: ConnId,
        host: String,
        port: u16,
        tls_server_name: Option<String>,
    ) -> Result<(), IoFailure>;
    /// `Action::StartTls`: run a TLS handshake for `server_name` over the open plain connection
    /// (same client configuration as `connect`), then report `Input::TlsStarted` with the chain,
    /// or `ConnectionFailed` (kind `TlsHandshake`). An error means it could not even start
    /// (reported as `ConnectionFailed`).
    fn start_tls(&mut self, conn: ConnId, server_name: String) -> Result<(), IoFailure>;
    /// `Action::Send`: write (or queue) the bytes. An error is reported as `ConnectionFailed`;
    /// the driver has closed the connection.
    fn send(&mut self, conn: ConnId, data: Bytes) -> Result<(), IoFailure>;
    /// `Action::Close`: close the connection and forget it.
    fn close(&mut self, conn: ConnId);
    /// Hand an event to the application's subscribers.
    fn publish(&mut self, event: JobEvent);
    /// `Action::ValidateCertificate`: run the job's validation callback off the engine's
    /// thread or task and feed [`CertificateRequest::verdict`] back as an input. A job with no
    /// callback held by the driver is answered with
    /// `BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED` at once.
    fn validate_certificate(&mut self, request: CertificateRequest);
    /// Run blocking work (a notification program, a GSS-API step) off the engine's thread or
    /// task and feed the input it returns.
    fn run_off_thread(&mut self, work: OffThread);
    /// `Action::FetchCrl`: fetch the CRL away from the engine (with
    /// [`crl_fetch::fetch`](crate::crl_fetch::fetch)) and feed `Input::CrlFetched` with the
    /// same `url` like any connection's input. Must not block the engine.
    fn fetch_crl(&mut self, url: String);
}

/// Blocking work whose result is an input for the engine.
pub type OffThread = Box<dyn FnOnce() -> Input + Send>;

/// Told the job's state once it is settled (see [`JobState::is_settled`]).
pub type Waiter = Box<dyn FnOnce(JobState) + Send>;

/// An application command as a driver ships it to its engine thread or task.
pub type Command<I> = Box<dyn FnOnce(&mut Host, &mut I) + Send>;

/// An answer to a command, sent once the store holds what the command changed.
pub type Reply = Box<dyn FnOnce() + Send>;

/// How many ready commands and inputs a driver handles before [`Host::flush`]: the most one
/// store transaction groups (bounded, so a flood of inputs cannot hold answers back for long).
/// Only commands are grouped: an input that leaves writes behind (a checkpoint, a state change)
/// ends the batch, so a checkpoint is committed as soon as it is taken, not 64 body chunks
/// later (measured: 25 MiB re-fetched after a kill -9 at 512 MiB/s otherwise).
pub const BATCH: usize = 64;

/// The engine and everything around it that is not a socket.
pub struct Host {
    engine: Engine,
    files: TempFiles,
    store: Box<dyn JobStore>,
    /// Records the store held that could not be restored.
    broken: Vec<BrokenRecord>,
    owner: Owner,
    /// Connections core asked for and has neither closed nor heard the end of: inputs about
    /// any other connection are late and dropped.
    live: HashSet<ConnId>,
    waiters: HashMap<JobId, Vec<Waiter>>,
    /// Results of file actions, fed once the engine is drained.
    results: VecDeque<Input>,
    deadline: Option<Timestamp>,
    /// Store writes asked for and not yet committed, the last word per job: `true` saves the
    /// job's record as it is at the commit, `false` removes it.
    unsaved: BTreeMap<JobId, bool>,
    /// Answers held until the store writes before them are committed.
    held: Vec<Reply>,
    /// Kerberos client contexts between the legs of their exchanges.
    gss: GssContexts,
}

impl Host {
    /// Load the trust anchors into the engine's config, open the store, create the engine and
    /// restore every job the store holds (oldest first).
    pub fn new(config: DriverConfig) -> Result<Self, DriverError> {
        let DriverConfig {
            mut core,
            ca_files,
            use_system_roots,
            crl_files,
            store,
            owner,
        } = config;
        core.trust_anchors
            .extend(load_trust_anchors(&ca_files, use_system_roots)?);
        if core.proxy_environment.is_empty() {
            core.proxy_environment = proxy_environment();
        }
        core.crl_files.extend(load_crl_files(&crl_files)?);
        let mut engine = Engine::new(core, clock::now());
        for (index, reason) in engine.rejected_anchors() {
            tracing::warn!("trust anchor #{index} skipped by the engine: {reason}");
        }
        let store = open_store(store)?;
        let broken = reload(&mut engine, store.as_ref())?;
        Ok(Self {
            engine,
            files: TempFiles::new(),
            store,
            broken,
            owner,
            live: HashSet::new(),
            waiters: HashMap::new(),
            results: VecDeque::new(),
            deadline: None,
            unsaved: BTreeMap::new(),
            held: Vec::new(),
            gss: GssContexts::new(),
        })
    }

    /// Drain whatever the new engine has to do (the restored records), then let it schedule
    /// the restored jobs; call once before the loop.
    pub fn start(&mut self, io: &mut impl Io) {
        self.drain(io);
        self.handle(Input::Timeout { now: clock::now() }, io);
    }

    /// Records the store held that could not be restored (corrupt, from a newer version).
    pub fn broken_records(&self) -> &[BrokenRecord] {
        &self.broken
    }

    /// A fact from one of the driver's connections.
    pub fn handle(&mut self, input: Input, io: &mut impl Io) {
        self.feed(input);
        self.drain(io);
    }

    /// The driver's timer fired: feed `Input::Timeout` if the deadline has passed.
    pub fn handle_wake(&mut self, io: &mut impl Io) {
        if self.deadline.is_some_and(clock::is_due) {
            self.handle(Input::Timeout { now: clock::now() }, io);
        }
    }

    /// How long the driver may wait for input before calling [`Host::handle_wake`]; `None`:
    /// no timer is armed.
    pub fn sleep_for(&self) -> Option<Duration> {
        self.deadline.map(clock::sleep_for)
    }

    /// The engine's next deadline.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.deadline
    }

    /// Run an application command: the engine hears the current time first, then `f` runs,
    /// then every resulting action is performed before this returns (the store writes are
    /// gathered: answer through [`Host::reply`]).
    pub fn call<I: Io, R>(&mut self, io: &mut I, f: impl FnOnce(&mut Self) -> R) -> R {
        self.handle(Input::Timeout { now: clock::now() }, io);
        let result = f(self);
        self.drain(io);
        result
    }

    /// Answer a command once everything asked of the store so far is committed: now, if it is.
    pub fn reply(&mut self, reply: impl FnOnce() + Send + 'static) {
        if self.unsaved.is_empty() && self.held.is_empty() {
            reply();
        } else {
            self.held.push(Box::new(reply));
        }
    }

    /// Whether store writes are gathered and not yet committed.
    pub fn has_unsaved(&self) -> bool {
        !self.unsaved.is_empty()
    }

    /// Commit the gathered store writes in one transaction, then send the answers held for
    /// them. Drivers call it after each batch of commands and inputs.
    pub fn flush(&mut self) {
        self.commit_store();
        for reply in self.held.drain(..) {
            reply();
        }
    }

    /// The engine, for queries.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for commands (use inside [`Host::call`]).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// `CreateJob`, owned by the configured owner.
    pub fn create_job(
        &mut self,
        display_name: &str,
        job_type: JobType,
    ) -> Result<JobId, BitsError> {
        self.engine
            .create_job(display_name, job_type, self.owner.clone())
    }

    /// [`Engine::create_jobs`], owned by the configured owner, after [`check_local_name`] of
    /// every file: a batch of jobs created whole or not at all, whose records a driver commits
    /// together (one command, one store transaction).
    pub fn create_jobs(&mut self, jobs: &[NewJob]) -> Result<Vec<JobId>, BitsError> {
        for (index, job) in jobs.iter().enumerate() {
            for (file, new) in job.files.iter().enumerate() {
                check_local_name(&new.local).map_err(|e| job.refusal(index, Some(file), &e))?;
            }
        }
        self.engine.create_jobs(jobs, self.owner.clone())
    }

    /// `AddFile`, after [`check_local_name`].
    pub fn add_file(
        &mut self,
        job: JobId,
        url: &str,
        local: &Path,
    ) -> Result<FileIndex, BitsError> {
        check_local_name(local)?;
        self.engine.job_mut(job)?.add_file(url, local)
    }

    /// `AddFileWithRanges`, with the same local-name check as `add_file`.
    pub fn add_file_with_ranges(
        &mut self,
        job: JobId,
        url: &str,
        local: &Path,
        ranges: &[FileRange],
    ) -> Result<FileIndex, BitsError> {
        check_local_name(local)?;
        self.engine
            .job_mut(job)?
            .add_file_with_ranges(url, local, ranges)
    }

    /// Tell `waiter` the job's state once it is settled: now if it already is, else on the
    /// `StateChanged` event that settles it. Registration and the check happen in one engine
    /// turn, so no event falls between them.
    pub fn wait(&mut self, job: JobId, waiter: Waiter) -> Result<(), BitsError> {
        let state = self.engine.job(job)?.state();
        if state.is_settled() {
            waiter(state);
        } else {
            self.waiters.entry(job).or_default().push(waiter);
        }
        Ok(())
    }

    fn feed(&mut self, input: Input) {
        let conn = match &input {
            Input::Connected { conn, .. }
            | Input::TlsStarted { conn, .. }
            | Input::Received { conn, .. } => Some((*conn, false)),
            Input::ConnectFailed { conn, .. }
            | Input::Closed { conn, .. }
            | Input::ConnectionFailed { conn, .. } => Some((*conn, true)),
            _ => None,
        };
        if let Some((conn, last)) = conn {
            let live = if last {
                self.live.remove(&conn)
            } else {
                self.live.contains(&conn)
            };
            if !live {
                return; // late: core closed it, or its end was already reported
            }
        }
        self.engine.handle(input);
    }

    /// Drain the engine until it has nothing more to do now, feeding file results back.
    fn drain(&mut self, io: &mut impl Io) {
        loop {
            match self.engine.poll_output() {
                Output::Action(action) => self.perform(action, io),
                Output::Event(event) => self.dispatch(event, io),
                Output::Timeout(deadline) => {
                    self.deadline = deadline;
                    match self.results.pop_front() {
                        Some(input) => self.feed(input),
                        None => return,
                    }
                }
            }
        }
    }

    fn perform(&mut self, action: Action, io: &mut impl Io) {
        let result = match action {
            Action::Connect {
                conn,
                host,
                port,
                tls_server_name,
            } => {
                self.live.insert(conn);
                let started = io.connect(conn, host, port, tls_server_name);
                started.err().map(|error| Input::ConnectFailed {
                    now: clock::now(),
                    conn,
                    error,
                })
            }
            Action::StartTls { conn, server_name } => {
                io.start_tls(conn, server_name)
                    .err()
                    .map(|error| Input::ConnectionFailed {
                        now: clock::now(),
                        conn,
                        error,
                    })
            }
            Action::Send { conn, data } => {
                io.send(conn, data)
                    .err()
                    .map(|error| Input::ConnectionFailed {
                        now: clock::now(),
                        conn,
                        error,
                    })
            }
            Action::Close { conn } => {
                self.live.remove(&conn);
                self.gss.close(conn);
                io.close(conn);
                None
            }
            Action::OpenTemp {
                job,
                file,
                path,
                create,
            } => Some(match self.open_temp(job, file, &path, create) {
                Ok(len) => Input::TempOpened {
                    now: clock::now(),
                    job,
                    file,
                    len,
                },
                Err(error) => file_failed(job, file, FileOp::OpenTemp, error),
            }),
            Action::WriteFile {
                job,
                file,
                offset,
                data,
            } => {
                let done = self.files.write(job, file, offset, &data);
                done.err()
                    .map(|error| file_failed(job, file, FileOp::Write, error))
            }
            Action::TruncateFile { job, file, len } => {
                let done = self.files.truncate(job, file, len);
                done.err()
                    .map(|error| file_failed(job, file, FileOp::Write, error))
            }
            Action::SyncFile { job, file, len } => Some(match self.files.sync(job, file) {
                Ok(()) => Input::FileSynced {
                    now: clock::now(),
                    job,
                    file,
                    len,
                },
                Err(error) => file_failed(job, file, FileOp::Write, error),
            }),
            Action::CloseFile { job, file } => {
                self.files.close(job, file);
                None
            }
            Action::CommitFile {
                job,
                file,
                temp,
                dest,
                len,
            } => Some({
                self.commit_store();
                match self.files.commit(job, file, &temp, &dest, len) {
                    Ok(()) => Input::FileCommitted {
                        now: clock::now(),
                        job,
                        file,
                    },
                    Err(error) => file_failed(job, file, FileOp::Commit, error),
                }
            }),
            Action::DeleteTemp { job, file, path } => {
                self.commit_store();
                let done = self.files.delete(job, file, &path);
                done.err()
                    .map(|error| file_failed(job, file, FileOp::Delete, error))
            }
            Action::Persist { job } => {
                self.unsaved.insert(job, true);
                None
            }
            Action::FetchCrl { url } => {
                io.fetch_crl(url);
                None
            }
            Action::Forget { job } => {
                self.unsaved.insert(job, false);
                None
            }
            Action::ValidateCertificate {
                conn,
                job,
                file,
                host,
                port,
                leaf,
                chain,
            } => {
                io.validate_certificate(CertificateRequest {
                    job,
                    file,
                    host,
                    port,
                    leaf,
                    chain,
                    conn,
                });
                None
            }
            Action::SecurityToken {
                job,
                conn,
                target,
                service,
                input,
            } => {
                // The GSS-API reads the credential cache and may ask the KDC: off the engine.
                io.run_off_thread(self.gss.step_work(TokenRequest {
                    job,
                    conn,
                    target,
                    service,
                    input,
                }));
                None
            }
            Action::RunProgram { job, program, args } => {
                let owner = self.engine.job(job).ok().map(|view| view.owner().clone());
                let run_as = owner.as_ref().and_then(RunAs::for_owner);
                io.run_off_thread(Box::new(move || run_program(job, &program, &args, run_as)));
                None
            }
            other => {
                tracing::error!("this driver does not know the action {other:?}");
                None
            }
        };
        self.results.extend(result);
    }

    /// Opens (or creates) a temp file; a root daemon gives a new one to the job's owner.
    fn open_temp(
        &mut self,
        job: JobId,
        file: FileIndex,
        path: &Path,
        create: bool,
    ) -> Result<u64, IoFailure> {
        let len = self.files.open_temp(job, file, path, create)?;
        let owner = self.engine.job(job).ok().map(|view| view.owner().clone());
        if let (true, Some(user)) = (create, owner.as_ref().and_then(RunAs::for_owner)) {
            self.files.give_to(job, file, user.uid, user.gid)?;
        }
        Ok(len)
    }

    /// Write what `Persist`/`Forget` asked for since the last commit, in one transaction.
    fn commit_store(&mut self) {
        if self.unsaved.is_empty() {
            return;
        }
        let unsaved = std::mem::take(&mut self.unsaved);
        let mut writes = Vec::with_capacity(unsaved.len());
        for (&job, &keep) in &unsaved {
            if !keep {
                writes.push((job, None));
            } else if let Some(record) = self.engine.job_record(job) {
                writes.push((job, Some(record)));
            } else {
                tracing::warn!("asked to persist job {job}, which has no record");
            }
        }
        if let Err(err) = self.store.write_batch(&writes) {
            let jobs = writes.len();
            tracing::warn!("cannot write {jobs} job record(s) to the store: {err}");
        }
    }

    fn dispatch(&mut self, event: JobEvent, io: &mut impl Io) {
        if let JobEvent::StateChanged { job, to, .. } = event {
            if to.is_settled() {
                for waiter in self.waiters.remove(&job).unwrap_or_default() {
                    waiter(to);
                }
            }
        }
        io.publish(event);
    }
}

/// A host going away (shutdown, or its driver stopping) commits what it gathered and sends
/// the answers it held.
impl Drop for Host {
    fn drop(&mut self) {
        self.flush();
    }
}

fn file_failed(job: JobId, file: FileIndex, op: FileOp, error: IoFailure) -> Input {
    Input::FileFailed {
        now: clock::now(),
        job,
        file,
        op,
        error,
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("engine", &self.engine)
            .field("files", &self.files)
            .field("owner", &self.owner)
            .field("live", &self.live)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The process's proxy variables for PRECONFIG jobs (core reads no environment). Variables
/// that are not valid UTF-8 are skipped: `std::env::vars` would panic on them.
fn proxy_environment() -> ProxyEnvironment {
    ProxyEnvironment::from_vars(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    )
}

#[cfg(test)]
mod tests;
