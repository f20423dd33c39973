//! Files, connections, requests and responses: how the current file of a running job moves.
//!
//! A running job has at most one [`Fetch`]: the current file (FIFO, one at a time). A fetch
//! opens the file's temp file, gets a connection (an idle keep-alive one to the same origin, or
//! a new one), sends a GET (with `Range` + `If-Range` when resuming), and turns the response into
//! writes at offsets. Only a 206 that continues exactly the recorded version is spliced onto the
//! bytes already on disk; anything else restarts the file from byte 0.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use url::{Position, Url};

use crate::codes::{self, HResult};
use crate::error::{ErrorContext, JobError, Severity};
use crate::http::{
    self, BodyFraming, ContentRange, HttpError, Method, Request, ResponseEvent, ResponseHead,
    ResponseParser,
};
use crate::ids::{ConnId, FileIndex, JobId};
use crate::input::{FileOp, IoFailure, IoFailureKind};
use crate::job::{JobState, NotifyFlags, Trigger};
use crate::output::{Action, JobEvent};
use crate::time::Timestamp;
use crate::tls;
use rustls_pki_types::CertificateDer;

use super::{Engine, MODIFICATION_EVENT_INTERVAL};

/// Progress is persisted at least every this many bytes.
const CHECKPOINT_BYTES: u64 = 8 * 1024 * 1024;
/// An idle keep-alive connection is closed after this long.
const IDLE_CONNECTION_TIMEOUT_MS: u64 = 30_000;
/// A file restarted this many times within one fetch is a server fault.
const MAX_RESTARTS: u32 = 3;
/// Tries at finding an unused temp name.
const MAX_TEMP_NAME_TRIES: u32 = 16;

/// The request in flight for a job's current file.
#[derive(Debug)]
pub(crate) struct Fetch {
    pub(crate) file: FileIndex,
    /// Where the request goes (after redirects).
    url: Url,
    redirects: u32,
    restarts: u32,
    temp_name_tries: u32,
    phase: Phase,
    conn: Option<ConnId>,
    /// The file offset the next body byte is written at.
    offset: u64,
    /// The offset asked for with `Range` (0: the whole file).
    range_start: u64,
    temp_open: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    OpeningTemp,
    Connecting,
    AwaitingHead,
    Body,
}

/// Scheme, host and port: connections are pooled and reused per origin.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Origin {
    https: bool,
    host: String,
    port: u16,
}

/// A connection the engine asked for.
#[derive(Debug)]
pub(crate) struct Conn {
    origin: Origin,
    parser: ResponseParser,
    user: ConnUser,
    /// Connect timeout, receive timeout, or idle expiry, depending on `user`.
    pub(crate) deadline: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnUser {
    Connecting(JobId),
    Busy(JobId),
    Idle,
}

impl Engine {
    /// Starts the job's next unfinished file, or finishes the job when none is left.
    pub(super) fn start_next_file(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(index) = job.rec.files.iter().position(|f| !f.completed) else {
            self.apply(id, Trigger::AllFilesDone);
            return;
        };
        let file = &job.rec.files[index];
        let url = file.remote.clone();
        let create = file.temp.is_none();
        let index = FileIndex::try_from(index).unwrap_or(FileIndex::MAX);
        job.fetch = Some(Fetch {
            file: index,
            url,
            redirects: 0,
            restarts: 0,
            temp_name_tries: 0,
            phase: Phase::OpeningTemp,
            conn: None,
            offset: 0,
            range_start: 0,
            temp_open: false,
        });
        if create {
            let path = self.fresh_temp_name(id, index);
            self.jobs.get_mut(&id).expect("job exists").rec.files[index as usize].temp = Some(path);
        }
        self.open_temp(id, index, create);
    }

    fn open_temp(&mut self, id: JobId, file: FileIndex, create: bool) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let Some(path) = job.rec.files[file as usize].temp.clone() else {
            return;
        };
        self.push_action(Action::OpenTemp {
            job: id,
            file,
            path,
            create,
        });
    }

