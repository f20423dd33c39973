//! Server-certificate decisions: is the chain a TLS server presented good enough to download
//! from, and if not, which WinHTTP error does BITS report for it?
//!
//! Drivers run the TLS handshake but do not judge certificates; they hand the presented chain
//! to core, which decides here, against the trust anchors the driver loaded once
//! ([`TrustStore`]) and the `now` that came with the input. Core reads no clock, so expiry is
//! judged at the input's time, which makes every verdict replayable.
//!
//! The verdict is one [`CertificateProblem`], named after the WinHTTP error BITS records
//! (see the "WinHTTP certificate error codes" addendum of the BITS reference), so an app that
//! knows BITS sees the code it expects.
//!
//! Layering still to come (later issues), and how this file is shaped for it:
//! - `BG_SSL_ENABLE_CRL_CHECK`: CRLs will be passed to `check_path` as webpki
//!   `RevocationOptions`; its `CertRevoked` / `UnknownRevocationStatus` errors already map to
//!   [`CertificateProblem::Revoked`] / [`CertificateProblem::RevocationUnknown`].
//! - the `BG_SSL_IGNORE_*` flags: the path check (`check_path`) and the name check
//!   (`check_name`) are separate steps whose webpki findings `classify` turns into problems,
//!   so a `flags` parameter can skip the name step (`IGNORE_CERT_CN_INVALID`) or waive a
//!   classified path problem. webpki stops at its first finding, so waiving a path problem
//!   must re-run the path check with that check relaxed (e.g. an EKU validator that accepts
//!   anything), not merely drop the error, or a later problem would go unseen.
//! - the app callback stage runs after this decision, in the engine.

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use crate::codes::{self, HResult};
use crate::Timestamp;

#[cfg(test)]
mod tests;

/// Trust anchors parsed once from DER certificates (system store + extra CA files, loaded by
/// the driver).
///
/// Parsing up front means a bad CA file is reported once, when the store is built, rather than
/// on every handshake, and each verification only borrows the parsed anchors.
#[derive(Clone)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
}

impl TrustStore {
    /// Parses each certificate; ones that do not parse are skipped and reported as
    /// `(index, reason)`, `index` being the position in `certs`.
    ///
    /// Skipping instead of failing matches how system stores are used: one odd root among a
    /// hundred must not stop every download. The driver decides whether to log the skipped ones.
    pub fn new(certs: &[CertificateDer<'_>]) -> (TrustStore, Vec<(usize, String)>) {
        let mut anchors = Vec::with_capacity(certs.len());
        let mut skipped = Vec::new();
        for (index, cert) in certs.iter().enumerate() {
            // No check that the certificate is a CA or self-signed: a trust store is trusted
            // as given (RFC 5280 6.2), as webpki documents for this function.
            match webpki::anchor_from_trusted_cert(cert) {
                Ok(anchor) => anchors.push(anchor.to_owned()),
                Err(err) => skipped.push((index, format!("not a usable certificate: {err:?}"))),
            }
        }
        (TrustStore { anchors }, skipped)
    }

    /// The number of trust anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// True when there are no trust anchors (every chain then fails with
    /// [`CertificateProblem::UnknownCa`]).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

impl std::fmt::Debug for TrustStore {
    // A system store holds well over a hundred anchors; their bytes would drown any log line
    // or assertion message that prints an engine's configuration.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("anchors", &self.anchors.len())
            .finish()
    }
}

/// Decides whether a presented chain (end-entity first, then intermediates, as received in the
/// TLS handshake) is valid for `server_name` (a DNS name or an IP literal — IPv6 without
/// brackets, though brackets are tolerated) at time `now`, for the serverAuth extended key
/// usage, against `store`.
///
/// The path (signatures, validity dates, basic constraints, name constraints, key usage) is
/// checked before the host name, so a chain that fails both reports the path problem: a name
/// mismatch, which `BG_SSL_IGNORE_CERT_CN_INVALID` may ignore, never hides another problem.
/// Host names are matched against the subjectAltName extension only, as browsers do; the
/// subject's common name is not consulted.
pub fn verify_server_chain(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    server_name: &str,
    now: Timestamp,
) -> Result<(), CertificateError> {
    let Some((leaf_der, intermediates)) = chain.split_first() else {
        return Err(CertificateError {
            kind: CertificateProblem::NoCertificate,
            detail: format!("the server presented no certificate (server name {server_name:?})"),
        });
    };
    let fail = |err: webpki::Error| CertificateError::from_webpki(&err, server_name);
    let leaf = EndEntityCert::try_from(leaf_der).map_err(fail)?;
    check_path(store, &leaf, intermediates, now).map_err(fail)?;
    check_name(&leaf, server_name)
}

/// Why a server certificate chain was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct CertificateError {
    /// The kind of problem, which decides the error code and whether a `BG_SSL_IGNORE_*` flag
    /// can waive it.
    pub kind: CertificateProblem,
    /// What exactly failed, for logs and the job's error description: the verifier's finding
    /// and the server name the chain was checked for.
    pub detail: String,
}

impl CertificateError {
    fn from_webpki(err: &webpki::Error, server_name: &str) -> Self {
        Self {
            kind: classify(err),
            detail: format!("{err:?} (server name {server_name:?})"),
        }
    }
}

