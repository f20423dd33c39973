//! Turning a fault into job state: record the error, then TRANSIENT_ERROR (retried after the
//! retry delay) or ERROR, following BITS' rules on the retry delay and the no-progress timeout.

use std::time::Duration;

use crate::error::{JobError, Severity};
use crate::ids::{FileIndex, JobId};
use crate::input::IoFailure;
use crate::job::Trigger;

use super::Engine;

impl Engine {
    /// Records `error` on the job and moves it to TRANSIENT_ERROR or ERROR.
    ///
    /// A transient fault becomes fatal when retrying is pointless: NoProgressTimeout is 0, the
    /// retry delay exceeds NoProgressTimeout, or the job has made no progress for the whole
    /// NoProgressTimeout already.
    pub(super) fn fail(
        &mut self,
        id: JobId,
        mut error: JobError,
        severity: Severity,
        retry_after: Option<Duration>,
    ) {
        let now = self.now;
        self.stop_fetch(id);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if error.file.is_none() {
            error.file = job
                .fetch
                .as_ref()
                .map(|f| f.file)
                .or_else(|| current_file(&job.rec.files));
        }
        job.rec.error = Some(error);
        job.rec.error_count = job.rec.error_count.saturating_add(1);
        let no_progress = Duration::from_secs(u64::from(job.rec.no_progress_timeout));
        let min_delay = Duration::from_secs(u64::from(job.rec.minimum_retry_delay));
        let stalled = now.saturating_since(job.rec.last_progress) >= no_progress;
        let retry = severity == Severity::Transient
            && !no_progress.is_zero()
            && min_delay <= no_progress
            && !stalled;
        if retry {
            // Retry-After may only lengthen the wait, and never past the no-progress deadline.
            let delay = retry_after
                .map_or(min_delay, |r| r.max(min_delay))
                .min(no_progress);
            job.rec.retry_at = Some(now.saturating_add(delay));
            self.apply(id, Trigger::TransientFailure);
        } else {
            self.apply(id, Trigger::FatalFailure);
        }
    }

    pub(super) fn handle_commit_failed(&mut self, id: JobId, file: FileIndex, error: &IoFailure) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(completing) = job.completing.as_mut() else {
            return;
        };
        completing.pending = completing.pending.saturating_sub(1);
        completing.failed = true;
        let local = job.rec.files[file as usize].local.display().to_string();
        job.rec.error = Some(
            JobError::new(
                crate::ErrorContext::LocalFile,
                commit_code(error),
                format!(
                    "cannot move the finished file to {local}: {}",
                    error.message
                ),
            )
            .for_file(file),
        );
        if job.completing.is_some_and(|c| c.pending == 0) {
            self.finish_completing(id);
        }
    }

    pub(super) fn handle_file_committed(&mut self, id: JobId, file: FileIndex) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(completing) = job.completing.as_mut() else {
            return;
        };
        completing.pending = completing.pending.saturating_sub(1);
        job.rec.files[file as usize].committed = true;
        if job.completing.is_some_and(|c| c.pending == 0) {
            self.finish_completing(id);
        }
    }

    /// Every commit of `complete` has been reported: ACKNOWLEDGED, or TRANSFERRED if one failed.
    pub(super) fn finish_completing(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(completing) = job.completing.take() else {
            return;
        };
        let trigger = if completing.failed {
            Trigger::CommitFailed
        } else {
            Trigger::CommitsDone
        };
        self.apply(id, trigger);
    }
}

fn current_file(files: &[crate::job::file::JobFile]) -> Option<FileIndex> {
    files
        .iter()
        .position(|f| !f.completed)
        .and_then(|i| FileIndex::try_from(i).ok())
}

fn commit_code(error: &IoFailure) -> crate::HResult {
    use crate::codes;
    use crate::input::IoFailureKind;
    match error.kind {
        IoFailureKind::NotFound => codes::ERROR_PATH_NOT_FOUND,
        IoFailureKind::PermissionDenied => codes::E_ACCESSDENIED,
        IoFailureKind::DiskFull => codes::ERROR_DISK_FULL,
        _ => codes::ERROR_WRITE_FAULT,
    }
}
