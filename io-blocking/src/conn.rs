//! Connections on threads: one thread per connection, and [`ThreadIo`], the engine thread's side.
//!
//! A connection thread resolves, connects (TCP_NODELAY), runs the TLS handshake when asked,
//! publishes the open stream in the connection's [`Slot`], and reports `Connected` (or
//! `ConnectFailed`). Then it reads until end of stream or a failure, reporting every chunk.
//!
//! Writes come from the engine thread, straight onto the socket (`&TcpStream` is `Write`). For
//! TLS the `rustls::ClientConnection` sits in a mutex shared by the two threads; the reader
//! blocks in `read` on the raw socket *without* the lock and takes it only to decrypt, so a send
//! never waits for the peer to speak. (Sends are HTTP requests: they fit the socket buffer, so
//! the engine thread does not block on them either.) `Close` shuts the socket down, which wakes
//! the reader; a thread still connecting finds the slot closed and drops its socket.
//!
//! `StartTls` (after a proxy tunnel is up on a plain connection) is split the same way: the
//! engine thread swaps the slot's stream for a TLS one and writes the ClientHello; the reader,
//! blocked in `read`, wakes with the server's answer, sees the swap, and from then on hands
//! every byte to rustls, which finishes the handshake. Core sends `StartTls` only once it has
//! consumed the proxy's answer, so no plain byte is expected after it.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use backhaul_core::{codes, ConnId, Input, IoFailure, IoFailureKind, JobEvent, JobId};
use backhaul_io::failure::{connect_failure, io_failure, resolve_failure, tls_failure};
use backhaul_io::{clock, crl_fetch, tls, CertificateRequest, Io, OffThread, ReadBuffer};
use bytes::Bytes;
use rustls::{ClientConfig, ClientConnection};

use crate::credit::{Credits, CHUNKS_QUEUED};
use crate::events::Subscribers;
use crate::{CertificateValidator, Msg};

/// Connections and event subscribers, as the engine thread's [`Host`](backhaul_io::Host) sees them.
pub(crate) struct ThreadIo {
    conns: HashMap<ConnId, Arc<Slot>>,
    /// The applications' certificate validation callbacks, by job.
    validators: HashMap<JobId, CertificateValidator>,
    inputs: SyncSender<Msg>,
    /// Bounds the received chunks queued for the engine thread (see [`crate::credit`]).
    credits: Credits,
    tls: Arc<ClientConfig>,
    subscribers: Subscribers,
}

impl ThreadIo {
    /// Connection threads report on `inputs`; events go to `subscribers`.
    pub(crate) fn new(
        inputs: SyncSender<Msg>,
        tls: Arc<ClientConfig>,
        subscribers: Subscribers,
    ) -> Self {
        Self {
            conns: HashMap::new(),
            validators: HashMap::new(),
            inputs,
            credits: Credits::new(CHUNKS_QUEUED),
            tls,
            subscribers,
        }
    }
}

impl Drop for ThreadIo {
    fn drop(&mut self) {
        for slot in self.conns.values() {
            slot.close();
        }
    }
}

impl ThreadIo {
    /// Holds (or drops) the job's validation callback; core has accepted the change.
    pub(crate) fn set_validator(&mut self, job: JobId, validator: Option<CertificateValidator>) {
        match validator {
            Some(validator) => self.validators.insert(job, validator),
            None => self.validators.remove(&job),
        };
    }
}

impl Io for ThreadIo {
    fn connect(
        &mut self,
        conn: ConnId,
        host: String,
        port: u16,
        tls_server_name: Option<String>,
    ) -> Result<(), IoFailure> {
        let slot = Arc::new(Slot(Mutex::new(State::Connecting)));
        let (thread_slot, inputs) = (slot.clone(), self.inputs.clone());
        let credits = self.credits.clone();
        let tls = tls_server_name.map(|name| (self.tls.clone(), name));
        std::thread::Builder::new()
            .name(format!("backhaul-{conn}"))
            .spawn(move || run(conn, &host, port, tls, &thread_slot, (&inputs, &credits)))
            .map_err(|err| {
                IoFailure::new(
                    IoFailureKind::Other,
                    format!("cannot start a connection thread: {err}"),
                )
            })?;
        self.conns.insert(conn, slot);
        Ok(())
    }

    fn start_tls(&mut self, conn: ConnId, server_name: String) -> Result<(), IoFailure> {
        let Some(slot) = self.conns.get(&conn) else {
            return Ok(());
        };
        let started = slot.start_tls(self.tls.clone(), server_name);
        if started.is_err() {
            self.close(conn); // reported as ConnectionFailed by the host
        }
        started
    }

