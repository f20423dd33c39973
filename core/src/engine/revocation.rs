//! `BG_SSL_ENABLE_CRL_CHECK`: a connection whose chain passed the built-in checks waits, with
//! nothing sent, until every CRL its chain names is cached or has failed; then the chain is
//! verified again with the CRLs, and the job either fails or its request goes out.
//!
//! BITS' rules, and how they are kept:
//! - checked for every HTTPS file, for the whole chain: every connection of such a job is
//!   checked (`connect_or_reuse` takes no idle HTTPS connection for it), with webpki's
//!   `RevocationCheckDepth::Chain`;
//! - "uses the local CRL if it is current, otherwise downloads it": configured CRLs cover an
//!   issuer while current; otherwise the certificate's `http://` distribution points are
//!   fetched by the driver (`Action::FetchCrl`) and cached until their nextUpdate;
//! - fails closed: revoked → `ERROR_WINHTTP_SECURE_CERT_REVOKED`; no current CRL, unreachable,
//!   expired or badly signed → `ERROR_WINHTTP_SECURE_CERT_REV_FAILED`; both fatal (ERROR);
//! - "enabling it mid-file restarts that file; finished files are untouched":
//!   [`Engine::restart_for_revocation`], called by `set_security_flags`.
//!
//! A fetch in flight holds up only the connections waiting for it. The connect timeout keeps
//! running while a connection waits, and a connection closed or timed out meanwhile is handled
//! as any connecting one; its wait is dropped when the fetch reports.

use std::collections::BTreeSet;

use bytes::Bytes;
use rustls_pki_types::CertificateDer;

use crate::error::{ErrorContext, JobError, Severity};
use crate::ids::{ConnId, JobId};
use crate::input::IoFailure;
use crate::output::Action;
use crate::tls::{self, crl, CertPolicy, CertificateError, CertificateProblem, CrlNeed};

use super::connection::ConnUser;
use super::transfer::Phase;
use super::Engine;

/// A connection waiting for CRLs.
#[derive(Debug)]
pub(crate) struct CrlWait {
    job: JobId,
    chain: Vec<CertificateDer<'static>>,
    /// Every URL the chain needed fetched (for the error's detail when one failed).
    urls: Vec<String>,
    /// Those not yet reported.
    pending: BTreeSet<String>,
}

impl Engine {
    /// Whether job `id` checks revocation on its HTTPS connections.
    pub(super) fn revocation_checked(&self, id: JobId) -> bool {
        self.jobs
            .get(&id)
            .is_some_and(|j| j.rec.security_flags.crl_check())
    }

    /// The chain of `conn` passed the built-in checks and job `id` checks revocation: fetch
    /// what is missing, or verify at once when every CRL is at hand.
    pub(super) fn check_revocation(
        &mut self,
        id: JobId,
        conn: ConnId,
        chain: Vec<CertificateDer<'static>>,
    ) {
        let now = self.now;
        let mut urls = Vec::new();
        for cert in &chain {
            let covered = crl::issuer_of(cert).is_some_and(|issuer| self.crls.covers(&issuer, now));
            if !covered {
                for url in crl::distribution_points(cert) {
                    if !urls.contains(&url) {
                        urls.push(url);
                    }
                }
            }
        }
        let mut pending = BTreeSet::new();
        for url in &urls {
            match self.crls.request(url, now) {
                CrlNeed::Ready => {}
                CrlNeed::Wait => {
                    pending.insert(url.clone());
                }
                CrlNeed::Fetch => {
                    pending.insert(url.clone());
                    self.push_action(Action::FetchCrl { url: url.clone() });
                }
            }
        }
        let wait = CrlWait {
            job: id,
            chain,
            urls,
            pending,
        };
        if wait.pending.is_empty() {
            return self.finish_revocation(conn, wait);
        }
        self.crl_waits.insert(conn, wait);
    }

