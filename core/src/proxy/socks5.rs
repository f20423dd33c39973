//! The SOCKS5 client handshake (RFC 1928), with user/password authentication (RFC 1929),
//! sans-IO: the caller sends [`Socks5Handshake::initial`], feeds every byte the proxy sends to
//! [`Socks5Handshake::feed`], and sends what it is told to, until [`Step::Done`]. After that
//! the connection is a byte pipe to the target (TLS starts there for `https://`).
//!
//! The target is always sent as given: a name as a domain name (ATYP 3), so the proxy
//! resolves it (core resolves nothing); an IP literal as an IPv4 (ATYP 1) or IPv6 (ATYP 4)
//! address. Hand-written: the SOCKS crates on crates.io all own the socket.

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::ProxyPassword;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xFF;
const CMD_CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_NAME: u8 = 0x03;
const ATYP_V6: u8 = 0x04;
/// RFC 1929's sub-negotiation version.
const AUTH_VERSION: u8 = 0x01;

/// What to do after feeding bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes to the proxy, then keep feeding what it sends (call `feed(&[])` once
    /// first if it may already have sent more: buffered bytes are only looked at on `feed`).
    Send(Bytes),
    /// Feed more bytes.
    NeedMore,
    /// The tunnel is open. `leftover` is what the proxy sent after its reply: the target's first
    /// bytes (for TLS, where the client speaks first, any at all are a protocol error).
    Done {
        /// Bytes after the reply.
        leftover: Bytes,
    },
}

/// Why the handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Socks5Error {
    /// The proxy wants credentials and none were given (it accepted no offered method).
    #[error("SOCKS5 proxy requires authentication, and no user name and password were given")]
    AuthRequired,
    /// The proxy rejected the user name and password (RFC 1929 status ≠ 0).
    #[error("SOCKS5 proxy rejected the user name and password (status {0})")]
    AuthFailed(u8),
    /// The proxy accepted none of the offered methods, user/password included.
    #[error(
        "SOCKS5 proxy accepts none of the authentication methods offered (no-auth, user/password)"
    )]
    NoAcceptableMethod,
    /// The proxy answered the CONNECT with an error reply.
    #[error("SOCKS5 proxy refused: {} ({code})", reply_message(*.code))]
    Refused {
        /// The REP field (1–255).
        code: u8,
    },
    /// The proxy broke the protocol.
    #[error("SOCKS5 protocol error: {0}")]
    Protocol(String),
    /// The target or the credentials cannot be encoded (too long, empty).
    #[error("cannot ask the SOCKS5 proxy: {0}")]
    InvalidRequest(String),
}

impl Socks5Error {
    /// An authentication problem (the engine reports it like an HTTP proxy's 407).
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            Self::AuthRequired | Self::AuthFailed(_) | Self::NoAcceptableMethod
        )
    }
}

fn reply_message(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned error code",
    }
}

/// One SOCKS5 client handshake.
pub struct Socks5Handshake {
    request: Bytes,
    auth: Option<Bytes>,
    state: State,
    rx: BytesMut,
}

/// The sub-negotiation message carries the password: never printed.
impl std::fmt::Debug for Socks5Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks5Handshake")
            .field("state", &self.state)
            .field("with_auth", &self.auth.is_some())
            .field("buffered", &self.rx.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Method,
    Auth,
    Reply,
    Done,
    Failed,
}

