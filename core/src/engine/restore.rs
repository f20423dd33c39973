//! [`Engine::restore`]: a job back from its record after a restart, with BITS' rules for what
//! a restart means.
//!
//! - CONNECTING and TRANSFERRING come back QUEUED: the scheduler starts them again.
//! - QUEUED, SUSPENDED, ERROR and TRANSFERRED stay; TRANSIENT_ERROR keeps its retry time.
//! - ACKNOWLEDGED and CANCELLED are final: their record should have been forgotten, so it is
//!   (a `Forget` is queued) and the job is not restored.
//! - Each unfinished file resumes from its last checkpoint (`synced`), never from bytes written
//!   after it. A file marked completed whose completion was not checkpointed is not completed,
//!   and a TRANSFERRED job with such a file is QUEUED again to fetch the rest.
//! - Its temp file is re-opened with `OpenTemp { create: false }` when the transfer restarts:
//!   longer than the checkpoint, it is cut back; shorter, the file resumes from there; missing,
//!   the file starts over in a new temp file (`transfer.rs`).
//!
//! Time: MaxDownloadTime counts only time spent CONNECTING/TRANSFERRING (the time the process
//! was down is not counted), banked at each checkpoint and state change. NoProgressTimeout and
//! the retry time are wall time, so downtime counts toward them: a job down longer than its
//! retry delay is retried at once. A wall clock stepped backwards while the process was down
//! would put recorded times in the future; they are capped: the last progress at now, the
//! retry time at now + NoProgressTimeout (the longest delay the engine ever sets).

use std::time::Duration;

use crate::codes;
use crate::error::BitsError;
use crate::job::JobState;
use crate::output::Action;

use super::{Engine, Job, JobRecord};

impl Engine {
    /// Puts a job back in the state its record says (see the module documentation for what a
    /// restart changes). Restore records oldest first: their order is the round-robin order.
    /// Drain the outputs (a `Persist` of the restored record, or a `Forget`), then feed any input
    /// (an `Input::Timeout`) once every record is restored: that is when the scheduler starts
    /// the queued jobs.
    ///
    /// `E_INVALIDARG` if a job with the same id is already in the engine.
    pub fn restore(&mut self, mut rec: JobRecord) -> Result<(), BitsError> {
        let id = rec.id;
        if self.jobs.contains_key(&id) {
            return Err(BitsError::new(
                codes::E_INVALIDARG,
                format!("job {id} is already loaded"),
            ));
        }
        if rec.state.is_final() {
            self.push_action(Action::Forget { job: id });
            return Ok(());
        }
        let mut unfinished = false;
        for f in rec.files.iter_mut().filter(|f| !f.committed) {
            if f.temp.is_none() {
                f.reset_version();
            }
            f.synced = f.synced.min(f.transferred);
            f.transferred = f.synced;
            if f.completed && f.size != Some(f.synced) {
                f.completed = false;
            }
            unfinished |= !f.completed;
        }
        rec.state = match rec.state {
            JobState::Connecting | JobState::Transferring => JobState::Queued,
            JobState::Transferred if unfinished => JobState::Queued,
            state => state,
        };
        if rec.state != JobState::TransientError {
            rec.retry_at = None;
        }
        let now = self.now;
        rec.last_progress = rec.last_progress.min(now);
        let longest_delay = Duration::from_secs(u64::from(rec.no_progress_timeout));
        rec.retry_at = rec
            .retry_at
            .map(|at| at.min(now.saturating_add(longest_delay)));
        let seq = self.take_seq();
        self.jobs.insert(id, Job::new(rec, seq));
        self.push_action(Action::Persist { job: id });
        self.needs_schedule = true;
        Ok(())
    }
}

impl JobRecord {
    /// The state the record was saved in.
    pub fn state(&self) -> JobState {
        self.state
    }

    /// When the job was created: restore records in this order.
    pub fn created(&self) -> crate::Timestamp {
        self.times.creation
    }

    /// The job's display name.
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// Per file, in order: the offset a restart resumes from (its last checkpoint).
    pub fn checkpoints(&self) -> Vec<u64> {
        self.files.iter().map(|f| f.synced).collect()
    }
}
