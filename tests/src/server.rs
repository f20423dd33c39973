//! A loopback HTTP/1.1 server for conformance and CLI tests: plain or HTTPS, scripted per path.
//!
//! # Theory of operation
//!
//! [`TestServer::start`] binds `127.0.0.1:0` and runs one accept thread plus one thread per
//! connection (blocking `std::net`, rustls for HTTPS). Each connection serves requests one after
//! another (keep-alive) until the client closes, asks to close, goes idle for
//! [`IDLE_TIMEOUT`], or a scripted step cuts it. Dropping the server stops accepting, shuts down
//! every open connection and joins every thread, so no test leaves one running.
//!
//! Each [`Route`] maps one path (query ignored) to a [`Behavior`]: a static [`FileSpec`]
//! (200/206/416, `ETag`, `Last-Modified`, `If-Range`, HEAD), or a script of [`Step`]s consumed
//! one per GET (truncate the body then cut the connection, stall, answer a status), whose last
//! step repeats forever. Every request is recorded ([`TestServer::requests`]) with the status
//! and the number of body bytes the server sent, so a test can assert what the client asked for
//! (`Range`, `If-Range`) and how much it re-fetched.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use self::auth::{AuthSpec, ServerDigestAlgorithm, ServerScheme};
use self::wire::{
    if_range_matches, parse_range, read_request, write_head, write_simple, ReadOutcome, Request,
};
use crate::pki::TestPki;

mod auth;
mod wire;

/// A connection that sends nothing for this long is closed by the server.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Bodies are written in slices of this size.
const WRITE_CHUNK: usize = 64 * 1024;

/// A running loopback server. Stops (and joins its threads) when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

/// One path and what the server does for it.
#[derive(Clone, Debug)]
pub struct Route {
    /// The request path, starting with `/` (the query string is ignored when matching).
    pub path: String,
    /// What requests to it get.
    pub behavior: Behavior,
}

/// What a route does.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// A static file: every request gets it (200, 206 for a satisfiable `Range`, 416 past the
    /// end; `If-Range` honoured).
    File(FileSpec),
    /// A script: each GET consumes the next step; the last step repeats forever. A HEAD is
    /// answered from the step the next GET would get, and consumes it only if it is a
    /// [`Step::Status`] (a HEAD meets the same failure a GET would).
    Script(Vec<Step>),
    /// `inner`, behind Basic or Digest authentication (401, or 407 as a proxy): see
    /// [`AuthSpec`]. Refused requests consume no step of `inner`.
    Auth {
        /// What the server requires.
        spec: AuthSpec,
        /// What authenticated requests get.
        inner: Box<Behavior>,
    },
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Step {
    /// Answer as the file would.
    Serve(FileSpec),
    /// Send the head the file would (full `Content-Length`, or 206 headers for a range) but only
    /// the first `after` bytes of the body, then cut the connection without a TLS close_notify.
    Truncate {
        /// The file.
        file: FileSpec,
        /// Body bytes sent before the cut.
        after: u64,
    },
    /// Send the head and the first `after` body bytes, then hold the connection open without
    /// sending anything for `hold` (or until the server is dropped), then cut it.
    Stall {
        /// The file.
        file: FileSpec,
        /// Body bytes sent before stalling.
        after: u64,
        /// How long to hold the connection.
        hold: Duration,
    },
    /// Answer `status` with these extra headers and this body (with a `Content-Length`).
    Status {
        /// The HTTP status.
        status: u16,
        /// Extra headers, e.g. `Retry-After`.
        headers: Vec<(String, String)>,
        /// The body.
        body: Bytes,
    },
}

/// A static file as a server holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// The content.
    pub body: Bytes,
    /// Strong validator, quoted (`"v1"`); `None` sends no `ETag`.
    pub etag: Option<String>,
    /// `Last-Modified` value, an HTTP date; `None` sends none.
    pub last_modified: Option<String>,
    /// Send GET bodies with `Transfer-Encoding: chunked` instead of `Content-Length`. A HEAD
    /// still reports the `Content-Length`, as a server that knows the file's size would.
    pub chunked: bool,
    /// Send bodies at about this many bytes per second (`None`: as fast as possible).
    pub bytes_per_second: Option<u64>,
}

