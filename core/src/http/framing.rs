//! How a response body is delimited (RFC 9112 §6.3), decided once from the head.
//!
//! Getting this wrong desynchronises a keep-alive connection, so the rules are strict:
//! anything ambiguous is an error rather than a guess.

use super::{BodyFraming, HttpError, Method};

/// The body framing of a final response to `method`.
pub(super) fn body_framing(
    method: Method,
    status: u16,
    version_minor: u8,
    headers: &[(String, String)],
) -> Result<BodyFraming, HttpError> {
    // Rule 1: these never have a body, whatever their headers claim.
    if method == Method::Head || status < 200 || status == 204 || status == 304 {
        return Ok(BodyFraming::None);
    }
    // RFC 9110 §9.3.6: a 2xx to CONNECT has no body; what follows is the tunnel.
    if method == Method::Connect && (200..300).contains(&status) {
        return Ok(BodyFraming::None);
    }
    if has_field(headers, "transfer-encoding") {
        if has_field(headers, "content-length") {
            return Err(HttpError::ConflictingFraming);
        }
        // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is faulty.
        if version_minor == 0 {
            return Err(HttpError::Malformed(
                "Transfer-Encoding in an HTTP/1.0 response".into(),
            ));
        }
        // We send `Accept-Encoding: identity`, so the only coding we accept is a lone `chunked`.
        let codings: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
            .flat_map(|(_, v)| split_list(v))
            .collect();
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case("chunked") => Ok(BodyFraming::Chunked),
            _ => Err(HttpError::UnsupportedTransferEncoding(codings.join(", "))),
        };
    }
    Ok(match content_length(headers)? {
        Some(n) => BodyFraming::ContentLength(n),
        None => BodyFraming::UntilClose,
    })
}

/// The Content-Length, if present: every field line and list element must be the same number.
pub(super) fn content_length(headers: &[(String, String)]) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    let values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    // RFC 9110 §8.6 lets a recipient accept "42, 42" or repeated identical lines.
    for (_, value) in values {
        for element in value.split(',').map(|e| e.trim_matches([' ', '\t'])) {
            let n = parse_length(element)?;
            match found {
                Some(prev) if prev != n => {
                    return Err(HttpError::InvalidContentLength(format!(
                        "different values {prev} and {n}"
                    )));
                }
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

fn parse_length(s: &str) -> Result<u64, HttpError> {
    // `u64::from_str` would accept a leading `+`; the grammar is 1*DIGIT.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::InvalidContentLength(format!(
            "{s:?} is not a number"
        )));
    }
    s.parse()
        .map_err(|_| HttpError::InvalidContentLength(format!("{s} is too large")))
}

/// Whether any field line named `name` is present.
pub(super) fn has_field(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The non-empty elements of a comma-separated list value.
pub(super) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(|e| e.trim_matches([' ', '\t']))
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn framing(pairs: &[(&str, &str)]) -> Result<BodyFraming, HttpError> {
        body_framing(Method::Get, 200, 1, &headers(pairs))
    }

    #[test]
    fn transfer_encoding_with_content_length_is_rejected() {
        let result = framing(&[("Content-Length", "5"), ("Transfer-Encoding", "chunked")]);
        assert_eq!(result, Err(HttpError::ConflictingFraming));
    }

    #[test]
    fn differing_duplicate_content_lengths_are_rejected() {
        let two_lines = framing(&[("Content-Length", "5"), ("content-length", "6")]);
        assert!(matches!(two_lines, Err(HttpError::InvalidContentLength(_))));
        let list = framing(&[("Content-Length", "5, 6")]);
        assert!(matches!(list, Err(HttpError::InvalidContentLength(_))));
    }

    #[test]
    fn identical_duplicate_content_lengths_are_accepted() {
        let result = framing(&[("Content-Length", "42"), ("Content-Length", "42, 42")]);
        assert_eq!(result, Ok(BodyFraming::ContentLength(42)));
    }

    #[test]
    fn non_numeric_or_overflowing_content_length_is_rejected() {
        for bad in ["", "+5", "-1", "0x10", "1 2", "18446744073709551616"] {
            let result = framing(&[("Content-Length", bad)]);
            assert!(
                matches!(result, Err(HttpError::InvalidContentLength(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn gzip_transfer_encoding_is_rejected() {
        for te in [
            "gzip",
            "gzip, chunked",
            "chunked, gzip",
            "chunked, chunked",
            "identity",
            "",
        ] {
            let result = framing(&[("Transfer-Encoding", te)]);
            assert!(
                matches!(result, Err(HttpError::UnsupportedTransferEncoding(_))),
                "{te:?}"
            );
        }
    }

    #[test]
    fn chunked_in_any_case_is_chunked() {
        assert_eq!(
            framing(&[("transfer-encoding", " Chunked ")]),
            Ok(BodyFraming::Chunked)
        );
    }

    #[test]
    fn transfer_encoding_in_http10_is_malformed() {
        let result = body_framing(
            Method::Get,
            200,
            0,
            &headers(&[("Transfer-Encoding", "chunked")]),
        );
        assert!(matches!(result, Err(HttpError::Malformed(_))));
    }

    #[test]
    fn bodiless_responses_ignore_framing_headers() {
        let h = headers(&[("Content-Length", "10"), ("Transfer-Encoding", "gzip")]);
        assert_eq!(
            body_framing(Method::Head, 200, 1, &h),
            Ok(BodyFraming::None)
        );
        for status in [204, 304] {
            assert_eq!(
                body_framing(Method::Get, status, 1, &h),
                Ok(BodyFraming::None)
            );
        }
    }

    #[test]
    fn a_2xx_to_connect_has_no_body_but_a_407_has_one() {
        let h = headers(&[("Content-Length", "10"), ("Transfer-Encoding", "chunked")]);
        assert_eq!(
            body_framing(Method::Connect, 200, 1, &h),
            Ok(BodyFraming::None)
        );
        let h = headers(&[("Content-Length", "10")]);
        assert_eq!(
            body_framing(Method::Connect, 407, 1, &h),
            Ok(BodyFraming::ContentLength(10))
        );
    }

    #[test]
    fn no_length_means_read_until_close() {
        assert_eq!(framing(&[]), Ok(BodyFraming::UntilClose));
    }
}
