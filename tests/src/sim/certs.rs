//! The simulation's PKI: its CA, the leaf certificates simulated HTTPS hosts present, and CRLs.

use std::collections::BTreeMap;

/// The simulation's CA: its certificate (trusted by every simulated engine) and its issuer.
pub(super) fn sim_ca() -> &'static (
    backhaul_core::CertificateDer<'static>,
    rcgen::Issuer<'static, rcgen::KeyPair>,
) {
    static CA: std::sync::OnceLock<(
        backhaul_core::CertificateDer<'static>,
        rcgen::Issuer<'static, rcgen::KeyPair>,
    )> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "backhaul sim CA");
        let cert = params.self_signed(&key).expect("self-signed CA");
        (cert.der().clone(), rcgen::Issuer::new(params, key))
    })
}

/// A leaf certificate for `name` with serial number `serial` and a CRL distribution point at
/// `cdp`, issued by the simulation's CA.
pub fn sim_leaf_with_cdp(
    name: &str,
    serial: u64,
    cdp: &str,
) -> backhaul_core::CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("leaf params");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.serial_number = Some(rcgen::SerialNumber::from(serial));
    params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec![cdp.to_string()],
    }];
    params
        .signed_by(&key, &sim_ca().1)
        .expect("signed leaf")
        .der()
        .clone()
}

/// A CRL (DER) of the simulation's CA revoking `revoked` serials, issued 2025-12-01 and current
/// until `next_update` (year, month, day).
pub fn sim_crl(revoked: &[u64], next_update: (i32, u8, u8)) -> Vec<u8> {
    let (year, month, day) = next_update;
    let params = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2025, 12, 1),
        next_update: rcgen::date_time_ymd(year, month, day),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|&serial| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(serial),
                revocation_time: rcgen::date_time_ymd(2025, 12, 2),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    params.signed_by(&sim_ca().1).expect("CRL").der().to_vec()
}

/// A leaf certificate for `name`, issued by the simulation's CA (cached per name).
pub(super) fn sim_leaf(name: &str) -> backhaul_core::CertificateDer<'static> {
    static LEAVES: std::sync::Mutex<BTreeMap<String, backhaul_core::CertificateDer<'static>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut leaves = LEAVES.lock().unwrap_or_else(|p| p.into_inner());
    leaves
        .entry(name.to_string())
        .or_insert_with(|| {
            let key = rcgen::KeyPair::generate().expect("leaf key");
            let mut params =
                rcgen::CertificateParams::new(vec![name.to_string()]).expect("leaf params");
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            params
                .signed_by(&key, &sim_ca().1)
                .expect("signed leaf")
                .der()
                .clone()
        })
        .clone()
}
