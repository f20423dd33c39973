//! A throwaway PKI for HTTPS tests: one CA and one leaf for `localhost` / `127.0.0.1`.
//!
//! [`TestPki::new`] issues a leaf valid from yesterday to 30 days from now; [`TestPki::expired`]
//! issues one whose validity lies entirely in the past (the CA itself is valid in both).
//! [`TestPki::server_config`] is what [`TestServer::start_tls`](crate::TestServer::start_tls)
//! serves; clients trust [`TestPki::ca_der`] (or the file [`TestPki::write_ca_pem`] writes).
//! [`TestPki::write_server_files`] writes the PEM files a real server (nginx) takes, for the
//! interop suite (`src/bin/test_pki_files.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA and a server leaf signed by it, with the leaf's private key.
#[derive(Debug)]
pub struct TestPki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    leaf_der: CertificateDer<'static>,
    leaf_key_pkcs8: Vec<u8>,
    /// The CA as an issuer, to sign CRLs.
    ca: Issuer<'static, KeyPair>,
}

/// What is wrong with a test leaf, for the certificate-policy tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafProblem {
    /// Nothing: a good leaf for `localhost` / `127.0.0.1`.
    None,
    /// Valid from 60 to 30 days ago.
    Expired,
    /// Valid from 30 to 60 days from now.
    NotYetValid,
    /// Issued for `other.test` only.
    WrongHost,
    /// Its extended key usage is clientAuth only.
    ClientAuthOnly,
}

/// The leaf's serial number (what a CRL revokes).
pub const LEAF_SERIAL: u64 = 0x00C0_FFEE;

impl TestPki {
    /// A fresh CA and a leaf for DNS `localhost` and IP `127.0.0.1`, valid from yesterday to
    /// 30 days from now.
    pub fn new() -> Self {
        Self::issue(-1, 30, None)
    }

    /// A CA and a leaf with `problem`.
    pub fn with_problem(problem: LeafProblem) -> Self {
        let mut pki = match problem {
            LeafProblem::None => return Self::new(),
            LeafProblem::Expired => return Self::issue(-60, -30, None),
            LeafProblem::NotYetValid => return Self::issue(30, 60, None),
            LeafProblem::WrongHost | LeafProblem::ClientAuthOnly => Self::new(),
        };
        let (names, usage) = match problem {
            LeafProblem::WrongHost => (vec!["other.test"], ExtendedKeyUsagePurpose::ServerAuth),
            _ => (
                vec!["localhost", "127.0.0.1"],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        };
        let today = days_since_epoch_now();
        let key = KeyPair::generate().expect("generate the leaf key");
        let names: Vec<String> = names.into_iter().map(str::to_string).collect();
        let mut params = CertificateParams::new(names).expect("valid SANs");
        params.is_ca = IsCa::ExplicitNoCa;
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, today - 1, today + 30);
        let leaf = params.signed_by(&key, &pki.ca).expect("sign the leaf");
        pki.leaf_der = leaf.der().clone();
        pki.leaf_key_pkcs8 = key.serialize_der();
        pki
    }

    /// Like [`TestPki::new`], with a CRL distribution point at `cdp` in the leaf (see
    /// [`TestPki::crl`] for what to serve there).
    pub fn with_crl_distribution_point(cdp: &str) -> Self {
        Self::issue(-1, 30, Some(cdp))
    }

    /// Like [`TestPki::new`], but the leaf expired: valid from 60 to 30 days ago.
    pub fn expired() -> Self {
        Self::issue(-60, -30, None)
    }

