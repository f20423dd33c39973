//! Writing a request head: the only bytes we ever send, since we only GET, HEAD, and CONNECT
//! to an HTTP proxy.

use bytes::{BufMut, BytesMut};

use super::HttpError;

/// The request methods a download needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Fetch the body.
    Get,
    /// Fetch only the head (size, validators); the response has no body.
    Head,
    /// Ask an HTTP proxy for a tunnel to `target` (authority-form `host:port`). A 2xx answer
    /// has no body and turns the connection into the tunnel (see
    /// [`ResponseParser::take_tunnel_bytes`](super::ResponseParser::take_tunnel_bytes)).
    Connect,
}

impl Method {
    /// The method token as sent on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Connect => "CONNECT",
        }
    }
}

/// A request head to encode.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The request method.
    pub method: Method,
    /// The request target. GET and HEAD: origin-form, the path and optional `?query`
    /// (`/a/b?c=1`), or absolute-form (`http://h:8080/a/b?c=1`) for a request through an HTTP
    /// proxy. CONNECT: authority-form, `host:port` (an IPv6 literal in brackets).
    pub target: &'a str,
    /// Host header value: host or host:port, an IPv6 literal in brackets. For CONNECT it must
    /// be the target itself.
    pub host: &'a str,
    /// User-Agent header value.
    pub user_agent: &'a str,
    /// `Some(n)` sends `Range: bytes=n-` (or `bytes=n-m` with `range_end`).
    pub range_start: Option<u64>,
    /// `Some(m)` with `range_start` ends the range at byte `m` inclusive: `Range: bytes=n-m`.
    pub range_end: Option<u64>,
    /// `Some(v)` sends `If-Range: v` (a strong ETag or an HTTP-date); only sent with `range_start`.
    pub if_range: Option<&'a str>,
    /// `Some(v)` sends `Authorization: v` (credentials for the origin; refused on CONNECT).
    pub authorization: Option<&'a str>,
    /// `Some(v)` sends `Proxy-Authorization: v`: only on the hop to an HTTP proxy (a CONNECT,
    /// or an absolute-form request), never inside a tunnel.
    pub proxy_authorization: Option<&'a str>,
    /// Custom headers, sent verbatim after the standard ones (refused on CONNECT: they belong
    /// to the origin).
    pub extra_headers: &'a [(&'a str, &'a str)],
}

/// Custom header values may carry credentials and the target may carry signed query tokens,
/// so neither is printed.
impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.extra_headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("range_start", &self.range_start)
            .field("range_end", &self.range_end)
            .field("authorization", &self.authorization.map(|_| "***"))
            .field(
                "proxy_authorization",
                &self.proxy_authorization.map(|_| "***"),
            )
            .field("extra_header_names", &names)
            .finish_non_exhaustive()
    }
}

