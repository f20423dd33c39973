//! The test server, checked with a raw `TcpStream` client (and a rustls one for HTTPS).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::wire::find;
use super::*;
use crate::data::deterministic_bytes;

/// A response as a raw client read it.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// False when the connection ended before the framing said the body was complete.
    complete: bool,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client over any stream, keeping unread bytes between responses.
struct RawClient<S> {
    stream: S,
    buf: Vec<u8>,
    eof: bool,
}

impl RawClient<TcpStream> {
    fn connect(server: &TestServer) -> Self {
        let stream = TcpStream::connect(server.addr()).expect("connect to the test server");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        RawClient::new(stream)
    }
}

impl<S: Read + Write> RawClient<S> {
    fn new(stream: S) -> Self {
        RawClient {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    fn get(&mut self, path: &str, extra: &[(&str, &str)]) -> RawResponse {
        self.request("GET", path, extra)
    }

    fn request(&mut self, method: &str, path: &str, extra: &[(&str, &str)]) -> RawResponse {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (n, v) in extra {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream
            .write_all(req.as_bytes())
            .expect("send the request");
        self.stream.flush().expect("flush the request");
        self.read_response(method == "HEAD")
    }

    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn read_response(&mut self, head_only: bool) -> RawResponse {
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos + 4;
            }
            assert!(self.fill(), "connection ended before a response head");
        };
        let head = String::from_utf8(self.buf.drain(..head_end).collect()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .expect("status code")
            .parse()
            .expect("numeric status");
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header colon");
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
            complete: true,
        };
        if head_only {
            return response;
        }
        if response.header("Transfer-Encoding") == Some("chunked") {
            response.complete = self.read_chunked(&mut response.body);
        } else {
            let len: usize = response
                .header("Content-Length")
                .expect("Content-Length")
                .parse()
                .expect("numeric length");
            while self.buf.len() < len && self.fill() {}
            let take = len.min(self.buf.len());
            response.body = self.buf.drain(..take).collect();
            response.complete = take == len;
        }
        response
    }

    fn read_chunked(&mut self, body: &mut Vec<u8>) -> bool {
        loop {
            let line_end = loop {
                if let Some(pos) = find(&self.buf, b"\r\n") {
                    break pos;
                }
                if !self.fill() {
                    return false;
                }
            };
            let size_line = String::from_utf8(self.buf.drain(..line_end + 2).collect())
                .expect("ASCII chunk size");
            let size = usize::from_str_radix(size_line.trim(), 16).expect("hex chunk size");
            while self.buf.len() < size + 2 {
                if !self.fill() {
                    return false;
                }
            }
            body.extend(self.buf.drain(..size));
            assert_eq!(
                self.buf.drain(..2).collect::<Vec<u8>>(),
                b"\r\n",
                "chunk ends with CRLF"
            );
            if size == 0 {
                return true;
            }
        }
    }

    /// True when the server closed the connection (read returns 0 or fails) within 5 s.
    fn sees_close(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !self.fill() {
                return true;
            }
        }
        false
    }
}

fn file_of(len: usize, seed: u64) -> FileSpec {
    FileSpec::new(deterministic_bytes(len, seed))
}

