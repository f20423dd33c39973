//! Every job-state transition, in one `match`.
//!
//! # Theory of operation
//!
//! A job is in one of BITS' nine states ([`JobState`]). Something that may change the state is a
//! [`Trigger`]: an application command (resume, suspend, cancel, complete), a scheduling decision
//! (dispatch, preempt), a transfer fact (response accepted, all files done, a transient or fatal
//! failure), or a timer (retry due, no-progress timeout, maximum download time). [`transition`]
//! maps `(state, trigger)` to an [`Outcome`]: move to a state, stay, ignore, or refuse with a BITS
//! code. It is a pure function of the two, so its whole table can be rendered
//! ([`render_table`]) into `docs/job-states.md`, which a test keeps in sync.
//!
//! Two rules keep this file honest (after h11's `_state.py`):
//! 1. Everything that decides a job's next state lives here. The engine computes the trigger
//!    (including guard facts such as "the job has no files") and applies the outcome; it never
//!    writes a state itself.
//! 2. This file knows nothing of HTTP, files or timers' values: only states and triggers.

use serde::{Deserialize, Serialize};

use crate::codes::{self, HResult};

/// `BG_JOB_STATE`, with BITS' values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u32)]
pub enum JobState {
    /// `BG_JOB_STATE_QUEUED`: waiting for the scheduler.
    Queued = 0,
    /// `BG_JOB_STATE_CONNECTING`: a request is out, no response accepted yet.
    Connecting = 1,
    /// `BG_JOB_STATE_TRANSFERRING`: body bytes are flowing.
    Transferring = 2,
    /// `BG_JOB_STATE_SUSPENDED`: the initial state; also after `suspend`.
    Suspended = 3,
    /// `BG_JOB_STATE_ERROR`: a fatal error; fix and resume, cancel, or complete.
    Error = 4,
    /// `BG_JOB_STATE_TRANSIENT_ERROR`: retried after the retry delay.
    TransientError = 5,
    /// `BG_JOB_STATE_TRANSFERRED`: every file is transferred; call complete.
    Transferred = 6,
    /// `BG_JOB_STATE_ACKNOWLEDGED`: completed (final).
    Acknowledged = 7,
    /// `BG_JOB_STATE_CANCELLED`: cancelled (final).
    Cancelled = 8,
}

impl JobState {
    /// All nine states, in BITS' order.
    pub const ALL: [JobState; 9] = [
        Self::Queued,
        Self::Connecting,
        Self::Transferring,
        Self::Suspended,
        Self::Error,
        Self::TransientError,
        Self::Transferred,
        Self::Acknowledged,
        Self::Cancelled,
    ];

    /// BITS' name without the prefix, e.g. `TRANSIENT_ERROR`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Connecting => "CONNECTING",
            Self::Transferring => "TRANSFERRING",
            Self::Suspended => "SUSPENDED",
            Self::Error => "ERROR",
            Self::TransientError => "TRANSIENT_ERROR",
            Self::Transferred => "TRANSFERRED",
            Self::Acknowledged => "ACKNOWLEDGED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// ACKNOWLEDGED or CANCELLED: no state-changing call is accepted.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Acknowledged | Self::Cancelled)
    }

    /// TRANSFERRED, ERROR, ACKNOWLEDGED or CANCELLED: nothing more happens until the
    /// application acts (what a driver's `wait` waits for).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Self::Transferred | Self::Error | Self::Acknowledged | Self::Cancelled
        )
    }

    /// QUEUED, CONNECTING or TRANSFERRING: the scheduler owns the job.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Connecting | Self::Transferring)
    }

    /// CONNECTING or TRANSFERRING: the job holds a transfer slot.
    pub fn is_running(self) -> bool {
        matches!(self, Self::Connecting | Self::Transferring)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that may change a job's state. Guard facts ride along as fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The application called `resume`.
    Resume {
        /// The job has no files (`BG_E_EMPTY`).
        empty: bool,
        /// Every file is already transferred.
        all_done: bool,
    },
    /// The application called `suspend`.
    Suspend,
    /// The application called `cancel`.
    Cancel,
    /// The application called `complete`: finished files are being committed.
    Complete,
    /// Every commit of `complete` succeeded.
    CommitsDone,
    /// A commit of `complete` failed: BITS keeps the job in TRANSFERRED.
    CommitFailed,
    /// The scheduler gave the job a transfer slot and a request is going out.
    Dispatch,
    /// A request for the next file is going out on the job's slot.
    RequestSent,
    /// A success response was accepted; body bytes follow.
    ResponseAccepted,
    /// Every file is transferred.
    AllFilesDone,
    /// The scheduler took the slot away (a higher priority, or the time slice ended).
    Preempt,
    /// A retryable failure.
    TransientFailure,
    /// A fatal failure (also: a transient one when retrying is pointless).
    FatalFailure,
    /// The retry delay of a TRANSIENT_ERROR ran out.
    RetryDue,
    /// No progress for NoProgressTimeout while in TRANSIENT_ERROR.
    NoProgressTimeout,
    /// MaxDownloadTime ran out.
    MaxDownloadTimeout,
}

