//! Negotiate as the logged-on user: Kerberos from the default credential cache, one token at
//! a time from the driver's GSS-API (`Action::SecurityToken` → `Input::SecurityToken`).
//!
//! Core cannot produce these tokens: the ticket is in a file (`KRB5CCNAME`) and getting a
//! service ticket is a network exchange with the KDC. So when a job's credentials for a
//! Negotiate challenge are implicit, the connection's exchange is driven from here and the
//! GSS-API context lives in the driver, keyed by (job, connection, target). A connection
//! waiting for a token sends nothing, like one waiting for a certificate verdict.
//!
//! The legs: the first token (no input) rides the request; a 401/407 with
//! `Negotiate <token>` while the client's side is incomplete is a continuation (its body is
//! read and the next token asked for, in either order; the request goes out once both are
//! done); a 401/407 after a complete exchange is a rejection (`handle_challenge`). The final
//! token of a mutual authentication, in a 200's `WWW-Authenticate`, is not checked: the client
//! asks for no mutual authentication (docs/auth.md, "Kerberos").
//!
//! A driver's failure (no ticket, KDC unreachable, unknown service) fails the job with
//! `BG_E_HTTP_ERROR_401` / `_407` and the library's words.

use base64::Engine as _;
use bytes::Bytes;

use crate::auth::{AuthScheme, AuthTarget, Challenge, Secret};
use crate::codes::HResult;
use crate::error::Severity;
use crate::ids::{ConnId, JobId};
use crate::input::TokenStep;
use crate::output::Action;
use crate::proxy::Route;

use super::auth::ConnAnswer;
use super::connection::{Conn, ConnUser};
use super::proxy::TunnelPhase;
use super::transfer::{remote_error, Phase};
use super::Engine;

/// The Kerberos exchanges run through the driver on one connection, by target.
#[derive(Debug, Default)]
pub(crate) struct SystemAuths {
    server: Option<SystemExchange>,
    proxy: Option<SystemExchange>,
}

impl SystemAuths {
    fn slot(&mut self, target: AuthTarget) -> &mut Option<SystemExchange> {
        match target {
            AuthTarget::Server => &mut self.server,
            AuthTarget::Proxy => &mut self.proxy,
        }
    }

    /// Whether an exchange for `target` runs (or ran) on this connection.
    pub(super) fn holds(&self, target: AuthTarget) -> bool {
        match target {
            AuthTarget::Server => self.server.is_some(),
            AuthTarget::Proxy => self.proxy.is_some(),
        }
    }

    /// Puts back a token taken for a request that did not go out (the other party's token
    /// is still awaited).
    pub(super) fn restore(&mut self, target: AuthTarget, token: Secret) {
        if let Some(exchange) = self.slot(target) {
            exchange.pending = Some(token);
        }
    }
}

/// Where one exchange stands. The context itself is the driver's.
#[derive(Debug)]
struct SystemExchange {
    /// The party (origin or proxy key) it authenticates to.
    party: String,
    /// A step was asked of the driver and is not answered yet.
    waiting: bool,
    /// The driver said the client's side is complete.
    complete: bool,
    /// In a continuation: the challenge's body has been read to its end.
    drained: bool,
    /// Tokens the driver produced so far.
    legs: u32,
    /// The `Negotiate <base64>` value the next request carries.
    pending: Option<Secret>,
}

impl Engine {
    /// The answer for a request of job `id` on `conn` to `party` when the job answers it with
    /// Negotiate as the logged-on user; `None` when it does not (explicit credentials, NTLM:
    /// `sspi` answers those in core).
    pub(super) fn system_authorization(
        &mut self,
        id: JobId,
        conn: ConnId,
        party: &str,
        target: AuthTarget,
        scheme: AuthScheme,
    ) -> Option<ConnAnswer> {
        let implicit = self.jobs.get(&id).is_some_and(|job| {
            job.rec
                .credentials
                .credentials_for(target, scheme)
                .is_some_and(|c| c.is_implicit())
        });
        if scheme != AuthScheme::Negotiate || !implicit {
            return None;
        }
        let now = self.now;
        let receive_timeout = self.config.receive_timeout;
        let c = self.conns.get_mut(&conn)?;
        let service = service_name(c, target);
        let slot = c.gss.slot(target);
        if let Some(running) = slot.as_mut().filter(|x| x.party == party) {
            if running.waiting {
                return Some(ConnAnswer::Waiting);
            }
            return Some(match running.pending.take() {
                Some(token) => ConnAnswer::Header(scheme, token),
                None => ConnAnswer::Authenticated,
            });
        }
        *slot = Some(SystemExchange {
            party: party.to_string(),
            waiting: true,
            complete: false,
            drained: false,
            legs: 0,
            pending: None,
        });
        // The KDC exchange counts against the receive timeout, like a slow server.
        c.deadline = now.saturating_add(receive_timeout);
        self.push_action(Action::SecurityToken {
            job: id,
            conn,
            target,
            service,
            input: None,
        });
        Some(ConnAnswer::Waiting)
    }

