//! `SetProxySettings`: the job's proxy usage and its two lists, with BITS' argument rules.
//!
//! Only the *arguments* are checked here. The lists' syntax is checked when a connection is
//! routed ([`route`](super::route)), as BITS does: a bad entry puts the job in `ERROR` with
//! `BG_E_INVALID_PROXY_INFO` at run time, not at the call.

use serde::{Deserialize, Serialize};

use crate::codes;
use crate::error::BitsError;

/// Longest proxy or bypass list accepted, in characters.
///
/// The SDK's parameter text says 4,000 characters, but BITS has dedicated codes
/// (`BG_E_PROXY_LIST_TOO_LARGE`, `BG_E_PROXY_BYPASS_LIST_TOO_LARGE`) documented as "32 KB":
/// we follow the codes, the larger limit, so no list BITS accepts is refused.
pub const MAX_PROXY_LIST_CHARS: usize = 32_768;

/// `BG_JOB_PROXY_USAGE`: where a job's proxy comes from.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[repr(u32)]
pub enum ProxyUsage {
    /// `BG_JOB_PROXY_USAGE_PRECONFIG` (0), the default: the system's settings. On Unix that is
    /// the `http_proxy` / `https_proxy` / `all_proxy` / `no_proxy` environment
    /// ([`ProxyEnvironment`](super::ProxyEnvironment)).
    #[default]
    Preconfig = 0,
    /// `BG_JOB_PROXY_USAGE_NO_PROXY` (1): always connect directly.
    NoProxy = 1,
    /// `BG_JOB_PROXY_USAGE_OVERRIDE` (2): the job's own proxy list and bypass list.
    Override = 2,
    /// `BG_JOB_PROXY_USAGE_AUTODETECT` (3): WPAD. Refused with `E_NOTIMPL` until WPAD is built.
    Autodetect = 3,
}

impl ProxyUsage {
    /// The usage with BITS' numeric value; `None` for any other number.
    pub fn from_u32(value: u32) -> Option<Self> {
        match value {
            0 => Some(Self::Preconfig),
            1 => Some(Self::NoProxy),
            2 => Some(Self::Override),
            3 => Some(Self::Autodetect),
            _ => None,
        }
    }

    /// BITS' name, as bitsadmin spells it (`PRECONFIG`, `NO_PROXY`, `OVERRIDE`, `AUTODETECT`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Preconfig => "PRECONFIG",
            Self::NoProxy => "NO_PROXY",
            Self::Override => "OVERRIDE",
            Self::Autodetect => "AUTODETECT",
        }
    }
}

impl std::fmt::Display for ProxyUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses bitsadmin's names, PowerShell's (`SystemDefault`, `NoProxy`, `Override`,
/// `AutoDetect`) and the numbers 0–3, ignoring case. Anything else is `E_NOTIMPL`, the code
/// BITS gives an unknown usage.
impl std::str::FromStr for ProxyUsage {
    type Err = BitsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let upper = text.trim().to_ascii_uppercase();
        let usage = match upper.as_str() {
            "PRECONFIG" | "SYSTEMDEFAULT" => Some(Self::Preconfig),
            "NO_PROXY" | "NOPROXY" => Some(Self::NoProxy),
            "OVERRIDE" => Some(Self::Override),
            "AUTODETECT" => Some(Self::Autodetect),
            number => number.parse().ok().and_then(Self::from_u32),
        };
        usage.ok_or_else(|| {
            BitsError::new(
                codes::E_NOTIMPL,
                format!(
                    "{text:?} is not a proxy usage: expected PRECONFIG, NO_PROXY, OVERRIDE, \
                     AUTODETECT or 0-3"
                ),
            )
        })
    }
}

/// A job's proxy settings, as `SetProxySettings` stores them (`GetProxySettings` reads them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxySettings {
    usage: ProxyUsage,
    proxy_list: Option<String>,
    bypass_list: Option<String>,
}

impl ProxySettings {
    /// `SetProxySettings(usage, list, bypass)` with BITS' argument rules:
    ///
    /// - both lists must be `None` unless `usage` is OVERRIDE (`E_INVALIDARG`), and OVERRIDE
    ///   needs a proxy list (`E_INVALIDARG`; the bypass list may be `None`);
    /// - a list longer than [`MAX_PROXY_LIST_CHARS`] is `BG_E_PROXY_LIST_TOO_LARGE` or
    ///   `BG_E_PROXY_BYPASS_LIST_TOO_LARGE`;
    /// - AUTODETECT is `E_NOTIMPL`: backhaul has no WPAD yet.
    ///
    /// The lists' syntax is not checked here (see the module docs).
    pub fn new(
        usage: ProxyUsage,
        proxy_list: Option<String>,
        bypass_list: Option<String>,
    ) -> Result<Self, BitsError> {
        let invalid = |why: &str| BitsError::new(codes::E_INVALIDARG, why);
        if usage != ProxyUsage::Override && (proxy_list.is_some() || bypass_list.is_some()) {
            return Err(invalid(&format!(
                "proxy and bypass lists are only allowed with OVERRIDE, not {usage}"
            )));
        }
        if usage == ProxyUsage::Override && proxy_list.is_none() {
            return Err(invalid("OVERRIDE needs a proxy list"));
        }
        check_length(
            proxy_list.as_deref(),
            codes::BG_E_PROXY_LIST_TOO_LARGE,
            "proxy",
        )?;
        check_length(
            bypass_list.as_deref(),
            codes::BG_E_PROXY_BYPASS_LIST_TOO_LARGE,
            "bypass",
        )?;
        if usage == ProxyUsage::Autodetect {
            return Err(BitsError::new(
                codes::E_NOTIMPL,
                "AUTODETECT (WPAD) is not implemented yet: use PRECONFIG or OVERRIDE",
            ));
        }
        Ok(Self {
            usage,
            proxy_list,
            bypass_list,
        })
    }

