//! Read access to a job: BITS' getters.

use std::path::PathBuf;

use crate::codes;
use crate::error::{BitsError, JobError};
use crate::ids::{FileIndex, JobId};
use crate::job::{
    Caller, FileProgress, FileRange, JobPriority, JobProgress, JobState, JobTimes, JobType,
    NotifyFlags, Owner, SecurityFlags, SIZE_UNKNOWN,
};

use super::Job;

/// Read access to one job (`IBackgroundCopyJob`'s getters).
#[derive(Debug, Clone, Copy)]
pub struct JobView<'a> {
    job: &'a Job,
    /// The caller owns the job (always, for the embedding application).
    by_owner: bool,
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
    /// `GetSecurityFlags`.
    pub security_flags: SecurityFlags,
}

/// One file of a job as the application sees it (`IBackgroundCopyFile`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Position in the job.
    pub index: FileIndex,
    /// The remote URL (after an ALLOW_REPORT redirect, the final URL).
    pub remote_name: String,
    /// The local name the file appears at on Complete.
    pub local_name: PathBuf,
    /// The hidden temp file, once chosen.
    pub temporary_name: Option<PathBuf>,
    /// `BG_FILE_PROGRESS`.
    pub progress: FileProgress,
}

impl<'a> JobView<'a> {
    pub(super) fn new(job: &'a Job) -> Self {
        Self {
            job,
            by_owner: true,
        }
    }

    /// The same view, as `caller` sees it (an administrator who is not the owner cannot read
    /// the owner's custom headers).
    pub(super) fn for_caller(self, caller: &Caller) -> Self {
        Self {
            by_owner: self.job.rec.owner == caller.owner,
            ..self
        }
    }

    /// `GetCustomHeaders`: `Ok(None)` when none are set (BITS' `S_FALSE`); `E_ACCESSDENIED`
    /// for anyone but the owner, and for everyone once `MakeCustomHeadersWriteOnly` was called.
    pub fn custom_headers(&self) -> Result<Option<String>, BitsError> {
        if !self.by_owner {
            return Err(BitsError::new(
                codes::E_ACCESSDENIED,
                "only the job's owner may read its custom headers",
            ));
        }
        if self.job.rec.custom_headers_write_only {
            return Err(BitsError::new(
                codes::E_ACCESSDENIED,
                "the custom headers were made write-only",
            ));
        }
        Ok(self.job.rec.custom_headers.as_ref().map(|h| h.to_text()))
    }

    /// `GetId`.
    pub fn id(&self) -> JobId {
        self.job.rec.id
    }