impl Trigger {
    /// Every trigger, with every combination of guard facts: the rows of the table.
    pub const ALL: [Trigger; 19] = [
        Self::Resume {
            empty: true,
            all_done: false,
        },
        Self::Resume {
            empty: false,
            all_done: false,
        },
        Self::Resume {
            empty: false,
            all_done: true,
        },
        Self::Suspend,
        Self::Cancel,
        Self::Complete,
        Self::CommitsDone,
        Self::CommitFailed,
        Self::Dispatch,
        Self::RequestSent,
        Self::ResponseAccepted,
        Self::AllFilesDone,
        Self::Preempt,
        Self::TransientFailure,
        Self::FatalFailure,
        Self::RetryDue,
        Self::NoProgressTimeout,
        Self::MaxDownloadTimeout,
        Self::Resume {
            empty: true,
            all_done: true,
        },
    ];

    /// A short label for the table.
    pub fn label(self) -> String {
        match self {
            Self::Resume { empty: true, .. } => "resume (no files)".into(),
            Self::Resume { all_done: true, .. } => "resume (all files done)".into(),
            Self::Resume { .. } => "resume".into(),
            other => {
                let s = format!("{other:?}");
                let mut out = String::new();
                for (i, c) in s.chars().enumerate() {
                    if c.is_uppercase() && i > 0 {
                        out.push(' ');
                    }
                    out.push(c.to_ascii_lowercase());
                }
                out
            }
        }
    }
}

/// What a trigger does to a job in a given state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The job moves to this state.
    Move(JobState),
    /// The call succeeds and the state stays (e.g. resume while QUEUED).
    Stay,
    /// The call is refused with this code; nothing changes.
    Refuse(HResult),
    /// The fact does not apply in this state (e.g. a late response after suspend); dropped.
    Ignore,
}

