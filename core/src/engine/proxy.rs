//! Reaching an origin through a proxy: which way a request goes (the job's proxy settings,
//! or the environment under PRECONFIG), an HTTP proxy's CONNECT tunnel or a SOCKS5
//! handshake before TLS with the origin starts, and a proxy list tried in order.
//!
//! A plain-http origin behind an HTTP proxy needs no tunnel: requests go to the proxy in
//! absolute form. Everything else through a proxy is a tunnel: CONNECT (HTTP proxy) or
//! SOCKS5, then — for https — `Action::StartTls` and the usual certificate checks on
//! `Input::TlsStarted`, before the first request byte. Proxy credentials go only on the
//! CONNECT or on absolute-form requests to the proxy, never through a tunnel.
//!
//! A proxy answered with NTLM or Negotiate authenticates the connection, so its exchange rides
//! one connection: the CONNECT carries the first token, the 407 carrying the proxy's challenge
//! is read to its end (`Phase::AuthDrain`, as for a 401), and the CONNECT goes out again on
//! the same connection with the answer. Only the proxy's 2xx opens the tunnel.

use bytes::{Bytes, BytesMut};
use rustls_pki_types::CertificateDer;

use crate::auth::{AuthScheme, AuthTarget, Secret};
use crate::codes::{self, HResult};
use crate::error::{ErrorContext, JobError, Severity};
use crate::http::{Method, Request, ResponseEvent};
use crate::ids::{ConnId, JobId};
use crate::output::Action;
use crate::proxy::socks5::{Socks5Error, Socks5Handshake, Step};
use crate::proxy::{ProxyEndpoint, ProxyKind, Route};

use super::auth::{proxy_key, ConnAnswer};
use super::connection::{ConnUser, Held, Origin};
use super::response::is_transient_status;
use super::transfer::{remote_error, Phase};
use super::Engine;

/// Where a tunnel through a proxy stands.
#[derive(Debug)]
pub(crate) enum TunnelPhase {
    /// TCP to the proxy is being opened.
    Opening,
    /// CONNECT sent; waiting for the proxy's answer.
    Connect,
    /// The SOCKS5 handshake is under way.
    Socks(Box<Socks5Handshake>),
    /// The tunnel is open; TLS with the origin is starting (`Action::StartTls`).
    Tls,
    /// The tunnel (and TLS, for https) is up: requests go through it.
    Open,
}

/// Whether a route to `origin` needs a tunnel: yes unless direct, or an HTTP proxy for a
/// plain-http origin (which takes absolute-form requests).
pub(super) fn needs_tunnel(via: &Route, origin: &Origin) -> bool {
    match via {
        Route::Direct => false,
        Route::Proxy(p) => p.kind == ProxyKind::Socks5 || origin.https,
    }
}

