//! Scenarios for the server-certificate decision, on certificates minted with rcgen.

use proptest::prelude::*;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SigningKey,
};
use rustls_pki_types::CertificateDer;

use super::*;
use crate::job::SecurityFlags;

/// A time inside every fixture's validity period (2025-01-01 .. 2026-01-01).
pub(super) fn inside() -> Timestamp {
    ymd(2025, 6, 1)
}

pub(super) fn ymd(year: i32, month: u8, day: u8) -> Timestamp {
    let secs = date_time_ymd(year, month, day).unix_timestamp();
    Timestamp::from_secs(u64::try_from(secs).expect("fixture dates are after 1970"))
}

pub(super) fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    params
}

pub(super) fn root(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    CertifiedIssuer::self_signed(ca_params(name), KeyPair::generate().expect("key"))
        .expect("self-signed CA")
}

pub(super) fn intermediate(
    name: &str,
    issuer: &Issuer<'_, impl SigningKey>,
) -> CertifiedIssuer<'static, KeyPair> {
    CertifiedIssuer::signed_by(ca_params(name), KeyPair::generate().expect("key"), issuer)
        .expect("intermediate CA")
}

/// Leaf parameters: SAN DNS "localhost", IP 127.0.0.1 and ::1, serverAuth, CA:FALSE, valid
/// 2025-01-01 .. 2026-01-01.
pub(super) fn leaf_params() -> CertificateParams {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let mut params = CertificateParams::new(names).expect("names");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2026, 1, 1);
    params
}

pub(super) fn sign(
    params: &CertificateParams,
    issuer: &Issuer<'_, impl SigningKey>,
) -> CertificateDer<'static> {
    let key = KeyPair::generate().expect("key");
    params.signed_by(&key, issuer).expect("leaf").der().clone()
}

pub(super) fn store_of(certs: &[&CertificateDer<'static>]) -> TrustStore {
    let owned: Vec<CertificateDer<'static>> = certs.iter().map(|c| (*c).clone()).collect();
    let (store, skipped) = TrustStore::new(&owned);
    assert!(
        skipped.is_empty(),
        "fixture anchors must parse: {skipped:?}"
    );
    store
}

/// The decision with no flag set: nothing waived, revocation not checked.
fn verify(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    name: &str,
    now: Timestamp,
) -> Result<(), CertificateError> {
    verify_server_chain(store, chain, name, now, &CertPolicy::default())
}

pub(super) fn problem(result: Result<(), CertificateError>) -> CertificateProblem {
    match result {
        Ok(()) => panic!("expected the chain to be refused"),
        Err(err) => err.kind,
    }
}

#[test]
fn leaf_signed_by_trusted_ca_is_valid_for_its_dns_name_and_ip_addresses() {
    let ca = root("Test Root");
    let leaf = sign(&leaf_params(), &ca);
    let store = store_of(&[ca.der()]);
    for name in ["localhost", "127.0.0.1", "::1", "[::1]"] {
        assert_eq!(
            verify(&store, std::slice::from_ref(&leaf), name, inside()),
            Ok(()),
            "{name}"
        );
    }
}

#[test]
fn leaf_through_intermediate_is_valid_when_the_intermediate_is_presented() {
    let ca = root("Test Root");
    let sub = intermediate("Test Intermediate", &ca);
    let leaf = sign(&leaf_params(), &sub);
    let store = store_of(&[ca.der()]);
    let chain = [leaf, sub.der().clone()];
    assert_eq!(verify(&store, &chain, "localhost", inside()), Ok(()));
}

#[test]
fn chain_that_also_carries_the_root_and_an_unrelated_certificate_is_valid() {
    // Servers often send their root too, or a stale extra certificate; path building must
    // ignore what it does not need.
    let ca = root("Test Root");
    let sub = intermediate("Test Intermediate", &ca);
    let stray = root("Stray Root");
    let leaf = sign(&leaf_params(), &sub);
    let store = store_of(&[ca.der()]);
    let chain = [
        leaf,
        stray.der().clone(),
        sub.der().clone(),
        ca.der().clone(),
    ];
    assert_eq!(verify(&store, &chain, "localhost", inside()), Ok(()));
}

#[test]
fn missing_intermediate_is_unknown_ca() {
    let ca = root("Test Root");
    let sub = intermediate("Test Intermediate", &ca);
    let leaf = sign(&leaf_params(), &sub);
    let store = store_of(&[ca.der()]);
    let err = verify(&store, &[leaf], "localhost", inside()).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::UnknownCa);
    assert!(err.detail.contains("UnknownIssuer"), "{err}");
}

