//! Scenarios for revocation checking (`BG_SSL_ENABLE_CRL_CHECK`), on CRLs minted with rcgen:
//! a root, an intermediate and a leaf, each CA publishing a CRL.

use rcgen::{
    date_time_ymd, CertificateRevocationListParams, CertifiedIssuer, CrlDistributionPoint,
    KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::CertificateDer;

use super::crl::{distribution_points, CrlCache, CrlNeed};
use super::tests::{ca_params, inside, leaf_params, problem, root, store_of, ymd};
use super::*;

const LEAF_SERIAL: u64 = 0x1001;
const SUB_SERIAL: u64 = 0x2002;

struct Pki {
    root: CertifiedIssuer<'static, KeyPair>,
    sub: CertifiedIssuer<'static, KeyPair>,
    leaf: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Self {
        let root = root("CRL Root");
        let mut sub_params = ca_params("CRL Intermediate");
        sub_params.serial_number = Some(SerialNumber::from(SUB_SERIAL));
        sub_params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec!["http://127.0.0.1:1/root.crl".to_string()],
        }];
        let sub = CertifiedIssuer::signed_by(sub_params, KeyPair::generate().expect("key"), &root)
            .expect("intermediate");
        let mut leaf_params = leaf_params();
        leaf_params.serial_number = Some(SerialNumber::from(LEAF_SERIAL));
        leaf_params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![
                "ldap://directory.example/cn=sub".to_string(),
                "http://127.0.0.1:1/sub.crl".to_string(),
            ],
        }];
        let key = KeyPair::generate().expect("key");
        let leaf = leaf_params
            .signed_by(&key, &sub)
            .expect("leaf")
            .der()
            .clone();
        Self { root, sub, leaf }
    }

    fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.leaf.clone(), self.sub.der().clone()]
    }

    fn check(&self, crls: &[&Crl], now: Timestamp) -> Result<(), CertificateError> {
        let store = store_of(&[self.root.der()]);
        let policy = CertPolicy::default().with_revocation(crls);
        verify_server_chain(&store, &self.chain(), "localhost", now, &policy)
    }
}

/// A CRL of `issuer`, current 2025-01-01 .. 2026-01-01, revoking `serials`.
fn crl_by(issuer: &rcgen::Issuer<'_, impl rcgen::SigningKey>, serials: &[u64]) -> Crl {
    Crl::from_der(&crl_der(issuer, serials, (2026, 1, 1))).expect("CRL parses")
}

fn crl_der(
    issuer: &rcgen::Issuer<'_, impl rcgen::SigningKey>,
    serials: &[u64],
    (year, month, day): (i32, u8, u8),
) -> Vec<u8> {
    let params = CertificateRevocationListParams {
        this_update: date_time_ymd(2025, 1, 1),
        next_update: date_time_ymd(year, month, day),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|&serial| RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: date_time_ymd(2025, 2, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(issuer).expect("CRL").der().to_vec()
}

#[test]
fn chain_with_current_crls_revoking_nothing_is_valid() {
    let pki = Pki::new();
    let (root_crl, sub_crl) = (crl_by(&pki.root, &[]), crl_by(&pki.sub, &[]));
    assert_eq!(pki.check(&[&root_crl, &sub_crl], inside()), Ok(()));
}

#[test]
fn revoked_leaf_is_revoked() {
    let pki = Pki::new();
    let (root_crl, sub_crl) = (crl_by(&pki.root, &[]), crl_by(&pki.sub, &[LEAF_SERIAL]));
    let err = pki.check(&[&root_crl, &sub_crl], inside()).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::Revoked, "{err}");
    assert_eq!(err.kind.code(), codes::ERROR_WINHTTP_SECURE_CERT_REVOKED);
}

#[test]
fn revoked_intermediate_is_revoked() {
    let pki = Pki::new();
    let (root_crl, sub_crl) = (crl_by(&pki.root, &[SUB_SERIAL]), crl_by(&pki.sub, &[]));
    assert_eq!(
        problem(pki.check(&[&root_crl, &sub_crl], inside())),
        CertificateProblem::Revoked
    );
}

#[test]
fn missing_crl_for_the_intermediate_fails_closed() {
    let pki = Pki::new();
    let sub_crl = crl_by(&pki.sub, &[]);
    let err = pki.check(&[&sub_crl], inside()).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::RevocationUnknown, "{err}");
    assert_eq!(err.kind.code(), codes::ERROR_WINHTTP_SECURE_CERT_REV_FAILED);
}

#[test]
fn no_crl_at_all_fails_closed() {
    let pki = Pki::new();
    assert_eq!(
        problem(pki.check(&[], inside())),
        CertificateProblem::RevocationUnknown
    );
}

