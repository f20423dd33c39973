//! Which jobs hold transfer slots, and every timer.
//!
//! Every FOREGROUND job runs at once (up to `max_foreground_jobs`); background jobs (HIGH,
//! NORMAL, LOW) share `max_background_jobs` slots by priority — a higher priority preempts a
//! lower one — and take turns of `time_slice` within a priority (round robin, FIFO order).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::codes;
use crate::error::{ErrorContext, JobError, Severity};
use crate::ids::{ConnId, JobId};
use crate::job::{JobPriority, JobState, Trigger};
use crate::time::Timestamp;

use super::notify_cmd::notify_deadline;
use super::Engine;

impl Engine {
    pub(super) fn schedule_if_needed(&mut self) {
        // Dispatching can finish jobs at once (no files left), which may free slots again.
        let mut rounds = 0;
        while self.needs_schedule && rounds < 8 {
            self.needs_schedule = false;
            self.schedule();
            rounds += 1;
        }
    }

    fn schedule(&mut self) {
        let mut foreground: Vec<(u64, JobId, JobState)> = Vec::new();
        let mut background: Vec<(JobPriority, u64, JobId, JobState)> = Vec::new();
        for job in self.attended_jobs() {
            let state = job.rec.state;
            if !state.is_active() || job.completing.is_some() {
                continue;
            }
            match job.rec.priority {
                JobPriority::Foreground => foreground.push((job.seq, job.rec.id, state)),
                p => background.push((p, job.seq, job.rec.id, state)),
            }
        }
        foreground.sort();
        background.sort();

        let mut running_fg = foreground.iter().filter(|j| j.2.is_running()).count();
        for &(_, id, state) in &foreground {
            if state == JobState::Queued && running_fg < self.config.max_foreground_jobs {
                running_fg += 1;
                self.dispatch(id);
            }
        }

        let slots = self.config.max_background_jobs;
        for (rank, &(_, _, id, state)) in background.iter().enumerate() {
            let wanted = rank < slots;
            if wanted && state == JobState::Queued {
                self.dispatch(id);
            } else if !wanted && state.is_running() {
                self.apply(id, Trigger::Preempt);
            }
        }
    }

    fn dispatch(&mut self, id: JobId) {
        let all_done = self
            .jobs
            .get(&id)
            .is_some_and(|j| j.rec.files.iter().all(|f| f.completed));
        if all_done {
            self.apply(id, Trigger::AllFilesDone);
            return;
        }
        self.apply(id, Trigger::Dispatch);
        self.start_next_file(id);
    }

    /// Runs every timer that is due at `self.now`. A spurious wake-up does nothing.
    pub(super) fn handle_timers(&mut self) {
        let now = self.now;
        let due_conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for conn in due_conns {
            self.handle_conn_timeout(conn);
        }
        let ids: Vec<JobId> = self.attention.iter().copied().collect();
        for id in ids {
            self.handle_job_timers(id, now);
        }
        self.rotate_slices(now);
    }

    fn handle_job_timers(&mut self, id: JobId, now: Timestamp) {
        self.run_notify_if_due(id);
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        match job.rec.state {
            JobState::TransientError => {
                let stalled_at = no_progress_deadline(job);
                let retry_at = job.rec.retry_at.unwrap_or(stalled_at);
                if stalled_at <= now && stalled_at <= retry_at {
                    self.apply(id, Trigger::NoProgressTimeout);
                } else if retry_at <= now {
                    self.apply(id, Trigger::RetryDue);
                }
            }
            s if s.is_running() && max_download_deadline(job).is_some_and(|t| t <= now) => {
                let limit = job.rec.maximum_download_time;
                let why =
                    format!("the job did not finish within its maximum download time ({limit} s)");
                let error = JobError::new(
                    ErrorContext::GeneralQueueManager,
                    codes::BG_E_MAXDOWNLOAD_TIMEOUT,
                    why,
                );
                self.fail(id, error, Severity::Fatal, None);
            }
            _ => {}
        }
    }

    /// Round robin: a background job whose slice is over yields to a queued job of its priority.
    fn rotate_slices(&mut self, now: Timestamp) {
        let contended = self.contended_priorities();
        let expired: Vec<JobId> = self
            .attended_jobs()
            .filter(|j| self.slice_end(j, &contended).is_some_and(|t| t <= now))
            .map(|j| j.rec.id)
            .collect();
        for id in expired {
            let seq = self.take_seq();
            if let Some(job) = self.jobs.get_mut(&id) {
                job.seq = seq;
            }
            self.apply(id, Trigger::Preempt);
        }
    }

