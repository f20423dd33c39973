//! The [`Engine`]: every job, the scheduler, the connections, and the one input/output loop.
//!
//! SKELETON: the public surface is final; bodies land with the engine implementation.

use std::collections::VecDeque;

use crate::config::Config;
use crate::error::{BitsError, JobError};
use crate::ids::{FileIndex, JobId};
use crate::input::Input;
use crate::job::{CompleteOutcome, FileProgress, JobPriority, JobProgress, JobState, JobTimes, JobType, NotifyFlags, Owner};
use crate::output::Output;
use crate::time::Timestamp;

/// The sans-IO transfer engine. See the crate documentation for the loop a driver runs.
#[derive(Debug)]
pub struct Engine {
    out: VecDeque<Output>,
    now: Timestamp,
    _config: Config,
}

/// A job's durable record: what the store keeps and a restart reloads.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct JobRecord {
    id: JobId,
}

/// Read access to one job (`IBackgroundCopyJob`'s getters).
#[derive(Debug)]
pub struct JobView<'a> {
    _engine: &'a Engine,
    id: JobId,
}

/// Commands on one job (`IBackgroundCopyJob`'s methods). Each returns at once.
#[derive(Debug)]
pub struct JobMut<'a> {
    _engine: &'a mut Engine,
    id: JobId,
}

/// Everything about a job at one moment, owned: what `bitsadmin /info` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// `GetId`.
    pub id: JobId,
    /// `GetDisplayName`.
    pub display_name: String,
    /// `GetDescription`.
    pub description: String,
    /// `GetType`.
    pub job_type: JobType,
    /// `GetPriority`.
    pub priority: JobPriority,
    /// `GetOwner`.
    pub owner: Owner,
    /// `GetState`.
    pub state: JobState,
    /// `GetProgress`.
    pub progress: JobProgress,
    /// `EnumFiles`.
    pub files: Vec<FileInfo>,
    /// `GetTimes`.
    pub times: JobTimes,
    /// `GetError`, when the job is in ERROR or TRANSIENT_ERROR.
    pub error: Option<JobError>,
    /// `GetErrorCount`.
    pub error_count: u32,
    /// `GetNotifyFlags`.
    pub notify_flags: NotifyFlags,
    /// `GetMinimumRetryDelay`, seconds.
    pub minimum_retry_delay: u32,
    /// `GetNoProgressTimeout`, seconds.
    pub no_progress_timeout: u32,
    /// `GetMaximumDownloadTime`, seconds.
    pub maximum_download_time: u32,
}

/// One file of a job as the application sees it (`IBackgroundCopyFile`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Position in the job.
    pub index: FileIndex,
    /// The remote URL (after an ALLOW_REPORT redirect, the final URL).
    pub remote_name: String,
    /// The local name the file appears at on Complete.
    pub local_name: std::path::PathBuf,
    /// The hidden temp file, once created.
    pub temporary_name: Option<std::path::PathBuf>,
    /// `BG_FILE_PROGRESS`.
    pub progress: FileProgress,
}

impl Engine {
    /// An engine with no jobs, whose clock starts at `now`.
    pub fn new(config: Config, now: Timestamp) -> Self {
        Self { out: VecDeque::new(), now, _config: config }
    }

    /// Feed one fact. Then drain [`Engine::poll_output`] until it returns `Output::Timeout`.
    pub fn handle(&mut self, input: Input) {
        let _ = input;
        unimplemented!()
    }

    /// The next output; `Output::Timeout` when there is nothing more to do now.
    pub fn poll_output(&mut self) -> Output {
        self.out.pop_front().unwrap_or(Output::Timeout(None))
    }

    /// `CreateJob`: a new job in SUSPENDED, owned by `owner`.
    pub fn create_job(&mut self, display_name: &str, job_type: JobType, owner: Owner) -> Result<JobId, BitsError> {
        let _ = (display_name, job_type, owner, self.now);
        unimplemented!()
    }

    /// Read access to a job (`BG_E_NOT_FOUND` if there is none with that id).
    pub fn job(&self, id: JobId) -> Result<JobView<'_>, BitsError> {
        let _ = id;
        unimplemented!()
    }

    /// Commands on a job (`BG_E_NOT_FOUND` if there is none with that id).
    pub fn job_mut(&mut self, id: JobId) -> Result<JobMut<'_>, BitsError> {
        let _ = id;
        unimplemented!()
    }

    /// The ids of every job not in a final state, oldest first (`EnumJobs`).
    pub fn jobs(&self) -> Vec<JobId> {
        unimplemented!()
    }

    /// The durable record of a job, for [`Action::Persist`](crate::Action::Persist).
    pub fn job_record(&self, id: JobId) -> Option<&JobRecord> {
        let _ = id;
        unimplemented!()
    }
}