impl Request<'_> {
    /// Appends the encoded head to `out`.
    ///
    /// GET and HEAD send the request line `METHOD target HTTP/1.1`, Host, User-Agent,
    /// `Accept: */*`, `Accept-Encoding: identity`, `Connection: keep-alive`, then Authorization
    /// and Proxy-Authorization, then Range/If-Range, then the extra headers, then the blank line.
    /// CONNECT sends only the request line, Host, User-Agent and Proxy-Authorization. Everything
    /// is checked before anything is written, so on error `out` is unchanged.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), HttpError> {
        self.validate()?;
        out.reserve(256 + self.target.len());
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.target.as_bytes());
        out.put_slice(b" HTTP/1.1\r\n");
        put_field(out, "Host", self.host);
        put_field(out, "User-Agent", self.user_agent);
        if self.method == Method::Connect {
            if let Some(credentials) = self.proxy_authorization {
                put_field(out, "Proxy-Authorization", credentials);
            }
            out.put_slice(b"\r\n");
            return Ok(());
        }
        put_field(out, "Accept", "*/*");
        // We store bytes exactly as served; a compressed coding would break ranges and sizes.
        put_field(out, "Accept-Encoding", "identity");
        put_field(out, "Connection", "keep-alive");
        if let Some(credentials) = self.authorization {
            put_field(out, "Authorization", credentials);
        }
        if let Some(credentials) = self.proxy_authorization {
            put_field(out, "Proxy-Authorization", credentials);
        }
        if let Some(start) = self.range_start {
            let end = self
                .range_end
                .map(|end| end.to_string())
                .unwrap_or_default();
            put_field(out, "Range", &format!("bytes={start}-{end}"));
            if let Some(validator) = self.if_range {
                put_field(out, "If-Range", validator);
            }
        }
        for (name, value) in self.extra_headers {
            put_field(out, name, value);
        }
        out.put_slice(b"\r\n");
        Ok(())
    }

    fn validate(&self) -> Result<(), HttpError> {
        self.validate_target()?;
        if self.host.is_empty() || !self.host.bytes().all(is_vchar) {
            return Err(invalid(format!(
                "host {:?} is not a valid Host value",
                self.host
            )));
        }
        check_value("User-Agent", self.user_agent)?;
        if let (Some(start), Some(end)) = (self.range_start, self.range_end) {
            if end < start {
                return Err(invalid(format!(
                    "the range {start}-{end} ends before it starts"
                )));
            }
        }
        if let Some(validator) = self.if_range {
            check_value("If-Range", validator)?;
        }
        // Credential values are checked but never echoed.
        if self
            .authorization
            .is_some_and(|v| check_value("", v).is_err())
        {
            return Err(invalid(
                "the Authorization value contains a control character".into(),
            ));
        }
        if self
            .proxy_authorization
            .is_some_and(|v| check_value("", v).is_err())
        {
            return Err(invalid(
                "the Proxy-Authorization value contains a control character".into(),
            ));
        }
        for (name, value) in self.extra_headers {
            check_name(name)?;
            check_value(name, value)?;
        }
        Ok(())
    }

    fn validate_target(&self) -> Result<(), HttpError> {
        // Visible ASCII only: a space or control byte would end the request line early.
        // The target is not echoed: its query may hold a signed token.
        if !self.target.bytes().all(is_vchar) {
            return Err(invalid("target must hold only visible ASCII".into()));
        }
        if self.method != Method::Connect {
            let lower = self
                .target
                .get(..8)
                .unwrap_or(self.target)
                .to_ascii_lowercase();
            let absolute = lower.starts_with("http://") || lower.starts_with("https://");
            if !self.target.starts_with('/') && !absolute {
                return Err(invalid(
                    "target must start with '/' or be an absolute http(s):// URL".into(),
                ));
            }
            return Ok(());
        }
        // The proxy sees this hop only: nothing meant for the origin may ride on it.
        let origin_only = self.authorization.is_some()
            || self.range_start.is_some()
            || self.if_range.is_some()
            || !self.extra_headers.is_empty();
        if origin_only {
            return Err(invalid(
                "CONNECT carries no Authorization, Range, If-Range or custom headers: they \
                 belong to the origin, not the proxy"
                    .into(),
            ));
        }
        let port = self.target.rsplit_once(':').map(|(_, port)| port);
        let authority_form = !self.target.contains(['/', '?', '#', '@'])
            && port.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !authority_form {
            return Err(invalid(format!(
                "CONNECT target {:?} is not host:port",
                self.target
            )));
        }
        if !self.host.eq_ignore_ascii_case(self.target) {
            return Err(invalid(format!(
                "CONNECT's Host {:?} must be its target {:?}",
                self.host, self.target
            )));
        }
        Ok(())
    }
}

fn put_field(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// Header names we refuse from callers: a second Host reroutes the request, and a framing
/// header would make the server read our next request as this one's body.
const RESERVED: [&str; 3] = ["host", "content-length", "transfer-encoding"];

fn check_name(name: &str) -> Result<(), HttpError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(invalid(format!("header name {name:?} is not a token")));
    }
    if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
        return Err(invalid(format!(
            "header {name} may not be set by the caller"
        )));
    }
    Ok(())
}

fn check_value(name: &str, value: &str) -> Result<(), HttpError> {
    // RFC 9110 §5.5: field-value is VCHAR, SP, HTAB and obs-text; CR, LF and NUL would split it.
    let ok = value
        .bytes()
        .all(|b| b == b'\t' || b == b' ' || is_vchar(b) || b >= 0x80);
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "value of header {name} contains a control character"
        )))
    }
}

