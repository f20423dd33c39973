use base64::Engine as _;
use sspi::{
    AuthIdentity, BufferType, CredentialUse, DataRepresentation, Ntlm, SecurityBuffer,
    SecurityStatus, ServerRequestFlags, Sspi, SspiEx, SspiImpl, Username,
};

use super::*;
use crate::auth::AuthTarget;

/// A real NTLM acceptor (sspi's server side) that knows one user and password: the peer the
/// client's messages must convince.
struct Acceptor {
    ntlm: Ntlm,
    handle: <Ntlm as SspiImpl>::CredentialsHandle,
    known: AuthIdentity,
}

impl Acceptor {
    fn new(user: &str, domain: &str, password: &str) -> Self {
        let mut ntlm = Ntlm::new();
        let handle = ntlm
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Inbound)
            .execute(&mut ntlm)
            .unwrap()
            .credentials_handle;
        let known = AuthIdentity {
            username: Username::new(user, Some(domain)).unwrap(),
            password: password.to_string().into(),
        };
        Self {
            ntlm,
            handle,
            known,
        }
    }

    /// Feeds a client header value (`NTLM <b64>`); returns the server's token, or `Ok(None)`
    /// once the client is authenticated. `Err` is a rejection.
    fn accept(&mut self, header: &str) -> Result<Option<String>, sspi::Error> {
        let b64 = header.strip_prefix("NTLM ").expect("an NTLM header");
        let token = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let mut input = vec![SecurityBuffer::new(token, BufferType::Token)];
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let builder = self
            .ntlm
            .accept_security_context()
            .with_credentials_handle(&mut self.handle)
            .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input)
            .with_output(&mut output);
        let status = self
            .ntlm
            .accept_security_context_impl(builder)?
            .resolve_to_result()?
            .status;
        match status {
            SecurityStatus::ContinueNeeded => Ok(Some(
                base64::engine::general_purpose::STANDARD.encode(&output[0].buffer),
            )),
            _ => {
                self.ntlm.custom_set_auth_identity(self.known.clone())?;
                self.ntlm.complete_auth_token(&mut [])?;
                Ok(None)
            }
        }
    }
}

fn creds(scheme: AuthScheme, user: &str, password: &str) -> Credentials {
    Credentials::new(
        AuthTarget::Server,
        scheme,
        Some(user.to_string()),
        Some(password.into()),
    )
    .unwrap()
}

fn expect_send(step: Result<Step, ContextError>) -> String {
    match step {
        Ok(Step::Send(value)) => value.expose().to_string(),
        other => panic!("expected a token to send, got {other:?}"),
    }
}

#[test]
fn ntlm_right_password_convinces_a_real_acceptor_in_three_legs() {
    let mut server = Acceptor::new("gina", "TESTDOM", "ntlmpw");
    let mut client = ConnectionContext::new(
        AuthScheme::Ntlm,
        &creds(AuthScheme::Ntlm, "TESTDOM\\gina", "ntlmpw"),
    )
    .unwrap();
    let type1 = expect_send(client.step(None));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(type1.strip_prefix("NTLM ").unwrap())
        .unwrap();
    assert_eq!(&raw[..12], b"NTLMSSP\0\x01\0\0\0", "a NEGOTIATE_MESSAGE");
    assert_eq!(
        raw.len(),
        40,
        "with the version field, as gss-ntlmssp wants"
    );
    let type2 = server.accept(&type1).unwrap().expect("a challenge");
    let type3 = expect_send(client.step(Some(&type2)));
    assert!(!type3.contains("ntlmpw"));
    assert_eq!(server.accept(&type3).unwrap(), None, "authenticated");
    assert_eq!(client.step(None).unwrap(), Step::Done);
}

#[test]
fn ntlm_wrong_password_is_rejected_by_the_acceptor() {
    let mut server = Acceptor::new("gina", "TESTDOM", "ntlmpw");
    let mut client = ConnectionContext::new(
        AuthScheme::Ntlm,
        &creds(AuthScheme::Ntlm, "TESTDOM\\gina", "wrong"),
    )
    .unwrap();
    let type1 = expect_send(client.step(None));
    let type2 = server.accept(&type1).unwrap().unwrap();
    let type3 = expect_send(client.step(Some(&type2)));
    assert!(server.accept(&type3).is_err());
}

#[test]
fn negotiate_with_a_password_starts_an_spnego_token() {
    let mut client = ConnectionContext::new(
        AuthScheme::Negotiate,
        &creds(AuthScheme::Negotiate, "TESTDOM\\gina", "pw"),
    )
    .unwrap();
    let first = expect_send(client.step(None));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(first.strip_prefix("Negotiate ").unwrap())
        .unwrap();
    // GSS-API InitialContextToken: [APPLICATION 0] with the SPNEGO OID 1.3.6.1.5.5.2.
    assert_eq!(raw[0], 0x60);
    let spnego_oid = [0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
    assert!(raw.windows(spnego_oid.len()).any(|w| w == spnego_oid));
}

#[test]
fn implicit_ntlm_is_refused_with_the_kinit_hint() {
    let implicit = Credentials::implicit(AuthTarget::Server, AuthScheme::Ntlm).unwrap();
    let err = ConnectionContext::new(AuthScheme::Ntlm, &implicit).unwrap_err();
    assert_eq!(err, ContextError::Implicit(AuthScheme::Ntlm));
    let why = err.to_string();
    assert!(
        why.contains("run kinit") && why.contains("Negotiate"),
        "{why}"
    );
}

#[test]
fn a_non_base64_challenge_names_the_problem() {
    let mut client =
        ConnectionContext::new(AuthScheme::Ntlm, &creds(AuthScheme::Ntlm, "gina", "pw")).unwrap();
    expect_send(client.step(None));
    let err = client.step(Some("%%%")).unwrap_err();
    assert!(matches!(err, ContextError::BadToken { .. }), "{err}");
}

#[test]
fn a_second_leg_without_a_token_is_an_error() {
    let mut client =
        ConnectionContext::new(AuthScheme::Ntlm, &creds(AuthScheme::Ntlm, "gina", "pw")).unwrap();
    expect_send(client.step(None));
    assert!(matches!(
        client.step(None),
        Err(ContextError::BadToken { .. })
    ));
}

#[test]
fn basic_is_not_a_connection_scheme() {
    let err =
        ConnectionContext::new(AuthScheme::Basic, &creds(AuthScheme::Basic, "u", "p")).unwrap_err();
    assert_eq!(err, ContextError::NotConnectionBound(AuthScheme::Basic));
}

#[test]
fn debug_shows_no_key_material() {
    let client = ConnectionContext::new(
        AuthScheme::Ntlm,
        &creds(AuthScheme::Ntlm, "gina", "s3cret-pw"),
    )
    .unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
}
