//! The OVERRIDE bypass list: hosts reached directly, in WinHTTP's format.
//!
//! Entries (separated like the proxy list) are matched without regard to case:
//! - `<local>`: every host *name* without a dot (`intranet`, `localhost`); not IP literals;
//! - `*`: every host;
//! - `*suffix`: a wildcard, only as the leftmost character (`*.example.com`, `*example.com`);
//! - a host name or IP literal (`10.0.0.1`, `::1`, `[::1]`), which matches only itself;
//! - any of the last two with `:port`, which then matches only that port.

use std::net::IpAddr;

use super::endpoint::{check_name, parse_host_port, parse_port, redact, TargetHost};
use super::list::split_entries;
use super::ProxyError;

/// A parsed bypass list.
#[derive(Debug, Default)]
pub(super) struct BypassList {
    rules: Vec<Rule>,
}

#[derive(Debug, PartialEq, Eq)]
enum Rule {
    Local,
    All,
    /// The host ends with this (lowercase) text.
    Suffix(String, Option<u16>),
    Exact(String, Option<u16>),
    Ip(IpAddr, Option<u16>),
}

impl BypassList {
    pub(super) fn parse(list: &str) -> Result<Self, ProxyError> {
        let rules = split_entries(list)
            .map(|entry| {
                parse_rule(entry).map_err(|reason| ProxyError::InvalidEntry {
                    place: "the bypass list".into(),
                    entry: redact(entry),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// Whether a URL for `host` (as the URL spells it) and `port` goes direct.
    pub(super) fn matches(&self, host: &TargetHost, port: u16) -> bool {
        self.rules.iter().any(|rule| rule_matches(rule, host, port))
    }
}

fn parse_rule(entry: &str) -> Result<Rule, String> {
    if entry.eq_ignore_ascii_case("<local>") {
        return Ok(Rule::Local);
    }
    if entry == "*" {
        return Ok(Rule::All);
    }
    if let Some(suffix) = entry.strip_prefix('*') {
        let (suffix, port) = split_port(suffix)?;
        if suffix.contains('*') {
            return Err("a wildcard is only allowed as the leftmost character".into());
        }
        check_name(suffix.trim_start_matches('.'))?;
        return Ok(Rule::Suffix(suffix.to_ascii_lowercase(), port));
    }
    if entry.contains('*') {
        return Err("a wildcard is only allowed as the leftmost character".into());
    }
    // A bare IPv6 literal has colons of its own: try it whole first.
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(Rule::Ip(ip, None));
    }
    let (host, port) = parse_host_port(entry)?;
    Ok(match host.parse::<IpAddr>() {
        Ok(ip) => Rule::Ip(ip, port),
        Err(_) => Rule::Exact(host, port),
    })
}

/// `text` and its `:port`, if any.
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(parse_port(port)?))),
        None => Ok((text, None)),
    }
}

fn rule_matches(rule: &Rule, host: &TargetHost, port: u16) -> bool {
    let port_ok = |want: &Option<u16>| want.is_none_or(|p| p == port);
    match rule {
        Rule::Local => host.ip.is_none() && !host.name.contains('.'),
        Rule::All => true,
        Rule::Suffix(suffix, want) => {
            host.ip.is_none() && host.name.ends_with(suffix.as_str()) && port_ok(want)
        }
        Rule::Exact(name, want) => host.ip.is_none() && host.name == *name && port_ok(want),
        Rule::Ip(ip, want) => host.ip == Some(*ip) && port_ok(want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bypasses(list: &str, host: &str, port: u16) -> bool {
        BypassList::parse(list)
            .unwrap()
            .matches(&TargetHost::new(host), port)
    }

    #[test]
    fn local_matches_names_without_a_dot_but_not_ip_literals() {
        for host in ["intranet", "LOCALHOST", "files"] {
            assert!(bypasses("<local>", host, 80), "{host}");
        }
        for host in ["a.example", "127.0.0.1", "[::1]"] {
            assert!(!bypasses("<LOCAL>", host, 80), "{host}");
        }
    }

    #[test]
    fn leftmost_wildcard_matches_any_prefix_case_insensitively() {
        assert!(bypasses("*.example.com", "a.b.EXAMPLE.com", 443));
        assert!(!bypasses("*.example.com", "example.com", 443));
        assert!(bypasses("*example.com", "example.com", 443));
        assert!(bypasses("*example.com", "notexample.com", 443));
        assert!(!bypasses("*.example.com", "example.com.evil", 443));
        assert!(bypasses("*", "anything.at.all", 1));
    }

    #[test]
    fn exact_hosts_and_ips_match_only_themselves() {
        assert!(bypasses("Files.Corp", "files.corp", 80));
        assert!(!bypasses("files.corp", "x.files.corp", 80));
        assert!(bypasses("10.0.0.1", "10.0.0.1", 80));
        assert!(!bypasses("10.0.0.1", "10.0.0.10", 80));
        assert!(bypasses("::1", "[::1]", 80));
        assert!(bypasses("[0:0::1]", "[::1]", 80));
        assert!(!bypasses("10.0.0.1", "10.0.0.1.example", 80));
    }

    #[test]
    fn a_port_restricts_the_match_to_that_port() {
        assert!(bypasses("files.corp:8080", "files.corp", 8080));
        assert!(!bypasses("files.corp:8080", "files.corp", 80));
        assert!(bypasses("*.corp:443", "a.corp", 443));
        assert!(!bypasses("*.corp:443", "a.corp", 80));
        assert!(bypasses("[::1]:81", "[::1]", 81));
        assert!(!bypasses("127.0.0.1:81", "127.0.0.1", 80));
    }

    #[test]
    fn wildcards_elsewhere_and_junk_are_refused_naming_the_entry() {
        for (list, entry, reason) in [
            ("a.*.com", "a.*.com", "leftmost"),
            ("ok 10.*", "10.*", "leftmost"),
            ("**.a", "**.a", "leftmost"),
            ("*.a:x", "*.a:x", "not a port"),
            ("a b/c", "b/c", "not allowed"),
            ("http://x", "http://x", "not a port"),
        ] {
            let err = BypassList::parse(list).unwrap_err().to_string();
            assert!(err.contains(reason), "{list:?}: {err}");
            assert!(err.contains(&format!("{entry:?}")), "{list:?}: {err}");
        }
    }

    #[test]
    fn an_empty_list_bypasses_nothing() {
        assert!(!bypasses("", "intranet", 80));
        assert!(!bypasses(" ; ", "intranet", 80));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bypass_lists_and_hosts_never_panic(list in "\\PC{0,60}", host in "\\PC{0,30}", port: u16) {
            if let Ok(parsed) = BypassList::parse(&list) {
                let _ = parsed.matches(&TargetHost::new(&host), port);
            }
        }

        #[test]
        fn a_wildcard_suffix_matches_exactly_the_hosts_ending_with_it(
            label in "[a-z0-9-]{1,10}",
            suffix in "(\\.[a-z0-9-]{1,8}){1,3}",
            other in "[a-z0-9.-]{1,20}",
        ) {
            let list = BypassList::parse(&format!("*{suffix}")).unwrap();
            let inside = format!("{label}{suffix}");
            proptest::prop_assert!(list.matches(&TargetHost::new(&inside), 80));
            let other = TargetHost::new(&other);
            proptest::prop_assert_eq!(
                list.matches(&other, 80),
                other.ip.is_none() && other.name.ends_with(suffix.as_str())
            );
        }
    }
}
