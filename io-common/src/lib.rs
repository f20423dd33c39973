//! # backhaul-io
//!
//! What both backhaul drivers share, so that neither writes it twice:
//!
//! - [`Host`]: the engine plus everything a driver does without sockets — the drain loop, the
//!   file actions ([`TempFiles`]), the job store and the reload of its jobs
//!   ([`StoreLocation`], [`BrokenRecord`]), `wait` waiters. A driver implements [`Io`]
//!   (connect, send, close, publish an event) and moves inputs, commands and timer wake-ups
//!   into the host; it holds no policy of its own.
//! - [`DriverConfig`] and [`DriverError`]: the configuration and errors of both drivers.
//! - [`tls`]: the trust anchors handed to core and the rustls client configuration whose
//!   verifier decides nothing (core validates the chain).
//! - [`failure`]: `io::Error` → [`IoFailure`](backhaul_core::IoFailure).
//! - [`clock`]: wall time for the engine.
//! - [`crl_fetch`]: the blocking HTTP GET behind `Action::FetchCrl`.
//! - [`gss`]: Kerberos tokens from the system's GSS-API behind `Action::SecurityToken`.
//! - [`EventBacklog`]: events kept while no subscriber listens, for the next one.
// One `unsafe` block (clearing supplementary groups before running a notify program as its
// owner, `program.rs`); everything else is safe code.
#![deny(unsafe_code)]

mod backlog;
mod buffer;
pub mod clock;
mod config;
pub mod crl_fetch;
pub mod failure;
mod files;
pub mod gss;
mod host;
mod program;
mod reload;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tls;
mod validation;

pub use crate::backlog::{EventBacklog, EVENT_BACKLOG};
pub use crate::buffer::{ReadBuffer, ReadSize, READ_BUDGET, READ_BUFFER};
pub use crate::config::{default_owner, os_seed, DriverConfig, DriverError};
pub use crate::files::{check_local_name, TempFiles};
pub use crate::host::{Command, Host, Io, OffThread, Reply, Waiter, BATCH};
pub use crate::program::{run_program, RunAs};
pub use crate::reload::{default_store_path, BrokenRecord, StoreLocation};
pub use crate::validation::CertificateRequest;
pub use backhaul_store::StoreError;