    /// A 401/407 on `conn` where a driver-run exchange for `target` stands: `None` when there
    /// is none; `Some(true)` when the challenge continues it (the next token is asked for and
    /// the body read meanwhile) or failed the job; `Some(false)` when it is a rejection.
    pub(super) fn continue_system_auth(
        &mut self,
        id: JobId,
        conn: ConnId,
        target: AuthTarget,
        challenges: &[Challenge],
    ) -> Option<bool> {
        let now = self.now;
        let receive_timeout = self.config.receive_timeout;
        let c = self.conns.get_mut(&conn)?;
        if !c.gss.holds(target) {
            return None;
        }
        let service = service_name(c, target);
        c.deadline = now.saturating_add(receive_timeout);
        let running = c.gss.slot(target).as_mut()?;
        if running.complete || running.waiting {
            return Some(false);
        }
        let Some(token) = challenges
            .iter()
            .filter(|ch| {
                AuthScheme::from_challenge_scheme(&ch.scheme) == Some(AuthScheme::Negotiate)
            })
            .find_map(|ch| ch.token68.as_deref())
        else {
            // A bare challenge after our token: refused.
            return Some(false);
        };
        let Ok(input) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
            let why = "the server's Negotiate token is not base64".to_string();
            self.drop_conn(conn);
            let code = HResult::from_http_status(target.refusal_status());
            self.fail(id, remote_error(code, why), Severity::Fatal, None);
            return Some(true);
        };
        running.waiting = true;
        running.drained = false;
        if let Some(fetch) = self.fetch_mut(id) {
            fetch.phase = Phase::AuthDrain;
            fetch.auth_rounds += 1;
        }
        self.push_action(Action::SecurityToken {
            job: id,
            conn,
            target,
            service,
            input: Some(Bytes::from(input)),
        });
        Some(true)
    }

    /// The challenge's body on `conn` has been read: true when its next token is still
    /// awaited (the request goes out when it comes, in [`Engine::handle_security_token`]).
    pub(super) fn system_token_awaited(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let mut awaited = false;
        for target in AuthTarget::ALL {
            if let Some(running) = c.gss.slot(target).as_mut().filter(|x| x.waiting) {
                running.drained = true;
                awaited = true;
            }
        }
        awaited
    }

    /// The driver's answer to `Action::SecurityToken`.
    pub(super) fn handle_security_token(
        &mut self,
        id: JobId,
        conn: ConnId,
        target: AuthTarget,
        result: Result<TokenStep, String>,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return; // closed meanwhile: the driver dropped the context
        };
        // Busy with a request, or (a proxy's token) still asking for its CONNECT tunnel.
        if c.user != ConnUser::Busy(id) && c.user != ConnUser::Connecting(id) {
            return;
        }
        let Some(running) = c.gss.slot(target).as_mut().filter(|x| x.waiting) else {
            return;
        };
        running.waiting = false;
        let first = running.legs == 0;
        running.legs += 1;
        let party = running.party.clone();
        let step = match result {
            Ok(step) if !step.token.is_empty() => step,
            Ok(_) => {
                let why = "the GSS-API ended the exchange with nothing to send".to_string();
                return self.fail_system_auth(id, conn, target, &party, why);
            }
            Err(message) if !first => {
                // In practice a 401 answering a Kerberos token with a token of its own is a
                // SPNEGO rejection (a wrong key, a stale ticket, a replay).
                let why = format!(
                    "the server did not accept the logged-on user's Kerberos token (the GSS-API \
                     on its answer: {message})"
                );
                return self.fail_system_auth(id, conn, target, &party, why);
            }
            Err(message) => {
                let why = format!(
                    "Negotiate as the logged-on user got no Kerberos token from the GSS-API \
                     ({message}); no Kerberos ticket: run kinit, or set explicit credentials"
                );
                return self.fail_system_auth(id, conn, target, &party, why);
            }
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(&step.token);
        running.pending = Some(Secret::new(format!("Negotiate {encoded}")));
        running.complete = step.complete;
        let drained = running.drained;
        let draining = self
            .fetch_mut(id)
            .is_some_and(|f| f.phase == Phase::AuthDrain);
        if draining && !drained {
            return; // `auth_drained` sends it once the challenge's body is read
        }
        let tunnelling = self
            .conns
            .get(&conn)
            .is_some_and(|c| matches!(c.tunnel, Some(TunnelPhase::Connect)));
        if tunnelling {
            self.open_tunnel(id, conn); // the CONNECT goes out again, with the proxy's token
        } else {
            self.send_request(id, conn);
        }
    }

    fn fail_system_auth(
        &mut self,
        id: JobId,
        conn: ConnId,
        target: AuthTarget,
        party: &str,
        why: String,
    ) {
        let who = party
            .strip_prefix("proxy ")
            .map_or_else(|| party.to_string(), |p| format!("the proxy {p}"));
        self.drop_conn(conn);
        if let Some(fetch) = self.fetch_mut(id) {
            fetch.conn = None;
        }
        let code = HResult::from_http_status(target.refusal_status());
        self.fail(
            id,
            remote_error(code, format!("{who}: {why}")),
            Severity::Fatal,
            None,
        );
    }
}

/// The GSS host-based service for `target` on `c`: `HTTP@` the proxy's host for a 407, the
/// origin's for a 401 (the Kerberos principal `HTTP/<host>`).
fn service_name(c: &Conn, target: AuthTarget) -> String {
    match (target, &c.via) {
        (AuthTarget::Proxy, Route::Proxy(proxy)) => format!("HTTP@{}", proxy.host),
        _ => format!("HTTP@{}", c.origin.host),
    }
}
