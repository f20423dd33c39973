//! # backhaul-core
//!
//! The sans-IO heart of backhaul: the job model of Windows' Background Intelligent Transfer
//! Service (BITS), the HTTP/1.1 client codec and the server-certificate policy, as a pure state
//! machine. It opens no sockets or files, reads no clock and no OS entropy, and starts no
//! threads: a driver (`backhaul-tokio`, `backhaul-blocking`, or your own) does the I/O.
//!
//! ## The loop every driver runs
//!
//! 1. Build an [`Engine`] from a [`Config`] (its `rng_seed` makes a run replayable) and the
//!    current wall time.
//! 2. Run application commands as they come: [`Engine::create_job`], then
//!    [`Engine::job_mut`]`(id)?.add_file(..)`, `.resume()`, `.complete()`, … Each returns at
//!    once with BITS' codes ([`BitsError`]). Feed [`Input::Timeout`] with the current time just
//!    before, so the command sees the right time.
//! 3. Feed every fact with [`Engine::handle`]: connections opened or failed, bytes received,
//!    end of stream, temp files opened, commits done, timers due. Every [`Input`] carries `now`.
//! 4. Drain [`Engine::poll_output`] until it returns [`Output::Timeout`]: perform each
//!    [`Action`] in order (connect, send, write at an offset, rename, persist, …) and hand each
//!    [`JobEvent`] to the application.
//! 5. Wait until the deadline in `Output::Timeout`, or until I/O or a command arrives, then
//!    go to 2. Drain after every mutation: an input fed while outputs are still queued (for
//!    instance the result of a file action, fed in the middle of the drain) could overtake the
//!    actions before it, so debug builds refuse it. Queue such results and feed them once
//!    `poll_output` has returned `Output::Timeout`.
//!
//! A driver never retries, sleeps or decides on its own: every policy is here.
//!
//! ## Time
//!
//! [`Timestamp`] is wall time (milliseconds since the Unix epoch) handed in by the driver, so
//! BITS' timers (retry delay, no-progress timeout, maximum download time) mean the same after a
//! restart. Time that goes backwards is ignored: the engine keeps the latest time it has seen.
//!
//! ## Errors by blame
//!
//! Caller misuse returns a [`BitsError`] at once. Server and network faults become job state
//! (`ERROR` or `TRANSIENT_ERROR` with a [`JobError`]). A broken internal invariant panics.
//! Every code keeps its BITS name and HRESULT value ([`codes`]).
#![forbid(unsafe_code)]

pub mod auth;
pub mod codes;
mod config;
mod engine;
mod error;
pub mod http;
mod ids;
mod input;
pub mod job;
mod output;
pub mod proxy;
mod time;
pub mod tls;

pub use crate::auth::{AuthScheme, AuthTarget, CredentialSet, Credentials, RemoveOutcome, Secret};
pub use crate::codes::HResult;
pub use crate::config::Config;
pub use crate::engine::{Engine, FileInfo, JobInfo, JobMut, JobRecord, JobView};
pub use crate::error::{BitsError, ErrorContext, JobError, Severity};
pub use crate::ids::{ConnId, FileIndex, JobId};
pub use crate::input::{FileOp, Input, IoFailure, IoFailureKind, TokenStep};
pub use crate::job::{
    Caller, CompleteOutcome, FileProgress, FileRange, JobPriority, JobProgress, JobState, JobTimes,
    JobType, NewFile, NewJob, NotifyFlags, Owner, LENGTH_TO_EOF, SIZE_UNKNOWN,
};
pub use crate::output::{Action, JobEvent, Output};
pub use crate::time::Timestamp;
pub use rustls_pki_types::CertificateDer;
