//! [`Output`]: what the engine asks of its driver ([`Action`]) and tells the application
//! ([`JobEvent`]), drained with [`Engine::poll_output`](crate::Engine::poll_output) until it
//! returns [`Output::Timeout`].

use std::path::PathBuf;

use bytes::Bytes;
use rustls_pki_types::CertificateDer;

use crate::auth::AuthTarget;
use crate::error::JobError;
use crate::ids::{ConnId, FileIndex, JobId};
use crate::job::JobState;
use crate::time::Timestamp;

/// One item drained from the engine.
#[derive(Debug)]
#[must_use]
pub enum Output {
    /// Something for the driver to do now.
    Action(Action),
    /// Something for the application to hear about.
    Event(JobEvent),
    /// Nothing more for now: feed [`Input::Timeout`](crate::Input::Timeout) at this time (or
    /// earlier input). `None` means no timer is armed.
    Timeout(Option<Timestamp>),
}

/// An action for the driver. Each one is performed in order; a failure comes back as an input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Action {
    /// Open a TCP connection to `host:port` and, when `tls_server_name` is set, run a TLS
    /// handshake for that name. Report [`Input::Connected`](crate::Input::Connected) with the
    /// presented chain, or [`Input::ConnectFailed`](crate::Input::ConnectFailed). Then read
    /// continuously and report every byte, end of stream or failure.
    Connect {
        /// The new connection's id.
        conn: ConnId,
        /// Host name or IP literal (no brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// SNI and verification name for HTTPS; `None` for plain HTTP.
        tls_server_name: Option<String>,
    },
    /// Start TLS on an open plain connection (a CONNECT tunnel or SOCKS5 tunnel is up): stop
    /// reading plain bytes, run the TLS handshake for `server_name` over the same stream, and
    /// report [`Input::TlsStarted`](crate::Input::TlsStarted) with the presented chain, or
    /// [`Input::ConnectionFailed`](crate::Input::ConnectionFailed) (kind `TlsHandshake`). Then
    /// report decrypted bytes as before. Core sends this only when it has nothing in flight
    /// on the connection.
    StartTls {
        /// The connection.
        conn: ConnId,
        /// SNI and verification name: the origin's host.
        server_name: String,
    },
    /// Write these bytes to the connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// Ask the application's server-certificate validation callback for a verdict on the
    /// certificate `conn` presented (the built-in checks have passed; nothing has been sent).
    /// Report [`Input::CertificateVerdict`](crate::Input::CertificateVerdict).
    ValidateCertificate {
        /// The connection waiting for the verdict.
        conn: ConnId,
        /// The job whose callback decides.
        job: JobId,
        /// The file the connection is for.
        file: FileIndex,
        /// The server's host name, as connected to.
        host: String,
        /// The server's port.
        port: u16,
        /// The end-entity certificate, DER.
        leaf: CertificateDer<'static>,
        /// The whole chain as presented, end-entity first, DER.
        chain: Vec<CertificateDer<'static>>,
    },
    /// Close the connection and forget it. No input about it follows.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Open the temp file for `(job, file)`: create it exclusively when `create` is true
    /// (owner-only permissions, never following a symlink), otherwise open the existing one.
    /// Report [`Input::TempOpened`](crate::Input::TempOpened) or a failure.
    OpenTemp {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
        /// Where the temp file lives: a hidden name in the destination directory.
        path: PathBuf,
        /// Create exclusively (true) or open what is there (false).
        create: bool,
    },
    /// Write `data` at `offset` in the open temp file. Only a failure is reported.
    WriteFile {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
        /// Byte offset in the file.
        offset: u64,
        /// The bytes (a slice of what was received: no copy).
        data: Bytes,
    },
    /// Cut the open temp file to `len` bytes (a restart from byte 0 uses `len = 0`).
    TruncateFile {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
        /// New length.
        len: u64,
    },
    /// Flush the open temp file's data to disk (`fdatasync`): its first `len` bytes must be
    /// durable before [`Input::FileSynced`](crate::Input::FileSynced) is reported with the same
    /// `len`. A failure is reported as [`Input::FileFailed`](crate::Input::FileFailed) with
    /// [`FileOp::Write`](crate::FileOp::Write).
    SyncFile {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
        /// Length of the data the sync covers (echoed in `FileSynced`).
        len: u64,
    },
    /// Close the temp file's handle (the file stays). Nothing is reported.
    CloseFile {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
    },
    /// Make the finished temp file appear at its local name (rename over it, then sync the
    /// directory). Report [`Input::FileCommitted`](crate::Input::FileCommitted) or a failure.
    CommitFile {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
        /// The temp file.
        temp: PathBuf,
        /// The local name.
        dest: PathBuf,
        /// The file's downloaded length. When the temp file is gone and a regular file of
        /// this length is at `dest`, the rename happened in a run that died before reporting
        /// it: report the commit. A file of another length there is what was at the local
        /// name before (an updater's previous version), not this download.
        len: u64,
    },
    /// Delete a temp file (closing it first if open). Only a failure is reported.
    DeleteTemp {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
        /// The temp file.
        path: PathBuf,
    },
    /// Run the job's notification program (`SetNotifyCmdLine`) directly — never through a
    /// shell — with exactly these arguments, off the engine's thread. Report
    /// [`Input::ProgramExited`](crate::Input::ProgramExited) when it ends.
    RunProgram {
        /// The job.
        job: JobId,
        /// The program, an absolute path.
        program: String,
        /// Its arguments, each passed as one argv entry.
        args: Vec<String>,
    },
    /// The job's durable record changed: save [`Engine::job_record`](crate::Engine) to the store.
    Persist {
        /// The job.
        job: JobId,
    },
    /// The job is gone for good (cancelled or acknowledged): delete its record.
    Forget {
        /// The job.
        job: JobId,
    },
    /// Fetch a CRL (`BG_SSL_ENABLE_CRL_CHECK`) with a plain HTTP GET, away from the engine's
    /// thread, and report [`Input::CrlFetched`](crate::Input::CrlFetched) with the same `url`.
    /// Connections waiting for it send nothing meanwhile; other jobs carry on.
    FetchCrl {
        /// An `http://` URL from a certificate's CRL distribution points.
        url: String,
    },
    /// Produce the next token of a Negotiate (Kerberos) exchange as the logged-on user, with
    /// the system's GSS-API and its default credential cache, away from the engine's thread,
    /// and report [`Input::SecurityToken`](crate::Input::SecurityToken) with the same `job`,
    /// `conn` and `target`. `input: None` starts a new client context for `(job, conn,
    /// target)`; `Some` continues the one kept from the previous leg. The driver drops the
    /// context when the connection is closed. The connection sends nothing meanwhile.
    SecurityToken {
        /// The job whose request waits.
        job: JobId,
        /// The connection the exchange authenticates.
        conn: ConnId,
        /// The origin server (401) or the proxy (407).
        target: AuthTarget,
        /// The GSS host-based service name: `HTTP@<host>` (the Kerberos principal
        /// `HTTP/<host>`), the host of the origin or of the proxy.
        service: String,
        /// The server's token from its `Negotiate <base64>` challenge (decoded); `None` for
        /// the first leg.
        input: Option<Bytes>,
    },
}