    fn send(&mut self, conn: ConnId, data: Bytes) -> Result<(), IoFailure> {
        match self.conns.get(&conn) {
            Some(slot) => slot.send(&data),
            None => Ok(()),
        }
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(slot) = self.conns.remove(&conn) {
            slot.close();
        }
    }

    fn publish(&mut self, event: JobEvent) {
        if let JobEvent::StateChanged { job, to, .. } = event {
            if to.is_final() {
                self.validators.remove(&job);
            }
        }
        self.subscribers.publish(event);
    }

    fn run_off_thread(&mut self, work: OffThread) {
        let inputs = self.inputs.clone();
        let spawned = std::thread::Builder::new()
            .name("backhaul-program".into())
            .spawn(move || {
                let _ = inputs.send(Msg::Input(work()));
            });
        if let Err(err) = spawned {
            tracing::error!("cannot start a thread for blocking work: {err}");
        }
    }

    fn validate_certificate(&mut self, request: CertificateRequest) {
        let inputs = self.inputs.clone();
        let validator = self.validators.get(&request.job).cloned();
        // A thread of its own: the callback may block (ask a user, query a service), and the
        // engine thread must go on serving other jobs meanwhile.
        let spawned = std::thread::Builder::new()
            .name(format!("backhaul-validate-{}", request.job))
            .spawn(move || {
                let verdict = match validator {
                    // A panicking callback rejects instead of stranding the connection.
                    Some(validator) => {
                        std::panic::catch_unwind(AssertUnwindSafe(|| validator(&request)))
                            .unwrap_or(Err(codes::E_FAIL))
                    }
                    None => Err(codes::BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED),
                };
                let _ = inputs.send(Msg::Input(request.verdict(verdict)));
            });
        if let Err(err) = spawned {
            tracing::error!("cannot start a thread for the certificate callback: {err}");
        }
    }

    fn fetch_crl(&mut self, url: String) {
        // A thread of its own, like a connection: the fetch may take up to 30 s.
        let inputs = self.inputs.clone();
        let report = move |url: String, result| {
            let now = clock::now();
            let _ = inputs.send(Msg::Input(Input::CrlFetched { now, url, result }));
        };
        let thread_url = url.clone();
        let thread_report = report.clone();
        let started = std::thread::Builder::new()
            .name("backhaul-crl".to_string())
            .spawn(move || thread_report(thread_url.clone(), crl_fetch::fetch(&thread_url)));
        if let Err(err) = started {
            let why = format!("cannot start a CRL fetch thread: {err}");
            report(url, Err(IoFailure::new(IoFailureKind::Other, why)));
        }
    }
}

/// One connection as both of its threads see it.
struct Slot(Mutex<State>);

enum State {
    Connecting,
    Open(Stream),
    Closed,
}

/// An open connection. Clones share the socket (and the TLS state).
#[derive(Clone)]
enum Stream {
    Plain(Arc<TcpStream>),
    Tls(Arc<TcpStream>, Arc<Mutex<ClientConnection>>),
}

impl Slot {
    /// Publish the open stream, unless the engine closed the connection meanwhile.
    fn open(&self, stream: Stream) -> bool {
        let mut state = lock(&self.0);
        if matches!(*state, State::Closed) {
            return false;
        }
        *state = State::Open(stream);
        true
    }

    /// Write all of `data`; on failure the connection is closed.
    fn send(&self, data: &[u8]) -> Result<(), IoFailure> {
        // Clone the stream out: the slot's lock must not be held while writing (close takes it).
        let stream = match &*lock(&self.0) {
            State::Open(stream) => stream.clone(),
            State::Connecting | State::Closed => return Ok(()),
        };
        stream.write_all(data).map_err(|err| {
            self.close();
            io_failure(&err)
        })
    }

    /// Swap a plain stream for TLS and send the ClientHello; the reader finishes the handshake.
    fn start_tls(&self, config: Arc<ClientConfig>, server_name: String) -> Result<(), IoFailure> {
        let mut state = lock(&self.0);
        let tcp = match &*state {
            State::Open(Stream::Plain(tcp)) => tcp.clone(),
            State::Open(Stream::Tls(..)) => {
                return Err(tls_failure(
                    &server_name,
                    &"TLS is already running on this connection",
                ))
            }
            State::Connecting | State::Closed => return Ok(()),
        };
        let name = tls::server_name(server_name.clone())?;
        let mut client =
            ClientConnection::new(config, name).map_err(|err| tls_failure(&server_name, &err))?;
        while client.wants_write() {
            client
                .write_tls(&mut &*tcp)
                .map_err(|err| tls_failure(&server_name, &err))?;
        }
        *state = State::Open(Stream::Tls(tcp, Arc::new(Mutex::new(client))));
        Ok(())
    }

