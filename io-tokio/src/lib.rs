//! # backhaul-tokio
//!
//! Drives [`backhaul_core::Engine`] on tokio. One engine task owns the engine (inside a
//! [`backhaul_io::Host`]) and waits for the first of: an application command, an input from a
//! connection task, or the engine's deadline. Each is fed to the engine, whose outputs are then
//! drained and performed before the next. The driver holds no policy: every decision is core's.
//!
//! File actions run synchronously on the engine task: a positioned write into the page cache
//! takes microseconds, where `tokio::fs` would hop to the blocking pool for each one and the
//! engine would have to wait for it anyway before its next input. Only a commit waits for the
//! disk (two fsyncs per file, once per job). On a multi-thread runtime the connection tasks keep
//! running meanwhile.
#![forbid(unsafe_code)]

mod conn;
mod events;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use backhaul_core::{
    BitsError, CompleteOutcome, Engine, FileIndex, FileRange, HResult, Input, JobEvent, JobId,
    JobInfo, JobPriority, JobState, JobType, NewJob,
};
use backhaul_io::{Command, Host, BATCH};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::events::Events;
use tokio::time::Instant;

pub use backhaul_io::{
    BrokenRecord, CertificateRequest, DriverConfig, DriverError, StoreError, StoreLocation,
};

/// The application's server-certificate validation callback on tokio: an async function of
/// the [`CertificateRequest`] that accepts (`Ok(())`) or rejects with a failure HRESULT. Make
/// one with [`certificate_validator`].
pub type CertificateValidator = Arc<
    dyn Fn(CertificateRequest) -> Pin<Box<dyn Future<Output = Result<(), HResult>> + Send>>
        + Send
        + Sync,
>;

