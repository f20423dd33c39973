//! Kerberos in the simulation: a fake GSS-API answering `Action::SecurityToken` as a driver
//! does ([`FakeGss`]), and a Negotiate-protected server that accepts one token ([`KerberosPeer`]).
//!
//! Tokens are opaque bytes here: the engine must carry them, base64-encoded, on the right
//! connection and to the right party, and never produce or alter them itself.

use std::collections::BTreeMap;

use backhaul_core::auth::AuthTarget;
use backhaul_core::{ConnId, JobId, TokenStep};
use base64::Engine as _;

use crate::ntlm_peer::Verdict;

/// One `Action::SecurityToken` the engine asked of the simulated driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAsked {
    /// The job.
    pub job: JobId,
    /// The connection the token is for.
    pub conn: ConnId,
    /// Server or proxy.
    pub target: AuthTarget,
    /// The GSS service name (`HTTP@host`).
    pub service: String,
    /// The server's token (`None` on the first leg).
    pub input: Option<Vec<u8>>,
}

/// The driver's GSS-API, as the simulation plays it.
#[derive(Clone, Debug, Default)]
pub struct FakeGss {
    /// The first token for any service (an AP-REQ from the ticket); `None`: the credential
    /// cache holds no ticket, and every first step fails.
    pub ticket: Option<Vec<u8>>,
    /// First tokens for particular services (`HTTP@host`), before `ticket`.
    pub tickets: BTreeMap<String, Vec<u8>>,
    /// A continuation: the server's token → the next token (the context completes with it).
    pub continuations: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl FakeGss {
    /// One `gss_init_sec_context` for `service`: the first step (`input: None`) or the
    /// answer to `input`.
    pub fn step(&self, service: &str, input: Option<&[u8]>) -> Result<TokenStep, String> {
        match input {
            None => match self.tickets.get(service).or(self.ticket.as_ref()) {
                Some(token) => Ok(TokenStep {
                    token: token.clone(),
                    complete: self.continuations.is_empty(),
                }),
                None => Err("No Kerberos credentials available (default cache: \
                             FILE:/tmp/krb5cc_sim) (simulated)"
                    .to_string()),
            },
            Some(input) => match self.continuations.get(input) {
                Some(token) => Ok(TokenStep {
                    token: token.clone(),
                    complete: true,
                }),
                None => Err(
                    "the server's token is not one this context expects (simulated)".to_string(),
                ),
            },
        }
    }
}

/// A Negotiate-protected server: it accepts exactly one token, optionally after a challenge
/// leg, and authenticates the connection that carried it.
#[derive(Clone, Debug)]
pub struct KerberosPeer {
    accepts: Vec<u8>,
    /// (the token that earns the challenge, the challenge's token).
    challenge: Option<(Vec<u8>, Vec<u8>)>,
    authenticated: Vec<ConnId>,
    /// Every token received, decoded, in order.
    pub received: Vec<Vec<u8>>,
}

impl KerberosPeer {
    /// Accepts `token` as the only leg.
    pub fn accepting(token: &[u8]) -> Self {
        Self {
            accepts: token.to_vec(),
            challenge: None,
            authenticated: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Answers `first` with a 401 carrying `challenge`, then accepts `token`.
    pub fn with_challenge(mut self, first: &[u8], challenge: &[u8]) -> Self {
        self.challenge = Some((first.to_vec(), challenge.to_vec()));
        self
    }

    /// Judges a request on `conn` carrying `authorization` (the header's value, if any).
    pub fn judge(&mut self, conn: ConnId, authorization: Option<&str>) -> Verdict {
        let b64 = base64::engine::general_purpose::STANDARD;
        let token = authorization
            .and_then(|v| v.strip_prefix("Negotiate "))
            .and_then(|t| b64.decode(t).ok());
        let Some(token) = token else {
            if authorization.is_none() && self.authenticated.contains(&conn) {
                return Verdict::Serve;
            }
            return Verdict::Challenge(None);
        };
        self.received.push(token.clone());
        if token == self.accepts {
            self.authenticated.push(conn);
            return Verdict::Serve;
        }
        match &self.challenge {
            Some((first, challenge)) if *first == token => {
                Verdict::Challenge(Some(b64.encode(challenge)))
            }
            _ => Verdict::Challenge(None),
        }
    }
}
