//! What each request does, on behalf of the peer that sent it.
//!
//! Every operation runs on an engine (the daemon's, through `Manager::call`), with the peer as
//! a [`Caller`]: core enforces BITS' rules (owner or administrator; credentials and custom
//! headers are the owner's alone). A job is named by its id or by its display name.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use backhaul_core::auth::{AuthScheme, AuthTarget, Credentials, Secret};
use backhaul_core::job::LENGTH_TO_EOF;
use backhaul_core::proxy::{ProxySettings, ProxyUsage};
use backhaul_core::{codes, BitsError, Caller, Engine, FileIndex, JobId, JobPriority, JobType};
use serde_json::{json, Value};

use crate::protocol::{job_json, parse_ranges, Op, VERSION};

/// Runs `op` on `engine` for `caller` and returns the reply's value. The daemon runs it on its
/// driver's engine (`Manager::call`); tests and the `daemon_protocol` fuzz target on a plain one.
pub fn apply(e: &mut Engine, c: &Caller, op: Op) -> Result<Value, BitsError> {
    match op {
        Op::Hello => Ok(json!({"version": VERSION, "caller": c.owner.0, "admin": c.admin})),
        Op::Create { display_name } => {
            let id = e.create_job(&display_name, JobType::Download, c.owner.clone())?;
            Ok(json!({"job": id.to_string()}))
        }
        Op::AddFile { job, url, local } => {
            let id = resolve(e, c, &job)?;
            backhaul_io::check_local_name(&local)?;
            check_destination_owner(&local, c)?;
            let index = e.job_mut_as(id, c)?.add_file(&url, &local)?;
            Ok(json!({"job": id.to_string(), "file": index}))
        }
        Op::AddFileWithRanges {
            job,
            url,
            local,
            ranges,
        } => {
            let id = resolve(e, c, &job)?;
            let ranges = parse_ranges(&ranges)?;
            backhaul_io::check_local_name(&local)?;
            check_destination_owner(&local, c)?;
            let index = e
                .job_mut_as(id, c)?
                .add_file_with_ranges(&url, &local, &ranges)?;
            Ok(json!({"job": id.to_string(), "file": index}))
        }
        Op::Info { job } => {
            let id = resolve(e, c, &job)?;
            let view = e.job_as(id, c)?;
            let mut info = job_json(&view.info());
            // BITS' /getfileranges beside each file (empty: the whole file).
            if let Some(files) = info["files"].as_array_mut() {
                for (index, file) in files.iter_mut().enumerate() {
                    let index = FileIndex::try_from(index).unwrap_or(FileIndex::MAX);
                    let ranges = view.file_ranges(index).unwrap_or_default();
                    file["ranges"] = ranges
                        .iter()
                        .map(|r| json!({"offset": r.initial_offset, "length": (r.length != LENGTH_TO_EOF).then_some(r.length)}))
                        .collect();
                }
            }
            Ok(info)
        }
        Op::List { all_users } => {
            let ids = e.jobs_as(c, all_users)?;
            let jobs: Vec<Value> = ids
                .into_iter()
                .filter_map(|id| e.job(id).ok().map(|v| job_json(&v.info())))
                .collect();
            Ok(Value::Array(jobs))
        }
        Op::RemoveCredentials {
            job,
            target,
            scheme,
        } => {
            let id = resolve(e, c, &job)?;
            let target = target.parse::<AuthTarget>()?;
            let scheme = scheme.parse::<AuthScheme>()?;
            let outcome = e.job_mut_as(id, c)?.remove_credentials(target, scheme)?;
            let hresult = format!("0x{:08X}", outcome.code().0);
            Ok(json!({"job": id.to_string(), "hresult": hresult}))
        }
        Op::Complete { job } => {
            let id = resolve(e, c, &job)?;
            let outcome = e.job_mut_as(id, c)?.complete()?;
            Ok(json!({"job": id.to_string(), "hresult": format!("0x{:08X}", outcome.hresult().0)}))
        }
        other => {
            let (job, set) = setter(other);
            let id = resolve(e, c, &job)?;
            set(e, id, c)?;
            Ok(json!({"job": id.to_string()}))
        }
    }
}

/// `complete`'s reply once its commits have been performed (the command after it): as BITS'
/// `Complete` returns the rename's error, the error of a file that could not be moved into
/// place replaces the reply (the job stays TRANSFERRED).
pub fn commit_result(e: &Engine, reply: Value) -> Result<Value, BitsError> {
    let id = reply["job"]
        .as_str()
        .and_then(|id| id.parse::<JobId>().ok());
    id.map_or(Ok(()), |id| e.commit_result(id)).map(|()| reply)
}

/// A command that changes a job and returns nothing.
type Setter = Box<dyn FnOnce(&mut Engine, JobId, &Caller) -> Result<(), BitsError> + Send>;

