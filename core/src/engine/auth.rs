//! Answering a server's 401 with the job's credentials (Basic, Digest), and sending them again
//! on later requests to the same origin — never to another one.
//!
//! What a job learned about an origin (which scheme it answered, Digest's nonce state) lives
//! in [`ServerAuth`], keyed by the origin; Digest state is also bound to its realm (a new
//! realm starts over). A challenge answered once and refused again is a rejection: the job
//! fails with `BG_E_HTTP_ERROR_401` until the app sets other credentials and resumes.

use std::collections::BTreeMap;

use rand_chacha::rand_core::Rng;
use url::Url;

use crate::auth::{self, AuthScheme, AuthTarget, Challenge, DigestState, Secret, Update};
use crate::codes::HResult;
use crate::error::Severity;
use crate::http::ResponseHead;
use crate::ids::{ConnId, JobId};

use super::transfer::remote_error;
use super::Engine;

/// A fetch answers at most this many challenges before it counts as refused (a stale Digest
/// nonce may take one more round trip).
const MAX_AUTH_ROUNDS: u32 = 3;

/// How a job authenticates to each origin it has answered, by origin (`scheme://host:port`).
#[derive(Debug, Default)]
pub(crate) struct ServerAuth {
    by_origin: BTreeMap<String, OriginAuth>,
}

/// The scheme an origin asked for, and its state.
#[derive(Debug)]
enum OriginAuth {
    Basic,
    Digest(Box<DigestState>),
}

impl ServerAuth {
    /// Forgets everything: new credentials, or a new owner.
    pub(crate) fn clear(&mut self) {
        self.by_origin.clear();
    }
}

impl Engine {
    /// The `Authorization` value for a request to `url` (`target` as sent), when the job has
    /// answered that origin before and still holds the credentials. The caller has checked
    /// that `url` is the origin the app's secrets belong to.
    pub(super) fn authorization_for(
        &mut self,
        id: JobId,
        url: &Url,
        target: &str,
    ) -> Option<(AuthScheme, Secret)> {
        let cnonce = self.cnonce();
        let job = self.jobs.get_mut(&id)?;
        let origin = url.origin().ascii_serialization();
        let creds = &job.rec.credentials;
        match job.server_auth.by_origin.get_mut(&origin)? {
            OriginAuth::Basic => {
                let value = creds
                    .credentials_for(AuthTarget::Server, AuthScheme::Basic)?
                    .basic_authorization()?;
                Some((AuthScheme::Basic, value))
            }
            OriginAuth::Digest(state) => {
                let value = creds
                    .credentials_for(AuthTarget::Server, AuthScheme::Digest)?
                    .digest_authorization(state, "GET", target, &cnonce)?;
                Some((AuthScheme::Digest, value))
            }
        }
    }

    /// A 401: answer it (and retry on a fresh request), or fail the job with
    /// `BG_E_HTTP_ERROR_401` when there is nothing to answer with or the answer was refused.
    pub(super) fn handle_unauthorized(&mut self, id: JobId, conn: ConnId, head: &ResponseHead) {
        self.drop_conn(conn);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        fetch.conn = None;
        let url = fetch.url.clone();
        let sent = fetch.auth_sent.take();
        fetch.auth_rounds += 1;
        let rounds = fetch.auth_rounds;
        let to_secrets_origin =
            !fetch.left_origin && job.rec.files[fetch.file as usize].is_secrets_origin(&url);
        let challenges = auth::parse_fields(head.header_values("www-authenticate"));
        let origin = url.origin().ascii_serialization();
        let fail = |why: String| remote_error(HResult::from_http_status(401), why);
        if !to_secrets_origin {
            let why = format!(
                "{url} asks for credentials, and the job's are for another origin (they never \
                 follow a redirect)"
            );
            return self.fail(id, fail(why), Severity::Fatal, None);
        }
        if rounds > MAX_AUTH_ROUNDS {
            let why = format!("{url} kept asking for credentials ({rounds} challenges)");
            return self.fail(id, fail(why), Severity::Fatal, None);
        }
        if let Some(scheme) = sent {
            if !self.stale_digest_renewed(id, &origin, &challenges) {
                // Refused: the origin is challenged afresh on the next attempt.
                if let Some(job) = self.jobs.get_mut(&id) {
                    job.server_auth.by_origin.remove(&origin);
                }
                let why = format!("{url} refused the job's {scheme} credentials");
                return self.fail(id, fail(why), Severity::Fatal, None);
            }
            return self.connect_or_reuse(id);
        }
        let job = self.jobs.get_mut(&id).expect("checked above");
        let Some(chosen) = auth::choose(&challenges, &job.rec.credentials, AuthTarget::Server)
        else {
            let offered: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            let why = format!(
                "{url} asks for credentials ({}) and the job holds none for those schemes",
                if offered.is_empty() {
                    "no scheme named".to_string()
                } else {
                    offered.join(", ")
                }
            );
            return self.fail(id, fail(why), Severity::Fatal, None);
        };
        let answer = match chosen.scheme {
            AuthScheme::Basic => Ok(OriginAuth::Basic),
            AuthScheme::Digest => DigestState::from_challenge(chosen.challenge)
                .map(|state| OriginAuth::Digest(Box::new(state)))
                .map_err(|e| format!("{url}'s Digest challenge cannot be answered: {e}")),
            other => Err(format!(
                "{url} asks for {other}, which this build cannot answer yet"
            )),
        };
        match answer {
            Ok(answer) => {
                job.server_auth.by_origin.insert(origin, answer);
                self.connect_or_reuse(id);
            }
            Err(why) => self.fail(id, fail(why), Severity::Fatal, None),
        }
    }

    /// After a refused Digest answer: a `stale=true` challenge for the same realm renews the
    /// nonce (true: retry); anything else is a rejection.
    fn stale_digest_renewed(&mut self, id: JobId, origin: &str, challenges: &[Challenge]) -> bool {
        let Some(job) = self.jobs.get_mut(&id) else {
            return false;
        };
        let Some(OriginAuth::Digest(state)) = job.server_auth.by_origin.get_mut(origin) else {
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
