//! Setting up the simulated world: servers and what they serve, proxies, NTLM and Negotiate
//! acceptors, refused connections, CRLs and the certificate chains HTTPS hosts present.

use bytes::Bytes;

use super::{ProxyGate, Reply, Resource, Sim, SimProxy};
use crate::kerberos_peer::KerberosPeer;
use crate::ntlm_peer::NtlmPeer;

impl Sim {
    /// An HTTP proxy at `host:port` (CONNECT and absolute form), requiring exactly this
    /// `Proxy-Authorization` value when `requires` is set (else 407 with a Basic challenge).
    pub fn proxy(&mut self, host: &str, port: u16, requires: Option<&str>) {
        let proxy = SimProxy {
            requires: requires.map(str::to_string),
            socks: None,
            challenge: None,
            connect_reply: None,
        };
        self.proxies.insert((host.to_string(), port), proxy);
    }

    /// An HTTP proxy at `host:port` (no authentication) that answers every CONNECT with
    /// `reply`, as sent, and opens no tunnel: a refusal (`403`, `502`), or a 2xx followed by
    /// bytes no origin sent.
    pub fn proxy_answering_connect(&mut self, host: &str, port: u16, reply: &[u8]) {
        let proxy = SimProxy {
            connect_reply: Some(Bytes::copy_from_slice(reply)),
            ..SimProxy::default()
        };
        self.proxies.insert((host.to_string(), port), proxy);
    }

    /// An HTTP proxy at `host:port` that challenges with `Negotiate` and requires the Kerberos
    /// token `token` on every request.
    pub fn negotiate_proxy(&mut self, host: &str, port: u16, token: &[u8]) {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(token);
        let proxy = SimProxy {
            requires: Some(format!("Negotiate {encoded}")),
            socks: None,
            challenge: Some("Negotiate".to_string()),
            connect_reply: None,
        };
        self.proxies.insert((host.to_string(), port), proxy);
    }

    /// A SOCKS5 proxy at `host:port`, requiring this user and password when `auth` is set.
    pub fn socks5_proxy(&mut self, host: &str, port: u16, auth: Option<(&str, &str)>) {
        let proxy = SimProxy {
            requires: None,
            socks: Some(auth.map(|(u, p)| (u.to_string(), p.to_string()))),
            challenge: None,
            connect_reply: None,
        };
        self.proxies.insert((host.to_string(), port), proxy);
    }

    /// Puts the HTTP proxy at `host:port` (see [`Sim::proxy`]) behind NTLM: `domain\\user` with
    /// `password`, checked by a real acceptor on the `Proxy-Authorization` of CONNECTs and
    /// absolute-form requests. One exchange per connection: a Type 3 on another connection
    /// than its Type 1 is refused, as real proxies do. Its first `closes` 407s end with
    /// `Connection: close` and the connection closed (the rest keep it alive).
    pub fn proxy_ntlm(
        &mut self,
        host: &str,
        port: u16,
        user: (&str, &str),
        password: &str,
        closes: u32,
    ) {
        let peer = NtlmPeer::new(user.0, user.1, password);
        let gate = ProxyGate {
            peer,
            closes,
            unframed: false,
        };
        self.proxy_gates.insert((host.to_string(), port), gate);
    }

    /// Makes the NTLM gate of the proxy at `host:port` answer 407s without Content-Length:
    /// each body runs until the proxy closes the connection, which it then does.
    pub fn proxy_ntlm_unframed(&mut self, host: &str, port: u16) {
        let gate = self.proxy_gates.get_mut(&(host.to_string(), port));
        let gate = gate.expect("a proxy set up with proxy_ntlm");
        gate.unframed = true;
        gate.closes = u32::MAX;
    }

    /// The NTLM acceptor of a proxy set up with [`Sim::proxy_ntlm`].
    pub fn proxy_ntlm_peer(&self, host: &str, port: u16) -> Option<&NtlmPeer> {
        self.proxy_gates
            .get(&(host.to_string(), port))
            .map(|gate| &gate.peer)
    }

    /// Puts `http(s)://host:port/path` behind NTLM: `domain\\user` with `password`, checked by
    /// a real acceptor, one exchange per connection for all of the server's protected paths
    /// (the 401s carry a body to read). The first call for a server sets its user.
    pub fn ntlm(&mut self, host: &str, port: u16, path: &str, user: (&str, &str), password: &str) {
        let (_, paths) = self
            .ntlm
            .entry((host.to_string(), port))
            .or_insert_with(|| (NtlmPeer::new(user.0, user.1, password), Vec::new()));
        paths.push(path.to_string());
    }

    /// The NTLM acceptor of a server set up with [`Sim::ntlm`].
    pub fn ntlm_peer(&self, host: &str, port: u16) -> Option<&NtlmPeer> {
        self.ntlm
            .get(&(host.to_string(), port))
            .map(|(peer, _)| peer)
    }

    /// Puts `http(s)://host:port/path` behind Negotiate (Kerberos) with `peer`; the first call
    /// for a server sets its acceptor.
    pub fn kerberos(&mut self, host: &str, port: u16, path: &str, peer: KerberosPeer) {
        let (_, paths) = self
            .kerberos
            .entry((host.to_string(), port))
            .or_insert_with(|| (peer, Vec::new()));
        paths.push(path.to_string());
    }

    /// The Negotiate acceptor of a server set up with [`Sim::kerberos`].
    pub fn kerberos_peer(&self, host: &str, port: u16) -> Option<&KerberosPeer> {
        self.kerberos
            .get(&(host.to_string(), port))
            .map(|(peer, _)| peer)
    }

    /// Serves `resource` at `http(s)://host:port/path`.
    pub fn serve(&mut self, host: &str, port: u16, path: &str, resource: Resource) {
        let server = self.servers.entry((host.to_string(), port)).or_default();
        server.resources.insert(path.to_string(), resource);
    }

    /// Scripts how the next requests for `path` are answered (the last reply repeats).
    pub fn script(&mut self, host: &str, port: u16, path: &str, replies: Vec<Reply>) {
        let server = self.servers.entry((host.to_string(), port)).or_default();
        server.scripts.insert(path.to_string(), replies.into());
    }

    /// The resource `host:port` serves at `path` now.
    pub fn resource(&self, host: &str, port: u16, path: &str) -> Option<&Resource> {
        self.servers
            .get(&(host.to_string(), port))?
            .resources
            .get(path)
    }

    /// Makes every connection to `host:port` be refused (or accepted again).
    pub fn refuse_connections(&mut self, host: &str, port: u16, refuse: bool) {
        self.servers
            .entry((host.to_string(), port))
            .or_default()
            .refuse_connections = refuse;
    }

    /// Serves `der` (a CRL) at `url` for `Action::FetchCrl`; `None` makes fetches of it never
    /// answer.
    pub fn publish_crl(&mut self, url: &str, der: Option<Vec<u8>>) {
        self.crls.insert(url.to_string(), der);
    }

    /// Makes the HTTPS host `host` present `chain` instead of its default leaf.
    pub fn present_chain(
        &mut self,
        host: &str,
        chain: Vec<backhaul_core::CertificateDer<'static>>,
    ) {
        self.chains.insert(host.to_string(), chain);
    }
}
