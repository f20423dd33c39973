//! # backhaul-blocking
//!
//! Drives [`backhaul_core::Engine`] on plain threads. One engine thread owns the engine (inside
//! a [`backhaul_io::Host`]) and waits on one channel, with the engine's deadline as timeout,
//! for the first of: an application command, or an input from a connection thread. Each is fed
//! to the engine, whose outputs are then drained and performed before the next. The driver
//! holds no policy: every decision is core's.
//!
//! File actions run synchronously on the engine thread (a positioned write into the page cache
//! takes microseconds; only a commit waits for the disk).
#![forbid(unsafe_code)]

mod conn;
mod credit;
mod events;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use backhaul_core::{
    BitsError, CompleteOutcome, Engine, FileIndex, FileRange, HResult, Input, JobEvent, JobId,
    JobInfo, JobPriority, JobState, JobType, NewJob,
};
use backhaul_io::{Command, Host, BATCH};

pub use backhaul_io::{
    BrokenRecord, CertificateRequest, DriverConfig, DriverError, StoreError, StoreLocation,
};

/// The application's server-certificate validation callback on threads: accepts (`Ok(())`)
/// or rejects with a failure HRESULT. It runs on a thread of its own and may block.
pub type CertificateValidator =
    Arc<dyn Fn(&CertificateRequest) -> Result<(), HResult> + Send + Sync>;

use crate::conn::{lock, ThreadIo};
use crate::credit::Credit;
use crate::events::Subscribers;

/// Messages waiting for the engine thread; beyond this, connections stop reading (and
/// commands wait their turn).
const QUEUE: usize = 32;

/// What the engine thread waits for.
enum Msg {
    Input(Input),
    /// A connection's received chunk, with the credit it holds until handled (see [`credit`]).
    Received {
        input: Input,
        _credit: Credit,
    },
    Call(Command<ThreadIo>),
    Stop,
}

