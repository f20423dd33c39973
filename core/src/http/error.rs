//! Why a request could not be encoded or a response could not be read.

/// A fault in the HTTP/1.1 exchange. After a response-side error the connection is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The status line and headers together are longer than the configured limit.
    #[error("response head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The configured `max_head_bytes`.
        limit: usize,
    },
    /// The response has more header fields than the configured limit.
    #[error("response has more than {limit} header fields")]
    TooManyHeaders {
        /// The configured `max_headers`.
        limit: usize,
    },
    /// The response head is not valid HTTP/1.x.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Both Transfer-Encoding and Content-Length are present (RFC 9112 §6.3: a smuggling risk).
    #[error("response has both Transfer-Encoding and Content-Length")]
    ConflictingFraming,
    /// Content-Length is not a number, overflows, or is repeated with different values.
    #[error("invalid Content-Length: {0}")]
    InvalidContentLength(String),
    /// A transfer coding other than a lone `chunked`; we ask for identity, so we never decode others.
    #[error("unsupported Transfer-Encoding: {0}")]
    UnsupportedTransferEncoding(String),
    /// The chunked body framing is broken.
    #[error("invalid chunked body: {0}")]
    InvalidChunk(String),
    /// The peer closed the connection inside a response head or body.
    #[error("{}", eof_message(*.expected, *.received))]
    UnexpectedEof {
        /// Body bytes still missing, when the body length is known.
        expected: Option<u64>,
        /// Bytes of the unfinished head, or body bytes delivered so far.
        received: u64,
    },
    /// Bytes arrived while no response was expected.
    #[error("data arrived while no response was expected")]
    UnexpectedData,
    /// A 101 response: we never ask to switch protocols.
    #[error("server switched protocols (101), which was never requested")]
    SwitchingProtocols,
    /// A request head could not be encoded safely.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

fn eof_message(expected: Option<u64>, received: u64) -> String {
    match expected {
        Some(missing) => {
            format!("connection closed after {received} body bytes with {missing} more expected")
        }
        None => {
            format!("connection closed before the response was complete, after {received} bytes")
        }
    }
}