/// The single transition function: `(state, trigger) → outcome`.
pub fn transition(state: JobState, trigger: Trigger) -> Outcome {
    use JobState::*;
    use Outcome::*;
    use Trigger as T;

    match (state, trigger) {
        // Final states refuse every command and drop every fact.
        (Acknowledged | Cancelled, T::Resume { .. } | T::Suspend | T::Cancel | T::Complete) => {
            Refuse(codes::BG_E_INVALID_STATE)
        }
        (Acknowledged | Cancelled, _) => Ignore,

        // resume
        (_, T::Resume { empty: true, .. }) => Refuse(codes::BG_E_EMPTY),
        (Queued | Connecting | Transferring, T::Resume { .. }) => Stay,
        (Transferred, T::Resume { all_done: true, .. }) => Stay,
        (Suspended | Error | TransientError | Transferred, T::Resume { .. }) => Move(Queued),

        // suspend, cancel, complete: allowed in every non-final state
        (Suspended, T::Suspend) => Stay,
        (_, T::Suspend) => Move(Suspended),
        (_, T::Cancel) => Move(Cancelled),
        (_, T::Complete) => Stay,
        (_, T::CommitsDone) => Move(Acknowledged),
        (_, T::CommitFailed) => Move(Transferred),

        // the scheduler
        (Queued, T::Dispatch) => Move(Connecting),
        (Queued, T::AllFilesDone) => Move(Transferred),
        (Connecting | Transferring, T::Preempt) => Move(Queued),
        (Transferring, T::RequestSent) => Move(Connecting),
        (Connecting, T::RequestSent) => Stay,
        (Connecting, T::ResponseAccepted) => Move(Transferring),
        (Connecting | Transferring, T::AllFilesDone) => Move(Transferred),

        // failures
        // TRANSFERRED too: a write of the last bytes may fail after the response ended.
        (Queued | Connecting | Transferring | Transferred, T::TransientFailure) => {
            Move(TransientError)
        }
        (Queued | Connecting | Transferring | TransientError | Transferred, T::FatalFailure) => {
            Move(Error)
        }
        (TransientError, T::RetryDue) => Move(Queued),
        (TransientError, T::NoProgressTimeout) => Move(Error),
        (Queued | Connecting | Transferring | TransientError, T::MaxDownloadTimeout) => Move(Error),

        // Everything else is a fact that no longer applies (a late response, a stale timer).
        (
            _,
            T::Dispatch
            | T::RequestSent
            | T::ResponseAccepted
            | T::AllFilesDone
            | T::Preempt
            | T::TransientFailure
            | T::FatalFailure
            | T::RetryDue
            | T::NoProgressTimeout
            | T::MaxDownloadTimeout,
        ) => Ignore,
    }
}

/// The whole transition table as Markdown: one row per trigger, one column per state.
pub fn render_table() -> String {
    let mut out = String::new();
    out.push_str("| trigger |");
    for s in JobState::ALL {
        out.push_str(&format!(" {} |", s.name()));
    }
    out.push('\n');
    out.push_str("|---|");
    for _ in JobState::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    let mut labels = Vec::new();
    for t in Trigger::ALL {
        // Guard combinations with the same outcome share a label: one row each.
        if labels.contains(&t.label()) {
            continue;
        }
        labels.push(t.label());
        out.push_str(&format!("| {} |", t.label()));
        for s in JobState::ALL {
            let cell = match transition(s, t) {
                Outcome::Move(to) if to == s => format!("→ {}", to.name()),
                Outcome::Move(to) => format!("**→ {}**", to.name()),
                Outcome::Stay => "stays".to_string(),
                Outcome::Refuse(code) => code.name_or_hex(),
                Outcome::Ignore => "·".to_string(),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_refuse_every_command() {
        for s in [JobState::Acknowledged, JobState::Cancelled] {
            for t in [Trigger::Suspend, Trigger::Cancel, Trigger::Complete] {
                assert_eq!(transition(s, t), Outcome::Refuse(codes::BG_E_INVALID_STATE));
            }
        }
    }

    #[test]
    fn resume_without_files_is_bg_e_empty_and_stays_suspended() {
        let t = Trigger::Resume {
            empty: true,
            all_done: false,
        };
        assert_eq!(
            transition(JobState::Suspended, t),
            Outcome::Refuse(codes::BG_E_EMPTY)
        );
    }

    #[test]
    fn transient_error_is_retried_and_times_out() {
        assert_eq!(
            transition(JobState::TransientError, Trigger::RetryDue),
            Outcome::Move(JobState::Queued)
        );
        assert_eq!(
            transition(JobState::TransientError, Trigger::NoProgressTimeout),
            Outcome::Move(JobState::Error)
        );
    }

    #[test]
    fn no_trigger_leaves_a_final_state() {
        for t in Trigger::ALL {
            for s in [JobState::Acknowledged, JobState::Cancelled] {
                assert!(
                    !matches!(transition(s, t), Outcome::Move(_)),
                    "{t:?} moved {s:?}"
                );
            }
        }
    }
}
