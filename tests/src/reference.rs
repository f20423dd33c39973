//! A reference model of the BITS job contract for the two-file [`World`](crate::world), written
//! to be read: no HTTP, no files, no timers' mechanics — only what an application sees after
//! each step once the job has settled (it is not QUEUED, CONNECTING or TRANSFERRING).
//!
//! The rules, from BITS' documentation (../shared/spec/bits-reference.md):
//! - A command on an ACKNOWLEDGED or CANCELLED job is `BG_E_INVALID_STATE`; otherwise suspend,
//!   cancel and complete always succeed, and resume succeeds (the job has files).
//! - Resume queues the job and restarts its no-progress clock; the job then transfers its
//!   unfinished files in order. A file that is served completes; the first that fails stops
//!   the job: 404 is fatal (ERROR), 503, a refused connection, a connection closed or reset
//!   (before or mid-body) and a rejected certificate are transient (TRANSIENT_ERROR), each counted in the error count.
//! - Body bytes are progress: a cut transfer keeps its bytes and the retry resumes after them.
//! - TRANSIENT_ERROR is retried after the retry delay. A failure is fatal instead when the job
//!   has made no progress for the whole no-progress timeout; and if that deadline comes before
//!   the retry, the job moves to ERROR keeping its last error.
//! - The HTTPS server's certificate is put to the app's callback once; an accepted server is
//!   not asked again, a rejected one is asked on every attempt.
//! - Complete makes the finished files appear at their local names and ends ACKNOWLEDGED;
//!   unfinished files are dropped (their progress reads 0). Cancel ends CANCELLED with no file anywhere.

use backhaul_core::{codes, ErrorContext, HResult, JobState};

use crate::world::{ServerReply, NO_PROGRESS_SECS, RETRY_DELAY_SECS};

/// A step of the model: a command, a change in the world, or waiting for the next retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `Resume`.
    Resume,
    /// `Suspend`.
    Suspend,
    /// `Cancel`.
    Cancel,
    /// `Complete`.
    Complete,
    /// The next request for `file` gets `reply` (any but Changed and Silence).
    Serve {
        /// Which file.
        file: u8,
        /// How.
        reply: ServerReply,
    },
    /// The server of `file` refuses connections, or accepts them again.
    Refuse {
        /// Which file.
        file: u8,
        /// Refuse or accept.
        on: bool,
    },
    /// The callback's next verdict.
    Verdict(bool),
    /// Time passes until the next timer of a TRANSIENT_ERROR job (its retry, or its no-progress
    /// deadline if that comes first); nothing happens in other states.
    WaitRetry,
}

/// The sizes of the world's files (version 0).
pub const SIZES: [u64; 2] = [3_000, 4_000];

