//! Which challenge to answer, with which credentials.
//!
//! Order: Negotiate > NTLM > Digest > Basic. Negotiate (Kerberos, or NTLM inside SPNEGO) and
//! NTLM never send the password and authenticate the connection; Digest sends a hash bound to
//! the server's nonce; Basic sends the password itself, so it is the last resort. BITS leaves
//! the order unspecified (bits-reference.md, "Open items"). Passport is never answered: no
//! server offers it any more, and a Passport-only challenge ends in the 401 or 407 error.

use super::digest::DigestState;
use super::{AuthScheme, AuthTarget, Challenge, CredentialSet, Credentials};

/// Schemes that are answered, strongest first.
const ORDER: [AuthScheme; 4] = [
    AuthScheme::Negotiate,
    AuthScheme::Ntlm,
    AuthScheme::Digest,
    AuthScheme::Basic,
];

/// The challenge to answer and the credentials to answer it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chosen<'a> {
    /// The scheme.
    pub scheme: AuthScheme,
    /// The challenge (for Digest: the one with the strongest algorithm this client supports).
    pub challenge: &'a Challenge,
    /// The credentials; for the server they may be implicit proxy credentials
    /// ([`CredentialSet::credentials_for`]).
    pub credentials: &'a Credentials,
}

/// The strongest offered scheme for which `creds` hold credentials for `target`, or `None`
/// (the job then fails with 401 or 407).
///
/// Among several Digest challenges the strongest algorithm wins (SHA-512-256 > SHA-256 > MD5,
/// the first on a tie); a Digest challenge this client cannot answer (unknown algorithm or
/// qop) is passed over, so a usable weaker scheme can still be chosen.
pub fn choose<'a>(
    challenges: &'a [Challenge],
    creds: &'a CredentialSet,
    target: AuthTarget,
) -> Option<Chosen<'a>> {
    ORDER.into_iter().find_map(|scheme| {
        let credentials = creds.credentials_for(target, scheme)?;
        let challenge = best_challenge(challenges, scheme)?;
        Some(Chosen {
            scheme,
            challenge,
            credentials,
        })
    })
}

fn best_challenge(challenges: &[Challenge], scheme: AuthScheme) -> Option<&Challenge> {
    let offered = challenges
        .iter()
        .filter(move |c| AuthScheme::from_challenge_scheme(&c.scheme) == Some(scheme));
    if scheme != AuthScheme::Digest {
        return offered.into_iter().next();
    }
    let mut best: Option<(u8, &Challenge)> = None;
    for challenge in offered {
        let Ok(state) = DigestState::from_challenge(challenge) else {
            continue;
        };
        let strength = state.algorithm().strength();
        if best.is_none_or(|(b, _)| strength > b) {
            best = Some((strength, challenge));
        }
    }
    best.map(|(_, c)| c)
}

impl CredentialSet {
    /// The credentials that answer `scheme` for `target`.
    ///
    /// For the server, implicit proxy credentials (NTLM or Negotiate as the logged-on user)
    /// also serve, unless the job holds explicit server credentials of any scheme: BITS "will
    /// also use the implicit credentials for server authentication unless you specify explicit
    /// server credentials". An application that set a server password meant that identity, so
    /// the logged-on user's is not offered to that server instead.
    pub fn credentials_for(&self, target: AuthTarget, scheme: AuthScheme) -> Option<&Credentials> {
        if let Some(own) = self.get(target, scheme) {
            return Some(own);
        }
        if target == AuthTarget::Server && !self.has_explicit(AuthTarget::Server) {
            return self
                .get(AuthTarget::Proxy, scheme)
                .filter(|c| c.is_implicit());
        }
        None
    }
}

#[cfg(test)]
mod tests;
