//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally.
//!
//! httparse parses chunk-size lines; the state machine around it is ours because no crate
//! offers a sans-IO incremental decoder that hands back slices of the received `Bytes`.

use bytes::Bytes;

use super::recv::{RecvQueue, Scan, Scanned};
use super::{HttpError, Limits};

/// Where in the chunked body we are.
#[derive(Debug)]
pub(super) struct ChunkedDecoder {
    state: ChunkState,
}

#[derive(Debug)]
enum ChunkState {
    /// Reading a chunk-size line (with optional extensions).
    Size(Scan),
    /// Inside a chunk's data.
    Data { remaining: u64 },
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: skipping trailer fields up to the blank line.
    Trailers(Scan),
    /// The body is complete.
    Done,
}

/// What the decoder produced.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    /// Body bytes, never empty: a slice of one pushed piece.
    Data(Bytes),
    /// The body and its trailers are complete.
    End,
    /// More bytes are needed.
    NeedMore,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub(super) fn new() -> Self {
        Self {
            state: ChunkState::Size(Scan::line()),
        }
    }

    /// Consumes framing from `rx` until it can return body bytes, the end, or needs more.
    /// Size lines and trailers are bounded by `limits.max_head_bytes`.
    pub(super) fn poll(
        &mut self,
        rx: &mut RecvQueue,
        limits: Limits,
    ) -> Result<Decoded, HttpError> {
        let max = limits.max_head_bytes;
        loop {
            match &mut self.state {
                ChunkState::Size(scan) => {
                    let len = match scan.resume(rx, max) {
                        Scanned::Found(len) => len,
                        Scanned::NeedMore => return Ok(Decoded::NeedMore),
                        Scanned::TooLong => {
                            return Err(invalid(format!("chunk size line exceeds {max} bytes")))
                        }
                    };
                    let size = parse_size_line(&rx.take(len))?;
                    self.state = match size {
                        0 => ChunkState::Trailers(Scan::trailers()),
                        _ => ChunkState::Data { remaining: size },
                    };
                }
                ChunkState::Data { remaining } => {
                    if rx.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let data = rx.take_front(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    *remaining -= data.len() as u64;
                    if *remaining == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                    return Ok(Decoded::Data(data));
                }
                ChunkState::DataEnd => {
                    if rx.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if rx.take(2) != b"\r\n"[..] {
                        return Err(invalid("chunk data is not followed by CRLF".into()));
                    }
                    self.state = ChunkState::Size(Scan::line());
                }
                ChunkState::Trailers(scan) => {
                    let len = match scan.resume(rx, max) {
                        Scanned::Found(len) => len,
                        Scanned::NeedMore => return Ok(Decoded::NeedMore),
                        Scanned::TooLong => {
                            return Err(invalid(format!("trailer section exceeds {max} bytes")))
                        }
                    };
                    check_trailers(&rx.take(len), limits.max_headers)?;
                    self.state = ChunkState::Done;
                }
                ChunkState::Done => return Ok(Decoded::End),
            }
        }
    }
}

/// The size from one complete chunk-size line (ending in LF).
fn parse_size_line(line: &[u8]) -> Result<u64, HttpError> {
    // httparse reads an empty size as 0, which would end the body early: require a digit.
    if !line.first().is_some_and(u8::is_ascii_hexdigit) {
        return Err(invalid(
            "chunk size line does not start with a hex digit".into(),
        ));
    }
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((used, size))) if used == line.len() => Ok(size),
        // A bare LF inside an extension leaves httparse waiting for CRLF.
        Ok(_) => Err(invalid("chunk size line does not end in CRLF".into())),
        Err(httparse::InvalidChunkSize) => Err(invalid("malformed chunk size line".into())),
    }
}

/// Trailer fields are ignored, but must be well formed: garbage here means we lost the framing.
fn check_trailers(section: &[u8], max_headers: usize) -> Result<(), HttpError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
    match httparse::parse_headers(section, &mut slots) {
        Ok(httparse::Status::Complete((used, _))) if used == section.len() => Ok(()),
        Err(httparse::Error::TooManyHeaders) => {
            Err(invalid(format!("more than {max_headers} trailer fields")))
        }
        _ => Err(invalid("malformed trailer section".into())),
    }
}