/// Wraps an async closure as a [`CertificateValidator`].
///
/// ```
/// use backhaul_tokio::certificate_validator;
///
/// let pinned = [0u8; 32];
/// let _validator = certificate_validator(move |request| async move {
///     use sha2::Digest;
///     let hash: [u8; 32] = sha2::Sha256::digest(request.leaf.as_ref()).into();
///     if hash == pinned { Ok(()) } else { Err(backhaul_core::codes::E_ACCESSDENIED) }
/// });
/// ```
pub fn certificate_validator<F, Fut>(f: F) -> CertificateValidator
where
    F: Fn(CertificateRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HResult>> + Send + 'static,
{
    Arc::new(move |request| Box::pin(f(request)))
}

use crate::conn::TokioIo;

/// Inputs from connection tasks waiting for the engine; beyond this, connections stop reading.
/// Each may hold a slice of a 256 KiB read buffer, so this bounds the memory in flight: 32 gave
/// a 23 MiB peak RSS for one 512 MiB HTTP download, 8 gives 11 MiB at the same speed.
const INPUT_QUEUE: usize = 8;

enum Msg {
    Call(Command<TokioIo>),
    Stop(oneshot::Sender<()>),
}

/// The application's handle on a running engine. Cheap to clone; the engine task stops when
/// [`Manager::shutdown`] is called or every clone is dropped.
#[derive(Clone, Debug)]
pub struct Manager {
    commands: mpsc::UnboundedSender<Msg>,
    events: Events,
}

impl Manager {
    /// Load the trust anchors, open the store and restore its jobs, create the engine and spawn
    /// its task. Call inside a tokio runtime.
    pub fn new(config: DriverConfig) -> Result<Self, DriverError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|err| DriverError::Runtime(err.to_string()))?;
        let tls = backhaul_io::tls::client_config()?;
        let host = Host::new(config)?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (inputs, input_rx) = mpsc::channel(INPUT_QUEUE);
        let events = Events::new();
        let io = TokioIo::new(inputs, tls, events.clone());
        runtime.spawn(run(host, io, command_rx, input_rx));
        Ok(Self { commands, events })
    }

    /// Run any engine call on the engine task: the engine hears the current time first, and
    /// every action the call causes is performed before this returns.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> R + Send + 'static,
    ) -> Result<R, DriverError> {
        self.host(move |host| f(host.engine_mut())).await
    }

    async fn host<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Host) -> R + Send + 'static,
    ) -> Result<R, DriverError> {
        let (reply, result) = oneshot::channel();
        let command: Command<TokioIo> = Box::new(move |host, io| {
            let result = host.call(io, f);
            host.reply(move || drop(reply.send(result)));
        });
        self.commands
            .send(Msg::Call(command))
            .map_err(|_| DriverError::Stopped)?;
        result.await.map_err(|_| DriverError::Stopped)
    }

    /// `CreateJob`, owned by the configured owner.
    pub async fn create_job(
        &self,
        display_name: &str,
        job_type: JobType,
    ) -> Result<JobId, BitsError> {
        let name = display_name.to_owned();
        self.host(move |host| host.create_job(&name, job_type))
            .await?
    }

    /// Creates a batch of jobs — each with its files, priority, and resumed if asked — in one
    /// command: all of them or, if any job or file is refused, none (the error names it; see
    /// [`Engine::create_jobs`]). Returns their ids in the order given, once their records are
    /// committed: one store transaction (one sync) for the whole batch, where creating them
    /// one call at a time waits for a commit per call.
    pub async fn create_jobs(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, BitsError> {
        self.host(move |host| host.create_jobs(&jobs)).await?
    }

    /// `AddFile`. Fails at once (`E_INVALIDARG`) when the local name's directory does not exist
    /// or the name is a directory.
    pub async fn add_file(
        &self,
        job: JobId,
        url: &str,
        local: &Path,
    ) -> Result<FileIndex, BitsError> {
        let (url, local) = (url.to_owned(), PathBuf::from(local));
        self.host(move |host| host.add_file(job, &url, &local))
            .await?
    }

    /// `AddFileWithRanges`: only `ranges` of `url`, concatenated in their order at `local`.
    pub async fn add_file_with_ranges(
        &self,
        job: JobId,
        url: &str,
        local: &Path,
        ranges: &[FileRange],
    ) -> Result<FileIndex, BitsError> {
        let (url, local, ranges) = (url.to_owned(), PathBuf::from(local), ranges.to_vec());
        self.host(move |host| host.add_file_with_ranges(job, &url, &local, &ranges))
            .await?
    }

    /// `GetFileRanges`: the ranges of file `file` (empty for a file added whole).
    pub async fn file_ranges(
        &self,
        job: JobId,
        file: FileIndex,
    ) -> Result<Vec<FileRange>, BitsError> {
        self.call(move |e| e.job(job)?.file_ranges(file)).await?
    }

    /// `Resume`.
    pub async fn resume(&self, job: JobId) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.resume()).await?
    }

    /// `Suspend`.
    pub async fn suspend(&self, job: JobId) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.suspend()).await?
    }

    /// `Cancel`.
    pub async fn cancel(&self, job: JobId) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.cancel()).await?
    }

    /// `Complete`; returns once the commits have been performed. As BITS' `Complete`, a file
    /// that could not be moved into place is this call's error (its code and description);
    /// the job stays TRANSFERRED: fix the cause and `complete` again, or `cancel`.
    pub async fn complete(&self, job: JobId) -> Result<CompleteOutcome, BitsError> {
        let outcome = self.call(move |e| e.job_mut(job)?.complete()).await??;
        self.call(move |e| e.commit_result(job).map(|()| outcome))
            .await?
    }

    /// `SetPriority`.
    pub async fn set_priority(&self, job: JobId, priority: JobPriority) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_priority(priority))
            .await?
    }

    /// `SetDisplayName`.
    pub async fn set_display_name(&self, job: JobId, name: &str) -> Result<(), BitsError> {
        let name = name.to_owned();
        self.call(move |e| e.job_mut(job)?.set_display_name(&name))
            .await?
    }

    /// `SetDescription`.
    pub async fn set_description(&self, job: JobId, description: &str) -> Result<(), BitsError> {
        let description = description.to_owned();
        self.call(move |e| e.job_mut(job)?.set_description(&description))
            .await?
    }

    /// `SetNotifyFlags`.
    pub async fn set_notify_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_notify_flags(flags))
            .await?
    }

    /// `SetMinimumRetryDelay`, seconds.
    pub async fn set_minimum_retry_delay(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_minimum_retry_delay(secs))
            .await?
    }

    /// `SetNoProgressTimeout`, seconds.
    pub async fn set_no_progress_timeout(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_no_progress_timeout(secs))
            .await?
    }

    /// `SetMaximumDownloadTime`, seconds.
    pub async fn set_maximum_download_time(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_maximum_download_time(secs))
            .await?
    }

    /// `SetServerCertificateValidationInterface`: `Some` registers the job's callback (asked
    /// after the built-in checks pass, before any request byte), `None` removes it. Only while
    /// the job is SUSPENDED (or in ERROR), else `BG_E_READ_ONLY_WHEN_JOB_ACTIVE`. The callback
    /// is never persisted: after a restart, register it again.
    pub async fn set_server_certificate_validation(
        &self,
        job: JobId,
        validator: Option<CertificateValidator>,
    ) -> Result<(), BitsError> {
        let (reply, result) = oneshot::channel();
        let command: Command<TokioIo> = Box::new(move |host, io| {
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
        self.commands
            .send(Msg::Call(command))
            .map_err(|_| DriverError::Stopped)?;
        result.await.map_err(|_| DriverError::Stopped)?
    }

    /// `SetSecurityFlags` (see [`backhaul_core::job::SecurityFlags`] for the bits and a typed
    /// builder): `E_NOTIMPL` for an undefined bit or redirect policy.
    pub async fn set_security_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_security_flags(flags))
            .await?
    }

    /// `SetCustomHeaders` (`Name: value` lines separated by CRLF; `None` clears them).
    pub async fn set_custom_headers(
        &self,
        job: JobId,
        headers: Option<&str>,
    ) -> Result<(), BitsError> {
        let headers = headers.map(str::to_owned);
        self.call(move |e| e.job_mut(job)?.set_custom_headers(headers.as_deref()))
            .await?
    }

    /// `GetCustomHeaders`: `None` when none are set; `E_ACCESSDENIED` once write-only.
    pub async fn custom_headers(&self, job: JobId) -> Result<Option<String>, BitsError> {
        self.call(move |e| e.job(job)?.custom_headers()).await?
    }

    /// `MakeCustomHeadersWriteOnly` (irreversible).
    pub async fn make_custom_headers_write_only(&self, job: JobId) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.make_custom_headers_write_only())
            .await?
    }

    /// `SetProxySettings` (see [`backhaul_core::proxy::ProxySettings::new`] for BITS' rules).
    pub async fn set_proxy_settings(
        &self,
        job: JobId,
        settings: backhaul_core::proxy::ProxySettings,
    ) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_proxy_settings(settings))
            .await?
    }

    /// `SetCredentials` (see [`backhaul_core::auth::Credentials::new`] for BITS' checks).
    pub async fn set_credentials(
        &self,
        job: JobId,
        credentials: backhaul_core::auth::Credentials,
    ) -> Result<(), BitsError> {
        self.call(move |e| e.job_mut(job)?.set_credentials(credentials))
            .await?
    }

    /// `RemoveCredentials`: `Removed` (S_OK) or `NothingSet` (S_FALSE).
    pub async fn remove_credentials(
        &self,
        job: JobId,
        target: backhaul_core::auth::AuthTarget,
        scheme: backhaul_core::auth::AuthScheme,
    ) -> Result<backhaul_core::auth::RemoveOutcome, BitsError> {
        self.call(move |e| e.job_mut(job)?.remove_credentials(target, scheme))
            .await?
    }

    /// `SetNotifyCmdLine(program, parameters)`: an absolute program run (never through a shell)
    /// when the job reaches TRANSFERRED or ERROR; the parameters' first word is the program
    /// itself, as in BITS. `None, None` clears it.
    pub async fn set_notify_cmd_line(
        &self,
        job: JobId,
        program: Option<&str>,
        parameters: Option<&str>,
    ) -> Result<(), BitsError> {
        let (program, parameters) = (program.map(str::to_owned), parameters.map(str::to_owned));
        self.call(move |e| {
            e.job_mut(job)?
                .set_notify_cmd_line(program.as_deref(), parameters.as_deref())
        })
        .await?
    }

    /// Everything about the job now.
    pub async fn info(&self, job: JobId) -> Result<JobInfo, BitsError> {
        self.call(move |e| e.job(job).map(|view| view.info()))
            .await?
    }

    /// `EnumJobs`: every job not in a final state, oldest first (after a restart: every job
    /// reloaded from the store, to re-attach to).
    pub async fn jobs(&self) -> Result<Vec<JobId>, BitsError> {
        Ok(self.call(|e| e.jobs()).await?)
    }

    /// Records the store held that could not be restored (corrupt, or from a newer version):
    /// those jobs are not in the engine; their records stay in the store untouched.
    pub async fn broken_records(&self) -> Result<Vec<BrokenRecord>, DriverError> {
        self.host(|host| host.broken_records().to_vec()).await
    }

    /// Waits until the job is TRANSFERRED, ERROR, ACKNOWLEDGED or CANCELLED and returns that
    /// state; at once if it already is.
    pub async fn wait(&self, job: JobId) -> Result<JobState, BitsError> {
        let (settled, state) = oneshot::channel();
        self.host(move |host| {
            host.wait(
                job,
                Box::new(move |s| {
                    let _ = settled.send(s);
                }),
            )
        })
        .await??;
        state.await.map_err(|_| DriverError::Stopped.into())
    }

    /// Every [`JobEvent`] from now on — first, the events published while no receiver
    /// existed (since start, e.g. after a restart, up to 1,024), as BITS delivers callbacks for
    /// events that happened before registration. A receiver that falls more than 1,024 events
    /// behind misses some (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    /// Stop the engine task: connections and files are closed (temp files stay: jobs persist).
    /// Calls through other clones fail with [`DriverError::Stopped`] from then on.
    pub async fn shutdown(self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Msg::Stop(done)).is_ok() {
            let _ = stopped.await;
        }
    }
}