#[test]
fn wrong_host_name_is_name_mismatch() {
    let ca = root("Test Root");
    let leaf = sign(&leaf_params(), &ca);
    let store = store_of(&[ca.der()]);
    for name in ["example.com", "127.0.0.2", "::2"] {
        let err = verify(&store, std::slice::from_ref(&leaf), name, inside()).unwrap_err();
        assert_eq!(err.kind, CertificateProblem::NameMismatch, "{name}");
        assert!(err.detail.contains(name), "detail names the server: {err}");
    }
}

#[test]
fn host_name_that_is_neither_dns_nor_ip_is_name_mismatch() {
    let ca = root("Test Root");
    let leaf = sign(&leaf_params(), &ca);
    let store = store_of(&[ca.der()]);
    let result = verify(&store, &[leaf], "not a host", inside());
    assert_eq!(problem(result), CertificateProblem::NameMismatch);
}

#[test]
fn expired_leaf_is_date_invalid() {
    let ca = root("Test Root");
    let leaf = sign(&leaf_params(), &ca);
    let store = store_of(&[ca.der()]);
    let err = verify(&store, &[leaf], "localhost", ymd(2026, 1, 2)).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::DateInvalid);
    assert!(err.detail.contains("CertExpired"), "{err}");
}

#[test]
fn not_yet_valid_leaf_is_date_invalid() {
    let ca = root("Test Root");
    let leaf = sign(&leaf_params(), &ca);
    let store = store_of(&[ca.der()]);
    let err = verify(&store, &[leaf], "localhost", ymd(2024, 12, 31)).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::DateInvalid);
    assert!(err.detail.contains("CertNotValidYet"), "{err}");
}

#[test]
fn expired_intermediate_is_date_invalid() {
    let ca = root("Test Root");
    let mut params = ca_params("Test Intermediate");
    params.not_after = date_time_ymd(2025, 3, 1);
    let sub =
        CertifiedIssuer::signed_by(params, KeyPair::generate().expect("key"), &ca).expect("sub");
    let leaf = sign(&leaf_params(), &sub);
    let store = store_of(&[ca.der()]);
    let chain = [leaf, sub.der().clone()];
    assert_eq!(
        problem(verify(&store, &chain, "localhost", inside())),
        CertificateProblem::DateInvalid
    );
}

#[test]
fn expired_leaf_for_the_wrong_name_reports_the_date_not_the_name() {
    // The path is judged before the name, so an ignorable name mismatch cannot hide another
    // problem once BG_SSL_IGNORE_CERT_CN_INVALID is layered on.
    let ca = root("Test Root");
    let leaf = sign(&leaf_params(), &ca);
    let store = store_of(&[ca.der()]);
    let result = verify(&store, &[leaf], "example.com", ymd(2027, 1, 1));
    assert_eq!(problem(result), CertificateProblem::DateInvalid);
}

#[test]
fn leaf_signed_by_untrusted_ca_is_unknown_ca() {
    let trusted = root("Test Root");
    let other = root("Other Root");
    let leaf = sign(&leaf_params(), &other);
    let store = store_of(&[trusted.der()]);
    assert_eq!(
        problem(verify(&store, &[leaf], "localhost", inside())),
        CertificateProblem::UnknownCa
    );
}

#[test]
fn empty_store_is_unknown_ca() {
    let ca = root("Test Root");
    let leaf = sign(&leaf_params(), &ca);
    let (store, skipped) = TrustStore::new(&[]);
    assert!(store.is_empty() && skipped.is_empty());
    assert_eq!(
        problem(verify(&store, &[leaf], "localhost", inside())),
        CertificateProblem::UnknownCa
    );
}

#[test]
fn leaf_signed_by_impostor_of_a_trusted_ca_name_is_invalid() {
    // The impostor's name matches a trusted anchor, so webpki tries that anchor and the
    // signature fails: a forged signature, not an unknown authority. It is reported as
    // Invalid, which no flag waives — the safer reading of a forgery.
    let trusted = root("Test Root");
    let impostor = root("Test Root");
    let leaf = sign(&leaf_params(), &impostor);
    let store = store_of(&[trusted.der()]);
    let err = verify(&store, &[leaf], "localhost", inside()).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::Invalid, "{err}");
    assert!(err.detail.contains("InvalidSignatureForPublicKey"), "{err}");
}