/// A notification for the application.
///
/// The four BITS callbacks are filtered by the job's notify flags; [`JobEvent::StateChanged`]
/// is a backhaul extension that is always emitted (drivers use it to wake waiters).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobEvent {
    /// `JobTransferred`: every file is transferred; call `complete`.
    JobTransferred {
        /// The job.
        job: JobId,
    },
    /// `JobError`: the job is in `ERROR` (never sent for transient errors).
    JobError {
        /// The job.
        job: JobId,
        /// The error.
        error: JobError,
    },
    /// `JobModification`: bytes, files, properties or state changed (not on the change to
    /// `ERROR` or `TRANSFERRED`).
    JobModification {
        /// The job.
        job: JobId,
    },
    /// `FileTransferred`: one file finished.
    FileTransferred {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
    },
    /// The job's state changed (always emitted, whatever the notify flags).
    StateChanged {
        /// The job.
        job: JobId,
        /// The state before.
        from: JobState,
        /// The state now.
        to: JobState,
    },
}

impl JobEvent {
    /// The job the event is about.
    pub fn job(&self) -> crate::JobId {
        match self {
            JobEvent::JobTransferred { job }
            | JobEvent::JobError { job, .. }
            | JobEvent::JobModification { job }
            | JobEvent::FileTransferred { job, .. }
            | JobEvent::StateChanged { job, .. } => *job,
        }
    }
}
