//! The application's server-certificate validation callback
//! (`SetServerCertificateValidationInterface`): asked after the built-in checks have passed and
//! before one request byte is sent; accepted `(host, port, certificate)` triples are cached per
//! job, rejections never are.
//!
//! Core never holds the callback itself (it is the driver's closure or future, and BITS never
//! persists it); it only knows whether the job wants one ([`JobRecord`](super::JobRecord)'s
//! `wants_certificate_validation`, durable) and whether one is registered now (runtime only).
//! A job that wants one and has none — after a restart, say — stops with
//! `BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED` until the app registers one and resumes.

use std::collections::BTreeSet;

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use crate::codes::{self, HResult};
use crate::error::{ErrorContext, JobError, Severity};
use crate::ids::{ConnId, JobId};
use crate::output::Action;

use super::connection::ConnUser;
use super::Engine;

/// A job's callback registration, as far as core knows it.
#[derive(Debug, Default)]
pub(crate) struct Validation {
    /// A callback is registered with the driver now. Never persisted.
    pub(crate) registered: bool,
    /// Servers the callback accepted since it was registered: (host, port, SHA-256 of the leaf).
    pub(crate) accepted: BTreeSet<(String, u16, [u8; 32])>,
}

impl Engine {
    /// The built-in certificate checks passed on `conn` (or it is plain HTTP): ask the app's
    /// callback when the job wants one, otherwise send the request.
    pub(super) fn certificate_checked(
        &mut self,
        id: JobId,
        conn: ConnId,
        chain: Vec<CertificateDer<'static>>,
    ) {
        let (Some(job), Some(c)) = (self.jobs.get(&id), self.conns.get(&conn)) else {
            return;
        };
        let (Some(leaf), true) = (chain.first(), job.rec.wants_certificate_validation) else {
            return self.start_request(id, conn);
        };
        if !job.validation.registered {
            let why = format!(
                "the job wants a server certificate validation callback for {}:{} and none is \
                 registered (callbacks are not persisted: register one again and resume)",
                c.origin.host, c.origin.port
            );
            let error = JobError::new(
                ErrorContext::ServerCertificateCallback,
                codes::BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED,
                why,
            );
            self.drop_conn(conn);
            return self.fail(id, error, Severity::Fatal, None);
        }
        let hash: [u8; 32] = Sha256::digest(leaf.as_ref()).into();
        let key = (c.origin.host.clone(), c.origin.port, hash);
        if job.validation.accepted.contains(&key) {
            return self.start_request(id, conn);
        }
        let Some(file) = job.fetch.as_ref().map(|f| f.file) else {
            return;
        };
        let (host, port) = (key.0, key.1);
        let c = self.conns.get_mut(&conn).expect("checked above");
        c.verdict_pending = Some(hash);
        self.push_action(Action::ValidateCertificate {
            conn,
            job: id,
            file,
            host,
            port,
            leaf: leaf.clone(),
            chain,
        });
    }

    /// The callback's answer for `conn`.
    pub(super) fn handle_certificate_verdict(
        &mut self,
        conn: ConnId,
        verdict: Result<(), HResult>,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (ConnUser::Connecting(id), Some(hash)) = (c.user, c.verdict_pending.take()) else {
            return;
        };
        let (host, port) = (c.origin.host.clone(), c.origin.port);
        match verdict {
            Ok(()) => {
                if let Some(job) = self.jobs.get_mut(&id) {
                    job.validation.accepted.insert((host, port, hash));
                }
                self.start_request(id, conn);
            }
            Err(code) => {
                // A success code is no rejection reason; record a failure BITS would accept.
                let code = if code.is_success() {
                    codes::E_FAIL
                } else {
                    code
                };
                let why = format!(
                    "the server certificate validation callback rejected {host}:{port} ({})",
                    code.name_or_hex()
                );
                self.drop_conn(conn);
                if let Some(fetch) = self.fetch_mut(id) {
                    fetch.conn = None;
                }
                let error = JobError::new(ErrorContext::ServerCertificateCallback, code, why);
                self.fail(id, error, Severity::Transient, None);
            }
        }
    }
}