#[test]
fn leaf_with_only_client_auth_usage_is_wrong_usage() {
    let ca = root("Test Root");
    let mut params = leaf_params();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = sign(&params, &ca);
    let store = store_of(&[ca.der()]);
    assert_eq!(
        problem(verify(&store, &[leaf], "localhost", inside())),
        CertificateProblem::WrongUsage
    );
}

#[test]
fn leaf_without_extended_key_usage_is_valid() {
    // RFC 5280 4.2.1.12: no EKU extension means any usage; webpki (and WinHTTP) accept it.
    let ca = root("Test Root");
    let mut params = leaf_params();
    params.extended_key_usages.clear();
    let leaf = sign(&params, &ca);
    let store = store_of(&[ca.der()]);
    assert_eq!(verify(&store, &[leaf], "localhost", inside()), Ok(()));
}

#[test]
fn self_signed_ca_presented_as_end_entity_is_invalid() {
    // webpki checks basic constraints on the end entity before looking for an issuer, so a CA
    // certificate in the leaf position fails with CaUsedAsEndEntity — even when that CA is
    // itself trusted — rather than UnknownIssuer. That is Invalid: not waivable.
    let ca = root("Test Root");
    let trusted = store_of(&[ca.der()]);
    let untrusted = store_of(&[]);
    for store in [trusted, untrusted] {
        let err = verify(
            &store,
            std::slice::from_ref(ca.der()),
            "localhost",
            inside(),
        )
        .unwrap_err();
        assert_eq!(err.kind, CertificateProblem::Invalid, "{err}");
        assert!(err.detail.contains("CaUsedAsEndEntity"), "{err}");
    }
}

#[test]
fn self_signed_leaf_is_unknown_ca_unless_the_store_holds_it() {
    // A server with a self-signed (CA:FALSE) certificate is the common "unknown CA" case.
    // When the user adds that very certificate to the extra CA files, webpki finds the
    // anchor by subject and the signature checks out with its own key, so it is accepted.
    let key = KeyPair::generate().expect("key");
    let leaf = leaf_params()
        .self_signed(&key)
        .expect("self-signed leaf")
        .der()
        .clone();
    let empty = store_of(&[]);
    assert_eq!(
        problem(verify(
            &empty,
            std::slice::from_ref(&leaf),
            "localhost",
            inside()
        )),
        CertificateProblem::UnknownCa
    );
    let pinned = store_of(&[&leaf]);
    assert_eq!(verify(&pinned, &[leaf], "localhost", inside()), Ok(()));
}

#[test]
fn empty_chain_is_no_certificate() {
    let store = store_of(&[]);
    let err = verify(&store, &[], "localhost", inside()).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::NoCertificate);
    assert_eq!(err.kind.code(), codes::ERROR_WINHTTP_SECURE_INVALID_CERT);
}

#[test]
fn garbage_leaf_is_invalid() {
    let ca = root("Test Root");
    let store = store_of(&[ca.der()]);
    let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x02, 0x03]);
    assert_eq!(
        problem(verify(&store, &[garbage], "localhost", inside())),
        CertificateProblem::Invalid
    );
}

#[test]
fn trust_store_skips_garbage_and_reports_its_index() {
    let a = root("Root A");
    let b = root("Root B");
    let certs = [
        a.der().clone(),
        CertificateDer::from(b"not a certificate".to_vec()),
        b.der().clone(),
    ];
    let (store, skipped) = TrustStore::new(&certs);
    assert_eq!(store.len(), 2);
    assert!(!store.is_empty());
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].0, 1);
    assert!(!skipped[0].1.is_empty());
    assert_eq!(format!("{store:?}"), "TrustStore { anchors: 2 }");
    // The store still works with the anchors that parsed.
    let leaf = sign(&leaf_params(), &b);
    assert_eq!(verify(&store, &[leaf], "localhost", inside()), Ok(()));
}

