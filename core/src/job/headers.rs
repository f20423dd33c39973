//! `SetCustomHeaders`: extra request headers, sent on every request to the origin of the URL
//! they were meant for, and never printed (they often carry tokens).

use serde::{Deserialize, Serialize};

use crate::codes;
use crate::error::BitsError;

/// BITS' limit: 16,384 characters including the terminating NUL.
const MAX_CHARS_WITH_NUL: usize = 16_384;

/// Headers backhaul writes itself, or that would change the framing or the resume logic, or
/// that belong to a proxy hop only: a custom one would contradict or leak past them.
const RESERVED: [&str; 11] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "expect",
    "range",
    "if-range",
    "proxy-authorization",
    "proxy-connection",
];

/// A job's custom headers, parsed and checked once, when set.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CustomHeaders {
    fields: Vec<(String, String)>,
}

impl CustomHeaders {
    /// Parses BITS' form: `Name: value` lines separated (and optionally ended) by CRLF.
    pub(crate) fn parse(text: &str) -> Result<Self, BitsError> {
        let chars = text.chars().count();
        if chars + 1 > MAX_CHARS_WITH_NUL {
            return Err(BitsError::new(
                codes::BG_E_STRING_TOO_LONG,
                format!(
                    "the custom headers are {chars} characters; the limit is {} (BITS counts \
                     the terminating NUL in its 16,384)",
                    MAX_CHARS_WITH_NUL - 1
                ),
            ));
        }
        let body = text.strip_suffix("\r\n").unwrap_or(text);
        let mut fields = Vec::new();
        for (i, line) in body.split("\r\n").enumerate() {
            let invalid = |why: &str| {
                BitsError::new(
                    codes::E_INVALIDARG,
                    format!("custom header line {}: {why}", i + 1),
                )
            };
            if line.is_empty() {
                return Err(invalid("empty line (headers are separated by one CRLF)"));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid("no ':' between name and value"))?;
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(invalid("the name is not an HTTP token"));
            }
            let value = value.trim_matches([' ', '\t']);
            // A bare CR or LF would let a value start a header (or a request) of its own.
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(invalid("the value holds CR, LF or NUL"));
            }
            let lower = name.to_ascii_lowercase();
            if RESERVED.contains(&lower.as_str()) {
                return Err(invalid(&format!(
                    "{name} is set by backhaul itself and cannot be a custom header"
                )));
            }
            fields.push((name.to_string(), value.to_string()));
        }
        Ok(Self { fields })
    }

    /// The headers as `(name, value)` pairs, for the request.
    pub(crate) fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// BITS' form again: `Name: value` lines, each ended by CRLF.
    pub(crate) fn to_text(&self) -> String {
        self.fields
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect()
    }
}

/// Names only: the values are secrets.
impl std::fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .fields
            .iter()
            .map(|(name, _)| format!("{name}: ***"))
            .collect();
        f.debug_struct("CustomHeaders")
            .field("fields", &names)
            .finish()
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_separated_by_crlf_parse_and_print_back() {
        let h = CustomHeaders::parse("X-Token: abc\r\nAccept-Language:  fr \r\n").unwrap();
        assert_eq!(
            h.fields(),
            [
                ("X-Token".to_string(), "abc".to_string()),
                ("Accept-Language".to_string(), "fr".to_string())
            ]
        );
        assert_eq!(h.to_text(), "X-Token: abc\r\nAccept-Language: fr\r\n");
    }

    #[test]
    fn injection_and_reserved_names_are_refused_with_the_line_named() {
        for (text, words) in [
            ("X-A: 1\r\nX-B 2", "line 2"),
            ("X-A: 1\nX-B: 2", "CR, LF"),
            ("X A: 1", "token"),
            ("Host: evil", "Host is set by backhaul"),
            ("range: bytes=0-", "set by backhaul"),
            ("Proxy-Authorization: Basic eA==", "set by backhaul"),
            ("X-A: 1\r\n\r\nX-B: 2", "empty line"),
        ] {
            let err = CustomHeaders::parse(text).unwrap_err();
            assert_eq!(err.code(), codes::E_INVALIDARG, "{text:?}");
            assert!(err.detail().contains(words), "{text:?}: {}", err.detail());
        }
    }

    #[test]
    fn the_limit_counts_the_nul() {
        let value = "v".repeat(MAX_CHARS_WITH_NUL - 1 - "X: ".len());
        assert!(CustomHeaders::parse(&format!("X: {value}")).is_ok());
        let err = CustomHeaders::parse(&format!("X: {value}v")).unwrap_err();
        assert_eq!(err.code(), codes::BG_E_STRING_TOO_LONG);
    }

    #[test]
    fn debug_never_shows_a_value() {
        let h = CustomHeaders::parse("Authorization: Bearer s3cr3t").unwrap();
        let shown = format!("{h:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("Authorization"),
            "{shown}"
        );
    }
}
