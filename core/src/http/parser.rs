//! Reading responses off one connection, one event at a time.

use bytes::Bytes;

use super::chunked::{ChunkedDecoder, Decoded};
use super::recv::{RecvQueue, Scan, Scanned};
use super::{BodyFraming, HttpError, Method, ResponseHead};

/// Bounds on what a server can make us buffer before a body starts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest response head (status line and headers); also bounds chunk-size lines and trailers.
    pub max_head_bytes: usize,
    /// Most header fields in one head (and trailer fields after a chunked body).
    pub max_headers: usize,
}

impl Default for Limits {
    /// 64 KiB and 100 fields: far above what real servers send.
    fn default() -> Self {
        Self {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// What the parser read next.
#[derive(Clone, Debug)]
pub enum ResponseEvent {
    /// The final (non-1xx) head; interim 1xx responses are skipped.
    Head(ResponseHead),
    /// Body bytes with framing removed: never empty, in order, slices of the pushed `Bytes`.
    Body(Bytes),
    /// The response is complete.
    End {
        /// Whether the connection may carry the next request.
        reusable: bool,
    },
}

/// One connection's response reader, reused for successive responses (keep-alive).
#[derive(Debug)]
pub struct ResponseParser {
    limits: Limits,
    rx: RecvQueue,
    state: State,
    /// The peer closed its side; nothing more will be pushed.
    eof: bool,
}

#[derive(Debug)]
enum State {
    /// No request outstanding.
    Idle,
    /// Waiting for the head of a response to `method`.
    Head { method: Method, scan: Scan },
    /// Inside a body; `received` counts body bytes delivered.
    Body {
        body: Body,
        reusable: bool,
        received: u64,
    },
    /// A CONNECT was answered with 2xx: everything after the head belongs to the tunnel.
    Tunnel,
    /// A protocol error; repeated on every poll, since the connection is unusable.
    Failed(HttpError),
}

#[derive(Debug)]
enum Body {
    /// `remaining` more bytes; a bodiless response is `Length { remaining: 0 }`.
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
    UntilClose,
}

impl ResponseParser {
    /// A parser for a fresh connection.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            rx: RecvQueue::default(),
            state: State::Idle,
            eof: false,
        }
    }

    /// A request was sent: expect its response (`Head` responses have no body).
    ///
    /// # Panics
    /// If a response is still in progress: the engine must not pipeline.
    pub fn expect_response(&mut self, method: Method) {
        match self.state {
            State::Idle => {
                self.state = State::Head {
                    method,
                    scan: Scan::head(),
                }
            }
            // Stays unusable: the next poll repeats the error.
            State::Failed(_) => {}
            State::Head { .. } | State::Body { .. } => {
                panic!("expect_response while a response is in progress")
            }
            State::Tunnel => panic!("expect_response before take_tunnel_bytes"),
        }
    }

    /// Bytes received from the connection, in order. Kept as given, not copied.
    pub fn push(&mut self, data: Bytes) {
        self.rx.push(data);
    }

    /// The next event, `Ok(None)` when more bytes are needed. After an `Err` the connection
    /// is unusable and every later call returns the same error.
    pub fn poll_event(&mut self) -> Result<Option<ResponseEvent>, HttpError> {
        let result = match &self.state {
            State::Failed(error) => return Err(error.clone()),
            State::Idle if self.rx.is_empty() => return Ok(None),
            // We never pipeline, so early bytes mean a confused or hostile server.
            State::Idle => Err(HttpError::UnexpectedData),
            State::Head { .. } => self.poll_head(),
            State::Body { .. } => self.poll_body(),
            // The proxy's part is over; the bytes wait for `take_tunnel_bytes`.
            State::Tunnel => return Ok(None),
        };
        if let Err(error) = &result {
            self.state = State::Failed(error.clone());
        }
        result
    }

    /// The peer closed the connection. Call after `poll_event` returned `Ok(None)`.
    ///
    /// Returns `Ok(Some(End { reusable: false }))` if this ends a read-until-close body,
    /// `Ok(None)` once a tunnel is open,
    /// `Ok(None)` if no response was in progress and nothing is buffered, and
    /// `Err(UnexpectedEof)` if it cuts a head or body short (`Err(UnexpectedData)` if
    /// unexpected bytes are buffered). Bytes still buffered are not lost: this returns the
    /// next event, and `poll_event` the rest.
    pub fn handle_eof(&mut self) -> Result<Option<ResponseEvent>, HttpError> {
        self.eof = true;
        self.poll_event()
    }

    /// No response in progress and nothing buffered.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle) && self.rx.is_empty()
    }

