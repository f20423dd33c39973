//! The simulated proxies' side of a connection: SOCKS5 handshakes, and what an HTTP proxy does
//! with a request (authentication, CONNECT tunnels, absolute-form requests).

use backhaul_core::{ConnId, Input};
use bytes::Bytes;

use super::responses::status_response;
use super::{SeenRequest, Sim, SimProxy};
use crate::ntlm_peer::Verdict;

impl Sim {
    /// Whether `conn` is to a SOCKS5 proxy whose tunnel is not open yet.
    pub(super) fn socks_handshaking(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            c.tunnel_to.is_none()
                && self
                    .proxies
                    .get(&(c.host.clone(), c.port))
                    .is_some_and(|p| p.socks.is_some())
        })
    }

    /// One SOCKS5 handshake message from the engine (each arrives whole): greeting, user and
    /// password, or the connect request, answered as RFC 1928/1929 say.
    pub(super) fn socks_answer(&mut self, conn: ConnId, data: &[u8]) {
        let now = self.now;
        let c = self.conns.get(&conn).expect("checked by the caller");
        let proxy = self.proxies[&(c.host.clone(), c.port)].clone();
        let auth = proxy.socks.expect("a SOCKS5 proxy");
        let reply: Vec<u8> = match data {
            // Greeting: version 5, methods.
            [5, n, methods @ ..] if methods.len() == usize::from(*n) => {
                let wanted = if auth.is_some() { 2 } else { 0 };
                let method = if methods.contains(&wanted) {
                    wanted
                } else {
                    0xFF
                };
                vec![5, method]
            }
            // RFC 1929: version 1, user, password.
            [1, ulen, rest @ ..] => {
                let (user, rest) = rest.split_at(usize::from(*ulen));
                let password = &rest[1..];
                let good = auth
                    .as_ref()
                    .is_some_and(|(u, p)| u.as_bytes() == user && p.as_bytes() == password);
                vec![1, if good { 0 } else { 1 }]
            }
            // Connect by name: 5, CONNECT, 0, ATYP 3, len, name, port.
            [5, 1, 0, 3, len, rest @ ..] => {
                let (name, port) = rest.split_at(usize::from(*len));
                let name = String::from_utf8_lossy(name).into_owned();
                let port = u16::from_be_bytes([port[0], port[1]]);
                self.conns.get_mut(&conn).expect("open").tunnel_to = Some((name, port));
                vec![5, 0, 0, 1, 0, 0, 0, 0, 0, 0]
            }
            other => panic!("the simulated SOCKS5 proxy cannot read {other:?}"),
        };
        let data = Bytes::from(reply);
        self.later(Input::Received { now, conn, data });
    }
}

/// What a simulated proxy did with a request.
pub(super) enum ProxyAnswer {
    /// It answered (200 to CONNECT, or 407).
    Done,
    /// An absolute-form request: the origin (host, port) and path to relay it to.
    Forward((String, u16), String),
}

impl Sim {
    pub(super) fn proxy_answer(
        &mut self,
        conn: ConnId,
        key: &(String, u16),
        proxy: &SimProxy,
        method: Option<&str>,
        seen: &SeenRequest,
    ) -> ProxyAnswer {
        let now = self.now;
        if let Some(gate) = self.proxy_gates.get_mut(key) {
            let verdict = gate.peer.judge(conn, seen.header("proxy-authorization"));
            if let Verdict::Challenge(token) = verdict {
                let value = token.map_or("NTLM".to_string(), |t| format!("NTLM {t}"));
                let mut extra = vec![("Proxy-Authenticate".to_string(), value)];
                let close = gate.closes > 0;
                if close {
                    gate.closes -= 1;
                    extra.push(("Connection".to_string(), "close".to_string()));
                }
                let mut response = status_response(407, &extra);
                if gate.unframed {
                    let text = String::from_utf8(response).expect("an ASCII head");
                    response = text
                        .lines()
                        .filter(|l| !l.starts_with("Content-Length"))
                        .collect::<Vec<_>>()
                        .join("\r\n")
                        .into_bytes();
                }
                let data = Bytes::from(response);
                self.later(Input::Received { now, conn, data });
                if close {
                    self.later(Input::Closed { now, conn });
                }
                return ProxyAnswer::Done;
            }
        }
        if let Some(required) = &proxy.requires {
            if seen.header("proxy-authorization") != Some(required.as_str()) {
                let challenge = proxy
                    .challenge
                    .as_deref()
                    .unwrap_or("Basic realm=\"proxy\"");
                let extra = vec![("Proxy-Authenticate".to_string(), challenge.to_string())];
                let data = Bytes::from(status_response(407, &extra));
                self.later(Input::Received { now, conn, data });
                return ProxyAnswer::Done;
            }
        }
        if method == Some("CONNECT") {
            if let Some(data) = proxy.connect_reply.clone() {
                self.later(Input::Received { now, conn, data });
                return ProxyAnswer::Done;
            }
            let (host, port) = seen.path.rsplit_once(':').expect("CONNECT host:port");
            let target = (host.to_string(), port.parse().expect("CONNECT port"));
            if let Some(c) = self.conns.get_mut(&conn) {
                c.tunnel_to = Some(target);
            }
            let data = Bytes::from_static(b"HTTP/1.1 200 Connection established\r\n\r\n");
            self.later(Input::Received { now, conn, data });
            return ProxyAnswer::Done;
        }
        let url = url::Url::parse(&seen.path).expect("absolute form to a proxy");
        let origin = (
            url.host_str().expect("a host").to_string(),
            url.port_or_known_default().expect("a port"),
        );
        ProxyAnswer::Forward(origin, url.path().to_string())
    }
}
