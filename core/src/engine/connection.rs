//! Connections: one pool of keep-alive connections per origin, opening and verifying them,
//! sending a request, and everything a connection can report (bytes, end of stream, failure,
//! a timeout).

use bytes::{Bytes, BytesMut};
use rustls_pki_types::CertificateDer;
use url::{Position, Url};

use crate::codes;
use crate::error::{ErrorContext, JobError, Severity};
use crate::http::{self, HttpError, Method, Request, ResponseParser};
use crate::ids::{ConnId, JobId};
use crate::input::{IoFailure, IoFailureKind};
use crate::job::Trigger;
use crate::output::Action;
use crate::time::Timestamp;
use crate::tls;

use super::transfer::{remote_error, Phase};
use super::Engine;

/// An idle keep-alive connection is closed after this long.
const IDLE_CONNECTION_TIMEOUT_MS: u64 = 30_000;

/// The `BG_SSL_*` bits (CRL check and the four ignore flags): they decide what a TLS
/// connection was accepted under.
const CERT_POLICY_BITS: u32 = 0x001F;

/// Scheme, host and port, and the certificate policy a TLS connection was verified under:
/// connections are pooled and reused per origin, so a connection accepted by a job that ignores
/// a certificate problem is never handed to a job that does not.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Origin {
    pub(super) https: bool,
    pub(super) host: String,
    pub(super) port: u16,
    /// `SecurityFlags` bits in `CERT_POLICY_BITS` for HTTPS; 0 for plain HTTP.
    pub(super) cert_policy: u32,
}

/// A connection the engine asked for.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(super) origin: Origin,
    pub(super) parser: ResponseParser,
    pub(super) user: ConnUser,
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
    pub(super) fn connect_or_reuse(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let cert_policy = job.rec.security_flags.bits() & CERT_POLICY_BITS;
        let Some(fetch) = job.fetch.as_mut() else {
            return;
        };
        let origin = match origin_of(&fetch.url, cert_policy) {
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
        // A job checking revocation checks it on every file's connection (BITS: "before each
        // file starts"), so it never takes an idle HTTPS connection checked earlier.
        let reuse = !(origin.https && self.revocation_checked(id));
        let idle = self
            .conns
            .iter()
            .find(|(_, c)| reuse && c.user == ConnUser::Idle && c.origin == origin)
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
            let flags = self.jobs.get(&id).map(|j| j.rec.security_flags);
            let flags = flags.unwrap_or_default();
            let policy = tls::CertPolicy::from_flags(flags);
            if let Err(e) = tls::verify_server_chain(&self.trust, &chain, &host, self.now, &policy)
            {
                // Nothing has been sent: the connection is closed before one request byte.
                return self.fail_certificate(id, &e);
            }
            if flags.crl_check() {
                // Revocation waits for CRLs (engine/revocation.rs); nothing is sent meanwhile.
                return self.check_revocation(id, conn, chain);
            }
        }
        self.certificate_checked(id, conn, chain);
    }

    pub(super) fn send_request(&mut self, id: JobId, conn: ConnId) {
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
        let id = match c.user {
            ConnUser::Busy(id) => id,
            // Bytes on an idle connection: the server is talking out of turn.
            ConnUser::Idle => return self.drop_conn(conn),
            // Bytes before `Connected`: the driver broke the input order; don't strand the job.
            ConnUser::Connecting(id) => {
                self.drop_conn(conn);
                let why = format!("{conn} delivered bytes before it was reported connected");
                let error = JobError::new(
                    ErrorContext::GeneralTransport,
                    codes::ERROR_WINHTTP_CONNECTION_ERROR,
                    why,
                );
                return self.fail(id, error, Severity::Transient, None);
            }
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

    pub(super) fn handle_http_error(&mut self, id: JobId, conn: ConnId, e: HttpError) {
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

    /// A connection whose response ended: back to the idle pool when it can carry another.
    pub(super) fn release_conn(&mut self, conn: ConnId, reusable: bool, now: Timestamp) {
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

/// The origin a URL's requests go to, with the host as the driver resolves it (IPv6 without
/// brackets).
fn origin_of(url: &Url, cert_policy: u32) -> Option<Origin> {
    let host = match url.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    };
    let https = url.scheme() == "https";
    Some(Origin {
        https,
        host,
        port: url.port_or_known_default()?,
        cert_policy: if https { cert_policy } else { 0 },
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
