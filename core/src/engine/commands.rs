//! The application's calls on a job: `IBackgroundCopyJob`'s methods, with BITS' legality and
//! codes. Each returns at once; its effects come out of [`Engine::poll_output`].

use std::path::Path;

use url::Url;

use crate::auth::{AuthScheme, AuthTarget, Credentials, RemoveOutcome};
use crate::codes::{self, HResult};
use crate::error::BitsError;
use crate::ids::{FileIndex, JobId};
use crate::job::file::JobFile;
use crate::job::headers::CustomHeaders;
use crate::job::notify_cmd::NotifyCmdLine;
use crate::job::ranges::check_ranges;
use crate::job::{
    Caller, CompleteOutcome, FileRange, JobPriority, JobState, JobType, NotifyFlags, Outcome,
    Owner, SecurityFlags, Trigger,
};
use crate::output::Action;
use crate::proxy::ProxySettings;

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
    /// Who calls; `None` for the embedding application, which acts as the owner.
    caller: Option<Caller>,
}

impl<'a> JobMut<'a> {
    pub(super) fn new(engine: &'a mut Engine, id: JobId, caller: Option<Caller>) -> Self {
        Self { engine, id, caller }
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
        self.add(remote_url, local_name, Vec::new())
    }

    /// `AddFileWithRanges`: like [`add_file`](Self::add_file), but only the given parts of the
    /// remote file are fetched, and the local file is those parts concatenated in the order
    /// given. Download jobs only (`E_NOTIMPL`); no range is `E_INVALIDARG`; more than
    /// `Config::max_ranges_per_file` is `BG_E_TOO_MANY_RANGES_IN_FILE`; a zero length or an
    /// offset of `LENGTH_TO_EOF` is `BG_E_INVALID_RANGE`; ranges that overlap (sorted by
    /// offset: the same range twice, or anything after a range to EOF) are
    /// `BG_E_OVERLAPPING_RANGES`. Ranges outside the remote file are found once the transfer
    /// learns its size: the job goes to ERROR with `BG_E_INVALID_RANGE`.
    pub fn add_file_with_ranges(
        &mut self,
        remote_url: &str,
        local_name: &Path,
        ranges: &[FileRange],
    ) -> Result<FileIndex, BitsError> {
        self.ensure_not_final()?;
        let job_type = self.job().rec.job_type;
        if job_type != JobType::Download {
            return Err(BitsError::new(
                codes::E_NOTIMPL,
                format!("AddFileWithRanges is for download jobs; this job is {job_type:?}"),
            ));
        }
        check_ranges(ranges, self.engine.config.max_ranges_per_file)?;
        self.add(remote_url, local_name, ranges.to_vec())
    }

    fn add(
        &mut self,
        remote_url: &str,
        local_name: &Path,
        ranges: Vec<FileRange>,
    ) -> Result<FileIndex, BitsError> {
        self.ensure_not_final()?;
        let max_files = self.engine.config.max_files_per_job;
        let job = self.job();
        let locals = job.rec.files.iter().map(|f| f.local.as_path());
        let remote = check_file(remote_url, local_name, locals, max_files)?;
        let index = FileIndex::try_from(job.rec.files.len()).unwrap_or(FileIndex::MAX);
        let mut file = JobFile::new(remote, local_name.to_path_buf());
        file.ranges = ranges;
        job.rec.files.push(file);
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
                        len: file.transferred,
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

    /// `SetSecurityFlags`: BITS' raw `u32` (see [`SecurityFlags`] for the typed form). An
    /// undefined bit or redirect policy is `E_NOTIMPL` and changes nothing.
    pub fn set_security_flags(&mut self, flags: u32) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        let flags = SecurityFlags::from_bits(flags)?;
        let was_checking = self.job().rec.security_flags.crl_check();
        self.job().rec.security_flags = flags;
        if flags.crl_check() && !was_checking {
            // BITS: "enabling it mid-file restarts that file; finished files are untouched".
            // The current file's bytes came without a revocation check, so it starts over on
            // a checked connection (see `restart_for_revocation`).
            self.engine.restart_for_revocation(self.id);
        }
        self.engine.touch(self.id);
        Ok(())
    }

