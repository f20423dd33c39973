//! The HTTP/1.1 client codec: request heads out, response events in, no I/O.
//!
//! Both drivers speak HTTP through this module, so every byte parser lives (and is fuzzed)
//! once. A connection owns one [`ResponseParser`]: the driver [`push`](ResponseParser::push)es
//! received bytes, the engine calls [`expect_response`](ResponseParser::expect_response) for
//! each request it writes with [`Request::encode`], then drains
//! [`poll_event`](ResponseParser::poll_event) until `Ok(None)`. Body bytes come out as slices
//! of the pushed `Bytes`, never copied.

mod chunked;
mod content_range;
mod error;
mod framing;
mod head;
mod multipart;
mod parser;
mod recv;
mod request;

pub use self::content_range::{parse_content_range, ContentRange};
pub use self::error::HttpError;
pub use self::head::{BodyFraming, ResponseHead};
pub use self::multipart::{
    byteranges_boundary, ByterangesParser, MultipartError, PartEvent, MAX_PART_HEAD_BYTES,
};
pub use self::parser::{Limits, ResponseEvent, ResponseParser};
pub use self::request::{Method, Request};
