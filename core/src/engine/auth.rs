//! Answering a 401 (the server) or a 407 (the proxy) with the job's credentials (Basic,
//! Digest, NTLM, Negotiate), and sending them again on later requests to the same origin or
//! proxy — never to another one, never to the origin what belongs to the proxy, and never
//! inside a tunnel.
//!
//! NTLM and Negotiate authenticate the connection: the exchange (first token → 401 with the
//! server's challenge → the answer) runs on one keep-alive connection, kept in [`ConnAuths`]
//! on that connection; the 401's body is read to its end (`Phase::AuthDrain`) before the next
//! leg goes out. Such a connection's pool tag carries an [`AuthBinding`] (the job and the
//! user names), so it is never reused by another job or for other credentials.
//!
//! What a job learned about a party (which scheme it answered, Digest's nonce state) lives in
//! [`ServerAuth`], keyed by the origin (`https://host:port`) or the proxy (`proxy host:port`);
//! Digest state is also bound to its realm (a new realm starts over). A challenge answered
//! once and refused again is a rejection: the job fails with `BG_E_HTTP_ERROR_401` / `_407`
//! until the app sets other credentials and resumes.

use std::collections::BTreeMap;

use rand_chacha::rand_core::Rng;

use crate::auth::{
    self, AuthScheme, AuthTarget, Challenge, ConnectionContext, DigestState, Secret, Step, Update,
};
use crate::codes::HResult;
use crate::error::{JobError, Severity};
use crate::http::ResponseHead;
use crate::ids::{ConnId, JobId};
use crate::proxy::{ProxyEndpoint, Route};

use super::transfer::{remote_error, Phase};
use super::Engine;

/// A fetch answers at most this many challenges before it counts as refused (a stale Digest
/// nonce may take one more round trip).
const MAX_AUTH_ROUNDS: u32 = 4;

/// How a job authenticates to each party that challenged it, by party key.
#[derive(Debug, Default)]
pub(crate) struct ServerAuth {
    by_party: BTreeMap<String, PartyAuth>,
}

/// The scheme a party asked for, and its state.
#[derive(Debug)]
enum PartyAuth {
    Basic,
    Digest(Box<DigestState>),
    /// NTLM or Negotiate: the state lives on each connection ([`ConnAuths`]).
    Connection(AuthScheme),
}

/// Who a connection is logged in as, in its pool tag: only this job, with these user names,
/// reuses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuthBinding {
    /// The job whose credentials logged the connection in.
    pub(super) job: JobId,
    /// `server NTLM DOM\user`, `proxy Negotiate bob`: user names and schemes, never secrets.
    pub(super) identity: String,
}

/// The connection-bound exchanges (NTLM, Negotiate) on one connection, by target.
#[derive(Debug, Default)]
pub(crate) struct ConnAuths {
    server: Option<ConnAuth>,
    proxy: Option<ConnAuth>,
}

impl ConnAuths {
    fn slot(&mut self, target: AuthTarget) -> &mut Option<ConnAuth> {
        match target {
            AuthTarget::Server => &mut self.server,
            AuthTarget::Proxy => &mut self.proxy,
        }
    }

    /// Puts back a token taken for a request that did not go out (another party's token is
    /// still awaited from the driver).
    pub(super) fn restore(&mut self, target: AuthTarget, token: Secret) {
        if let Some(running) = self.slot(target) {
            running.pending = Some(token);
        }
    }
}

/// One exchange on one connection.
#[derive(Debug)]
struct ConnAuth {
    /// The party (origin or proxy key) it authenticates to.
    party: String,
    ctx: ConnectionContext,
    /// The token the next request on this connection carries (the answer to a challenge).
    pending: Option<Secret>,
}

/// What a request on a connection carries for a connection-bound party.
pub(super) enum ConnAnswer {
    /// The party is not answered with NTLM or Negotiate: per-request answers apply.
    NotConnectionBound,
    /// This header value (a step of the exchange).
    Header(AuthScheme, Secret),
    /// Nothing: the connection is already authenticated.
    Authenticated,
    /// Nothing yet: the driver is producing the token (`Action::SecurityToken`); the request
    /// goes out when it comes (engine/kerberos.rs).
    Waiting,
    /// No answer can be made; the job fails with this.
    Failed(JobError),
}

