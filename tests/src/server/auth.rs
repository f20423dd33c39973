//! Authentication in front of a route: the server side of Basic and Digest, for tests.
//!
//! A route whose behaviour is [`Behavior::Auth`] answers 401 with `WWW-Authenticate` (or, with
//! [`AuthSpec::proxy`], 407 with `Proxy-Authenticate`, reading `Proxy-Authorization`) until a
//! request carries a correct answer; then the inner behaviour serves it. The verifier really
//! checks: it recomputes the Digest response itself (its own hashing, independent of the
//! client's code in `backhaul_core::auth`), and requires the user name (or its userhash), the
//! realm, a nonce it issued, the request target as `uri`, the algorithm, `qop=auth`, the
//! opaque value, and a nonce count that goes up with every request. For `-sess` the session key
//! is computed once per nonce from the first client nonce (RFC 2617 §3.2.2.2), so a client
//! that changed its `cnonce` mid-session fails. A refusal's body says why, in one line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use backhaul_core::auth::parse_challenges;
use base64::Engine as _;
use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use super::wire::Request;
use super::{lock, Behavior};

/// What a protected route requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSpec {
    /// Basic or Digest, and Digest's options.
    pub scheme: ServerScheme,
    /// The realm announced.
    pub realm: String,
    /// The one user accepted.
    pub user: String,
    /// Their password.
    pub password: String,
    /// Act as a proxy: 407, `Proxy-Authenticate`, `Proxy-Authorization`.
    pub proxy: bool,
}

/// The scheme a protected route challenges with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerScheme {
    /// Basic (RFC 7617), `charset="UTF-8"`.
    Basic,
    /// Digest (RFC 7616) with `qop="auth"`.
    Digest {
        /// The algorithm announced and required.
        algorithm: ServerDigestAlgorithm,
        /// Announce `userhash=true` and require a hashed user name.
        userhash: bool,
        /// Answer the first correct request with a new nonce and `stale=true` instead of
        /// serving it (once; a retired nonce always gets `stale=true` afterwards).
        stale_once: bool,
    },
}

/// The Digest algorithms the test server implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerDigestAlgorithm {
    /// `MD5`.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
}

impl ServerDigestAlgorithm {
    /// Every algorithm.
    pub const ALL: [ServerDigestAlgorithm; 5] = [
        Self::Md5,
        Self::Md5Sess,
        Self::Sha256,
        Self::Sha256Sess,
        Self::Sha512_256,
    ];

    /// The RFC 7616 name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
        }
    }

    fn is_session(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    /// Lower-case hex of the hash of `text`.
    pub fn hash(self, text: &str) -> String {
        let bytes = text.as_bytes();
        let digest: Vec<u8> = match self {
            Self::Md5 | Self::Md5Sess => Md5::digest(bytes).to_vec(),
            Self::Sha256 | Self::Sha256Sess => Sha256::digest(bytes).to_vec(),
            Self::Sha512_256 => Sha512_256::digest(bytes).to_vec(),
        };
        let mut hex = String::with_capacity(digest.len() * 2);
        for b in digest {
            let _ = write!(hex, "{b:02x}");
        }
        hex
    }
}

impl AuthSpec {
    /// Basic for `user` / `password`, realm `backhaul-test`.
    pub fn basic(user: &str, password: &str) -> AuthSpec {
        AuthSpec {
            scheme: ServerScheme::Basic,
            realm: "backhaul-test".into(),
            user: user.into(),
            password: password.into(),
            proxy: false,
        }
    }

    /// Digest with `algorithm` for `user` / `password`, realm `backhaul-test`.
    pub fn digest(user: &str, password: &str, algorithm: ServerDigestAlgorithm) -> AuthSpec {
        AuthSpec {
            scheme: ServerScheme::Digest {
                algorithm,
                userhash: false,
                stale_once: false,
            },
            ..AuthSpec::basic(user, password)
        }
    }

    /// The same, with this realm.
    pub fn realm(mut self, realm: &str) -> AuthSpec {
        self.realm = realm.into();
        self
    }

