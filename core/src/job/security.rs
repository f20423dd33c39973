//! `SetSecurityFlags`: which certificate failures a job ignores, whether it checks revocation,
//! and how it treats redirects — BITS' raw `u32` and a typed builder over the same bits.

use serde::{Deserialize, Serialize};

use crate::codes;
use crate::error::BitsError;

/// A job's `BG_SSL_*` / `BG_HTTP_REDIRECT_POLICY_*` flags, always a valid combination.
///
/// Build it from BITS' raw value with [`SecurityFlags::from_bits`] (what `SetSecurityFlags`
/// takes), or with the typed methods:
///
/// ```
/// use backhaul_core::job::{RedirectPolicy, SecurityFlags};
///
/// let flags = SecurityFlags::default()
///     .with_crl_check(true)
///     .with_redirect_policy(RedirectPolicy::AllowReport);
/// assert_eq!(flags.bits(), 0x0101);
/// assert_eq!(SecurityFlags::from_bits(0x0101).unwrap(), flags);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct SecurityFlags(u32);

impl SecurityFlags {
    /// `BG_SSL_ENABLE_CRL_CHECK`: check every certificate of the chain against its CRL.
    pub const ENABLE_CRL_CHECK: u32 = 0x0001;
    /// `BG_SSL_IGNORE_CERT_CN_INVALID`: accept a certificate issued for another host name.
    pub const IGNORE_CERT_CN_INVALID: u32 = 0x0002;
    /// `BG_SSL_IGNORE_CERT_DATE_INVALID`: accept an expired or not yet valid certificate.
    pub const IGNORE_CERT_DATE_INVALID: u32 = 0x0004;
    /// `BG_SSL_IGNORE_UNKNOWN_CA`: accept a chain that ends at no trusted root.
    pub const IGNORE_UNKNOWN_CA: u32 = 0x0008;
    /// `BG_SSL_IGNORE_CERT_WRONG_USAGE`: accept a certificate not meant for TLS servers.
    pub const IGNORE_CERT_WRONG_USAGE: u32 = 0x0010;
    /// `BG_HTTP_REDIRECT_POLICY_MASK`: the bits holding the redirect policy.
    pub const REDIRECT_POLICY_MASK: u32 = 0x0700;
    /// `BG_HTTP_REDIRECT_POLICY_ALLOW_HTTPS_TO_HTTP`: follow a redirect from https to http.
    pub const ALLOW_HTTPS_TO_HTTP: u32 = 0x0800;

    const SSL_BITS: u32 = 0x001F;
    const KNOWN_BITS: u32 = Self::SSL_BITS | Self::REDIRECT_POLICY_MASK | Self::ALLOW_HTTPS_TO_HTTP;

    /// The flags for BITS' raw value, or `E_NOTIMPL` (as `SetSecurityFlags` returns) for a bit
    /// BITS does not define or a redirect policy that is none of the three.
    pub fn from_bits(bits: u32) -> Result<Self, BitsError> {
        let unknown = bits & !Self::KNOWN_BITS;
        if unknown != 0 {
            return Err(BitsError::new(
                codes::E_NOTIMPL,
                format!(
                    "security flags 0x{bits:04X} hold bits BITS does not define (0x{unknown:04X})"
                ),
            ));
        }
        RedirectPolicy::from_bits(bits & Self::REDIRECT_POLICY_MASK).ok_or_else(|| {
            BitsError::new(
                codes::E_NOTIMPL,
                format!(
                    "security flags 0x{bits:04X}: redirect policy 0x{:04X} is none of \
                     ALLOW_SILENT (0x0000), ALLOW_REPORT (0x0100), DISALLOW (0x0200)",
                    bits & Self::REDIRECT_POLICY_MASK
                ),
            )
        })?;
        Ok(Self(bits))
    }

    /// BITS' raw value (what `GetSecurityFlags` returns).
    pub fn bits(self) -> u32 {
        self.0
    }

    /// The `BG_SSL_*` bits alone: what a certificate is judged under.
    pub fn ssl_bits(self) -> u32 {
        self.0 & Self::SSL_BITS
    }

    /// Whether revocation is checked (`BG_SSL_ENABLE_CRL_CHECK`).
    pub fn crl_check(self) -> bool {
        self.has(Self::ENABLE_CRL_CHECK)
    }

    /// Whether a name mismatch is ignored (`BG_SSL_IGNORE_CERT_CN_INVALID`).
    pub fn ignore_cn_invalid(self) -> bool {
        self.has(Self::IGNORE_CERT_CN_INVALID)
    }

    /// Whether an expired or not yet valid certificate is ignored.
    pub fn ignore_date_invalid(self) -> bool {
        self.has(Self::IGNORE_CERT_DATE_INVALID)
    }

    /// Whether an untrusted root is ignored (`BG_SSL_IGNORE_UNKNOWN_CA`).
    pub fn ignore_unknown_ca(self) -> bool {
        self.has(Self::IGNORE_UNKNOWN_CA)
    }

    /// Whether a certificate without the serverAuth usage is ignored.
    pub fn ignore_wrong_usage(self) -> bool {
        self.has(Self::IGNORE_CERT_WRONG_USAGE)
    }

    /// The redirect policy.
    pub fn redirect_policy(self) -> RedirectPolicy {
        // Invariant: `from_bits` and the builders only ever store one of the three policies.
        RedirectPolicy::from_bits(self.0 & Self::REDIRECT_POLICY_MASK)
            .expect("SecurityFlags holds a valid redirect policy")
    }

    /// Whether an https → http redirect is followed.
    pub fn allow_https_to_http(self) -> bool {
        self.has(Self::ALLOW_HTTPS_TO_HTTP)
    }

