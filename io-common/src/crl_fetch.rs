//! `Action::FetchCrl`: one blocking HTTP GET of a CRL, with core's own codec over a std
//! `TcpStream`. Drivers run it away from the engine (tokio: `spawn_blocking`; threads: a
//! thread of its own) and report [`Input::CrlFetched`](backhaul_core::Input::CrlFetched).
//!
//! Deliberately small: `http://` only (a CRL is signed, so it needs no TLS, and fetching one
//! over https would itself need a revocation check), no redirects, no proxy, one request per
//! connection, bounded in time and size so a slow or huge CRL cannot pin a thread.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use backhaul_core::http::{Limits, Method, Request, ResponseEvent, ResponseParser};
use backhaul_core::{IoFailure, IoFailureKind};
use bytes::{Bytes, BytesMut};
use url::{Position, Url};

use crate::failure::{connect_failure, io_failure, resolve_failure};

/// TCP connect, per address tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole fetch: resolve, connect, request, response.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest CRL accepted. Big public CAs publish a few MiB at most.
pub const MAX_CRL_BYTES: usize = 10 * 1024 * 1024;

/// Fetches `url` and returns the body of a `200` response.
pub fn fetch(url: &str) -> Result<Bytes, IoFailure> {
    fetch_within(url, TOTAL_TIMEOUT)
}

/// [`fetch`] with another overall time limit (tests use short ones).
pub fn fetch_within(url: &str, limit: Duration) -> Result<Bytes, IoFailure> {
    let deadline = Instant::now() + limit;
    let parsed = Url::parse(url).map_err(|e| other(format!("{url:?} is not a URL: {e}")))?;
    if parsed.scheme() != "http" {
        return Err(other(format!("{url}: only http:// CRLs are fetched")));
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        None => return Err(other(format!("{url} has no host"))),
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut tcp = connect(&host, port, deadline)?;
    let host_header = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_string(),
    };
    let request = Request {
        method: Method::Get,
        target: &parsed[Position::BeforePath..Position::AfterQuery],
        host: &host_header,
        user_agent: concat!("backhaul-crl/", env!("CARGO_PKG_VERSION")),
        range_start: None,
        range_end: None,
        if_range: None,
        authorization: None,
        proxy_authorization: None,
        extra_headers: &[],
    };
    let mut head = BytesMut::new();
    request
        .encode(&mut head)
        .map_err(|e| other(format!("cannot request {url}: {e}")))?;
    tcp.set_write_timeout(Some(left(deadline, url)?))
        .and_then(|()| tcp.write_all(&head))
        .map_err(|e| io_failure(&e))?;
    read_body(&mut tcp, url, deadline)
}

/// Reads the response to the request just sent: the body of a 200, within size and time.
fn read_body(tcp: &mut TcpStream, url: &str, deadline: Instant) -> Result<Bytes, IoFailure> {
    let mut parser = ResponseParser::new(Limits::default());
    parser.expect_response(Method::Get);
    let mut body = BytesMut::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut eof = false;
    loop {
        let event = if eof {
            parser.handle_eof()
        } else {
            parser.poll_event()
        };
        match event.map_err(|e| other(format!("{url}: {e}")))? {
            Some(ResponseEvent::Head(head)) if head.status != 200 => {
                return Err(other(format!(
                    "{url} answered {} {}",
                    head.status, head.reason
                )));
            }
            Some(ResponseEvent::Head(_)) => {}
            Some(ResponseEvent::Body(data)) => {
                if body.len() + data.len() > MAX_CRL_BYTES {
                    return Err(other(format!(
                        "{url}: the CRL is over {MAX_CRL_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&data);
            }
            Some(ResponseEvent::End { .. }) => return Ok(body.freeze()),
            None if eof => return Err(other(format!("{url}: the response was cut short"))),
            None => {
                tcp.set_read_timeout(Some(left(deadline, url)?))
                    .map_err(|e| io_failure(&e))?;
                let n = tcp.read(&mut buf).map_err(|e| io_failure(&e))?;
                if n == 0 {
                    eof = true;
                } else {
                    parser.push(Bytes::copy_from_slice(&buf[..n]));
                }
            }
        }
    }
}

/// Resolves `host` and connects to the first address that answers, within the deadline.
fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, IoFailure> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| resolve_failure(host, Some(&e)))?;
    let mut last = None;
    for addr in addrs {
        let timeout = CONNECT_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(
        || resolve_failure(host, None),
        |e| connect_failure(host, port, &e),
    ))
}

/// Time left before `deadline`, or a timeout failure.
fn left(deadline: Instant, url: &str) -> Result<Duration, IoFailure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(other(format!("{url}: timed out")));
    }
    Ok(left)
}

