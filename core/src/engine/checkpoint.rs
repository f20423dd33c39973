//! Checkpoints: a persisted offset is never ahead of the bytes on disk.
//!
//! Body bytes go to the temp file as they arrive (`WriteFile`, into the page cache) and count in
//! `transferred`. Every `Config::checkpoint_bytes` bytes or `Config::checkpoint_interval`
//! (8 MiB or 5 s by default, whichever comes first), and when a file's body ends, the engine
//! asks for `SyncFile { len }`. Only when the driver answers `FileSynced { len }` does the
//! file's `synced` offset move to `len`, and the record is persisted then. A restart resumes
//! each file from `synced` (see `restore.rs`), so the worst a crash costs is the bytes since the
//! last checkpoint, never a splice of bytes that were not on disk.
//!
//! A `FileSynced` is fed before the next input (the drain contract), so no restart of the file
//! (which resets `synced` to 0) can fall between a `SyncFile` and its answer.

use crate::ids::{FileIndex, JobId};
use crate::output::Action;

use super::Engine;

impl Engine {
    /// After body bytes up to `len` were written: checkpoint if enough bytes or time have passed.
    pub(super) fn checkpoint_if_due(&mut self, id: JobId, file: FileIndex, len: u64) {
        let now = self.now;
        let (bytes, interval) = (
            self.config.checkpoint_bytes,
            self.config.checkpoint_interval,
        );
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let since = *job.last_checkpoint.get_or_insert(now);
        if job.bytes_since_persist >= bytes || now.saturating_since(since) >= interval {
            self.request_sync(id, file, len);
        }
    }

    /// Asks the driver to sync the first `len` bytes of the file; the checkpoint follows its
    /// answer.
    pub(super) fn request_sync(&mut self, id: JobId, file: FileIndex, len: u64) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.bytes_since_persist = 0;
        job.last_checkpoint = Some(now);
        job.sync_pending = Some((file, len));
        self.push_action(Action::SyncFile { job: id, file, len });
    }

    /// A write (or sync) of the file failed: the pending sync cannot vouch for its bytes.
    pub(super) fn forget_pending_sync(&mut self, id: JobId, file: FileIndex) {
        if let Some(job) = self.jobs.get_mut(&id) {
            job.sync_pending.take_if(|(f, _)| *f == file);
        }
    }

    /// `FileSynced`: the first `len` bytes are on disk. Record that, and persist the record.
    pub(super) fn handle_file_synced(&mut self, id: JobId, file: FileIndex, len: u64) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.sync_pending != Some((file, len)) {
            return; // superseded by a later sync of the job
        }
        job.sync_pending = None;
        let Some(f) = job.rec.files.get_mut(file as usize) else {
            return;
        };
        if len > f.transferred {
            return; // the file was cut back meanwhile: those bytes are not this version's
        }
        f.synced = f.synced.max(len);
        // MaxDownloadTime: bank the running time, so a crash loses at most one interval of it.
        if let Some(since) = job.running_since.as_mut() {
            let ran = u64::try_from(now.saturating_since(*since).as_millis()).unwrap_or(u64::MAX);
            job.rec.download_time_used_ms = job.rec.download_time_used_ms.saturating_add(ran);
            *since = now;
        }
        self.push_action(Action::Persist { job: id });
    }
}
