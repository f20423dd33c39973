//! Connection tasks against loopback servers: what the engine would be told.

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use backhaul_core::{ConnId, Input, IoFailureKind};
use backhaul_io::testing::{pattern, refused_port, EchoServer};
use backhaul_io::Io;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::TokioIo;

const CONN: ConnId = ConnId(1);

fn io() -> (TokioIo, mpsc::Receiver<Input>) {
    let (inputs, rx) = mpsc::channel(8);
    (
        TokioIo::new(
            inputs,
            backhaul_io::tls::client_config().unwrap(),
            crate::events::Events::new(),
        ),
        rx,
    )
}

async fn next(rx: &mut mpsc::Receiver<Input>) -> Input {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an input within 10 s")
        .expect("channel open")
}

/// Send a line, then collect everything received until the end, which must be `Closed`.
async fn exchange_bytes(io: &mut TokioIo, rx: &mut mpsc::Receiver<Input>, line: &str) -> Vec<u8> {
    io.send(CONN, Bytes::from(line.to_owned())).unwrap();
    let mut got = Vec::new();
    loop {
        match next(rx).await {
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

async fn exchange(io: &mut TokioIo, rx: &mut mpsc::Receiver<Input>, line: &str) -> String {
    String::from_utf8(exchange_bytes(io, rx, line).await).unwrap()
}

#[tokio::test]
async fn a_plain_connection_reports_connected_then_every_byte_then_closed() {
    let server = EchoServer::plain();
    let (mut io, mut rx) = io();
    io.connect(CONN, "127.0.0.1".into(), server.port, None)
        .unwrap();
    match next(&mut rx).await {
        Input::Connected {
            conn,
            peer_certificates,
            ..
        } => assert_eq!((conn, peer_certificates.len()), (CONN, 0)),
        other => panic!("expected Connected, got {other:?}"),
    }
    assert_eq!(exchange(&mut io, &mut rx, "hello\n").await, "echo: hello\n");
    server.join();
}

#[tokio::test]
async fn an_untrusted_tls_server_connects_and_its_chain_is_handed_to_core() {
    let server = EchoServer::tls(true);
    let (mut io, mut rx) = io();
    io.connect(
        CONN,
        "127.0.0.1".into(),
        server.port,
        Some("localhost".into()),
    )
    .unwrap();
    match next(&mut rx).await {
        Input::Connected {
            peer_certificates, ..
        } => assert_eq!(Some(&peer_certificates[0]), server.cert.as_ref()),
        other => panic!("expected Connected, got {other:?}"),
    }
    assert_eq!(
        exchange(&mut io, &mut rx, "secret\n").await,
        "echo: secret\n"
    );
    server.join();
}

#[tokio::test]
async fn a_tls_server_closing_without_close_notify_is_a_plain_close() {
    let server = EchoServer::tls(false);
    let (mut io, mut rx) = io();
    io.connect(
        CONN,
        "localhost".into(),
        server.port,
        Some("localhost".into()),
    )
    .unwrap();
    assert!(matches!(next(&mut rx).await, Input::Connected { .. }));
    assert_eq!(exchange(&mut io, &mut rx, "x\n").await, "echo: x\n");
    server.join();
}

async fn connect_failure(host: &str, port: u16, tls: Option<&str>) -> IoFailureKind {
    let (mut io, mut rx) = io();
    io.connect(CONN, host.into(), port, tls.map(Into::into))
        .unwrap();
    match next(&mut rx).await {
        Input::ConnectFailed { conn, error, .. } => {
            assert_eq!(conn, CONN);
            error.kind
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_connect_refused() {
    assert_eq!(
        connect_failure("127.0.0.1", refused_port(), None).await,
        IoFailureKind::ConnectRefused
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_name_not_resolved() {
    assert_eq!(
        connect_failure("no-such-host.invalid", 80, None).await,
        IoFailureKind::NameNotResolved
    );
}

#[tokio::test]
async fn a_server_that_does_not_speak_tls_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    assert_eq!(
        connect_failure("127.0.0.1", port, Some("localhost")).await,
        IoFailureKind::TlsHandshake
    );
    server.join().unwrap();
}

#[tokio::test]
async fn after_close_nothing_more_is_reported() {
    let server = EchoServer::plain();
    let (mut io, mut rx) = io();
    io.connect(CONN, "127.0.0.1".into(), server.port, None)
        .unwrap();
    assert!(matches!(next(&mut rx).await, Input::Connected { .. }));
    io.close(CONN);
    io.send(CONN, Bytes::from_static(b"late\n")).unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err(),
        "no input after Close"
    );
    drop(server); // its thread waits for a line that never comes; the process exit ends it
}

#[tokio::test]
async fn a_large_tls_response_arrives_whole_and_in_order() {
    let len = 3 * 1024 * 1024 + 17;
    let server = EchoServer::bulk(true, len);
    let (mut io, mut rx) = io();
    io.connect(
        CONN,
        "127.0.0.1".into(),
        server.port,
        Some("localhost".into()),
    )
    .unwrap();
    assert!(matches!(next(&mut rx).await, Input::Connected { .. }));
    let got = exchange_bytes(&mut io, &mut rx, "big\n").await;
    assert_eq!(&got[..10], b"echo: big\n");
    assert!(
        got[10..] == pattern(len)[..],
        "the body differs from what the server sent"
    );
    server.join();
}

/// Connect plain, exchange the preamble a proxy would, and start TLS for `localhost`.
async fn tunnel_then_start_tls(server: &EchoServer) -> (TokioIo, mpsc::Receiver<Input>) {
    let (mut io, mut rx) = io();
    io.connect(CONN, "127.0.0.1".into(), server.port, None)
        .unwrap();
    assert!(matches!(next(&mut rx).await, Input::Connected { .. }));
    io.send(CONN, Bytes::from_static(b"CONNECT localhost:443\n"))
        .unwrap();
    let mut got = Vec::new();
    while got != b"proceed: CONNECT localhost:443\n" {
        match next(&mut rx).await {
            Input::Received { data, .. } => got.extend_from_slice(&data),
            other => panic!("expected the preamble's answer, got {other:?}"),
        }
    }
    io.start_tls(CONN, "localhost".into()).unwrap();
    (io, rx)
}

#[tokio::test]
async fn start_tls_after_a_plain_preamble_reports_the_chain_then_decrypted_bytes() {
    let server = EchoServer::tls_after_preamble();
    let (mut io, mut rx) = tunnel_then_start_tls(&server).await;
    match next(&mut rx).await {
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
        exchange(&mut io, &mut rx, "through the tunnel\n").await,
        "echo: through the tunnel\n"
    );
    server.join();
}

#[tokio::test]
async fn start_tls_answered_by_plain_text_is_a_tls_handshake_failure() {
    let server = EchoServer::garbage_after_preamble();
    let (_io, mut rx) = tunnel_then_start_tls(&server).await;
    match next(&mut rx).await {
        Input::ConnectionFailed { conn, error, .. } => {
            assert_eq!((conn, error.kind), (CONN, IoFailureKind::TlsHandshake));
            assert!(error.message.contains("localhost"), "{}", error.message);
        }
        other => panic!("expected ConnectionFailed, got {other:?}"),
    }
    server.join();
}

#[tokio::test]
async fn start_tls_on_a_tls_connection_fails_it() {
    let server = EchoServer::tls(true);
    let (mut io, mut rx) = io();
    io.connect(
        CONN,
        "127.0.0.1".into(),
        server.port,
        Some("localhost".into()),
    )
    .unwrap();
    assert!(matches!(next(&mut rx).await, Input::Connected { .. }));
    io.start_tls(CONN, "localhost".into()).unwrap();
    match next(&mut rx).await {
        Input::ConnectionFailed { error, .. } => {
            assert_eq!(error.kind, IoFailureKind::TlsHandshake);
        }
        other => panic!("expected ConnectionFailed, got {other:?}"),
    }
    io.close(CONN);
    drop(server); // it waits for a line that never comes; the test does not join it
}

#[tokio::test]
async fn start_tls_with_an_invalid_server_name_is_refused_at_once() {
    let (mut io, _rx) = io();
    let err = io.start_tls(CONN, "not a name!".into()).unwrap_err();
    assert_eq!(err.kind, IoFailureKind::TlsHandshake);
}