fn invalid(message: String) -> HttpError {
    HttpError::InvalidChunk(message)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const LIMITS: Limits = Limits {
        max_head_bytes: 1024,
        max_headers: 8,
    };

    /// Decodes `pieces` pushed one at a time; the body, or the first error.
    fn decode(pieces: &[&[u8]], limits: Limits) -> Result<Option<Vec<u8>>, HttpError> {
        let mut decoder = ChunkedDecoder::new();
        let mut rx = RecvQueue::default();
        let mut body = Vec::new();
        for piece in pieces {
            rx.push(Bytes::copy_from_slice(piece));
            loop {
                match decoder.poll(&mut rx, limits)? {
                    Decoded::Data(data) => {
                        assert!(!data.is_empty());
                        body.extend_from_slice(&data);
                    }
                    Decoded::End => return Ok(Some(body)),
                    Decoded::NeedMore => break,
                }
            }
        }
        Ok(None)
    }

    fn decode_err(wire: &[u8]) -> String {
        match decode(&[wire], LIMITS) {
            Err(HttpError::InvalidChunk(message)) => message,
            other => panic!(
                "expected InvalidChunk for {:?}, got {other:?}",
                String::from_utf8_lossy(wire)
            ),
        }
    }

    #[test]
    fn chunks_with_extensions_and_trailers_decode() {
        let wire = b"4;a=b\r\nWiki\r\n5 ; q=\"x;y\"\r\npedia\r\n0\r\nX-Sum: 1\r\n\r\n";
        assert_eq!(decode(&[wire], LIMITS), Ok(Some(b"Wikipedia".to_vec())));
    }

    #[test]
    fn bad_size_lines_are_rejected() {
        for wire in [
            &b"zz\r\n"[..],
            b"\r\n",
            b";ext\r\n",
            b"-1\r\n",
            b"5\n",
            b"5;e\nhello",
            b"11111111111111111\r\n",
        ] {
            decode_err(wire);
        }
    }

    #[test]
    fn missing_crlf_after_data_is_rejected() {
        assert_eq!(
            decode_err(b"3\r\nabcX\r\n0\r\n\r\n"),
            "chunk data is not followed by CRLF"
        );
    }

    #[test]
    fn oversized_size_line_is_rejected() {
        let mut wire = b"5;".to_vec();
        wire.resize(2000, b'x');
        assert!(decode_err(&wire).contains("exceeds 1024 bytes"));
    }

    #[test]
    fn oversized_or_malformed_trailers_are_rejected() {
        let mut wire = b"0\r\n".to_vec();
        for i in 0..200 {
            wire.extend_from_slice(format!("X-T{i}: v\r\n").as_bytes());
        }
        assert!(decode_err(&wire).contains("trailer section exceeds"));
        decode_err(b"0\r\nnot a header\r\n\r\n");
        let many: Vec<u8> = (0..9)
            .flat_map(|i| format!("T{i}: v\r\n").into_bytes())
            .chain(*b"\r\n")
            .collect();
        let wire = [&b"0\r\n"[..], &many].concat();
        assert!(decode_err(&wire).contains("more than 8 trailer fields"));
    }

    /// `body` chunked at `sizes` (cycled), with an extension on odd chunks and a trailer.
    fn encode(body: &[u8], sizes: &[usize], trailer: bool) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut rest = body;
        for (i, &size) in sizes.iter().cycle().enumerate() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            let ext = if i % 2 == 1 { ";i=odd" } else { "" };
            wire.extend_from_slice(format!("{:X}{ext}\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
            rest = tail;
        }
        wire.extend_from_slice(b"0\r\n");
        if trailer {
            wire.extend_from_slice(b"X-Digest: abc\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        wire
    }

    proptest! {
        #[test]
        fn random_chunking_and_splits_decode_to_the_original_body(
            body in proptest::collection::vec(any::<u8>(), 0..600),
            sizes in proptest::collection::vec(1usize..80, 1..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            trailer in any::<bool>(),
        ) {
            let wire = encode(&body, &sizes, trailer);
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            at.extend([0, wire.len()]);
            at.sort_unstable();
            let pieces: Vec<&[u8]> = at.windows(2).map(|w| &wire[w[0]..w[1]]).collect();
            prop_assert_eq!(decode(&pieces, LIMITS), Ok(Some(body)));
        }
    }
}
