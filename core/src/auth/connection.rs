//! Connection-bound schemes: NTLM (v2) and Negotiate (SPNEGO), through the `sspi` crate.
//!
//! These authenticate the *connection*, not a request: the client sends a first token
//! (NTLM's NEGOTIATE_MESSAGE, "Type 1"), the server answers 401 with its challenge
//! ("Type 2") on the same keep-alive connection, and the client's third message ("Type 3")
//! rides the next request on that connection. Once the server accepts it, the connection is
//! authenticated and carries requests without any header. The engine keeps one
//! [`ConnectionContext`] per connection and never reuses an authenticated connection for
//! other credentials.
//!
//! Purity: `sspi` draws NTLM's client challenge and its exported session key from the
//! operating system's random source, and reads the clock only when the server's challenge
//! carries no timestamp. Both are inside the library, not in this crate's code: they are
//! cryptographic nonces that must be unpredictable, which the engine's seeded (deterministic)
//! RNG must not be asked to be. docs/auth.md records the decision.
//!
//! Negotiate with a password is answered with SPNEGO carrying NTLM. Kerberos needs the KDC (a
//! network exchange) and, for implicit credentials, the credential cache (a file): neither can
//! happen in this pure crate, so Negotiate as the logged-on user never gets here — the engine
//! asks the driver's GSS-API for its tokens (engine/kerberos.rs, docs/auth.md "Kerberos").
//! Implicit NTLM has no password to answer with and is refused with a clear error.

use std::fmt;

use base64::Engine as _;
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, DataRepresentation, Negotiate,
    NegotiateConfig, Ntlm, SecurityBuffer, SecurityStatus, Sspi, SspiImpl, Username,
};

use sspi::ntlm::NtlmConfig;

use super::ntlm_challenge::readable_challenge;
use super::{AuthScheme, Credentials, Secret};

/// The computer name SPNEGO's NTLM announces (MS-NLMP leaves it optional; the server only logs
/// it). A fixed value, so the host's name does not leak to every server.
const WORKSTATION: &str = "backhaul";

/// Why a connection-bound answer cannot be produced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The scheme is not NTLM or Negotiate.
    #[error("{0} does not authenticate a connection")]
    NotConnectionBound(AuthScheme),
    /// Implicit credentials (the logged-on user) need Kerberos from the credential cache.
    #[error(
        "{0} with implicit credentials (the logged-on user) has no password to answer with: \
         only Negotiate answers as the logged-on user, with a Kerberos ticket (run kinit and \
         set implicit Negotiate credentials), or set explicit credentials"
    )]
    Implicit(AuthScheme),
    /// The user name is not one NTLM can carry.
    #[error("the user name cannot be used for {scheme}: {why}")]
    UserName {
        /// The scheme.
        scheme: AuthScheme,
        /// What is wrong with it.
        why: String,
    },
    /// The server's token is not base64, or the context was asked to go on with no token.
    #[error("the server's {scheme} token is unusable: {why}")]
    BadToken {
        /// The scheme.
        scheme: AuthScheme,
        /// What is wrong with it.
        why: String,
    },
    /// `sspi` refused a step (a malformed or unexpected server message).
    #[error("{scheme} failed: {why}")]
    Failed {
        /// The scheme.
        scheme: AuthScheme,
        /// The library's reason (it never holds the password).
        why: String,
    },
}

/// What a step of the exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this `Authorization` / `Proxy-Authorization` value (`NTLM <base64>`,
    /// `Negotiate <base64>`) on the same connection.
    Send(Secret),
    /// The exchange is complete on the client's side: nothing more to send.
    Done,
}

/// One client security context (NTLM or Negotiate) for one connection.
pub struct ConnectionContext {
    scheme: AuthScheme,
    inner: Inner,
    /// A token was produced, and the next step needs the server's answer.
    started: bool,
    done: bool,
}

enum Inner {
    Ntlm {
        ctx: Box<Ntlm>,
        handle: <Ntlm as SspiImpl>::CredentialsHandle,
    },
    Negotiate {
        ctx: Box<Negotiate>,
        handle: <Negotiate as SspiImpl>::CredentialsHandle,
    },
}

