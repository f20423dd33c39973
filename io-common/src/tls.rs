//! TLS for both drivers: the trust anchors handed to core, and the rustls client
//! configuration, whose certificate verifier decides nothing.
//!
//! Why the verifier accepts every chain: the certificate policy lives in core (DESIGN.md, "One
//! certificate policy"). When the handshake is done the driver reports
//! `Input::Connected { peer_certificates }`, and core validates that chain — webpki against the
//! configured roots, the host name, the time carried by the input, the `BG_SSL_IGNORE_*` flags,
//! later CRLs and the application's callback — before one byte of the request is sent, and
//! closes the connection if it refuses. Validating here as well would make a second policy that
//! could disagree with core's. The handshake signatures are still verified (with the provider's
//! algorithms), so a server that presents a chain has proved it holds the end-entity key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use backhaul_core::tls::Crl;
use backhaul_core::IoFailure;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};

use crate::config::DriverError;
use crate::failure::tls_failure;

/// The rustls client configuration both drivers use: ring, TLS 1.2 and 1.3, ALPN `http/1.1`,
/// and a verifier that leaves the chain to core (see the module docs).
pub fn client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(ChainForCore {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `Action::Connect`'s `tls_server_name` as rustls wants it (a DNS name or an IP literal).
pub fn server_name(name: String) -> Result<ServerName<'static>, IoFailure> {
    ServerName::try_from(name.clone())
        .map_err(|err| tls_failure(&name, &format!("not a valid server name: {err}")))
}

/// The chain the server presented, end-entity first, for `Input::Connected`.
pub fn peer_chain(conn: &ClientConnection) -> Vec<CertificateDer<'static>> {
    conn.peer_certificates()
        .map(<[_]>::to_vec)
        .unwrap_or_default()
}

/// The verifier that decides nothing: the chain goes to core on `Input::Connected`.
#[derive(Debug)]
struct ChainForCore {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainForCore {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Core validates this chain on Input::Connected, before any request byte is sent.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The trust anchors for core: the system's roots (when asked for) and every certificate of
/// every CA file.
///
/// A system root that does not parse as a trust anchor is skipped, and problems reading the
/// system store are warnings. A CA file the user named must be readable and hold at least one
/// certificate usable as a trust anchor; otherwise it is a [`DriverError::CaFile`].
pub fn load_trust_anchors(
    ca_files: &[PathBuf],
    use_system_roots: bool,
) -> Result<Vec<CertificateDer<'static>>, DriverError> {
    let mut anchors = Vec::new();
    if use_system_roots {
        let found = rustls_native_certs::load_native_certs();
        for err in &found.errors {
            tracing::warn!("system root certificates: {err}");
        }
        let total = found.certs.len();
        anchors.extend(found.certs.into_iter().filter(is_trust_anchor));
        if anchors.len() < total {
            tracing::warn!(
                "skipped {} system root certificates that do not parse",
                total - anchors.len()
            );
        }
        if anchors.is_empty() {
            tracing::warn!("no system root certificate found: HTTPS needs CA files");
        }
    }
    for path in ca_files {
        anchors.extend(load_ca_file(path)?);
    }
    Ok(anchors)
}

/// Every certificate in the PEM file at `path`.
fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, DriverError> {
    let refuse = |reason: String| DriverError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| refuse(pem_reason(err)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| refuse(pem_reason(err)))?;
    if certs.is_empty() {
        return Err(refuse(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    if let Some(n) = certs.iter().position(|c| !is_trust_anchor(c)) {
        return Err(refuse(format!(
            "certificate #{} is not a valid X.509 certificate",
            n + 1
        )));
    }
    Ok(certs)
}

/// The CRLs in each file (`--crl-file`): PEM (`-----BEGIN X509 CRL-----`, one or more) or a
/// single DER CRL, each one parsed by core as it will be used. A file that cannot be read, or
/// holds anything core cannot use, is a [`DriverError::CrlFile`] naming it.
pub fn load_crl_files(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>, DriverError> {
    let mut crls = Vec::new();
    for path in paths {
        crls.extend(load_crl_file(path)?);
    }
    Ok(crls)
}

fn load_crl_file(path: &Path) -> Result<Vec<Vec<u8>>, DriverError> {
    let refuse = |reason: String| DriverError::CrlFile {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|err| refuse(err.to_string()))?;
    let ders: Vec<Vec<u8>> = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        CertificateRevocationListDer::pem_slice_iter(&bytes)
            .map(|crl| crl.map(|der| der.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|err| refuse(pem_reason(err)))?
    } else {
        vec![bytes]
    };
    if ders.is_empty() {
        return Err(refuse(
            "holds no PEM CRL (-----BEGIN X509 CRL-----)".to_string(),
        ));
    }
    for (n, der) in ders.iter().enumerate() {
        if let Err(err) = Crl::from_der(der) {
            return Err(refuse(format!("CRL #{}: {err}", n + 1)));
        }
    }
    Ok(ders)
}

fn pem_reason(err: rustls_pki_types::pem::Error) -> String {
    match err {
        rustls_pki_types::pem::Error::Io(err) => err.to_string(),
        other => format!("not a valid PEM file: {other}"),
    }
}

fn is_trust_anchor(cert: &CertificateDer<'static>) -> bool {
    RootCertStore::empty().add(cert.clone()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CRL of a fresh CA, as PEM.
    fn crl_pem() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("key"))
                .expect("CA");
        let crl = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2025, 1, 1),
            next_update: rcgen::date_time_ymd(2026, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: Vec::new(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        crl.signed_by(&ca).expect("CRL").pem().expect("PEM")
    }

    #[test]
    fn crl_files_load_as_der_or_pem() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pem = crl_pem();
        let der = CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .expect("PEM")
            .to_vec();
        let der_path = dir.path().join("ca.crl");
        std::fs::write(&der_path, &der).expect("write");
        let pem_path = dir.path().join("ca.pem");
        std::fs::write(&pem_path, pem).expect("write");
        let loaded = load_crl_files(&[der_path, pem_path]).expect("both load");
        assert_eq!(loaded, vec![der.clone(), der]);
    }

    #[test]
    fn a_bad_crl_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bad = dir.path().join("bad.crl");
        std::fs::write(&bad, b"garbage").expect("write");
        let missing = dir.path().join("missing.crl");
        for path in [bad, missing] {
            let err = load_crl_files(std::slice::from_ref(&path)).unwrap_err();
            assert!(matches!(err, DriverError::CrlFile { .. }), "{err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }
}
