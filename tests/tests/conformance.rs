//! The conformance suite on both drivers: the scenarios of `backhaul_tests::conformance`, once
//! through `backhaul-tokio` (module `tokio_driver`) and once through `backhaul-blocking`
//! (module `blocking_driver`). This file holds only the two adapters to the [`Driver`] facade.

use std::path::Path;
use std::time::Duration;

use backhaul_core::{
    BitsError, CompleteOutcome, FileIndex, FileRange, JobId, JobInfo, JobPriority, JobState,
    JobType, NewJob,
};
use backhaul_tests::conformance::{Driver, DriverSetup, EventLog, Validator};

/// How long `shutdown` may take before the adapter gives up on it.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(20);

backhaul_tests::conformance_suite!(tokio_driver, crate::TokioDriver);
backhaul_tests::conformance_suite!(blocking_driver, crate::blocking::BlockingDriver);

/// `backhaul_tokio::Manager` on a runtime of its own; every call is `block_on`.
struct TokioDriver {
    runtime: Option<tokio::runtime::Runtime>,
    manager: Option<backhaul_tokio::Manager>,
    events: EventLog,
}

impl TokioDriver {
    fn manager(&self) -> &backhaul_tokio::Manager {
        self.manager.as_ref().expect("running")
    }

    fn on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.as_ref().expect("running").block_on(future)
    }
}

impl Driver for TokioDriver {
    const NAME: &'static str = "tokio";