    /// A hidden name in the local name's directory: `.NAME.XXXXXXXX.backhaul`.
    fn fresh_temp_name(&mut self, id: JobId, file: FileIndex) -> PathBuf {
        use rand_chacha::rand_core::Rng;
        let local = &self.jobs[&id].rec.files[file as usize].local;
        let dir = local.parent().map(PathBuf::from).unwrap_or_default();
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Keep the temp name under NAME_MAX (255 bytes) whatever the local name's length.
        let mut short: String = String::new();
        for c in name.chars() {
            if short.len() + c.len_utf8() > 200 {
                break;
            }
            short.push(c);
        }
        let tag = self.rng.next_u32();
        dir.join(format!(".{short}.{tag:08x}.backhaul"))
    }

    pub(super) fn handle_temp_opened(&mut self, id: JobId, file: FileIndex, len: u64) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let expected =
            matches!(&job.fetch, Some(f) if f.file == file && f.phase == Phase::OpeningTemp);
        if !expected {
            // The fetch was stopped while the open was in flight: release the handle.
            self.push_action(Action::CloseFile { job: id, file });
            return;
        }
        let f = &mut job.rec.files[file as usize];
        if len < f.transferred {
            // A write failed (disk full): every byte before `len` is this version's, written in
            // order, so the transfer continues from there.
            f.transferred = len;
        } else if len > f.transferred {
            // Bytes past the last checkpoint may be incomplete: cut back to what was recorded.
            let keep = f.transferred;
            self.push_action(Action::TruncateFile {
                job: id,
                file,
                len: keep,
            });
        }
        let fetch = self.fetch_mut(id).expect("checked above");
        fetch.temp_open = true;
        self.connect_or_reuse(id);
    }

    fn connect_or_reuse(&mut self, id: JobId) {
        let Some(fetch) = self.fetch_mut(id) else {
            return;
        };
        let origin = match origin_of(&fetch.url) {
            Some(origin) => origin,
            None => {
                let why = format!("{} has no usable host", fetch.url);
                return self.fail(
                    id,
                    remote_error(codes::E_INVALIDARG, why),
                    Severity::Fatal,
                    None,
                );
            }
        };
        let idle = self
            .conns
            .iter()
            .find(|(_, c)| c.user == ConnUser::Idle && c.origin == origin)
            .map(|(id, _)| *id);
        let now = self.now;
        if let Some(conn) = idle {
            let c = self.conns.get_mut(&conn).expect("found above");
            c.user = ConnUser::Busy(id);
            self.fetch_mut(id).expect("checked above").conn = Some(conn);
            return self.send_request(id, conn);
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let limits = http::Limits {
            max_head_bytes: self.config.max_response_head_bytes,
            max_headers: self.config.max_response_headers,
        };
        self.conns.insert(
            conn,
            Conn {
                origin: origin.clone(),
                parser: ResponseParser::new(limits),
                user: ConnUser::Connecting(id),
                deadline: now.saturating_add(self.config.connect_timeout),
            },
        );
        let fetch = self.fetch_mut(id).expect("checked above");
        fetch.conn = Some(conn);
        fetch.phase = Phase::Connecting;
        self.push_action(Action::Connect {
            conn,
            host: origin.host.clone(),
            port: origin.port,
            tls_server_name: origin.https.then(|| origin.host.clone()),
        });
    }

    pub(super) fn handle_connected(&mut self, conn: ConnId, chain: Vec<CertificateDer<'static>>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let ConnUser::Connecting(id) = c.user else {
            return;
        };
        if c.origin.https {
            let host = c.origin.host.clone();
            if let Err(e) = tls::verify_server_chain(&self.trust, &chain, &host, self.now) {
                // Nothing has been sent: the connection is closed before one request byte.
                let error =
                    JobError::new(ErrorContext::GeneralTransport, e.kind.code(), e.to_string());
                return self.fail(id, error, Severity::Fatal, None);
            }
        }
        let c = self.conns.get_mut(&conn).expect("checked above");
        c.user = ConnUser::Busy(id);
        self.send_request(id, conn);
    }

    fn send_request(&mut self, id: JobId, conn: ConnId) {
        let now = self.now;
        let receive_timeout = self.config.receive_timeout;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        let file = &mut job.rec.files[fetch.file as usize];
        // Resume only what can be checked: a known size and a validator for If-Range.
        let resumable = file.transferred > 0 && file.size.is_some() && file.if_range().is_some();
        if file.transferred > 0 && !resumable {
            file.reset_version();
            // `self.out` directly: `self.jobs` is still borrowed, and the two fields are disjoint.
            self.out
                .push_back(crate::Output::Action(Action::TruncateFile {
                    job: id,
                    file: fetch.file,
                    len: 0,
                }));
        }
        let range_start = if resumable { file.transferred } else { 0 };
        let if_range = if resumable {
            file.if_range().map(str::to_string)
        } else {
            None
        };
        let host = host_header(&fetch.url);
        let request = Request {
            method: Method::Get,
            target: &fetch.url[Position::BeforePath..Position::AfterQuery],
            host: &host,
            user_agent: &self.config.user_agent,
            range_start: resumable.then_some(range_start),
            if_range: if_range.as_deref(),
            extra_headers: &[],
        };
        let mut buf = BytesMut::with_capacity(256);
        if let Err(e) = request.encode(&mut buf) {
            let error = remote_error(
                codes::E_INVALIDARG,
                format!("cannot request {}: {e}", fetch.url),
            );
            return self.fail(id, error, Severity::Fatal, None);
        }
        fetch.phase = Phase::AwaitingHead;
        fetch.range_start = range_start;
        fetch.offset = range_start;
        let c = self
            .conns
            .get_mut(&conn)
            .expect("the fetch's connection exists");
        c.parser.expect_response(Method::Get);
        c.deadline = now.saturating_add(receive_timeout);
        self.push_action(Action::Send {
            conn,
            data: buf.freeze(),
        });
        self.apply(id, Trigger::RequestSent);
    }

    pub(super) fn handle_received(&mut self, conn: ConnId, data: Bytes) {
        let now = self.now;
        let receive_timeout = self.config.receive_timeout;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let ConnUser::Busy(id) = c.user else {
            // Bytes on an idle or unfinished connection: the server is talking out of turn.
            return self.drop_conn(conn);
        };
        c.parser.push(data);
        c.deadline = now.saturating_add(receive_timeout);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.user != ConnUser::Busy(id) {
                return;
            }
            match c.parser.poll_event() {
                Ok(None) => return,
                Ok(Some(event)) => self.handle_response_event(id, conn, event),
                Err(e) => return self.handle_http_error(id, conn, e),
            }
        }
    }

    pub(super) fn handle_closed(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match c.user {
            ConnUser::Idle => self.drop_conn(conn),
            ConnUser::Connecting(id) => {
                let error =
                    IoFailure::new(IoFailureKind::ConnectionReset, "closed while connecting");
                self.drop_conn(conn);
                self.fail(id, connect_error(&error), Severity::Transient, None);
            }
            ConnUser::Busy(id) => {
                // End of stream may end a read-until-close body; anything else it cuts short.
                let mut next = c.parser.handle_eof();
                loop {
                    match next {
                        Ok(Some(event)) => self.handle_response_event(id, conn, event),
                        Ok(None) => break,
                        Err(e) => return self.handle_http_error(id, conn, e),
                    }
                    match self.conns.get_mut(&conn) {
                        Some(c) if c.user == ConnUser::Busy(id) => next = c.parser.poll_event(),
                        _ => break,
                    }
                }
                let still_busy = self
                    .conns
                    .get(&conn)
                    .is_some_and(|c| c.user == ConnUser::Busy(id));
                self.drop_conn(conn);
                if still_busy {
                    let why = "the server closed the connection before responding".to_string();
                    let error = JobError::new(
                        ErrorContext::GeneralTransport,
                        codes::BG_E_CONNECTION_CLOSED,
                        why,
                    );
                    self.fail(id, error, Severity::Transient, None);
                }
            }
        }
    }

    pub(super) fn handle_connection_failed(&mut self, conn: ConnId, error: IoFailure) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.push_action(Action::Close { conn });
        if let ConnUser::Connecting(id) | ConnUser::Busy(id) = c.user {
            if let Some(fetch) = self.fetch_mut(id) {
                fetch.conn = None;
            }
            let why = format!("connection to {} failed: {}", c.origin.host, error.message);
            let error = JobError::new(
                ErrorContext::GeneralTransport,
                codes::ERROR_WINHTTP_CONNECTION_ERROR,
                why,
            );
            self.fail(id, error, Severity::Transient, None);
        }
    }

    pub(super) fn handle_connect_failed(&mut self, conn: ConnId, error: IoFailure) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let ConnUser::Connecting(id) = c.user {
            if let Some(fetch) = self.fetch_mut(id) {
                fetch.conn = None;
            }
            let mut job_error = connect_error(&error);
            job_error.description = format!(
                "{}:{}: {}",
                c.origin.host, c.origin.port, job_error.description
            );
            self.fail(id, job_error, Severity::Transient, None);
        }
    }

    fn handle_http_error(&mut self, id: JobId, conn: ConnId, e: HttpError) {
        self.drop_conn(conn);
        let url = self
            .fetch_mut(id)
            .map(|f| f.url.to_string())
            .unwrap_or_default();
        let (code, severity) = match e {
            HttpError::UnexpectedEof { .. } => (codes::BG_E_CONNECTION_CLOSED, Severity::Transient),
            _ => (
                codes::ERROR_WINHTTP_INVALID_SERVER_RESPONSE,
                Severity::Fatal,
            ),
        };
        let error = JobError::new(ErrorContext::RemoteFile, code, format!("{e} ({url})"));
        self.fail(id, error, severity, None);
    }

    fn handle_response_event(&mut self, id: JobId, conn: ConnId, event: ResponseEvent) {
        match event {
            ResponseEvent::Head(head) => self.handle_head(id, conn, head),
            ResponseEvent::Body(data) => self.handle_body(id, data),
            ResponseEvent::End { reusable } => self.handle_end(id, conn, reusable),
        }
    }

    fn handle_head(&mut self, id: JobId, conn: ConnId, head: ResponseHead) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        let url = fetch.url.to_string();
        let status = head.status;
        match status {
            200 | 203 | 204 => {
                let file = &mut job.rec.files[fetch.file as usize];
                if fetch.range_start > 0 {
                    // The server sent the whole entity: the version changed or ranges are off.
                    // (`self.out` directly: `self.jobs` is still borrowed.)
                    self.out
                        .push_back(crate::Output::Action(Action::TruncateFile {
                            job: id,
                            file: fetch.file,
                            len: 0,
                        }));
                }
                file.reset_version();
                file.size = match head.framing {
                    BodyFraming::ContentLength(n) => Some(n),
                    BodyFraming::None => Some(0),
                    BodyFraming::Chunked | BodyFraming::UntilClose => None,
                };
                file.etag = head.strong_etag().map(str::to_string);
                file.last_modified = head.last_modified().map(str::to_string);
                fetch.offset = 0;
                fetch.range_start = 0;
                fetch.phase = Phase::Body;
                self.apply(id, Trigger::ResponseAccepted);
            }
            206 if fetch.range_start == 0 => {
                let why = format!("206 Partial Content for a request without Range ({url})");
                let error = remote_error(codes::BG_E_INVALID_SERVER_RESPONSE, why);
                self.fail(id, error, Severity::Fatal, None);
            }
            206 => {
                let file = &job.rec.files[fetch.file as usize];
                let continues = match head.content_range() {
                    Some(ContentRange::Bytes {
                        start,
                        end_inclusive,
                        total: Some(total),
                    }) => {
                        start == fetch.range_start
                            && Some(total) == file.size
                            && end_inclusive.checked_add(1) == Some(total)
                            && same_validator(file.etag.as_deref(), head.strong_etag())
                    }
                    _ => false,
                };
                if continues {
                    fetch.phase = Phase::Body;
                    self.apply(id, Trigger::ResponseAccepted);
                } else {
                    self.restart_file(id, conn);
                }
            }
            416 if fetch.range_start > 0 => self.restart_file(id, conn),
            301 | 302 | 303 | 307 | 308 => self.follow_redirect(id, conn, &head),
            s if is_transient_status(s) => {
                let retry_after = head.retry_after(now);
                let error = remote_error(
                    HResult::from_http_status(s),
                    format!("{url} answered {s} {}", head.reason),
                );
                self.fail(id, error, Severity::Transient, retry_after);
            }
            s => {
                let error = remote_error(
                    HResult::from_http_status(s),
                    format!("{url} answered {s} {}", head.reason),
                );
                self.fail(id, error, Severity::Fatal, None);
            }
        }
    }

    /// The server's answer does not continue the recorded version: start the file over from
    /// byte 0 on a fresh request. Never splice two versions.
    fn restart_file(&mut self, id: JobId, conn: ConnId) {
        self.drop_conn(conn);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        fetch.conn = None;
        fetch.restarts += 1;
        if fetch.restarts > MAX_RESTARTS {
            let why = format!(
                "{} keeps answering ranges that do not match the file",
                fetch.url
            );
            return self.fail(
                id,
                remote_error(codes::BG_E_INVALID_SERVER_RESPONSE, why),
                Severity::Fatal,
                None,
            );
        }
        let file = fetch.file;
        job.rec.files[file as usize].reset_version();
        self.push_action(Action::TruncateFile {
            job: id,
            file,
            len: 0,
        });
        self.connect_or_reuse(id);
    }

    fn follow_redirect(&mut self, id: JobId, conn: ConnId, head: &ResponseHead) {
        self.drop_conn(conn);
        let max_redirects = self.config.max_redirects;
        let Some(fetch) = self.fetch_mut(id) else {
            return;
        };
        fetch.conn = None;
        let from = fetch.url.clone();
        let refuse = |why: String| remote_error(codes::ERROR_WINHTTP_REDIRECT_FAILED, why);
        let Some(location) = head.location() else {
            return self.fail(
                id,
                refuse(format!("{from} redirected without a Location")),
                Severity::Fatal,
                None,
            );
        };
        let target = match from.join(location) {
            Ok(mut target) => {
                target.set_fragment(None);
                target
            }
            Err(e) => {
                let why = format!("{from} redirected to an invalid Location {location:?}: {e}");
                return self.fail(id, refuse(why), Severity::Fatal, None);
            }
        };
        let why = if !matches!(target.scheme(), "http" | "https") {
            Some(format!(
                "{from} redirected to {target}: only http and https are followed"
            ))
        } else if !target.username().is_empty() || target.password().is_some() {
            Some(format!("{from} redirected to a URL carrying credentials"))
        } else if from.scheme() == "https" && target.scheme() == "http" {
            Some(format!("{from} redirected from HTTPS to HTTP ({target})"))
        } else if fetch.redirects >= max_redirects {
            Some(format!("{from}: more than {max_redirects} redirects"))
        } else {
            None
        };
        if let Some(why) = why {
            return self.fail(id, refuse(why), Severity::Fatal, None);
        }
        fetch.redirects += 1;
        fetch.url = target;
        self.connect_or_reuse(id);
    }

    fn handle_body(&mut self, id: JobId, data: Bytes) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        if fetch.phase != Phase::Body {
            return;
        }
        let len = data.len() as u64;
        let file = &mut job.rec.files[fetch.file as usize];
        if let Some(size) = file.size {
            if fetch.offset + len > size {
                let why = format!("{} sent more bytes than its size ({size})", fetch.url);
                return self.fail(
                    id,
                    remote_error(codes::BG_E_INVALID_SERVER_RESPONSE, why),
                    Severity::Fatal,
                    None,
                );
            }
        }
        let offset = fetch.offset;
        fetch.offset += len;
        file.transferred = fetch.offset;
        let index = fetch.file;
        job.rec.last_progress = now;
        job.rec.times.modification = now;
        job.bytes_since_persist += len;
        let checkpoint = job.bytes_since_persist >= CHECKPOINT_BYTES;
        if checkpoint {
            job.bytes_since_persist = 0;
        }
        let modification_due = job
            .last_modification_event
            .is_none_or(|t| now.saturating_since(t) >= MODIFICATION_EVENT_INTERVAL);
        if modification_due {
            job.last_modification_event = Some(now);
        }
        self.push_action(Action::WriteFile {
            job: id,
            file: index,
            offset,
            data,
        });
        if checkpoint {
            self.push_action(Action::Persist { job: id });
        }
        if modification_due {
            self.notify(
                id,
                NotifyFlags::JOB_MODIFICATION,
                JobEvent::JobModification { job: id },
            );
        }
    }

    fn handle_end(&mut self, id: JobId, conn: ConnId, reusable: bool) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(fetch) = job.fetch.take_if(|f| f.phase == Phase::Body) else {
            return;
        };
        let file = &mut job.rec.files[fetch.file as usize];
        if file.size.is_some_and(|size| size != fetch.offset) {
            // Invariant: the codec ends a framed body only after exactly its length.
            unreachable!(
                "response ended at {} of {:?} bytes",
                fetch.offset, file.size
            );
        }
        file.size = Some(fetch.offset);
        file.completed = true;
        job.bytes_since_persist = 0;
        self.push_action(Action::CloseFile {
            job: id,
            file: fetch.file,
        });
        self.release_conn(conn, reusable, now);
        self.notify(
            id,
            NotifyFlags::FILE_TRANSFERRED,
            JobEvent::FileTransferred {
                job: id,
                file: fetch.file,
            },
        );
        self.push_action(Action::Persist { job: id });
        if self.job_state(id).is_some_and(JobState::is_running) {
            self.start_next_file(id);
        }
    }

    /// A connection whose response ended: back to the idle pool when it can carry another.
    fn release_conn(&mut self, conn: ConnId, reusable: bool, now: Timestamp) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let idle_same_origin = self
            .conns
            .values()
            .filter(|o| o.user == ConnUser::Idle && o.origin == c.origin)
            .count();
        if reusable
            && c.parser.is_idle()
            && idle_same_origin < self.config.max_idle_connections_per_origin
        {
            let c = self.conns.get_mut(&conn).expect("checked above");
            c.user = ConnUser::Idle;
            c.deadline =
                Timestamp::from_millis(now.as_millis().saturating_add(IDLE_CONNECTION_TIMEOUT_MS));
        } else {
            self.drop_conn(conn);
        }
    }

    /// Closes a connection and forgets it.
    pub(super) fn drop_conn(&mut self, conn: ConnId) {
        if self.conns.remove(&conn).is_some() {
            self.push_action(Action::Close { conn });
        }
    }

    /// Stops the job's fetch: closes its connection and its temp file handle.
    pub(super) fn stop_fetch(&mut self, id: JobId) {
        let Some(fetch) = self.jobs.get_mut(&id).and_then(|j| j.fetch.take()) else {
            return;
        };
        if let Some(conn) = fetch.conn {
            self.drop_conn(conn);
        }
        if fetch.temp_open {
            self.push_action(Action::CloseFile {
                job: id,
                file: fetch.file,
            });
        }
    }

    /// A connection's deadline passed.
    pub(super) fn handle_conn_timeout(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let user = c.user;
        let host = c.origin.host.clone();
        self.drop_conn(conn);
        let (id, what) = match user {
            ConnUser::Idle => return,
            ConnUser::Connecting(id) => (id, "connecting to"),
            ConnUser::Busy(id) => (id, "waiting for data from"),
        };
        if let Some(fetch) = self.fetch_mut(id) {
            fetch.conn = None;
        }
        let why = format!("timed out {what} {host}");
        let error = JobError::new(
            ErrorContext::GeneralTransport,
            codes::ERROR_WINHTTP_TIMEOUT,
            why,
        );
        self.fail(id, error, Severity::Transient, None);
    }

    pub(super) fn handle_file_failed(
        &mut self,
        id: JobId,
        file: FileIndex,
        op: FileOp,
        error: IoFailure,
    ) {
        match op {
            FileOp::Commit => return self.handle_commit_failed(id, file, &error),
            // A temp file that can't be deleted is left behind; nothing in the job depends on it.
            FileOp::Delete => return,
            FileOp::OpenTemp | FileOp::Write => {}
        }
        let in_fetch = self.fetch_mut(id).is_some_and(|f| f.file == file);
        if !in_fetch {
            // A write of a file whose response already ended failed: the file is not done.
            let Some(job) = self.jobs.get_mut(&id) else {
                return;
            };
            let Some(f) = job.rec.files.get_mut(file as usize) else {
                return;
            };
            if op != FileOp::Write || f.committed || !f.completed {
                return;
            }
            f.completed = false;
            let (error, severity) = local_file_error(&error);
            return self.fail(id, error.for_file(file), severity, None);
        }
        let Some(fetch) = self.fetch_mut(id) else {
            return;
        };
        if op == FileOp::OpenTemp {
            fetch.temp_open = false;
            if error.kind == IoFailureKind::AlreadyExists
                && fetch.temp_name_tries < MAX_TEMP_NAME_TRIES
            {
                // Someone else's file has the name we drew: draw another.
                fetch.temp_name_tries += 1;
                let path = self.fresh_temp_name(id, file);
                self.jobs.get_mut(&id).expect("job exists").rec.files[file as usize].temp =
                    Some(path);
                return self.open_temp(id, file, true);
            }
        }
        let (error, severity) = local_file_error(&error);
        self.fail(id, error.for_file(file), severity, None);
    }

    pub(super) fn fetch_mut(&mut self, id: JobId) -> Option<&mut Fetch> {
        self.jobs.get_mut(&id).and_then(|j| j.fetch.as_mut())
    }
}

