//! Certificate revocation lists for `BG_SSL_ENABLE_CRL_CHECK`: parsing one ([`Crl`]), where a
//! certificate says its CRL lives ([`distribution_points`]), and the engine's cache of what it
//! has fetched ([`CrlCache`]).
//!
//! The cache is pure: it never fetches. The engine asks it what a chain needs
//! ([`CrlCache::request`]), emits `Action::FetchCrl` for what is missing, and stores what the
//! driver brings back ([`CrlCache::store`]). A CRL is used until its nextUpdate, judged with the
//! `now` of the input at hand; then it is fetched again. Several connections waiting for the
//! same URL share one fetch.

use std::collections::BTreeMap;

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{CertRevocationList, EndEntityCert, OwnedCertRevocationList};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};

use crate::Timestamp;

/// Most CDP URLs taken from one certificate: a certificate cannot make the engine fetch more.
const MAX_URLS_PER_CERT: usize = 4;

/// A parsed CRL, with the nextUpdate it is current until.
pub struct Crl {
    list: CertRevocationList<'static>,
    next_update: Timestamp,
}

/// Why bytes are not a usable CRL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a usable CRL: {0}")]
pub struct CrlError(String);

impl Crl {
    /// Parses a DER-encoded CRL. Its signature is not checked here: that takes the issuer's
    /// key, and happens when a chain is verified against it.
    pub fn from_der(der: &[u8]) -> Result<Self, CrlError> {
        let owned =
            OwnedCertRevocationList::from_der(der).map_err(|err| CrlError(format!("{err:?}")))?;
        // webpki requires a nextUpdate but keeps it private; read it again for the cache.
        let (_, parsed) = x509_parser::parse_x509_crl(der)
            .map_err(|err| CrlError(format!("nextUpdate unreadable: {err}")))?;
        let next_update = parsed
            .next_update()
            .ok_or_else(|| CrlError("no nextUpdate".to_string()))?;
        Ok(Self {
            list: CertRevocationList::from(owned),
            next_update: timestamp_of(next_update.timestamp()),
        })
    }

    /// When the CRL stops being current (its nextUpdate).
    pub fn next_update(&self) -> Timestamp {
        self.next_update
    }

    /// Whether the CRL may still be used at `now` (before its nextUpdate, as webpki judges).
    pub fn is_current(&self, now: Timestamp) -> bool {
        now < self.next_update
    }

    /// The raw issuer name (without the outer SEQUENCE), as a certificate's issuer compares.
    pub fn issuer(&self) -> &[u8] {
        self.list.issuer()
    }

    pub(crate) fn list(&self) -> &CertRevocationList<'static> {
        &self.list
    }
}

impl std::fmt::Debug for Crl {
    // The revoked serials can run to megabytes; a log line wants the validity only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crl")
            .field("next_update", &self.next_update)
            .finish_non_exhaustive()
    }
}

/// The `http://` URIs of a certificate's CRL distribution points (others — ldap, https, file —
/// are not fetched: https would need a revocation check of its own). Empty for a certificate
/// that does not parse or has none.
pub fn distribution_points(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for ext in parsed.extensions() {
        let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() else {
            continue;
        };
        for point in points.iter() {
            let Some(DistributionPointName::FullName(names)) = &point.distribution_point else {
                continue;
            };
            for name in names {
                if let GeneralName::URI(uri) = name {
                    let is_http = uri
                        .get(..7)
                        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
                    if is_http && !urls.iter().any(|u| u == uri) {
                        urls.push((*uri).to_string());
                    }
                }
            }
        }
    }
    urls.truncate(MAX_URLS_PER_CERT);
    urls
}

/// The raw issuer name of a certificate (comparable with [`Crl::issuer`]), if it parses.
pub fn issuer_of(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    EndEntityCert::try_from(cert)
        .ok()
        .map(|parsed| parsed.issuer().to_vec())
}