/// The application's handle on a running engine. Cheap to clone; the engine thread stops when
/// [`Manager::shutdown`] is called or every clone is dropped.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    messages: SyncSender<Msg>,
    subscribers: Subscribers,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.messages.send(Msg::Stop); // the last Manager is gone
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl Manager {
    /// Load the trust anchors, open the store and restore its jobs, create the engine and start
    /// its thread.
    pub fn new(config: DriverConfig) -> Result<Self, DriverError> {
        let tls = backhaul_io::tls::client_config()?;
        let host = Host::new(config)?;
        let (messages, receiver) = mpsc::sync_channel(QUEUE);
        let subscribers = Subscribers::default();
        let io = ThreadIo::new(messages.clone(), tls, subscribers.clone());
        let thread = std::thread::Builder::new()
            .name("backhaul-engine".into())
            .spawn(move || run(host, io, &receiver))?;
        Ok(Self {
            inner: Arc::new(Inner {
                messages,
                subscribers,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Run any engine call on the engine thread: the engine hears the current time first, and
    /// every action the call causes is performed before this returns.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> R + Send + 'static,
    ) -> Result<R, DriverError> {
        self.host(move |host| f(host.engine_mut()))
    }

    fn host<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Host) -> R + Send + 'static,
    ) -> Result<R, DriverError> {
        let (reply, result) = mpsc::sync_channel(1);
        let command: Command<ThreadIo> = Box::new(move |host, io| {
            let result = host.call(io, f);
            host.reply(move || drop(reply.send(result)));
        });
        self.inner
            .messages
            .send(Msg::Call(command))
            .map_err(|_| DriverError::Stopped)?;
        result.recv().map_err(|_| DriverError::Stopped)
    }

    /// `CreateJob`, owned by the configured owner.
    pub fn create_job(&self, display_name: &str, job_type: JobType) -> Result<JobId, BitsError> {
        let name = display_name.to_owned();
        self.host(move |host| host.create_job(&name, job_type))?
    }

    /// Creates a batch of jobs — each with its files, priority, and resumed if asked — in one
    /// command: all of them or, if any job or file is refused, none (the error names it; see
    /// [`Engine::create_jobs`]). Returns their ids in the order given, once their records are
    /// committed: one store transaction (one sync) for the whole batch, where creating them
    /// one call at a time waits for a commit per call.
    pub fn create_jobs(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, BitsError> {
        self.host(move |host| host.create_jobs(&jobs))?
    }

    /// `AddFile`. Fails at once (`E_INVALIDARG`) when the local name's directory does not exist
    /// or the name is a directory.
    pub fn add_file(&self, job: JobId, url: &str, local: &Path) -> Result<FileIndex, BitsError> {
        let (url, local) = (url.to_owned(), PathBuf::from(local));
        self.host(move |host| host.add_file(job, &url, &local))?
    }

    /// `AddFileWithRanges`: only `ranges` of `url`, concatenated in their order at `local`.
    pub fn add_file_with_ranges(
        &self,
        job: JobId,
        url: &str,
        local: &Path,
        ranges: &[FileRange],
    ) -> Result<FileIndex, BitsError> {
        let (url, local, ranges) = (url.to_owned(), PathBuf::from(local), ranges.to_vec());
        self.host(move |host| host.add_file_with_ranges(job, &url, &local, &ranges))?
    }

    /// `GetFileRanges`: the ranges of file `file` (empty for a file added whole).
    pub fn file_ranges(&self, job: JobId, file: FileIndex) -> Result<Vec<FileRange>, BitsError> {
        self.call(move |e| e.job(job)?.file_ranges(file))?
    }

    /// `Resume`.
    pub fn resume(&self, job: JobId) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.resume())?
    }

    /// `Suspend`.
    pub fn suspend(&self, job: JobId) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.suspend())?
    }

    /// `Cancel`.
    pub fn cancel(&self, job: JobId) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.cancel())?
    }

    /// `Complete`; returns once the commits have been performed. As BITS' `Complete`, a file
    /// that could not be moved into place is this call's error (its code and description);
    /// the job stays TRANSFERRED: fix the cause and `complete` again, or `cancel`.
    pub fn complete(&self, job: JobId) -> Result<CompleteOutcome, BitsError> {
        let outcome = self.call(move |e| e.job_mut(job)?.complete())??;
        self.call(move |e| e.commit_result(job).map(|()| outcome))?
    }

    /// `SetPriority`.
    pub fn set_priority(&self, job: JobId, priority: JobPriority) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_priority(priority))?
    }

    /// `SetDisplayName`.
    pub fn set_display_name(&self, job: JobId, name: &str) -> Result<(), BitsError> {
        let name = name.to_owned();
        self.call(move |e| e.job_mut(job)?.set_display_name(&name))?
    }

    /// `SetDescription`.
    pub fn set_description(&self, job: JobId, description: &str) -> Result<(), BitsError> {
        let description = description.to_owned();
        self.call(move |e| e.job_mut(job)?.set_description(&description))?
    }

    /// `SetNotifyFlags`.
    pub fn set_notify_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_notify_flags(flags))?
    }

    /// `SetMinimumRetryDelay`, seconds.
    pub fn set_minimum_retry_delay(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_minimum_retry_delay(secs))?
    }

    /// `SetNoProgressTimeout`, seconds.
    pub fn set_no_progress_timeout(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_no_progress_timeout(secs))?
    }

    /// `SetMaximumDownloadTime`, seconds.
    pub fn set_maximum_download_time(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_maximum_download_time(secs))?
    }

    /// `SetServerCertificateValidationInterface`: `Some` registers the job's callback (asked
    /// after the built-in checks pass, before any request byte), `None` removes it. Only while
    /// the job is SUSPENDED (or in ERROR), else `BG_E_READ_ONLY_WHEN_JOB_ACTIVE`. The callback
    /// is never persisted: after a restart, register it again.
    pub fn set_server_certificate_validation(
        &self,
        job: JobId,
        validator: Option<CertificateValidator>,
    ) -> Result<(), BitsError> {
        let (reply, result) = mpsc::sync_channel(1);
        let command: Command<ThreadIo> = Box::new(move |host, io| {
            let registered = validator.is_some();
            let done = host.call(io, |host| {
                host.engine_mut()
                    .job_mut(job)?
                    .set_server_certificate_validation(registered)
            });
            if done.is_ok() {
                io.set_validator(job, validator);
            }
            host.reply(move || drop(reply.send(done)));
        });
        self.inner
            .messages
            .send(Msg::Call(command))
            .map_err(|_| DriverError::Stopped)?;
        result.recv().map_err(|_| DriverError::Stopped)?
    }

    /// `SetSecurityFlags` (see [`backhaul_core::job::SecurityFlags`] for the bits and a typed
    /// builder): `E_NOTIMPL` for an undefined bit or redirect policy.
    pub fn set_security_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_security_flags(flags))?
    }

    /// `SetCustomHeaders` (`Name: value` lines separated by CRLF; `None` clears them).
    pub fn set_custom_headers(&self, job: JobId, headers: Option<&str>) -> Result<(), BitsError> {
        let headers = headers.map(str::to_owned);
        self.call(move |e| e.job_mut(job)?.set_custom_headers(headers.as_deref()))?
    }

    /// `GetCustomHeaders`: `None` when none are set; `E_ACCESSDENIED` once write-only.
    pub fn custom_headers(&self, job: JobId) -> Result<Option<String>, BitsError> {
        self.call(move |e| e.job(job)?.custom_headers())?
    }

    /// `MakeCustomHeadersWriteOnly` (irreversible).
    pub fn make_custom_headers_write_only(&self, job: JobId) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.make_custom_headers_write_only())?
    }

    /// `SetProxySettings` (see [`backhaul_core::proxy::ProxySettings::new`] for BITS' rules).
    pub fn set_proxy_settings(
        &self,
        job: JobId,
        settings: backhaul_core::proxy::ProxySettings,
    ) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_proxy_settings(settings))?
    }

    /// `SetCredentials` (see [`backhaul_core::auth::Credentials::new`] for BITS' checks).
    pub fn set_credentials(
        &self,
        job: JobId,
        credentials: backhaul_core::auth::Credentials,
    ) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_credentials(credentials))?
    }

    /// `RemoveCredentials`: `Removed` (S_OK) or `NothingSet` (S_FALSE).
    pub fn remove_credentials(
        &self,
        job: JobId,
        target: backhaul_core::auth::AuthTarget,
        scheme: backhaul_core::auth::AuthScheme,
    ) -> Result<backhaul_core::auth::RemoveOutcome, BitsError> {
        self.call(move |e| e.job_mut(job)?.remove_credentials(target, scheme))?
    }

    /// `SetNotifyCmdLine(program, parameters)`: an absolute program run (never through a shell)
    /// when the job reaches TRANSFERRED or ERROR; the parameters' first word is the program
    /// itself, as in BITS. `None, None` clears it.
    pub fn set_notify_cmd_line(
        &self,
        job: JobId,
        program: Option<&str>,
        parameters: Option<&str>,
    ) -> Result<(), BitsError> {
        let (program, parameters) = (program.map(str::to_owned), parameters.map(str::to_owned));
        self.call(move |e| {
            e.job_mut(job)?
                .set_notify_cmd_line(program.as_deref(), parameters.as_deref())
        })?
    }

    /// Everything about the job now.
    pub fn info(&self, job: JobId) -> Result<JobInfo, BitsError> {
        self.call(move |e| e.job(job).map(|view| view.info()))?
    }

    /// `EnumJobs`: every job not in a final state, oldest first (after a restart: every job
    /// reloaded from the store, to re-attach to).
    pub fn jobs(&self) -> Result<Vec<JobId>, BitsError> {
        Ok(self.call(|e| e.jobs())?)
    }

    /// Records the store held that could not be restored (corrupt, or from a newer version):
    /// those jobs are not in the engine; their records stay in the store untouched.
    pub fn broken_records(&self) -> Result<Vec<BrokenRecord>, DriverError> {
        self.host(|host| host.broken_records().to_vec())
    }

    /// Waits until the job is TRANSFERRED, ERROR, ACKNOWLEDGED or CANCELLED and returns that
    /// state; at once if it already is.
    pub fn wait(&self, job: JobId) -> Result<JobState, BitsError> {
        let (settled, state) = mpsc::sync_channel(1);
        self.host(move |host| {
            host.wait(
                job,
                Box::new(move |s| {
                    let _ = settled.send(s);
                }),
            )
        })??;
        state.recv().map_err(|_| DriverError::Stopped.into())
    }

    /// Every [`JobEvent`] from now on — first, the events published while no subscriber
    /// existed (since start, e.g. after a restart, up to 1,024), as BITS delivers callbacks for
    /// events that happened before registration. The channel is unbounded: keep reading it, or
    /// drop it.
    pub fn subscribe(&self) -> Receiver<JobEvent> {
        self.inner.subscribers.subscribe()
    }

    /// Stop the engine thread and wait for it: connections and files are closed (temp files
    /// stay: jobs persist). Calls through other clones fail with [`DriverError::Stopped`].
    pub fn shutdown(self) {
        if self.inner.messages.send(Msg::Stop).is_ok() {
            if let Some(thread) = lock(&self.inner.thread).take() {
                let _ = thread.join();
            }
        }
    }
}

/// The engine thread: wait for a message or the deadline; hand it and whatever else is ready
/// (up to [`BATCH`]) to the host; then commit the store once for all of them.
fn run(mut host: Host, mut io: ThreadIo, messages: &Receiver<Msg>) {
    host.start(&mut io);
    loop {
        let first = match host.sleep_for() {
            Some(timeout) => match messages.recv_timeout(timeout) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match messages.recv() {
                Ok(msg) => Some(msg),
                Err(_) => return,
            },
        };
        let Some(first) = first else {
            host.handle_wake(&mut io);
            host.flush();
            continue;
        };
        let ready = std::iter::once(first).chain(std::iter::from_fn(|| messages.try_recv().ok()));
        for msg in ready.take(BATCH) {
            match msg {
                Msg::Input(input) | Msg::Received { input, .. } => {
                    host.handle(input, &mut io); // a chunk's credit returns once it is handled
                    if host.has_unsaved() {
                        break; // a checkpoint or a state change: commit it now (see BATCH)
                    }
                }
                Msg::Call(command) => command(&mut host, &mut io),
                Msg::Stop => return, // dropping `host` commits; dropping `io` closes the connections
            }
        }
        host.flush();
    }
}
