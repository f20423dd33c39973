//! PRECONFIG on Unix: the proxy environment variables, as curl and most Unix tools read them.
//!
//! Core reads no environment: the driver passes the variables in
//! ([`ProxyEnvironment::from_vars`]), and only these names are kept:
//!
//! - `http_proxy` for `http://` URLs, `https_proxy` for `https://` URLs, `all_proxy` for both
//!   when the scheme's own variable is unset. Each may be spelled in lowercase or uppercase; the
//!   lowercase one wins when both are set (curl's rule). An empty value counts as unset.
//! - Uppercase `HTTP_PROXY` is ignored when `REQUEST_METHOD` is set: under CGI, a request's
//!   `Proxy:` header arrives as `HTTP_PROXY` ("httpoxy"), so it is not the administrator's.
//! - `no_proxy` / `NO_PROXY`: comma- (or space-) separated; `*` bypasses every host; `.example.com`
//!   and `*.example.com` match subdomains only; `example.com` matches itself and its subdomains;
//!   an IP literal matches itself; `10.0.0.0/8` or `fd00::/8` match addresses in the range; any
//!   entry may end in `:port`, which then matches only that port.
//!
//! Loopback is not bypassed implicitly (curl does not either): add `localhost,127.0.0.1` to
//! `no_proxy` for that.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::endpoint::{check_name, parse_port, redact, TargetHost};
use super::list::Scheme;
use super::ProxyError;

/// The proxy variables of an environment, as given (values are parsed when a URL is routed,
/// so a bad one fails the job that uses it, naming the variable).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnvironment {
    /// Variable name → value, only for the names this module reads, non-empty values only.
    vars: BTreeMap<String, String>,
    /// `REQUEST_METHOD` is set: a CGI environment.
    cgi: bool,
}

/// Values may hold passwords (`http://user:secret@proxy`): printed redacted.
impl std::fmt::Debug for ProxyEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted: BTreeMap<&str, String> = self
            .vars
            .iter()
            .map(|(name, value)| (name.as_str(), redact(value)))
            .collect();
        f.debug_struct("ProxyEnvironment")
            .field("vars", &redacted)
            .field("cgi", &self.cgi)
            .finish()
    }
}

const NAMES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

