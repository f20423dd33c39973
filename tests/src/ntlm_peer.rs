//! A password-checking NTLM acceptor for the simulation: sspi's server side, one context per
//! connection, as Apache with gss-ntlmssp behaves (`GssapiConnectionBound On`).

use std::collections::BTreeMap;

use backhaul_core::ConnId;
use base64::Engine as _;
use sspi::{
    AuthIdentity, BufferType, CredentialUse, DataRepresentation, Ntlm, SecurityBuffer,
    SecurityStatus, ServerRequestFlags, Sspi, SspiEx, SspiImpl, Username,
};

/// What the acceptor says to one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 401 with `WWW-Authenticate: NTLM` (plus this token, the server's challenge, if any).
    Challenge(Option<String>),
    /// The connection is authenticated: serve the request.
    Serve,
}

/// An NTLM-protected path: one user, one password, one context per connection.
pub struct NtlmPeer {
    known: AuthIdentity,
    contexts: BTreeMap<ConnId, Context>,
    /// Connections that completed the exchange.
    authenticated: Vec<ConnId>,
}

struct Context {
    ntlm: Ntlm,
    handle: <Ntlm as SspiImpl>::CredentialsHandle,
}

impl std::fmt::Debug for NtlmPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtlmPeer")
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

impl NtlmPeer {
    /// Accepts `domain\user` with `password`.
    pub fn new(domain: &str, user: &str, password: &str) -> Self {
        Self {
            known: AuthIdentity {
                username: Username::new(user, Some(domain)).expect("a valid user name"),
                password: password.to_string().into(),
            },
            contexts: BTreeMap::new(),
            authenticated: Vec::new(),
        }
    }

    /// The connections that completed the exchange, in order.
    pub fn authenticated(&self) -> &[ConnId] {
        &self.authenticated
    }

    /// Judges a request on `conn` carrying `authorization` (the header's value, if any).
    pub fn judge(&mut self, conn: ConnId, authorization: Option<&str>) -> Verdict {
        let token = authorization.and_then(|v| v.strip_prefix("NTLM "));
        let Some(token) = token else {
            if self.authenticated.contains(&conn) {
                return Verdict::Serve;
            }
            return Verdict::Challenge(None);
        };
        let Ok(token) = base64::engine::general_purpose::STANDARD.decode(token) else {
            return Verdict::Challenge(None);
        };
        let context = self.contexts.entry(conn).or_insert_with(|| {
            let mut ntlm = Ntlm::new();
            let handle = ntlm
                .acquire_credentials_handle()
                .with_credential_use(CredentialUse::Inbound)
                .execute(&mut ntlm)
                .expect("an inbound handle")
                .credentials_handle;
            Context { ntlm, handle }
        });
        match accept(context, &self.known, token) {
            Ok(Some(challenge)) => Verdict::Challenge(Some(challenge)),
            Ok(None) => {
                self.contexts.remove(&conn);
                self.authenticated.push(conn);
                Verdict::Serve
            }
            Err(_) => {
                self.contexts.remove(&conn);
                Verdict::Challenge(None)
            }
        }
    }
}

/// One `AcceptSecurityContext`: the server's token to send, or `None` once authenticated.
fn accept(
    context: &mut Context,
    known: &AuthIdentity,
    token: Vec<u8>,
) -> Result<Option<String>, sspi::Error> {
    let mut input = vec![SecurityBuffer::new(token, BufferType::Token)];
    let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
    let builder = context
        .ntlm
        .accept_security_context()
        .with_credentials_handle(&mut context.handle)
        .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
        .with_target_data_representation(DataRepresentation::Native)
        .with_input(&mut input)
        .with_output(&mut output);
    let status = context
        .ntlm
        .accept_security_context_impl(builder)?
        .resolve_to_result()?
        .status;
    if status == SecurityStatus::ContinueNeeded {
        return Ok(Some(
            base64::engine::general_purpose::STANDARD.encode(&output[0].buffer),
        ));
    }
    context.ntlm.custom_set_auth_identity(known.clone())?;
    context.ntlm.complete_auth_token(&mut [])?;
    Ok(None)
}