    /// The background priorities with a job waiting for a slot: their running jobs' slices
    /// end (one pass, shared by every running job).
    fn contended_priorities(&self) -> BTreeSet<JobPriority> {
        self.attended_jobs()
            .filter(|o| o.rec.state == JobState::Queued && o.completing.is_none())
            .map(|o| o.rec.priority)
            .collect()
    }

    /// When a running background job's slice ends, if another job of its priority is waiting.
    fn slice_end(&self, job: &super::Job, contended: &BTreeSet<JobPriority>) -> Option<Timestamp> {
        let priority = job.rec.priority;
        if priority == JobPriority::Foreground || !job.rec.state.is_running() {
            return None;
        }
        contended.contains(&priority).then(|| {
            job.slice_started
                .unwrap_or(self.now)
                .saturating_add(self.config.time_slice)
        })
    }

    /// The earliest time anything is due.
    ///
    /// Runs after every input, so it visits each attended job once (a job's own timers, its
    /// notify-program rerun, and what its slice needs) rather than once per kind of timer.
    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        debug_assert!(self.attention_is_exact(), "the attention index is stale");
        let mut earliest = self.conns.values().map(|c| c.deadline).min();
        let mut due = |at: Timestamp| earliest = Some(earliest.map_or(at, |e| e.min(at)));
        // Per background priority: whether a job waits for a slot, and the earliest slice
        // start of its running jobs (only a contended priority's slices end).
        let mut contended = BTreeSet::new();
        let mut first_slice_start: BTreeMap<JobPriority, Timestamp> = BTreeMap::new();
        for job in self.attended_jobs() {
            let priority = job.rec.priority;
            match job.rec.state {
                JobState::TransientError => {
                    let stalled_at = no_progress_deadline(job);
                    due(job.rec.retry_at.map_or(stalled_at, |r| r.min(stalled_at)));
                }
                JobState::Queued if job.completing.is_none() => {
                    contended.insert(priority);
                }
                s if s.is_running() => {
                    if let Some(at) = max_download_deadline(job) {
                        due(at);
                    }
                    if priority != JobPriority::Foreground {
                        let start = job.slice_started.unwrap_or(self.now);
                        first_slice_start
                            .entry(priority)
                            .and_modify(|t| *t = (*t).min(start))
                            .or_insert(start);
                    }
                }
                _ => {}
            }
            if let Some(at) = notify_deadline(job) {
                due(at);
            }
        }
        for (priority, start) in first_slice_start {
            if contended.contains(&priority) {
                due(start.saturating_add(self.config.time_slice));
            }
        }
        earliest
    }

    /// Puts `id` in the attention index or takes it out, as its job now stands.
    pub(super) fn reindex(&mut self, id: JobId) {
        if self.jobs.get(&id).is_some_and(needs_attention) {
            self.attention.insert(id);
        } else {
            self.attention.remove(&id);
        }
    }

    /// The jobs in the attention index.
    fn attended_jobs(&self) -> impl Iterator<Item = &super::Job> + '_ {
        self.attention.iter().filter_map(|id| self.jobs.get(id))
    }

    /// The index holds exactly the jobs that need attention (checked in debug builds, where
    /// the simulation, the model test and the explorer run: a mutation that skipped `Persist`
    /// would show here).
    fn attention_is_exact(&self) -> bool {
        self.jobs
            .values()
            .all(|job| needs_attention(job) == self.attention.contains(&job.rec.id))
    }
}

/// Whether the scheduler or a timer can have anything to do with `job`: it holds or wants a
/// transfer slot, waits for a retry, or owes a notify-program run. Every other job (SUSPENDED,
/// TRANSFERRED, ERROR, final) waits for the application and costs nothing per input.
fn needs_attention(job: &super::Job) -> bool {
    let state = job.rec.state;
    state.is_active() || state == JobState::TransientError || job.rec.notify_run.is_some()
}

fn no_progress_deadline(job: &super::Job) -> Timestamp {
    job.rec
        .last_progress
        .saturating_add(Duration::from_secs(u64::from(job.rec.no_progress_timeout)))
}

/// When MaxDownloadTime runs out for a running job (None: no limit, or not running).
fn max_download_deadline(job: &super::Job) -> Option<Timestamp> {
    let limit = job.rec.maximum_download_time;
    let since = job.running_since?;
    if limit == 0 {
        return None;
    }
    let left = u64::from(limit)
        .saturating_mul(1000)
        .saturating_sub(job.rec.download_time_used_ms);
    Some(since.saturating_add(Duration::from_millis(left)))
}