/// The model's state: what the application can observe, plus the world's pending behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    /// The job's state.
    pub state: JobState,
    /// Bytes transferred per file.
    pub bytes: [u64; 2],
    /// Files fully transferred.
    pub done: [bool; 2],
    /// Files that appeared at their local names.
    pub appeared: [bool; 2],
    /// The last error (context and code), shown in ERROR and TRANSIENT_ERROR.
    pub error: Option<(ErrorContext, HResult)>,
    /// `GetErrorCount`.
    pub error_count: u32,
    /// What the last command returned (`None` after a non-command step).
    pub last_result: Option<Result<(), HResult>>,
    /// The next reply per file (then Ok).
    pub next_reply: [Option<ServerReply>; 2],
    /// Servers refusing connections.
    pub refused: [bool; 2],
    /// Verdicts still to come (then accept).
    pub verdicts: Vec<bool>,
    /// The HTTPS server was accepted by the callback.
    pub cert_accepted: bool,
    /// Model time, in seconds (transfers take no time).
    pub now: u64,
    /// When the job last made progress or was resumed.
    pub last_progress: u64,
    /// When a TRANSIENT_ERROR is retried.
    pub retry_at: u64,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// The world's job as created: SUSPENDED, two files, nothing transferred.
    pub fn new() -> Self {
        Self {
            state: JobState::Suspended,
            bytes: [0; 2],
            done: [false; 2],
            appeared: [false; 2],
            error: None,
            error_count: 0,
            last_result: None,
            next_reply: [None; 2],
            refused: [false; 2],
            verdicts: Vec::new(),
            cert_accepted: false,
            now: 0,
            last_progress: 0,
            retry_at: 0,
        }
    }

    /// The state after `step`.
    pub fn apply(mut self, step: Step) -> Self {
        self.last_result = None;
        let refused = Err(codes::BG_E_INVALID_STATE);
        let is_final = self.state.is_final();
        match step {
            Step::Resume | Step::Suspend | Step::Cancel | Step::Complete if is_final => {
                self.last_result = Some(refused);
            }
            Step::Resume => {
                self.last_result = Some(Ok(()));
                self.last_progress = self.now;
                if !(self.state == JobState::Transferred && self.done.iter().all(|d| *d)) {
                    self.run();
                }
            }
            Step::Suspend => {
                self.last_result = Some(Ok(()));
                self.state = JobState::Suspended;
            }
            Step::Cancel => {
                self.last_result = Some(Ok(()));
                self.state = JobState::Cancelled;
            }
            Step::Complete => {
                self.last_result = Some(Ok(()));
                self.appeared = self.done;
                // Unfinished files are dropped, and with them their progress.
                for i in 0..2 {
                    if !self.done[i] {
                        self.bytes[i] = 0;
                    }
                }
                self.state = JobState::Acknowledged;
            }
            Step::Serve { file, reply } => self.next_reply[usize::from(file & 1)] = Some(reply),
            Step::Refuse { file, on } => self.refused[usize::from(file & 1)] = on,
            Step::Verdict(v) => self.verdicts.push(v),
            Step::WaitRetry if self.state == JobState::TransientError => {
                let deadline = self.last_progress + u64::from(NO_PROGRESS_SECS);
                if deadline < self.retry_at {
                    self.now = deadline;
                    self.state = JobState::Error;
                } else {
                    self.now = self.retry_at;
                    self.run();
                }
            }
            Step::WaitRetry => {}
        }
        self
    }

    /// The job is queued: transfer unfinished files in order until one fails or all are done.
    fn run(&mut self) {
        for (i, size) in SIZES.into_iter().enumerate() {
            if self.done[i] {
                continue;
            }
            if self.refused[i] {
                return self.fail(ErrorContext::GeneralTransport, CONNECT_REFUSED, false);
            }
            if i == 1 && !self.cert_accepted {
                let accept = if self.verdicts.is_empty() {
                    true
                } else {
                    self.verdicts.remove(0)
                };
                if !accept {
                    return self.fail(ErrorContext::ServerCertificateCallback, REJECTED, false);
                }
                self.cert_accepted = true;
            }
            match self.next_reply[i].take().unwrap_or(ServerReply::Ok) {
                ServerReply::Unavailable => {
                    let code = HResult::from_http_status(503);
                    return self.fail(ErrorContext::RemoteFile, code, false);
                }
                ServerReply::NotFound => {
                    let code = HResult::from_http_status(404);
                    return self.fail(ErrorContext::RemoteFile, code, true);
                }
                ServerReply::Closed => {
                    // An end of stream where the head should be: the response was cut short.
                    let code = codes::BG_E_CONNECTION_CLOSED;
                    return self.fail(ErrorContext::RemoteFile, code, false);
                }
                reply @ (ServerReply::Truncated | ServerReply::Reset) => {
                    // Half the body arrives; a resumed transfer asked for the rest already.
                    let half = size / 2;
                    if self.bytes[i] < half {
                        self.bytes[i] = half;
                    } else {
                        self.bytes[i] = size;
                        self.done[i] = true;
                        self.last_progress = self.now;
                        continue;
                    }
                    self.last_progress = self.now;
                    return if reply == ServerReply::Reset {
                        let code = codes::ERROR_WINHTTP_CONNECTION_ERROR;
                        self.fail(ErrorContext::GeneralTransport, code, false)
                    } else {
                        self.fail(
                            ErrorContext::RemoteFile,
                            codes::BG_E_CONNECTION_CLOSED,
                            false,
                        )
                    };
                }
                _ => {
                    self.bytes[i] = size;
                    self.done[i] = true;
                    self.last_progress = self.now;
                }
            }
        }
        self.state = JobState::Transferred;
    }

    fn fail(&mut self, context: ErrorContext, code: HResult, fatal: bool) {
        self.error = Some((context, code));
        self.error_count += 1;
        let stalled = self.now - self.last_progress >= u64::from(NO_PROGRESS_SECS);
        if fatal || stalled || RETRY_DELAY_SECS > NO_PROGRESS_SECS {
            self.state = JobState::Error;
        } else {
            self.state = JobState::TransientError;
            self.retry_at = self.now + u64::from(RETRY_DELAY_SECS);
        }
    }
}

/// What a refused connection is recorded as (WinHTTP's ERROR_WINHTTP_CANNOT_CONNECT).
const CONNECT_REFUSED: HResult = HResult(0x8007_2EFD);
/// The code the world's callback rejects with (CERT_E_UNTRUSTEDROOT).
const REJECTED: HResult = HResult(0x800B_0109);
