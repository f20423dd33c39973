//! The wire side of the test server: parsing a request head, writing a response head, and the
//! small HTTP rules (`Range`, `If-Range`, reason phrases) the responses follow.

use std::io::{self, Read, Write};

use super::FileSpec;

/// Largest request head accepted (431 beyond).
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// A parsed request head.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) version: String,
    pub(super) headers: Vec<(String, String)>,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn wants_close(&self) -> bool {
        let connection = self.header("Connection").unwrap_or("").to_ascii_lowercase();
        let tokens: Vec<&str> = connection.split(',').map(str::trim).collect();
        if self.version == "HTTP/1.0" {
            !tokens.contains(&"keep-alive")
        } else {
            tokens.contains(&"close")
        }
    }

    pub(super) fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// `If-Range` absent, or equal to the current `ETag` or `Last-Modified` exactly.
pub(super) fn if_range_matches(request: &Request, file: &FileSpec) -> bool {
    match request.header("If-Range") {
        None => true,
        Some(v) => file.etag.as_deref() == Some(v) || file.last_modified.as_deref() == Some(v),
    }
}

/// `bytes=N-` or `bytes=N-M` (one range); anything else is ignored as RFC 9110 allows.
pub(super) fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        e => {
            let end: u64 = e.parse().ok()?;
            if end < start {
                return None;
            }
            Some(end)
        }
    };
    Some((start, end))
}

pub(super) fn write_head<S: Write>(
    stream: &mut S,
    status: u16,
    headers: &[(String, String)],
    content_length: Option<u64>,
    close: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(len) = content_length {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str(if close {
        "Connection: close\r\n"
    } else {
        "Connection: keep-alive\r\n"
    });
    head.push_str("Server: backhaul-test-server\r\n\r\n");
    stream.write_all(head.as_bytes())
}

pub(super) fn write_simple<S: Write>(
    stream: &mut S,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    write_head(stream, status, headers, Some(body.len() as u64), close)?;
    stream.write_all(body)
}

pub(super) enum ReadOutcome {
    Request(Request),
    Eof,
    TooLarge,
    Malformed,
}

/// Reads one request head (and discards a `Content-Length` body). `buf` keeps what was read
/// past it (pipelining).
pub(super) fn read_request<S: Read>(stream: &mut S, buf: &mut Vec<u8>) -> io::Result<ReadOutcome> {
    let head_end = loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Ok(ReadOutcome::TooLarge);
        }
        let mut chunk = [0u8; 8192];
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            // A peer that vanishes between requests is an end, not a failure.
            Err(e) if buf.is_empty() && is_disconnect(&e) => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(ReadOutcome::Eof);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head: Vec<u8> = buf.drain(..head_end).collect();
    let Ok(text) = std::str::from_utf8(&head) else {
        return Ok(ReadOutcome::Malformed);
    };
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Ok(ReadOutcome::Malformed);
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Ok(ReadOutcome::Malformed);
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let request = Request {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
    };
    let body_len: usize = request
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut remaining = body_len;
    let from_buf = remaining.min(buf.len());
    buf.drain(..from_buf);
    remaining -= from_buf;
    while remaining > 0 {
        let mut chunk = [0u8; 8192];
        let want = remaining.min(chunk.len());
        let n = stream.read(&mut chunk[..want])?;
        if n == 0 {
            return Ok(ReadOutcome::Eof);
        }
        remaining -= n;
    }
    Ok(ReadOutcome::Request(request))
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