impl JobView<'_> {
    /// `GetId`.
    pub fn id(&self) -> JobId { self.id }
    /// `GetDisplayName`.
    pub fn display_name(&self) -> &str { unimplemented!() }
    /// `GetDescription`.
    pub fn description(&self) -> &str { unimplemented!() }
    /// `GetType`.
    pub fn job_type(&self) -> JobType { unimplemented!() }
    /// `GetPriority`.
    pub fn priority(&self) -> JobPriority { unimplemented!() }
    /// `GetOwner`.
    pub fn owner(&self) -> &Owner { unimplemented!() }
    /// `GetState`.
    pub fn state(&self) -> JobState { unimplemented!() }
    /// `GetProgress`.
    pub fn progress(&self) -> JobProgress { unimplemented!() }
    /// `EnumFiles` with each file's names and progress.
    pub fn files(&self) -> Vec<FileInfo> { unimplemented!() }
    /// `GetTimes`.
    pub fn times(&self) -> JobTimes { unimplemented!() }
    /// `GetError`: `BG_E_ERROR_INFORMATION_UNAVAILABLE` outside ERROR and TRANSIENT_ERROR.
    pub fn error(&self) -> Result<&JobError, BitsError> { unimplemented!() }
    /// `GetErrorCount`.
    pub fn error_count(&self) -> u32 { unimplemented!() }
    /// `GetNotifyFlags`.
    pub fn notify_flags(&self) -> NotifyFlags { unimplemented!() }
    /// `GetMinimumRetryDelay`, in seconds.
    pub fn minimum_retry_delay(&self) -> u32 { unimplemented!() }
    /// `GetNoProgressTimeout`, in seconds.
    pub fn no_progress_timeout(&self) -> u32 { unimplemented!() }
    /// `GetMaximumDownloadTime`, in seconds (0: no limit).
    pub fn maximum_download_time(&self) -> u32 { unimplemented!() }
    /// Everything at once, owned.
    pub fn info(&self) -> JobInfo { unimplemented!() }
}

impl JobMut<'_> {
    /// `AddFile`: http/https URL (≤ 2,200 chars), absolute local path.
    pub fn add_file(&mut self, remote_url: &str, local_name: &std::path::Path) -> Result<FileIndex, BitsError> { let _ = (remote_url, local_name, self.id); unimplemented!() }
    /// `Resume`.
    pub fn resume(&mut self) -> Result<(), BitsError> { unimplemented!() }
    /// `Suspend`.
    pub fn suspend(&mut self) -> Result<(), BitsError> { unimplemented!() }
    /// `Cancel`: temp files are deleted.
    pub fn cancel(&mut self) -> Result<(), BitsError> { unimplemented!() }
    /// `Complete`: transferred files are committed, others deleted.
    pub fn complete(&mut self) -> Result<CompleteOutcome, BitsError> { unimplemented!() }
    /// `SetDisplayName` (≤ 256 characters).
    pub fn set_display_name(&mut self, name: &str) -> Result<(), BitsError> { let _ = name; unimplemented!() }
    /// `SetDescription` (≤ 1,024 characters).
    pub fn set_description(&mut self, description: &str) -> Result<(), BitsError> { let _ = description; unimplemented!() }
    /// `SetPriority`.
    pub fn set_priority(&mut self, priority: JobPriority) -> Result<(), BitsError> { let _ = priority; unimplemented!() }
    /// `SetNotifyFlags` (`E_NOTIMPL` on unknown bits).
    pub fn set_notify_flags(&mut self, flags: u32) -> Result<(), BitsError> { let _ = flags; unimplemented!() }
    /// `SetMinimumRetryDelay`, seconds (clamped to ≥ 5).
    pub fn set_minimum_retry_delay(&mut self, secs: u32) -> Result<(), BitsError> { let _ = secs; unimplemented!() }
    /// `SetNoProgressTimeout`, seconds (0: every error is fatal).
    pub fn set_no_progress_timeout(&mut self, secs: u32) -> Result<(), BitsError> { let _ = secs; unimplemented!() }
    /// `SetMaximumDownloadTime`, seconds (0: no limit).
    pub fn set_maximum_download_time(&mut self, secs: u32) -> Result<(), BitsError> { let _ = secs; unimplemented!() }
}
