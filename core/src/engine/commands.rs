//! The application's calls on a job: `IBackgroundCopyJob`'s methods, with BITS' legality and
//! codes. Each returns at once; its effects come out of [`Engine::poll_output`].

use std::path::Path;

use url::Url;

use crate::codes::{self, HResult};
use crate::error::BitsError;
use crate::ids::{FileIndex, JobId};
use crate::job::file::JobFile;
use crate::job::{CompleteOutcome, JobPriority, JobState, NotifyFlags, Outcome, Trigger};
use crate::output::Action;

use super::{Completing, Engine, MIN_RETRY_DELAY_FLOOR};

/// `AddFile`'s limit on the remote name, in characters.
const MAX_URL_CHARS: usize = 2_200;
/// `SetDisplayName`'s limit, in characters.
const MAX_DISPLAY_NAME_CHARS: usize = 256;
/// `SetDescription`'s limit, in characters.
const MAX_DESCRIPTION_CHARS: usize = 1_024;

/// Commands on one job (`IBackgroundCopyJob`'s methods). Each returns at once.
#[derive(Debug)]
pub struct JobMut<'a> {
    engine: &'a mut Engine,
    id: JobId,
}

impl<'a> JobMut<'a> {
    pub(super) fn new(engine: &'a mut Engine, id: JobId) -> Self {
        Self { engine, id }
    }

    /// `AddFile`: an http/https URL (≤ 2,200 characters) to an absolute local path.
    ///
    /// The local path's directory is not checked here (core touches no files): drivers check
    /// it before calling this.
    pub fn add_file(
        &mut self,
        remote_url: &str,
        local_name: &Path,
    ) -> Result<FileIndex, BitsError> {
        self.ensure_not_final()?;
        let remote = parse_remote_name(remote_url)?;
        check_local_name(local_name)?;
        let max_files = self.engine.config.max_files_per_job;
        let job = self.job();
        if job.rec.files.len() >= max_files {
            return Err(BitsError::new(
                codes::BG_E_TOO_MANY_FILES_IN_JOB,
                format!("the job already has {max_files} files (the limit)"),
            ));
        }
        if job.rec.files.iter().any(|f| f.local == local_name) {
            return Err(BitsError::new(
                codes::E_INVALIDARG,
                format!(
                    "{} is already the local name of a file in this job",
                    local_name.display()
                ),
            ));
        }
        let index = FileIndex::try_from(job.rec.files.len()).unwrap_or(FileIndex::MAX);
        job.rec
            .files
            .push(JobFile::new(remote, local_name.to_path_buf()));
        self.engine.touch(self.id);
        self.engine.needs_schedule = true;
        self.engine.schedule_if_needed();
        Ok(index)
    }

    /// `Resume`: SUSPENDED, ERROR and TRANSIENT_ERROR jobs are queued (retried at once);
    /// `BG_E_EMPTY` without files.
    pub fn resume(&mut self) -> Result<(), BitsError> {
        let job = self.job();
        let trigger = Trigger::Resume {
            empty: job.rec.files.is_empty(),
            all_done: job.rec.files.iter().all(|f| f.completed),
        };
        if job.completing.is_some() {
            return Err(completing(self.id));
        }
        let now = self.engine.now;
        match self.engine.apply(self.id, trigger) {
            Outcome::Refuse(code) => Err(refusal(code, "resume", self.state())),
            Outcome::Move(_) => {
                let job = self.job();
                // Resume restarts the no-progress and maximum-download clocks.
                job.rec.last_progress = now;
                job.rec.download_time_used_ms = 0;
                self.engine.schedule_if_needed();
                Ok(())
            }
            Outcome::Stay | Outcome::Ignore => Ok(()),
        }
    }

    /// `Suspend`: every transfer of the job stops; idempotent.
    pub fn suspend(&mut self) -> Result<(), BitsError> {
        match self.engine.apply(self.id, Trigger::Suspend) {
            Outcome::Refuse(code) => Err(refusal(code, "suspend", self.state())),
            _ => {
                self.engine.schedule_if_needed();
                Ok(())
            }
        }
    }