/// The engine task: wait for a command, an input or the deadline; hand it and whatever else is
/// ready (up to [`BATCH`]) to the host; then commit the store once for all of them.
async fn run(
    mut host: Host,
    mut io: TokioIo,
    mut commands: mpsc::UnboundedReceiver<Msg>,
    mut inputs: mpsc::Receiver<Input>,
) {
    host.start(&mut io);
    loop {
        let wake = host.sleep_for().map(|d| Instant::now() + d);
        let first = tokio::select! {
            msg = commands.recv() => match msg {
                Some(msg) => Ready::Msg(msg),
                None => return, // every Manager is gone
            },
            Some(input) = inputs.recv() => Ready::Input(input),
            () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => Ready::Wake,
        };
        let more = std::iter::from_fn(|| {
            let msg = commands.try_recv().ok().map(Ready::Msg);
            msg.or_else(|| inputs.try_recv().ok().map(Ready::Input))
        });
        for ready in std::iter::once(first).chain(more).take(BATCH) {
            match ready {
                Ready::Msg(Msg::Call(command)) => command(&mut host, &mut io),
                Ready::Msg(Msg::Stop(done)) => {
                    drop((io, host)); // dropping `host` commits the store
                    let _ = done.send(());
                    return;
                }
                Ready::Input(input) => {
                    host.handle(input, &mut io);
                    if host.has_unsaved() {
                        break; // a checkpoint or a state change: commit it now (see BATCH)
                    }
                }
                Ready::Wake => host.handle_wake(&mut io),
            }
        }
        host.flush();
    }
}

/// What woke the engine task.
enum Ready {
    Msg(Msg),
    Input(Input),
    Wake,
}
