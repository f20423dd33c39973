//! Loopback servers for the drivers' connection tests (feature `test-support`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server for one connection: it reads one line, answers `echo: <line>` (then, if asked,
/// [`pattern`] bytes), and closes.
#[derive(Debug)]
pub struct EchoServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// For TLS, the self-signed certificate it presents (for `localhost`).
    pub cert: Option<CertificateDer<'static>>,
    thread: JoinHandle<()>,
}

/// How the server speaks.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Plain,
    /// TLS; whether it sends `close_notify` before closing.
    Tls {
        close_notify: bool,
    },
    /// A plain preamble (like a proxy's CONNECT exchange), then TLS on the same connection.
    TlsAfterPreamble,
    /// A plain preamble, then a non-TLS answer to the ClientHello.
    GarbageAfterPreamble,
}

impl EchoServer {
    /// Plain TCP.
    pub fn plain() -> Self {
        Self::spawn(Mode::Plain, 0)
    }

    /// TLS with a fresh self-signed certificate for `localhost`. With `close_notify` false the
    /// server drops the TCP connection without TLS' closing alert.
    pub fn tls(close_notify: bool) -> Self {
        Self::spawn(Mode::Tls { close_notify }, 0)
    }

    /// Like [`EchoServer::plain`] or [`EchoServer::tls`] (with `close_notify`), then `len` bytes
    /// of [`pattern`] after the echo.
    pub fn bulk(tls: bool, len: usize) -> Self {
        Self::spawn(
            if tls {
                Mode::Tls { close_notify: true }
            } else {
                Mode::Plain
            },
            len,
        )
    }

    /// Like a proxy's tunnel: reads one plain line, answers `proceed: <line>`, then speaks TLS
    /// (with a fresh self-signed certificate for `localhost`) as [`EchoServer::tls`] does.
    pub fn tls_after_preamble() -> Self {
        Self::spawn(Mode::TlsAfterPreamble, 0)
    }

    /// Reads one plain line, answers `proceed: <line>`, then answers the ClientHello with
    /// plain text and closes: a handshake that must fail.
    pub fn garbage_after_preamble() -> Self {
        Self::spawn(Mode::GarbageAfterPreamble, 0)
    }

    fn spawn(mode: Mode, extra: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let close_notify = match mode {
            Mode::Tls { close_notify } => close_notify,
            Mode::TlsAfterPreamble => true,
            Mode::Plain | Mode::GarbageAfterPreamble => false,
        };
        if matches!(mode, Mode::Plain | Mode::GarbageAfterPreamble) {
            let thread = std::thread::spawn(move || {
                let (tcp, _) = listener.accept().expect("accept");
                if matches!(mode, Mode::GarbageAfterPreamble) {
                    let mut tcp = preamble(tcp);
                    let mut hello = [0u8; 5];
                    tcp.read_exact(&mut hello)
                        .expect("a ClientHello record header");
                    tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                        .expect("answer");
                    return;
                }
                serve(tcp, extra);
            });
            return Self {
                port,
                cert: None,
                thread,
            };
        };
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("self-signed certificate");
        let cert = key.cert.der().clone();
        let private =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(vec![cert.clone()], private)
                .expect("server certificate");
        let config = Arc::new(config);
        let thread = std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().expect("accept");
            if matches!(mode, Mode::TlsAfterPreamble) {
                tcp = preamble(tcp);
            }
            let conn = ServerConnection::new(config).expect("server connection");
            let mut stream = serve(StreamOwned::new(conn, tcp), extra);
            if close_notify {
                stream.conn.send_close_notify();
                let _ = stream.flush();
            }
        });
        Self {
            port,
            cert: Some(cert),
            thread,
        }
    }

    /// Wait for the server to finish its connection (panics if it panicked).
    pub fn join(self) {
        self.thread.join().expect("echo server panicked");
    }
}

/// Reads one line byte by byte (nothing after it is consumed) and answers `proceed: <line>`.
fn preamble(mut tcp: TcpStream) -> TcpStream {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        tcp.read_exact(&mut byte).expect("read the preamble");
        line.push(byte[0]);
    }
    tcp.write_all(b"proceed: ").expect("answer");
    tcp.write_all(&line).expect("answer");
    tcp.flush().expect("flush");
    tcp
}

fn serve<S: Read + Write>(stream: S, extra: usize) -> S {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a line");
    let mut stream = reader.into_inner();
    stream
        .write_all(format!("echo: {line}").as_bytes())
        .expect("answer");
    stream.write_all(&pattern(extra)).expect("bulk");
    stream.flush().expect("flush");
    stream
}

/// `len` bytes that reveal a lost, repeated or reordered chunk.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// A port on 127.0.0.1 where nothing listens (it was bound and released).
pub fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.local_addr().expect("local address").port()
}