#[test]
fn each_problem_maps_to_its_winhttp_hresult() {
    use CertificateProblem as P;
    let table = [
        (P::NameMismatch, 0x8007_2F06),
        (P::DateInvalid, 0x8007_2F05),
        (P::UnknownCa, 0x8007_2F0D),
        (P::WrongUsage, 0x8007_2F93),
        (P::Revoked, 0x8007_2F8A),
        (P::RevocationUnknown, 0x8007_2F19),
        (P::NoCertificate, 0x8007_2F89),
        (P::Invalid, 0x8007_2F89),
    ];
    for (problem, value) in table {
        assert_eq!(problem.code(), HResult(value), "{problem:?}");
        assert!(!problem.to_string().is_empty());
    }
}

#[test]
fn webpki_findings_classify_to_their_problems() {
    // Findings the fixtures do not provoke (crl_tests.rs provokes the revocation ones).
    assert_eq!(
        classify(&webpki::Error::CertRevoked),
        CertificateProblem::Revoked
    );
    assert_eq!(
        classify(&webpki::Error::UnknownRevocationStatus),
        CertificateProblem::RevocationUnknown
    );
    #[allow(deprecated)]
    let old_eku = webpki::Error::RequiredEkuNotFound;
    assert_eq!(classify(&old_eku), CertificateProblem::WrongUsage);
    assert_eq!(
        classify(&webpki::Error::BadDer),
        CertificateProblem::Invalid
    );
    assert_eq!(
        classify(&webpki::Error::CertDistrusted),
        CertificateProblem::Invalid
    );
}

#[test]
fn error_message_is_plain_words_then_detail() {
    let err = CertificateError {
        kind: CertificateProblem::UnknownCa,
        detail: "UnknownIssuer".into(),
    };
    assert_eq!(
        err.to_string(),
        "the server certificate was issued by an unknown or untrusted authority: UnknownIssuer"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_never_accepted(leaf in proptest::collection::vec(any::<u8>(), 0..512),
                                          extra in proptest::collection::vec(any::<u8>(), 0..256)) {
        let store = TrustStore::new(&[]).0;
        let chain = [CertificateDer::from(leaf), CertificateDer::from(extra)];
        prop_assert!(verify(&store, &chain, "localhost", inside()).is_err());
    }
}

// ---- BG_SSL_IGNORE_* flags ----

/// One certificate problem, the flag that waives it, and how to provoke it.
struct Case {
    what: &'static str,
    problem: CertificateProblem,
    own_flag: u32,
    store: TrustStore,
    chain: Vec<CertificateDer<'static>>,
    host: &'static str,
    now: Timestamp,
}

/// The five problems a flag can waive, each on an otherwise valid chain.
fn single_problem_cases() -> Vec<Case> {
    let ca = root("Test Root");
    let store = || store_of(&[ca.der()]);
    let good = sign(&leaf_params(), &ca);
    let other = root("Other Root");
    let mut client_only = leaf_params();
    client_only.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    vec![
        Case {
            what: "expired",
            problem: CertificateProblem::DateInvalid,
            own_flag: SecurityFlags::IGNORE_CERT_DATE_INVALID,
            store: store(),
            chain: vec![good.clone()],
            host: "localhost",
            now: ymd(2026, 1, 2),
        },
        Case {
            what: "not yet valid",
            problem: CertificateProblem::DateInvalid,
            own_flag: SecurityFlags::IGNORE_CERT_DATE_INVALID,
            store: store(),
            chain: vec![good.clone()],
            host: "localhost",
            now: ymd(2024, 12, 31),
        },
        Case {
            what: "wrong host",
            problem: CertificateProblem::NameMismatch,
            own_flag: SecurityFlags::IGNORE_CERT_CN_INVALID,
            store: store(),
            chain: vec![good],
            host: "example.com",
            now: inside(),
        },
        Case {
            what: "unknown CA",
            problem: CertificateProblem::UnknownCa,
            own_flag: SecurityFlags::IGNORE_UNKNOWN_CA,
            store: store(),
            chain: vec![sign(&leaf_params(), &other), other.der().clone()],
            host: "localhost",
            now: inside(),
        },
        Case {
            what: "wrong usage (clientAuth only)",
            problem: CertificateProblem::WrongUsage,
            own_flag: SecurityFlags::IGNORE_CERT_WRONG_USAGE,
            store: store(),
            chain: vec![sign(&client_only, &ca)],
            host: "localhost",
            now: inside(),
        },
    ]
}

const IGNORE_FLAGS: [u32; 4] = [
    SecurityFlags::IGNORE_CERT_CN_INVALID,
    SecurityFlags::IGNORE_CERT_DATE_INVALID,
    SecurityFlags::IGNORE_UNKNOWN_CA,
    SecurityFlags::IGNORE_CERT_WRONG_USAGE,
];

fn policy(bits: u32) -> CertPolicy<'static> {
    CertPolicy::from_flags(SecurityFlags::from_bits(bits).expect("defined flags"))
}