    /// `SetServerCertificateValidationInterface`: the driver registered (`true`) or removed
    /// (`false`) the app's callback for this job. Only while the job is not active (SUSPENDED
    /// or ERROR), else `BG_E_READ_ONLY_WHEN_JOB_ACTIVE`. Each call clears the accepted-server
    /// cache; the last call wins. Drivers call this; applications use the driver's method,
    /// which also holds the callback.
    pub fn set_server_certificate_validation(&mut self, registered: bool) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        let state = self.state();
        if !matches!(state, JobState::Suspended | JobState::Error) {
            return Err(BitsError::new(
                codes::BG_E_READ_ONLY_WHEN_JOB_ACTIVE,
                format!(
                    "the job is {state}: the certificate validation callback can only be set \
                     while it is SUSPENDED (or in ERROR)"
                ),
            ));
        }
        let job = self.job();
        job.rec.wants_certificate_validation = registered;
        job.validation.registered = registered;
        job.validation.accepted.clear();
        // Connections the old callback accepted are not accepted by the new one.
        self.engine.drop_private_idle_conns(self.id);
        self.engine.touch(self.id);
        Ok(())
    }

    /// `SetCustomHeaders`: `Name: value` lines separated by CRLF (≤ 16,384 characters
    /// including BITS' NUL, else `BG_E_STRING_TOO_LONG`); `None` clears them. Owner only. They
    /// go on every request to the origin of each file's URL, never past a redirect to another
    /// origin. Headers backhaul writes itself (Host, Range, …) are `E_INVALIDARG`.
    pub fn set_custom_headers(&mut self, headers: Option<&str>) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        self.ensure_owner("set custom headers")?;
        let parsed = headers.map(CustomHeaders::parse).transpose()?;
        self.job().rec.custom_headers = parsed;
        self.engine.touch(self.id);
        Ok(())
    }

    /// `MakeCustomHeadersWriteOnly`: from now on the headers are sent but can no longer be
    /// read back (irreversible; a later `set_custom_headers` stays write-only). Always `Ok`.
    pub fn make_custom_headers_write_only(&mut self) -> Result<(), BitsError> {
        self.job().rec.custom_headers_write_only = true;
        self.engine.touch(self.id);
        Ok(())
    }

    /// `TakeOwnership`: the job now belongs to `new_owner`. The owner may hand it on; an
    /// administrator may take anyone's. A change of owner strips what was the old owner's
    /// secret: custom headers (and credentials), and the notification command line (BITS).
    pub fn take_ownership(&mut self, new_owner: Owner) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        if let Some(caller) = &self.caller {
            let owner = &self.engine.jobs[&self.id].rec.owner;
            if !caller.admin && caller.owner != *owner {
                return Err(BitsError::new(
                    codes::E_ACCESSDENIED,
                    format!(
                        "only the owner or an administrator may take job {}",
                        self.id
                    ),
                ));
            }
        }
        let old_owner = self.job().rec.owner.clone();
        if old_owner != new_owner {
            // Not final (checked above): the job counts against its new owner's limit now.
            self.engine.live.remove(&old_owner);
            self.engine.live.add(&new_owner);
            let job = self.job();
            job.rec.owner = new_owner;
            job.rec.custom_headers = None;
            job.rec.credentials.clear();
            job.server_auth.clear();
            job.rec.notify_cmd_line = None;
            job.rec.notify_run = None;
        }
        self.engine.touch(self.id);
        Ok(())
    }

    /// `SetCredentials`: the credentials for one target (server or proxy) and scheme,
    /// replacing what that slot held (build them with [`Credentials::new`], which applies
    /// BITS' checks and codes). Owner only. There is no getter. A job in ERROR because of a
    /// 401/407 goes on from where it was after this and `resume`.
    pub fn set_credentials(&mut self, credentials: Credentials) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        self.ensure_owner("set credentials")?;
        let job = self.job();
        job.rec.credentials.set(credentials);
        // What the job learned about its origins was for the old credentials, and so were
        // the connections NTLM/Negotiate logged in.
        job.server_auth.clear();
        self.engine.drop_private_idle_conns(self.id);
        self.engine.touch(self.id);
        Ok(())
    }

    /// `RemoveCredentials`: [`RemoveOutcome::Removed`] (`S_OK`), or
    /// [`RemoveOutcome::NothingSet`] (`S_FALSE`). Owner only.
    pub fn remove_credentials(
        &mut self,
        target: AuthTarget,
        scheme: AuthScheme,
    ) -> Result<RemoveOutcome, BitsError> {
        self.ensure_not_final()?;
        self.ensure_owner("remove credentials")?;
        let job = self.job();
        let outcome = job.rec.credentials.remove(target, scheme);
        job.server_auth.clear();
        self.engine.drop_private_idle_conns(self.id);
        self.engine.touch(self.id);
        Ok(outcome)
    }

    /// `SetProxySettings(usage, proxy list, bypass list)` (see [`ProxySettings::new`] for
    /// BITS' rules). The lists' syntax is checked when the job runs, as in BITS: a bad list
    /// puts the job in ERROR with `BG_E_INVALID_PROXY_INFO`.
    pub fn set_proxy_settings(&mut self, settings: ProxySettings) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        self.job().rec.proxy = settings;
        self.engine.touch(self.id);
        Ok(())
    }

    /// `SetNotifyCmdLine(program, parameters)`: run `program` (an absolute path, no shell, no
    /// search path) when the job reaches TRANSFERRED or ERROR, with the parameters' words
    /// after the first (BITS: the first parameter is the program itself) as its arguments.
    /// `None, None` clears it. Set while the job is already TRANSFERRED or in ERROR, it runs
    /// for that event.
    pub fn set_notify_cmd_line(
        &mut self,
        program: Option<&str>,
        parameters: Option<&str>,
    ) -> Result<(), BitsError> {
        self.ensure_not_final()?;
        self.ensure_owner("set the notification command line")?;
        let cmd = NotifyCmdLine::new(program, parameters)?;
        let state = self.state();
        self.job().rec.notify_cmd_line = cmd;
        self.engine.owe_notify_run(self.id, state);
        self.engine.touch(self.id);
        Ok(())
    }

    fn ensure_owner(&self, what: &str) -> Result<(), BitsError> {
        let Some(caller) = &self.caller else {
            return Ok(());
        };
        let owner = &self.engine.jobs[&self.id].rec.owner;
        if caller.owner == *owner {
            return Ok(());
        }
        Err(BitsError::new(
            codes::E_ACCESSDENIED,
            format!(
                "only the job's owner may {what} ({} is not {owner})",
                caller.owner
            ),
        ))
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
/// What `AddFile` checks of a file, given the local names the job already has: the URL (see
/// [`parse_remote_name`]), the local name, the job's file limit and that no other file of the
/// job has the same local name. Returns the parsed URL.
pub(super) fn check_file<'a>(
    remote_url: &str,
    local_name: &Path,
    locals: impl ExactSizeIterator<Item = &'a Path>,
    max_files: usize,
) -> Result<Url, BitsError> {
    let remote = parse_remote_name(remote_url)?;
    check_local_name(local_name)?;
    if locals.len() >= max_files {
        return Err(BitsError::new(
            codes::BG_E_TOO_MANY_FILES_IN_JOB,
            format!("the job already has {max_files} files (the limit)"),
        ));
    }
    let mut locals = locals;
    if locals.any(|local| local == local_name) {
        return Err(BitsError::new(
            codes::E_INVALIDARG,
            format!(
                "{} is already the local name of a file in this job",
                local_name.display()
            ),
        ));
    }
    Ok(remote)
}

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