/// A request as the server received it, with what it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The request target as sent (path and query).
    pub path: String,
    /// The headers, names as sent, in order.
    pub headers: Vec<(String, String)>,
    /// The status answered; 0 while the answer is being written or if none was.
    pub status: u16,
    /// Body bytes written to the client for this request.
    pub body_bytes_sent: u64,
}

impl TestServer {
    /// Starts a plain-HTTP server on `127.0.0.1` with an OS-assigned port.
    pub fn start(routes: Vec<Route>) -> TestServer {
        Self::start_inner(routes, None)
    }

    /// Starts a plain-HTTP server on `listener`, bound beforehand (so its URL can go into a
    /// certificate before the routes, which may depend on that certificate, exist).
    pub fn start_on(listener: TcpListener, routes: Vec<Route>) -> TestServer {
        Self::start_listening(listener, routes, None)
    }

    /// Starts an HTTPS server presenting `pki`'s leaf (SAN `localhost` and `127.0.0.1`).
    pub fn start_tls(routes: Vec<Route>, pki: &TestPki) -> TestServer {
        Self::start_inner(routes, Some(pki.server_config()))
    }

    /// The URL of `path` on this server: `http://127.0.0.1:PORT/path`, or
    /// `https://localhost:PORT/path` for TLS (so the certificate's name matches).
    pub fn url(&self, path: &str) -> String {
        let path = normalize_path(path);
        if self.tls {
            format!("https://localhost:{}{path}", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}{path}", self.addr.port())
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The requests received so far for `path` (query ignored) with `method`, in order.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        let path = normalize_path(path);
        self.requests()
            .into_iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && strip_query(&r.path) == path)
            .collect()
    }

    /// The request log, one line per request (method, target, `Range`, `If-Range`, status, body
    /// bytes sent): for failure messages.
    pub fn request_log(&self) -> String {
        let mut log = String::new();
        for r in self.requests() {
            log.push_str(&format!("{} {}", r.method, r.path));
            for name in ["Range", "If-Range"] {
                if let Some(v) = r.header(name) {
                    log.push_str(&format!(" [{name}: {v}]"));
                }
            }
            log.push_str(&format!(
                " -> {} ({} body bytes)\n",
                r.status, r.body_bytes_sent
            ));
        }
        log
    }

    /// How many TCP connections were accepted so far.
    pub fn connections_accepted(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    fn start_inner(routes: Vec<Route>, tls: Option<Arc<rustls::ServerConfig>>) -> TestServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        Self::start_listening(listener, routes, tls)
    }