impl Socks5Handshake {
    /// A handshake asking the proxy to connect to `target_host:target_port` (brackets around
    /// an IPv6 literal are accepted), with `auth` if the proxy asks for it.
    pub fn new(
        target_host: &str,
        target_port: u16,
        auth: Option<(&str, &ProxyPassword)>,
    ) -> Result<Self, Socks5Error> {
        let host = target_host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(target_host);
        let mut request = BytesMut::with_capacity(7 + host.len());
        request.put_slice(&[VERSION, CMD_CONNECT, 0]);
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => {
                request.put_u8(ATYP_V4);
                request.put_slice(&v4.octets());
            }
            Ok(IpAddr::V6(v6)) => {
                request.put_u8(ATYP_V6);
                request.put_slice(&v6.octets());
            }
            Err(_) => {
                let len = short_len(host, "the target host name")?;
                request.put_slice(&[ATYP_NAME, len]);
                request.put_slice(host.as_bytes());
            }
        }
        request.put_u16(target_port);
        let auth = auth
            .map(|(user, password)| {
                let user_len = short_len(user, "the user name")?;
                let pass_len = short_len(password.expose(), "the password")?;
                let mut msg = BytesMut::with_capacity(3 + user.len() + password.expose().len());
                msg.put_slice(&[AUTH_VERSION, user_len]);
                msg.put_slice(user.as_bytes());
                msg.put_u8(pass_len);
                msg.put_slice(password.expose().as_bytes());
                Ok(msg.freeze())
            })
            .transpose()?;
        Ok(Self {
            request: request.freeze(),
            auth,
            state: State::Method,
            rx: BytesMut::new(),
        })
    }

    /// The greeting to send first: no authentication, plus user/password when credentials
    /// were given.
    pub fn initial(&self) -> Bytes {
        if self.auth.is_some() {
            Bytes::from_static(&[VERSION, 2, NO_AUTH, USER_PASS])
        } else {
            Bytes::from_static(&[VERSION, 1, NO_AUTH])
        }
    }

    /// Bytes from the proxy, in order. After an error the handshake is over; feeding again
    /// returns a protocol error.
    pub fn feed(&mut self, data: &[u8]) -> Result<Step, Socks5Error> {
        self.rx.extend_from_slice(data);
        let result = self.advance();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn advance(&mut self) -> Result<Step, Socks5Error> {
        match self.state {
            State::Method => {
                let Some([version, method]) = self.take::<2>() else {
                    return Ok(Step::NeedMore);
                };
                check_version(version, VERSION, "method selection")?;
                match (method, &self.auth) {
                    (NO_AUTH, _) => self.send_request(),
                    (USER_PASS, Some(auth)) => {
                        let auth = auth.clone();
                        self.state = State::Auth;
                        Ok(Step::Send(auth))
                    }
                    (NO_ACCEPTABLE, None) => Err(Socks5Error::AuthRequired),
                    (NO_ACCEPTABLE, Some(_)) => Err(Socks5Error::NoAcceptableMethod),
                    (other, _) => Err(Socks5Error::Protocol(format!(
                        "the proxy chose method {other:#04x}, which was not offered"
                    ))),
                }
            }
            State::Auth => {
                let Some([version, status]) = self.take::<2>() else {
                    return Ok(Step::NeedMore);
                };
                check_version(version, AUTH_VERSION, "authentication reply")?;
                match status {
                    0 => self.send_request(),
                    failed => Err(Socks5Error::AuthFailed(failed)),
                }
            }
            State::Reply => self.read_reply(),
            State::Done | State::Failed => Err(Socks5Error::Protocol(
                "the handshake is already over".into(),
            )),
        }
    }

    fn send_request(&mut self) -> Result<Step, Socks5Error> {
        self.state = State::Reply;
        Ok(Step::Send(self.request.clone()))
    }

    /// `VER REP RSV ATYP BND.ADDR BND.PORT`: the bound address is read and ignored.
    fn read_reply(&mut self) -> Result<Step, Socks5Error> {
        let Some(&[version, reply, _reserved, atyp]) = self.rx.get(..4) else {
            return Ok(Step::NeedMore);
        };
        check_version(version, VERSION, "reply")?;
        if reply != 0 {
            return Err(Socks5Error::Refused { code: reply });
        }
        let addr_len = match atyp {
            ATYP_V4 => 4,
            ATYP_V6 => 16,
            ATYP_NAME => match self.rx.get(4) {
                Some(&len) => 1 + usize::from(len),
                None => return Ok(Step::NeedMore),
            },
            other => {
                return Err(Socks5Error::Protocol(format!(
                    "unknown address type {other:#04x} in the reply"
                )))
            }
        };
        let total = 4 + addr_len + 2;
        if self.rx.len() < total {
            return Ok(Step::NeedMore);
        }
        let _bound = self.rx.split_to(total);
        self.state = State::Done;
        Ok(Step::Done {
            leftover: self.rx.split().freeze(),
        })
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes: [u8; N] = self.rx.get(..N)?.try_into().ok()?;
        let _ = self.rx.split_to(N);
        Some(bytes)
    }
}

