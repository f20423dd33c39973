//! Connections: one pool of keep-alive connections per origin, opening and verifying them,
//! sending a request, and everything a connection can report (bytes, end of stream, failure,
//! a timeout).

use bytes::{Bytes, BytesMut};
use rustls_pki_types::CertificateDer;
use url::{Position, Url};

use crate::auth::{AuthScheme, AuthTarget, Secret};
use crate::codes;
use crate::error::{ErrorContext, JobError, Severity};
use crate::http::{self, HttpError, Method, Request, ResponseParser};
use crate::ids::{ConnId, JobId};
use crate::input::{IoFailure, IoFailureKind};
use crate::job::Trigger;
use crate::output::Action;
use crate::proxy::{self, Route};
use crate::time::Timestamp;
use crate::tls;

use super::auth::{origin_key, AuthBinding, ConnAnswer, ConnAuths};
use super::kerberos::SystemAuths;
use super::proxy::{needs_tunnel, TunnelPhase};
use super::transfer::{remote_error, Phase};
use super::{ranged, Engine};

/// An idle keep-alive connection is closed after this long.
const IDLE_CONNECTION_TIMEOUT_MS: u64 = 30_000;

/// Scheme, host and port: connections are pooled and reused per origin (and [`PoolTag`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Origin {
    pub(super) https: bool,
    pub(super) host: String,
    pub(super) port: u16,
}

/// What else must match before an idle connection is reused: the checks its certificate
/// passed, and who it authenticated as. A connection accepted under one job's ignore flags,
/// or by one job's validation callback, must never carry another job's request that would not
/// have accepted it; a connection authenticated by NTLM or Negotiate is someone's login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PoolTag {
    /// The `BG_SSL_*` bits the certificate was judged under (0 for plain HTTP).
    pub(super) ssl_flags: u32,
    /// The job whose validation callback accepted the certificate, if one did.
    pub(super) private_to: Option<JobId>,
    /// The job and identity a connection-bound scheme (NTLM, Negotiate) logs it in as.
    pub(super) auth: Option<AuthBinding>,
}