impl fmt::Debug for ConnectionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The library's state holds key material: show only where the exchange stands.
        f.debug_struct("ConnectionContext")
            .field("scheme", &self.scheme)
            .field("started", &self.started)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ConnectionContext {
    /// A fresh context answering `scheme` (NTLM or Negotiate) with `credentials`, for the
    /// service `HTTP/<host>` (the Kerberos SPN; NTLM ignores it).
    pub fn new(scheme: AuthScheme, credentials: &Credentials) -> Result<Self, ContextError> {
        if !matches!(scheme, AuthScheme::Ntlm | AuthScheme::Negotiate) {
            return Err(ContextError::NotConnectionBound(scheme));
        }
        let (Some(user), Some(password)) = (credentials.user(), credentials.password()) else {
            return Err(ContextError::Implicit(scheme));
        };
        let username = Username::parse(user).map_err(|e| ContextError::UserName {
            scheme,
            why: e.to_string(),
        })?;
        let identity = AuthIdentity {
            username,
            password: password.expose().to_string().into(),
        };
        let failed = |e: sspi::Error| ContextError::Failed {
            scheme,
            why: e.to_string(),
        };
        let inner = match scheme {
            AuthScheme::Ntlm => {
                let mut ctx = Box::new(Ntlm::with_config(NtlmConfig::default()));
                let handle = ctx
                    .acquire_credentials_handle()
                    .with_credential_use(CredentialUse::Outbound)
                    .with_auth_data(&identity)
                    .execute(&mut *ctx)
                    .map_err(failed)?
                    .credentials_handle;
                Inner::Ntlm { ctx, handle }
            }
            _ => {
                // SPNEGO offering NTLM only: Kerberos needs the KDC, which core cannot reach.
                let config = NegotiateConfig::new(
                    Box::new(NtlmConfig::new(WORKSTATION.to_string())),
                    Some("ntlm".to_string()),
                    WORKSTATION.to_string(),
                );
                let mut ctx = Box::new(Negotiate::new_client(config).map_err(failed)?);
                let auth_data = sspi::Credentials::AuthIdentity(identity);
                let handle = ctx
                    .acquire_credentials_handle()
                    .with_credential_use(CredentialUse::Outbound)
                    .with_auth_data(&auth_data)
                    .execute(&mut *ctx)
                    .map_err(failed)?
                    .credentials_handle;
                Inner::Negotiate { ctx, handle }
            }
        };
        Ok(Self {
            scheme,
            inner,
            started: false,
            done: false,
        })
    }

    /// The scheme this context answers.
    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// Whether the first token has been produced (the exchange is under way).
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Whether the client's side is complete (its last token produced).
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// The next step: the first token (`server_token: None`), or the answer to the server's
    /// challenge token (the base64 text after the scheme name in its 401/407).
    pub fn step(&mut self, server_token: Option<&str>) -> Result<Step, ContextError> {
        let scheme = self.scheme;
        if self.done {
            return Ok(Step::Done);
        }
        let input = match server_token {
            None if self.started => {
                return Err(ContextError::BadToken {
                    scheme,
                    why: "the server answered without a token".to_string(),
                })
            }
            None => None,
            Some(token) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(token.trim())
                    .map_err(|e| ContextError::BadToken {
                        scheme,
                        why: format!("not base64 ({e})"),
                    })?,
            ),
        };
        // A raw NTLM challenge sspi cannot parse as sent (ntlm_challenge.rs says which).
        let input = match scheme {
            AuthScheme::Ntlm => input.map(readable_challenge),
            _ => input,
        };
        let (status, token) = match &mut self.inner {
            Inner::Ntlm { ctx, handle } => initialize(&mut **ctx, handle, input),
            Inner::Negotiate { ctx, handle } => initialize(&mut **ctx, handle, input),
        }
        .map_err(|e| ContextError::Failed {
            scheme,
            why: e.to_string(),
        })?;
        self.started = true;
        if status != SecurityStatus::ContinueNeeded {
            self.done = true;
        }
        if token.is_empty() {
            self.done = true;
            return Ok(Step::Done);
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(&token);
        Ok(Step::Send(Secret::new(format!("{scheme} {encoded}"))))
    }
}

/// One `InitializeSecurityContext` call: the status and the token to send (maybe empty).
fn initialize<T>(
    ctx: &mut T,
    handle: &mut T::CredentialsHandle,
    input: Option<Vec<u8>>,
) -> Result<(SecurityStatus, Vec<u8>), sspi::Error>
where
    T: Sspi + SspiImpl,
{
    let mut input_buffers = input
        .map(|token| vec![SecurityBuffer::new(token, BufferType::Token)])
        .unwrap_or_default();
    let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
    let mut builder = ctx
        .initialize_security_context()
        .with_credentials_handle(handle)
        .with_context_requirements(ClientRequestFlags::ALLOCATE_MEMORY)
        .with_target_data_representation(DataRepresentation::Native)
        .with_output(&mut output);
    if !input_buffers.is_empty() {
        builder = builder.with_input(&mut input_buffers);
    }
    let result = ctx
        .initialize_security_context_impl(&mut builder)?
        .resolve_to_result()?;
    let token = output
        .into_iter()
        .find(|b| b.buffer_type.buffer_type == BufferType::Token)
        .map(|b| b.buffer)
        .unwrap_or_default();
    Ok((result.status, token))
}

#[cfg(test)]
mod tests;
