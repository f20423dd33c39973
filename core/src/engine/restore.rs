//! [`Engine::restore`]: a job back from its record after a restart, with BITS' rules for what
//! a restart means.
//!
//! - CONNECTING and TRANSFERRING come back QUEUED: the scheduler starts them again.
//! - QUEUED, SUSPENDED, ERROR and TRANSFERRED stay; TRANSIENT_ERROR keeps its retry time.
//! - ACKNOWLEDGED and CANCELLED are final: the job is not restored and its record is forgotten.
//!   A CANCELLED record means a crash came while `cancel` deleted the temp files: they are
//!   deleted (again) first.
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
use crate::ids::JobId;

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
            if rec.state == JobState::Cancelled {
                for (i, f) in rec.files.iter().enumerate().filter(|(_, f)| !f.committed) {
                    if let Some(path) = f.temp.clone() {
                        let file = crate::ids::FileIndex::try_from(i).unwrap_or(u32::MAX);
                        self.push_action(Action::DeleteTemp {
                            job: id,
                            file,
                            path,
                        });
                    }
                }
            }
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
            if f.completed && f.local_len() != Some(f.synced) {
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
        self.live.add(&rec.owner);
        self.jobs.insert(id, Job::new(rec, seq));
        self.push_action(Action::Persist { job: id });
        self.needs_schedule = true;
        Ok(())
    }

    /// Keeps `id` from ever being given to a new job: the store holds a record under it that
    /// could not be restored (corrupt, or from a newer version), which a new job would overwrite.
    pub fn reserve_id(&mut self, id: JobId) {
        self.reserved_ids.insert(id);
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::input::Input;
    use crate::job::{JobType, Owner};
    use crate::output::Output;
    use crate::time::Timestamp;

    const T0: Timestamp = Timestamp::from_secs(1_000_000);

    /// A record of a two-file job in `state`, its first file written to 700 of 1000 bytes and
    /// checkpointed at 400.
    fn record_in(state: JobState) -> JobRecord {
        let mut engine = Engine::new(Config::new([9; 32]), T0);
        let id = engine
            .create_job("j", JobType::Download, Owner("o".into()))
            .unwrap();
        for name in ["/dl/a", "/dl/b"] {
            engine
                .job_mut(id)
                .unwrap()
                .add_file("http://h/x", Path::new(name))
                .unwrap();
        }
        let mut rec = engine.job_record(id).unwrap().clone();
        rec.state = state;
        let f = &mut rec.files[0];
        f.temp = Some("/dl/.a.1.backhaul".into());
        f.size = Some(1000);
        f.etag = Some("\"e\"".into());
        f.transferred = 700;
        f.synced = 400;
        rec
    }

    /// Every action queued now, in order (events skipped).
    fn actions(engine: &mut Engine) -> Vec<Action> {
        let mut out = Vec::new();
        loop {
            match engine.poll_output() {
                Output::Action(a) => out.push(a),
                Output::Event(_) => {}
                Output::Timeout(_) => return out,
            }
        }
    }

    /// A new engine (a restarted process) at `now` with `rec` restored: the actions of the
    /// restore, then those of the first scheduling pass.
    fn restart(rec: JobRecord, now: Timestamp) -> (Engine, Vec<Action>, Vec<Action>) {
        let mut engine = Engine::new(Config::new([10; 32]), now);
        engine.restore(rec).unwrap();
        let restored = actions(&mut engine);
        engine.handle(Input::Timeout { now });
        let scheduled = actions(&mut engine);
        (engine, restored, scheduled)
    }

    #[test]
    fn a_transferring_job_comes_back_queued_and_reopens_its_temp_file_at_the_checkpoint() {
        let rec = record_in(JobState::Transferring);
        let id = rec.id;
        let (engine, restored, scheduled) = restart(rec, T0);
        assert_eq!(restored, vec![Action::Persist { job: id }]);
        let view = engine.job(id).unwrap();
        assert_eq!(
            view.state(),
            JobState::Connecting,
            "queued, then dispatched"
        );
        assert_eq!(view.files()[0].progress.bytes_transferred, 400);
        assert!(scheduled.contains(&Action::OpenTemp {
            job: id,
            file: 0,
            path: "/dl/.a.1.backhaul".into(),
            create: false,
        }));
    }

    #[test]
    fn a_temp_file_longer_than_the_checkpoint_is_cut_back_to_it() {
        let rec = record_in(JobState::Queued);
        let id = rec.id;
        let (mut engine, _, _) = restart(rec, T0);
        engine.handle(Input::TempOpened {
            now: T0,
            job: id,
            file: 0,
            len: 700,
        });
        let out = actions(&mut engine);
        assert_eq!(
            out.first(),
            Some(&Action::TruncateFile {
                job: id,
                file: 0,
                len: 400
            })
        );
    }

    #[test]
    fn a_temp_file_shorter_than_the_checkpoint_resumes_from_its_length() {
        let rec = record_in(JobState::Queued);
        let id = rec.id;
        let (mut engine, _, _) = restart(rec, T0);
        engine.handle(Input::TempOpened {
            now: T0,
            job: id,
            file: 0,
            len: 250,
        });
        let _ = actions(&mut engine);
        let file = &engine.job_record(id).unwrap().files[0];
        assert_eq!((file.transferred, file.synced), (250, 250));
    }

    #[test]
    fn a_missing_temp_file_restarts_the_file_from_byte_0() {
        let rec = record_in(JobState::Queued);
        let id = rec.id;
        let (mut engine, _, _) = restart(rec, T0);
        engine.handle(Input::FileFailed {
            now: T0,
            job: id,
            file: 0,
            op: crate::input::FileOp::OpenTemp,
            error: crate::input::IoFailure::new(crate::input::IoFailureKind::NotFound, "gone"),
        });
        let out = actions(&mut engine);
        assert_eq!(
            out,
            vec![Action::OpenTemp {
                job: id,
                file: 0,
                path: "/dl/.a.1.backhaul".into(),
                create: true,
            }]
        );
        let file = &engine.job_record(id).unwrap().files[0];
        assert_eq!(
            (file.transferred, file.size, file.etag.clone()),
            (0, None, None)
        );
        assert_eq!(engine.job(id).unwrap().state(), JobState::Connecting);
    }

    #[test]
    fn suspended_error_and_transferred_jobs_stay_as_they_were() {
        for state in [JobState::Suspended, JobState::Error, JobState::Transferred] {
            let mut rec = record_in(state);
            if state == JobState::Transferred {
                for f in &mut rec.files {
                    f.temp = Some("/dl/.t".into());
                    f.size = Some(10);
                    (f.transferred, f.synced, f.completed) = (10, 10, true);
                }
            }
            let id = rec.id;
            let (engine, _, scheduled) = restart(rec, T0);
            assert_eq!(engine.job(id).unwrap().state(), state);
            assert!(
                !scheduled
                    .iter()
                    .any(|a| matches!(a, Action::OpenTemp { .. })),
                "{state} does not start"
            );
        }
    }

    #[test]
    fn a_transferred_job_whose_last_file_was_not_synced_fetches_it_again() {
        let mut rec = record_in(JobState::Transferred);
        for f in &mut rec.files {
            f.temp = Some("/dl/.t".into());
            f.size = Some(10);
            (f.transferred, f.synced, f.completed) = (10, 10, true);
        }
        rec.files[1].synced = 4; // completed, but the crash came before its sync was confirmed
        let id = rec.id;
        let (engine, _, _) = restart(rec, T0);
        let view = engine.job(id).unwrap();
        assert_eq!(view.state(), JobState::Connecting);
        assert!(view.files()[0].progress.completed);
        assert!(!view.files()[1].progress.completed);
        assert_eq!(view.files()[1].progress.bytes_transferred, 4);
    }

    #[test]
    fn a_transient_error_keeps_its_retry_time_and_retries_when_it_is_due() {
        let mut rec = record_in(JobState::TransientError);
        let retry_at = T0.saturating_add(Duration::from_secs(600));
        rec.retry_at = Some(retry_at);
        rec.last_progress = T0;
        let id = rec.id;
        let (mut engine, _, _) = restart(rec, T0.saturating_add(Duration::from_secs(60)));
        assert_eq!(engine.job(id).unwrap().state(), JobState::TransientError);
        assert!(matches!(engine.poll_output(), Output::Timeout(Some(t)) if t == retry_at));
        engine.handle(Input::Timeout { now: retry_at });
        let _ = actions(&mut engine);
        assert_eq!(engine.job(id).unwrap().state(), JobState::Connecting);
    }

    #[test]
    fn downtime_counts_toward_the_no_progress_timeout() {
        let mut rec = record_in(JobState::TransientError);
        rec.no_progress_timeout = 3600;
        rec.last_progress = T0;
        rec.retry_at = Some(T0.saturating_add(Duration::from_secs(600)));
        let id = rec.id;
        // Down for two hours: the retry is overdue (it runs at once), and the job has made no
        // progress for longer than its timeout, so the next failure is final.
        let later = T0.saturating_add(Duration::from_secs(7200));
        let (mut engine, _, scheduled) = restart(rec, later);
        assert_eq!(engine.job(id).unwrap().state(), JobState::Connecting);
        engine.handle(Input::TempOpened {
            now: later,
            job: id,
            file: 0,
            len: 400,
        });
        let conn = actions(&mut engine)
            .into_iter()
            .find_map(|a| match a {
                Action::Connect { conn, .. } => Some(conn),
                _ => None,
            })
            .expect("a connection is opened");
        assert!(scheduled
            .iter()
            .any(|a| matches!(a, Action::OpenTemp { .. })));
        engine.handle(Input::ConnectFailed {
            now: later,
            conn,
            error: crate::input::IoFailure::new(
                crate::input::IoFailureKind::ConnectRefused,
                "refused",
            ),
        });
        let _ = actions(&mut engine);
        assert_eq!(engine.job(id).unwrap().state(), JobState::Error);
    }

    #[test]
    fn max_download_time_counts_only_time_spent_transferring_not_downtime() {
        let mut rec = record_in(JobState::Transferring);
        rec.maximum_download_time = 100;
        rec.download_time_used_ms = 90_000;
        let id = rec.id;
        // Down for a day: only the 10 s left count, from the restart on.
        let later = T0.saturating_add(Duration::from_secs(86_400));
        let (mut engine, _, _) = restart(rec, later);
        let deadline = later.saturating_add(Duration::from_secs(10));
        assert!(matches!(engine.poll_output(), Output::Timeout(Some(t)) if t <= deadline));
        engine.handle(Input::Timeout {
            now: later.saturating_add(Duration::from_secs(9)),
        });
        let _ = actions(&mut engine);
        assert_eq!(engine.job(id).unwrap().state(), JobState::Connecting);
        engine.handle(Input::Timeout { now: deadline });
        let _ = actions(&mut engine);
        assert_eq!(engine.job(id).unwrap().state(), JobState::Error);
        let code = engine.job(id).unwrap().error().unwrap().code;
        assert_eq!(code, crate::codes::BG_E_MAXDOWNLOAD_TIMEOUT);
    }

    #[test]
    fn times_from_a_clock_that_went_backwards_are_capped() {
        let mut rec = record_in(JobState::TransientError);
        rec.no_progress_timeout = 3600;
        rec.last_progress = T0.saturating_add(Duration::from_secs(86_400));
        rec.retry_at = Some(T0.saturating_add(Duration::from_secs(90_000)));
        let id = rec.id;
        let (engine, _, _) = restart(rec, T0);
        let rec = engine.job_record(id).unwrap();
        assert_eq!(rec.last_progress, T0);
        assert_eq!(
            rec.retry_at,
            Some(T0.saturating_add(Duration::from_secs(3600)))
        );
    }

    #[test]
    fn final_records_are_forgotten_not_restored_and_a_cancel_deletes_its_temp_files() {
        let rec = record_in(JobState::Acknowledged);
        let id = rec.id;
        let mut engine = Engine::new(Config::new([10; 32]), T0);
        engine.restore(rec).unwrap();
        assert_eq!(actions(&mut engine), vec![Action::Forget { job: id }]);
        assert!(engine.job(id).is_err());

        let rec = record_in(JobState::Cancelled);
        let mut engine = Engine::new(Config::new([10; 32]), T0);
        engine.restore(rec).unwrap();
        let delete = Action::DeleteTemp {
            job: id,
            file: 0,
            path: "/dl/.a.1.backhaul".into(),
        };
        assert_eq!(
            actions(&mut engine),
            vec![delete, Action::Forget { job: id }]
        );
        assert!(engine.job(id).is_err());
    }

    #[test]
    fn a_reserved_id_is_never_given_to_a_new_job() {
        let rec = record_in(JobState::Suspended);
        // Same seed as the engine that created the record: the first id it draws is the record's.
        let mut engine = Engine::new(Config::new([9; 32]), T0);
        engine.reserve_id(rec.id);
        let new = engine
            .create_job("k", JobType::Download, Owner("o".into()))
            .unwrap();
        assert_ne!(new, rec.id);
    }

    #[test]
    fn restoring_a_job_twice_is_refused_and_new_jobs_get_other_ids() {
        let rec = record_in(JobState::Suspended);
        let id = rec.id;
        // Same seed as the engine that created the record: the first id it draws is `id`.
        let mut engine = Engine::new(Config::new([9; 32]), T0);
        engine.restore(rec.clone()).unwrap();
        let err = engine.restore(rec).unwrap_err();
        assert_eq!(err.code(), crate::codes::E_INVALIDARG);
        let _ = actions(&mut engine);
        let new = engine
            .create_job("k", JobType::Download, Owner("o".into()))
            .unwrap();
        assert_ne!(new, id);
        assert_eq!(engine.jobs(), vec![id, new]);
    }
}