    fn start_listening(
        listener: TcpListener,
        routes: Vec<Route>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> TestServer {
        for route in &routes {
            assert!(
                !matches!(route.behavior.served(), Behavior::Auth { .. }),
                "{} has two authentication layers; one per route",
                route.path
            );
            if let Behavior::Script(steps) = route.behavior.served() {
                assert!(
                    !steps.is_empty(),
                    "the script for {} has no step",
                    route.path
                );
            }
        }
        let addr = listener.local_addr().expect("local address");
        let is_tls = tls.is_some();
        let shared = Arc::new(Shared {
            routes: routes
                .into_iter()
                .map(|r| RouteState {
                    path: normalize_path(&r.path),
                    gate: match &r.behavior {
                        Behavior::Auth { spec, .. } => Some(auth::Gate::new(spec.clone())),
                        _ => None,
                    },
                    behavior: r.behavior,
                    next_step: Mutex::new(0),
                })
                .collect(),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            tls,
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name(format!("test-server-accept-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &accept_shared))
            .expect("spawn the accept thread");
        TestServer {
            addr,
            tls: is_tls,
            shared,
            accept_thread: Some(accept_thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread; it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        let conns = std::mem::take(&mut *lock(&self.shared.conns));
        for conn in &conns {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        for conn in conns {
            let _ = conn.thread.join();
        }
    }
}

impl Route {
    /// `path` serves `file` statically.
    pub fn file(path: &str, file: FileSpec) -> Route {
        Route {
            path: normalize_path(path),
            behavior: Behavior::File(file),
        }
    }

    /// `path` runs `steps` (see [`Behavior::Script`]).
    pub fn script(path: &str, steps: Vec<Step>) -> Route {
        Route {
            path: normalize_path(path),
            behavior: Behavior::Script(steps),
        }
    }

    /// `path` always answers `status` with an empty body.
    pub fn status(path: &str, status: u16) -> Route {
        Route::script(path, vec![Step::status(status)])
    }
}

impl Behavior {
    /// What requests that pass authentication get (the behaviour itself when unprotected).
    fn served(&self) -> &Behavior {
        match self {
            Behavior::Auth { inner, .. } => inner,
            other => other,
        }
    }

    /// The first `times` GETs get `file` cut after `drop_after_bytes` body bytes; later ones get
    /// the whole file.
    pub fn drop_after(file: FileSpec, drop_after_bytes: u64, times: usize) -> Behavior {
        let mut steps = vec![
            Step::Truncate {
                file: file.clone(),
                after: drop_after_bytes
            };
            times
        ];
        steps.push(Step::Serve(file));
        Behavior::Script(steps)
    }

    /// The first `after_requests` GETs get `first`; later ones get `then`.
    pub fn changes_after(first: FileSpec, then: FileSpec, after_requests: usize) -> Behavior {
        let mut steps = vec![Step::Serve(first); after_requests];
        steps.push(Step::Serve(then));
        Behavior::Script(steps)
    }
}

impl Step {
    /// `status` with no extra header and an empty body.
    pub fn status(status: u16) -> Step {
        Step::Status {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `status` with extra `headers` and an empty body.
    pub fn status_with_headers(status: u16, headers: &[(&str, &str)]) -> Step {
        Step::Status {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Bytes::new(),
        }
    }
}

impl FileSpec {
    /// `body` with a strong `ETag` derived from its content and a fixed `Last-Modified`.
    pub fn new(body: Bytes) -> FileSpec {
        let digest = crate::data::sha256_hex(&body);
        FileSpec {
            body,
            etag: Some(format!("\"{}\"", &digest[..16])),
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".to_string()),
            chunked: false,
            bytes_per_second: None,
        }
    }

    /// The same file with this `ETag` (pass it quoted, e.g. `"\"v2\""`; `None` for none).
    pub fn with_etag(mut self, etag: Option<&str>) -> FileSpec {
        self.etag = etag.map(str::to_string);
        self
    }

    /// The same file with this `Last-Modified` (`None` for none).
    pub fn with_last_modified(mut self, last_modified: Option<&str>) -> FileSpec {
        self.last_modified = last_modified.map(str::to_string);
        self
    }

    /// The same file, GET bodies sent chunked.
    pub fn chunked(mut self) -> FileSpec {
        self.chunked = true;
        self
    }

    /// The same file, bodies sent at about `rate` bytes per second (a slow server).
    pub fn throttled(mut self, rate: u64) -> FileSpec {
        self.bytes_per_second = Some(rate.max(1));
        self
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        self.body.len() as u64
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

impl RecordedRequest {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Server internals.

#[derive(Debug)]
struct Shared {
    routes: Vec<RouteState>,
    requests: Mutex<Vec<RecordedRequest>>,
    stop: AtomicBool,
    conns: Mutex<Vec<ConnEntry>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

#[derive(Debug)]
struct RouteState {
    path: String,
    /// The verifier of a [`Behavior::Auth`] route.
    gate: Option<auth::Gate>,
    behavior: Behavior,
    next_step: Mutex<usize>,
}

#[derive(Debug)]
struct ConnEntry {
    stream: TcpStream,
    thread: JoinHandle<()>,
}

/// How a connection ends after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// Serve the next request.
    KeepAlive,
    /// Close cleanly (TLS close_notify, then FIN).
    Close,
    /// Cut: no close_notify, just shut the socket.
    Cut,
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("test-server-conn".to_string())
            .spawn(move || run_connection(stream, &conn_shared));
        if let Ok(thread) = spawned {
            lock(&shared.conns).push(ConnEntry {
                stream: registered,
                thread,
            });
        }
    }
}

fn run_connection(mut tcp: TcpStream, shared: &Shared) {
    let _ = tcp.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(IDLE_TIMEOUT));
    let _ = tcp.set_nodelay(true);
    match &shared.tls {
        None => {
            let _ = serve_requests(&mut tcp, shared);
        }
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(config)) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let after = serve_requests(&mut tls, shared);
            if matches!(after, Ok(After::Close)) {
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
            tcp = tls.sock;
        }
    }
    let _ = tcp.shutdown(Shutdown::Both);
}

/// Serves requests until the connection should end; returns how.
fn serve_requests<S: Read + Write>(stream: &mut S, shared: &Shared) -> io::Result<After> {
    let mut buf = Vec::new();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(After::Close);
        }
        let request = match read_request(stream, &mut buf)? {
            ReadOutcome::Request(r) => r,
            ReadOutcome::Eof => return Ok(After::Close),
            ReadOutcome::TooLarge => {
                write_simple(stream, 431, &[], b"", true)?;
                return Ok(After::Close);
            }
            ReadOutcome::Malformed => {
                write_simple(stream, 400, &[], b"", true)?;
                return Ok(After::Close);
            }
        };
        let mut sent = Sent {
            shared,
            index: shared.record(&request),
        };
        match respond(stream, &request, shared, &mut sent)? {
            After::KeepAlive => continue,
            other => {
                stream.flush()?;
                return Ok(other);
            }
        }
    }
}

/// Keeps a request's record up to date while its answer is written: the status before the
/// head goes out, body bytes as each piece is handed to the socket (so a client that has read
/// the answer always finds it recorded).
#[derive(Debug)]
struct Sent<'a> {
    shared: &'a Shared,
    index: usize,
}

impl Sent<'_> {
    fn status(&mut self, status: u16) {
        if let Some(r) = lock(&self.shared.requests).get_mut(self.index) {
            r.status = status;
        }
    }

    /// Writes `piece` of the body (framed by `prefix` and `suffix`), counting it first and
    /// uncounting it if the write fails.
    fn body<S: Write>(
        &mut self,
        stream: &mut S,
        prefix: &[u8],
        piece: &[u8],
        suffix: &[u8],
    ) -> io::Result<()> {
        self.add(piece.len() as u64, true);
        let result = stream
            .write_all(prefix)
            .and_then(|()| stream.write_all(piece))
            .and_then(|()| stream.write_all(suffix));
        if result.is_err() {
            self.add(piece.len() as u64, false);
        }
        result
    }

    fn add(&mut self, n: u64, up: bool) {
        if let Some(r) = lock(&self.shared.requests).get_mut(self.index) {
            r.body_bytes_sent = if up {
                r.body_bytes_sent + n
            } else {
                r.body_bytes_sent - n
            };
        }
    }
}

impl Shared {
    fn record(&self, request: &Request) -> usize {
        let mut requests = lock(&self.requests);
        requests.push(RecordedRequest {
            method: request.method.clone(),
            path: request.target.clone(),
            headers: request.headers.clone(),
            status: 0,
            body_bytes_sent: 0,
        });
        requests.len() - 1
    }

    fn route(&self, target: &str) -> Option<&RouteState> {
        let path = strip_query(origin_form(target));
        self.routes.iter().find(|r| r.path == path)
    }
}

impl RouteState {
    /// The step for this request, consuming it when the rules of [`Behavior::Script`] say so.
    fn step_for(&self, request: &Request) -> Step {
        match self.behavior.served() {
            Behavior::Auth { .. } => {
                unreachable!("start_inner refuses nested authentication layers")
            }
            Behavior::File(file) => Step::Serve(file.clone()),
            Behavior::Script(steps) => {
                let mut next = lock(&self.next_step);
                let step = steps[(*next).min(steps.len() - 1)].clone();
                let consumes = request.method == "GET" || matches!(step, Step::Status { .. });
                if consumes {
                    *next = next.saturating_add(1);
                }
                step
            }
        }
    }
}

fn respond<S: Read + Write>(
    stream: &mut S,
    request: &Request,
    shared: &Shared,
    sent: &mut Sent<'_>,
) -> io::Result<After> {
    let close = request.wants_close();
    let keep = if close {
        After::Close
    } else {
        After::KeepAlive
    };
    if request.method != "GET" && request.method != "HEAD" {
        sent.status(405);
        write_simple(
            stream,
            405,
            &[("Allow".into(), "GET, HEAD".into())],
            b"",
            close,
        )?;
        return Ok(keep);
    }
    let Some(route) = shared.route(&request.target) else {
        sent.status(404);
        let body: &[u8] = if request.is_head() {
            b""
        } else {
            b"no such route\n"
        };
        write_simple(stream, 404, &[], body, close)?;
        return Ok(keep);
    };
    if let Some(refusal) = route.gate.as_ref().and_then(|g| g.check(request).err()) {
        sent.status(refusal.status);
        let body: &[u8] = if request.is_head() {
            b""
        } else {
            refusal.reason.as_bytes()
        };
        write_simple(stream, refusal.status, &refusal.headers, body, close)?;
        return Ok(keep);
    }
    match route.step_for(request) {
        Step::Serve(file) => serve_file(stream, request, &file, None, close, sent).map(|()| keep),
        Step::Truncate { file, after } => {
            serve_file(stream, request, &file, Some(after), close, sent)?;
            Ok(if request.is_head() { keep } else { After::Cut })
        }
        Step::Stall { file, after, hold } => {
            serve_file(stream, request, &file, Some(after), close, sent)?;
            if request.is_head() {
                return Ok(keep);
            }
            stream.flush()?;
            let deadline = Instant::now() + hold;
            while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(After::Cut)
        }
        Step::Status {
            status,
            headers,
            body,
        } => {
            sent.status(status);
            write_head(stream, status, &headers, Some(body.len() as u64), close)?;
            if !request.is_head() {
                sent.body(stream, b"", &body, b"")?;
            }
            Ok(keep)
        }
    }
}

/// Answers a GET or HEAD for `file`: 200, 206 or 416, with at most `limit` body bytes.
fn serve_file<S: Write>(
    stream: &mut S,
    request: &Request,
    file: &FileSpec,
    limit: Option<u64>,
    close: bool,
    sent: &mut Sent<'_>,
) -> io::Result<()> {
    let len = file.len();
    let range = request
        .header("Range")
        .and_then(parse_range)
        .filter(|_| if_range_matches(request, file));
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(etag) = &file.etag {
        headers.push(("ETag".into(), etag.clone()));
    }
    if let Some(lm) = &file.last_modified {
        headers.push(("Last-Modified".into(), lm.clone()));
    }
    headers.push(("Accept-Ranges".into(), "bytes".into()));
    let (status, body) = match range {
        Some((start, _)) if start >= len => {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            sent.status(416);
            write_head(stream, 416, &headers, Some(0), close)?;
            return Ok(());
        }
        Some((start, end)) => {
            let end = end.unwrap_or(len - 1).min(len - 1);
            headers.push(("Content-Range".into(), format!("bytes {start}-{end}/{len}")));
            (206, file.body.slice(to_usize(start)..=to_usize(end)))
        }
        None => (200, file.body.clone()),
    };
    sent.status(status);
    headers.push(("Content-Type".into(), "application/octet-stream".into()));
    let chunked = file.chunked && !request.is_head();
    let content_length = if chunked {
        headers.push(("Transfer-Encoding".into(), "chunked".into()));
        None
    } else {
        Some(body.len() as u64)
    };
    write_head(stream, status, &headers, content_length, close)?;
    if request.is_head() {
        return Ok(());
    }
    let truncated = match limit {
        Some(limit) if limit < body.len() as u64 => Some(body.slice(..to_usize(limit))),
        _ => None,
    };
    let to_send = truncated.as_ref().unwrap_or(&body);
    // Throttled: about 16 pieces a second, each followed by the pause that keeps the rate.
    let piece_len = file.bytes_per_second.map_or(WRITE_CHUNK, |rate| {
        to_usize(rate / 16).clamp(1, WRITE_CHUNK)
    });
    for piece in to_send.chunks(piece_len) {
        if let Some(rate) = file.bytes_per_second {
            let pause = Duration::from_secs_f64(piece.len() as f64 / rate as f64);
            std::thread::sleep(pause);
        }
        if chunked {
            sent.body(
                stream,
                format!("{:x}\r\n", piece.len()).as_bytes(),
                piece,
                b"\r\n",
            )?;
        } else {
            sent.body(stream, b"", piece, b"")?;
        }
    }
    if chunked && truncated.is_none() {
        stream.write_all(b"0\r\n\r\n")?;
    }
    Ok(())
}

fn normalize_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// The path of an absolute-form target (`http://host:port/path`, as sent to a proxy), so a
/// server acting as a proxy for itself finds its routes; other targets as they are.
fn origin_form(target: &str) -> &str {
    let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    else {
        return target;
    };
    rest.find('/').map_or("/", |slash| &rest[slash..])
}

fn strip_query(target: &str) -> &str {
    target.split_once('?').map_or(target, |(path, _)| path)
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).expect("test bodies fit in memory")
}

/// Locks `m`, ignoring poisoning (a panicking test thread must not wedge the server).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