/// The kinds of server-certificate problem BITS distinguishes, one per WinHTTP error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateProblem {
    /// The certificate is not valid for the host name:
    /// `ERROR_WINHTTP_SECURE_CERT_CN_INVALID` (ignorable by `BG_SSL_IGNORE_CERT_CN_INVALID`).
    NameMismatch,
    /// A certificate in the chain has expired or is not yet valid:
    /// `ERROR_WINHTTP_SECURE_CERT_DATE_INVALID`.
    DateInvalid,
    /// The chain does not lead to a trust anchor: `ERROR_WINHTTP_SECURE_INVALID_CA`.
    UnknownCa,
    /// The certificate is not valid for server authentication (no serverAuth extended key
    /// usage): `ERROR_WINHTTP_SECURE_CERT_WRONG_USAGE`.
    WrongUsage,
    /// A certificate in the chain has been revoked: `ERROR_WINHTTP_SECURE_CERT_REVOKED`
    /// (reported once CRL checking is layered on).
    Revoked,
    /// Revocation status could not be determined: `ERROR_WINHTTP_SECURE_CERT_REV_FAILED`
    /// (reported once CRL checking is layered on).
    RevocationUnknown,
    /// The server presented no certificate at all: `ERROR_WINHTTP_SECURE_INVALID_CERT`.
    NoCertificate,
    /// Anything else (bad signature, malformed certificate, CA used as end entity, path too
    /// complex, …): `ERROR_WINHTTP_SECURE_INVALID_CERT`. Never ignorable.
    Invalid,
}

impl CertificateProblem {
    /// The HRESULT BITS records for this problem.
    pub fn code(self) -> HResult {
        match self {
            Self::NameMismatch => codes::ERROR_WINHTTP_SECURE_CERT_CN_INVALID,
            Self::DateInvalid => codes::ERROR_WINHTTP_SECURE_CERT_DATE_INVALID,
            Self::UnknownCa => codes::ERROR_WINHTTP_SECURE_INVALID_CA,
            Self::WrongUsage => codes::ERROR_WINHTTP_SECURE_CERT_WRONG_USAGE,
            Self::Revoked => codes::ERROR_WINHTTP_SECURE_CERT_REVOKED,
            Self::RevocationUnknown => codes::ERROR_WINHTTP_SECURE_CERT_REV_FAILED,
            // WinHTTP has no separate "no certificate" code; the variant exists so logs and
            // tests can tell an empty chain from a broken one.
            Self::NoCertificate | Self::Invalid => codes::ERROR_WINHTTP_SECURE_INVALID_CERT,
        }
    }
}

impl std::fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NameMismatch => "the server certificate does not match the host name",
            Self::DateInvalid => "the server certificate has expired or is not yet valid",
            Self::UnknownCa => {
                "the server certificate was issued by an unknown or untrusted authority"
            }
            Self::WrongUsage => "the server certificate is not valid for server authentication",
            Self::Revoked => "the server certificate has been revoked",
            Self::RevocationUnknown => {
                "the revocation status of the server certificate could not be checked"
            }
            Self::NoCertificate => "the server presented no certificate",
            Self::Invalid => "the server certificate is not valid",
        })
    }
}

/// Builds a path from `leaf` through `intermediates` to an anchor of `store`, valid at `now`
/// for serverAuth. The host name is deliberately not part of it (see `check_name`).
fn check_path(
    store: &TrustStore,
    leaf: &EndEntityCert<'_>,
    intermediates: &[CertificateDer<'_>],
    now: Timestamp,
) -> Result<(), webpki::Error> {
    let time = UnixTime::since_unix_epoch(now.since_epoch());
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &store.anchors,
        intermediates,
        time,
        KeyUsage::server_auth(),
        // CRL checking (BG_SSL_ENABLE_CRL_CHECK) plugs in here in a later issue.
        None,
        None,
    )
    .map(|_path| ())
}

/// Checks the leaf's subjectAltNames against `server_name`, apart from the path, so that a
/// name mismatch is reported as such on an otherwise valid chain.
fn check_name(leaf: &EndEntityCert<'_>, server_name: &str) -> Result<(), CertificateError> {
    // URL hosts carry IPv6 literals in brackets; accept either spelling so a driver passing
    // the URL's host as-is does not get a confusing mismatch.
    let bare = server_name
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(server_name);
    let Ok(name) = ServerName::try_from(bare) else {
        // No certificate can be valid for a name that is neither a DNS name nor an IP
        // address: that is a mismatch, not a fault in the chain.
        return Err(CertificateError {
            kind: CertificateProblem::NameMismatch,
            detail: format!("{server_name:?} is neither a DNS name nor an IP address"),
        });
    };
    leaf.verify_is_valid_for_subject_name(&name)
        .map_err(|err| CertificateError::from_webpki(&err, server_name))
}

/// Maps a webpki finding to the BITS problem. Everything not named is `Invalid`, the one
/// problem no `BG_SSL_IGNORE_*` flag waives: an unknown failure must fail closed.
fn classify(err: &webpki::Error) -> CertificateProblem {
    use webpki::Error as E;
    #[allow(deprecated)] // RequiredEkuNotFound: webpki no longer returns it, but may again.
    match err {
        E::CertExpired { .. } | E::CertNotValidYet { .. } => CertificateProblem::DateInvalid,
        E::UnknownIssuer => CertificateProblem::UnknownCa,
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => CertificateProblem::WrongUsage,
        E::CertNotValidForName(_) => CertificateProblem::NameMismatch,
        E::CertRevoked => CertificateProblem::Revoked,
        E::UnknownRevocationStatus => CertificateProblem::RevocationUnknown,
        _ => CertificateProblem::Invalid,
    }
}