impl ServerAuth {
    /// Forgets everything: new credentials, or a new owner.
    pub(crate) fn clear(&mut self) {
        self.by_party.clear();
    }
}

/// The key under which an origin's authentication state is kept.
pub(super) fn origin_key(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// The key under which a proxy's authentication state is kept.
pub(super) fn proxy_key(proxy: &ProxyEndpoint) -> String {
    format!("proxy {}:{}", proxy.host, proxy.port)
}

impl Engine {
    /// The `Authorization` (server) or `Proxy-Authorization` (proxy) value for a request of
    /// `method` to `uri` (as sent), when the job has answered `party` before and still holds
    /// the credentials. The caller has checked that the request goes to that party.
    pub(super) fn authorization_for(
        &mut self,
        id: JobId,
        party: &str,
        target: AuthTarget,
        method: &str,
        uri: &str,
    ) -> Option<(AuthScheme, Secret)> {
        let cnonce = self.cnonce();
        let job = self.jobs.get_mut(&id)?;
        let creds = &job.rec.credentials;
        match job.server_auth.by_party.get_mut(party)? {
            PartyAuth::Basic => {
                let value = creds
                    .credentials_for(target, AuthScheme::Basic)?
                    .basic_authorization()?;
                Some((AuthScheme::Basic, value))
            }
            PartyAuth::Digest(state) => {
                let value = creds
                    .credentials_for(target, AuthScheme::Digest)?
                    .digest_authorization(state, method, uri, &cnonce)?;
                Some((AuthScheme::Digest, value))
            }
            // Answered per connection (`connection_authorization`), never per request.
            PartyAuth::Connection(_) => None,
        }
    }

    /// For a request of job `id` on `conn` to `party` (answered with NTLM or Negotiate): the
    /// next token of the connection's exchange (the first one on a fresh connection), or
    /// nothing once the connection is authenticated.
    pub(super) fn connection_authorization(
        &mut self,
        id: JobId,
        conn: ConnId,
        party: &str,
        target: AuthTarget,
    ) -> ConnAnswer {
        let Some(job) = self.jobs.get(&id) else {
            return ConnAnswer::NotConnectionBound;
        };
        let Some(PartyAuth::Connection(scheme)) = job.server_auth.by_party.get(party) else {
            return ConnAnswer::NotConnectionBound;
        };
        let scheme = *scheme;
        // Negotiate as the logged-on user: Kerberos through the driver.
        if let Some(answer) = self.system_authorization(id, conn, party, target, scheme) {
            return answer;
        }
        let Some(job) = self.jobs.get(&id) else {
            return ConnAnswer::NotConnectionBound;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return ConnAnswer::NotConnectionBound;
        };
        let slot = c.auth.slot(target);
        if let Some(running) = slot.as_mut().filter(|a| a.party == party) {
            return match running.pending.take() {
                Some(token) => ConnAnswer::Header(scheme, token),
                None => ConnAnswer::Authenticated,
            };
        }
        let status = target.refusal_status();
        let fail = |why: String| {
            let who = party
                .strip_prefix("proxy ")
                .map_or_else(|| party.to_string(), |p| format!("the proxy {p}"));
            ConnAnswer::Failed(remote_error(
                HResult::from_http_status(status),
                format!("{who}: {why}"),
            ))
        };
        let Some(credentials) = job.rec.credentials.credentials_for(target, scheme) else {
            return fail(format!("the job no longer holds {scheme} credentials"));
        };
        let first = ConnectionContext::new(scheme, credentials)
            .and_then(|mut ctx| ctx.step(None).map(|step| (ctx, step)));
        match first {
            Ok((ctx, Step::Send(token))) => {
                *slot = Some(ConnAuth {
                    party: party.to_string(),
                    ctx,
                    pending: None,
                });
                ConnAnswer::Header(scheme, token)
            }
            Ok((_, Step::Done)) => fail(format!("{scheme} produced no first token")),
            Err(e) => fail(e.to_string()),
        }
    }

    /// The identity a connection for job `id`'s fetch by way of `via` is logged in as, when
    /// its origin or the proxy is answered with NTLM or Negotiate.
    pub(super) fn auth_binding(&self, id: JobId, via: &Route) -> Option<AuthBinding> {
        let job = self.jobs.get(&id)?;
        let url = &job.fetch.as_ref()?.url;
        let mut parties = vec![(AuthTarget::Server, origin_key(url))];
        if let Route::Proxy(proxy) = via {
            parties.push((AuthTarget::Proxy, proxy_key(proxy)));
        }
        let identity: Vec<String> = parties
            .into_iter()
            .filter_map(|(target, party)| {
                let Some(PartyAuth::Connection(scheme)) = job.server_auth.by_party.get(&party)
                else {
                    return None;
                };
                let user = job
                    .rec
                    .credentials
                    .credentials_for(target, *scheme)
                    .and_then(|c| c.user())
                    .unwrap_or("(logged-on user)");
                Some(format!("{target} {scheme} {user}"))
            })
            .collect();
        (!identity.is_empty()).then(|| AuthBinding {
            job: id,
            identity: identity.join("; "),
        })
    }

    /// A 401/407 on a connection whose NTLM / Negotiate exchange awaits the server's
    /// challenge: compute the answer and keep the connection, reading the rest of this
    /// response first (`Phase::AuthDrain`). False when this is not such a continuation.
    fn continue_connection_auth(
        &mut self,
        id: JobId,
        conn: ConnId,
        target: AuthTarget,
        challenges: &[Challenge],
    ) -> bool {
        if let Some(handled) = self.continue_system_auth(id, conn, target, challenges) {
            return handled;
        }
        let Some(running) = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.auth.slot(target).as_mut())
        else {
            return false;
        };
        if !running.ctx.is_started() || running.ctx.is_complete() {
            return false;
        }
        let scheme = running.ctx.scheme();
        let Some(token) = challenges
            .iter()
            .filter(|c| AuthScheme::from_challenge_scheme(&c.scheme) == Some(scheme))
            .find_map(|c| c.token68.as_deref())
        else {
            // A bare challenge after the first token: the server refused it.
            return false;
        };
        match running.ctx.step(Some(token)) {
            Ok(Step::Send(answer)) => {
                running.pending = Some(answer);
                if target == AuthTarget::Proxy {
                    self.restart_undelivered_server_leg(conn);
                }
                if let Some(fetch) = self.fetch_mut(id) {
                    fetch.phase = Phase::AuthDrain;
                    fetch.auth_rounds += 1;
                }
                true
            }
            Ok(Step::Done) => false,
            Err(e) => {
                self.drop_conn(conn);
                let status = target.refusal_status();
                let error = remote_error(HResult::from_http_status(status), e.to_string());
                self.fail(id, error, Severity::Fatal, None);
                true
            }
        }
    }

    /// A proxy's challenge stopped a request before it reached the origin: a server exchange
    /// whose first token rode that request starts over with the next one (absolute form, when
    /// both the proxy and the origin are answered with NTLM or Negotiate).
    fn restart_undelivered_server_leg(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let undelivered = c
            .auth
            .server
            .as_ref()
            .is_some_and(|a| a.pending.is_none() && !a.ctx.is_complete());
        if undelivered {
            c.auth.server = None;
        }
    }

    /// The challenge's body has been read: the exchange's next leg goes out on the same
    /// connection, or — when the server will not keep it — starts over on a fresh one.
    pub(super) fn auth_drained(&mut self, id: JobId, conn: ConnId, reusable: bool) {
        let keeps = reusable && self.conns.get(&conn).is_some_and(|c| c.parser.is_idle());
        if keeps {
            if self.system_token_awaited(conn) {
                return; // the driver's token sends it (engine/kerberos.rs)
            }
            return self.send_request(id, conn);
        }
        // Whose exchange was cut short: the proxy's when its answer is the one waiting.
        let proxy_leg = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.auth.proxy.as_ref().is_some_and(|a| a.pending.is_some()));
        let (who, status) = if proxy_leg {
            ("proxy", 407)
        } else {
            ("server", 401)
        };
        self.drop_conn(conn);
        let rounds = match self.fetch_mut(id) {
            Some(fetch) => {
                fetch.conn = None;
                fetch.auth_rounds
            }
            None => return,
        };
        if rounds > MAX_AUTH_ROUNDS {
            let why = format!(
                "the {who} closed every connection in the middle of NTLM/Negotiate \
                 authentication (it must keep the connection alive)"
            );
            let error = remote_error(HResult::from_http_status(status), why);
            return self.fail(id, error, Severity::Fatal, None);
        }
        self.connect_or_reuse(id);
    }

    /// A 401 from the server (`proxy: None`) or a 407 from `proxy`: answer it on a fresh
    /// connection, or fail the job with `BG_E_HTTP_ERROR_401` / `_407` when there is nothing
    /// to answer with or the answer was refused.
    pub(super) fn handle_challenge(
        &mut self,
        id: JobId,
        conn: ConnId,
        head: &ResponseHead,
        proxy: Option<ProxyEndpoint>,
    ) {
        let (target, status, field) = match proxy {
            None => (AuthTarget::Server, 401, "www-authenticate"),
            Some(_) => (AuthTarget::Proxy, 407, "proxy-authenticate"),
        };
        let challenges = auth::parse_fields(head.header_values(field));
        if self.continue_connection_auth(id, conn, target, &challenges) {
            return;
        }
        self.drop_conn(conn);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        fetch.conn = None;
        let url = fetch.url.clone();
        let (who, party, sent) = match &proxy {
            None => (url.to_string(), origin_key(&url), fetch.auth_sent.take()),
            Some(p) => (
                format!("the proxy {p}"),
                proxy_key(p),
                fetch.proxy_auth_sent.take(),
            ),
        };
        fetch.auth_rounds += 1;
        let rounds = fetch.auth_rounds;
        let secrets_allowed = proxy.is_some()
            || (!fetch.left_origin && job.rec.files[fetch.file as usize].is_secrets_origin(&url));
        let fail = |why: String| remote_error(HResult::from_http_status(status), why);
        if !secrets_allowed {
            let why = format!(
                "{who} asks for credentials, and the job's are for another origin (they never \
                 follow a redirect)"
            );
            return self.fail(id, fail(why), Severity::Fatal, None);
        }
        if rounds > MAX_AUTH_ROUNDS {
            let why = format!("{who} kept asking for credentials ({rounds} challenges)");
            return self.fail(id, fail(why), Severity::Fatal, None);
        }
        if let Some(scheme) = sent {
            if self.stale_digest_renewed(id, &party, &challenges) {
                return self.connect_or_reuse(id);
            }
            // Refused: the party is challenged afresh on the next attempt.
            if let Some(job) = self.jobs.get_mut(&id) {
                job.server_auth.by_party.remove(&party);
            }
            let why = format!("{who} refused the job's {scheme} credentials");
            return self.fail(id, fail(why), Severity::Fatal, None);
        }
        let job = self.jobs.get_mut(&id).expect("checked above");
        let Some(chosen) = auth::choose(&challenges, &job.rec.credentials, target) else {
            let offered: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            let offered = if offered.is_empty() {
                "no scheme named".to_string()
            } else {
                offered.join(", ")
            };
            let why = format!(
                "{who} asks for credentials ({offered}) and the job holds no {} credentials \
                 for those schemes",
                target.bits_name()
            );
            return self.fail(id, fail(why), Severity::Fatal, None);
        };
        let answer = match chosen.scheme {
            AuthScheme::Basic => Ok(PartyAuth::Basic),
            AuthScheme::Digest => DigestState::from_challenge(chosen.challenge)
                .map(|state| PartyAuth::Digest(Box::new(state)))
                .map_err(|e| format!("{who}'s Digest challenge cannot be answered: {e}")),
            scheme @ (AuthScheme::Ntlm | AuthScheme::Negotiate) => {
                Ok(PartyAuth::Connection(scheme))
            }
            AuthScheme::Passport => {
                Err(format!("{who} asks for Passport, which is never answered"))
            }
        };
        match answer {
            Ok(answer) => {
                job.server_auth.by_party.insert(party, answer);
                self.connect_or_reuse(id);
            }
            Err(why) => self.fail(id, fail(why), Severity::Fatal, None),
        }
    }

    /// After a refused Digest answer: a `stale=true` challenge for the same realm renews the
    /// nonce (true: retry); anything else is a rejection.
    fn stale_digest_renewed(&mut self, id: JobId, party: &str, challenges: &[Challenge]) -> bool {
        let Some(job) = self.jobs.get_mut(&id) else {
            return false;
        };
        let Some(PartyAuth::Digest(state)) = job.server_auth.by_party.get_mut(party) else {
            return false;
        };
        challenges
            .iter()
            .filter(|c| c.is_scheme("Digest"))
            .any(|c| state.update(c) == Update::Stale)
    }

    /// 16 bytes from the engine's seeded RNG, as hex: Digest's client nonce.
    fn cnonce(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