/// The job name and the change, for every operation that only changes a job.
fn setter(op: Op) -> (String, Setter) {
    macro_rules! set {
        ($job:expr, |$j:ident, $c:ident| $body:expr) => {
            (
                $job,
                Box::new(move |e: &mut Engine, id: JobId, $c: &Caller| {
                    let mut $j = e.job_mut_as(id, $c)?;
                    $body
                }),
            )
        };
    }
    match op {
        Op::SetSecurityFlags { job, flags } => set!(job, |j, _c| j.set_security_flags(flags)),
        Op::SetCredentials {
            job,
            target,
            scheme,
            user,
            password,
        } => set!(job, |j, _c| {
            let credentials = Credentials::new(
                target.parse::<AuthTarget>()?,
                scheme.parse::<AuthScheme>()?,
                user,
                password.map(|p| Secret::new(p.0)),
            )?;
            j.set_credentials(credentials)
        }),
        Op::SetProxySettings {
            job,
            usage,
            list,
            bypass,
        } => set!(job, |j, _c| {
            let usage = usage.parse::<ProxyUsage>()?;
            j.set_proxy_settings(ProxySettings::new(usage, list, bypass)?)
        }),
        Op::SetCustomHeaders { job, headers } => {
            set!(job, |j, _c| j.set_custom_headers(headers.as_deref()))
        }
        Op::SetPriority { job, priority } => set!(job, |j, _c| {
            j.set_priority(priority.parse::<JobPriority>()?)
        }),
        Op::SetNotifyFlags { job, flags } => set!(job, |j, _c| j.set_notify_flags(flags)),
        Op::SetNotifyCmdLine {
            job,
            program,
            parameters,
        } => set!(job, |j, _c| j
            .set_notify_cmd_line(program.as_deref(), parameters.as_deref())),
        Op::SetMinRetryDelay { job, secs } => {
            set!(job, |j, _c| j.set_minimum_retry_delay(secs))
        }
        Op::SetNoProgressTimeout { job, secs } => {
            set!(job, |j, _c| j.set_no_progress_timeout(secs))
        }
        Op::SetMaxDownloadTime { job, secs } => {
            set!(job, |j, _c| j.set_maximum_download_time(secs))
        }
        Op::SetDisplayName { job, name } => set!(job, |j, _c| j.set_display_name(&name)),
        Op::SetDescription { job, description } => {
            set!(job, |j, _c| j.set_description(&description))
        }
        Op::Resume { job } => set!(job, |j, _c| j.resume()),
        Op::Suspend { job } => set!(job, |j, _c| j.suspend()),
        Op::Cancel { job } => set!(job, |j, _c| j.cancel()),
        Op::TakeOwnership { job } => set!(job, |j, c| j.take_ownership(c.owner.clone())),
        Op::Hello
        | Op::Create { .. }
        | Op::AddFile { .. }
        | Op::AddFileWithRanges { .. }
        | Op::Info { .. }
        | Op::List { .. }
        | Op::RemoveCredentials { .. }
        | Op::Complete { .. } => unreachable!("handled before"),
    }
}

/// A job named by id (a GUID, braces optional) or by display name, among the jobs the caller
/// may see. An ambiguous name is an error that lists the candidates.
fn resolve(engine: &Engine, caller: &Caller, name: &str) -> Result<JobId, BitsError> {
    if let Ok(id) = name.parse::<JobId>() {
        engine.job_as(id, caller)?;
        return Ok(id);
    }
    let matches: Vec<JobId> = engine
        .jobs_as(caller, caller.admin)?
        .into_iter()
        .filter(|id| engine.job(*id).is_ok_and(|v| v.display_name() == name))
        .collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => Err(BitsError::new(
            codes::BG_E_NOT_FOUND,
            format!("no job has the id or display name {name:?}"),
        )),
        several => {
            let ids: Vec<String> = several.iter().map(JobId::to_string).collect();
            Err(BitsError::new(
                codes::E_INVALIDARG,
                format!(
                    "{} jobs are named {name:?}; name one by id: {}",
                    several.len(),
                    ids.join(", ")
                ),
            ))
        }
    }
}

/// The daemon writes files for its callers: a destination directory must belong to the
/// caller (administrators excepted), so a user cannot have the daemon write where they could
/// not.
fn check_destination_owner(local: &Path, caller: &Caller) -> Result<(), BitsError> {
    if caller.admin {
        return Ok(());
    }
    let dir = local.parent().unwrap_or(Path::new("/"));
    let meta = std::fs::metadata(dir)
        .map_err(|e| BitsError::new(codes::E_INVALIDARG, format!("{}: {e}", dir.display())))?;
    if caller.owner.0 == format!("uid:{}", meta.uid()) {
        return Ok(());
    }
    Err(BitsError::new(
        codes::E_ACCESSDENIED,
        format!(
            "{} belongs to uid {}, not to the caller {}",
            dir.display(),
            meta.uid(),
            caller.owner
        ),
    ))
}