    /// The TLS state, once `start_tls` has swapped it in.
    fn started_tls(&self) -> Option<Arc<Mutex<ClientConnection>>> {
        match &*lock(&self.0) {
            State::Open(Stream::Tls(_, tls)) => Some(tls.clone()),
            _ => None,
        }
    }

    /// Shut the socket down (waking a blocked reader) and mark the connection closed.
    fn close(&self) {
        if let State::Open(stream) = std::mem::replace(&mut *lock(&self.0), State::Closed) {
            let _ = stream.tcp().shutdown(Shutdown::Both);
        }
    }
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) | Stream::Tls(tcp, _) => tcp,
        }
    }

    fn write_all(&self, data: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => (&**tcp).write_all(data),
            Stream::Tls(tcp, tls) => {
                let mut tls = lock(tls);
                tls.writer().write_all(data)?;
                while tls.wants_write() {
                    tls.write_tls(&mut &**tcp)?;
                }
                Ok(())
            }
        }
    }
}

/// The connection thread.
fn run(
    conn: ConnId,
    host: &str,
    port: u16,
    tls: Option<(Arc<ClientConfig>, String)>,
    slot: &Slot,
    (inputs, credits): (&SyncSender<Msg>, &Credits),
) {
    let report = |input| inputs.send(Msg::Input(input)).is_ok();
    // A chunk of body waits for a credit first: the queue holds few of them (see `credit`).
    let report_received = |input| {
        let _credit = credits.take();
        inputs.send(Msg::Received { input, _credit }).is_ok()
    };
    let (stream, peer_certificates) = match open(host, port, tls) {
        Ok(opened) => opened,
        Err(error) => {
            report(Input::ConnectFailed {
                now: clock::now(),
                conn,
                error,
            });
            return;
        }
    };
    if !slot.open(stream.clone())
        || !report(Input::Connected {
            now: clock::now(),
            conn,
            peer_certificates,
        })
    {
        return; // closed while connecting, or the engine is gone: dropping the stream closes it
    }
    let raw = match stream {
        Stream::Plain(_) => Vec::new(),
        Stream::Tls(..) => vec![0; RAW_TLS_READ],
    };
    let mut reader = Reader {
        stream,
        buf: ReadBuffer::new(),
        raw,
        pending: 0..0,
        handshaking: false,
    };
    loop {
        let got = reader.next(slot);
        // Still set after a failure or an end that came during a StartTls handshake.
        let handshaking = reader.handshaking;
        let input = match got {
            Ok(Got::Data(data)) => Input::Received {
                now: clock::now(),
                conn,
                data,
            },
            Ok(Got::TlsStarted(peer_certificates)) => Input::TlsStarted {
                now: clock::now(),
                conn,
                peer_certificates,
            },
            Ok(Got::End) if handshaking => Input::ConnectionFailed {
                now: clock::now(),
                conn,
                error: tls_failure(host, &"the connection closed during the TLS handshake"),
            },
            Ok(Got::End) => Input::Closed {
                now: clock::now(),
                conn,
            },
            Err(err) if handshaking => Input::ConnectionFailed {
                now: clock::now(),
                conn,
                error: tls_failure(host, &err),
            },
            Err(err) => Input::ConnectionFailed {
                now: clock::now(),
                conn,
                error: io_failure(&err),
            },
        };
        let more = matches!(input, Input::Received { .. } | Input::TlsStarted { .. });
        let reported = if matches!(input, Input::Received { .. }) {
            report_received(input)
        } else {
            report(input)
        };
        if !reported || !more {
            return;
        }
    }
}

/// Resolve, connect (trying each address), and run the TLS handshake if asked.
fn open(
    host: &str,
    port: u16,
    tls: Option<(Arc<ClientConfig>, String)>,
) -> Result<(Stream, Vec<rustls::pki_types::CertificateDer<'static>>), IoFailure> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|err| resolve_failure(host, Some(&err)))?;
    let mut last = None;
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(err) => last = Some(err),
        }
    }
    let Some(mut tcp) = tcp else {
        return Err(last.map_or_else(
            || resolve_failure(host, None),
            |err| connect_failure(host, port, &err),
        ));
    };
    tcp.set_nodelay(true)
        .map_err(|err| connect_failure(host, port, &err))?;
    let Some((config, name)) = tls else {
        return Ok((Stream::Plain(Arc::new(tcp)), Vec::new()));
    };
    let mut client = ClientConnection::new(config, tls::server_name(name)?)
        .map_err(|err| tls_failure(host, &err))?;
    while client.is_handshaking() {
        client
            .complete_io(&mut tcp)
            .map_err(|err| tls_failure(host, &err))?;
    }
    let chain = tls::peer_chain(&client);
    Ok((
        Stream::Tls(Arc::new(tcp), Arc::new(Mutex::new(client))),
        chain,
    ))
}

