//! Loopback servers for the drivers' connection tests (feature `test-support`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
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

    fn spawn(mode: Mode, extra: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let Mode::Tls { close_notify } = mode else {
            let thread = std::thread::spawn(move || {
                let (tcp, _) = listener.accept().expect("accept");
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
            let (tcp, _) = listener.accept().expect("accept");
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
