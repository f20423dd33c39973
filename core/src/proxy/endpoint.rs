//! One proxy: what kind, where, and the credentials its URL carried; parsed from
//! `[scheme://][user[:password]@]host[:port][/]`.

use std::net::{IpAddr, Ipv6Addr};

/// How to talk to a proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProxyKind {
    /// An HTTP proxy: absolute-form requests for `http://` URLs, a CONNECT tunnel for `https://`.
    Http,
    /// A SOCKS5 proxy (RFC 1928), always asked to connect to the target *name* (the proxy
    /// resolves it, as `socks5h://` does for curl): core resolves nothing.
    Socks5,
}

/// A proxy to connect through.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProxyEndpoint {
    /// The protocol spoken to the proxy.
    pub kind: ProxyKind,
    /// Host name (lowercase) or IP literal, without brackets: what `Action::Connect` takes.
    pub host: String,
    /// TCP port (default 80 for HTTP proxies, as WinHTTP; 1080 for SOCKS5).
    pub port: u16,
    /// Credentials written in the proxy's URL (`socks5://user:password@host`). For SOCKS5 they
    /// are RFC 1929's user name and password; for an HTTP proxy they are proxy credentials the
    /// engine may use when the proxy answers 407.
    pub auth: Option<ProxyAuth>,
}

/// A user name and password for a proxy, percent-decoded from its URL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProxyAuth {
    /// The user name (not secret).
    pub user: String,
    /// The password (printed as `***`).
    pub password: ProxyPassword,
}

/// A proxy password: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProxyPassword(String);

impl ProxyPassword {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ProxyPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `http://host:port` or `socks5://user@host:port`: the password never appears.
impl std::fmt::Display for ProxyEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
        };
        write!(f, "{scheme}://")?;
        if let Some(auth) = &self.auth {
            write!(f, "{}@", auth.user)?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Default port of an HTTP proxy without one: WinHTTP's choice.
const HTTP_PROXY_PORT: u16 = 80;
/// Default SOCKS port (RFC 1928 §3).
const SOCKS_PORT: u16 = 1080;

/// Parses one proxy: `[http:// | socks5:// | socks5h://][user[:password]@]host[:port][/]`.
/// No scheme means an HTTP proxy. The error is the reason, without the entry (the caller
/// names the entry, redacted).
pub(super) fn parse_proxy(text: &str) -> Result<ProxyEndpoint, String> {
    let (kind, rest) = match text.split_once("://") {
        None => (ProxyKind::Http, text),
        Some((scheme, rest)) => (proxy_kind(scheme)?, rest),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err("a proxy address has no path, query or fragment".into());
    }
    let (auth, host_port) = match rest.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(parse_userinfo(userinfo)?), host_port),
        None => (None, rest),
    };
    let default_port = match kind {
        ProxyKind::Http => HTTP_PROXY_PORT,
        ProxyKind::Socks5 => SOCKS_PORT,
    };
    let (host, port) = parse_host_port(host_port)?;
    Ok(ProxyEndpoint {
        kind,
        host,
        port: port.unwrap_or(default_port),
        auth,
    })
}

fn proxy_kind(scheme: &str) -> Result<ProxyKind, String> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Ok(ProxyKind::Http),
        "socks5" | "socks5h" => Ok(ProxyKind::Socks5),
        "https" => Err("TLS to the proxy itself (https://) is not supported: use http://".into()),
        "socks" | "socks4" | "socks4a" => {
            Err("only SOCKS version 5 is supported: use socks5://".into())
        }
        other => Err(format!(
            "unknown proxy scheme {other:?}: use http:// or socks5://"
        )),
    }
}

fn parse_userinfo(userinfo: &str) -> Result<ProxyAuth, String> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let user = percent_decode(user).ok_or("the user name is not valid percent-encoded UTF-8")?;
    let password =
        percent_decode(password).ok_or("the password is not valid percent-encoded UTF-8")?;
    if user.is_empty() {
        return Err("the user name before '@' is empty".into());
    }
    Ok(ProxyAuth {
        user,
        password: ProxyPassword(password),
    })
}

/// `%XX` escapes decoded. Hand-written: the `percent-encoding` crate is only an indirect
/// dependency, and this is ten lines.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`: the host (lowercase, no brackets) and the port
/// if one was given.
pub(super) fn parse_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(inside) = text.strip_prefix('[') {
        let (v6, after) = inside
            .split_once(']')
            .ok_or("an IPv6 address opened with '[' is not closed with ']'")?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("expected ':' and a port after ']'")?,
            ),
        };
        (v6.to_ascii_lowercase(), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err("an IPv6 address needs brackets: [::1]:8080".into());
        }
        check_name(host)?;
        (host.to_ascii_lowercase(), port)
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

/// A host name or IPv4 literal: letters, digits, `-`, `_` and `.`, at most 253 characters.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the host name is empty".into());
    }
    if name.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!("{bad:?} is not allowed in a host name"));
    }
    Ok(())
}

