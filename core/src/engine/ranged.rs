//! Files added with `AddFileWithRanges`: one request per range, in the order given, each
//! answer checked to be exactly that range of the same version, its bytes appended to the
//! local file.
//!
//! - Each range is asked for with `Range: bytes=a-b` (`bytes=a-` for a range to EOF while the
//!   size is unknown), and with `If-Range` once the local file holds bytes of a version.
//! - A 206 must carry `Content-Range: bytes a-b/size` for exactly the range asked. The first
//!   one gives the remote size: a range outside it fails the job with `BG_E_INVALID_RANGE`, as
//!   does a 416. A different size or validator later means the remote file changed: the file
//!   starts over from its first range, never mixing versions.
//! - A 200 to a range request fails the job with `BG_E_INSUFFICIENT_RANGE_SUPPORT` (BITS'
//!   server requirement), unless `If-Range` was sent and the 200 carries another validator:
//!   that is the server saying the version changed, and the file starts over. Reading the
//!   whole entity to keep a few ranges could cost any amount of traffic, so it is not done.
//! - The local offset (`transferred`, `synced`) maps to (range, offset in range), so a resume
//!   or a restart from a checkpoint continues inside the current range.
//! - A 206 may come as `multipart/byteranges` (some servers answer that way): its parts must
//!   continue the range asked for, in order, without gaps; each part is checked as it starts.

use bytes::Bytes;

use crate::codes;
use crate::error::Severity;
use crate::http::{self, BodyFraming, ByterangesParser, ContentRange, PartEvent, ResponseHead};
use crate::ids::{ConnId, JobId};
use crate::job::file::JobFile;
use crate::job::ranges::{self, LENGTH_TO_EOF};
use crate::job::Trigger;

use super::transfer::{remote_error, Phase};
use super::Engine;

/// The range a ranged file's request in flight asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RangeRequest {
    /// Which of the file's ranges.
    pub(super) index: usize,
    /// First remote byte asked for.
    pub(super) start: u64,
    /// Last remote byte asked for; `None`: to the end (a range to EOF of unknown size).
    pub(super) end_inclusive: Option<u64>,
    /// `If-Range` was sent: the local file holds bytes of the recorded version.
    pub(super) conditional: bool,
    /// The local offset the range's first byte asked for goes to.
    pub(super) local_start: u64,
    /// One past the local offset this range's last byte goes to, once the head is accepted.
    pub(super) local_end: Option<u64>,
}

/// The next request of a ranged file from its local offset, or `None` when that offset does not
/// fall inside a range (the caller starts the file over).
pub(super) fn next_request(file: &JobFile, conditional: bool) -> Option<RangeRequest> {
    let place = ranges::locate(&file.ranges, file.size, file.transferred)?;
    let range = file.ranges[place.index];
    let start = range.initial_offset + place.within;
    let end_inclusive = match range.resolved_len(file.size) {
        Some(len) => Some(range.initial_offset + len - 1),
        None if range.length == LENGTH_TO_EOF => None,
        None => return None,
    };
    Some(RangeRequest {
        index: place.index,
        start,
        end_inclusive,
        conditional,
        local_start: file.transferred,
        local_end: None,
    })
}