    /// The CA certificate, PEM-encoded.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA certificate, DER-encoded: the trust anchor a client needs.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The leaf certificate, DER-encoded.
    pub fn leaf_der(&self) -> CertificateDer<'static> {
        self.leaf_der.clone()
    }

    /// The leaf certificate, PEM-encoded.
    pub fn leaf_pem(&self) -> String {
        pem_block("CERTIFICATE", &self.leaf_der)
    }

    /// The leaf then the CA, PEM-encoded: the chain a server presents (what nginx's
    /// `ssl_certificate` takes).
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.leaf_pem(), self.ca_pem)
    }

    /// The leaf's private key, PKCS#8 in PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn key_pem(&self) -> String {
        pem_block("PRIVATE KEY", &self.leaf_key_pkcs8)
    }

    /// Writes what a real HTTPS server needs into `dir` (created if missing): `ca.pem` (the
    /// CA, for the client's trust), `chain.pem` ([`TestPki::chain_pem`]) and `key.pem`
    /// ([`TestPki::key_pem`]). The key is readable by anyone: nginx's workers read it as
    /// another user, and it protects nothing but a test.
    pub fn write_server_files(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("ca.pem"), &self.ca_pem)?;
        std::fs::write(dir.join("chain.pem"), self.chain_pem())?;
        std::fs::write(dir.join("key.pem"), self.key_pem())
    }

    /// Writes the CA certificate as `test-ca.pem` into `dir` and returns its path.
    pub fn write_ca_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write the test CA PEM");
        path
    }

    /// A CRL (DER) of the CA, current from yesterday to a week from now, revoking the leaf
    /// when `revoke_leaf`.
    pub fn crl(&self, revoke_leaf: bool) -> Vec<u8> {
        let today = days_since_epoch_now();
        let day = |offset: i64| {
            let (y, m, d) = civil_from_days(today + offset);
            rcgen::date_time_ymd(y, m, d)
        };
        let revoked = revoke_leaf.then(|| rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(LEAF_SERIAL),
            revocation_time: day(-1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        });
        let params = rcgen::CertificateRevocationListParams {
            this_update: day(-1),
            next_update: day(7),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked.into_iter().collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.ca)
            .expect("sign the CRL")
            .der()
            .to_vec()
    }

    /// A rustls server config (ring provider, safe default versions, no client auth) that
    /// presents the leaf and the CA.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key_pkcs8.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![self.leaf_der.clone(), self.ca_der.clone()], key)
        .expect("the test leaf and key match");
        Arc::new(config)
    }

    /// A rustls client config (ring provider) that trusts only this CA: for tests that talk to
    /// a [`TestServer`](crate::TestServer) without a driver.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .expect("the test CA is a valid trust anchor");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(config)
    }

    /// Issues the CA (valid from 90 days ago to 90 days ahead) and a leaf valid between the
    /// given day offsets from today.
    fn issue(leaf_from_days: i64, leaf_to_days: i64, cdp: Option<&str>) -> Self {
        let today = days_since_epoch_now();

        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "backhaul test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut ca_params, today - 90, today + 90);
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");

        let leaf_key = KeyPair::generate().expect("generate the leaf key");
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("valid SANs");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.serial_number = Some(rcgen::SerialNumber::from(LEAF_SERIAL));
        if let Some(cdp) = cdp {
            leaf_params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![cdp.to_string()],
            }];
        }
        set_validity(
            &mut leaf_params,
            today + leaf_from_days,
            today + leaf_to_days,
        );
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("sign the leaf");

        Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            leaf_der: leaf_cert.der().clone(),
            leaf_key_pkcs8: leaf_key.serialize_der(),
            ca: issuer,
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// `der` as one PEM block with `label`, base64 in lines of 64 characters.
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Whole days since 1970-01-01 (UTC), now.
fn days_since_epoch_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    i64::try_from(secs / 86_400).expect("days fit in i64")
}

/// Sets `params` valid from midnight UTC of day `from` to midnight UTC of day `to` (days since
/// 1970-01-01).
fn set_validity(params: &mut CertificateParams, from: i64, to: i64) {
    let (y, m, d) = civil_from_days(from);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_from_days(to);
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

/// Howard Hinnant's `civil_from_days`: (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).expect("year fits in i32"),
        u8::try_from(month).expect("month is 1..=12"),
        u8::try_from(day).expect("day is 1..=31"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_from_days_matches_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn issues_a_ca_and_a_leaf_that_rustls_accepts() {
        let pki = TestPki::new();
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let _ = pki.server_config();
        let _ = pki.client_config();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = pki.write_ca_pem(dir.path());
        assert_eq!(
            std::fs::read_to_string(path).expect("read back"),
            pki.ca_pem()
        );
    }

    #[test]
    fn server_files_are_the_leaf_then_the_ca_and_the_leafs_key() {
        let pki = TestPki::new();
        let dir = tempfile::tempdir().expect("tempdir");
        pki.write_server_files(dir.path()).expect("write");
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect(name);
        assert_eq!(read("ca.pem"), pki.ca_pem());
        let chain = read("chain.pem");
        assert!(chain.starts_with(&pki.leaf_pem()), "{chain}");
        assert!(chain.ends_with(&pki.ca_pem()), "{chain}");
        assert_eq!(chain.matches("-----BEGIN CERTIFICATE-----").count(), 2);
        let key = read("key.pem");
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{key}");
        assert!(key.lines().all(|line| line.len() <= 64), "{key}");
        // The PEM decodes back to the same bytes, and rcgen reads the key.
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64");
        assert_eq!(der, pki.leaf_key_pkcs8);
        rcgen::KeyPair::from_pem(&key).expect("rcgen reads the key back");
        let leaf: String = pki
            .leaf_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(leaf)
                .expect("base64"),
            pki.leaf_der().as_ref()
        );
    }
}