fn other(message: String) -> IoFailure {
    IoFailure::new(IoFailureKind::Other, message)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    use super::*;

    /// Serves one connection: reads the request head, then writes `response`.
    fn serve_once(response: Vec<u8>) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let thread = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("read");
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            (&tcp).write_all(&response).expect("write");
            head
        });
        (port, thread)
    }

    #[test]
    fn fetch_returns_the_body_of_a_200() {
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec();
        response.extend_from_slice(b"\x30\x03abc");
        let (port, server) = serve_once(response);
        let body = fetch(&format!("http://127.0.0.1:{port}/ca.crl?x=1")).expect("fetched");
        assert_eq!(&body[..], b"\x30\x03abc");
        let head = server.join().expect("server");
        assert!(head.starts_with("GET /ca.crl?x=1 HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("Host: 127.0.0.1:{port}")), "{head}");
    }

    #[test]
    fn fetch_reads_a_body_delimited_by_the_end_of_the_connection() {
        let (port, server) = serve_once(b"HTTP/1.0 200 OK\r\n\r\nCRLBYTES".to_vec());
        let body = fetch(&format!("http://127.0.0.1:{port}/")).expect("fetched");
        assert_eq!(&body[..], b"CRLBYTES");
        server.join().expect("server");
    }

    #[test]
    fn fetch_refuses_another_status() {
        let (port, server) =
            serve_once(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec());
        let err = fetch(&format!("http://127.0.0.1:{port}/gone.crl")).unwrap_err();
        assert!(err.message.contains("404"), "{err:?}");
        server.join().expect("server");
    }

    #[test]
    fn fetch_refuses_a_body_cut_short() {
        let (port, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec());
        let err = fetch(&format!("http://127.0.0.1:{port}/")).unwrap_err();
        assert!(!err.message.is_empty());
        server.join().expect("server");
    }

    #[test]
    fn fetch_refuses_an_oversized_crl() {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_CRL_BYTES + 1
        );
        let mut response = head.into_bytes();
        response.resize(response.len() + MAX_CRL_BYTES + 1, b'x');
        let (port, server) = serve_once(response);
        let err = fetch(&format!("http://127.0.0.1:{port}/")).unwrap_err();
        assert!(err.message.contains("over"), "{err:?}");
        let _ = server.join(); // the client hangs up mid-body
    }

    #[test]
    fn fetch_of_a_closed_port_fails_to_connect() {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address")
            .port(); // the listener is dropped: nothing listens there now
        let err = fetch(&format!("http://127.0.0.1:{port}/ca.crl")).unwrap_err();
        assert_eq!(err.kind, IoFailureKind::ConnectRefused, "{err:?}");
    }

    #[test]
    fn fetch_refuses_other_schemes() {
        for url in [
            "https://127.0.0.1/ca.crl",
            "ldap://127.0.0.1/cn=ca",
            "not a url",
        ] {
            assert!(fetch(url).is_err(), "{url}");
        }
    }

    #[test]
    fn fetch_times_out_on_a_silent_server() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let started = Instant::now();
        let err = fetch_within(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{err:?}");
        drop(listener);
    }
}