impl Engine {
    /// A 2xx or 416 answering a range request of a ranged file.
    pub(super) fn handle_ranged_head(&mut self, id: JobId, conn: ConnId, head: &ResponseHead) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        let Some(request) = fetch.range else {
            return;
        };
        let url = fetch.url.to_string();
        let file = &mut job.rec.files[fetch.file as usize];
        let asked = describe_request(&request);
        let boundary = head
            .header("content-type")
            .and_then(http::byteranges_boundary)
            .filter(|_| head.status == 206);
        if let Some(boundary) = boundary {
            // The range comes as parts, each with its own Content-Range (checked as they come).
            let known = file.transferred > 0;
            if known && head.strong_etag().is_some() && changed(file, head) {
                return self.restart_file(id, conn);
            }
            if !known {
                file.etag = head.strong_etag().map(str::to_string);
                file.last_modified = head.last_modified().map(str::to_string);
            }
            fetch.parts = Some(ByterangesParser::new(&boundary));
            fetch.phase = Phase::Body;
            self.apply(id, Trigger::ResponseAccepted);
            return;
        }
        let fail = match head.status {
            200 | 203 | 204 => {
                if request.conditional && changed(file, head) {
                    return self.restart_file(id, conn);
                }
                let why = format!(
                    "{url} answered {} to Range: bytes={asked}: the server does not serve ranges",
                    head.status
                );
                Some((codes::BG_E_INSUFFICIENT_RANGE_SUPPORT, why))
            }
            416 => {
                let size = match head.content_range() {
                    Some(ContentRange::Unsatisfied { total }) => format!(" (its size is {total})"),
                    _ => String::new(),
                };
                let why = format!("range {} is outside {url}{size}", request.index);
                Some((codes::BG_E_INVALID_RANGE, why))
            }
            206 => match head.content_range() {
                Some(ContentRange::Bytes {
                    start,
                    end_inclusive,
                    total: Some(total),
                }) => {
                    let known = file.transferred > 0;
                    // A 206 without an ETag is trusted: If-Range made the server check.
                    let other_version = head.strong_etag().is_some() && changed(file, head);
                    if known && (file.size != Some(total) || other_version) {
                        return self.restart_file(id, conn);
                    }
                    file.size = Some(total);
                    if !known {
                        file.etag = head.strong_etag().map(str::to_string);
                        file.last_modified = head.last_modified().map(str::to_string);
                    }
                    let expected_end = request.end_inclusive.unwrap_or(total.saturating_sub(1));
                    let length = end_inclusive - start + 1;
                    if let Some((i, r)) = ranges::first_outside(&file.ranges, total) {
                        let why = format!(
                            "range {i} (offset {}, length {}) is outside {url}, which has {total} bytes",
                            r.initial_offset,
                            describe_length(r.length)
                        );
                        Some((codes::BG_E_INVALID_RANGE, why))
                    } else if start != request.start || end_inclusive != expected_end {
                        let why = format!(
                            "{url} answered Range: bytes={asked} with bytes {start}-{end_inclusive}"
                        );
                        Some((codes::BG_E_INVALID_SERVER_RESPONSE, why))
                    } else if matches!(head.framing, BodyFraming::ContentLength(n) if n != length) {
                        let why = format!(
                            "{url} sent a Content-Length that is not the length of bytes \
                             {start}-{end_inclusive}"
                        );
                        Some((codes::BG_E_INVALID_SERVER_RESPONSE, why))
                    } else {
                        let local_end = fetch.offset + (expected_end + 1 - request.start);
                        if let Some(r) = fetch.range.as_mut() {
                            r.local_end = Some(local_end);
                        }
                        fetch.phase = Phase::Body;
                        None
                    }
                }
                _ => {
                    let why = format!(
                        "{url} answered 206 to Range: bytes={asked} without a Content-Range \
                         naming the bytes and the file's size"
                    );
                    Some((codes::BG_E_INVALID_SERVER_RESPONSE, why))
                }
            },
            // Only the statuses above are routed here.
            other => unreachable!("status {other} is not a ranged answer"),
        };
        match fail {
            Some((code, why)) => self.fail(id, remote_error(code, why), Severity::Fatal, None),
            None => {
                self.apply(id, Trigger::ResponseAccepted);
            }
        }
    }

    /// The body of one range ended. Returns `true` when it was the file's last range (the
    /// caller completes the file); otherwise the next range is requested, or the job failed.
    pub(super) fn end_of_range(&mut self, id: JobId, conn: ConnId, reusable: bool) -> bool {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return false;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return false;
        };
        let file = &job.rec.files[fetch.file as usize];
        let local_end = fetch.range.and_then(|r| r.local_end);
        if let Some(parts) = &fetch.parts {
            let problem = match parts.finish() {
                Err(e) => Some(e.to_string()),
                Ok(()) if local_end != Some(fetch.offset) => {
                    Some("its parts do not cover the range asked for".to_string())
                }
                Ok(()) => None,
            };
            if let Some(problem) = problem {
                let why = format!(
                    "{} sent a multipart answer to a range request: {problem}",
                    fetch.url
                );
                let error = remote_error(codes::BG_E_INVALID_SERVER_RESPONSE, why);
                self.fail(id, error, Severity::Fatal, None);
                return false;
            }
        }
        if local_end != Some(fetch.offset) {
            let why = format!(
                "{} closed the response before the end of range {}",
                fetch.url,
                fetch.range.map_or(0, |r| r.index)
            );
            let error = remote_error(codes::BG_E_CONNECTION_CLOSED, why);
            self.fail(id, error, Severity::Transient, None);
            return false;
        }
        if ranges::locate(&file.ranges, file.size, fetch.offset).is_none() {
            return true;
        }
        fetch.conn = None;
        fetch.range = None;
        fetch.parts = None;
        self.release_conn(conn, reusable, now);
        self.connect_or_reuse(id);
        false
    }
}