    /// A CONNECT was answered with 2xx and [`take_tunnel_bytes`](Self::take_tunnel_bytes) has
    /// not been called yet. Meanwhile `poll_event` and `handle_eof` return `Ok(None)`: the
    /// connection belongs to the tunnel.
    pub fn is_tunnel(&self) -> bool {
        matches!(self.state, State::Tunnel)
    }

    /// Ends a successful CONNECT: returns the bytes the proxy sent after its 2xx head (the
    /// tunnel's; before TLS starts, any at all are a protocol error, since the client speaks
    /// first) and makes the parser ready for the first response through the tunnel. `None`
    /// when no tunnel was opened.
    pub fn take_tunnel_bytes(&mut self) -> Option<Bytes> {
        if !self.is_tunnel() {
            return None;
        }
        self.state = State::Idle;
        Some(self.rx.take(self.rx.len()))
    }

    /// Scans for the end of the head, parses it, and skips interim 1xx responses.
    fn poll_head(&mut self) -> Result<Option<ResponseEvent>, HttpError> {
        let State::Head { method, scan } = &mut self.state else {
            unreachable!("poll_head outside the head state")
        };
        let method = *method;
        let limit = self.limits.max_head_bytes;
        loop {
            let len = match scan.resume(&self.rx, limit) {
                Scanned::Found(len) => len,
                Scanned::TooLong => return Err(HttpError::HeadTooLarge { limit }),
                Scanned::NeedMore if self.eof => {
                    return Err(HttpError::UnexpectedEof {
                        expected: None,
                        received: self.rx.len() as u64,
                    })
                }
                Scanned::NeedMore => return Ok(None),
            };
            let head = ResponseHead::decode(&self.rx.take(len), method, self.limits.max_headers)?;
            match head.status {
                101 => return Err(HttpError::SwitchingProtocols),
                // Interim (100 Continue, 102 Processing, 103 Early Hints): the final head follows.
                100..=199 => *scan = Scan::head(),
                200..=299 if method == Method::Connect => {
                    self.state = State::Tunnel;
                    return Ok(Some(ResponseEvent::Head(head)));
                }
                _ => return Ok(Some(self.start_body(head))),
            }
        }
    }

    /// Enters the body state that `head`'s framing calls for, and hands the head out.
    fn start_body(&mut self, head: ResponseHead) -> ResponseEvent {
        let body = match head.framing {
            BodyFraming::None => Body::Length { remaining: 0 },
            BodyFraming::ContentLength(n) => Body::Length { remaining: n },
            BodyFraming::Chunked => Body::Chunked(ChunkedDecoder::new()),
            BodyFraming::UntilClose => Body::UntilClose,
        };
        let reusable = head.keep_alive() && head.framing != BodyFraming::UntilClose;
        self.state = State::Body {
            body,
            reusable,
            received: 0,
        };
        ResponseEvent::Head(head)
    }