/// Statuses retried after the retry delay: the server may recover.
pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

fn same_validator(recorded: Option<&str>, offered: Option<&str>) -> bool {
    match (recorded, offered) {
        (Some(a), Some(b)) => a == b,
        // If-Range already made the server check; a 206 without an ETag is trusted.
        _ => true,
    }
}

fn remote_error(code: HResult, why: String) -> JobError {
    JobError::new(ErrorContext::RemoteFile, code, why)
}

fn connect_error(error: &IoFailure) -> JobError {
    let code = match error.kind {
        IoFailureKind::NameNotResolved => codes::ERROR_WINHTTP_NAME_NOT_RESOLVED,
        IoFailureKind::TlsHandshake => codes::ERROR_WINHTTP_SECURE_FAILURE,
        IoFailureKind::ConnectionReset => codes::ERROR_WINHTTP_CONNECTION_ERROR,
        _ => codes::ERROR_WINHTTP_CANNOT_CONNECT,
    };
    JobError::new(ErrorContext::GeneralTransport, code, error.message.clone())
}

/// A failure of the temp file: a full disk may clear up (transient); the rest needs a person.
fn local_file_error(error: &IoFailure) -> (JobError, Severity) {
    let (code, severity) = match error.kind {
        IoFailureKind::DiskFull => (codes::ERROR_DISK_FULL, Severity::Transient),
        IoFailureKind::NotFound => (codes::ERROR_PATH_NOT_FOUND, Severity::Fatal),
        IoFailureKind::PermissionDenied => (codes::E_ACCESSDENIED, Severity::Fatal),
        IoFailureKind::AlreadyExists => (codes::ERROR_FILE_EXISTS, Severity::Fatal),
        _ => (codes::ERROR_WRITE_FAULT, Severity::Fatal),
    };
    (
        JobError::new(ErrorContext::LocalFile, code, error.message.clone()),
        severity,
    )
}

/// The origin a URL's requests go to, with the host as the driver resolves it (IPv6 without
/// brackets).
fn origin_of(url: &Url) -> Option<Origin> {
    let host = match url.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    };
    Some(Origin {
        https: url.scheme() == "https",
        host,
        port: url.port_or_known_default()?,
    })
}

/// The `Host` header: host, plus the port when it is not the scheme's default.
fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}
