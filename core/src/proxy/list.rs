//! The OVERRIDE proxy list: WinHTTP's `[protocol=][scheme://]server[:port]` entries.
//!
//! Entries are separated by `;`, `,` or white space (the SDK says spaces, bitsadmin says
//! commas, IE writes semicolons: all three are accepted). `http=` and `https=` entries serve only
//! URLs of that scheme; when a scheme has none, the entries without a prefix serve it. IE's
//! `ftp=`, `gopher=` and `socks=` entries never apply to a BITS download and are skipped.

use super::endpoint::{parse_proxy, redact};
use super::{ProxyEndpoint, ProxyError};

/// The URL schemes a download can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scheme {
    Http,
    Https,
}

/// A parsed proxy list, in the order given.
#[derive(Debug)]
pub(super) struct ProxyList {
    entries: Vec<(Option<Scheme>, ProxyEndpoint)>,
}

/// Splits a list on `;`, `,` and white space, dropping empty entries.
pub(super) fn split_entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
}

impl ProxyList {
    /// Every entry is checked, even those for the other scheme: a bad list is bad for all.
    pub(super) fn parse(list: &str) -> Result<Self, ProxyError> {
        let mut entries = Vec::new();
        for entry in split_entries(list) {
            let invalid = |reason: String| ProxyError::InvalidEntry {
                place: "the proxy list".into(),
                entry: redact(entry),
                reason,
            };
            let (scheme, proxy) = match protocol_prefix(entry) {
                Some((protocol, proxy)) => match protocol.to_ascii_lowercase().as_str() {
                    "http" => (Some(Scheme::Http), proxy),
                    "https" => (Some(Scheme::Https), proxy),
                    "ftp" | "gopher" | "socks" => continue,
                    other => {
                        return Err(invalid(format!(
                            "unknown protocol {other:?} before '=': expected http= or https="
                        )))
                    }
                },
                None => (None, entry),
            };
            entries.push((scheme, parse_proxy(proxy).map_err(invalid)?));
        }
        if entries.is_empty() {
            return Err(ProxyError::EmptyProxyList);
        }
        Ok(Self { entries })
    }

    /// The proxies for a URL of `scheme`, in list order: its own entries, or else the generic ones.
    pub(super) fn for_scheme(&self, scheme: Scheme) -> Vec<ProxyEndpoint> {
        let pick = |want: Option<Scheme>| -> Vec<ProxyEndpoint> {
            self.entries
                .iter()
                .filter(|(s, _)| *s == want)
                .map(|(_, p)| p.clone())
                .collect()
        };
        let specific = pick(Some(scheme));
        if specific.is_empty() {
            pick(None)
        } else {
            specific
        }
    }
}

/// `protocol=rest`, when the text before the first `=` is a bare word (so a `=` inside a
/// password or after `://` is not taken for one).
fn protocol_prefix(entry: &str) -> Option<(&str, &str)> {
    let (protocol, rest) = entry.split_once('=')?;
    protocol
        .bytes()
        .all(|b| b.is_ascii_alphanumeric())
        .then_some((protocol, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &ProxyList, scheme: Scheme) -> Vec<String> {
        list.for_scheme(scheme)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_separator_splits_and_order_is_kept() {
        let list = ProxyList::parse(" a:1;b:2, c:3\td:4\n").unwrap();
        assert_eq!(
            hosts(&list, Scheme::Http),
            ["http://a:1", "http://b:2", "http://c:3", "http://d:4"]
        );
    }

    #[test]
    fn per_scheme_entries_win_and_generic_ones_are_the_fallback() {
        let list = ProxyList::parse("https=secure:8443 plain:3128 HTTP=web:8080").unwrap();
        assert_eq!(hosts(&list, Scheme::Http), ["http://web:8080"]);
        assert_eq!(hosts(&list, Scheme::Https), ["http://secure:8443"]);
        let only_https = ProxyList::parse("https=secure:8443").unwrap();
        assert!(only_https.for_scheme(Scheme::Http).is_empty());
    }

    #[test]
    fn ie_entries_for_other_protocols_are_skipped() {
        let list = ProxyList::parse("ftp=f:21;socks=s:1080;http=h:80").unwrap();
        assert_eq!(hosts(&list, Scheme::Http), ["http://h:80"]);
        assert!(list.for_scheme(Scheme::Https).is_empty());
    }

    #[test]
    fn socks5_entries_mix_with_http_ones() {
        let list = ProxyList::parse("socks5://u:p%3D@s:1080 h:3128").unwrap();
        assert_eq!(
            hosts(&list, Scheme::Https),
            ["socks5://u@s:1080", "http://h:3128"]
        );
    }

    #[test]
    fn a_bad_entry_anywhere_fails_the_list_naming_it_without_its_password() {
        let err = ProxyList::parse("good:1 https=socks5://u:hunter2@bad:99999").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("socks5://u:***@bad:99999"), "{text}");
        assert!(text.contains("not a port"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let err = ProxyList::parse("smtp=m:25").unwrap_err().to_string();
        assert!(err.contains("unknown protocol \"smtp\""), "{err}");
    }

    #[test]
    fn an_empty_list_is_an_error() {
        assert_eq!(
            ProxyList::parse(" ;, ").unwrap_err(),
            ProxyError::EmptyProxyList
        );
        assert_eq!(
            ProxyList::parse("ftp=f:21").unwrap_err(),
            ProxyError::EmptyProxyList
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_lists_never_panic(list in "\\PC{0,80}") {
            if let Ok(parsed) = ProxyList::parse(&list) {
                let _ = parsed.for_scheme(Scheme::Http);
            }
        }
    }
}
