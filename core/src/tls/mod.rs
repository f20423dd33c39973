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
//! How the job's `SetSecurityFlags` layer in ([`CertPolicy`]):
//! - the `BG_SSL_IGNORE_*` flags: the path check (`check_path`) and the name check
//!   (`check_name`) are separate steps whose webpki findings `classify` turns into problems.
//!   `IGNORE_CERT_CN_INVALID` skips the name step. webpki stops at its first finding, so
//!   waiving a path problem re-runs the path check with exactly that check relaxed (another
//!   verification time, the top of the presented chain as anchor, any extended key usage),
//!   and a second problem is still found and reported.
//! - `BG_SSL_ENABLE_CRL_CHECK`: CRLs ([`crl`]) are passed to the path check as webpki
//!   `RevocationOptions` for the whole chain, failing closed: a certificate without a
//!   current CRL is [`CertificateProblem::RevocationUnknown`]. Fetching the CRLs is the
//!   engine's business (`engine/revocation.rs`), this module only judges.
//! - the app callback stage runs after this decision, in the engine.

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::{
    EndEntityCert, ExpirationPolicy, ExtendedKeyUsageValidator, KeyPurposeIdIter, KeyUsage,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

use crate::codes::{self, HResult};
use crate::job::SecurityFlags;
use crate::Timestamp;

pub mod crl;

pub use self::crl::{Crl, CrlCache, CrlError, CrlNeed};

#[cfg(test)]
mod crl_tests;
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

/// Which certificate problems a job waives, and whether (and against which CRLs) revocation is
/// checked: the certificate half of `SetSecurityFlags`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CertPolicy<'a> {
    /// `BG_SSL_IGNORE_CERT_CN_INVALID`: accept a certificate for another host name.
    pub ignore_name: bool,
    /// `BG_SSL_IGNORE_CERT_DATE_INVALID`: accept expired or not yet valid certificates.
    pub ignore_date: bool,
    /// `BG_SSL_IGNORE_UNKNOWN_CA`: accept a chain whose top is not a trust anchor (the
    /// signatures below the top are still checked).
    pub ignore_unknown_ca: bool,
    /// `BG_SSL_IGNORE_CERT_WRONG_USAGE`: accept certificates without the serverAuth usage.
    pub ignore_wrong_usage: bool,
    /// `Some`: check the revocation of every certificate of the chain against these CRLs and
    /// fail closed (`BG_SSL_ENABLE_CRL_CHECK`); `None`: revocation is not checked. The caller
    /// passes only CRLs current at the verification time (see [`crl::Crl::is_current`]).
    pub revocation: Option<&'a [&'a Crl]>,
}

impl CertPolicy<'static> {
    /// The ignore flags of a job's security flags, without revocation: the engine adds the
    /// CRLs with [`CertPolicy::with_revocation`] once it has them.
    pub fn from_flags(flags: SecurityFlags) -> Self {
        Self {
            ignore_name: flags.ignore_cn_invalid(),
            ignore_date: flags.ignore_date_invalid(),
            ignore_unknown_ca: flags.ignore_unknown_ca(),
            ignore_wrong_usage: flags.ignore_wrong_usage(),
            revocation: None,
        }
    }
}

