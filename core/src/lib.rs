//! # backhaul-core
//!
//! The sans-IO heart of backhaul: BITS' job model, the HTTP/1.1 client codec and the
//! certificate policy, as a pure state machine. No sockets, files, clocks, threads or OS entropy.
#![forbid(unsafe_code)]

pub mod codes;
mod config;
mod engine;
mod error;
mod ids;
mod input;
pub mod job;
mod output;
mod time;

pub use crate::codes::HResult;
pub use crate::config::Config;
pub use crate::engine::{Engine, FileInfo, JobInfo, JobMut, JobRecord, JobView};
pub use crate::error::{BitsError, ErrorContext, JobError, Severity};
pub use crate::ids::{ConnId, FileIndex, JobId};
pub use crate::input::{FileOp, Input, IoFailure, IoFailureKind};
pub use crate::job::{
    CompleteOutcome, FileProgress, JobPriority, JobProgress, JobState, JobTimes, JobType, NotifyFlags,
    Owner, SIZE_UNKNOWN,
};
pub use crate::output::{Action, JobEvent, Output};
pub use crate::time::Timestamp;
pub use rustls_pki_types::CertificateDer;
