//! [`Input`]: the facts a driver feeds to the engine. Every input carries `now`.

use bytes::Bytes;
use rustls_pki_types::CertificateDer;

use crate::auth::AuthTarget;
use crate::codes::HResult;
use crate::ids::{ConnId, FileIndex, JobId};
use crate::time::Timestamp;

/// A fact from the outside world, fed with [`Engine::handle`](crate::Engine::handle).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Input {
    /// The clock reads `now`: run whatever timers are due. A spurious one does nothing.
    /// Drivers also feed it before a command so that the command sees the current time.
    Timeout {
        /// Current wall time.
        now: Timestamp,
    },
    /// A connection asked for by [`Action::Connect`](crate::Action::Connect) is open (and, for
    /// HTTPS, its TLS handshake is done). Nothing has been sent on it yet.
    Connected {
        /// Current wall time.
        now: Timestamp,
        /// The connection.
        conn: ConnId,
        /// For HTTPS, the certificate chain the server presented, end-entity first, exactly as
        /// received. The driver's TLS verifier decides nothing: core does, on this input.
        peer_certificates: Vec<CertificateDer<'static>>,
    },
    /// The application's validation callback answered for `conn`
    /// ([`Action::ValidateCertificate`](crate::Action::ValidateCertificate)): `Ok` accepts the
    /// server, `Err(code)` rejects it with that HRESULT.
    CertificateVerdict {
        /// Current wall time.
        now: Timestamp,
        /// The connection waiting for the verdict.
        conn: ConnId,
        /// Accept, or reject with a code.
        verdict: Result<(), HResult>,
    },
    /// The notification program of `job` ended: `Ok(code)` with its exit code (a signal
    /// counts as failure), or `Err` when it could not be started.
    ProgramExited {
        /// Current wall time.
        now: Timestamp,
        /// The job.
        job: JobId,
        /// Its exit status.
        exit: Result<i32, IoFailure>,
    },
    /// TLS asked for by [`Action::StartTls`](crate::Action::StartTls) is up on the connection.
    /// Nothing has been sent through it yet.
    TlsStarted {
        /// Current wall time.
        now: Timestamp,
        /// The connection.
        conn: ConnId,
        /// The certificate chain the origin presented, end-entity first, exactly as received;
        /// core decides on it, as for [`Input::Connected`].
        peer_certificates: Vec<CertificateDer<'static>>,
    },
    /// A connection could not be opened (resolution, TCP or TLS failed).
    ConnectFailed {
        /// Current wall time.
        now: Timestamp,
        /// The connection.
        conn: ConnId,
        /// What failed.
        error: IoFailure,
    },
    /// Bytes arrived on a connection (after TLS decryption).
    Received {
        /// Current wall time.
        now: Timestamp,
        /// The connection.
        conn: ConnId,
        /// The bytes, in order. Never empty.
        data: Bytes,
    },
    /// The peer closed the connection cleanly (end of stream).
    Closed {
        /// Current wall time.
        now: Timestamp,
        /// The connection.
        conn: ConnId,
    },
    /// Reading from or writing to an open connection failed; the driver has closed it.
    ConnectionFailed {
        /// Current wall time.
        now: Timestamp,
        /// The connection.
        conn: ConnId,
        /// What failed.
        error: IoFailure,
    },
    /// [`Action::OpenTemp`](crate::Action::OpenTemp) succeeded: the temp file is open for
    /// writing and holds `len` bytes.
    TempOpened {
        /// Current wall time.
        now: Timestamp,
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
        /// Current length of the temp file.
        len: u64,
    },
    /// A file action on `(job, file)` failed.
    FileFailed {
        /// Current wall time.
        now: Timestamp,
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
        /// Which action failed.
        op: FileOp,
        /// What failed.
        error: IoFailure,
    },
    /// [`Action::SyncFile`](crate::Action::SyncFile) succeeded: the first `len` bytes of the
    /// temp file are on disk.
    FileSynced {
        /// Current wall time.
        now: Timestamp,
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
        /// The `len` of the `SyncFile` action.
        len: u64,
    },
    /// [`Action::CommitFile`](crate::Action::CommitFile) succeeded: the file is at its local name.
    FileCommitted {
        /// Current wall time.
        now: Timestamp,
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
    },
    /// [`Action::FetchCrl`](crate::Action::FetchCrl) finished: the body of a `200` response
    /// (the CRL, DER), or why there is none (unreachable, another status, too large, …).
    CrlFetched {
        /// Current wall time.
        now: Timestamp,
        /// The URL, exactly as the action gave it.
        url: String,
        /// The body, or what failed.
        result: Result<Bytes, IoFailure>,
    },
    /// [`Action::SecurityToken`](crate::Action::SecurityToken) finished: the next token, or
    /// why the GSS-API produced none (no ticket in the credential cache, the KDC unreachable,
    /// the service unknown to it, …, in the library's words).
    SecurityToken {
        /// Current wall time.
        now: Timestamp,
        /// The job, as the action gave it.
        job: JobId,
        /// The connection, as the action gave it.
        conn: ConnId,
        /// The target, as the action gave it.
        target: AuthTarget,
        /// The token and whether the client's side is complete, or the failure.
        result: Result<TokenStep, String>,
    },
}

