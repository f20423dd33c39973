//! Trust anchors: CA files must be readable and hold certificates; system roots are optional.

use std::fs;

use backhaul_io::tls::load_trust_anchors;
use backhaul_io::DriverError;

fn ca_pem() -> (String, Vec<u8>) {
    let key = rcgen::generate_simple_self_signed(vec!["ca.test".to_string()]).unwrap();
    (key.cert.pem(), key.cert.der().to_vec())
}

#[test]
fn a_missing_ca_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.pem");
    let err = load_trust_anchors(std::slice::from_ref(&path), false).unwrap_err();
    assert!(
        matches!(&err, DriverError::CaFile { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

#[test]
fn an_empty_ca_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pem");
    fs::write(&path, b"").unwrap();
    let err = load_trust_anchors(&[path], false).unwrap_err();
    assert!(
        err.to_string().contains("holds no PEM certificate"),
        "{err}"
    );
}

#[test]
fn a_ca_file_with_a_broken_certificate_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.pem");
    fs::write(
        &path,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = load_trust_anchors(&[path], false).unwrap_err();
    assert!(matches!(err, DriverError::CaFile { .. }), "{err:?}");
}

#[test]
fn every_certificate_of_every_ca_file_becomes_a_trust_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let (pem_a, der_a) = ca_pem();
    let (pem_b, der_b) = ca_pem();
    let both = dir.path().join("both.pem");
    fs::write(&both, format!("junk before\n{pem_a}{pem_b}")).unwrap();
    let one = dir.path().join("one.pem");
    fs::write(&one, &pem_a).unwrap();

    let anchors = load_trust_anchors(&[both, one], false).unwrap();

    let ders: Vec<&[u8]> = anchors.iter().map(|c| c.as_ref()).collect();
    assert_eq!(ders, vec![&der_a[..], &der_b[..], &der_a[..]]);
}

#[test]
fn system_roots_load_or_warn_but_never_fail() {
    let anchors = load_trust_anchors(&[], true).unwrap();
    assert!(load_trust_anchors(&[], false).unwrap().is_empty());
    let _ = anchors.len();
}