impl Origin {
    /// `host:port` as CONNECT names it (an IPv6 literal in brackets).
    pub(super) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a request cannot go out now.
pub(super) enum Held {
    /// The job fails with this.
    Failed(JobError),
    /// A token is being produced by the driver; the request goes out when it comes.
    Waiting,
}

/// A connection the engine asked for.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(super) origin: Origin,
    pub(super) tag: PoolTag,
    /// Directly, or through which proxy.
    pub(super) via: Route,
    /// The tunnel through the proxy, when the route needs one.
    pub(super) tunnel: Option<TunnelPhase>,
    pub(super) parser: ResponseParser,
    pub(super) user: ConnUser,
    /// SHA-256 of the leaf certificate while the app's callback decides on it.
    pub(super) verdict_pending: Option<[u8; 32]>,
    /// NTLM / Negotiate exchanges running on (or done on) this connection.
    pub(super) auth: ConnAuths,
    /// Negotiate exchanges as the logged-on user, run by the driver's GSS-API.
    pub(super) gss: SystemAuths,
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
        let via = match self.route_for(id) {
            Ok(via) => via,
            Err(error) => return self.fail(id, error, Severity::Fatal, None),
        };
        let tag = self.pool_tag(id, &origin, &via);
        // A job checking revocation checks it on every file's connection (BITS: "before each
        // file starts"), so it never takes an idle HTTPS connection checked earlier.
        let reuse = !(origin.https && self.revocation_checked(id));
        let idle = self
            .conns
            .iter()
            .find(|(_, c)| {
                reuse
                    && c.user == ConnUser::Idle
                    && c.origin == origin
                    && c.tag == tag
                    && c.via == via
            })
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
                tag,
                tunnel: needs_tunnel(&via, &origin).then_some(TunnelPhase::Opening),
                via: via.clone(),
                parser: ResponseParser::new(limits),
                user: ConnUser::Connecting(id),
                verdict_pending: None,
                auth: ConnAuths::default(),
                gss: SystemAuths::default(),
                deadline: now.saturating_add(self.config.connect_timeout),
            },
        );
        let fetch = self.fetch_mut(id).expect("checked above");
        fetch.conn = Some(conn);
        fetch.phase = Phase::Connecting;
        let (host, port, tls_server_name) = match &via {
            Route::Direct => (
                origin.host.clone(),
                origin.port,
                origin.https.then(|| origin.host.clone()),
            ),
            // TLS with the origin starts inside the tunnel, once it is open.
            Route::Proxy(proxy) => (proxy.host.clone(), proxy.port, None),
        };
        self.push_action(Action::Connect {
            conn,
            host,
            port,
            tls_server_name,
        });
    }

    /// The way the fetch's next connection goes: the job's proxy settings (or the environment)
    /// for its URL, at the fetch's place in the proxy list. Bad settings are
    /// `BG_E_INVALID_PROXY_INFO`, found at run time as BITS does.
    fn route_for(&mut self, id: JobId) -> Result<Route, JobError> {
        let job = self.jobs.get(&id).expect("the caller found the job");
        let fetch = job.fetch.as_ref().expect("the caller found the fetch");
        let routes = proxy::route(&fetch.url, &job.rec.proxy, &self.config.proxy_environment)
            .map_err(|e| remote_error(e.code(), e.to_string()))?;
        Ok(routes
            .get(fetch.route_index)
            .cloned()
            .unwrap_or(Route::Direct))
    }

    /// How many ways the fetch's URL can go (1 without a proxy list).
    fn route_count(&self, id: JobId) -> usize {
        let Some(job) = self.jobs.get(&id) else {
            return 1;
        };
        let Some(fetch) = job.fetch.as_ref() else {
            return 1;
        };
        proxy::route(&fetch.url, &job.rec.proxy, &self.config.proxy_environment)
            .map_or(1, |routes| routes.len())
    }

    pub(super) fn handle_connected(&mut self, conn: ConnId, chain: Vec<CertificateDer<'static>>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let ConnUser::Connecting(id) = c.user else {
            return;
        };
        if matches!(c.tunnel, Some(TunnelPhase::Opening)) {
            // Connected to the proxy: the tunnel comes first.
            return self.open_tunnel(id, conn);
        }
        self.check_chain(id, conn, chain);
    }

    /// The built-in certificate checks for an https origin (directly, or inside a tunnel),
    /// then the app's callback, then the request.
    pub(super) fn check_chain(
        &mut self,
        id: JobId,
        conn: ConnId,
        chain: Vec<CertificateDer<'static>>,
    ) {
        let Some(c) = self.conns.get(&conn) else {
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
                self.drop_conn(conn);
                return self.fail_certificate(id, &e);
            }
            if flags.crl_check() {
                // Revocation waits for CRLs (engine/revocation.rs); nothing is sent meanwhile.
                return self.check_revocation(id, conn, chain);
            }
        }
        self.certificate_checked(id, conn, chain);
    }

    /// Every check on `conn` has passed: it carries the job's request from now on.
    pub(super) fn start_request(&mut self, id: JobId, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.user = ConnUser::Busy(id);
        self.send_request(id, conn);
    }

    pub(super) fn send_request(&mut self, id: JobId, conn: ConnId) {
        let authorization = match self.request_authorization(id, conn) {
            Ok(authorization) => authorization,
            Err(Held::Waiting) => return,
            Err(Held::Failed(error)) => return self.fail(id, error, Severity::Fatal, None),
        };
        let forward_proxy = self.conns.get(&conn).and_then(|c| match &c.via {
            Route::Proxy(p) if c.tunnel.is_none() => Some(p.clone()),
            _ => None,
        });
        let proxy_authorization = match &forward_proxy {
            None => None,
            Some(proxy) => {
                let target = self
                    .fetch_mut(id)
                    .map(|f| absolute_target(&f.url))
                    .unwrap_or_default();
                match self.proxy_authorization(id, conn, proxy, "GET", &target) {
                    Ok(answer) => answer,
                    Err(Held::Waiting) => {
                        // The server's token, if one was taken, waits with the request.
                        if let Some((scheme, token)) = authorization {
                            self.restore_token(conn, AuthTarget::Server, scheme, token);
                        }
                        return;
                    }
                    Err(Held::Failed(error)) => return self.fail(id, error, Severity::Fatal, None),
                }
            }
        };
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
        let mut range = None;
        if !file.ranges.is_empty() {
            range = ranged::next_request(file, resumable);
            if range.is_none() {
                // The local offset is not inside a range (a record from an odd crash): start
                // the file over rather than guess.
                file.reset_version();
                self.out
                    .push_back(crate::Output::Action(Action::TruncateFile {
                        job: id,
                        file: fetch.file,
                        len: 0,
                    }));
                range = ranged::next_request(file, false);
            }
        }
        let range_start = if resumable { file.transferred } else { 0 };
        let if_range = if resumable {
            file.if_range().map(str::to_string)
        } else {
            None
        };
        let host = host_header(&fetch.url);
        // Custom headers (and, later, server credentials) go only to the origin of the URL the
        // app added, and never again once a redirect has left it.
        let to_secrets_origin = !fetch.left_origin && file.is_secrets_origin(&fetch.url);
        let extra_headers: Vec<(&str, &str)> = match &job.rec.custom_headers {
            Some(headers) if to_secrets_origin => headers
                .fields()
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect(),
            _ => Vec::new(),
        };
        let authorization = authorization.filter(|_| to_secrets_origin);
        fetch.auth_sent = authorization.as_ref().map(|(scheme, _)| *scheme);
        fetch.proxy_auth_sent = proxy_authorization.as_ref().map(|(scheme, _)| *scheme);
        // To an HTTP proxy (no tunnel), the request names the whole URL (absolute form).
        let absolute = forward_proxy.as_ref().map(|_| absolute_target(&fetch.url));
        let request = Request {
            method: Method::Get,
            target: absolute
                .as_deref()
                .unwrap_or(&fetch.url[Position::BeforePath..Position::AfterQuery]),
            host: &host,
            user_agent: &self.config.user_agent,
            range_start: match range {
                Some(r) => Some(r.start),
                None => resumable.then_some(range_start),
            },
            range_end: range.and_then(|r| r.end_inclusive),
            if_range: if_range.as_deref(),
            authorization: authorization.as_ref().map(|(_, value)| value.expose()),
            proxy_authorization: proxy_authorization
                .as_ref()
                .map(|(_, value)| value.expose()),
            extra_headers: &extra_headers,
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
        fetch.range = range;
        fetch.parts = None;
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
        if let (ConnUser::Connecting(id), Some(TunnelPhase::Connect | TunnelPhase::Socks(_))) =
            (c.user, c.tunnel.as_ref())
        {
            c.deadline = now.saturating_add(receive_timeout);
            return self.tunnel_received(id, conn, data);
        }
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
                if self.connect_closed(id, conn) {
                    return;
                }
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
            // A proxy list is tried in order: the next proxy before giving up.
            if let Route::Proxy(_) = c.via {
                let next = self.fetch_mut(id).map_or(0, |f| f.route_index + 1);
                if next < self.route_count(id) {
                    self.fetch_mut(id).expect("found above").route_index = next;
                    return self.connect_or_reuse(id);
                }
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
            .filter(|o| o.user == ConnUser::Idle && o.origin == c.origin && o.tag == c.tag)
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

    /// The `Authorization` for the job's next request on `conn`, when its origin was answered
    /// before and the request goes to the origin the app's secrets belong to: a step of the
    /// connection's NTLM / Negotiate exchange, or a per-request Basic / Digest answer.
    fn request_authorization(
        &mut self,
        id: JobId,
        conn: ConnId,
    ) -> Result<Option<(AuthScheme, Secret)>, Held> {
        let Some(job) = self.jobs.get(&id) else {
            return Ok(None);
        };
        let Some(fetch) = job.fetch.as_ref() else {
            return Ok(None);
        };
        let file = &job.rec.files[fetch.file as usize];
        if fetch.left_origin || !file.is_secrets_origin(&fetch.url) {
            return Ok(None);
        }
        let url = fetch.url.clone();
        let party = origin_key(&url);
        match self.connection_authorization(id, conn, &party, AuthTarget::Server) {
            ConnAnswer::Header(scheme, value) => Ok(Some((scheme, value))),
            ConnAnswer::Authenticated => Ok(None),
            ConnAnswer::Waiting => Err(Held::Waiting),
            ConnAnswer::Failed(error) => Err(Held::Failed(error)),
            ConnAnswer::NotConnectionBound => {
                let target = url[Position::BeforePath..Position::AfterQuery].to_string();
                Ok(self.authorization_for(id, &party, AuthTarget::Server, "GET", &target))
            }
        }
    }

    /// Puts a connection-bound token back on `conn` for a request that did not go out.
    fn restore_token(
        &mut self,
        conn: ConnId,
        target: AuthTarget,
        scheme: AuthScheme,
        token: Secret,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match scheme {
            AuthScheme::Ntlm | AuthScheme::Negotiate if c.gss.holds(target) => {
                c.gss.restore(target, token);
            }
            AuthScheme::Ntlm | AuthScheme::Negotiate => c.auth.restore(target, token),
            // Basic and Digest are computed afresh for each request.
            _ => {}
        }
    }

    /// The pool tag of a connection for job `id` to `origin` by way of `via`.
    fn pool_tag(&self, id: JobId, origin: &Origin, via: &Route) -> PoolTag {
        let auth = self.auth_binding(id, via);
        let Some(job) = self.jobs.get(&id).filter(|_| origin.https) else {
            return PoolTag {
                ssl_flags: 0,
                private_to: None,
                auth,
            };
        };
        PoolTag {
            ssl_flags: job.rec.security_flags.ssl_bits(),
            private_to: job.rec.wants_certificate_validation.then_some(id),
            auth,
        }
    }

    /// Closes the idle connections only `id` may reuse (its callback accepted them, or its
    /// credentials logged them in).
    pub(super) fn drop_private_idle_conns(&mut self, id: JobId) {
        let private: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.user == ConnUser::Idle
                    && (c.tag.private_to == Some(id)
                        || c.tag.auth.as_ref().is_some_and(|a| a.job == id))
            })
            .map(|(conn, _)| *conn)
            .collect();
        for conn in private {
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

/// The URL as an absolute-form request target: without its fragment (never sent).
fn absolute_target(url: &Url) -> String {
    url[..Position::AfterQuery].to_string()
}

/// The `Host` header: host, plus the port when it is not the scheme's default.
fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}
