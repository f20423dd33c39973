//! The TLS client configuration: its verifier accepts any chain (core judges it on
//! `Input::Connected`) but still checks the server's handshake signature.

use std::sync::Arc;

use backhaul_io::tls::{client_config, peer_chain, server_name};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConnection, ServerConfig, ServerConnection};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server presenting `certs` and signing with `key`, matching or not.
#[derive(Debug)]
struct Presents(Arc<CertifiedKey>);

impl ResolvesServerCert for Presents {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn server(certs: Vec<CertificateDer<'static>>, key: &rcgen::KeyPair) -> ServerConnection {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signer = provider().key_provider.load_private_key(der).unwrap();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Presents(Arc::new(CertifiedKey::new(
            certs, signer,
        )))));
    ServerConnection::new(Arc::new(config)).unwrap()
}

/// Pump handshake bytes between the two until both are done or one fails.
fn handshake(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<(), rustls::Error> {
    for _ in 0..10 {
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        server.read_tls(&mut &wire[..]).unwrap();
        server.process_new_packets()?;
        let mut wire = Vec::new();
        server.write_tls(&mut wire).unwrap();
        client.read_tls(&mut &wire[..]).unwrap();
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn an_untrusted_self_signed_server_completes_the_handshake_and_its_chain_goes_to_core() {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = key.cert.der().clone();
    let mut server = server(vec![cert.clone()], &key.signing_key);
    let mut client = ClientConnection::new(
        client_config().unwrap(),
        server_name("localhost".into()).unwrap(),
    )
    .unwrap();

    handshake(&mut client, &mut server).unwrap();

    assert_eq!(peer_chain(&client), vec![cert]);
    assert_eq!(
        client.alpn_protocol(),
        None,
        "the test server offers no ALPN"
    );
}

#[test]
fn a_server_that_does_not_hold_the_key_of_its_certificate_fails_the_handshake() {
    let shown = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let mut server = server(vec![shown.cert.der().clone()], &other.signing_key);
    let mut client = ClientConnection::new(
        client_config().unwrap(),
        server_name("localhost".into()).unwrap(),
    )
    .unwrap();

    let err = handshake(&mut client, &mut server).unwrap_err();
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
        ),
        "{err:?}"
    );
}

#[test]
fn ip_literals_and_dns_names_are_server_names_but_junk_is_a_handshake_failure() {
    assert!(server_name("127.0.0.1".into()).is_ok());
    assert!(server_name("::1".into()).is_ok());
    let err = server_name("not a name!".into()).unwrap_err();
    assert_eq!(err.kind, backhaul_core::IoFailureKind::TlsHandshake);
}
