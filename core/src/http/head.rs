//! A parsed response head and the questions a downloader asks of it.

use std::time::Duration;

use super::framing::{self, has_field, split_list};
use super::{parse_content_range, ContentRange, HttpError, Method};
use crate::Timestamp;

/// A final (non-1xx) response head.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    /// The status code, 100..=599.
    pub status: u16,
    /// The reason phrase (empty if it was not ASCII).
    pub reason: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// Header fields in order, names as received, values trimmed (non-UTF-8 replaced lossily).
    pub headers: Vec<(String, String)>,
    /// How the body that follows is delimited.
    pub framing: BodyFraming,
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: a HEAD response, 1xx, 204 or 304.
    None,
    /// Exactly this many bytes.
    ContentLength(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection; the connection is not reusable.
    UntilClose,
}

impl ResponseHead {
    /// Parses a complete head (`buf` ends at its blank line) of a response to `method`.
    pub(super) fn decode(
        buf: &[u8],
        method: Method,
        max_headers: usize,
    ) -> Result<Self, HttpError> {
        let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
        let mut response = httparse::Response::new(&mut slots);
        match response.parse(buf) {
            Ok(httparse::Status::Complete(used)) if used == buf.len() => {}
            // The caller found the blank line, so anything short of it means a broken head.
            Ok(_) => {
                return Err(HttpError::Malformed(
                    "response head ends before it is complete".into(),
                ))
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HttpError::TooManyHeaders { limit: max_headers })
            }
            Err(e) => return Err(HttpError::Malformed(e.to_string())),
        }
        // httparse fills these on Complete; the fallbacks are unreachable.
        let status = response.code.unwrap_or(0);
        let version_minor = response.version.unwrap_or(1);
        // RFC 9110 §15: codes outside 100..=599 are not HTTP.
        if !(100..=599).contains(&status) {
            return Err(HttpError::Malformed(format!("status code {status}")));
        }
        let headers: Vec<(String, String)> = response
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value);
                (
                    h.name.to_owned(),
                    value.trim_matches([' ', '\t']).to_owned(),
                )
            })
            .collect();
        let framing = framing::body_framing(method, status, version_minor, &headers)?;
        let reason = response.reason.unwrap_or("").to_owned();
        Ok(Self {
            status,
            reason,
            version_minor,
            headers,
            framing,
        })
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let (_, value) = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Some(value)
    }

    /// Every value of header `name` (case-insensitive), one per field line, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body length when framing is `ContentLength`; for bodiless responses (HEAD, 304)
    /// the valid Content-Length they announce, which is the size a GET would return.
    pub fn content_length(&self) -> Option<u64> {
        match self.framing {
            BodyFraming::ContentLength(n) => Some(n),
            BodyFraming::None if !has_field(&self.headers, "transfer-encoding") => {
                framing::content_length(&self.headers).ok().flatten()
            }
            _ => None,
        }
    }

    /// The parsed Content-Range, `None` if absent or malformed.
    pub fn content_range(&self) -> Option<ContentRange> {
        parse_content_range(self.header("content-range")?)
    }

    /// The raw ETag value.
    pub fn etag(&self) -> Option<&str> {
        self.header("etag")
    }

    /// The ETag if it is strong and well formed, so it can be sent back in If-Range
    /// (RFC 9110 §13.1.5 forbids weak validators there).
    pub fn strong_etag(&self) -> Option<&str> {
        let etag = self.etag()?;
        let inner = etag.strip_prefix('"')?.strip_suffix('"')?;
        // etagc is %x21 / %x23-7E / obs-text. U+FFFD may stand for a byte lost in lossy
        // decoding, and an altered ETag would never match, so it is refused too.
        let well_formed = inner
            .chars()
            .all(|c| c == '!' || ('#'..='~').contains(&c) || (!c.is_ascii() && c != '\u{fffd}'));
        well_formed.then_some(etag)
    }

    /// The raw Last-Modified value, only if it parses as an HTTP-date.
    pub fn last_modified(&self) -> Option<&str> {
        self.header("last-modified")
            .filter(|v| http_date(v).is_some())
    }

    /// The Location value.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// How long the server asks us to wait: delta-seconds, or an HTTP-date relative to `now`
    /// (a past date gives zero).
    pub fn retry_after(&self, now: Timestamp) -> Option<Duration> {
        let value = self.header("retry-after")?;
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Only overflow can fail here; a wait that long means "not soon".
            return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
        }
        let at = http_date(value)?;
        Some(Duration::from_millis(
            at.as_millis().saturating_sub(now.as_millis()),
        ))
    }

    /// Whether the server lets the connection carry another request: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let has_token = |token: &str| {
            self.header_values("connection")
                .flat_map(split_list)
                .any(|t| t.eq_ignore_ascii_case(token))
        };
        if has_token("close") {
            return false;
        }
        self.version_minor >= 1 || has_token("keep-alive")
    }
}

