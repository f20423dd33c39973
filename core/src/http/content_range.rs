//! Content-Range (RFC 9110 §14.4): how a resumed download checks that the server sent the
//! bytes it asked for.

/// A parsed `Content-Range` value in the `bytes` unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes a-b/total` or `bytes a-b/*`: the body holds bytes `start..=end_inclusive`.
    Bytes {
        /// First byte position.
        start: u64,
        /// Last byte position, inclusive.
        end_inclusive: u64,
        /// The full representation length, if the server knows it.
        total: Option<u64>,
    },
    /// `bytes */total`: the requested range lies outside the representation (416 responses).
    Unsatisfied {
        /// The full representation length.
        total: u64,
    },
}

/// Parses a Content-Range value; `None` if it is malformed, not in bytes, or inconsistent
/// (start after end, end at or past the total).
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    // Ten lines of grammar; no crate parses the response form without pulling in a server stack.
    let value = value.trim_matches([' ', '\t']);
    let (unit, rest) = value.split_once(' ')?;
    // Range units are case-insensitive (RFC 9110 §14.1).
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (range, total) = rest.split_once('/')?;
    if range == "*" {
        return Some(ContentRange::Unsatisfied {
            total: parse_digits(total)?,
        });
    }
    let (start, end) = range.split_once('-')?;
    let (start, end_inclusive) = (parse_digits(start)?, parse_digits(end)?);
    let total = if total == "*" {
        None
    } else {
        Some(parse_digits(total)?)
    };
    let consistent = start <= end_inclusive && total.is_none_or(|t| end_inclusive < t);
    consistent.then_some(ContentRange::Bytes {
        start,
        end_inclusive,
        total,
    })
}

/// `1*DIGIT` as a u64; `str::parse` alone would also take a leading `+`.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_with_total_parses() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some(ContentRange::Bytes {
                start: 100,
                end_inclusive: 199,
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range(" Bytes 0-0/1 "),
            Some(ContentRange::Bytes {
                start: 0,
                end_inclusive: 0,
                total: Some(1)
            })
        );
    }

    #[test]
    fn unknown_total_parses_as_none() {
        assert_eq!(
            parse_content_range("bytes 5-9/*"),
            Some(ContentRange::Bytes {
                start: 5,
                end_inclusive: 9,
                total: None
            })
        );
    }

    #[test]
    fn unsatisfied_range_parses() {
        assert_eq!(
            parse_content_range("bytes */4096"),
            Some(ContentRange::Unsatisfied { total: 4096 })
        );
        assert_eq!(
            parse_content_range("bytes */0"),
            Some(ContentRange::Unsatisfied { total: 0 })
        );
    }

    #[test]
    fn malformed_ranges_are_none() {
        for bad in [
            "bytes 200-100/1000",             // start after end
            "bytes 0-1000/1000",              // end at total
            "bytes 0-1001/1000",              // end past total
            "0-99/100",                       // missing unit
            "bytes0-99/100",                  // missing space
            "items 0-99/100",                 // other unit
            "bytes 0-99",                     // missing total
            "bytes -5/100",                   // suffix form is for requests only
            "bytes 5-/100",                   // open end
            "bytes +1-5/10",                  // sign
            "bytes 1-5/-10",                  // negative total
            "bytes */*",                      // unsatisfied without total
            "bytes 0-1/99999999999999999999", // overflow
            "garbage",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad:?}");
        }
    }
}
