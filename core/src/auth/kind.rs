//! `BG_AUTH_TARGET` and `BG_AUTH_SCHEME`: BITS' numbers, names, and how text and integers from
//! the CLI or a store record become them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::codes::{BG_E_INVALID_AUTH_SCHEME, BG_E_INVALID_AUTH_TARGET};
use crate::BitsError;

/// Who asks for the credentials: `BG_AUTH_TARGET`, with BITS' values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u32)]
pub enum AuthTarget {
    /// `BG_AUTH_TARGET_SERVER`: the origin server (401, `WWW-Authenticate`).
    Server = 1,
    /// `BG_AUTH_TARGET_PROXY`: the proxy (407, `Proxy-Authenticate`).
    Proxy = 2,
}

/// How to authenticate: `BG_AUTH_SCHEME`, with BITS' values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u32)]
pub enum AuthScheme {
    /// `BG_AUTH_SCHEME_BASIC` (RFC 7617).
    Basic = 1,
    /// `BG_AUTH_SCHEME_DIGEST` (RFC 7616).
    Digest = 2,
    /// `BG_AUTH_SCHEME_NTLM`.
    Ntlm = 3,
    /// `BG_AUTH_SCHEME_NEGOTIATE` (SPNEGO: Kerberos, falling back to NTLM).
    Negotiate = 4,
    /// `BG_AUTH_SCHEME_PASSPORT`: accepted as BITS does, never answered (no server offers it).
    Passport = 5,
}

impl AuthTarget {
    /// Both targets, in BITS' order.
    pub const ALL: [AuthTarget; 2] = [AuthTarget::Server, AuthTarget::Proxy];

    /// The target with BITS' numeric value, or `BG_E_INVALID_AUTH_TARGET`.
    pub fn from_u32(value: u32) -> Result<Self, BitsError> {
        match value {
            1 => Ok(Self::Server),
            2 => Ok(Self::Proxy),
            other => Err(invalid_target(&other.to_string())),
        }
    }

    /// BITS' name, e.g. `BG_AUTH_TARGET_SERVER`.
    pub fn bits_name(self) -> &'static str {
        match self {
            Self::Server => "BG_AUTH_TARGET_SERVER",
            Self::Proxy => "BG_AUTH_TARGET_PROXY",
        }
    }

    /// The status a refusal by this target carries: 401 for a server, 407 for a proxy.
    pub fn refusal_status(self) -> u16 {
        match self {
            Self::Server => 401,
            Self::Proxy => 407,
        }
    }
}

impl AuthScheme {
    /// Every scheme, in BITS' order.
    pub const ALL: [AuthScheme; 5] = [
        AuthScheme::Basic,
        AuthScheme::Digest,
        AuthScheme::Ntlm,
        AuthScheme::Negotiate,
        AuthScheme::Passport,
    ];

    /// The scheme with BITS' numeric value, or `BG_E_INVALID_AUTH_SCHEME`.
    pub fn from_u32(value: u32) -> Result<Self, BitsError> {
        match value {
            1 => Ok(Self::Basic),
            2 => Ok(Self::Digest),
            3 => Ok(Self::Ntlm),
            4 => Ok(Self::Negotiate),
            5 => Ok(Self::Passport),
            other => Err(invalid_scheme(&other.to_string())),
        }
    }

    /// BITS' name, e.g. `BG_AUTH_SCHEME_DIGEST`.
    pub fn bits_name(self) -> &'static str {
        match self {
            Self::Basic => "BG_AUTH_SCHEME_BASIC",
            Self::Digest => "BG_AUTH_SCHEME_DIGEST",
            Self::Ntlm => "BG_AUTH_SCHEME_NTLM",
            Self::Negotiate => "BG_AUTH_SCHEME_NEGOTIATE",
            Self::Passport => "BG_AUTH_SCHEME_PASSPORT",
        }
    }

    /// The scheme a challenge names (`Basic`, `Digest`, `NTLM`, `Negotiate`, `Passport1.4`),
    /// compared without case (RFC 9110 §11.1); `None` for any other scheme.
    pub fn from_challenge_scheme(name: &str) -> Option<Self> {
        [
            ("basic", Self::Basic),
            ("digest", Self::Digest),
            ("ntlm", Self::Ntlm),
            ("negotiate", Self::Negotiate),
            ("passport1.4", Self::Passport),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, scheme)| scheme)
    }

    /// True for the schemes where no user and no password mean "the logged-on user".
    pub fn allows_implicit(self) -> bool {
        matches!(self, Self::Ntlm | Self::Negotiate)
    }
}

