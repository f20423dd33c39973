//! The daemon's socket protocol, version 1 (documented in `docs/daemon.md`).
//!
//! Newline-delimited JSON over a Unix stream socket: each request is one line of at most
//! [`MAX_LINE`] bytes, each reply one line. The peer's uid (`SO_PEERCRED`) is the caller; no
//! request names a user. A request the daemon cannot read gets an error reply with id 0 and
//! the connection stays usable.

use std::path::PathBuf;

use backhaul_core::job::{FileRange, LENGTH_TO_EOF};
use backhaul_core::{BitsError, HResult, JobError, JobInfo};
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// The longest request line the daemon reads, newline included.
pub const MAX_LINE: usize = 64 * 1024;

/// One request: `{"v":1,"id":7,"op":"resume","job":"…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version; a daemon refuses versions it does not speak.
    pub v: u32,
    /// Chosen by the client, echoed in the reply.
    pub id: u64,
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
}

/// The operations: bitsadmin's verbs. `job` is a job id (GUID) or a display name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)] // Each field is the JSON member of its name, as docs/daemon.md describes.
pub enum Op {
    /// The daemon's version and the caller it sees.
    Hello,
    /// `/create`: a download job owned by the caller.
    Create { display_name: String },
    /// `/addfile`.
    AddFile {
        job: String,
        url: String,
        local: PathBuf,
    },
    /// `/addfilewithranges`: `ranges` as bitsadmin writes them, `offset:length` separated by
    /// commas, `eof` for a range to the end of the file.
    AddFileWithRanges {
        job: String,
        url: String,
        local: PathBuf,
        ranges: String,
    },
    /// `/setcredentials` (`user` and `password` absent: implicit, NTLM/Negotiate).
    SetCredentials {
        job: String,
        target: String,
        scheme: String,
        user: Option<String>,
        password: Option<WirePassword>,
    },
    /// `/removecredentials`.
    RemoveCredentials {
        job: String,
        target: String,
        scheme: String,
    },
    /// `/setproxysettings`.
    SetProxySettings {
        job: String,
        usage: String,
        list: Option<String>,
        bypass: Option<String>,
    },
    /// `/setsecurityflags`.
    SetSecurityFlags { job: String, flags: u32 },
    /// `/setcustomheaders` (`None` clears).
    SetCustomHeaders {
        job: String,
        headers: Option<String>,
    },
    /// `/setpriority`.
    SetPriority { job: String, priority: String },
    /// `/setnotifyflags`.
    SetNotifyFlags { job: String, flags: u32 },
    /// `/setnotifycmdline`.
    SetNotifyCmdLine {
        job: String,
        program: Option<String>,
        parameters: Option<String>,
    },
    /// `/setminretrydelay`.
    SetMinRetryDelay { job: String, secs: u32 },
    /// `/setnoprogresstimeout`.
    SetNoProgressTimeout { job: String, secs: u32 },
    /// `/setmaxdownloadtime`.
    SetMaxDownloadTime { job: String, secs: u32 },
    /// `/setdisplayname`.
    SetDisplayName { job: String, name: String },
    /// `/setdescription`.
    SetDescription { job: String, description: String },
    /// `/resume`.
    Resume { job: String },
    /// `/suspend`.
    Suspend { job: String },
    /// `/cancel`.
    Cancel { job: String },
    /// `/complete`.
    Complete { job: String },
    /// `/info` (and every `/get*`).
    Info { job: String },
    /// `/list`, or `/list /allusers` (administrators).
    List { all_users: bool },
    /// `/takeownership`: the caller becomes the owner (administrators, or the owner).
    TakeOwnership { job: String },
}

/// A password on its way to the daemon: plain in the JSON (the socket is the user's own, or
/// authenticated by the kernel), never in a Debug output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WirePassword(pub String);