    /// The next body slice, or the end of the body.
    fn poll_body(&mut self) -> Result<Option<ResponseEvent>, HttpError> {
        let State::Body {
            body,
            reusable,
            received,
        } = &mut self.state
        else {
            unreachable!("poll_body outside the body state")
        };
        let reusable = *reusable;
        let data = match body {
            Body::Length { remaining: 0 } => return Ok(Some(self.finish(reusable))),
            Body::Length { remaining } => {
                if self.rx.is_empty() {
                    if !self.eof {
                        return Ok(None);
                    }
                    return Err(HttpError::UnexpectedEof {
                        expected: Some(*remaining),
                        received: *received,
                    });
                }
                let data = self
                    .rx
                    .take_front(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *remaining -= data.len() as u64;
                data
            }
            Body::UntilClose => {
                if self.rx.is_empty() {
                    return Ok(self.eof.then(|| self.finish(false)));
                }
                self.rx.take_front(usize::MAX)
            }
            Body::Chunked(decoder) => match decoder.poll(&mut self.rx, self.limits)? {
                Decoded::Data(data) => data,
                Decoded::End => return Ok(Some(self.finish(reusable))),
                Decoded::NeedMore if self.eof => {
                    return Err(HttpError::UnexpectedEof {
                        expected: None,
                        received: *received,
                    })
                }
                Decoded::NeedMore => return Ok(None),
            },
        };
        *received += data.len() as u64;
        Ok(Some(ResponseEvent::Body(data)))
    }

    fn finish(&mut self, reusable: bool) -> ResponseEvent {
        self.state = State::Idle;
        ResponseEvent::End { reusable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event with the body merged, so different splits compare equal.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Seen {
        Head(u16),
        Body(Vec<u8>),
        End { reusable: bool },
    }

    /// Feeds `pieces` then (if `eof`) EOF, expecting a response to each of `methods` in turn.
    fn run(
        limits: Limits,
        methods: &[Method],
        pieces: &[&[u8]],
        eof: bool,
    ) -> Result<Vec<Seen>, HttpError> {
        let mut parser = ResponseParser::new(limits);
        let mut methods = methods.iter().copied();
        parser.expect_response(methods.next().expect("at least one request"));
        let mut seen = Vec::new();
        for piece in pieces {
            parser.push(Bytes::copy_from_slice(piece));
            while let Some(event) = parser.poll_event()? {
                record(&mut parser, &mut methods, &mut seen, event);
            }
        }
        if eof {
            if let Some(event) = parser.handle_eof()? {
                record(&mut parser, &mut methods, &mut seen, event);
            }
            assert!(parser.poll_event()?.is_none(), "nothing after EOF");
        }
        Ok(seen)
    }

    fn record(
        parser: &mut ResponseParser,
        methods: &mut impl Iterator<Item = Method>,
        seen: &mut Vec<Seen>,
        event: ResponseEvent,
    ) {
        match event {
            ResponseEvent::Head(head) => seen.push(Seen::Head(head.status)),
            ResponseEvent::Body(data) => {
                assert!(!data.is_empty(), "empty Body event");
                match seen.last_mut() {
                    Some(Seen::Body(body)) => body.extend_from_slice(&data),
                    _ => seen.push(Seen::Body(data.to_vec())),
                }
            }
            ResponseEvent::End { reusable } => {
                seen.push(Seen::End { reusable });
                if let Some(method) = methods.next() {
                    parser.expect_response(method);
                }
            }
        }
    }

    /// Runs `wire` whole, a byte at a time, and split at every point into two pushes, and
    /// checks every way gives `expected`.
    fn assert_every_split(methods: &[Method], wire: &[u8], eof: bool, expected: &[Seen]) {
        let limits = Limits::default();
        assert_eq!(
            run(limits, methods, &[wire], eof).as_deref(),
            Ok(expected),
            "whole"
        );
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(
            run(limits, methods, &bytes, eof).as_deref(),
            Ok(expected),
            "byte by byte"
        );
        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            assert_eq!(
                run(limits, methods, &[a, b], eof).as_deref(),
                Ok(expected),
                "split at {at}"
            );
        }
    }

    fn body(text: &str) -> Seen {
        Seen::Body(text.as_bytes().to_vec())
    }

    const GET: &[Method] = &[Method::Get];

    #[test]
    fn content_length_body_split_anywhere_yields_same_body() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nETag: \"x\"\r\n\r\nhello world";
        let expected = [
            Seen::Head(200),
            body("hello world"),
            Seen::End { reusable: true },
        ];
        assert_every_split(GET, wire, false, &expected);
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers_split_anywhere_yields_same_body() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;name=value\r\nhello\r\n6 ; q=\"a;b\"\r\n world\r\n0\r\nX-Sum: abc\r\nX-More: 1\r\n\r\n";
        let expected = [
            Seen::Head(200),
            body("hello world"),
            Seen::End { reusable: true },
        ];
        assert_every_split(GET, wire, false, &expected);
    }

    #[test]
    fn until_close_body_split_anywhere_ends_at_eof() {
        let wire = b"HTTP/1.1 200 OK\r\nServer: old\r\n\r\nread until the end";
        let expected = [
            Seen::Head(200),
            body("read until the end"),
            Seen::End { reusable: false },
        ];
        assert_every_split(GET, wire, true, &expected);
    }

    #[test]
    fn interim_responses_then_final_split_anywhere_are_skipped() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
            HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\n\r\nabc";
        let expected = [Seen::Head(206), body("abc"), Seen::End { reusable: true }];
        assert_every_split(GET, wire, false, &expected);
    }