    /// `Cancel`: the job ends in CANCELLED and every temp file is deleted.
    pub fn cancel(&mut self) -> Result<(), BitsError> {
        match self.engine.apply(self.id, Trigger::Cancel) {
            Outcome::Refuse(code) => Err(refusal(code, "cancel", self.state())),
            _ => {
                let id = self.id;
                let deletions: Vec<Action> = self
                    .job()
                    .rec
                    .files
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| !f.committed)
                    .filter_map(|(i, f)| {
                        f.temp.clone().map(|path| Action::DeleteTemp {
                            job: id,
                            file: FileIndex::try_from(i).unwrap_or(FileIndex::MAX),
                            path,
                        })
                    })
                    .collect();
                for action in deletions {
                    self.engine.push_action(action);
                }
                self.engine.push_action(Action::Forget { job: id });
                self.engine.schedule_if_needed();
                Ok(())
            }
        }
    }

    /// `Complete`: transferred files are renamed to their local names, unfinished ones deleted.
    /// The job reaches ACKNOWLEDGED once the driver reports every commit; if one fails it stays
    /// (or returns to) TRANSFERRED, as BITS specifies.
    pub fn complete(&mut self) -> Result<CompleteOutcome, BitsError> {
        if self.job().completing.is_some() {
            return Err(completing(self.id));
        }
        if let Outcome::Refuse(code) = self.engine.apply(self.id, Trigger::Complete) {
            return Err(refusal(code, "complete", self.state()));
        }
        let id = self.id;
        self.engine.stop_fetch(id);
        let mut actions = Vec::new();
        let mut pending = 0u32;
        let mut partial = false;
        for (i, file) in self.job().rec.files.iter_mut().enumerate() {
            let index = FileIndex::try_from(i).unwrap_or(FileIndex::MAX);
            if file.committed {
                continue;
            }
            match (&file.temp, file.completed) {
                (Some(temp), true) => {
                    pending += 1;
                    actions.push(Action::CommitFile {
                        job: id,
                        file: index,
                        temp: temp.clone(),
                        dest: file.local.clone(),
                    });
                }
                (temp, _) => {
                    partial |= !file.completed;
                    if let Some(path) = temp.clone() {
                        actions.push(Action::DeleteTemp {
                            job: id,
                            file: index,
                            path,
                        });
                    }
                    file.temp = None;
                    file.reset_version();
                }
            }
        }
        for action in actions {
            self.engine.push_action(action);
        }
        self.job().completing = Some(Completing {
            pending,
            failed: false,
        });
        if pending == 0 {
            self.engine.finish_completing(id);
        }
        Ok(if partial {
            CompleteOutcome::PartialComplete
        } else {
            CompleteOutcome::Complete
        })
    }

    /// `SetDisplayName` (≤ 256 characters).
    pub fn set_display_name(&mut self, name: &str) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        check_display_name(name)?;
        self.job().rec.display_name = name.to_string();
        self.engine.touch(self.id);
        Ok(())
    }

    /// `SetDescription` (≤ 1,024 characters).
    pub fn set_description(&mut self, description: &str) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        let chars = description.chars().count();
        if chars > MAX_DESCRIPTION_CHARS {
            return Err(BitsError::new(
                codes::BG_E_STRING_TOO_LONG,
                format!(
                    "the description is {chars} characters; the limit is {MAX_DESCRIPTION_CHARS}"
                ),
            ));
        }
        self.job().rec.description = description.to_string();
        self.engine.touch(self.id);
        Ok(())
    }

    /// `SetPriority`: takes effect at once (a higher priority may preempt a lower one).
    pub fn set_priority(&mut self, priority: JobPriority) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        self.job().rec.priority = priority;
        self.engine.touch(self.id);
        self.engine.needs_schedule = true;
        self.engine.schedule_if_needed();
        Ok(())
    }

    /// `SetNotifyFlags`: `E_NOTIMPL` on bits outside `BG_NOTIFY_*`.
    pub fn set_notify_flags(&mut self, flags: u32) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        self.job().rec.notify_flags = NotifyFlags::from_bits(flags)?;
        self.engine.touch(self.id);
        Ok(())
    }

    /// `SetMinimumRetryDelay`, seconds; values under 5 are raised to 5.
    pub fn set_minimum_retry_delay(&mut self, secs: u32) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        self.job().rec.minimum_retry_delay = secs.max(MIN_RETRY_DELAY_FLOOR);
        self.engine.touch(self.id);
        Ok(())
    }

    /// `SetNoProgressTimeout`, seconds; 0 makes every error fatal.
    pub fn set_no_progress_timeout(&mut self, secs: u32) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        self.job().rec.no_progress_timeout = secs;
        self.engine.touch(self.id);
        Ok(())
    }

    /// `SetMaximumDownloadTime`, seconds; 0 removes the limit.
    pub fn set_maximum_download_time(&mut self, secs: u32) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        self.job().rec.maximum_download_time = secs;
        self.engine.touch(self.id);
        Ok(())
    }

    fn job(&mut self) -> &mut super::Job {
        // Invariant: a JobMut is only made for a job that exists, and jobs are never removed.
        self.engine
            .jobs
            .get_mut(&self.id)
            .expect("JobMut's job exists")
    }

    fn state(&self) -> JobState {
        self.engine
            .jobs
            .get(&self.id)
            .map_or(JobState::Cancelled, |j| j.rec.state)
    }

    fn ensure_not_final(&self) -> Result<(), BitsError> {
        let state = self.state();
        if state.is_final() {
            return Err(BitsError::new(
                codes::BG_E_INVALID_STATE,
                format!("the job is {state}: a final state accepts no changes"),
            ));
        }
        Ok(())
    }
}