/// 1–65535, digits only.
pub(super) fn parse_port(text: &str) -> Result<u16, String> {
    let port = text
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse::<u16>().ok())
        .flatten()
        .filter(|&p| p != 0);
    port.ok_or_else(|| format!("{text:?} is not a port (1-65535)"))
}

/// A URL host as the matchers compare it: lowercase, no brackets, no trailing dot, and its
/// address when it is an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TargetHost {
    pub(super) name: String,
    pub(super) ip: Option<IpAddr>,
}

impl TargetHost {
    pub(super) fn new(host: &str) -> Self {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = bare.strip_suffix('.').unwrap_or(bare).to_ascii_lowercase();
        let ip = name.parse().ok();
        Self { name, ip }
    }
}

/// The entry as it may be printed: a password in it replaced by `***`.
pub(super) fn redact(entry: &str) -> String {
    let Some((before_at, after_at)) = entry.rsplit_once('@') else {
        return entry.to_string();
    };
    let user_start = before_at.find("://").map_or(0, |i| i + 3);
    let userinfo = &before_at[user_start..];
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{}{user}:***@{after_at}", &before_at[..user_start]),
        None => entry.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(host: &str, port: u16) -> ProxyEndpoint {
        ProxyEndpoint {
            kind: ProxyKind::Http,
            host: host.into(),
            port,
            auth: None,
        }
    }

    #[test]
    fn bare_and_http_entries_are_http_proxies_with_port_80_by_default() {
        assert_eq!(parse_proxy("Proxy.Example"), Ok(http("proxy.example", 80)));
        assert_eq!(parse_proxy("http://proxy:3128/"), Ok(http("proxy", 3128)));
        assert_eq!(
            parse_proxy("HTTP://10.0.0.1:8080"),
            Ok(http("10.0.0.1", 8080))
        );
        assert_eq!(parse_proxy("[::1]:3128"), Ok(http("::1", 3128)));
        assert_eq!(parse_proxy("http://[FE80::1]"), Ok(http("fe80::1", 80)));
    }

    #[test]
    fn socks5_entries_carry_percent_decoded_credentials_and_port_1080() {
        let proxy = parse_proxy("socks5://al%40ice:p%3Ass word@socks.local").unwrap();
        assert_eq!(proxy.kind, ProxyKind::Socks5);
        assert_eq!((proxy.host.as_str(), proxy.port), ("socks.local", 1080));
        let auth = proxy.auth.clone().unwrap();
        assert_eq!(
            (auth.user.as_str(), auth.password.expose()),
            ("al@ice", "p:ss word")
        );
        assert_eq!(
            parse_proxy("socks5h://h:9").unwrap().kind,
            ProxyKind::Socks5
        );
        let printed = format!("{proxy:?} {proxy}");
        assert!(!printed.contains("p:ss"), "{printed}");
        assert!(
            printed.contains("socks5://al@ice@socks.local:1080"),
            "{printed}"
        );
    }

    #[test]
    fn bad_proxies_are_refused_with_the_reason() {
        for (entry, reason) in [
            ("https://p:1", "https://"),
            ("socks4://p:1", "SOCKS version 5"),
            ("ftp://p:1", "unknown proxy scheme"),
            ("p:0", "not a port"),
            ("p:65536", "not a port"),
            ("p:80x", "not a port"),
            ("p:", "not a port"),
            ("::1", "brackets"),
            ("[::1", "not closed"),
            ("[zz]:1", "not an IPv6"),
            ("[::1]x", "expected ':'"),
            ("", "empty"),
            (":80", "empty"),
            ("p/x", "no path"),
            ("pr oxy", "not allowed"),
            ("@p", "user name"),
            ("u:%zz@p", "percent"),
        ] {
            let err = parse_proxy(entry).unwrap_err();
            assert!(err.contains(reason), "{entry:?}: {err}");
        }
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("socks5://u:secret@h:1"), "socks5://u:***@h:1");
        assert_eq!(redact("https=u:secret@h"), "https=u:***@h");
        assert_eq!(redact("u@h"), "u@h");
        assert_eq!(redact("h:1"), "h:1");
    }

    #[test]
    fn target_hosts_are_normalised() {
        assert_eq!(TargetHost::new("[::1]").ip, Some("::1".parse().unwrap()));
        assert_eq!(TargetHost::new("Example.COM.").name, "example.com");
        assert_eq!(TargetHost::new("example.com").ip, None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_entries_never_panic(entry in "\\PC{0,40}") {
            let _ = parse_proxy(&entry);
            let _ = redact(&entry);
        }

        #[test]
        fn proxy_like_entries_never_panic(entry in "[a-z:/@%\\[\\]0-9.]{0,30}") {
            if let Ok(proxy) = parse_proxy(&entry) {
                proptest::prop_assert!(proxy.port != 0);
            }
        }
    }
}