#[test]
fn expired_crl_fails_closed() {
    let pki = Pki::new();
    let root_crl = crl_by(&pki.root, &[]);
    let old = Crl::from_der(&crl_der(&pki.sub, &[], (2025, 3, 1))).expect("CRL");
    assert!(!old.is_current(inside()));
    let err = pki.check(&[&root_crl, &old], inside()).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::RevocationUnknown, "{err}");
    assert!(err.detail.contains("CrlExpired"), "{err}");
}

#[test]
fn crl_signed_by_the_wrong_key_fails_closed() {
    let pki = Pki::new();
    // Same issuer name as the intermediate, another key: the CRL cannot vouch for anything.
    let impostor = CertifiedIssuer::self_signed(
        ca_params("CRL Intermediate"),
        KeyPair::generate().expect("key"),
    )
    .expect("impostor");
    let (root_crl, forged) = (crl_by(&pki.root, &[]), crl_by(&impostor, &[]));
    let err = pki.check(&[&root_crl, &forged], inside()).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::RevocationUnknown, "{err}");
}

#[test]
fn distribution_points_are_the_http_uris_only() {
    let pki = Pki::new();
    assert_eq!(
        distribution_points(&pki.leaf),
        vec!["http://127.0.0.1:1/sub.crl".to_string()]
    );
    assert_eq!(
        distribution_points(pki.sub.der()),
        vec!["http://127.0.0.1:1/root.crl".to_string()]
    );
    assert!(distribution_points(pki.root.der()).is_empty());
    assert!(distribution_points(&CertificateDer::from(vec![1, 2, 3])).is_empty());
}

#[test]
fn garbage_is_not_a_crl() {
    let err = Crl::from_der(b"not a CRL").unwrap_err();
    assert!(err.to_string().contains("not a usable CRL"), "{err}");
}

#[test]
fn cache_shares_one_fetch_per_url_and_keeps_the_crl_until_its_next_update() {
    let pki = Pki::new();
    let url = "http://127.0.0.1:1/sub.crl";
    let der = crl_der(&pki.sub, &[], (2026, 1, 1));
    let mut cache = CrlCache::default();
    assert_eq!(cache.request(url, inside()), CrlNeed::Fetch);
    assert_eq!(cache.request(url, inside()), CrlNeed::Wait, "in flight");
    cache.store(url, inside(), Ok(&der));
    assert_eq!(cache.request(url, inside()), CrlNeed::Ready);
    assert_eq!(cache.current(inside()).len(), 1);
    let issuer = crl::issuer_of(&pki.leaf).expect("leaf parses");
    assert!(cache.covers(&issuer, inside()));
    // Past nextUpdate the CRL is stale: not used, and fetched again.
    let later = ymd(2026, 1, 2);
    assert!(cache.current(later).is_empty());
    assert!(!cache.covers(&issuer, later));
    assert_eq!(cache.request(url, later), CrlNeed::Fetch);
}

#[test]
fn cache_remembers_why_a_fetch_failed_and_fetches_again_next_time() {
    let pki = Pki::new();
    let url = "http://127.0.0.1:1/sub.crl";
    let mut cache = CrlCache::default();
    assert_eq!(cache.request(url, inside()), CrlNeed::Fetch);
    cache.store(url, inside(), Err("unreachable: connection refused".into()));
    assert!(cache.failure(url).unwrap().contains("connection refused"));
    assert_eq!(cache.request(url, inside()), CrlNeed::Fetch);
    // A CRL already out of date when it arrives is a failure too.
    let stale = crl_der(&pki.sub, &[], (2025, 3, 1));
    cache.store(url, inside(), Ok(&stale));
    assert!(
        cache.failure(url).unwrap().contains("out of date"),
        "{:?}",
        cache.failure(url)
    );
    assert!(cache.current(inside()).is_empty());
    cache.store(url, inside(), Ok(b"garbage"));
    assert!(cache.failure(url).unwrap().contains("not a usable CRL"));
}

#[test]
fn configured_crls_cover_their_issuer_while_current() {
    let pki = Pki::new();
    let cache = CrlCache::new(vec![crl_by(&pki.sub, &[])]);
    let issuer = crl::issuer_of(&pki.leaf).expect("leaf parses");
    assert!(cache.covers(&issuer, inside()));
    assert!(!cache.covers(&issuer, ymd(2026, 6, 1)));
    let root_issuer = crl::issuer_of(pki.sub.der()).expect("sub parses");
    assert!(!cache.covers(&root_issuer, inside()));
}
