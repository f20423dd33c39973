//! `multipart/byteranges` (RFC 9110 §14.6): a 206 body carrying several ranges, each part
//! headed by its own `Content-Range`.
//!
//! [`ByterangesParser`] is pushed the response body as it arrives and gives back
//! [`PartEvent`]s: a part's range, then its bytes (slices of the pushed `Bytes`, not copies),
//! then the next part, then the end. Each part's body is exactly as long as its `Content-Range`
//! says, so the parser reads that many bytes rather than scanning for the boundary inside
//! data, and then requires the delimiter. Limits follow BITS' server requirements: at most two
//! CRLFs before the first boundary, and a small part head (`Content-Range`, `Content-Type` and
//! a few other bytes). Hand-written: no kept crate parses a streamed multipart body without a
//! server framework around it.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::content_range::{parse_content_range, ContentRange};

/// Largest part head (its header lines and the blank line), in bytes.
pub const MAX_PART_HEAD_BYTES: usize = 1024;
/// Most CRLFs accepted before the first boundary (BITS' rule).
const MAX_PREAMBLE_CRLFS: usize = 2;
/// Longest boundary RFC 2046 allows.
const MAX_BOUNDARY_LEN: usize = 70;

/// The boundary of a `multipart/byteranges` Content-Type, or `None` for any other type (or a
/// boundary missing, empty, longer than 70 characters, or with characters RFC 2046 forbids).
pub fn byteranges_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim_matches([' ', '\t']);
    if !media.eq_ignore_ascii_case("multipart/byteranges") {
        return None;
    }
    let value = params.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim_matches([' ', '\t'])
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim_matches([' ', '\t']))
    })?;
    let value = match value.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"')?,
        None => value,
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    let valid = !value.is_empty()
        && value.len() <= MAX_BOUNDARY_LEN
        && value.chars().all(allowed)
        && !value.ends_with(' ');
    valid.then(|| value.to_string())
}

/// What the body of a `multipart/byteranges` response holds, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartEvent {
    /// A part starts: its bytes are `start..=end_inclusive` of a representation of `total`
    /// bytes (`None`: the server did not say).
    Part {
        /// First byte position.
        start: u64,
        /// Last byte position, inclusive.
        end_inclusive: u64,
        /// The complete length, if given.
        total: Option<u64>,
    },
    /// Bytes of the current part, in order.
    Data(Bytes),
    /// The close delimiter: no part follows.
    End,
}

/// A body that is not a valid `multipart/byteranges`; the message names the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartError(String);

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid multipart/byteranges body: {}", self.0)
    }
}

impl std::error::Error for MultipartError {}