    #[test]
    fn two_keep_alive_responses_back_to_back_split_anywhere() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst\
            HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nsecond\r\n0\r\n\r\n";
        let expected = [
            Seen::Head(200),
            body("first"),
            Seen::End { reusable: true },
            Seen::Head(200),
            body("second"),
            Seen::End { reusable: false },
        ];
        assert_every_split(&[Method::Get, Method::Get], wire, false, &expected);
    }

    #[test]
    fn head_response_with_content_length_has_no_body_split_anywhere() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n\
            HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n\
            HTTP/1.1 204 No Content\r\n\r\n";
        let expected = [
            Seen::Head(200),
            Seen::End { reusable: true },
            Seen::Head(304),
            Seen::End { reusable: true },
            Seen::Head(204),
            Seen::End { reusable: true },
        ];
        assert_every_split(
            &[Method::Head, Method::Get, Method::Get],
            wire,
            false,
            &expected,
        );
    }

    #[test]
    fn http10_response_is_reusable_only_with_keep_alive() {
        let wire = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok\
            HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        let expected = [
            Seen::Head(200),
            body("ok"),
            Seen::End { reusable: true },
            Seen::Head(200),
            Seen::End { reusable: false },
        ];
        assert_every_split(&[Method::Get, Method::Get], wire, false, &expected);
    }

    #[test]
    fn leading_empty_lines_and_bare_lf_heads_are_accepted() {
        let wire = b"\r\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok";
        assert_every_split(
            GET,
            wire,
            false,
            &[Seen::Head(200), body("ok"), Seen::End { reusable: true }],
        );
    }

    fn run_whole(wire: &[u8], eof: bool) -> Result<Vec<Seen>, HttpError> {
        run(Limits::default(), GET, &[wire], eof)
    }

    #[test]
    fn conflicting_framing_is_rejected() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(run_whole(wire, false), Err(HttpError::ConflictingFraming));
    }

    #[test]
    fn differing_duplicate_content_length_is_rejected_identical_accepted() {
        let bad = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd";
        assert!(matches!(
            run_whole(bad, false),
            Err(HttpError::InvalidContentLength(_))
        ));
        let good = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(
            run_whole(good, false),
            Ok(vec![
                Seen::Head(200),
                body("abc"),
                Seen::End { reusable: true }
            ])
        );
    }

    #[test]
    fn gzip_transfer_encoding_is_rejected() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(
            run_whole(wire, false),
            Err(HttpError::UnsupportedTransferEncoding(
                "gzip, chunked".into()
            ))
        );
    }

    #[test]
    fn head_over_limit_arriving_in_small_pieces_is_rejected() {
        let limits = Limits {
            max_head_bytes: 64,
            max_headers: 100,
        };
        let pieces: Vec<&[u8]> = std::iter::once(&b"HTTP/1.1 200 OK\r\n"[..])
            .chain(std::iter::repeat_n(&b"X: 12345\r\n"[..], 10))
            .collect();
        assert_eq!(
            run(limits, GET, &pieces, false),
            Err(HttpError::HeadTooLarge { limit: 64 })
        );
        assert_eq!(
            HttpError::HeadTooLarge { limit: 65536 }.to_string(),
            "response head exceeds 65536 bytes"
        );
    }

    #[test]
    fn head_of_exactly_the_limit_is_accepted() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let at_limit = Limits {
            max_head_bytes: wire.len(),
            max_headers: 4,
        };
        assert!(run(at_limit, GET, &[wire], false).is_ok());
        let below = Limits {
            max_head_bytes: wire.len() - 1,
            max_headers: 4,
        };
        assert_eq!(
            run(below, GET, &[wire], false),
            Err(HttpError::HeadTooLarge {
                limit: wire.len() - 1
            })
        );
    }

    #[test]
    fn too_many_headers_are_rejected() {
        let limits = Limits {
            max_head_bytes: 1024,
            max_headers: 2,
        };
        let wire = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            run(limits, GET, &[wire], false),
            Err(HttpError::TooManyHeaders { limit: 2 })
        );
    }

    #[test]
    fn eof_mid_content_length_body_reports_missing_and_received() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd";
        assert_eq!(
            run_whole(wire, true),
            Err(HttpError::UnexpectedEof {
                expected: Some(6),
                received: 4
            })
        );
    }

    #[test]
    fn eof_mid_chunked_body_reports_received() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n9\r\nabc";
        assert_eq!(
            run_whole(wire, true),
            Err(HttpError::UnexpectedEof {
                expected: None,
                received: 8
            })
        );
    }

    #[test]
    fn eof_mid_head_or_before_any_byte_is_unexpected() {
        let partial = b"HTTP/1.1 200 OK\r\nConte";
        let expected = HttpError::UnexpectedEof {
            expected: None,
            received: partial.len() as u64,
        };
        assert_eq!(run_whole(partial, true), Err(expected));
        assert_eq!(
            run_whole(b"", true),
            Err(HttpError::UnexpectedEof {
                expected: None,
                received: 0
            })
        );
    }

    #[test]
    fn eof_with_nothing_expected_is_quiet() {
        let mut parser = ResponseParser::new(Limits::default());
        assert!(parser.is_idle());
        assert!(matches!(parser.handle_eof(), Ok(None)));
    }

    #[test]
    fn eof_with_body_still_buffered_delivers_it_first() {
        let mut parser = ResponseParser::new(Limits::default());
        parser.expect_response(Method::Get);
        parser.push(Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\ntail"));
        assert!(matches!(
            parser.handle_eof(),
            Ok(Some(ResponseEvent::Head(_)))
        ));
        assert!(matches!(parser.poll_event(), Ok(Some(ResponseEvent::Body(b))) if b == "tail"));
        assert!(matches!(
            parser.poll_event(),
            Ok(Some(ResponseEvent::End { reusable: false }))
        ));
        assert!(parser.is_idle());
    }

    #[test]
    fn switching_protocols_is_rejected() {
        let wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(run_whole(wire, false), Err(HttpError::SwitchingProtocols));
    }

    #[test]
    fn bytes_with_no_expected_response_are_unexpected_data() {
        let mut parser = ResponseParser::new(Limits::default());
        parser.push(Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"));
        assert!(!parser.is_idle());
        assert_eq!(parser.poll_event().unwrap_err(), HttpError::UnexpectedData);
        // Sticky: the connection stays unusable.
        parser.expect_response(Method::Get);
        assert_eq!(parser.poll_event().unwrap_err(), HttpError::UnexpectedData);
    }

    #[test]
    fn extra_bytes_after_a_response_are_unexpected_data() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
        assert_eq!(run_whole(wire, false), Err(HttpError::UnexpectedData));
    }

    #[test]
    fn malformed_heads_are_rejected() {
        for wire in [
            &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
            b"HTTP/1.1 600 Odd\r\n\r\n",
            b"HTTP/1.1 099 Odd\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nFolded: a\r\n b\r\n\r\n",
        ] {
            let result = run_whole(wire, false);
            assert!(
                matches!(result, Err(HttpError::Malformed(_))),
                "{:?}: {result:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn head_fields_are_exposed_as_received() {
        let mut parser = ResponseParser::new(Limits::default());
        parser.expect_response(Method::Get);
        parser.push(Bytes::from_static(
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/100\r\nX-Raw: caf\xe9 \r\nContent-Length: 10\r\n\r\n",
        ));
        let Ok(Some(ResponseEvent::Head(head))) = parser.poll_event() else {
            panic!("no head")
        };
        assert_eq!(
            (head.status, head.reason.as_str(), head.version_minor),
            (206, "Partial Content", 1)
        );
        assert_eq!(head.framing, BodyFraming::ContentLength(10));
        assert_eq!(head.content_length(), Some(10));
        assert_eq!(
            head.content_range(),
            Some(super::super::ContentRange::Bytes {
                start: 10,
                end_inclusive: 19,
                total: Some(100)
            })
        );
        assert_eq!(head.header("x-raw"), Some("caf\u{fffd}"));
    }

    #[test]
    fn content_length_body_is_a_slice_of_the_pushed_bytes() {
        let wire = Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody");
        let mut parser = ResponseParser::new(Limits::default());
        parser.expect_response(Method::Get);
        parser.push(wire.clone());
        assert!(matches!(
            parser.poll_event(),
            Ok(Some(ResponseEvent::Head(_)))
        ));
        let Ok(Some(ResponseEvent::Body(data))) = parser.poll_event() else {
            panic!("no body")
        };
        assert_eq!(
            data.as_ptr(),
            wire[wire.len() - 4..].as_ptr(),
            "body was copied"
        );
    }

    /// Feeds `pieces` for a CONNECT; returns the statuses seen and, if a tunnel opened, the
    /// bytes handed to it (all pushed bytes after the head).
    fn run_connect(pieces: &[&[u8]]) -> Result<(Vec<Seen>, Option<Vec<u8>>), HttpError> {
        let mut parser = ResponseParser::new(Limits::default());
        parser.expect_response(Method::Connect);
        let mut seen = Vec::new();
        for piece in pieces {
            parser.push(Bytes::copy_from_slice(piece));
            while let Some(event) = parser.poll_event()? {
                record(&mut parser, &mut std::iter::empty(), &mut seen, event);
            }
        }
        let tunnel = parser.take_tunnel_bytes().map(|b| b.to_vec());
        Ok((seen, tunnel))
    }

    #[test]
    fn connect_200_split_anywhere_hands_every_later_byte_to_the_tunnel() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\
            Content-Length: 99\r\n\r\n\x16\x03\x03tunnel";
        let expected = (vec![Seen::Head(200)], Some(b"\x16\x03\x03tunnel".to_vec()));
        assert_eq!(run_connect(&[wire]), Ok(expected.clone()), "whole");
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(run_connect(&bytes), Ok(expected.clone()), "byte by byte");
        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            assert_eq!(run_connect(&[a, b]), Ok(expected.clone()), "split at {at}");
        }
    }

    #[test]
    fn connect_407_has_a_normal_body_and_opens_no_tunnel() {
        let wire = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Basic realm=\"proxy-test\"\r\nContent-Length: 4\r\n\r\ndeny";
        let expected = vec![Seen::Head(407), body("deny"), Seen::End { reusable: true }];
        assert_every_split(&[Method::Connect], wire, false, &expected);
        assert_eq!(run_connect(&[wire]), Ok((expected, None)));
    }

    #[test]
    fn after_the_tunnel_bytes_are_taken_the_parser_reads_the_origins_responses() {
        let mut parser = ResponseParser::new(Limits::default());
        parser.expect_response(Method::Connect);
        parser.push(Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"));
        assert!(matches!(parser.poll_event(), Ok(Some(ResponseEvent::Head(h))) if h.status == 200));
        assert!(parser.is_tunnel() && !parser.is_idle());
        // Nothing happens while the tunnel is open, even at EOF: the driver reports it.
        assert!(matches!(parser.poll_event(), Ok(None)));
        assert_eq!(parser.take_tunnel_bytes().as_deref(), Some(&b""[..]));
        assert!(parser.is_idle() && parser.take_tunnel_bytes().is_none());
        parser.expect_response(Method::Get);
        parser.push(Bytes::from_static(b"HTTP/1.1 204 No Content\r\n\r\n"));
        assert!(matches!(parser.poll_event(), Ok(Some(ResponseEvent::Head(h))) if h.status == 204));
        assert!(matches!(
            parser.poll_event(),
            Ok(Some(ResponseEvent::End { reusable: true }))
        ));
    }

    #[test]
    #[should_panic(expected = "take_tunnel_bytes")]
    fn expecting_a_response_before_taking_the_tunnel_panics() {
        let mut parser = ResponseParser::new(Limits::default());
        parser.expect_response(Method::Connect);
        parser.push(Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"));
        let _ = parser.poll_event();
        parser.expect_response(Method::Get);
    }

    proptest::proptest! {
        /// What a fuzz target checks, in miniature: hostile bytes after a valid or empty head
        /// end in events or an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            head in proptest::sample::select(vec![
                &b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"[..],
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"HTTP/1.0 200 OK\r\n\r\n",
                b"",
            ]),
            tail in proptest::collection::vec(proptest::sample::select(b"0123456789aF;= \r\n:Xx".to_vec()), 0..200),
            cut in 0usize..300,
            eof in proptest::bool::ANY,
        ) {
            let wire = [head, &tail[..]].concat();
            let (a, b) = wire.split_at(cut.min(wire.len()));
            let limits = Limits { max_head_bytes: 128, max_headers: 4 };
            let _ = run(limits, &[Method::Get, Method::Get], &[a, b], eof);
            let _ = run_connect(&[a, b]);
        }
    }

    #[test]
    #[should_panic(expected = "in progress")]
    fn expecting_a_second_response_mid_response_panics() {
        let mut parser = ResponseParser::new(Limits::default());
        parser.expect_response(Method::Get);
        parser.expect_response(Method::Get);
    }
}