#[test]
fn get_returns_200_with_full_body_and_validators() {
    let file = file_of(300_000, 1);
    let server = TestServer::start(vec![Route::file("/f.bin", file.clone())]);
    let mut client = RawClient::connect(&server);
    let r = client.get("/f.bin", &[]);
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(r.body, file.body);
    assert_eq!(r.header("Content-Length"), Some("300000"));
    assert_eq!(r.header("ETag"), file.etag.as_deref());
    assert_eq!(r.header("Last-Modified"), file.last_modified.as_deref());
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    assert!(server.url("f.bin").starts_with("http://127.0.0.1:"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/f.bin")
    );
    assert_eq!((reqs[0].status, reqs[0].body_bytes_sent), (200, 300_000));
}

#[test]
fn range_from_offset_returns_206_with_content_range() {
    let file = file_of(10_000, 2);
    let server = TestServer::start(vec![Route::file("/f", file.clone())]);
    let mut client = RawClient::connect(&server);
    let r = client.get("/f", &[("Range", "bytes=1234-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some("bytes 1234-9999/10000"));
    assert_eq!(r.header("Content-Length"), Some("8766"));
    assert_eq!(r.body, file.body[1234..]);
    let r = client.get("/f", &[("Range", "bytes=10-19")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some("bytes 10-19/10000"));
    assert_eq!(r.body, file.body[10..20]);
}

#[test]
fn range_at_or_past_the_end_returns_416() {
    let server = TestServer::start(vec![Route::file("/f", file_of(500, 3))]);
    let mut client = RawClient::connect(&server);
    for range in ["bytes=500-", "bytes=9999-"] {
        let r = client.get("/f", &[("Range", range)]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("Content-Range"), Some("bytes */500"));
        assert!(r.body.is_empty());
    }
}

#[test]
fn if_range_mismatch_returns_full_200_and_match_returns_206() {
    let file = file_of(4096, 4);
    let etag = file.etag.clone().expect("etag");
    let lm = file.last_modified.clone().expect("last-modified");
    let server = TestServer::start(vec![Route::file("/f", file.clone())]);
    let mut client = RawClient::connect(&server);

    let r = client.get(
        "/f",
        &[("Range", "bytes=100-"), ("If-Range", "\"something-else\"")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, file.body);

    let r = client.get("/f", &[("Range", "bytes=100-"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, file.body[100..]);

    let r = client.get("/f", &[("Range", "bytes=100-"), ("If-Range", &lm)]);
    assert_eq!(r.status, 206);

    let r = client.get(
        "/f",
        &[
            ("Range", "bytes=100-"),
            ("If-Range", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn head_reports_length_without_a_body() {
    let file = file_of(777, 5);
    let server = TestServer::start(vec![Route::file("/f", file.clone())]);
    let mut client = RawClient::connect(&server);
    let r = client.request("HEAD", "/f", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("777"));
    // The next response on the same connection parses: the HEAD sent no body bytes.
    let r = client.get("/f", &[]);
    assert_eq!(r.body, file.body);
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn truncated_once_then_served_whole_and_resumable() {
    let file = file_of(200_000, 6);
    let etag = file.etag.clone().expect("etag");
    let server = TestServer::start(vec![Route {
        path: "/f".into(),
        behavior: Behavior::drop_after(file.clone(), 50_000, 1),
    }]);

    let mut first = RawClient::connect(&server);
    let r = first.get("/f", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("200000"));
    assert!(!r.complete, "the body was cut");
    assert_eq!(r.body.len(), 50_000);
    assert_eq!(r.body, file.body[..50_000]);
    assert!(first.sees_close());

    let mut second = RawClient::connect(&server);
    let r = second.get("/f", &[("Range", "bytes=50000-"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
    assert!(r.complete);
    assert_eq!(r.body, file.body[50_000..]);

    let gets = server.requests_to("GET", "/f");
    assert_eq!(gets.len(), 2);
    assert_eq!((gets[0].status, gets[0].body_bytes_sent), (200, 50_000));
    assert_eq!((gets[1].status, gets[1].body_bytes_sent), (206, 150_000));
    assert_eq!(gets[1].header("range"), Some("bytes=50000-"));
}

#[test]
fn truncated_ranged_request_sends_206_head_and_partial_body() {
    let file = file_of(100_000, 7);
    let server = TestServer::start(vec![Route {
        path: "/f".into(),
        behavior: Behavior::drop_after(file.clone(), 10, 1),
    }]);
    let mut client = RawClient::connect(&server);
    let r = client.get("/f", &[("Range", "bytes=100-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Length"), Some("99900"));
    assert_eq!(r.body, file.body[100..110]);
    assert!(!r.complete);
}

#[test]
fn head_does_not_consume_a_truncation_step() {
    let file = file_of(10_000, 8);
    let server = TestServer::start(vec![Route {
        path: "/f".into(),
        behavior: Behavior::drop_after(file, 100, 1),
    }]);
    let mut client = RawClient::connect(&server);
    let r = client.request("HEAD", "/f", &[]);
    assert_eq!(r.header("Content-Length"), Some("10000"));
    let r = client.get("/f", &[]);
    assert!(
        !r.complete,
        "the GET after a HEAD still meets the truncation"
    );
}

#[test]
fn changes_after_serves_the_new_version_with_its_own_etag() {
    let a = file_of(5000, 9).with_etag(Some("\"a\""));
    let b = file_of(6000, 10)
        .with_etag(Some("\"b\""))
        .with_last_modified(Some("Thu, 22 Oct 2015 07:28:00 GMT"));
    let server = TestServer::start(vec![Route {
        path: "/f".into(),
        behavior: Behavior::changes_after(a.clone(), b.clone(), 1),
    }]);
    let mut client = RawClient::connect(&server);
    let r = client.get("/f", &[]);
    assert_eq!(
        (r.header("ETag"), r.body.as_slice()),
        (Some("\"a\""), &a.body[..])
    );
    // A resume validated against A gets all of B.
    let r = client.get("/f", &[("Range", "bytes=1000-"), ("If-Range", "\"a\"")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.header("ETag"), r.body.as_slice()),
        (Some("\"b\""), &b.body[..])
    );
}

#[test]
fn service_unavailable_then_ok() {
    let file = file_of(1000, 11);
    let server = TestServer::start(vec![Route::script(
        "/f",
        vec![
            Step::status_with_headers(503, &[("Retry-After", "1")]),
            Step::Serve(file.clone()),
        ],
    )]);
    let mut client = RawClient::connect(&server);
    let r = client.get("/f", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    let r = client.get("/f", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, file.body);
    let r = client.get("/f", &[]);
    assert_eq!(r.status, 200, "the last step repeats");
}

#[test]
fn unknown_path_and_status_routes() {
    let server = TestServer::start(vec![Route::status("/gone", 404)]);
    let mut client = RawClient::connect(&server);
    assert_eq!(client.get("/gone", &[]).status, 404);
    assert_eq!(client.get("/gone", &[]).status, 404);
    assert_eq!(client.get("/nowhere", &[]).status, 404);
    assert_eq!(client.request("POST", "/gone", &[]).status, 405);
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let file = file_of(70_000, 12);
    let server = TestServer::start(vec![Route::file("/f", file.clone())]);
    let mut client = RawClient::connect(&server);
    let r1 = client.get("/f", &[]);
    let r2 = client.get("/f", &[("Range", "bytes=69999-")]);
    assert_eq!((r1.status, r2.status), (200, 206));
    assert_eq!(r1.header("Connection"), Some("keep-alive"));
    assert_eq!(r2.body, file.body[69_999..]);
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.requests().len(), 2);
    // Connection: close is honoured.
    let r3 = client.get("/f", &[("Connection", "close")]);
    assert_eq!(r3.header("Connection"), Some("close"));
    assert!(client.sees_close());
}

#[test]
fn chunked_file_streams_without_content_length() {
    let file = file_of(200_001, 13).chunked();
    let server = TestServer::start(vec![Route::file("/c", file.clone())]);
    let mut client = RawClient::connect(&server);
    let r = client.get("/c", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(r.header("Content-Length"), None);
    assert!(r.complete);
    assert_eq!(r.body, file.body);
    let r = client.request("HEAD", "/c", &[]);
    assert_eq!(r.header("Content-Length"), Some("200001"));
    // Keep-alive still works after the terminal chunk.
    let r = client.get("/c", &[("Range", "bytes=200000-")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &file.body[200_000..]));
}

#[test]
fn stall_holds_the_connection_until_the_server_drops() {
    let file = file_of(100_000, 14);
    let server = TestServer::start(vec![Route::script(
        "/s",
        vec![Step::Stall {
            file,
            after: 1000,
            hold: Duration::from_secs(60),
        }],
    )]);
    let mut client = RawClient::connect(&server);
    client
        .stream
        .write_all(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    while client.buf.len() < 1000 {
        assert!(client.fill(), "the first 1000 body bytes arrive");
    }
    let started = Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drop does not wait for the stall"
    );
    assert!(client.sees_close());
}

#[test]
fn drop_stops_accepting_and_closes_idle_connections() {
    let server = TestServer::start(vec![Route::file("/f", file_of(10, 15))]);
    let addr = server.addr();
    let mut idle = RawClient::connect(&server);
    assert_eq!(idle.get("/f", &[]).status, 200);
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(idle.sees_close());
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "nothing listens any more"
    );
}

fn tls_client(
    server: &TestServer,
    pki: &TestPki,
) -> RawClient<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("valid name");
    let conn = rustls::ClientConnection::new(pki.client_config(), name).expect("client connection");
    let tcp = TcpStream::connect(server.addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    RawClient::new(rustls::StreamOwned::new(conn, tcp))
}

#[test]
fn https_serves_a_file_to_a_client_trusting_the_test_ca() {
    let pki = TestPki::new();
    let file = file_of(300_000, 16);
    let server = TestServer::start_tls(vec![Route::file("/f", file.clone())], &pki);
    assert!(server.url("/f").starts_with("https://localhost:"));
    let mut client = tls_client(&server, &pki);
    let r = client.get("/f", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, file.body);
    let r = client.get("/f", &[("Range", "bytes=299000-")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &file.body[299_000..]));
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn https_truncation_cuts_without_close_notify() {
    let pki = TestPki::new();
    let file = file_of(100_000, 17);
    let server = TestServer::start_tls(
        vec![Route {
            path: "/f".into(),
            behavior: Behavior::drop_after(file.clone(), 5000, 1),
        }],
        &pki,
    );
    let mut client = tls_client(&server, &pki);
    let r = client.get("/f", &[]);
    assert!(!r.complete);
    assert_eq!(r.body, file.body[..5000]);
    let mut client = tls_client(&server, &pki);
    assert_eq!(client.get("/f", &[]).body, file.body);
}

#[test]
fn https_with_an_expired_leaf_fails_the_handshake_before_any_request() {
    let pki = TestPki::expired();
    let server = TestServer::start_tls(vec![Route::file("/f", file_of(10, 18))], &pki);
    let mut client = tls_client(&server, &pki);
    let err = client
        .stream
        .write_all(b"GET /f HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .and_then(|()| client.stream.flush())
        .and_then(|()| client.stream.read(&mut [0u8; 16]).map(|_| ()))
        .expect_err("an expired certificate is refused");
    assert!(format!("{err:?}").contains("Expired"), "{err:?}");
    assert!(server.requests().is_empty());
}

#[test]
fn https_client_without_the_ca_is_refused_and_no_request_is_recorded() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let server = TestServer::start_tls(vec![Route::file("/f", file_of(10, 19))], &pki);
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("valid name");
    let conn =
        rustls::ClientConnection::new(other.client_config(), name).expect("client connection");
    let tcp = TcpStream::connect(server.addr()).expect("connect");
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let result = stream
        .write_all(b"GET /f HTTP/1.1\r\n\r\n")
        .and_then(|()| stream.read(&mut [0u8; 1]).map(|_| ()));
    assert!(result.is_err());
    std::thread::sleep(Duration::from_millis(50));
    assert!(server.requests().is_empty());
}

mod auth;