    fn start(setup: DriverSetup) -> Self {
        let mut config = backhaul_tokio::DriverConfig::new();
        config.ca_files = setup.ca_files;
        config.use_system_roots = setup.use_system_roots;
        config.core.rng_seed = setup.rng_seed;
        if let Some(path) = setup.store {
            config.store = backhaul_tokio::StoreLocation::File(path);
        }
        if let Some(bytes) = setup.checkpoint_bytes {
            config.core.checkpoint_bytes = bytes;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build a tokio runtime");
        // `Manager::new` spawns onto the current runtime.
        let manager = runtime
            .block_on(async { backhaul_tokio::Manager::new(config) })
            .expect("start the tokio driver");
        let events = EventLog::new();
        let mut rx = manager.subscribe();
        let sink = events.clone();
        std::thread::spawn(move || loop {
            match rx.blocking_recv() {
                Ok(event) => sink.push(event),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        });
        TokioDriver {
            runtime: Some(runtime),
            manager: Some(manager),
            events,
        }
    }

    fn create_job(&self, display_name: &str, job_type: JobType) -> Result<JobId, BitsError> {
        self.on(self.manager().create_job(display_name, job_type))
    }

    fn create_jobs(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, BitsError> {
        self.on(self.manager().create_jobs(jobs))
    }

    fn add_file(&self, job: JobId, url: &str, local: &Path) -> Result<FileIndex, BitsError> {
        self.on(self.manager().add_file(job, url, local))
    }

    fn add_file_with_ranges(
        &self,
        job: JobId,
        url: &str,
        local: &Path,
        ranges: &[FileRange],
    ) -> Result<FileIndex, BitsError> {
        self.on(self.manager().add_file_with_ranges(job, url, local, ranges))
    }

    fn resume(&self, job: JobId) -> Result<(), BitsError> {
        self.on(self.manager().resume(job))
    }

    fn suspend(&self, job: JobId) -> Result<(), BitsError> {
        self.on(self.manager().suspend(job))
    }

    fn cancel(&self, job: JobId) -> Result<(), BitsError> {
        self.on(self.manager().cancel(job))
    }

    fn complete(&self, job: JobId) -> Result<CompleteOutcome, BitsError> {
        self.on(self.manager().complete(job))
    }

    fn set_priority(&self, job: JobId, priority: JobPriority) -> Result<(), BitsError> {
        self.on(self.manager().set_priority(job, priority))
    }

    fn set_minimum_retry_delay(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.on(self.manager().set_minimum_retry_delay(job, secs))
    }

    fn set_no_progress_timeout(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
        self.on(self.manager().set_no_progress_timeout(job, secs))
    }

    fn set_security_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError> {
        self.on(self.manager().set_security_flags(job, flags))
    }

    fn set_certificate_validator(
        &self,
        job: JobId,
        validator: Option<Validator>,
    ) -> Result<(), BitsError> {
        let validator = validator.map(|v| {
            backhaul_tokio::certificate_validator(move |request| {
                let verdict = v(&request);
                async move { verdict }
            })
        });
        self.on(self
            .manager()
            .set_server_certificate_validation(job, validator))
    }

    fn set_credentials(
        &self,
        job: JobId,
        credentials: backhaul_core::auth::Credentials,
    ) -> Result<(), BitsError> {
        self.on(self.manager().set_credentials(job, credentials))
    }

    fn set_custom_headers(&self, job: JobId, headers: Option<&str>) -> Result<(), BitsError> {
        self.on(self.manager().set_custom_headers(job, headers))
    }

    fn set_notify_cmd_line(
        &self,
        job: JobId,
        program: Option<&str>,
        parameters: Option<&str>,
    ) -> Result<(), BitsError> {
        self.on(self.manager().set_notify_cmd_line(job, program, parameters))
    }

    fn info(&self, job: JobId) -> Result<JobInfo, BitsError> {
        self.on(self.manager().info(job))
    }

    fn jobs(&self) -> Result<Vec<JobId>, BitsError> {
        self.on(self.manager().jobs())
    }

    fn broken_records(&self) -> Vec<(JobId, String)> {
        let broken = self.on(self.manager().broken_records());
        let broken = broken.expect("the engine runs");
        broken.into_iter().map(|b| (b.id, b.reason)).collect()
    }

    fn wait_timeout(&self, job: JobId, limit: Duration) -> Option<Result<JobState, BitsError>> {
        // The timer must be created inside the runtime: build it in the async block.
        self.on(async { tokio::time::timeout(limit, self.manager().wait(job)).await })
            .ok()
    }

    fn events(&self) -> &EventLog {
        &self.events
    }

    fn shutdown(mut self) {
        let (Some(runtime), Some(manager)) = (self.runtime.take(), self.manager.take()) else {
            return;
        };
        let finished = runtime
            .block_on(async { tokio::time::timeout(SHUTDOWN_LIMIT, manager.shutdown()).await });
        runtime.shutdown_timeout(Duration::from_secs(5));
        assert!(
            finished.is_ok(),
            "the tokio driver did not shut down within {SHUTDOWN_LIMIT:?}"
        );
    }
}

impl Drop for TokioDriver {
    fn drop(&mut self) {
        // Reached without `shutdown` when a scenario fails: do not block on the runtime.
        self.manager.take();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The `backhaul-blocking` adapter.
mod blocking {
    use std::path::Path;
    use std::sync::mpsc;
    use std::time::Duration;

    use backhaul_core::{
        BitsError, CompleteOutcome, FileIndex, FileRange, JobId, JobInfo, JobPriority, JobState,
        JobType, NewJob,
    };
    use backhaul_tests::conformance::{Driver, DriverSetup, EventLog, Validator};

    use super::SHUTDOWN_LIMIT;

    /// `backhaul_blocking::Manager`, called directly; `wait` runs on a helper thread so that it can
    /// be given up on.
    pub(crate) struct BlockingDriver {
        manager: Option<backhaul_blocking::Manager>,
        events: EventLog,
    }

    impl BlockingDriver {
        fn manager(&self) -> &backhaul_blocking::Manager {
            self.manager.as_ref().expect("running")
        }
    }

    impl Driver for BlockingDriver {
        const NAME: &'static str = "blocking";

        fn start(setup: DriverSetup) -> Self {
            let mut config = backhaul_blocking::DriverConfig::new();
            config.ca_files = setup.ca_files;
            config.use_system_roots = setup.use_system_roots;
            config.core.rng_seed = setup.rng_seed;
            if let Some(path) = setup.store {
                config.store = backhaul_blocking::StoreLocation::File(path);
            }
            if let Some(bytes) = setup.checkpoint_bytes {
                config.core.checkpoint_bytes = bytes;
            }
            let manager =
                backhaul_blocking::Manager::new(config).expect("start the blocking driver");
            let events = EventLog::new();
            let rx = manager.subscribe();
            let sink = events.clone();
            std::thread::spawn(move || {
                for event in rx {
                    sink.push(event);
                }
            });
            BlockingDriver {
                manager: Some(manager),
                events,
            }
        }

        fn create_job(&self, display_name: &str, job_type: JobType) -> Result<JobId, BitsError> {
            self.manager().create_job(display_name, job_type)
        }

        fn create_jobs(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>, BitsError> {
            self.manager().create_jobs(jobs)
        }

        fn add_file(&self, job: JobId, url: &str, local: &Path) -> Result<FileIndex, BitsError> {
            self.manager().add_file(job, url, local)
        }

        fn add_file_with_ranges(
            &self,
            job: JobId,
            url: &str,
            local: &Path,
            ranges: &[FileRange],
        ) -> Result<FileIndex, BitsError> {
            self.manager().add_file_with_ranges(job, url, local, ranges)
        }

        fn resume(&self, job: JobId) -> Result<(), BitsError> {
            self.manager().resume(job)
        }

        fn suspend(&self, job: JobId) -> Result<(), BitsError> {
            self.manager().suspend(job)
        }

        fn cancel(&self, job: JobId) -> Result<(), BitsError> {
            self.manager().cancel(job)
        }

        fn complete(&self, job: JobId) -> Result<CompleteOutcome, BitsError> {
            self.manager().complete(job)
        }

        fn set_priority(&self, job: JobId, priority: JobPriority) -> Result<(), BitsError> {
            self.manager().set_priority(job, priority)
        }

        fn set_minimum_retry_delay(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
            self.manager().set_minimum_retry_delay(job, secs)
        }

        fn set_no_progress_timeout(&self, job: JobId, secs: u32) -> Result<(), BitsError> {
            self.manager().set_no_progress_timeout(job, secs)
        }

        fn set_security_flags(&self, job: JobId, flags: u32) -> Result<(), BitsError> {
            self.manager().set_security_flags(job, flags)
        }

        fn set_certificate_validator(
            &self,
            job: JobId,
            validator: Option<Validator>,
        ) -> Result<(), BitsError> {
            let validator = validator.map(|v| -> backhaul_blocking::CertificateValidator { v });
            self.manager()
                .set_server_certificate_validation(job, validator)
        }

        fn set_credentials(
            &self,
            job: JobId,
            credentials: backhaul_core::auth::Credentials,
        ) -> Result<(), BitsError> {
            self.manager().set_credentials(job, credentials)
        }

        fn set_custom_headers(&self, job: JobId, headers: Option<&str>) -> Result<(), BitsError> {
            self.manager().set_custom_headers(job, headers)
        }

        fn set_notify_cmd_line(
            &self,
            job: JobId,
            program: Option<&str>,
            parameters: Option<&str>,
        ) -> Result<(), BitsError> {
            self.manager().set_notify_cmd_line(job, program, parameters)
        }

        fn info(&self, job: JobId) -> Result<JobInfo, BitsError> {
            self.manager().info(job)
        }

        fn jobs(&self) -> Result<Vec<JobId>, BitsError> {
            self.manager().jobs()
        }

        fn broken_records(&self) -> Vec<(JobId, String)> {
            let broken = self.manager().broken_records().expect("the engine runs");
            broken.into_iter().map(|b| (b.id, b.reason)).collect()
        }

        fn wait_timeout(&self, job: JobId, limit: Duration) -> Option<Result<JobState, BitsError>> {
            let manager = self.manager().clone();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(manager.wait(job));
            });
            rx.recv_timeout(limit).ok()
        }

        fn events(&self) -> &EventLog {
            &self.events
        }

        fn shutdown(mut self) {
            let Some(manager) = self.manager.take() else {
                return;
            };
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                manager.shutdown();
                let _ = tx.send(());
            });
            assert!(
                rx.recv_timeout(SHUTDOWN_LIMIT).is_ok(),
                "the blocking driver did not shut down within {SHUTDOWN_LIMIT:?}"
            );
        }
    }
}