    /// The same, as a proxy (407).
    pub fn proxy(mut self) -> AuthSpec {
        self.proxy = true;
        self
    }

    /// The same, requiring `userhash` (Digest only).
    pub fn userhash(mut self) -> AuthSpec {
        if let ServerScheme::Digest { userhash, .. } = &mut self.scheme {
            *userhash = true;
        }
        self
    }

    /// The same, answering the first correct request with `stale=true` (Digest only).
    pub fn stale_once(mut self) -> AuthSpec {
        if let ServerScheme::Digest { stale_once, .. } = &mut self.scheme {
            *stale_once = true;
        }
        self
    }

    /// `inner`, served only to authenticated requests.
    pub fn protect(self, inner: Behavior) -> Behavior {
        assert!(
            !matches!(inner, Behavior::Auth { .. }),
            "one authentication layer per route"
        );
        Behavior::Auth {
            spec: self,
            inner: Box::new(inner),
        }
    }

    fn status(&self) -> u16 {
        if self.proxy {
            407
        } else {
            401
        }
    }
}

/// A refusal to write: the status, the challenge header, and why (the body).
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) reason: String,
}

/// A protected route's verifier and its nonces.
#[derive(Debug)]
pub(super) struct Gate {
    spec: AuthSpec,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    issued: u64,
    nonces: BTreeMap<String, NonceState>,
    stale_sent: bool,
}

#[derive(Debug, Default)]
struct NonceState {
    last_nc: u32,
    /// `-sess`: the session key, from the first request with this nonce.
    session_ha1: Option<String>,
    retired: bool,
}

const OPAQUE: &str = "b3BhcXVlLXRlc3Qtc2VydmVy";

impl Gate {
    pub(super) fn new(spec: AuthSpec) -> Gate {
        Gate {
            spec,
            state: Mutex::new(GateState::default()),
        }
    }

    /// `Ok` when `request` carries a correct answer; otherwise the refusal to send.
    pub(super) fn check(&self, request: &Request) -> Result<(), Refusal> {
        let header = if self.spec.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let Some(value) = request.header(header) else {
            return Err(self.refuse(format!("no {header} header"), false));
        };
        match &self.spec.scheme {
            ServerScheme::Basic => self.check_basic(value),
            ServerScheme::Digest {
                algorithm,
                userhash,
                stale_once,
            } => self.check_digest(request, value, *algorithm, *userhash, *stale_once),
        }
    }