impl Engine {
    /// The connection to the proxy is open: start the tunnel (CONNECT or SOCKS5).
    pub(super) fn open_tunnel(&mut self, id: JobId, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (Route::Proxy(proxy), origin) = (c.via.clone(), c.origin.clone()) else {
            return;
        };
        let deadline = self.now.saturating_add(self.config.receive_timeout);
        let (phase, bytes) = match proxy.kind {
            ProxyKind::Http => match self.connect_request(id, conn, &proxy, &origin) {
                Ok(bytes) => (TunnelPhase::Connect, bytes),
                // The proxy's Kerberos token is being made: `handle_security_token` opens the
                // tunnel again once it comes, seeing the connection in its CONNECT phase.
                Err(Held::Waiting) => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.tunnel = Some(TunnelPhase::Connect);
                    }
                    return;
                }
                Err(Held::Failed(error)) => return self.fail(id, error, Severity::Fatal, None),
            },
            ProxyKind::Socks5 => {
                let auth = proxy.auth.as_ref().map(|a| (a.user.as_str(), &a.password));
                match Socks5Handshake::new(&origin.host, origin.port, auth) {
                    Ok(handshake) => {
                        let first = handshake.initial();
                        (TunnelPhase::Socks(Box::new(handshake)), first)
                    }
                    Err(e) => {
                        let error = remote_error(codes::BG_E_INVALID_PROXY_INFO, e.to_string());
                        return self.fail(id, error, Severity::Fatal, None);
                    }
                }
            }
        };
        let c = self.conns.get_mut(&conn).expect("checked above");
        if matches!(phase, TunnelPhase::Connect) {
            c.parser.expect_response(Method::Connect);
        }
        c.tunnel = Some(phase);
        c.deadline = deadline;
        self.push_action(Action::Send { conn, data: bytes });
    }

    /// `CONNECT host:port`, with `Proxy-Authorization` when the proxy was answered before (on
    /// this connection, for NTLM and Negotiate: the exchange's next leg).
    fn connect_request(
        &mut self,
        id: JobId,
        conn: ConnId,
        proxy: &ProxyEndpoint,
        origin: &Origin,
    ) -> Result<Bytes, Held> {
        let authority = origin.authority();
        let answer = self.proxy_authorization(id, conn, proxy, "CONNECT", &authority)?;
        if let Some(fetch) = self.fetch_mut(id) {
            fetch.proxy_auth_sent = answer.as_ref().map(|(scheme, _)| *scheme);
        }
        let request = Request {
            method: Method::Connect,
            target: &authority,
            host: &authority,
            user_agent: &self.config.user_agent,
            range_start: None,
            range_end: None,
            if_range: None,
            authorization: None,
            proxy_authorization: answer.as_ref().map(|(_, value)| value.expose()),
            extra_headers: &[],
        };
        let mut buf = BytesMut::with_capacity(256);
        request.encode(&mut buf).map_err(|e| {
            let why = format!("cannot ask {proxy} for a tunnel to {authority}: {e}");
            Held::Failed(remote_error(codes::BG_E_INVALID_PROXY_INFO, why))
        })?;
        Ok(buf.freeze())
    }

    /// The `Proxy-Authorization` for the next request of job `id` on `conn` to `proxy` (a
    /// CONNECT, or an absolute-form GET: `method` and `uri` as sent): the next leg of the
    /// connection's NTLM / Negotiate exchange (nothing once it is authenticated), or a
    /// per-request Basic / Digest answer when the proxy was answered before.
    pub(super) fn proxy_authorization(
        &mut self,
        id: JobId,
        conn: ConnId,
        proxy: &ProxyEndpoint,
        method: &str,
        uri: &str,
    ) -> Result<Option<(AuthScheme, Secret)>, Held> {
        let party = proxy_key(proxy);
        match self.connection_authorization(id, conn, &party, AuthTarget::Proxy) {
            ConnAnswer::Header(scheme, value) => Ok(Some((scheme, value))),
            ConnAnswer::Authenticated => Ok(None),
            ConnAnswer::Waiting => Err(Held::Waiting),
            ConnAnswer::Failed(error) => Err(Held::Failed(error)),
            ConnAnswer::NotConnectionBound => {
                Ok(self.authorization_for(id, &party, AuthTarget::Proxy, method, uri))
            }
        }
    }

    /// Bytes from the proxy while the tunnel is being set up.
    pub(super) fn tunnel_received(&mut self, id: JobId, conn: ConnId, data: Bytes) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match c.tunnel.as_mut() {
            Some(TunnelPhase::Connect) => {
                c.parser.push(data);
                self.connect_events(id, conn);
            }
            Some(TunnelPhase::Socks(handshake)) => {
                let step = handshake.feed(&data);
                self.socks_step(id, conn, step);
            }
            _ => self.tunnel_failed(id, conn, "sent bytes while TLS was starting"),
        }
    }

    /// Reads the proxy's answers to CONNECT from what is buffered: the head, and — after a
    /// 407 carrying an NTLM / Negotiate challenge — its body (dropped) to its end. Stops once
    /// the connection is no longer waiting for a CONNECT answer (tunnel open, or dropped).
    fn connect_events(&mut self, id: JobId, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.user != ConnUser::Connecting(id) || !matches!(c.tunnel, Some(TunnelPhase::Connect))
            {
                return;
            }
            let draining = self
                .jobs
                .get(&id)
                .and_then(|j| j.fetch.as_ref())
                .is_some_and(|f| f.phase == Phase::AuthDrain);
            match c.parser.poll_event() {
                Ok(None) => return,
                Ok(Some(ResponseEvent::Head(head))) => self.connect_answered(id, conn, &head),
                // The challenge's body: never written anywhere.
                Ok(Some(ResponseEvent::Body(_))) if draining => {}
                Ok(Some(ResponseEvent::End { reusable })) if draining => {
                    self.connect_drained(id, conn, reusable);
                }
                Ok(Some(_)) => {
                    return self.tunnel_failed(id, conn, "answered CONNECT out of order");
                }
                Err(e) => return self.handle_http_error(id, conn, e),
            }
        }
    }

    /// The 407 carrying the proxy's challenge has been read: the CONNECT goes out again on the
    /// same connection with the answer, or — when the proxy will not keep the connection —
    /// the exchange starts over on a new one (`auth_drained` bounds how often).
    fn connect_drained(&mut self, id: JobId, conn: ConnId, reusable: bool) {
        let keeps = reusable && self.conns.get(&conn).is_some_and(|c| c.parser.is_idle());
        if !keeps {
            return self.auth_drained(id, conn, false);
        }
        if let Some(fetch) = self.fetch_mut(id) {
            fetch.phase = Phase::Connecting;
        }
        self.open_tunnel(id, conn);
    }

    /// The proxy closed the connection while answering a CONNECT. A 407 carrying an NTLM /
    /// Negotiate challenge whose body runs until the close ends there, and the exchange starts
    /// over on a new connection (true). Anything else is the caller's to report (false).
    pub(super) fn connect_closed(&mut self, id: JobId, conn: ConnId) -> bool {
        let draining = self
            .fetch_mut(id)
            .is_some_and(|f| f.phase == Phase::AuthDrain);
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if !draining || !matches!(c.tunnel, Some(TunnelPhase::Connect)) {
            return false;
        }
        let mut next = c.parser.handle_eof();
        loop {
            match next {
                Ok(Some(ResponseEvent::End { .. })) => {
                    self.connect_drained(id, conn, false);
                    return true;
                }
                // The challenge's body: never written anywhere.
                Ok(Some(ResponseEvent::Body(_))) => {}
                _ => return false,
            }
            next = match self.conns.get_mut(&conn) {
                Some(c) => c.parser.poll_event(),
                None => return false,
            };
        }
    }

    /// What a SOCKS5 handshake step means for the connection.
    fn socks_step(&mut self, id: JobId, conn: ConnId, step: Result<Step, Socks5Error>) {
        match step {
            Ok(Step::Send(bytes)) => {
                self.push_action(Action::Send { conn, data: bytes });
                // The proxy may already have sent its next message: look at what is buffered.
                let Some(TunnelPhase::Socks(handshake)) =
                    self.conns.get_mut(&conn).and_then(|c| c.tunnel.as_mut())
                else {
                    return;
                };
                let next = handshake.feed(&[]);
                self.socks_step(id, conn, next);
            }
            Ok(Step::NeedMore) => {}
            Ok(Step::Done { leftover }) if leftover.is_empty() => self.tunnel_open(id, conn),
            Ok(Step::Done { .. }) => self.tunnel_failed(id, conn, "spoke before the client"),
            Err(e) if e.is_auth_failure() => {
                self.drop_conn(conn);
                let error = remote_error(HResult::from_http_status(407), e.to_string());
                self.fail(id, error, Severity::Fatal, None);
            }
            Err(e) => {
                self.drop_conn(conn);
                let error = JobError::new(
                    ErrorContext::GeneralTransport,
                    codes::ERROR_WINHTTP_CANNOT_CONNECT,
                    e.to_string(),
                );
                self.fail(id, error, Severity::Transient, None);
            }
        }
    }

    /// The proxy answered CONNECT: 2xx opens the tunnel, 407 asks for credentials, anything
    /// else fails the job (retried later when the status says the proxy may recover).
    fn connect_answered(&mut self, id: JobId, conn: ConnId, head: &crate::http::ResponseHead) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Route::Proxy(proxy) = c.via.clone() else {
            return;
        };
        let authority = c.origin.authority();
        match head.status {
            200..=299 => match c.parser.take_tunnel_bytes() {
                Some(early) if early.is_empty() => self.tunnel_open(id, conn),
                _ => self.tunnel_failed(id, conn, "sent bytes after its 2xx to CONNECT"),
            },
            407 => self.handle_challenge(id, conn, head, Some(proxy)),
            status => {
                self.drop_conn(conn);
                let why = format!(
                    "the proxy {proxy} answered {status} {} to CONNECT {authority}",
                    head.reason
                );
                let error = remote_error(HResult::from_http_status(status), why);
                let severity = if is_transient_status(status) {
                    Severity::Transient
                } else {
                    Severity::Fatal
                };
                self.fail(id, error, severity, None);
            }
        }
    }

    /// The tunnel is open: TLS with the origin for https, else the request goes through.
    fn tunnel_open(&mut self, id: JobId, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.origin.https {
            c.tunnel = Some(TunnelPhase::Tls);
            let server_name = c.origin.host.clone();
            self.push_action(Action::StartTls { conn, server_name });
        } else {
            c.tunnel = Some(TunnelPhase::Open);
            self.certificate_checked(id, conn, Vec::new());
        }
    }

    /// `Input::TlsStarted`: TLS with the origin is up inside the tunnel; check its chain as for
    /// a direct connection.
    pub(super) fn handle_tls_started(&mut self, conn: ConnId, chain: Vec<CertificateDer<'static>>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (ConnUser::Connecting(id), Some(TunnelPhase::Tls)) = (c.user, c.tunnel.as_ref()) else {
            return;
        };
        c.tunnel = Some(TunnelPhase::Open);
        self.check_chain(id, conn, chain);
    }

    fn tunnel_failed(&mut self, id: JobId, conn: ConnId, what: &str) {
        let proxy = self
            .conns
            .get(&conn)
            .map(|c| c.via.clone())
            .unwrap_or(Route::Direct);
        self.drop_conn(conn);
        let why = match proxy {
            Route::Proxy(p) => format!("the proxy {p} {what}"),
            Route::Direct => format!("the server {what}"),
        };
        let error = JobError::new(
            ErrorContext::GeneralTransport,
            codes::ERROR_WINHTTP_INVALID_SERVER_RESPONSE,
            why,
        );
        self.fail(id, error, Severity::Fatal, None);
    }
}
