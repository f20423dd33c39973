//! Errors, split by blame (DESIGN.md):
//!
//! - caller misuse is returned at once as a [`BitsError`] (a BITS code plus what was wrong);
//! - server and network faults become job state: a [`JobError`] recorded on the job, which
//!   moves to `ERROR` or `TRANSIENT_ERROR`;
//! - a broken internal invariant panics, with a comment naming the invariant.

use serde::{Deserialize, Serialize};

use crate::codes::HResult;
use crate::ids::FileIndex;

/// A command was refused: the BITS code, and what was wrong in plain words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {detail}", code.name_or_hex(), code)]
pub struct BitsError {
    code: HResult,
    detail: String,
}

impl BitsError {
    /// A refusal with `code`, explained by `detail`.
    pub fn new(code: HResult, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// The HRESULT, e.g. `BG_E_INVALID_STATE` 0x80200002.
    pub fn code(&self) -> HResult {
        self.code
    }

    /// What was wrong, in plain words.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// Where an error happened: `BG_ERROR_CONTEXT`, with BITS' values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u32)]
pub enum ErrorContext {
    /// `BG_ERROR_CONTEXT_NONE`
    None = 0,
    /// `BG_ERROR_CONTEXT_UNKNOWN`
    Unknown = 1,
    /// `BG_ERROR_CONTEXT_GENERAL_QUEUE_MANAGER`
    GeneralQueueManager = 2,
    /// `BG_ERROR_CONTEXT_QUEUE_MANAGER_NOTIFICATION`
    QueueManagerNotification = 3,
    /// `BG_ERROR_CONTEXT_LOCAL_FILE`
    LocalFile = 4,
    /// `BG_ERROR_CONTEXT_REMOTE_FILE`
    RemoteFile = 5,
    /// `BG_ERROR_CONTEXT_GENERAL_TRANSPORT`
    GeneralTransport = 6,
    /// `BG_ERROR_CONTEXT_REMOTE_APPLICATION`
    RemoteApplication = 7,
    /// `BG_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK`
    ServerCertificateCallback = 8,
}

impl ErrorContext {
    /// BITS' name for the context, e.g. `BG_ERROR_CONTEXT_REMOTE_FILE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "BG_ERROR_CONTEXT_NONE",
            Self::Unknown => "BG_ERROR_CONTEXT_UNKNOWN",
            Self::GeneralQueueManager => "BG_ERROR_CONTEXT_GENERAL_QUEUE_MANAGER",
            Self::QueueManagerNotification => "BG_ERROR_CONTEXT_QUEUE_MANAGER_NOTIFICATION",
            Self::LocalFile => "BG_ERROR_CONTEXT_LOCAL_FILE",
            Self::RemoteFile => "BG_ERROR_CONTEXT_REMOTE_FILE",
            Self::GeneralTransport => "BG_ERROR_CONTEXT_GENERAL_TRANSPORT",
            Self::RemoteApplication => "BG_ERROR_CONTEXT_REMOTE_APPLICATION",
            Self::ServerCertificateCallback => "BG_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK",
        }
    }

    /// The context's description, as `GetErrorContextDescription` gives it.
    pub fn description(self) -> &'static str {
        match self {
            Self::None => "no error context",
            Self::Unknown => "an unknown location",
            Self::GeneralQueueManager => "the transfer queue manager",
            Self::QueueManagerNotification => "the notification callback",
            Self::LocalFile => "the local file",
            Self::RemoteFile => "the remote file",
            Self::GeneralTransport => "the transport layer",
            Self::RemoteApplication => "the remote server application",
            Self::ServerCertificateCallback => "the server certificate validation callback",
        }
    }
}

/// Whether a fault is retried (`TRANSIENT_ERROR`) or stops the job (`ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    /// Retried after the retry delay, until the no-progress timeout.
    Transient,
    /// The job moves to `ERROR` and waits for the application.
    Fatal,
}

/// The error recorded on a job: `IBackgroundCopyError`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// Where it happened.
    pub context: ErrorContext,
    /// What happened, as an HRESULT.
    pub code: HResult,
    /// The cause in plain words (more specific than the code's own message).
    pub description: String,
    /// The file being transferred, when the error is tied to one.
    pub file: Option<FileIndex>,
}

impl JobError {
    /// An error in `context` with `code`, described by `description`.
    pub fn new(context: ErrorContext, code: HResult, description: impl Into<String>) -> Self {
        Self {
            context,
            code,
            description: description.into(),
            file: None,
        }
    }

    /// The same error, tied to `file`.
    pub fn for_file(mut self, file: FileIndex) -> Self {
        self.file = Some(file);
        self
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) in {}: {}",
            self.code.name_or_hex(),
            self.code,
            self.context.name(),
            self.description
        )
    }
}