/// The notBefore of every certificate of `chain` that parses, ascending and without repeats:
/// the candidate verification times when `BG_SSL_IGNORE_CERT_DATE_INVALID` waives a date
/// problem. A path's validity intersection, when not empty, starts at one of them.
pub(crate) fn not_before_times(chain: &[CertificateDer<'_>]) -> Vec<UnixTime> {
    let mut secs: Vec<u64> = chain
        .iter()
        .filter_map(|cert| x509_parser::parse_x509_certificate(cert).ok())
        .filter_map(|(_, parsed)| u64::try_from(parsed.validity().not_before.timestamp()).ok())
        .collect();
    secs.sort_unstable();
    secs.dedup();
    secs.into_iter()
        .map(|s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s)))
        .collect()
}

/// What [`CrlCache::request`] says about one URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlNeed {
    /// A current CRL from this URL is cached.
    Ready,
    /// A fetch of this URL is already in flight: wait for its result.
    Wait,
    /// Nothing usable is cached and no fetch is in flight: the caller must fetch it (the
    /// cache now counts it as in flight).
    Fetch,
}

enum Entry {
    Fetching,
    Ready(Crl),
    /// The last fetch failed, or brought back something unusable: why.
    Failed(String),
}

/// CRLs from the configuration plus those fetched from distribution points, keyed by URL.
#[derive(Default)]
pub struct CrlCache {
    configured: Vec<Crl>,
    fetched: BTreeMap<String, Entry>,
}

impl CrlCache {
    /// A cache holding the configured CRLs (`Config::crl_files`), which are never refetched:
    /// once past their nextUpdate they are simply not used.
    pub fn new(configured: Vec<Crl>) -> Self {
        Self {
            configured,
            fetched: BTreeMap::new(),
        }
    }

    /// Whether a current CRL from `issuer` is at hand (configured or fetched): a certificate
    /// with that issuer needs no fetch.
    pub fn covers(&self, issuer: &[u8], now: Timestamp) -> bool {
        self.current(now).iter().any(|crl| crl.issuer() == issuer)
    }

    /// Whether the caller must fetch `url`, wait for a fetch in flight, or has it. A failed or
    /// stale entry is fetched again.
    pub fn request(&mut self, url: &str, now: Timestamp) -> CrlNeed {
        match self.fetched.get(url) {
            Some(Entry::Ready(crl)) if crl.is_current(now) => CrlNeed::Ready,
            Some(Entry::Fetching) => CrlNeed::Wait,
            _ => {
                self.fetched.insert(url.to_string(), Entry::Fetching);
                CrlNeed::Fetch
            }
        }
    }

    /// The driver's result for `url`: the body's bytes (DER) or why the fetch failed.
    pub fn store(&mut self, url: &str, now: Timestamp, result: Result<&[u8], String>) {
        let entry = match result.and_then(|der| Crl::from_der(der).map_err(|e| e.to_string())) {
            Ok(crl) if crl.is_current(now) => Entry::Ready(crl),
            Ok(crl) => Entry::Failed(format!(
                "the CRL from {url} is out of date (nextUpdate {})",
                crl.next_update()
            )),
            Err(why) => Entry::Failed(format!("CRL {url}: {why}")),
        };
        // Stale CRLs of other URLs are dropped here, so the cache holds only what is usable
        // (or in flight, or the reason it is not).
        self.fetched
            .retain(|_, e| !matches!(e, Entry::Ready(crl) if !crl.is_current(now)));
        self.fetched.insert(url.to_string(), entry);
    }

    /// Why `url` has no usable CRL, if its last fetch failed.
    pub fn failure(&self, url: &str) -> Option<&str> {
        match self.fetched.get(url) {
            Some(Entry::Failed(why)) => Some(why),
            _ => None,
        }
    }

    /// Every CRL current at `now`: fetched ones first (fresher, and what the certificate
    /// names), then configured ones.
    pub fn current(&self, now: Timestamp) -> Vec<&Crl> {
        let fetched = self.fetched.values().filter_map(|e| match e {
            Entry::Ready(crl) => Some(crl),
            _ => None,
        });
        fetched
            .chain(&self.configured)
            .filter(|crl| crl.is_current(now))
            .collect()
    }
}

impl std::fmt::Debug for CrlCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlCache")
            .field("configured", &self.configured.len())
            .field("fetched", &self.fetched.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn timestamp_of(unix_secs: i64) -> Timestamp {
    Timestamp::from_secs(u64::try_from(unix_secs).unwrap_or(0))
}