impl ProxyEnvironment {
    /// Keeps the proxy variables among `vars` (e.g. `std::env::vars()` in a driver).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut env = Self::default();
        for (name, value) in vars {
            if name == "REQUEST_METHOD" {
                env.cgi = true;
            } else if NAMES.contains(&name.as_str()) && !value.trim().is_empty() {
                env.vars.insert(name, value.trim().to_string());
            }
        }
        env
    }

    /// No proxy variable is set.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The variable that names the proxy for `scheme`, and its value.
    pub(super) fn proxy_var(&self, scheme: Scheme) -> Option<(&str, &str)> {
        let own = match scheme {
            Scheme::Http if self.cgi => &["http_proxy"][..],
            Scheme::Http => &["http_proxy", "HTTP_PROXY"][..],
            Scheme::Https => &["https_proxy", "HTTPS_PROXY"][..],
        };
        own.iter()
            .chain(&["all_proxy", "ALL_PROXY"])
            .find_map(|name| self.vars.get_key_value(*name))
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Whether `no_proxy` sends this host and port direct.
    pub(super) fn bypasses(&self, host: &TargetHost, port: u16) -> Result<bool, ProxyError> {
        let Some((name, value)) = ["no_proxy", "NO_PROXY"]
            .iter()
            .find_map(|name| self.vars.get_key_value(*name))
        else {
            return Ok(false);
        };
        for entry in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let rule = parse_rule(entry).map_err(|reason| ProxyError::InvalidEntry {
                place: format!("environment variable {name}"),
                entry: entry.to_string(),
                reason,
            })?;
            if rule.matches(host, port) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[derive(Debug)]
enum Pattern {
    All,
    /// Subdomains of this (lowercase, without the leading dot) only.
    Subdomains(String),
    /// This domain and its subdomains.
    Domain(String),
    Net(IpAddr, u8),
}

#[derive(Debug)]
struct Rule {
    pattern: Pattern,
    port: Option<u16>,
}

fn parse_rule(entry: &str) -> Result<Rule, String> {
    if entry == "*" {
        return Ok(Rule {
            pattern: Pattern::All,
            port: None,
        });
    }
    let (body, port) = split_port(entry)?;
    let body = body.trim_start_matches('[').trim_end_matches(']');
    if let Some((addr, bits)) = body.split_once('/') {
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} before '/' is not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = bits
            .parse::<u8>()
            .ok()
            .filter(|&b| b <= max)
            .ok_or_else(|| format!("{bits:?} is not a prefix length (0-{max})"))?;
        return Ok(Rule {
            pattern: Pattern::Net(ip, bits),
            port,
        });
    }
    if let Ok(ip) = body.parse::<IpAddr>() {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        return Ok(Rule {
            pattern: Pattern::Net(ip, bits),
            port,
        });
    }
    let pattern = if let Some(rest) = body.strip_prefix("*.").or_else(|| body.strip_prefix('.')) {
        check_name(rest)?;
        Pattern::Subdomains(rest.to_ascii_lowercase())
    } else {
        check_name(body)?;
        Pattern::Domain(body.to_ascii_lowercase())
    };
    Ok(Rule { pattern, port })
}

/// `host:port` → port; a bare IPv6 literal (several colons, no brackets) has none.
fn split_port(entry: &str) -> Result<(&str, Option<u16>), String> {
    let bare_ipv6 = !entry.starts_with('[') && entry.matches(':').count() > 1;
    match entry.rsplit_once(':') {
        Some((body, port)) if !bare_ipv6 => Ok((body, Some(parse_port(port)?))),
        _ => Ok((entry, None)),
    }
}

impl Rule {
    fn matches(&self, host: &TargetHost, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let name = host.name.as_str();
        match &self.pattern {
            Pattern::All => true,
            Pattern::Subdomains(domain) => host.ip.is_none() && is_subdomain(name, domain),
            Pattern::Domain(domain) => {
                host.ip.is_none() && (name == domain || is_subdomain(name, domain))
            }
            Pattern::Net(net, bits) => host.ip.is_some_and(|ip| in_net(ip, *net, *bits)),
        }
    }
}

fn is_subdomain(name: &str, domain: &str) -> bool {
    name.strip_suffix(domain)
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    // A /0 matches everything of that family; checked_shr keeps a shift of 128 defined.
    ip.checked_shr(shift).unwrap_or(0) == net.checked_shr(shift).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ProxyEnvironment {
        ProxyEnvironment::from_vars(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    fn no_proxy(value: &str, host: &str, port: u16) -> bool {
        env(&[("no_proxy", value)])
            .bypasses(&TargetHost::new(host), port)
            .unwrap()
    }

    #[test]
    fn lowercase_wins_and_all_proxy_is_the_fallback() {
        let e = env(&[
            ("HTTP_PROXY", "upper:1"),
            ("http_proxy", "lower:1"),
            ("HTTPS_PROXY", "secure:2"),
            ("ALL_PROXY", "all:3"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(e.proxy_var(Scheme::Http), Some(("http_proxy", "lower:1")));
        assert_eq!(
            e.proxy_var(Scheme::Https),
            Some(("HTTPS_PROXY", "secure:2"))
        );
        let only_all = env(&[("all_proxy", "all:3"), ("http_proxy", "  ")]);
        assert_eq!(
            only_all.proxy_var(Scheme::Http),
            Some(("all_proxy", "all:3"))
        );
        assert!(env(&[("PATH", "/bin")]).is_empty());
    }

    #[test]
    fn uppercase_http_proxy_is_ignored_under_cgi() {
        let e = env(&[("HTTP_PROXY", "attacker:80"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(e.proxy_var(Scheme::Http), None);
        let e = env(&[("http_proxy", "admin:80"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(e.proxy_var(Scheme::Http), Some(("http_proxy", "admin:80")));
    }

    #[test]
    fn debug_hides_passwords_in_values() {
        let printed = format!("{:?}", env(&[("https_proxy", "http://u:hunter2@p:1")]));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("u:***@p:1"), "{printed}");
    }

    #[test]
    fn domains_match_themselves_and_subdomains_dots_only_subdomains() {
        assert!(no_proxy("example.com", "example.com", 80));
        assert!(no_proxy("example.com", "a.b.Example.com", 80));
        assert!(!no_proxy("example.com", "notexample.com", 80));
        assert!(no_proxy(".example.com", "a.example.com", 80));
        assert!(!no_proxy(".example.com", "example.com", 80));
        assert!(no_proxy("*.example.com", "a.example.com", 80));
        assert!(no_proxy("*", "anything", 80));
        assert!(no_proxy("a, b ,localhost", "localhost", 80));
    }

    #[test]
    fn ips_cidrs_and_ports() {
        assert!(no_proxy("127.0.0.1", "127.0.0.1", 80));
        assert!(!no_proxy("127.0.0.1", "127.0.0.2", 80));
        assert!(no_proxy("10.0.0.0/8", "10.200.3.4", 80));
        assert!(!no_proxy("10.0.0.0/8", "11.0.0.1", 80));
        assert!(no_proxy("0.0.0.0/0", "1.2.3.4", 80));
        assert!(no_proxy("::1", "[::1]", 80));
        assert!(no_proxy("[::1]:8080", "[::1]", 8080));
        assert!(!no_proxy("[::1]:8080", "[::1]", 80));
        assert!(no_proxy("fd00::/8", "[fd12::1]", 80));
        assert!(!no_proxy("fd00::/8", "10.0.0.1", 80));
        assert!(no_proxy("example.com:8443", "example.com", 8443));
        assert!(!no_proxy("example.com:8443", "example.com", 443));
        assert!(!no_proxy("10.0.0.1", "10.0.0.1.example", 80));
    }

    #[test]
    fn a_bad_no_proxy_entry_names_the_variable_and_entry() {
        let err = env(&[("NO_PROXY", "ok.com,10.0.0.0/33")])
            .bypasses(&TargetHost::new("x"), 80)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("NO_PROXY") && err.contains("10.0.0.0/33"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_no_proxy_values_never_panic(value in "\\PC{0,60}", host in "\\PC{0,30}", port: u16) {
            let _ = env(&[("no_proxy", value.as_str())]).bypasses(&TargetHost::new(&host), port);
        }

        #[test]
        fn a_domain_entry_matches_exactly_itself_and_its_subdomains(
            domain in "[a-z]{1,6}\\.[a-z]{2,3}",
            host in "([a-z]{1,4}\\.){0,2}[a-z]{1,6}\\.[a-z]{2,3}",
        ) {
            let expected = host == domain || host.ends_with(&format!(".{domain}"));
            proptest::prop_assert_eq!(no_proxy(&domain, &host, 80), expected);
        }
    }
}