impl std::fmt::Debug for WirePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One reply: `{"v":1,"id":7,"ok":…}` or `{"v":1,"id":7,"error":{…}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Protocol version.
    pub v: u32,
    /// The request's id (0 when the request could not be read).
    pub id: u64,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What a request led to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done; the value depends on the operation.
    Ok(serde_json::Value),
    /// Refused.
    Error(WireError),
}

/// A refusal on the wire: BITS' code, by value and by name, and the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// The HRESULT, e.g. `0x80200001`.
    pub hresult: String,
    /// Its name, e.g. `BG_E_NOT_FOUND` (or the hex value when it has none).
    pub name: String,
    /// What was wrong.
    pub message: String,
}

impl WireError {
    /// A refusal with `code`.
    pub fn new(code: HResult, message: impl Into<String>) -> Self {
        Self {
            hresult: format!("0x{:08X}", code.0),
            name: code.name_or_hex(),
            message: message.into(),
        }
    }
}

impl From<BitsError> for WireError {
    fn from(e: BitsError) -> Self {
        Self::new(e.code(), e.detail())
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.name, self.hresult, self.message)
    }
}

/// Parses bitsadmin's range list: `offset:length[,offset:length…]`, `eof` as a length for a
/// range to the end of the file (BG_LENGTH_TO_EOF).
pub fn parse_ranges(text: &str) -> Result<Vec<FileRange>, BitsError> {
    let invalid = |why: String| BitsError::new(backhaul_core::codes::E_INVALIDARG, why);
    text.split(',')
        .map(str::trim)
        .map(|range| {
            let (offset, length) = range
                .split_once(':')
                .ok_or_else(|| invalid(format!("range {range:?} is not offset:length")))?;
            let offset = offset
                .parse::<u64>()
                .map_err(|_| invalid(format!("range {range:?}: {offset:?} is not an offset")))?;
            let length = if length.eq_ignore_ascii_case("eof") {
                LENGTH_TO_EOF
            } else {
                length
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("range {range:?}: {length:?} is not a length")))?
            };
            Ok(FileRange::new(offset, length))
        })
        .collect()
}

/// A job as `/info` and `/list /verbose` show it (everything BITS' /info and /get* show).
pub fn job_json(info: &JobInfo) -> serde_json::Value {
    let files: Vec<serde_json::Value> = info
        .files
        .iter()
        .map(|f| {
            serde_json::json!({
                "index": f.index,
                "remote_name": f.remote_name,
                "local_name": f.local_name,
                "temporary_name": f.temporary_name,
                "bytes_total": size_json(f.progress.bytes_total),
                "bytes_transferred": f.progress.bytes_transferred,
                "completed": f.progress.completed,
            })
        })
        .collect();
    serde_json::json!({
        "id": info.id.to_string(),
        "display_name": info.display_name,
        "description": info.description,
        "type": "DOWNLOAD",
        "state": info.state.name(),
        "priority": info.priority.name(),
        "owner": info.owner.0,
        "bytes_total": size_json(info.progress.bytes_total),
        "bytes_transferred": info.progress.bytes_transferred,
        "files_total": info.progress.files_total,
        "files_transferred": info.progress.files_transferred,
        "creation_time": info.times.creation.as_millis(),
        "modification_time": info.times.modification.as_millis(),
        "transfer_completion_time": info.times.transfer_completion.map(|t| t.as_millis()),
        "error": info.error.as_ref().map(error_json),
        "error_count": info.error_count,
        "notify_flags": info.notify_flags.bits(),
        "minimum_retry_delay": info.minimum_retry_delay,
        "no_progress_timeout": info.no_progress_timeout,
        "maximum_download_time": info.maximum_download_time,
        "security_flags": info.security_flags.bits(),
        "files": files,
    })
}

fn size_json(size: u64) -> serde_json::Value {
    if size == backhaul_core::SIZE_UNKNOWN {
        serde_json::Value::Null
    } else {
        size.into()
    }
}

fn error_json(e: &JobError) -> serde_json::Value {
    serde_json::json!({
        "context": e.context.name(),
        "hresult": format!("0x{:08X}", e.code.0),
        "name": e.code.name_or_hex(),
        "description": e.description,
        "file": e.file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_ops_or_fields_are_refused() {
        let r = Request {
            v: VERSION,
            id: 3,
            op: Op::SetPriority {
                job: "nightly".into(),
                priority: "low".into(),
            },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"v":1,"id":3,"op":"set_priority","job":"nightly","priority":"low"}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        assert!(serde_json::from_str::<Request>(r#"{"v":1,"id":1,"op":"format_disk"}"#).is_err());
        assert!(
            serde_json::from_str::<Request>(r#"{"v":1,"id":1,"op":"resume","job":"x","y":1}"#)
                .is_err()
        );
    }

    #[test]
    fn bitsadmin_range_lists_parse_and_bad_ones_name_the_range() {
        let ranges = parse_ranges("0:100, 2000:100,5000:eof").unwrap();
        assert_eq!(ranges[1], FileRange::new(2000, 100));
        assert_eq!(ranges[2].length, LENGTH_TO_EOF);
        let err = parse_ranges("0:100,abc").unwrap_err();
        assert!(err.detail().contains("\"abc\""), "{}", err.detail());
        assert!(parse_ranges("1:x").is_err());
    }

    #[test]
    fn replies_carry_the_code_by_value_and_name() {
        let e = WireError::new(backhaul_core::codes::BG_E_NOT_FOUND, "no such job");
        let reply = Reply {
            v: VERSION,
            id: 9,
            outcome: Outcome::Error(e.clone()),
        };
        let line = serde_json::to_string(&reply).unwrap();
        assert!(line.contains(r#""hresult":"0x80200001""#), "{line}");
        assert!(line.contains(r#""name":"BG_E_NOT_FOUND""#), "{line}");
        assert_eq!(serde_json::from_str::<Reply>(&line).unwrap(), reply);
    }
}