/// One step of a GSS-API client context ([`Input::SecurityToken`]).
///
/// `Debug` shows the token's length only: a Kerberos AP-REQ can be replayed for a few
/// minutes, so it is kept out of logs like a password.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenStep {
    /// The token to send in `Authorization: Negotiate <base64>` (empty: nothing to send).
    pub token: Vec<u8>,
    /// The context is established on the client's side (`GSS_S_COMPLETE`): no further leg is
    /// expected from the server.
    pub complete: bool,
}

impl std::fmt::Debug for TokenStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStep")
            .field("token_len", &self.token.len())
            .field("complete", &self.complete)
            .finish()
    }
}

impl Input {
    /// The time the input carries.
    pub fn now(&self) -> Timestamp {
        match self {
            Input::Timeout { now }
            | Input::Connected { now, .. }
            | Input::CertificateVerdict { now, .. }
            | Input::ProgramExited { now, .. }
            | Input::TlsStarted { now, .. }
            | Input::ConnectFailed { now, .. }
            | Input::Received { now, .. }
            | Input::Closed { now, .. }
            | Input::ConnectionFailed { now, .. }
            | Input::TempOpened { now, .. }
            | Input::FileFailed { now, .. }
            | Input::FileSynced { now, .. }
            | Input::FileCommitted { now, .. }
            | Input::CrlFetched { now, .. }
            | Input::SecurityToken { now, .. } => *now,
        }
    }

    /// The same input, carrying `now` instead: for a driver (or a simulation) that records a
    /// fact when it happens and feeds it later.
    pub fn at(mut self, at: Timestamp) -> Self {
        match &mut self {
            Input::Timeout { now }
            | Input::Connected { now, .. }
            | Input::CertificateVerdict { now, .. }
            | Input::ProgramExited { now, .. }
            | Input::TlsStarted { now, .. }
            | Input::ConnectFailed { now, .. }
            | Input::Received { now, .. }
            | Input::Closed { now, .. }
            | Input::ConnectionFailed { now, .. }
            | Input::TempOpened { now, .. }
            | Input::FileFailed { now, .. }
            | Input::FileSynced { now, .. }
            | Input::FileCommitted { now, .. }
            | Input::CrlFetched { now, .. }
            | Input::SecurityToken { now, .. } => *now = at,
        }
        self
    }
}

/// The file action an [`Input::FileFailed`] reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileOp {
    /// [`Action::OpenTemp`](crate::Action::OpenTemp).
    OpenTemp,
    /// [`Action::WriteFile`](crate::Action::WriteFile),
    /// [`Action::TruncateFile`](crate::Action::TruncateFile) or
    /// [`Action::SyncFile`](crate::Action::SyncFile).
    Write,
    /// [`Action::CommitFile`](crate::Action::CommitFile).
    Commit,
    /// [`Action::DeleteTemp`](crate::Action::DeleteTemp).
    Delete,
}

/// An I/O failure as the driver saw it: a portable kind plus the OS's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoFailure {
    /// What kind of failure it was.
    pub kind: IoFailureKind,
    /// The underlying message (e.g. `Connection refused (os error 111)`).
    pub message: String,
}

impl IoFailure {
    /// A failure of `kind`, described by `message`.
    pub fn new(kind: IoFailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Portable classes of I/O failure; core maps each to a BITS code and a severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoFailureKind {
    /// The host name did not resolve.
    NameNotResolved,
    /// TCP connect was refused or unreachable.
    ConnectRefused,
    /// The TLS handshake failed (protocol, alert); not a certificate verdict.
    TlsHandshake,
    /// The connection was reset or broke mid-stream.
    ConnectionReset,
    /// A path or file already exists (an exclusive create collided).
    AlreadyExists,
    /// A path or directory does not exist.
    NotFound,
    /// Permission denied.
    PermissionDenied,
    /// The disk is full.
    DiskFull,
    /// Anything else.
    Other,
}
