//! Request lines in, reply lines out, with no socket: the daemon's line reader (generic over
//! any buffered reader, so tests feed it bytes split anywhere), the decoding of one line into a
//! [`Request`], and the encoding of a [`Reply`] into one line.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use backhaul_core::codes;

use crate::protocol::{Outcome, Reply, Request, WireError, VERSION};

/// What [`read_line`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadLine {
    /// A request line (without its newline; the last one may have had none at end of stream).
    Line,
    /// A line longer than the limit: read to its newline (or the end of stream) and discarded.
    TooLong,
    /// The end of the stream, between lines.
    Eof,
}

/// Reads one line (without its newline) of at most `max` bytes, newline included, into `line`
/// (which should be empty); a longer one is read to its end and discarded, so the next request
/// starts clean. The daemon passes [`crate::protocol::MAX_LINE`].
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<ReadLine> {
    let n = (&mut *reader)
        .take(max as u64)
        .read_until(b'\n', line)
        .await?;
    if n == 0 {
        return Ok(ReadLine::Eof);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(ReadLine::Line);
    }
    if n < max {
        // End of stream in the middle of a line: answer what arrived.
        return Ok(ReadLine::Line);
    }
    let mut rest = Vec::new();
    loop {
        rest.clear();
        let n = (&mut *reader)
            .take(max as u64)
            .read_until(b'\n', &mut rest)
            .await?;
        if n == 0 || rest.last() == Some(&b'\n') {
            return Ok(ReadLine::TooLong);
        }
    }
}

/// A refusal for request `id` (0 when the request could not be read).
pub fn error_reply(id: u64, error: WireError) -> Reply {
    Reply {
        v: VERSION,
        id,
        outcome: Outcome::Error(error),
    }
}

/// The reply to a line longer than `max` bytes.
pub fn too_long(max: usize) -> Reply {
    let why = format!("the request is longer than {max} bytes");
    error_reply(0, WireError::new(codes::E_INVALIDARG, why))
}

/// One line as a request of this protocol version, or the error reply that says why not.
pub fn decode(line: &[u8]) -> Result<Request, Reply> {
    let request: Request = serde_json::from_slice(line).map_err(|e| {
        let why = format!("not a request: {e}");
        error_reply(0, WireError::new(codes::E_INVALIDARG, why))
    })?;
    if request.v != VERSION {
        let why = format!(
            "protocol version {} is not spoken here ({VERSION} is)",
            request.v
        );
        return Err(error_reply(
            request.id,
            WireError::new(codes::E_NOTIMPL, why),
        ));
    }
    Ok(request)
}

/// A reply as one line of JSON, newline included.
pub fn encode(reply: &Reply) -> Vec<u8> {
    let mut out = serde_json::to_vec(reply).expect("a reply always encodes");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Op, MAX_LINE};

    async fn lines(mut stream: &[u8]) -> Vec<(ReadLine, usize)> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let read = read_line(&mut stream, &mut line, MAX_LINE).await.unwrap();
            if read == ReadLine::Eof {
                return out;
            }
            out.push((read, line.len()));
        }
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_read_and_one_byte_more_is_discarded_whole() {
        let mut stream = vec![b'a'; MAX_LINE - 1];
        stream.push(b'\n');
        stream.extend(vec![b'b'; MAX_LINE]);
        stream.push(b'\n');
        stream.extend(b"{\"v\":1,\"id\":1,\"op\":\"hello\"}\n");
        stream.extend(vec![b'c'; 3 * MAX_LINE]);
        let read = lines(&stream).await;
        let expected = [
            (ReadLine::Line, MAX_LINE - 1),
            (ReadLine::TooLong, MAX_LINE),
            (ReadLine::Line, 27),
            (ReadLine::TooLong, MAX_LINE),
        ];
        assert_eq!(read, expected);
    }

    #[tokio::test]
    async fn a_last_line_without_newline_is_answered() {
        assert_eq!(
            lines(b"x\ny").await,
            [(ReadLine::Line, 1), (ReadLine::Line, 1)]
        );
    }

    #[test]
    fn refused_lines_name_the_problem_and_replies_are_one_line() {
        let message = |reply: &Reply| match &reply.outcome {
            Outcome::Error(e) => e.to_string(),
            Outcome::Ok(v) => panic!("not an error: {v}"),
        };
        let bad = decode(b"{\"v\":1,\"id\":3,\"op\":\"format_disk\"}").unwrap_err();
        assert_eq!(bad.id, 0);
        assert!(
            message(&bad).contains("unknown variant `format_disk`"),
            "{bad:?}"
        );
        let future = decode(b"{\"v\":2,\"id\":3,\"op\":\"hello\"}").unwrap_err();
        assert_eq!(future.id, 3);
        assert!(message(&future).contains("E_NOTIMPL"), "{future:?}");
        assert!(message(&too_long(MAX_LINE)).contains("longer than 65536 bytes"));
        let hello = decode(b"{\"v\":1,\"id\":4,\"op\":\"hello\"}").unwrap();
        assert_eq!(hello.op, Op::Hello);
        let line = encode(&error_reply(0, WireError::new(codes::E_INVALIDARG, "a\nb")));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
    }
}