fn is_vchar(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn invalid(message: String) -> HttpError {
    HttpError::InvalidRequest(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request<'static> {
        Request {
            method: Method::Get,
            target: "/files/a.iso?v=2",
            host: "[::1]:8080",
            user_agent: "backhaul/0.1",
            range_start: None,
            range_end: None,
            if_range: None,
            authorization: None,
            proxy_authorization: None,
            extra_headers: &[],
        }
    }

    fn encode(req: &Request<'_>) -> Result<String, HttpError> {
        let mut out = BytesMut::new();
        req.encode(&mut out)?;
        Ok(String::from_utf8(out.to_vec()).unwrap())
    }

    #[test]
    fn ranged_request_with_if_range_encodes_exact_bytes() {
        let req = Request {
            range_start: Some(1_048_576),
            range_end: None,
            if_range: Some("\"abc123\""),
            extra_headers: &[("X-Token", "t 1")],
            ..request()
        };
        assert_eq!(
            encode(&req).unwrap(),
            "GET /files/a.iso?v=2 HTTP/1.1\r\n\
             Host: [::1]:8080\r\n\
             User-Agent: backhaul/0.1\r\n\
             Accept: */*\r\n\
             Accept-Encoding: identity\r\n\
             Connection: keep-alive\r\n\
             Range: bytes=1048576-\r\n\
             If-Range: \"abc123\"\r\n\
             X-Token: t 1\r\n\
             \r\n"
        );
    }

    #[test]
    fn bounded_range_encodes_both_ends_and_a_reversed_one_is_refused() {
        let req = Request {
            range_start: Some(100),
            range_end: Some(199),
            ..request()
        };
        assert!(encode(&req)
            .unwrap()
            .contains("\r\nRange: bytes=100-199\r\n"));
        let reversed = Request {
            range_start: Some(200),
            range_end: Some(199),
            ..request()
        };
        let e = encode(&reversed).unwrap_err();
        assert!(e.to_string().contains("200-199"), "{e}");
    }

    #[test]
    fn head_request_without_range_ignores_if_range() {
        let req = Request {
            method: Method::Head,
            if_range: Some("\"x\""),
            ..request()
        };
        let text = encode(&req).unwrap();
        assert!(text.starts_with("HEAD /files/a.iso?v=2 HTTP/1.1\r\n"));
        assert!(!text.contains("If-Range"));
        assert!(text.ends_with("Connection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn crlf_injection_is_refused_everywhere() {
        let bad = "a\r\nX-Evil: 1";
        let cases = [
            Request {
                target: "/a\r\nX: y",
                ..request()
            },
            Request {
                target: "/a\0",
                ..request()
            },
            Request {
                host: bad,
                ..request()
            },
            Request {
                user_agent: bad,
                ..request()
            },
            Request {
                user_agent: "a\nb",
                ..request()
            },
            Request {
                range_start: Some(0),
                range_end: None,
                if_range: Some(bad),
                ..request()
            },
            Request {
                if_range: Some(bad),
                ..request()
            },
            Request {
                extra_headers: &[("X-A", "ok\r\n\r\nGET / HTTP/1.1")],
                ..request()
            },
            Request {
                extra_headers: &[("X-A\r\nX-B", "v")],
                ..request()
            },
        ];
        for req in cases {
            let mut out = BytesMut::new();
            let err = req.encode(&mut out).unwrap_err();
            assert!(matches!(err, HttpError::InvalidRequest(_)), "{req:?}");
            assert!(out.is_empty(), "nothing written for {req:?}");
        }
    }

    #[test]
    fn debug_output_hides_header_values_and_target() {
        let extra = [("Authorization", "Bearer s3cret")];
        let req = Request {
            target: "/f?sig=t0ken",
            extra_headers: &extra,
            ..request()
        };
        let printed = format!("{req:?}");
        assert!(printed.contains("Authorization"), "{printed}");
        assert!(
            !printed.contains("s3cret") && !printed.contains("t0ken"),
            "{printed}"
        );
    }

    #[test]
    fn absolute_form_through_a_proxy_carries_both_credentials_in_order() {
        let req = Request {
            target: "http://files.example:8080/a.iso?v=2",
            host: "files.example:8080",
            authorization: Some("Basic YTpi"),
            proxy_authorization: Some("Basic cDpx"),
            range_start: Some(5),
            range_end: None,
            extra_headers: &[("X-Job", "1")],
            ..request()
        };
        assert_eq!(
            encode(&req).unwrap(),
            "GET http://files.example:8080/a.iso?v=2 HTTP/1.1\r\n\
             Host: files.example:8080\r\n\
             User-Agent: backhaul/0.1\r\n\
             Accept: */*\r\n\
             Accept-Encoding: identity\r\n\
             Connection: keep-alive\r\n\
             Authorization: Basic YTpi\r\n\
             Proxy-Authorization: Basic cDpx\r\n\
             Range: bytes=5-\r\n\
             X-Job: 1\r\n\
             \r\n"
        );
    }

    fn connect(target: &'static str) -> Request<'static> {
        Request {
            method: Method::Connect,
            target,
            host: target,
            ..request()
        }
    }

    #[test]
    fn connect_sends_authority_form_host_user_agent_and_proxy_credentials_only() {
        let req = Request {
            proxy_authorization: Some("Basic Ym9iOnByb3h5cHc="),
            ..connect("files.example:443")
        };
        assert_eq!(
            encode(&req).unwrap(),
            "CONNECT files.example:443 HTTP/1.1\r\n\
             Host: files.example:443\r\n\
             User-Agent: backhaul/0.1\r\n\
             Proxy-Authorization: Basic Ym9iOnByb3h5cHc=\r\n\
             \r\n"
        );
        assert!(encode(&connect("[::1]:8443"))
            .unwrap()
            .starts_with("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"));
    }

    #[test]
    fn connect_refuses_origin_headers_and_non_authority_targets() {
        let extra = [("X-Secret", "v")];
        let refused = [
            Request {
                authorization: Some("Basic x"),
                ..connect("h:443")
            },
            Request {
                range_start: Some(1),
                range_end: None,
                ..connect("h:443")
            },
            Request {
                if_range: Some("\"e\""),
                ..connect("h:443")
            },
            Request {
                extra_headers: &extra,
                ..connect("h:443")
            },
            connect("/path"),
            connect("h"),
            connect("h:"),
            connect("h:44x"),
            connect("http://h:443"),
            connect("u@h:443"),
            Request {
                host: "other:443",
                ..connect("h:443")
            },
        ];
        for req in refused {
            assert!(encode(&req).is_err(), "{req:?}");
        }
    }

    #[test]
    fn credentials_are_checked_but_never_echoed_or_printed() {
        let req = Request {
            authorization: Some("Basic s3cret\r\nX: y"),
            ..request()
        };
        let err = encode(&req).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        let req = Request {
            proxy_authorization: Some("Basic pr0xy\n"),
            ..request()
        };
        assert!(!encode(&req).unwrap_err().to_string().contains("pr0xy"));
        let req = Request {
            authorization: Some("Basic s3cret"),
            proxy_authorization: Some("Basic pr0xy"),
            ..request()
        };
        let printed = format!("{req:?}");
        assert!(
            !printed.contains("s3cret") && !printed.contains("pr0xy"),
            "{printed}"
        );
    }

    #[test]
    fn bad_targets_and_header_names_are_refused() {
        for target in ["", "a/b", "ftp://h/a", "/a b", "/a\tb"] {
            assert!(
                encode(&Request {
                    target,
                    ..request()
                })
                .is_err(),
                "{target:?}"
            );
        }
        for name in [
            "",
            "X A",
            "X:A",
            "X\"",
            "Content-Length",
            "HOST",
            "transfer-encoding",
        ] {
            let extra = [(name, "v")];
            let req = Request {
                extra_headers: &extra,
                ..request()
            };
            assert!(encode(&req).is_err(), "{name:?}");
        }
        assert!(encode(&Request {
            host: "",
            ..request()
        })
        .is_err());
    }
}
