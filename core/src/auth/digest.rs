//! Digest (RFC 7616, and the RFC 2069 form without `qop`): a client's state for one challenge.
//!
//! Hand-written: the crates that exist (`digest_auth`, `http-auth`) either lag behind RFC 7616
//! (userhash, SHA-512-256, `username*`) or tie the nonce count to their own types; the hashing
//! itself is `md-5` and `sha2`.
//!
//! Supported: `algorithm` MD5 (the default when absent), MD5-sess, SHA-256, SHA-256-sess,
//! SHA-512-256, SHA-512-256-sess; `qop=auth`, and `qop=auth-int` when it is the only one
//! offered (the entity body of a GET or HEAD is empty, so its hash is the hash of nothing);
//! `opaque`; `userhash=true`; `stale=true`. User names and passwords are hashed as UTF-8
//! (`charset=UTF-8` is the only charset RFC 7616 defines); a non-ASCII user name without
//! userhash is sent as `username*` (RFC 7616 §3.4.4).

use std::fmt::Write as _;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};
use zeroize::Zeroizing;

use super::{Challenge, Secret};

/// A Digest hash algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DigestAlgorithm {
    /// `MD5` (also what an absent `algorithm` means).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl DigestAlgorithm {
    /// Every algorithm, weakest first.
    pub const ALL: [DigestAlgorithm; 6] = [
        Self::Md5,
        Self::Md5Sess,
        Self::Sha256,
        Self::Sha256Sess,
        Self::Sha512_256,
        Self::Sha512_256Sess,
    ];

    /// The algorithm named `name` (any case), as in a challenge's `algorithm` parameter.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The RFC 7616 name: `MD5`, `SHA-256-sess`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
            Self::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// True for the `-sess` variants, whose A1 also hashes the nonce and the client nonce.
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Self::Md5Sess | Self::Sha256Sess | Self::Sha512_256Sess
        )
    }

    /// How strong the hash is (higher is stronger); `-sess` does not change it.
    pub fn strength(self) -> u8 {
        match self {
            Self::Md5 | Self::Md5Sess => 1,
            Self::Sha256 | Self::Sha256Sess => 2,
            Self::Sha512_256 | Self::Sha512_256Sess => 3,
        }
    }

    /// Lower-case hex of the hash of `parts` joined by `:`.
    fn hex(self, parts: &[&[u8]]) -> Zeroizing<String> {
        match self {
            Self::Md5 | Self::Md5Sess => hex_hash::<Md5>(parts),
            Self::Sha256 | Self::Sha256Sess => hex_hash::<Sha256>(parts),
            Self::Sha512_256 | Self::Sha512_256Sess => hex_hash::<Sha512_256>(parts),
        }
    }
}

fn hex_hash<D: Digest>(parts: &[&[u8]]) -> Zeroizing<String> {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut out = Zeroizing::new(String::with_capacity(digest.len() * 2));
    for byte in digest.iter() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The quality of protection the answers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestQop {
    /// `qop=auth`.
    Auth,
    /// `qop=auth-int` over an empty body (only when the server offers nothing else).
    AuthInt,
    /// No `qop` offered: the RFC 2069 form, without `cnonce` or `nc`.
    Legacy,
}

/// Why a Digest challenge cannot be answered. Names the parameter and the value sent; never a
/// credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The challenge is for another scheme.
    #[error("the challenge is {0}, not Digest")]
    NotDigest(String),
    /// A required parameter is missing.
    #[error("the Digest challenge has no {0} parameter")]
    Missing(&'static str),
    /// The `algorithm` is one backhaul does not implement.
    #[error(
        "the Digest algorithm {0:?} is not supported (MD5, MD5-sess, SHA-256, SHA-256-sess, \
         SHA-512-256 and SHA-512-256-sess are)"
    )]
    UnsupportedAlgorithm(String),
    /// The `qop` offers neither `auth` nor `auth-int`.
    #[error("the Digest qop {0:?} offers neither auth nor auth-int")]
    UnsupportedQop(String),
    /// A `-sess` algorithm without `qop`: there would be no client nonce to send.
    #[error("the Digest algorithm {0} needs a qop, and the challenge offers none")]
    SessionWithoutQop(&'static str),
}