impl Engine {
    /// Body bytes of a `multipart/byteranges` answer: each part must continue the range asked
    /// for exactly where the bytes so far end (a server that merges or reorders ranges is
    /// `BG_E_INVALID_SERVER_RESPONSE`); its bytes are written like a plain 206's.
    pub(super) fn handle_part_bytes(&mut self, id: JobId, data: Bytes) {
        let Some(fetch) = self.fetch_mut(id) else {
            return;
        };
        let Some(parser) = fetch.parts.as_mut() else {
            return;
        };
        let mut events = Vec::new();
        let result = parser.push(data, &mut events);
        for event in events {
            let still = self
                .fetch_mut(id)
                .is_some_and(|f| f.phase == Phase::Body && f.parts.is_some());
            if !still {
                return;
            }
            match event {
                PartEvent::Part {
                    start,
                    end_inclusive,
                    total,
                } => {
                    if !self.accept_part(id, start, end_inclusive, total) {
                        return;
                    }
                }
                PartEvent::Data(bytes) => self.write_body(id, bytes),
                PartEvent::End => {}
            }
        }
        if let Err(e) = result {
            let Some(fetch) = self.fetch_mut(id).filter(|f| f.parts.is_some()) else {
                return;
            };
            let why = format!("{}: {e}", fetch.url);
            let error = remote_error(codes::BG_E_INVALID_SERVER_RESPONSE, why);
            self.fail(id, error, Severity::Fatal, None);
        }
    }

    /// A part's Content-Range; `false` when the fetch stopped (failed or restarted).
    fn accept_part(
        &mut self,
        id: JobId,
        start: u64,
        end_inclusive: u64,
        total: Option<u64>,
    ) -> bool {
        let Some(job) = self.jobs.get_mut(&id) else {
            return false;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return false;
        };
        let Some(request) = fetch.range else {
            return false;
        };
        let url = fetch.url.to_string();
        let file = &mut job.rec.files[fetch.file as usize];
        let fail = match total {
            None => Some((
                codes::BG_E_INVALID_SERVER_RESPONSE,
                format!("{url} sent a part without the file's size"),
            )),
            Some(total) if file.size.is_some_and(|size| size != total) => {
                // The size changed under the same validator: another version.
                let conn = fetch.conn;
                if let Some(conn) = conn {
                    self.restart_file(id, conn);
                }
                return false;
            }
            Some(total) => {
                file.size = Some(total);
                let expected_start = request.start + (fetch.offset - request.local_start);
                let expected_end = request.end_inclusive.unwrap_or(total.saturating_sub(1));
                if let Some((i, r)) = ranges::first_outside(&file.ranges, total) {
                    let why = format!(
                        "range {i} (offset {}, length {}) is outside {url}, which has {total} bytes",
                        r.initial_offset,
                        describe_length(r.length)
                    );
                    Some((codes::BG_E_INVALID_RANGE, why))
                } else if start != expected_start || end_inclusive > expected_end {
                    let why = format!(
                        "{url} answered Range: bytes={} with a part of bytes                          {start}-{end_inclusive}",
                        describe_request(&request)
                    );
                    Some((codes::BG_E_INVALID_SERVER_RESPONSE, why))
                } else {
                    let local_end = request.local_start + (expected_end + 1 - request.start);
                    if let Some(r) = fetch.range.as_mut() {
                        r.local_end = Some(local_end);
                    }
                    None
                }
            }
        };
        match fail {
            Some((code, why)) => {
                self.fail(id, remote_error(code, why), Severity::Fatal, None);
                false
            }
            None => true,
        }
    }
}

/// The answer carries another version than the one recorded: a different strong ETag, or
/// (without ETags) a different Last-Modified.
fn changed(file: &JobFile, head: &ResponseHead) -> bool {
    match (file.etag.as_deref(), head.strong_etag()) {
        (Some(a), Some(b)) => a != b,
        (Some(_), None) => true,
        (None, _) => match (file.last_modified.as_deref(), head.last_modified()) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        },
    }
}

fn describe_request(request: &RangeRequest) -> String {
    match request.end_inclusive {
        Some(end) => format!("{}-{end}", request.start),
        None => format!("{}-", request.start),
    }
}

fn describe_length(length: u64) -> String {
    if length == LENGTH_TO_EOF {
        "to EOF".to_string()
    } else {
        length.to_string()
    }
}
