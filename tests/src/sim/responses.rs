//! The bytes of the scripted servers' responses: full, ranged, multipart, truncated, and
//! scripted statuses.

use super::{Resource, SeenRequest};

/// A full or ranged response for `resource`, as a real server would send it.
pub(super) fn serve(resource: Option<&Resource>, req: &SeenRequest) -> Vec<u8> {
    let Some(r) = resource else {
        return status_response(404, &[]);
    };
    let len = r.body.len() as u64;
    let validators_match = match req.header("if-range") {
        None => true,
        Some(v) => r.etag.as_deref() == Some(v) || r.last_modified.as_deref() == Some(v),
    };
    // `bytes=a-` or `bytes=a-b` (an end past the file is cut to it, RFC 9110 §14.1.2).
    let range = req
        .header("range")
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let end = if b.is_empty() {
                None
            } else {
                Some(b.parse::<u64>().ok()?)
            };
            Some((a.parse::<u64>().ok()?, end))
        })
        .filter(|_| validators_match);
    let mut head = String::new();
    let body: &[u8] = match range {
        Some((start, _)) if start >= len => {
            head.push_str(&format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n"
            ));
            head.push_str("Content-Length: 0\r\n");
            &[]
        }
        Some((start, end)) => {
            let end = end.map_or(len - 1, |end| end.min(len - 1));
            head.push_str("HTTP/1.1 206 Partial Content\r\n");
            head.push_str(&format!("Content-Range: bytes {start}-{end}/{len}\r\n"));
            &r.body[start as usize..=end as usize]
        }
        None => {
            head.push_str("HTTP/1.1 200 OK\r\n");
            &r.body
        }
    };
    if let Some(etag) = &r.etag {
        head.push_str(&format!("ETag: {etag}\r\n"));
    }
    if let Some(lm) = &r.last_modified {
        head.push_str(&format!("Last-Modified: {lm}\r\n"));
    }
    let mut out;
    if r.chunked && !head.contains(" 416 ") {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        out = head.into_bytes();
        for piece in body.chunks(1000) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        if !head.contains("Content-Length") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        out = head.into_bytes();
        out.extend_from_slice(body);
    }
    out
}

/// A 206 `multipart/byteranges` answer to a one-range request, in `parts` adjacent parts.
pub(super) fn serve_multipart(
    resource: Option<&Resource>,
    req: &SeenRequest,
    parts: usize,
) -> Vec<u8> {
    let single = serve(resource, req);
    let (Some(r), true) = (resource, single.starts_with(b"HTTP/1.1 206")) else {
        return single;
    };
    let text = String::from_utf8_lossy(&single);
    let range = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Range: bytes "))
        .and_then(|v| v.split_once('/'))
        .and_then(|(range, _)| range.split_once('-'))
        .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
        .expect("a 206 names its range");
    let len = r.body.len();
    let (start, end) = range;
    let step = (end + 1 - start).div_ceil(parts.max(1));
    let mut body = b"\r\n".to_vec();
    let mut at = start;
    while at <= end {
        let last = (at + step - 1).min(end);
        body.extend_from_slice(b"--SIM_BOUNDARY\r\nContent-Type: application/octet-stream\r\n");
        body.extend_from_slice(
            format!("Content-Range: bytes {at}-{last}/{len}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&r.body[at..=last]);
        body.extend_from_slice(b"\r\n");
        at = last + 1;
    }
    body.extend_from_slice(b"--SIM_BOUNDARY--\r\n");
    let mut head = "HTTP/1.1 206 Partial Content\r\n\
        Content-Type: multipart/byteranges; boundary=SIM_BOUNDARY\r\n"
        .to_string();
    if let Some(etag) = &r.etag {
        head.push_str(&format!("ETag: {etag}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    [head.into_bytes(), body].concat()
}

pub(super) fn serve_truncated(
    resource: Option<&Resource>,
    req: &SeenRequest,
    body_bytes: u64,
) -> (Vec<u8>, Option<u64>) {
    let full = serve(resource, req);
    let head_len = full
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(full.len(), |p| p + 4);
    let cut = (head_len as u64 + body_bytes).min(full.len() as u64) as usize;
    (full[..cut].to_vec(), Some(body_bytes))
}

pub(super) fn status_response(status: u16, extra: &[(String, String)]) -> Vec<u8> {
    let body = format!("status {status}: this body must never reach a file\n");
    let mut out = format!(
        "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}