/// What a new Digest challenge, after an answer, means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// `stale=true` in the same realm: the nonce expired, the credentials were right. The
    /// state now holds the new nonce; answer again.
    Stale,
    /// The credentials were refused (or the new challenge is for another realm or cannot be
    /// answered): the job fails with 401 or 407.
    Rejected,
}

/// A client's Digest state for one protection space (origin or proxy, and realm): the
/// server's nonce and the nonce count. The engine keeps one per protection space and feeds it
/// every new challenge through [`DigestState::update`].
///
/// `Debug` shows only the challenge's public values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestState {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: DigestAlgorithm,
    /// Whether the challenge named the algorithm (echoed only then, as RFC 2069 servers expect).
    algorithm_named: bool,
    qop: DigestQop,
    userhash: bool,
    /// Answers sent with this nonce (the next `nc` is this plus one).
    nonce_count: u32,
    /// For `-sess`: the client nonce of the first answer to this nonce, kept for later answers
    /// so servers that compute the session key once (RFC 2617 §3.2.2.2) and servers that
    /// compute it per request agree.
    session_cnonce: Option<String>,
}

impl DigestState {
    /// The state for a `Digest` challenge, or why it cannot be answered.
    pub fn from_challenge(challenge: &Challenge) -> Result<Self, DigestError> {
        if !challenge.is_scheme("Digest") {
            return Err(DigestError::NotDigest(challenge.scheme.clone()));
        }
        let realm = challenge
            .param("realm")
            .ok_or(DigestError::Missing("realm"))?;
        let nonce = challenge
            .param("nonce")
            .ok_or(DigestError::Missing("nonce"))?;
        let (algorithm, algorithm_named) = match challenge.param("algorithm") {
            None => (DigestAlgorithm::Md5, false),
            Some(name) => (
                DigestAlgorithm::from_name(name.trim())
                    .ok_or_else(|| DigestError::UnsupportedAlgorithm(name.to_string()))?,
                true,
            ),
        };
        let qop = match challenge.param("qop") {
            None => DigestQop::Legacy,
            Some(list) => {
                let offered: Vec<&str> = list.split(',').map(str::trim).collect();
                let has = |q: &str| offered.iter().any(|o| o.eq_ignore_ascii_case(q));
                if has("auth") {
                    DigestQop::Auth
                } else if has("auth-int") {
                    DigestQop::AuthInt
                } else {
                    return Err(DigestError::UnsupportedQop(list.to_string()));
                }
            }
        };
        if qop == DigestQop::Legacy && algorithm.is_session() {
            return Err(DigestError::SessionWithoutQop(algorithm.name()));
        }
        let userhash = challenge
            .param("userhash")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Ok(Self {
            realm: realm.to_string(),
            nonce: nonce.to_string(),
            opaque: challenge.param("opaque").map(str::to_string),
            algorithm,
            algorithm_named,
            qop,
            userhash,
            nonce_count: 0,
            session_cnonce: None,
        })
    }

    /// The realm (the protection space within the origin).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The algorithm in use.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The quality of protection in use.
    pub fn qop(&self) -> DigestQop {
        self.qop
    }

    /// How many answers were made with the current nonce.
    pub fn nonce_count(&self) -> u32 {
        self.nonce_count
    }