    fn check_basic(&self, value: &str) -> Result<(), Refusal> {
        let Some((scheme, encoded)) = value.split_once(' ') else {
            return Err(self.refuse("the Basic answer has no credentials".into(), false));
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(self.refuse(format!("expected Basic, got {scheme}"), false));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let expected = format!("{}:{}", self.spec.user, self.spec.password);
        if decoded.as_deref() == Some(expected.as_str()) {
            Ok(())
        } else {
            Err(self.refuse("wrong user or password".into(), false))
        }
    }

    fn check_digest(
        &self,
        request: &Request,
        value: &str,
        algorithm: ServerDigestAlgorithm,
        userhash: bool,
        stale_once: bool,
    ) -> Result<(), Refusal> {
        let answer = match parse_challenges(value) {
            Ok(list) if list.len() == 1 && list[0].is_scheme("Digest") => {
                list.into_iter().next().expect("one element, checked above")
            }
            _ => return Err(self.refuse("the answer is not one Digest credential".into(), false)),
        };
        let p = |name: &str| answer.param(name).unwrap_or("");
        let spec = &self.spec;
        let user_ok = if userhash {
            p("userhash") == "true"
                && p("username") == algorithm.hash(&format!("{}:{}", spec.user, spec.realm))
        } else {
            match answer.param("username*") {
                Some(star) => star == format!("UTF-8''{}", percent_encode(&spec.user)),
                None => p("username") == spec.user,
            }
        };
        let checks = [
            (user_ok, "wrong user name"),
            (p("realm") == spec.realm, "wrong realm"),
            (p("uri") == request.target, "uri is not the request target"),
            (
                p("algorithm").eq_ignore_ascii_case(algorithm.name()),
                "wrong algorithm",
            ),
            (p("qop") == "auth", "qop is not auth"),
            (!p("cnonce").is_empty(), "no cnonce"),
            (p("opaque") == OPAQUE, "wrong opaque"),
        ];
        if let Some((_, why)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(self.refuse((*why).to_string(), false));
        }
        let Ok(nc) = u32::from_str_radix(p("nc"), 16) else {
            return Err(self.refuse("nc is not 8 hex digits".into(), false));
        };
        if p("nc").len() != 8 {
            return Err(self.refuse("nc is not 8 hex digits".into(), false));
        }
        let mut state = lock(&self.state);
        let Some(nonce) = state.nonces.get_mut(p("nonce")) else {
            return Err(self.refuse_locked(&mut state, "a nonce this server never issued", false));
        };
        let ha1 = match (&nonce.session_ha1, algorithm.is_session()) {
            (Some(ha1), true) => ha1.clone(),
            (None, true) => {
                let base =
                    algorithm.hash(&format!("{}:{}:{}", spec.user, spec.realm, spec.password));
                let ha1 = algorithm.hash(&format!("{base}:{}:{}", p("nonce"), p("cnonce")));
                nonce.session_ha1 = Some(ha1.clone());
                ha1
            }
            (_, false) => {
                algorithm.hash(&format!("{}:{}:{}", spec.user, spec.realm, spec.password))
            }
        };
        let ha2 = algorithm.hash(&format!("{}:{}", request.method, request.target));
        let expected = algorithm.hash(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            p("nonce"),
            p("nc"),
            p("cnonce")
        ));
        if p("response") != expected {
            return Err(self.refuse_locked(&mut state, "wrong response (user or password)", false));
        }
        let nonce = state
            .nonces
            .get_mut(p("nonce"))
            .expect("the nonce was found above");
        if nc <= nonce.last_nc {
            let last = nonce.last_nc;
            return Err(self.refuse_locked(
                &mut state,
                &format!("nc {nc} does not go up (last was {last})"),
                false,
            ));
        }
        nonce.last_nc = nc;
        if nonce.retired {
            return Err(self.refuse_locked(&mut state, "the nonce is stale", true));
        }
        if stale_once && !state.stale_sent {
            state.stale_sent = true;
            if let Some(n) = state.nonces.get_mut(p("nonce")) {
                n.retired = true;
            }
            return Err(self.refuse_locked(&mut state, "stale once, as scripted", true));
        }
        Ok(())
    }

    fn refuse(&self, reason: String, stale: bool) -> Refusal {
        let mut state = lock(&self.state);
        self.refuse_locked(&mut state, &reason, stale)
    }

    /// A refusal with a fresh challenge (and for Digest a fresh nonce).
    fn refuse_locked(&self, state: &mut GateState, reason: &str, stale: bool) -> Refusal {
        let spec = &self.spec;
        let challenge = match &spec.scheme {
            ServerScheme::Basic => format!("Basic realm={}, charset=\"UTF-8\"", quote(&spec.realm)),
            ServerScheme::Digest {
                algorithm,
                userhash,
                ..
            } => {
                state.issued += 1;
                let nonce = ServerDigestAlgorithm::Sha256
                    .hash(&format!("nonce-{}-{}", state.issued, spec.realm))[..32]
                    .to_string();
                state.nonces.insert(nonce.clone(), NonceState::default());
                let mut c = format!(
                    "Digest realm={}, qop=\"auth\", algorithm={}, nonce=\"{nonce}\", \
                     opaque=\"{OPAQUE}\", charset=UTF-8",
                    quote(&spec.realm),
                    algorithm.name()
                );
                if *userhash {
                    c.push_str(", userhash=true");
                }
                if stale {
                    c.push_str(", stale=true");
                }
                c
            }
        };
        let header = if spec.proxy {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        Refusal {
            status: spec.status(),
            headers: vec![(header.to_string(), challenge)],
            reason: format!("{reason}\n"),
        }
    }
}

/// `value` as a quoted string, `"` and `\` escaped.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// RFC 8187 `value-chars`, as the client must send `username*`.
fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}
