//! What the application's server-certificate validation callback is asked about.
//!
//! Core decides when to ask (`Action::ValidateCertificate`: after the built-in checks, before a
//! request byte); the driver holds the callback (core never does: BITS does not persist it)
//! and runs it off the engine's thread or task, feeding back `Input::CertificateVerdict`.

use backhaul_core::{CertificateDer, ConnId, FileIndex, HResult, Input, JobId};

use crate::clock;

/// One question to the callback: may this job download from the server that presented this
/// certificate? Answer `Ok(())` to accept, or `Err(code)` to reject with a failure HRESULT
/// (the job then goes to TRANSIENT_ERROR with context SERVER_CERTIFICATE_CALLBACK and `code`).
#[derive(Clone, Debug)]
pub struct CertificateRequest {
    /// The job.
    pub job: JobId,
    /// The file the connection is for.
    pub file: FileIndex,
    /// The server's host name.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// The end-entity certificate, DER.
    pub leaf: CertificateDer<'static>,
    /// The chain as presented, end-entity first, DER.
    pub chain: Vec<CertificateDer<'static>>,
    /// The connection waiting (internal: for the verdict's input).
    pub(crate) conn: ConnId,
}

impl CertificateRequest {
    /// The input that carries the callback's answer back to the engine.
    pub fn verdict(&self, verdict: Result<(), HResult>) -> Input {
        Input::CertificateVerdict {
            now: clock::now(),
            conn: self.conn,
            verdict,
        }
    }
}