fn verify_with(case: &Case, bits: u32) -> Result<(), CertificateError> {
    verify_server_chain(&case.store, &case.chain, case.host, case.now, &policy(bits))
}

#[test]
fn each_problem_fails_by_default_with_its_own_winhttp_code() {
    for case in single_problem_cases() {
        let err = verify_with(&case, 0).unwrap_err();
        assert_eq!(err.kind, case.problem, "{}: {err}", case.what);
        assert_eq!(err.kind.code(), case.problem.code(), "{}", case.what);
    }
}

#[test]
fn each_problem_passes_with_exactly_its_own_flag() {
    for case in single_problem_cases() {
        assert_eq!(verify_with(&case, case.own_flag), Ok(()), "{}", case.what);
    }
}

#[test]
fn each_problem_still_fails_with_every_other_ignore_flag() {
    for case in single_problem_cases() {
        for flag in IGNORE_FLAGS.into_iter().filter(|&f| f != case.own_flag) {
            let err = verify_with(&case, flag).unwrap_err();
            assert_eq!(err.kind, case.problem, "{} with 0x{flag:02X}", case.what);
        }
        let all_others = IGNORE_FLAGS
            .into_iter()
            .filter(|&f| f != case.own_flag)
            .fold(0, |a, f| a | f);
        assert_eq!(
            problem(verify_with(&case, all_others)),
            case.problem,
            "{} with all other flags",
            case.what
        );
    }
}

#[test]
fn two_problems_need_both_flags() {
    // Each pair of waivable problems on one chain: one flag exposes the other problem, both
    // flags accept. webpki stops at its first finding; the re-run must find the second.
    let ca = root("Test Root");
    let other = root("Other Root");
    let mut client_only = leaf_params();
    client_only.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let trusted = store_of(&[ca.der()]);
    let expired = ymd(2026, 1, 2);
    let untrusted_chain = vec![sign(&leaf_params(), &other), other.der().clone()];
    let untrusted_client = vec![sign(&client_only, &other), other.der().clone()];
    let client = vec![sign(&client_only, &ca)];
    use CertificateProblem as P;
    use SecurityFlags as F;
    /// What, chain, host, time, and the two (problem, flag) pairs.
    type Pair<'c> = (
        &'static str,
        &'c [CertificateDer<'static>],
        &'static str,
        Timestamp,
        (P, u32),
        (P, u32),
    );
    let pairs: [Pair<'_>; 5] = [
        (
            "expired + wrong host",
            &[sign(&leaf_params(), &ca)],
            "example.com",
            expired,
            (P::DateInvalid, F::IGNORE_CERT_DATE_INVALID),
            (P::NameMismatch, F::IGNORE_CERT_CN_INVALID),
        ),
        (
            "unknown CA + expired",
            &untrusted_chain,
            "localhost",
            expired,
            (P::DateInvalid, F::IGNORE_CERT_DATE_INVALID),
            (P::UnknownCa, F::IGNORE_UNKNOWN_CA),
        ),
        (
            "wrong usage + expired",
            &client,
            "localhost",
            expired,
            (P::DateInvalid, F::IGNORE_CERT_DATE_INVALID),
            (P::WrongUsage, F::IGNORE_CERT_WRONG_USAGE),
        ),
        (
            "unknown CA + wrong usage",
            &untrusted_client,
            "localhost",
            inside(),
            (P::UnknownCa, F::IGNORE_UNKNOWN_CA),
            (P::WrongUsage, F::IGNORE_CERT_WRONG_USAGE),
        ),
        (
            "wrong usage + wrong host",
            &client,
            "example.com",
            inside(),
            (P::WrongUsage, F::IGNORE_CERT_WRONG_USAGE),
            (P::NameMismatch, F::IGNORE_CERT_CN_INVALID),
        ),
    ];
    for (what, chain, host, now, (p1, f1), (p2, f2)) in pairs {
        let run = |bits| verify_server_chain(&trusted, chain, host, now, &policy(bits));
        let none = problem(run(0));
        assert!(none == p1 || none == p2, "{what}: {none:?}");
        assert_eq!(problem(run(f1)), p2, "{what}: only the first waived");
        assert_eq!(problem(run(f2)), p1, "{what}: only the second waived");
        assert_eq!(run(f1 | f2), Ok(()), "{what}: both waived");
    }
}