/// Case-insensitive `server` / `proxy`, or BITS' numbers `1` / `2`.
impl FromStr for AuthTarget {
    type Err = BitsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u32>() {
            return Self::from_u32(n);
        }
        Self::ALL
            .into_iter()
            .find(|t| t.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| invalid_target(s))
    }
}

/// Case-insensitive `basic`, `digest`, `ntlm`, `negotiate`, `passport`, or BITS' numbers
/// `1`..`5`.
impl FromStr for AuthScheme {
    type Err = BitsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u32>() {
            return Self::from_u32(n);
        }
        Self::ALL
            .into_iter()
            .find(|t| t.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| invalid_scheme(s))
    }
}

/// `server` or `proxy`.
impl fmt::Display for AuthTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Server => "server",
            Self::Proxy => "proxy",
        })
    }
}

/// The HTTP name: `Basic`, `Digest`, `NTLM`, `Negotiate`, `Passport`.
impl fmt::Display for AuthScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Basic => "Basic",
            Self::Digest => "Digest",
            Self::Ntlm => "NTLM",
            Self::Negotiate => "Negotiate",
            Self::Passport => "Passport",
        })
    }
}

fn invalid_target(given: &str) -> BitsError {
    BitsError::new(
        BG_E_INVALID_AUTH_TARGET,
        format!("`{given}` is not an authentication target: use server (1) or proxy (2)"),
    )
}

fn invalid_scheme(given: &str) -> BitsError {
    BitsError::new(
        BG_E_INVALID_AUTH_SCHEME,
        format!(
            "`{given}` is not an authentication scheme: use basic (1), digest (2), ntlm (3), \
             negotiate (4) or passport (5)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_numbers_map_to_targets_and_schemes() {
        assert_eq!(AuthTarget::from_u32(1), Ok(AuthTarget::Server));
        assert_eq!(AuthTarget::from_u32(2), Ok(AuthTarget::Proxy));
        for scheme in AuthScheme::ALL {
            assert_eq!(AuthScheme::from_u32(scheme as u32), Ok(scheme));
        }
        assert_eq!(AuthScheme::Passport as u32, 5);
    }

    #[test]
    fn unknown_target_number_is_invalid_auth_target() {
        for n in [0, 3, u32::MAX] {
            let err = AuthTarget::from_u32(n).unwrap_err();
            assert_eq!(err.code(), BG_E_INVALID_AUTH_TARGET);
            assert_eq!(err.code().0, 0x8020_0027);
        }
    }

    #[test]
    fn unknown_scheme_number_is_invalid_auth_scheme() {
        for n in [0, 6, u32::MAX] {
            let err = AuthScheme::from_u32(n).unwrap_err();
            assert_eq!(err.code(), BG_E_INVALID_AUTH_SCHEME);
            assert_eq!(err.code().0, 0x8020_0028);
        }
    }

    #[test]
    fn names_parse_without_case_and_numbers_parse_too() {
        assert_eq!("SERVER".parse(), Ok(AuthTarget::Server));
        assert_eq!(" proxy ".parse(), Ok(AuthTarget::Proxy));
        assert_eq!("2".parse(), Ok(AuthTarget::Proxy));
        assert_eq!("ntlm".parse(), Ok(AuthScheme::Ntlm));
        assert_eq!("NeGoTiAtE".parse(), Ok(AuthScheme::Negotiate));
        assert_eq!("Passport".parse(), Ok(AuthScheme::Passport));
        assert_eq!("2".parse(), Ok(AuthScheme::Digest));
        assert_eq!("5".parse(), Ok(AuthScheme::Passport));
    }

    #[test]
    fn unknown_names_are_refused_with_the_bits_code_and_the_name() {
        let err = "origin".parse::<AuthTarget>().unwrap_err();
        assert_eq!(err.code(), BG_E_INVALID_AUTH_TARGET);
        assert!(err.detail().contains("`origin`"), "{err}");
        let err = "kerberos".parse::<AuthScheme>().unwrap_err();
        assert_eq!(err.code(), BG_E_INVALID_AUTH_SCHEME);
        assert!(err.detail().contains("`kerberos`"), "{err}");
        assert_eq!(
            "0".parse::<AuthScheme>().unwrap_err().code(),
            BG_E_INVALID_AUTH_SCHEME
        );
    }

    #[test]
    fn challenge_scheme_names_are_matched_without_case() {
        assert_eq!(
            AuthScheme::from_challenge_scheme("DIGEST"),
            Some(AuthScheme::Digest)
        );
        assert_eq!(
            AuthScheme::from_challenge_scheme("Passport1.4"),
            Some(AuthScheme::Passport)
        );
        assert_eq!(AuthScheme::from_challenge_scheme("Bearer"), None);
    }
}