impl<'a> CertPolicy<'a> {
    /// The same policy, checking revocation against `crls` (an empty list fails every chain
    /// with [`CertificateProblem::RevocationUnknown`]).
    pub fn with_revocation<'b>(self, crls: &'b [&'b Crl]) -> CertPolicy<'b>
    where
        'a: 'b,
    {
        CertPolicy {
            revocation: Some(crls),
            ..self
        }
    }

    /// Whether this policy waives `problem`. Revocation problems and `Invalid` never are.
    pub fn waives(&self, problem: CertificateProblem) -> bool {
        match problem {
            CertificateProblem::NameMismatch => self.ignore_name,
            CertificateProblem::DateInvalid => self.ignore_date,
            CertificateProblem::UnknownCa => self.ignore_unknown_ca,
            CertificateProblem::WrongUsage => self.ignore_wrong_usage,
            CertificateProblem::Revoked
            | CertificateProblem::RevocationUnknown
            | CertificateProblem::NoCertificate
            | CertificateProblem::Invalid => false,
        }
    }
}

/// Decides whether a presented chain (end-entity first, then intermediates, as received in the
/// TLS handshake) is valid for `server_name` (a DNS name or an IP literal — IPv6 without
/// brackets, though brackets are tolerated) at time `now`, for the serverAuth extended key
/// usage, against `store`, with the problems `policy` waives ignored.
///
/// The path (signatures, validity dates, basic constraints, name constraints, key usage,
/// revocation) is checked before the host name, so a chain that fails both reports the path
/// problem: a name mismatch, which `BG_SSL_IGNORE_CERT_CN_INVALID` may ignore, never hides
/// another problem. Host names are matched against the subjectAltName extension only, as
/// browsers do; the subject's common name is not consulted.
pub fn verify_server_chain(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    server_name: &str,
    now: Timestamp,
    policy: &CertPolicy<'_>,
) -> Result<(), CertificateError> {
    let Some(leaf_der) = chain.first() else {
        return Err(CertificateError {
            kind: CertificateProblem::NoCertificate,
            detail: format!("the server presented no certificate (server name {server_name:?})"),
        });
    };
    let fail = |err: webpki::Error| CertificateError::from_webpki(&err, server_name);
    let leaf = EndEntityCert::try_from(leaf_der).map_err(fail)?;
    check_path(store, &leaf, chain, now, policy).map_err(fail)?;
    if policy.ignore_name {
        return Ok(());
    }
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
    /// A certificate in the chain has been revoked: `ERROR_WINHTTP_SECURE_CERT_REVOKED`.
    Revoked,
    /// Revocation status could not be determined (no current CRL, CRL unreachable, expired or
    /// badly signed): `ERROR_WINHTTP_SECURE_CERT_REV_FAILED`.
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

/// The checks a waived problem turns off when the path check is run again.
#[derive(Clone, Copy, Debug, Default)]
struct Relaxed {
    /// Verify at a time inside the chain's validity instead of `now`.
    date: bool,
    /// Also try each presented certificate as a trust anchor.
    anchor: bool,
    /// Accept any extended key usage.
    usage: bool,
}

impl Relaxed {
    fn covers(self, problem: CertificateProblem) -> bool {
        match problem {
            CertificateProblem::DateInvalid => self.date,
            CertificateProblem::UnknownCa => self.anchor,
            CertificateProblem::WrongUsage => self.usage,
            _ => false,
        }
    }
}

/// Builds a path from the leaf (`chain[0]`) through the rest of `chain` to an anchor of
/// `store`, valid at `now` for serverAuth, revocation checked when `policy` asks. The host
/// name is deliberately not part of it (see `check_name`).
///
/// A finding the policy waives is not dropped: the check runs again with that one check
/// relaxed, until it passes or reports a problem the policy does not waive.
fn check_path(
    store: &TrustStore,
    leaf: &EndEntityCert<'_>,
    chain: &[CertificateDer<'_>],
    now: Timestamp,
    policy: &CertPolicy<'_>,
) -> Result<(), webpki::Error> {
    let mut relaxed = Relaxed::default();
    loop {
        let err = match search_paths(store, leaf, chain, now, policy, relaxed) {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        let problem = classify(&err);
        if !policy.waives(problem) || relaxed.covers(problem) {
            return Err(err);
        }
        match problem {
            CertificateProblem::DateInvalid => relaxed.date = true,
            CertificateProblem::UnknownCa => relaxed.anchor = true,
            CertificateProblem::WrongUsage => relaxed.usage = true,
            // `waives` is true only for the three above and the name, which is not a path
            // finding.
            _ => return Err(err),
        }
    }
}

/// Most candidate verification times and anchors tried when relaxing: bounds the work a
/// server with a long chain can cause (at most this squared path checks).
const MAX_CANDIDATES: usize = 6;

/// One path check per (time, extra anchor) candidate that `relaxed` allows; the first success
/// wins. When all fail, the most telling finding is returned: one `relaxed` does not cover
/// (such as a bad signature found once the dates are out of the way), else the first.
fn search_paths(
    store: &TrustStore,
    leaf: &EndEntityCert<'_>,
    chain: &[CertificateDer<'_>],
    now: Timestamp,
    policy: &CertPolicy<'_>,
    relaxed: Relaxed,
) -> Result<(), webpki::Error> {
    let now = UnixTime::since_unix_epoch(now.since_epoch());
    let mut times = vec![now];
    if relaxed.date {
        times.extend(
            crl::not_before_times(chain)
                .into_iter()
                .take(MAX_CANDIDATES),
        );
    }
    // `None`: the store alone; `Some(i)`: the store plus `chain[i]`, the top first.
    let mut anchors = vec![None];
    if relaxed.anchor {
        let top = chain.len().min(MAX_CANDIDATES);
        anchors.extend((0..top).rev().map(Some));
    }
    let mut finding: Option<webpki::Error> = None;
    for &time in &times {
        for &extra in &anchors {
            let err = match verify_once(store, leaf, chain, time, extra, relaxed, policy) {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            finding = match finding {
                Some(kept)
                    if relaxed.covers(classify(&kept)) && !relaxed.covers(classify(&err)) =>
                {
                    Some(err)
                }
                Some(kept) => Some(kept),
                None => Some(err),
            };
        }
    }
    // Invariant: `times` and `anchors` each hold at least one candidate.
    Err(finding.expect("at least one path check ran"))
}

/// One webpki path check: at `time`, with `chain[extra]` added to the anchors (the other
/// certificates of `chain` after the leaf are the intermediates), any EKU when `relaxed.usage`.
fn verify_once(
    store: &TrustStore,
    leaf: &EndEntityCert<'_>,
    chain: &[CertificateDer<'_>],
    time: UnixTime,
    extra: Option<usize>,
    relaxed: Relaxed,
    policy: &CertPolicy<'_>,
) -> Result<(), webpki::Error> {
    let mut anchors: Vec<TrustAnchor<'_>> = store.anchors.clone();
    let mut intermediates: Vec<CertificateDer<'_>> = Vec::with_capacity(chain.len());
    for (index, cert) in chain.iter().enumerate().skip(1) {
        if Some(index) != extra {
            intermediates.push(cert.clone());
        }
    }
    if let Some(index) = extra {
        // The top of the presented chain stands in for the unknown root. Its own signature is
        // not checked (an anchor is trusted as given), every one below it is.
        anchors.push(webpki::anchor_from_trusted_cert(&chain[index])?);
    }
    let crl_list: Vec<&webpki::CertRevocationList<'_>> = policy
        .revocation
        .unwrap_or_default()
        .iter()
        .map(|crl| crl.list())
        .collect();
    let revocation = match policy.revocation {
        None => None,
        Some(_) => match RevocationOptionsBuilder::new(&crl_list) {
            Ok(builder) => Some(
                builder
                    .with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(UnknownStatusPolicy::Deny)
                    .with_expiration_policy(ExpirationPolicy::Enforce)
                    .build(),
            ),
            // No CRL at all: the path is still judged first (a path problem is the more
            // specific answer), then the status is unknown.
            Err(_) => None,
        },
    };
    let result = if relaxed.usage {
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            AnyUsage,
            revocation,
            None,
        )
        .map(|_path| ())
    } else {
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            KeyUsage::server_auth(),
            revocation,
            None,
        )
        .map(|_path| ())
    };
    match policy.revocation {
        Some(crls) if crls.is_empty() && result.is_ok() => {
            Err(webpki::Error::UnknownRevocationStatus)
        }
        _ => result,
    }
}

/// `BG_SSL_IGNORE_CERT_WRONG_USAGE`: any extended key usage is accepted, though a malformed
/// EKU extension is still an error.
struct AnyUsage;

impl ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
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
        // A CRL that cannot vouch for the certificate: the status is unknown, and fails closed.
        E::UnknownRevocationStatus
        | E::CrlExpired { .. }
        | E::InvalidCrlSignatureForPublicKey
        | E::UnsupportedCrlSignatureAlgorithm
        | E::UnsupportedCrlSignatureAlgorithmContext(_)
        | E::UnsupportedCrlSignatureAlgorithmForPublicKey
        | E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_)
        | E::IssuerNotCrlSigner
        | E::InvalidCrlNumber
        | E::UnsupportedCrlVersion
        | E::UnsupportedDeltaCrl
        | E::UnsupportedIndirectCrl
        | E::UnsupportedRevocationReason
        | E::UnsupportedRevocationReasonsPartitioning
        | E::UnsupportedCrlIssuingDistributionPoint => CertificateProblem::RevocationUnknown,
        _ => CertificateProblem::Invalid,
    }
}