    /// `GetDisplayName`.
    pub fn display_name(&self) -> &'a str {
        &self.job.rec.display_name
    }

    /// `GetDescription`.
    pub fn description(&self) -> &'a str {
        &self.job.rec.description
    }

    /// `GetType`.
    pub fn job_type(&self) -> JobType {
        self.job.rec.job_type
    }

    /// `GetPriority`.
    pub fn priority(&self) -> JobPriority {
        self.job.rec.priority
    }

    /// `GetOwner`.
    pub fn owner(&self) -> &'a Owner {
        &self.job.rec.owner
    }

    /// `GetState`.
    pub fn state(&self) -> JobState {
        self.job.rec.state
    }

    /// `GetProgress`: totals are `SIZE_UNKNOWN` while any file's size is unknown.
    pub fn progress(&self) -> JobProgress {
        let files = &self.job.rec.files;
        let bytes_total = files
            .iter()
            .try_fold(0u64, |sum, f| f.local_len().map(|s| sum.saturating_add(s)))
            .unwrap_or(SIZE_UNKNOWN);
        JobProgress {
            bytes_total,
            bytes_transferred: files.iter().map(|f| f.transferred).sum(),
            files_total: u32::try_from(files.len()).unwrap_or(u32::MAX),
            files_transferred: u32::try_from(files.iter().filter(|f| f.completed).count())
                .unwrap_or(u32::MAX),
        }
    }

    /// `EnumFiles` with each file's names and progress.
    pub fn files(&self) -> Vec<FileInfo> {
        self.job
            .rec
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| FileInfo {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                remote_name: f.remote.to_string(),
                local_name: f.local.clone(),
                temporary_name: f.temp.clone(),
                progress: f.progress(),
            })
            .collect()
    }

    /// `IBackgroundCopyFile2::GetFileRanges`: the ranges `AddFileWithRanges` gave, in their
    /// order (empty for a file added whole). An index past the job's files is `E_INVALIDARG`.
    pub fn file_ranges(&self, file: FileIndex) -> Result<Vec<FileRange>, BitsError> {
        self.job
            .rec
            .files
            .get(file as usize)
            .map(|f| f.ranges.clone())
            .ok_or_else(|| {
                BitsError::new(codes::E_INVALIDARG, format!("the job has no file {file}"))
            })
    }

    /// `GetTimes`.
    pub fn times(&self) -> JobTimes {
        self.job.rec.times
    }

    /// `GetError`: `BG_E_ERROR_INFORMATION_UNAVAILABLE` outside ERROR and TRANSIENT_ERROR.
    pub fn error(&self) -> Result<&'a JobError, BitsError> {
        let state = self.job.rec.state;
        match (&self.job.rec.error, state) {
            (Some(error), JobState::Error | JobState::TransientError) => Ok(error),
            _ => Err(BitsError::new(
                codes::BG_E_ERROR_INFORMATION_UNAVAILABLE,
                format!("the job is {state}, not ERROR or TRANSIENT_ERROR"),
            )),
        }
    }

    /// Why the files could not all be moved into place by `complete`: BITS' `Complete` returns
    /// the rename's error and leaves the job TRANSFERRED, so this is the error recorded on a
    /// TRANSFERRED job (which `GetError` does not show outside ERROR and TRANSIENT_ERROR).
    /// [`Engine::commit_result`](crate::Engine::commit_result) returns it.
    pub fn commit_error(&self) -> Option<&'a JobError> {
        match (&self.job.rec.error, self.job.rec.state) {
            (Some(error), JobState::Transferred) => Some(error),
            _ => None,
        }
    }

    /// `GetErrorCount`.
    pub fn error_count(&self) -> u32 {
        self.job.rec.error_count
    }

    /// `GetNotifyFlags`.
    pub fn notify_flags(&self) -> NotifyFlags {
        self.job.rec.notify_flags
    }

    /// `GetMinimumRetryDelay`, in seconds.
    pub fn minimum_retry_delay(&self) -> u32 {
        self.job.rec.minimum_retry_delay
    }

    /// `GetNoProgressTimeout`, in seconds.
    pub fn no_progress_timeout(&self) -> u32 {
        self.job.rec.no_progress_timeout
    }

    /// `GetMaximumDownloadTime`, in seconds (0: no limit).
    pub fn maximum_download_time(&self) -> u32 {
        self.job.rec.maximum_download_time
    }

    /// `GetSecurityFlags`.
    pub fn security_flags(&self) -> SecurityFlags {
        self.job.rec.security_flags
    }

    /// Whether the job wants a server-certificate validation callback, and whether one is
    /// registered now: `(wants, registered)`. After a restart a job can want one that is not
    /// registered; its HTTPS transfers then stop with
    /// `BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED`.
    pub fn certificate_validation(&self) -> (bool, bool) {
        (
            self.job.rec.wants_certificate_validation,
            self.job.validation.registered,
        )
    }

    /// `GetProxySettings`.
    pub fn proxy_settings(&self) -> &'a crate::proxy::ProxySettings {
        &self.job.rec.proxy
    }

    /// `GetNotifyCmdLine`: `(program, parameters)`, if set.
    pub fn notify_cmd_line(&self) -> Option<(&'a str, Option<&'a str>)> {
        let cmd = self.job.rec.notify_cmd_line.as_ref()?;
        Some((cmd.program.as_str(), cmd.parameters.as_deref()))
    }

    /// Everything at once, owned.
    pub fn info(&self) -> JobInfo {
        JobInfo {
            id: self.id(),
            display_name: self.display_name().to_string(),
            description: self.description().to_string(),
            job_type: self.job_type(),
            priority: self.priority(),
            owner: self.owner().clone(),
            state: self.state(),
            progress: self.progress(),
            files: self.files(),
            times: self.times(),
            error: self.error().ok().cloned(),
            error_count: self.error_count(),
            notify_flags: self.notify_flags(),
            minimum_retry_delay: self.minimum_retry_delay(),
            no_progress_timeout: self.no_progress_timeout(),
            maximum_download_time: self.maximum_download_time(),
            security_flags: self.security_flags(),
        }
    }
}