    /// With revocation checking on or off.
    pub fn with_crl_check(self, on: bool) -> Self {
        self.with(Self::ENABLE_CRL_CHECK, on)
    }

    /// With name mismatches ignored or not.
    pub fn with_ignore_cn_invalid(self, on: bool) -> Self {
        self.with(Self::IGNORE_CERT_CN_INVALID, on)
    }

    /// With date failures ignored or not.
    pub fn with_ignore_date_invalid(self, on: bool) -> Self {
        self.with(Self::IGNORE_CERT_DATE_INVALID, on)
    }

    /// With unknown roots ignored or not.
    pub fn with_ignore_unknown_ca(self, on: bool) -> Self {
        self.with(Self::IGNORE_UNKNOWN_CA, on)
    }

    /// With wrong key usage ignored or not.
    pub fn with_ignore_wrong_usage(self, on: bool) -> Self {
        self.with(Self::IGNORE_CERT_WRONG_USAGE, on)
    }

    /// With this redirect policy.
    pub fn with_redirect_policy(self, policy: RedirectPolicy) -> Self {
        Self((self.0 & !Self::REDIRECT_POLICY_MASK) | policy.bits())
    }

    /// With https → http redirects allowed or not.
    pub fn with_allow_https_to_http(self, on: bool) -> Self {
        self.with(Self::ALLOW_HTTPS_TO_HTTP, on)
    }

    fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    fn with(self, flag: u32, on: bool) -> Self {
        if on {
            Self(self.0 | flag)
        } else {
            Self(self.0 & !flag)
        }
    }
}

impl TryFrom<u32> for SecurityFlags {
    type Error = BitsError;

    fn try_from(bits: u32) -> Result<Self, BitsError> {
        Self::from_bits(bits)
    }
}

impl From<SecurityFlags> for u32 {
    fn from(flags: SecurityFlags) -> u32 {
        flags.bits()
    }
}

/// `BG_HTTP_REDIRECT_POLICY_*`: what a download job does with a 3xx redirect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RedirectPolicy {
    /// `ALLOW_SILENT` (0x0000, the default): follow; the file keeps its remote name.
    #[default]
    AllowSilent,
    /// `ALLOW_REPORT` (0x0100): follow, and set the file's remote name to the final URL.
    AllowReport,
    /// `DISALLOW` (0x0200): the redirect is an error; the remote name becomes its target.
    Disallow,
}

impl RedirectPolicy {
    /// The policy's bits inside `BG_HTTP_REDIRECT_POLICY_MASK`.
    pub fn bits(self) -> u32 {
        match self {
            Self::AllowSilent => 0x0000,
            Self::AllowReport => 0x0100,
            Self::Disallow => 0x0200,
        }
    }

    fn from_bits(masked: u32) -> Option<Self> {
        match masked {
            0x0000 => Some(Self::AllowSilent),
            0x0100 => Some(Self::AllowReport),
            0x0200 => Some(Self::Disallow),
            _ => None,
        }
    }
}

impl std::str::FromStr for RedirectPolicy {
    type Err = BitsError;

    fn from_str(s: &str) -> Result<Self, BitsError> {
        match s.to_ascii_lowercase().as_str() {
            "silent" | "allow_silent" => Ok(Self::AllowSilent),
            "report" | "allow_report" => Ok(Self::AllowReport),
            "disallow" => Ok(Self::Disallow),
            _ => Err(BitsError::new(
                codes::E_INVALIDARG,
                format!("unknown redirect policy {s:?}: expected silent, report or disallow"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_defined_combination_round_trips() {
        for ssl in 0..=0x1F {
            for policy in [0x0000, 0x0100, 0x0200] {
                for https_to_http in [0, 0x0800] {
                    let bits = ssl | policy | https_to_http;
                    let flags = SecurityFlags::from_bits(bits).expect("defined combination");
                    assert_eq!(flags.bits(), bits);
                }
            }
        }
    }

    #[test]
    fn undefined_redirect_policies_are_not_implemented() {
        for policy in [0x0300, 0x0400, 0x0500, 0x0600, 0x0700] {
            let err = SecurityFlags::from_bits(policy).unwrap_err();
            assert_eq!(err.code(), codes::E_NOTIMPL, "0x{policy:04X}");
            assert!(err.to_string().contains("redirect policy"), "{err}");
        }
    }

    #[test]
    fn builder_sets_the_bits_bits_defines() {
        let flags = SecurityFlags::default()
            .with_crl_check(true)
            .with_ignore_cn_invalid(true)
            .with_ignore_date_invalid(true)
            .with_ignore_unknown_ca(true)
            .with_ignore_wrong_usage(true)
            .with_redirect_policy(RedirectPolicy::Disallow)
            .with_allow_https_to_http(true);
        assert_eq!(flags.bits(), 0x0A1F);
        let cleared = flags
            .with_crl_check(false)
            .with_redirect_policy(RedirectPolicy::AllowSilent);
        assert_eq!(cleared.bits(), 0x081E);
        assert!(!cleared.crl_check() && cleared.ignore_wrong_usage());
    }

    proptest! {
        #[test]
        fn any_bit_outside_the_defined_ones_is_not_implemented(bits in any::<u32>()) {
            let defined = bits & !0x0F1F == 0 && matches!(bits & 0x0700, 0 | 0x100 | 0x200);
            match SecurityFlags::from_bits(bits) {
                Ok(flags) => { prop_assert!(defined); prop_assert_eq!(flags.bits(), bits); }
                Err(e) => { prop_assert!(!defined); prop_assert_eq!(e.code(), codes::E_NOTIMPL); }
            }
        }
    }
}
