//! The job model: types, priorities, notify flags, progress and times, as BITS defines them.

pub(crate) mod file;
pub(crate) mod headers;
mod new_job;
pub(crate) mod notify_cmd;
pub(crate) mod ranges;
mod security;
pub mod state;

use serde::{Deserialize, Serialize};

use crate::codes::{self, HResult};
use crate::error::BitsError;
use crate::time::Timestamp;

pub use self::new_job::{NewFile, NewJob};
pub use self::ranges::{FileRange, LENGTH_TO_EOF};
pub use self::security::{RedirectPolicy, SecurityFlags};
pub use self::state::{JobState, Outcome, Trigger};

/// `BG_JOB_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u32)]
pub enum JobType {
    /// `BG_JOB_TYPE_DOWNLOAD`
    Download = 0,
    /// `BG_JOB_TYPE_UPLOAD` (not implemented: `E_NOTIMPL`)
    Upload = 1,
    /// `BG_JOB_TYPE_UPLOAD_REPLY` (not implemented: `E_NOTIMPL`)
    UploadReply = 2,
}

/// `BG_JOB_PRIORITY`. Lower value, higher priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u32)]
pub enum JobPriority {
    /// `BG_JOB_PRIORITY_FOREGROUND`: runs at once, beside every other foreground job.
    Foreground = 0,
    /// `BG_JOB_PRIORITY_HIGH`
    High = 1,
    /// `BG_JOB_PRIORITY_NORMAL` (the API default)
    Normal = 2,
    /// `BG_JOB_PRIORITY_LOW`
    Low = 3,
}

impl JobPriority {
    /// The priority with BITS' numeric value, or `E_INVALIDARG`.
    pub fn from_u32(v: u32) -> Result<Self, BitsError> {
        match v {
            0 => Ok(Self::Foreground),
            1 => Ok(Self::High),
            2 => Ok(Self::Normal),
            3 => Ok(Self::Low),
            _ => Err(BitsError::new(
                codes::E_INVALIDARG,
                format!("{v} is not a BG_JOB_PRIORITY (0..=3)"),
            )),
        }
    }

    /// BITS' name without the prefix: `FOREGROUND`, `HIGH`, `NORMAL`, `LOW`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Foreground => "FOREGROUND",
            Self::High => "HIGH",
            Self::Normal => "NORMAL",
            Self::Low => "LOW",
        }
    }
}

impl std::str::FromStr for JobPriority {
    type Err = BitsError;

    fn from_str(s: &str) -> Result<Self, BitsError> {
        match s.to_ascii_uppercase().as_str() {
            "FOREGROUND" => Ok(Self::Foreground),
            "HIGH" => Ok(Self::High),
            "NORMAL" => Ok(Self::Normal),
            "LOW" => Ok(Self::Low),
            _ => Err(BitsError::new(
                codes::E_INVALIDARG,
                format!("unknown priority {s:?}: expected foreground, high, normal or low"),
            )),
        }
    }
}

/// `BG_NOTIFY_*` flags: which callbacks the application wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NotifyFlags(u32);

impl NotifyFlags {
    /// `BG_NOTIFY_JOB_TRANSFERRED`
    pub const JOB_TRANSFERRED: u32 = 0x01;
    /// `BG_NOTIFY_JOB_ERROR`
    pub const JOB_ERROR: u32 = 0x02;
    /// `BG_NOTIFY_DISABLE`: no notifications at all
    pub const DISABLE: u32 = 0x04;
    /// `BG_NOTIFY_JOB_MODIFICATION`
    pub const JOB_MODIFICATION: u32 = 0x08;
    /// `BG_NOTIFY_FILE_TRANSFERRED`
    pub const FILE_TRANSFERRED: u32 = 0x10;
    /// `BG_NOTIFY_FILE_RANGES_TRANSFERRED`
    pub const FILE_RANGES_TRANSFERRED: u32 = 0x20;
    const ALL: u32 = 0x3F;

    /// The BITS default: `JOB_TRANSFERRED | JOB_ERROR`.
    pub const DEFAULT: Self = Self(Self::JOB_TRANSFERRED | Self::JOB_ERROR);

    /// Flags from BITS' bits; an unknown bit is `E_NOTIMPL` as in `SetNotifyFlags`.
    pub fn from_bits(bits: u32) -> Result<Self, BitsError> {
        if bits & !Self::ALL != 0 {
            return Err(BitsError::new(
                codes::E_NOTIMPL,
                format!("notify flags 0x{bits:X} hold bits outside BG_NOTIFY_* (0x3F)"),
            ));
        }
        Ok(Self(bits))
    }

    /// The raw bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether the callback `flag` is wanted (always false under `DISABLE`).
    pub fn wants(self, flag: u32) -> bool {
        self.0 & Self::DISABLE == 0 && self.0 & flag != 0
    }
}

/// `BG_SIZE_UNKNOWN`: `u64::MAX`.
pub const SIZE_UNKNOWN: u64 = u64::MAX;

/// `BG_JOB_PROGRESS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Sum of the files' sizes; [`SIZE_UNKNOWN`] while any size is unknown.
    pub bytes_total: u64,
    /// Bytes transferred over all files.
    pub bytes_transferred: u64,
    /// Number of files.
    pub files_total: u32,
    /// Files fully transferred.
    pub files_transferred: u32,
}

/// `BG_FILE_PROGRESS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    /// The file's size, or [`SIZE_UNKNOWN`] until the server has said.
    pub bytes_total: u64,
    /// Bytes in the temp file that belong to the current version of the remote file.
    pub bytes_transferred: u64,
    /// The whole file is transferred (it appears at its local name on Complete).
    pub completed: bool,
}

/// `BG_JOB_TIMES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTimes {
    /// When the job was created.
    pub creation: Timestamp,
    /// When the job last changed (bytes, files, properties, state).
    pub modification: Timestamp,
    /// When the job entered `TRANSFERRED`, if it has.
    pub transfer_completion: Option<Timestamp>,
}

/// The owner of a job: an opaque principal given by the caller (a uid, a user name, a SID).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Owner(pub String);

/// Who makes a call: a principal and whether it is an administrator (root, for the daemon).
///
/// The embedding application that owns the engine calls without one (`Engine::job_mut`): it
/// acts as the owner of every job. A daemon serving several users calls through
/// `Engine::job_mut_as` / `job_as` with the peer's identity, and core enforces BITS' rules:
/// only the owner (or an administrator) sees and changes a job; only the owner sets
/// credentials and custom headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The caller's identity, compared with the job's owner.
    pub owner: Owner,
    /// An administrator may see and change every job and take ownership.
    pub admin: bool,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `complete` did: `S_OK` or `BG_S_PARTIAL_COMPLETE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// Every file was transferred and is being committed (`S_OK`).
    Complete,
    /// Some files were not transferred; their temp files are deleted (`BG_S_PARTIAL_COMPLETE`).
    PartialComplete,
}

impl CompleteOutcome {
    /// The HRESULT BITS returns.
    pub fn hresult(self) -> HResult {
        match self {
            Self::Complete => codes::S_OK,
            Self::PartialComplete => codes::BG_S_PARTIAL_COMPLETE,
        }
    }
}
