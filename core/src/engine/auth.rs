//! Answering a 401 (the server) or a 407 (the proxy) with the job's credentials (Basic,
//! Digest), and sending them again on later requests to the same origin or proxy — never to
//! another one, never to the origin what belongs to the proxy, and never inside a tunnel.
//!
//! What a job learned about a party (which scheme it answered, Digest's nonce state) lives in
//! [`ServerAuth`], keyed by the origin (`https://host:port`) or the proxy (`proxy host:port`);
//! Digest state is also bound to its realm (a new realm starts over). A challenge answered
//! once and refused again is a rejection: the job fails with `BG_E_HTTP_ERROR_401` / `_407`
//! until the app sets other credentials and resumes.

use std::collections::BTreeMap;

use rand_chacha::rand_core::Rng;

use crate::auth::{self, AuthScheme, AuthTarget, Challenge, DigestState, Secret, Update};
use crate::codes::HResult;
use crate::error::Severity;
use crate::http::ResponseHead;
use crate::ids::{ConnId, JobId};
use crate::proxy::ProxyEndpoint;

use super::transfer::remote_error;
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
        }
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
        self.drop_conn(conn);
        let (target, status, field) = match proxy {
            None => (AuthTarget::Server, 401, "www-authenticate"),
            Some(_) => (AuthTarget::Proxy, 407, "proxy-authenticate"),
        };
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
        let challenges = auth::parse_fields(head.header_values(field));
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
            other => Err(format!(
                "{who} asks for {other}, which this build cannot answer yet"
            )),
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
