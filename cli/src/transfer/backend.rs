//! [`Backend`]: the few blocking calls the transfer flow makes on a driver's `Manager`, and
//! its two implementations, one per driver.

use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use backhaul_core::auth::Credentials;
use backhaul_core::proxy::ProxySettings;
use backhaul_core::{
    BitsError, CompleteOutcome, FileIndex, JobId, JobInfo, JobPriority, JobState, JobType,
};

use super::Request;
use crate::report::{Failure, FailureKind};
use crate::security::pin_verdict;

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
