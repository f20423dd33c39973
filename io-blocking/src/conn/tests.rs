//! Connection threads against loopback servers: what the engine would be told.

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use backhaul_core::{ConnId, Input, IoFailureKind};
use backhaul_io::testing::{pattern, refused_port, EchoServer};
use backhaul_io::Io;
use bytes::Bytes;

use super::{State, ThreadIo};
use crate::events::Subscribers;
use crate::Msg;

const CONN: ConnId = ConnId(1);

fn io() -> (ThreadIo, Receiver<Msg>) {
    let (inputs, rx) = mpsc::sync_channel(8);
    (
        ThreadIo::new(
            inputs,
            backhaul_io::tls::client_config().unwrap(),
            Subscribers::default(),
        ),
        rx,
    )
}

fn next(rx: &Receiver<Msg>) -> Input {
    match rx
        .recv_timeout(Duration::from_secs(10))
        .expect("an input within 10 s")
    {
        // The chunk's credit returns here, as the engine thread's after handling it.
        Msg::Input(input) | Msg::Received { input, .. } => input,
        _ => panic!("connections only send inputs"),
    }
}

/// Send a line, then collect everything received until the end, which must be `Closed`.
fn exchange_bytes(io: &mut ThreadIo, rx: &Receiver<Msg>, line: &str) -> Vec<u8> {
    io.send(CONN, Bytes::from(line.to_owned())).unwrap();
    let mut got = Vec::new();
    loop {
        match next(rx) {
            Input::Received { conn, data, .. } => {
                assert_eq!(conn, CONN);
                assert!(!data.is_empty());
                got.extend_from_slice(&data);
            }
            Input::Closed { conn, .. } => {
                assert_eq!(conn, CONN);
                return got;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn exchange(io: &mut ThreadIo, rx: &Receiver<Msg>, line: &str) -> String {
    String::from_utf8(exchange_bytes(io, rx, line)).unwrap()
}

#[test]
fn a_plain_connection_reports_connected_then_every_byte_then_closed() {
    let server = EchoServer::plain();
    let (mut io, rx) = io();
    io.connect(CONN, "127.0.0.1".into(), server.port, None)
        .unwrap();
    match next(&rx) {
        Input::Connected {
            conn,
            peer_certificates,
            ..
        } => assert_eq!((conn, peer_certificates.len()), (CONN, 0)),
        other => panic!("expected Connected, got {other:?}"),
    }
    assert_eq!(exchange(&mut io, &rx, "hello\n"), "echo: hello\n");
    server.join();
}

#[test]
fn an_untrusted_tls_server_connects_and_its_chain_is_handed_to_core() {
    let server = EchoServer::tls(true);
    let (mut io, rx) = io();
    io.connect(
        CONN,
        "127.0.0.1".into(),
        server.port,
        Some("localhost".into()),
    )
    .unwrap();
    match next(&rx) {
        Input::Connected {
            peer_certificates, ..
        } => assert_eq!(Some(&peer_certificates[0]), server.cert.as_ref()),
        other => panic!("expected Connected, got {other:?}"),
    }
    assert_eq!(exchange(&mut io, &rx, "secret\n"), "echo: secret\n");
    server.join();
}

#[test]
fn a_tls_server_closing_without_close_notify_is_a_plain_close() {
    let server = EchoServer::tls(false);
    let (mut io, rx) = io();
    io.connect(
        CONN,
        "localhost".into(),
        server.port,
        Some("localhost".into()),
    )
    .unwrap();
    assert!(matches!(next(&rx), Input::Connected { .. }));
    assert_eq!(exchange(&mut io, &rx, "x\n"), "echo: x\n");
    server.join();
}

fn connect_failure(host: &str, port: u16, tls: Option<&str>) -> IoFailureKind {
    let (mut io, rx) = io();
    io.connect(CONN, host.into(), port, tls.map(Into::into))
        .unwrap();
    match next(&rx) {
        Input::ConnectFailed { conn, error, .. } => {
            assert_eq!(conn, CONN);
            error.kind
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

#[test]
fn a_refused_connection_is_connect_refused() {
    assert_eq!(
        connect_failure("127.0.0.1", refused_port(), None),
        IoFailureKind::ConnectRefused
    );
}

#[test]
fn a_name_that_does_not_resolve_is_name_not_resolved() {
    assert_eq!(
        connect_failure("no-such-host.invalid", 80, None),
        IoFailureKind::NameNotResolved
    );
}

#[test]
fn a_server_that_does_not_speak_tls_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    assert_eq!(
        connect_failure("127.0.0.1", port, Some("localhost")),
        IoFailureKind::TlsHandshake
    );
    server.join().unwrap();
}

#[test]
fn after_close_the_reader_wakes_and_nothing_is_written() {
    let server = EchoServer::plain();
    let (mut io, rx) = io();
    io.connect(CONN, "127.0.0.1".into(), server.port, None)
        .unwrap();
    assert!(matches!(next(&rx), Input::Connected { .. }));
    io.close(CONN);
    io.send(CONN, Bytes::from_static(b"late\n")).unwrap();
    // The reader thread wakes from its blocked read and ends (its report is dropped by the host).
    assert!(matches!(
        next(&rx),
        Input::Closed { .. } | Input::ConnectionFailed { .. }
    ));
    server.join(); // the server saw the connection end without a line
}

#[test]
fn a_large_response_arrives_whole_and_in_order_over_tls_and_plain_tcp() {
    let len = 3 * 1024 * 1024 + 17;
    for tls in [true, false] {
        let server = EchoServer::bulk(tls, len);
        let (mut io, rx) = io();
        io.connect(
            CONN,
            "127.0.0.1".into(),
            server.port,
            tls.then(|| "localhost".into()),
        )
        .unwrap();
        assert!(matches!(next(&rx), Input::Connected { .. }));
        let got = exchange_bytes(&mut io, &rx, "big\n");
        assert_eq!(&got[..10], b"echo: big\n");
        assert!(
            got[10..] == pattern(len)[..],
            "the body differs from what the server sent (tls: {tls})"
        );
        server.join();
    }
}

#[test]
fn a_failed_send_is_reported_at_once_and_closes_the_connection() {
    let server = EchoServer::plain();
    let (mut io, rx) = io();
    io.connect(CONN, "127.0.0.1".into(), server.port, None)
        .unwrap();
    assert!(matches!(next(&rx), Input::Connected { .. }));
    let stream = match &*super::lock(&io.conns[&CONN].0) {
        State::Open(stream) => stream.clone(),
        _ => panic!("the slot is open"),
    };
    stream.tcp().shutdown(std::net::Shutdown::Write).unwrap();

    let err = io.send(CONN, Bytes::from_static(b"hello\n")).unwrap_err();

    assert_eq!(err.kind, IoFailureKind::ConnectionReset, "{err:?}");
    assert!(matches!(*super::lock(&io.conns[&CONN].0), State::Closed));
    server.join();
}

/// Connect plain, exchange the preamble a proxy would, and start TLS for `localhost`.
fn tunnel_then_start_tls(server: &EchoServer) -> (ThreadIo, Receiver<Msg>) {
    let (mut io, rx) = io();
    io.connect(CONN, "127.0.0.1".into(), server.port, None)
        .unwrap();
    assert!(matches!(next(&rx), Input::Connected { .. }));
    io.send(CONN, Bytes::from_static(b"CONNECT localhost:443\n"))
        .unwrap();
    let mut got = Vec::new();
    while got != b"proceed: CONNECT localhost:443\n" {
        match next(&rx) {
            Input::Received { data, .. } => got.extend_from_slice(&data),
            other => panic!("expected the preamble's answer, got {other:?}"),
        }
    }
    io.start_tls(CONN, "localhost".into()).unwrap();
    (io, rx)
}

#[test]
fn start_tls_after_a_plain_preamble_reports_the_chain_then_decrypted_bytes() {
    let server = EchoServer::tls_after_preamble();
    let (mut io, rx) = tunnel_then_start_tls(&server);
    match next(&rx) {
        Input::TlsStarted {
            conn,
            peer_certificates,
            ..
        } => {
            assert_eq!(conn, CONN);
            assert_eq!(Some(&peer_certificates[0]), server.cert.as_ref());
        }
        other => panic!("expected TlsStarted, got {other:?}"),
    }
    assert_eq!(
        exchange(&mut io, &rx, "through the tunnel\n"),
        "echo: through the tunnel\n"
    );
    server.join();
}

#[test]
fn start_tls_answered_by_plain_text_is_a_tls_handshake_failure() {
    let server = EchoServer::garbage_after_preamble();
    let (_io, rx) = tunnel_then_start_tls(&server);
    match next(&rx) {
        Input::ConnectionFailed { conn, error, .. } => {
            assert_eq!((conn, error.kind), (CONN, IoFailureKind::TlsHandshake));
        }
        other => panic!("expected ConnectionFailed, got {other:?}"),
    }
    server.join();
}

#[test]
fn start_tls_on_a_tls_connection_is_refused_and_closes_it() {
    let server = EchoServer::tls(true);
    let (mut io, rx) = io();
    io.connect(
        CONN,
        "127.0.0.1".into(),
        server.port,
        Some("localhost".into()),
    )
    .unwrap();
    assert!(matches!(next(&rx), Input::Connected { .. }));
    let err = io.start_tls(CONN, "localhost".into()).unwrap_err();
    assert_eq!(err.kind, IoFailureKind::TlsHandshake);
    assert!(!io.conns.contains_key(&CONN));
    drop(server); // it waits for a line that never comes; the test does not join it
}