fn check_version(got: u8, want: u8, what: &str) -> Result<(), Socks5Error> {
    if got == want {
        Ok(())
    } else {
        Err(Socks5Error::Protocol(format!(
            "version {got} in the {what}, expected {want} (is this a SOCKS5 proxy?)"
        )))
    }
}

/// The length byte for a 1–255-byte field.
fn short_len(text: &str, what: &str) -> Result<u8, Socks5Error> {
    match u8::try_from(text.len()) {
        Ok(0) => Err(Socks5Error::InvalidRequest(format!("{what} is empty"))),
        Ok(len) => Ok(len),
        Err(_) => Err(Socks5Error::InvalidRequest(format!(
            "{what} is longer than 255 bytes"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password() -> ProxyPassword {
        ProxyPassword::new("s3cret")
    }

    /// Runs a handshake against the proxy's whole answer split into `pieces`; returns what was
    /// sent (greeting included) and the outcome: on success, the tunnel's bytes (the leftover
    /// plus every later piece).
    fn run(
        mut hs: Socks5Handshake,
        pieces: &[&[u8]],
    ) -> (Vec<Vec<u8>>, Result<Bytes, Socks5Error>) {
        let mut sent = vec![hs.initial().to_vec()];
        for (i, piece) in pieces.iter().enumerate() {
            let mut step = hs.feed(piece);
            loop {
                match step {
                    Ok(Step::Send(bytes)) => {
                        sent.push(bytes.to_vec());
                        step = hs.feed(&[]);
                    }
                    Ok(Step::NeedMore) => break,
                    Ok(Step::Done { leftover }) => {
                        let rest = pieces[i + 1..].concat();
                        return (sent, Ok([&leftover[..], &rest].concat().into()));
                    }
                    Err(e) => return (sent, Err(e)),
                }
            }
        }
        (sent, Err(Socks5Error::Protocol("ran out of input".into())))
    }

    fn every_split(
        make: impl Fn() -> Socks5Handshake,
        wire: &[u8],
    ) -> (Vec<Vec<u8>>, Result<Bytes, Socks5Error>) {
        let whole = run(make(), &[wire]);
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(run(make(), &bytes), whole, "byte by byte");
        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            assert_eq!(run(make(), &[a, b]), whole, "split at {at}");
        }
        whole
    }

    #[test]
    fn no_auth_handshake_to_a_name_split_anywhere_opens_the_tunnel() {
        let wire = b"\x05\x00\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38tunnel";
        let (sent, done) = every_split(
            || Socks5Handshake::new("files.example", 443, None).unwrap(),
            wire,
        );
        assert_eq!(sent[0], b"\x05\x01\x00");
        assert_eq!(sent[1], b"\x05\x01\x00\x03\x0dfiles.example\x01\xbb");
        assert_eq!(done.unwrap(), "tunnel");
    }

    #[test]
    fn user_password_handshake_split_anywhere_sends_rfc1929_credentials() {
        // Method 2, auth OK, reply with a domain-name bound address.
        let wire = b"\x05\x02\x01\x00\x05\x00\x00\x03\x04host\x00\x50";
        let (sent, done) = every_split(
            || Socks5Handshake::new("10.1.2.3", 80, Some(("alice", &password()))).unwrap(),
            wire,
        );
        assert_eq!(sent[0], b"\x05\x02\x00\x02");
        assert_eq!(sent[1], b"\x01\x05alice\x06s3cret");
        assert_eq!(sent[2], b"\x05\x01\x00\x01\x0a\x01\x02\x03\x00\x50");
        assert_eq!(done.unwrap(), "");
    }

    #[test]
    fn ipv6_targets_use_address_type_4() {
        let hs = Socks5Handshake::new("[::1]", 8443, None).unwrap();
        let (sent, done) = run(hs, &[b"\x05\x00\x05\x00\x00\x04", &[0; 16], b"\x00\x00"]);
        let mut expected = b"\x05\x01\x00\x04".to_vec();
        expected.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        expected.extend_from_slice(&8443u16.to_be_bytes());
        assert_eq!(sent[1], expected);
        assert!(done.is_ok());
    }

    #[test]
    fn refusals_are_named_with_their_code() {
        let hs = Socks5Handshake::new("h", 1, None).unwrap();
        let (_, done) = run(hs, &[b"\x05\x00\x05\x05\x00\x01"]);
        let err = done.unwrap_err();
        assert_eq!(err, Socks5Error::Refused { code: 5 });
        assert_eq!(
            err.to_string(),
            "SOCKS5 proxy refused: connection refused (5)"
        );
        assert!(!err.is_auth_failure());
    }

    #[test]
    fn authentication_failures_are_distinct() {
        let hs = Socks5Handshake::new("h", 1, None).unwrap();
        assert_eq!(run(hs, &[b"\x05\xff"]).1, Err(Socks5Error::AuthRequired));
        let hs = Socks5Handshake::new("h", 1, Some(("u", &password()))).unwrap();
        assert_eq!(
            run(hs, &[b"\x05\xff"]).1,
            Err(Socks5Error::NoAcceptableMethod)
        );
        let hs = Socks5Handshake::new("h", 1, Some(("u", &password()))).unwrap();
        let err = run(hs, &[b"\x05\x02\x01\x01"]).1.unwrap_err();
        assert_eq!(err, Socks5Error::AuthFailed(1));
        assert!(err.is_auth_failure());
    }

    #[test]
    fn protocol_violations_are_errors_and_stick() {
        for wire in [
            &b"HTTP/1.1 400 Bad\r\n"[..],
            b"\x05\x02",                 // user/pass chosen but never offered
            b"\x05\x00\x05\x00\x00\x09", // unknown address type
            b"\x05\x00\x04\x00\x00\x01", // SOCKS4-style version in the reply
        ] {
            let mut hs = Socks5Handshake::new("h", 1, None).unwrap();
            let (_, done) = run(Socks5Handshake::new("h", 1, None).unwrap(), &[wire]);
            assert!(
                matches!(done, Err(Socks5Error::Protocol(_))),
                "{wire:?}: {done:?}"
            );
            let _ = hs.feed(wire);
            let _ = hs.feed(&[]);
            assert!(hs.feed(b"\x05\x00").is_err());
        }
    }

    #[test]
    fn over_long_fields_are_refused_before_anything_is_sent() {
        let long = "a".repeat(256);
        assert!(matches!(
            Socks5Handshake::new(&long, 1, None),
            Err(Socks5Error::InvalidRequest(_))
        ));
        let long_pw = ProxyPassword::new(long.clone());
        assert!(Socks5Handshake::new("h", 1, Some(("u", &long_pw))).is_err());
        assert!(Socks5Handshake::new("h", 1, Some(("", &password()))).is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let hs = Socks5Handshake::new("h", 1, Some(("u", &password()))).unwrap();
        let printed = format!("{hs:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_proxy_bytes_never_panic(
            wire in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            cut in 0usize..64,
            auth: bool,
        ) {
            let pw = password();
            let hs = Socks5Handshake::new("h.example", 443, auth.then_some(("u", &pw))).unwrap();
            let (a, b) = wire.split_at(cut.min(wire.len()));
            let _ = run(hs, &[a, b]);
        }
    }
}