/// An HTTP-date (any of the three RFC 9110 §5.6.7 forms) as a timestamp.
fn http_date(value: &str) -> Option<Timestamp> {
    // httpdate speaks SystemTime; we only read its offset from the epoch, never the clock.
    let since_epoch = httpdate::parse_http_date(value)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Some(Timestamp::from_millis(
        u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(version_minor: u8, pairs: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            status: 200,
            reason: "OK".into(),
            version_minor,
            headers: pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            framing: BodyFraming::UntilClose,
        }
    }

    // 1994-11-06T08:49:37Z
    const SUNDAY: u64 = 784_111_777;

    #[test]
    fn retry_after_in_seconds_is_a_delay() {
        let h = head(1, &[("Retry-After", "120")]);
        assert_eq!(
            h.retry_after(Timestamp::from_secs(SUNDAY)),
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn retry_after_http_date_is_relative_to_now() {
        let h = head(1, &[("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        let now = Timestamp::from_millis((SUNDAY - 30) * 1000 + 500);
        assert_eq!(h.retry_after(now), Some(Duration::from_millis(29_500)));
    }

    #[test]
    fn retry_after_past_date_is_zero() {
        let h = head(1, &[("Retry-After", "Sunday, 06-Nov-94 08:49:37 GMT")]);
        assert_eq!(
            h.retry_after(Timestamp::from_secs(SUNDAY + 3600)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_garbage_is_none() {
        for bad in ["soon", "-5", "1.5", ""] {
            assert_eq!(
                head(1, &[("Retry-After", bad)]).retry_after(Timestamp::EPOCH),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn headers_are_found_case_insensitively_in_order() {
        let h = head(
            1,
            &[
                ("Set-Thing", "a"),
                ("set-thing", "b"),
                ("Location", "/next"),
            ],
        );
        assert_eq!(h.header("SET-THING"), Some("a"));
        assert_eq!(h.header_values("set-thing").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(h.location(), Some("/next"));
        assert_eq!(h.header("missing"), None);
    }

    #[test]
    fn only_strong_well_formed_etags_are_strong() {
        assert_eq!(
            head(1, &[("ETag", "\"abc-1\"")]).strong_etag(),
            Some("\"abc-1\"")
        );
        assert_eq!(head(1, &[("ETag", "\"\"")]).strong_etag(), Some("\"\""));
        for bad in [
            "W/\"abc\"",
            "abc",
            "\"abc",
            "\"a\"b\"",
            "\"a b\"",
            "\"a\u{fffd}\"",
        ] {
            let h = head(1, &[("ETag", bad)]);
            assert_eq!(h.strong_etag(), None, "{bad:?}");
            assert_eq!(h.etag(), Some(bad));
        }
    }

    #[test]
    fn last_modified_requires_an_http_date() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            head(1, &[("Last-Modified", date)]).last_modified(),
            Some(date)
        );
        assert_eq!(
            head(1, &[("Last-Modified", "yesterday")]).last_modified(),
            None
        );
    }

    #[test]
    fn keep_alive_follows_version_and_connection_tokens() {
        assert!(head(1, &[]).keep_alive());
        assert!(!head(1, &[("Connection", "Upgrade, Close")]).keep_alive());
        assert!(!head(0, &[]).keep_alive());
        assert!(head(0, &[("Connection", "Keep-Alive")]).keep_alive());
        assert!(!head(0, &[("Connection", "keep-alive"), ("Connection", "close")]).keep_alive());
    }

    #[test]
    fn content_length_of_head_response_is_announced_size() {
        let mut h = head(1, &[("Content-Length", "1234")]);
        h.framing = BodyFraming::None;
        assert_eq!(h.content_length(), Some(1234));
        h.framing = BodyFraming::UntilClose;
        assert_eq!(h.content_length(), None);
        h.framing = BodyFraming::ContentLength(1234);
        assert_eq!(h.content_length(), Some(1234));
    }
}