/// Ciphertext read from the socket at a time: as much as a plain-HTTP read, so that a chunk of
/// plaintext fills one of the [`ReadBuffer`]'s allocations and a MiB costs 4 reads, 4 inputs and
/// 4 file writes, not 16 of each.
const RAW_TLS_READ: usize = backhaul_io::READ_BUFFER;

/// The reading side of one connection.
struct Reader {
    stream: Stream,
    /// Where received (plaintext) bytes land; chunks are split off it.
    buf: ReadBuffer,
    /// TLS only: ciphertext from the socket, `pending` not yet given to rustls.
    raw: Vec<u8>,
    pending: std::ops::Range<usize>,
    /// TLS was started on this (plain) connection and its handshake is not finished.
    handshaking: bool,
}

/// What the reader got.
enum Got {
    Data(Bytes),
    /// The handshake `StartTls` began is done: the server's chain.
    TlsStarted(Vec<rustls::pki_types::CertificateDer<'static>>),
    End,
}

impl Reader {
    /// The next chunk of bytes, the end of a handshake `StartTls` began, or the end of stream.
    fn next(&mut self, slot: &Slot) -> io::Result<Got> {
        let tls = match &self.stream {
            Stream::Plain(tcp) => {
                let tcp = tcp.clone();
                let n = self.buf.read_with(|room| (&*tcp).read(room))?;
                let Some(tls) = slot.started_tls() else {
                    return Ok(if n > 0 {
                        Got::Data(self.buf.take())
                    } else {
                        Got::End
                    });
                };
                // StartTls came while we waited: what we read is the server's handshake.
                let data = self.buf.take();
                self.raw = vec![0; RAW_TLS_READ.max(data.len())];
                self.raw[..data.len()].copy_from_slice(&data);
                self.pending = 0..data.len();
                self.stream = Stream::Tls(tcp, tls.clone());
                self.handshaking = true;
                if n == 0 {
                    return Ok(Got::End);
                }
                tls
            }
            Stream::Tls(_, tls) => tls.clone(),
        };
        loop {
            let mut guard = lock(&tls);
            let ended = self.decrypt(&mut guard)?;
            if self.handshaking && !guard.is_handshaking() {
                self.handshaking = false;
                return Ok(Got::TlsStarted(tls::peer_chain(&guard)));
            }
            drop(guard);
            if !self.buf.is_empty() {
                return Ok(Got::Data(self.buf.take())); // an end is seen again next call
            }
            if ended {
                return Ok(Got::End);
            }
            // Everything read so far is decrypted and handed over: wait for more, unlocked.
            let n = self.stream.tcp().read(&mut self.raw)?;
            self.pending = 0..n;
            if n == 0 {
                let mut tls = lock(&tls);
                tls.read_tls(&mut io::empty())?; // tells rustls the stream ended
                tls.process_new_packets()
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
            }
        }
    }

    /// Give rustls the pending ciphertext and move the plaintext into `buf`, stopping early when
    /// `buf` is full (the rest stays in rustls and `pending` for the next call). Returns whether the
    /// stream has ended (`close_notify`, or end of stream without it: core's HTTP framing tells
    /// a truncated body from a complete one).
    fn decrypt(&mut self, tls: &mut ClientConnection) -> io::Result<bool> {
        loop {
            loop {
                if self.buf.should_take() {
                    return Ok(false); // the rest waits in rustls and `pending` for the next call
                }
                match self.buf.read_with(|room| tls.reader().read(room)) {
                    Ok(0) => return Ok(true),
                    Ok(_) => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
                    Err(err) => return Err(err),
                }
            }
            if self.pending.is_empty() {
                return Ok(false);
            }
            let n = tls.read_tls(&mut &self.raw[self.pending.clone()])?;
            // 0: rustls takes no more (close_notify seen); the rest is dropped.
            self.pending.start = if n == 0 {
                self.pending.end
            } else {
                self.pending.start + n
            };
            let processed = tls.process_new_packets();
            // Alerts and key updates; a failure here shows up on the next read.
            while tls.wants_write()
                && matches!(tls.write_tls(&mut self.stream.tcp()), Ok(n) if n > 0)
            {}
            processed.map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        }
    }
}

/// Lock, ignoring poisoning: every critical section leaves the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