pub(super) fn check_display_name(name: &str) -> Result<(), BitsError> {
    let chars = name.chars().count();
    if chars > MAX_DISPLAY_NAME_CHARS {
        return Err(BitsError::new(
            codes::BG_E_STRING_TOO_LONG,
            format!(
                "the display name is {chars} characters; the limit is {MAX_DISPLAY_NAME_CHARS}"
            ),
        ));
    }
    Ok(())
}

/// `AddFile`'s rules for the remote name: http or https, ≤ 2,200 characters, a host, no
/// credentials in the URL (they belong in `SetCredentials`, which keeps them to their origin).
fn parse_remote_name(remote_url: &str) -> Result<Url, BitsError> {
    let invalid = |why: String| BitsError::new(codes::E_INVALIDARG, why);
    let chars = remote_url.chars().count();
    if chars > MAX_URL_CHARS {
        return Err(invalid(format!(
            "the URL is {chars} characters; the limit is {MAX_URL_CHARS}"
        )));
    }
    let mut url = Url::parse(remote_url)
        .map_err(|e| invalid(format!("{remote_url:?} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "unsupported scheme {:?} in {remote_url}: only http and https are supported",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("{remote_url} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!(
            "{} carries credentials in the URL: use set_credentials instead",
            url.host_str().unwrap_or_default()
        )));
    }
    // A fragment never goes on the wire.
    url.set_fragment(None);
    Ok(url)
}

/// `AddFile`'s rules for the local name: absolute, naming a file, no NUL.
fn check_local_name(local: &Path) -> Result<(), BitsError> {
    let invalid = |why: String| BitsError::new(codes::E_INVALIDARG, why);
    let shown = local.display();
    if local.as_os_str().is_empty() {
        return Err(invalid("the local name is empty".into()));
    }
    if !local.is_absolute() {
        return Err(invalid(format!(
            "local name {shown:?} is not an absolute path"
        )));
    }
    if local.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(invalid(format!("local name {shown:?} contains a NUL byte")));
    }
    let names_a_file =
        local.file_name().is_some() && !local.as_os_str().as_encoded_bytes().ends_with(b"/");
    if !names_a_file {
        return Err(invalid(format!(
            "local name {shown:?} does not name a file"
        )));
    }
    Ok(())
}

fn refusal(code: HResult, call: &str, state: JobState) -> BitsError {
    let detail = if code == codes::BG_E_EMPTY {
        format!("cannot {call}: the job has no files")
    } else {
        format!("cannot {call} a job in state {state}")
    };
    BitsError::new(code, detail)
}

fn completing(id: JobId) -> BitsError {
    BitsError::new(
        codes::BG_E_INVALID_STATE,
        format!("job {id} is being completed"),
    )
}