    /// Where the job's proxy comes from.
    pub fn usage(&self) -> ProxyUsage {
        self.usage
    }

    /// The OVERRIDE proxy list, as given.
    pub fn proxy_list(&self) -> Option<&str> {
        self.proxy_list.as_deref()
    }

    /// The OVERRIDE bypass list, as given.
    pub fn bypass_list(&self) -> Option<&str> {
        self.bypass_list.as_deref()
    }
}

fn check_length(list: Option<&str>, code: crate::HResult, which: &str) -> Result<(), BitsError> {
    let chars = list.map_or(0, |l| l.chars().count());
    if chars > MAX_PROXY_LIST_CHARS {
        return Err(BitsError::new(
            code,
            format!("the {which} list has {chars} characters; at most {MAX_PROXY_LIST_CHARS} are allowed"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn usage_values_and_names_are_bits_ones() {
        for (n, usage) in [
            (0, ProxyUsage::Preconfig),
            (1, ProxyUsage::NoProxy),
            (2, ProxyUsage::Override),
            (3, ProxyUsage::Autodetect),
        ] {
            assert_eq!(usage as u32, n);
            assert_eq!(ProxyUsage::from_u32(n), Some(usage));
            assert_eq!(n.to_string().parse::<ProxyUsage>(), Ok(usage));
            assert_eq!(usage.name().parse::<ProxyUsage>(), Ok(usage));
        }
        assert_eq!(ProxyUsage::from_u32(4), None);
        assert_eq!("systemdefault".parse(), Ok(ProxyUsage::Preconfig));
        assert_eq!("NoProxy".parse(), Ok(ProxyUsage::NoProxy));
        assert_eq!(ProxyUsage::default(), ProxyUsage::Preconfig);
    }

    #[test]
    fn unknown_usage_is_e_notimpl_naming_the_value() {
        let err = "WPAD".parse::<ProxyUsage>().unwrap_err();
        assert_eq!(err.code(), codes::E_NOTIMPL);
        assert!(err.detail().contains("\"WPAD\""), "{err}");
        assert_eq!(
            "4".parse::<ProxyUsage>().unwrap_err().code(),
            codes::E_NOTIMPL
        );
    }

    #[test]
    fn lists_without_override_are_invalid_arguments() {
        for usage in [ProxyUsage::Preconfig, ProxyUsage::NoProxy] {
            for (list, bypass) in [
                (some("p:80"), None),
                (None, some("<local>")),
                (some(""), None),
            ] {
                let err = ProxySettings::new(usage, list, bypass).unwrap_err();
                assert_eq!(err.code(), codes::E_INVALIDARG, "{usage}");
            }
            assert_eq!(
                ProxySettings::new(usage, None, None).unwrap().usage(),
                usage
            );
        }
    }

    #[test]
    fn override_needs_a_proxy_list_but_not_a_bypass_list() {
        let err = ProxySettings::new(ProxyUsage::Override, None, some("<local>")).unwrap_err();
        assert_eq!(err.code(), codes::E_INVALIDARG);
        let ok = ProxySettings::new(ProxyUsage::Override, some("proxy:3128"), None).unwrap();
        assert_eq!(
            (ok.proxy_list(), ok.bypass_list()),
            (Some("proxy:3128"), None)
        );
    }

    #[test]
    fn override_stores_lists_without_checking_their_syntax() {
        // BITS reports a bad entry at run time (BG_E_INVALID_PROXY_INFO), not here.
        let ok = ProxySettings::new(ProxyUsage::Override, some("::: not a proxy"), some("a*b"));
        assert!(ok.is_ok());
    }

    #[test]
    fn lists_over_32768_characters_have_their_own_codes() {
        let long = "p".repeat(MAX_PROXY_LIST_CHARS + 1);
        let at_limit = "é".repeat(MAX_PROXY_LIST_CHARS);
        assert!(
            ProxySettings::new(ProxyUsage::Override, Some(at_limit.clone()), Some(at_limit))
                .is_ok()
        );
        let err = ProxySettings::new(ProxyUsage::Override, Some(long.clone()), None).unwrap_err();
        assert_eq!(err.code(), codes::BG_E_PROXY_LIST_TOO_LARGE);
        let err = ProxySettings::new(ProxyUsage::Override, some("p"), Some(long)).unwrap_err();
        assert_eq!(err.code(), codes::BG_E_PROXY_BYPASS_LIST_TOO_LARGE);
    }

    #[test]
    fn autodetect_is_not_implemented_yet() {
        let err = ProxySettings::new(ProxyUsage::Autodetect, None, None).unwrap_err();
        assert_eq!(err.code(), codes::E_NOTIMPL);
        assert!(err.detail().contains("WPAD"), "{err}");
    }
}
