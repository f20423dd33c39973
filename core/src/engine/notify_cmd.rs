//! The notification command line (`SetNotifyCmdLine`): run when the job reaches TRANSFERRED or
//! ERROR (as its notify flags allow), even when set after the event; rerun after the minimum
//! retry delay while it exits non-zero and the job is still in that state (not completed,
//! cancelled or resumed).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::JobId;
use crate::input::IoFailure;
use crate::job::{JobState, NotifyFlags};
use crate::output::Action;
use crate::time::Timestamp;

use super::Engine;

/// A run of the command line that is owed: durable, so a restart still runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NotifyRun {
    /// The state whose event the run reports.
    pub(crate) state: JobState,
    /// When to run (now, or after the retry delay once a run failed).
    pub(crate) due_at: Timestamp,
}

impl Engine {
    /// The job entered `state` (or its command line was just set): owe a run when the state
    /// is one the command line reports and the notify flags want; drop a run owed for a state
    /// the job has left.
    pub(super) fn owe_notify_run(&mut self, id: JobId, state: JobState) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let flag = match state {
            JobState::Transferred => Some(NotifyFlags::JOB_TRANSFERRED),
            JobState::Error => Some(NotifyFlags::JOB_ERROR),
            _ => None,
        };
        let wanted = flag.is_some_and(|f| job.rec.notify_flags.wants(f));
        job.rec.notify_run = (wanted && job.rec.notify_cmd_line.is_some())
            .then_some(NotifyRun { state, due_at: now });
        self.run_notify_if_due(id);
    }

    /// Starts the owed run when it is due and none is running.
    pub(super) fn run_notify_if_due(&mut self, id: JobId) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let (Some(run), Some(cmd)) = (job.rec.notify_run, job.rec.notify_cmd_line.as_ref()) else {
            return;
        };
        if job.notify_running.is_some() || run.due_at > now {
            return;
        }
        if job.rec.state != run.state {
            job.rec.notify_run = None;
            return;
        }
        job.notify_running = Some(run.state);
        let action = Action::RunProgram {
            job: id,
            program: cmd.program.clone(),
            args: cmd.args(),
        };
        self.push_action(action);
    }

    /// The program ended: done on exit 0; otherwise run again after the minimum retry delay
    /// if the job is still in the state it reported.
    pub(super) fn handle_program_exited(&mut self, id: JobId, exit: Result<i32, IoFailure>) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let ran_for = job.notify_running.take();
        let Some(run) = job.rec.notify_run else {
            return;
        };
        if ran_for != Some(run.state) {
            // The run that ended reported a state the job has left; the run owed now (for the
            // state it is in) has not happened yet.
            return self.run_notify_if_due(id);
        }
        if exit == Ok(0) || job.rec.state != run.state {
            job.rec.notify_run = None;
        } else {
            let delay = Duration::from_secs(u64::from(job.rec.minimum_retry_delay));
            job.rec.notify_run = Some(NotifyRun {
                due_at: now.saturating_add(delay),
                ..run
            });
        }
        self.push_action(Action::Persist { job: id });
    }
}

/// When the job's owed run is due, if one is owed and not running.
pub(super) fn notify_deadline(job: &super::Job) -> Option<Timestamp> {
    let run = job.rec.notify_run?;
    job.notify_running.is_none().then_some(run.due_at)
}