#[test]
fn ignoring_dates_accepts_an_expired_intermediate() {
    let ca = root("Test Root");
    let mut params = ca_params("Test Intermediate");
    params.not_after = date_time_ymd(2025, 3, 1);
    let sub =
        CertifiedIssuer::signed_by(params, KeyPair::generate().expect("key"), &ca).expect("sub");
    let leaf = sign(&leaf_params(), &sub);
    let store = store_of(&[ca.der()]);
    let chain = [leaf, sub.der().clone()];
    let flags = policy(SecurityFlags::IGNORE_CERT_DATE_INVALID);
    assert_eq!(
        verify_server_chain(&store, &chain, "localhost", inside(), &flags),
        Ok(())
    );
}

#[test]
fn ignoring_unknown_ca_accepts_a_self_signed_leaf() {
    let key = KeyPair::generate().expect("key");
    let leaf = leaf_params().self_signed(&key).expect("leaf").der().clone();
    let store = store_of(&[]);
    let flags = policy(SecurityFlags::IGNORE_UNKNOWN_CA);
    assert_eq!(
        verify_server_chain(&store, &[leaf], "localhost", inside(), &flags),
        Ok(())
    );
}

#[test]
fn ignoring_unknown_ca_still_checks_the_signatures_below_the_top() {
    // The presented intermediate carries the real issuer's name but another key: the leaf's
    // signature does not verify under it. That is a forgery, not an unknown CA.
    let other = root("Other Root");
    let real_sub = intermediate("Sub", &other);
    let fake_sub = intermediate("Sub", &other);
    let leaf = sign(&leaf_params(), &real_sub);
    let store = store_of(&[]);
    let flags = policy(SecurityFlags::IGNORE_UNKNOWN_CA);
    let chain = [leaf, fake_sub.der().clone()];
    let err = verify_server_chain(&store, &chain, "localhost", inside(), &flags).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::Invalid, "{err}");
}

#[test]
fn ignoring_unknown_ca_cannot_accept_a_leaf_whose_issuer_is_not_presented() {
    // Nothing presented can vouch for the leaf's signature: still unknown, not waived.
    let other = root("Other Root");
    let sub = intermediate("Sub", &other);
    let leaf = sign(&leaf_params(), &sub);
    let store = store_of(&[]);
    let flags = policy(SecurityFlags::IGNORE_UNKNOWN_CA);
    assert_eq!(
        problem(verify_server_chain(
            &store,
            &[leaf],
            "localhost",
            inside(),
            &flags
        )),
        CertificateProblem::UnknownCa
    );
}

#[test]
fn no_flag_waives_an_invalid_certificate() {
    let trusted = root("Test Root");
    let impostor = root("Test Root");
    let leaf = sign(&leaf_params(), &impostor);
    let store = store_of(&[trusted.der()]);
    let all = IGNORE_FLAGS.into_iter().fold(0, |a, f| a | f);
    let err =
        verify_server_chain(&store, &[leaf], "localhost", inside(), &policy(all)).unwrap_err();
    assert_eq!(err.kind, CertificateProblem::Invalid, "{err}");
}

#[test]
fn policy_from_flags_reads_the_four_ignore_bits() {
    let p = policy(0x001F);
    assert!(p.ignore_name && p.ignore_date && p.ignore_unknown_ca && p.ignore_wrong_usage);
    assert!(
        p.revocation.is_none(),
        "CRLs come from the engine, not the flags"
    );
    let p = policy(0x0001);
    assert!(!(p.ignore_name || p.ignore_date || p.ignore_unknown_ca || p.ignore_wrong_usage));
    for problem in [
        CertificateProblem::Revoked,
        CertificateProblem::RevocationUnknown,
        CertificateProblem::Invalid,
        CertificateProblem::NoCertificate,
    ] {
        assert!(!policy(0x001F).waives(problem), "{problem:?}");
    }
}