    /// The driver's answer for one CRL URL: cache it, and finish every connection that has
    /// nothing left to wait for.
    pub(super) fn handle_crl_fetched(&mut self, url: &str, result: Result<Bytes, IoFailure>) {
        let now = self.now;
        let result = match &result {
            Ok(body) => Ok(&body[..]),
            Err(error) => Err(format!("unreachable: {}", error.message)),
        };
        self.crls.store(url, now, result);
        let ready: Vec<ConnId> = self
            .crl_waits
            .iter_mut()
            .filter_map(|(conn, wait)| {
                let was_waiting = wait.pending.remove(url);
                (was_waiting && wait.pending.is_empty()).then_some(*conn)
            })
            .collect();
        for conn in ready {
            let wait = self.crl_waits.remove(&conn).expect("collected above");
            self.finish_revocation(conn, wait);
        }
    }

    /// Every CRL is in (or failed): verify again with revocation, then fail or go on.
    fn finish_revocation(&mut self, conn: ConnId, wait: CrlWait) {
        let CrlWait {
            job: id,
            chain,
            urls,
            ..
        } = wait;
        // The connection may have closed, timed out or been dropped (job suspended, failed)
        // while the CRLs were fetched; then there is nothing left to decide.
        let still_waiting = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.user == ConnUser::Connecting(id));
        if !still_waiting {
            return;
        }
        let c = &self.conns[&conn];
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let now = self.now;
        let host = c.origin.host.clone();
        let crls = self.crls.current(now);
        let policy = CertPolicy::from_flags(job.rec.security_flags).with_revocation(&crls);
        match tls::verify_server_chain(&self.trust, &chain, &host, now, &policy) {
            Ok(()) => self.certificate_checked(id, conn, chain),
            Err(mut e) => {
                if e.kind == CertificateProblem::RevocationUnknown {
                    // Say why a CRL is missing: that is what the user can act on.
                    for why in urls.iter().filter_map(|u| self.crls.failure(u)) {
                        e.detail.push_str("; ");
                        e.detail.push_str(why);
                    }
                }
                self.fail_certificate(id, &e);
            }
        }
    }

    /// A certificate problem is fatal: the job goes to ERROR with WinHTTP's code.
    ///
    /// Not transient: retrying cannot change a certificate, a revocation, or (usually) a CRL
    /// that is unreachable; BITS puts these in ERROR too, and the user acts (fix the server,
    /// set a flag, publish the CRL) and resumes.
    pub(super) fn fail_certificate(&mut self, id: JobId, e: &CertificateError) {
        let error = JobError::new(ErrorContext::GeneralTransport, e.kind.code(), e.to_string());
        self.fail(id, error, Severity::Fatal, None);
    }

    /// `BG_SSL_ENABLE_CRL_CHECK` was just turned on. The bytes of the current file came over a
    /// connection whose revocation was not checked, so, as BITS does, that file starts over
    /// from byte 0 on a new, checked connection. Finished files keep their bytes: they were
    /// accepted under the flags of their time. Plain-HTTP files have nothing to check.
    pub(super) fn restart_for_revocation(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(index) = job.rec.files.iter().position(|f| !f.completed) else {
            return;
        };
        let url = match &job.fetch {
            Some(fetch) => fetch.url.clone(),
            None => job.rec.files[index].remote.clone(),
        };
        let file = &mut job.rec.files[index];
        if url.scheme() != "https" || (file.transferred == 0 && job.fetch.is_none()) {
            return;
        }
        // Not fetching (suspended, queued, in error): the next start truncates the temp file
        // to the recorded length, now 0 (`handle_temp_opened`).
        file.reset_version();
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        let file = fetch.file;
        let conn = fetch.conn.take();
        fetch.offset = 0;
        fetch.range_start = 0;
        let temp_open = fetch.temp_open;
        if let Some(conn) = conn {
            self.drop_conn(conn);
        }
        if !temp_open {
            // Still opening the temp file: `handle_temp_opened` truncates and connects.
            return;
        }
        if let Some(fetch) = self.fetch_mut(id) {
            fetch.phase = Phase::Connecting;
        }
        self.push_action(Action::TruncateFile {
            job: id,
            file,
            len: 0,
        });
        self.connect_or_reuse(id);
    }
}