    /// The `Authorization` (or `Proxy-Authorization`) value for one request, counting it
    /// (`nc=00000001`, then 2, …). `uri` is the request target exactly as sent (origin form,
    /// or absolute form to a proxy). `cnonce` comes from the caller's seeded RNG; with a
    /// `-sess` algorithm the first one is kept for the nonce's lifetime. The count stops at
    /// `ffffffff`; the server then refuses it and a new challenge brings a new nonce.
    pub fn authorization(
        &mut self,
        method: &str,
        uri: &str,
        user: &str,
        password: &Secret,
        cnonce: &str,
    ) -> Secret {
        self.nonce_count = self.nonce_count.saturating_add(1);
        let nc = format!("{:08x}", self.nonce_count);
        let cnonce = if self.algorithm.is_session() {
            self.session_cnonce
                .get_or_insert_with(|| cnonce.to_string())
                .clone()
        } else {
            cnonce.to_string()
        };
        let alg = self.algorithm;
        let mut ha1 = alg.hex(&[
            user.as_bytes(),
            self.realm.as_bytes(),
            password.expose().as_bytes(),
        ]);
        if alg.is_session() {
            ha1 = alg.hex(&[ha1.as_bytes(), self.nonce.as_bytes(), cnonce.as_bytes()]);
        }
        let ha2 = match self.qop {
            DigestQop::AuthInt => {
                let body = alg.hex(&[b""]);
                alg.hex(&[method.as_bytes(), uri.as_bytes(), body.as_bytes()])
            }
            DigestQop::Auth | DigestQop::Legacy => alg.hex(&[method.as_bytes(), uri.as_bytes()]),
        };
        let qop = match self.qop {
            DigestQop::Auth => "auth",
            DigestQop::AuthInt => "auth-int",
            DigestQop::Legacy => "",
        };
        let response = if self.qop == DigestQop::Legacy {
            alg.hex(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()])
        } else {
            alg.hex(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                qop.as_bytes(),
                ha2.as_bytes(),
            ])
        };

        let mut out = String::from("Digest ");
        if self.userhash {
            let hashed = alg.hex(&[user.as_bytes(), self.realm.as_bytes()]);
            push_quoted(&mut out, "username", &hashed);
        } else if user.is_ascii() && !user.chars().any(|c| c.is_ascii_control()) {
            push_quoted(&mut out, "username", user);
        } else {
            out.push_str("username*=UTF-8''");
            percent_encode(&mut out, user);
        }
        out.push_str(", ");
        push_quoted(&mut out, "realm", &self.realm);
        out.push_str(", ");
        push_quoted(&mut out, "uri", uri);
        if self.algorithm_named {
            out.push_str(", algorithm=");
            out.push_str(alg.name());
        }
        out.push_str(", ");
        push_quoted(&mut out, "nonce", &self.nonce);
        if self.qop != DigestQop::Legacy {
            out.push_str(&format!(", nc={nc}, "));
            push_quoted(&mut out, "cnonce", &cnonce);
            out.push_str(", qop=");
            out.push_str(qop);
        }
        out.push_str(", ");
        push_quoted(&mut out, "response", &response);
        if let Some(opaque) = &self.opaque {
            out.push_str(", ");
            push_quoted(&mut out, "opaque", opaque);
        }
        if self.userhash {
            out.push_str(", userhash=true");
        }
        Secret::new(out)
    }

    /// What a new challenge (after an answer with this state) means: [`Update::Stale`] adopts
    /// the new nonce (count back to zero); anything else leaves the state as it was.
    pub fn update(&mut self, challenge: &Challenge) -> Update {
        if !is_stale(challenge) {
            return Update::Rejected;
        }
        match Self::from_challenge(challenge) {
            Ok(next) if next.realm == self.realm => {
                *self = next;
                Update::Stale
            }
            _ => Update::Rejected,
        }
    }
}

/// True for a Digest challenge with `stale=true`: the previous nonce expired, but the
/// credentials were right (RFC 7616 §3.3).
pub fn is_stale(challenge: &Challenge) -> bool {
    challenge.is_scheme("Digest")
        && challenge
            .param("stale")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `name="value"` with `"` and `\` escaped (RFC 9110 §5.6.4).
fn push_quoted(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// RFC 8187 `value-chars`: attr-char kept, every other byte as `%XX`.
fn percent_encode(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests;