fn error<T>(why: impl Into<String>) -> Result<T, MultipartError> {
    Err(MultipartError(why.into()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first `--boundary`.
    Preamble,
    /// After a part's bytes: `CRLF --boundary` must follow.
    Delimiter,
    /// After a `--boundary`: `--` (the end) or optional padding and CRLF (a part head).
    AfterBoundary,
    /// A part's header lines, up to the blank line.
    PartHead,
    /// A part's bytes, this many still to come.
    PartBody(u64),
    /// After the close delimiter: the epilogue, ignored.
    Done,
    /// An error was returned; everything is refused from now on.
    Failed,
}

/// A push parser for a `multipart/byteranges` body (see the module documentation).
#[derive(Debug)]
pub struct ByterangesParser {
    /// `--` followed by the boundary.
    dash_boundary: Vec<u8>,
    state: State,
    /// Structural bytes not yet parsed (never part data): bounded by the limits above.
    pending: BytesMut,
}

impl ByterangesParser {
    /// A parser for parts separated by `boundary` (from [`byteranges_boundary`]).
    pub fn new(boundary: &str) -> Self {
        Self {
            dash_boundary: [b"--", boundary.as_bytes()].concat(),
            state: State::Preamble,
            pending: BytesMut::new(),
        }
    }

    /// Parses the next body bytes; the events they complete are appended to `out`. After an
    /// error the parser refuses everything.
    pub fn push(
        &mut self,
        mut data: Bytes,
        out: &mut Vec<PartEvent>,
    ) -> Result<(), MultipartError> {
        let result = self.push_inner(&mut data, out);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// The body ended: an error unless the close delimiter was seen.
    pub fn finish(&self) -> Result<(), MultipartError> {
        match self.state {
            State::Done => Ok(()),
            State::PartBody(left) => error(format!("the body ended {left} bytes short of a part")),
            _ => error("the body ended before the close delimiter"),
        }
    }

    fn push_inner(
        &mut self,
        data: &mut Bytes,
        out: &mut Vec<PartEvent>,
    ) -> Result<(), MultipartError> {
        loop {
            match self.state {
                State::Failed => return error("the body was already refused"),
                State::Done => return Ok(()),
                State::PartBody(left) => {
                    if data.is_empty() {
                        return Ok(());
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    out.push(PartEvent::Data(data.split_to(n)));
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::Delimiter
                    } else {
                        State::PartBody(left)
                    };
                }
                _ => {
                    self.pending.extend_from_slice(data);
                    data.clear();
                    if !self.step(out)? {
                        return Ok(());
                    }
                    if matches!(self.state, State::PartBody(_)) {
                        // What follows the part head is the part's bytes.
                        *data = self.pending.split().freeze();
                    }
                }
            }
        }
    }

    /// Parses structural bytes in `pending`; `Ok(false)` when more bytes are needed.
    fn step(&mut self, out: &mut Vec<PartEvent>) -> Result<bool, MultipartError> {
        let p = &self.pending[..];
        match self.state {
            State::Preamble => {
                let crlfs = p.chunks(2).take_while(|c| *c == b"\r\n").count();
                if crlfs > MAX_PREAMBLE_CRLFS {
                    return error("more than two CRLFs before the first boundary");
                }
                let rest = &p[2 * crlfs..];
                if rest == b"\r" {
                    return Ok(false);
                }
                let Some(need) = self.expect(rest, &self.dash_boundary, "the first boundary")?
                else {
                    return Ok(false);
                };
                self.pending.advance(2 * crlfs + need);
                self.state = State::AfterBoundary;
            }
            State::Delimiter => {
                let delimiter = [b"\r\n".as_slice(), &self.dash_boundary].concat();
                let Some(need) = self.expect(p, &delimiter, "a boundary after a part")? else {
                    return Ok(false);
                };
                self.pending.advance(need);
                self.state = State::AfterBoundary;
            }
            State::AfterBoundary => {
                if p.len() < 2 {
                    return Ok(false);
                }
                if p.starts_with(b"--") {
                    out.push(PartEvent::End);
                    self.pending.clear();
                    self.state = State::Done;
                    return Ok(true);
                }
                let padding = p.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
                if padding > MAX_BOUNDARY_LEN {
                    return error("padding after a boundary is too long");
                }
                let rest = &p[padding..];
                let Some(need) = self.expect(rest, b"\r\n", "a line end after a boundary")? else {
                    return Ok(false);
                };
                self.pending.advance(padding + need);
                self.state = State::PartHead;
            }
            State::PartHead => {
                // Judged before looking for the head's end, and with one message for both
                // ways of being too long, so the verdict does not depend on how the bytes
                // were split (fuzz/regressions/byteranges/).
                if p.starts_with(b"\r\n") {
                    return error("a part head is empty: the part has no Content-Range");
                }
                let too_long = || {
                    error(format!(
                        "a part head is too long (more than {MAX_PART_HEAD_BYTES} bytes)"
                    ))
                };
                let Some(end) = p.windows(4).position(|w| w == b"\r\n\r\n") else {
                    if p.len() > MAX_PART_HEAD_BYTES {
                        return too_long();
                    }
                    return Ok(false);
                };
                if end + 4 > MAX_PART_HEAD_BYTES {
                    return too_long();
                }
                let event = part_head(&p[..end])?;
                let PartEvent::Part {
                    start,
                    end_inclusive,
                    ..
                } = event
                else {
                    unreachable!("part_head returns a Part");
                };
                let Some(len) = (end_inclusive - start).checked_add(1) else {
                    return error("a part's range is longer than any file");
                };
                out.push(event);
                self.pending.advance(end + 4);
                self.state = State::PartBody(len);
            }
            State::PartBody(_) | State::Done | State::Failed => {
                unreachable!("only structural states are parsed here")
            }
        }
        Ok(true)
    }

    /// `Some(len)` when `p` starts with `want`, `None` when `p` is a prefix of it (more bytes
    /// needed), an error naming `what` otherwise.
    fn expect(&self, p: &[u8], want: &[u8], what: &str) -> Result<Option<usize>, MultipartError> {
        if p.starts_with(want) {
            Ok(Some(want.len()))
        } else if want.starts_with(p) {
            Ok(None)
        } else {
            error(format!("expected {what}"))
        }
    }
}

/// A part's header lines → its range. Header lines other than Content-Range are skipped.
fn part_head(head: &[u8]) -> Result<PartEvent, MultipartError> {
    let Ok(text) = std::str::from_utf8(head) else {
        return error("a part head is not text");
    };
    let mut range = None;
    for line in text.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            return error(format!("a part header line has no colon: {line:?}"));
        };
        if name.eq_ignore_ascii_case("content-range") {
            if range.is_some() {
                return error("a part has two Content-Range headers");
            }
            range = Some(parse_content_range(value));
        }
    }
    match range {
        Some(Some(ContentRange::Bytes {
            start,
            end_inclusive,
            total,
        })) => Ok(PartEvent::Part {
            start,
            end_inclusive,
            total,
        }),
        Some(_) => error("a part's Content-Range is not a valid byte range"),
        None => error("a part has no Content-Range"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &[u8] = b"\r\n--THIS_SEP\r\n\
        Content-Type: application/octet-stream\r\n\
        Content-Range: bytes 0-4/20\r\n\
        \r\n\
        hello\r\n\
        --THIS_SEP  \r\n\
        content-range: bytes 15-19/20\r\n\
        \r\n\
        world\r\n\
        --THIS_SEP--\r\nepilogue";

    /// Every event of `body` pushed in `pieces`, with adjacent Data merged.
    fn parse(body: &[u8], cuts: &[usize]) -> Result<Vec<PartEvent>, MultipartError> {
        let mut parser = ByterangesParser::new("THIS_SEP");
        let mut out = Vec::new();
        let mut last = 0;
        for &cut in cuts.iter().chain([&body.len()]) {
            parser.push(Bytes::copy_from_slice(&body[last..cut]), &mut out)?;
            last = cut;
        }
        parser.finish()?;
        let mut merged: Vec<PartEvent> = Vec::new();
        for event in out {
            match (merged.last_mut(), event) {
                (Some(PartEvent::Data(a)), PartEvent::Data(b)) => {
                    *a = Bytes::from([a.as_ref(), b.as_ref()].concat());
                }
                (_, PartEvent::Data(b)) if b.is_empty() => {}
                (_, e) => merged.push(e),
            }
        }
        Ok(merged)
    }

    fn expected() -> Vec<PartEvent> {
        vec![
            PartEvent::Part {
                start: 0,
                end_inclusive: 4,
                total: Some(20),
            },
            PartEvent::Data(Bytes::from_static(b"hello")),
            PartEvent::Part {
                start: 15,
                end_inclusive: 19,
                total: Some(20),
            },
            PartEvent::Data(Bytes::from_static(b"world")),
            PartEvent::End,
        ]
    }

    #[test]
    fn two_parts_parse_at_every_split_point() {
        for cut in 0..=BODY.len() {
            assert_eq!(parse(BODY, &[cut]).unwrap(), expected(), "cut at {cut}");
        }
        let bytewise: Vec<usize> = (1..BODY.len()).collect();
        assert_eq!(parse(BODY, &bytewise).unwrap(), expected());
    }

    #[test]
    fn part_bytes_may_contain_the_boundary_itself() {
        let body = b"--B\r\nContent-Range: bytes 0-8/9\r\n\r\n\r\n--B--\r\n\r\n--B--";
        let mut parser = ByterangesParser::new("B");
        let mut out = Vec::new();
        parser.push(Bytes::from_static(body), &mut out).unwrap();
        parser.finish().unwrap();
        assert_eq!(
            out[1],
            PartEvent::Data(Bytes::from_static(b"\r\n--B--\r\n"))
        );
        assert_eq!(out[2], PartEvent::End);
    }

    #[test]
    fn malformed_bodies_are_refused_with_the_problem_named() {
        let cases: [(&[u8], &str); 7] = [
            (b"\r\n\r\n\r\n--THIS_SEP\r\n", "two CRLFs"),
            (b"junk--THIS_SEP\r\n", "the first boundary"),
            (
                b"--THIS_SEP\r\nContent-Type: x\r\n\r\nabc",
                "no Content-Range",
            ),
            (
                b"--THIS_SEP\r\nContent-Range: bytes 5-1/9\r\n\r\n",
                "not a valid",
            ),
            (
                b"--THIS_SEP\r\nContent-Range bytes 0-1/9\r\n\r\n",
                "no colon",
            ),
            (
                b"--THIS_SEP\r\nContent-Range: bytes 0-1/9\r\n\r\nab--THIS_SEP--",
                "boundary after a part",
            ),
            (b"--THIS_SEPX\r\n", "line end after a boundary"),
        ];
        for (body, why) in cases {
            let e = parse(body, &[]).unwrap_err();
            assert!(
                e.to_string().contains(why),
                "{:?}: {e}",
                String::from_utf8_lossy(body)
            );
        }
        let long_head = [b"--THIS_SEP\r\nX: ".as_slice(), &[b'a'; 2000]].concat();
        assert!(parse(&long_head, &[])
            .unwrap_err()
            .to_string()
            .contains("too long"));
    }

    #[test]
    fn a_part_head_gets_the_same_verdict_however_it_is_split() {
        // Found by the byteranges fuzz target: a head starting with CRLF, whose end comes
        // later, was "not text" whole and "has no Content-Range" byte by byte; a head too long
        // had two messages too.
        let empty_first_line = b"--B\r\n\r\nX-\xd1: 1\r\n\r\nab".as_slice();
        let long_head = [b"--B\r\nX: ".as_slice(), &[b'a'; 1100], b"\r\n\r\n"].concat();
        for body in [empty_first_line, &long_head] {
            let verdict = |cuts: &[usize]| {
                let mut parser = ByterangesParser::new("B");
                let mut out = Vec::new();
                let mut last = 0;
                for &cut in cuts.iter().chain([&body.len()]) {
                    parser.push(Bytes::copy_from_slice(&body[last..cut]), &mut out)?;
                    last = cut;
                }
                parser.finish()
            };
            let whole = verdict(&[]).unwrap_err();
            for cut in 0..=body.len() {
                assert_eq!(verdict(&[cut]).unwrap_err(), whole, "cut at {cut}");
            }
            assert_eq!(
                verdict(&(1..body.len()).collect::<Vec<_>>()).unwrap_err(),
                whole
            );
        }
    }

    #[test]
    fn a_body_cut_short_is_an_error_at_finish() {
        for cut in 0..BODY.len() - b"\r\nepilogue".len() - 2 {
            let mut parser = ByterangesParser::new("THIS_SEP");
            let mut out = Vec::new();
            parser
                .push(Bytes::copy_from_slice(&BODY[..cut]), &mut out)
                .unwrap();
            assert!(parser.finish().is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn boundaries_come_from_multipart_byteranges_content_types_only() {
        assert_eq!(
            byteranges_boundary("multipart/byteranges; boundary=THIS_SEP").as_deref(),
            Some("THIS_SEP")
        );
        assert_eq!(
            byteranges_boundary("Multipart/ByteRanges;charset=x; BOUNDARY=\"a b:c\"").as_deref(),
            Some("a b:c")
        );
        for bad in [
            "multipart/mixed; boundary=x",
            "application/octet-stream",
            "multipart/byteranges",
            "multipart/byteranges; boundary=",
            "multipart/byteranges; boundary=\"unterminated",
            "multipart/byteranges; boundary=a\u{7f}b",
        ] {
            assert_eq!(byteranges_boundary(bad), None, "{bad}");
        }
        let long = format!("multipart/byteranges; boundary={}", "x".repeat(71));
        assert_eq!(byteranges_boundary(&long), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..400),
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= body.len()).collect();
            cuts.sort_unstable();
            let _ = parse(&body, &cuts);
        }

        #[test]
        fn mutated_valid_bodies_never_panic(
            at in 0usize..BODY.len(),
            byte in any::<u8>(),
            cut in 0usize..BODY.len(),
        ) {
            let mut body = BODY.to_vec();
            body[at] = byte;
            let _ = parse(&body, &[cut]);
        }
    }
}
