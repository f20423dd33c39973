//! Connections on tokio: one task per connection, and [`TokioIo`], the engine task's side.
//!
//! A connection task resolves, connects (TCP_NODELAY), runs the TLS handshake when asked, and
//! reports `Connected` or `ConnectFailed`. Then it loops: read into a large buffer and report
//! each chunk, or write what the engine sent. It ends after reporting end of stream or a
//! failure; `Close` aborts it, which drops (closes) the socket. `StartTls` (after a proxy
//! tunnel is up) makes a plain connection's loop hand its socket back: the task runs the TLS
//! handshake on it, reports `TlsStarted`, and loops again over the TLS stream.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use backhaul_core::{codes, ConnId, Input, IoFailure, IoFailureKind, JobEvent, JobId};
use backhaul_io::failure::{connect_failure, io_failure, resolve_failure, tls_failure};
use backhaul_io::{clock, crl_fetch, tls, CertificateRequest, Io, OffThread, ReadBuffer, ReadSize};
use bytes::Bytes;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::events::Events;
use crate::CertificateValidator;

/// Connections and event subscribers, as the engine task's [`Host`](backhaul_io::Host) sees them.
pub(crate) struct TokioIo {
    conns: HashMap<ConnId, Conn>,
    /// The applications' certificate validation callbacks, by job.
    validators: HashMap<JobId, CertificateValidator>,
    inputs: mpsc::Sender<Input>,
    tls: Arc<ClientConfig>,
    events: Events,
    /// Connections reading now: they share the read budget (`ReadSize`).
    reading: Arc<AtomicUsize>,
}

/// The engine task's handle on one connection task.
struct Conn {
    orders: mpsc::UnboundedSender<Order>,
    task: JoinHandle<()>,
}

/// What the engine task asks of a connection task, in order.
enum Order {
    /// Write these bytes.
    Send(Bytes),
    /// Start TLS for this (already checked) server name.
    StartTls(ServerName<'static>),
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokioIo {
    /// Connection tasks report on `inputs`; events go to `events`' subscribers.
    pub(crate) fn new(inputs: mpsc::Sender<Input>, tls: Arc<ClientConfig>, events: Events) -> Self {
        Self {
            conns: HashMap::new(),
            validators: HashMap::new(),
            inputs,
            tls,
            events,
            reading: Arc::default(),
        }
    }
}

impl TokioIo {
    /// Holds (or drops) the job's validation callback; core has accepted the change.
    pub(crate) fn set_validator(&mut self, job: JobId, validator: Option<CertificateValidator>) {
        match validator {
            Some(validator) => self.validators.insert(job, validator),
            None => self.validators.remove(&job),
        };
    }
}

impl Io for TokioIo {
    fn connect(
        &mut self,
        conn: ConnId,
        host: String,
        port: u16,
        tls_server_name: Option<String>,
    ) -> Result<(), IoFailure> {
        let (orders, order_rx) = mpsc::unbounded_channel();
        let tls = tls_server_name.map(|name| (self.tls.clone(), name));
        let task = tokio::spawn(run(
            conn,
            host,
            port,
            tls,
            self.tls.clone(),
            Links {
                inputs: self.inputs.clone(),
                orders: order_rx,
                reading: self.reading.clone(),
            },
        ));
        self.conns.insert(conn, Conn { orders, task });
        Ok(())
    }

    fn start_tls(&mut self, conn: ConnId, server_name: String) -> Result<(), IoFailure> {
        let name = match tls::server_name(server_name) {
            Ok(name) => name,
            Err(error) => {
                self.conns.remove(&conn); // reported as ConnectionFailed by the host
                return Err(error);
            }
        };
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.orders.send(Order::StartTls(name));
        }
        Ok(())
    }

    fn send(&mut self, conn: ConnId, data: Bytes) -> Result<(), IoFailure> {
        // A task that has ended has reported why; its Close is on its way.
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.orders.send(Order::Send(data));
        }
        Ok(())
    }

    fn close(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    fn publish(&mut self, event: JobEvent) {
        if let JobEvent::StateChanged { job, to, .. } = event {
            if to.is_final() {
                self.validators.remove(&job);
            }
        }
        self.events.publish(event);
    }

    fn run_off_thread(&mut self, work: OffThread) {
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            if let Ok(input) = tokio::task::spawn_blocking(work).await {
                let _ = inputs.send(input).await;
            }
        });
    }

    fn validate_certificate(&mut self, request: CertificateRequest) {
        let inputs = self.inputs.clone();
        let Some(validator) = self.validators.get(&request.job).cloned() else {
            let verdict = Err(codes::BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED);
            tokio::spawn(async move { inputs.send(request.verdict(verdict)).await });
            return;
        };
        tokio::spawn(async move {
            // Its own task, so that a panicking callback rejects instead of stranding the
            // connection until its timeout.
            let verdict = tokio::spawn(validator(request.clone()))
                .await
                .unwrap_or(Err(codes::E_FAIL));
            let _ = inputs.send(request.verdict(verdict)).await;
        });
    }

    fn fetch_crl(&mut self, url: String) {
        // The fetch is blocking std I/O (up to 30 s): the blocking pool, not a runtime worker.
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let fetch_url = url.clone();
            let result = tokio::task::spawn_blocking(move || crl_fetch::fetch(&fetch_url))
                .await
                .unwrap_or_else(|err| {
                    Err(IoFailure::new(
                        IoFailureKind::Other,
                        format!("the CRL fetch stopped: {err}"),
                    ))
                });
            let now = clock::now();
            let _ = inputs.send(Input::CrlFetched { now, url, result }).await;
        });
    }
}

async fn run(
    conn: ConnId,
    host: String,
    port: u16,
    tls: Option<(Arc<ClientConfig>, String)>,
    config: Arc<ClientConfig>,
    links: Links,
) {
    let Links {
        inputs,
        mut orders,
        reading,
    } = links;
    let tcp = match connect(&host, port).await {
        Ok(tcp) => tcp,
        Err(error) => return report_failure(&inputs, conn, error).await,
    };
    let Some((config, name)) = tls else {
        if !report(&inputs, connected(conn, Vec::new())).await {
            return;
        }
        // A plain connection: to an http:// origin, or to a proxy that may tunnel.
        let Some((tcp, name)) = pump(conn, tcp, false, &inputs, &mut orders, &reading).await else {
            return;
        };
        let handshake = TlsConnector::from(config).connect(name.clone(), tcp).await;
        let server = name.to_str();
        match handshake {
            Ok(stream) => {
                let chain = tls::peer_chain(stream.get_ref().1);
                if report(&inputs, tls_started(conn, chain)).await {
                    pump(conn, stream, true, &inputs, &mut orders, &reading).await;
                }
            }
            Err(err) => {
                let error = tls_failure(&server, &err);
                let _ = inputs
                    .send(Input::ConnectionFailed {
                        now: clock::now(),
                        conn,
                        error,
                    })
                    .await;
            }
        }
        return;
    };
    let handshake = match tls::server_name(name) {
        Ok(name) => TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|err| tls_failure(&host, &err)),
        Err(error) => Err(error),
    };
    match handshake {
        Ok(stream) => {
            if report(
                &inputs,
                connected(conn, tls::peer_chain(stream.get_ref().1)),
            )
            .await
            {
                pump(conn, stream, true, &inputs, &mut orders, &reading).await;
            }
        }
        Err(error) => report_failure(&inputs, conn, error).await,
    }
}

/// Resolve `host`, then try its addresses in order.
async fn connect(host: &str, port: u16) -> Result<TcpStream, IoFailure> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| resolve_failure(host, Some(&err)))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                tcp.set_nodelay(true)
                    .map_err(|err| connect_failure(host, port, &err))?;
                return Ok(tcp);
            }
            Err(err) => last = Some(err),
        }
    }
    Err(last.map_or_else(
        || resolve_failure(host, None),
        |err| connect_failure(host, port, &err),
    ))
}

fn connected(conn: ConnId, peer_certificates: Vec<CertificateDer<'static>>) -> Input {
    Input::Connected {
        now: clock::now(),
        conn,
        peer_certificates,
    }
}

fn tls_started(conn: ConnId, peer_certificates: Vec<CertificateDer<'static>>) -> Input {
    Input::TlsStarted {
        now: clock::now(),
        conn,
        peer_certificates,
    }
}

/// Whether the engine is still there to hear it.
async fn report(inputs: &mpsc::Sender<Input>, input: Input) -> bool {
    inputs.send(input).await.is_ok()
}

async fn report_failure(inputs: &mpsc::Sender<Input>, conn: ConnId, error: IoFailure) {
    let _ = inputs
        .send(Input::ConnectFailed {
            now: clock::now(),
            conn,
            error,
        })
        .await;
}

/// Move bytes until end of stream or a failure. `inputs` is bounded: a slow engine slows reads.
///
/// What a connection task talks to: the engine's inputs, the engine's orders, and the count of
/// connections sharing the read budget.
struct Links {
    inputs: mpsc::Sender<Input>,
    orders: mpsc::UnboundedReceiver<Order>,
    reading: Arc<AtomicUsize>,
}

/// Counts a connection among those reading, until dropped (also when the task is aborted).
struct Reading(Arc<AtomicUsize>);

impl Reading {
    fn start(reading: &Arc<AtomicUsize>) -> Self {
        reading.fetch_add(1, Ordering::Relaxed);
        Self(reading.clone())
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Returns the stream when the engine orders `StartTls` on a plain connection (after a proxy
/// tunnel is up); `None` when the connection is over (its end reported, or the engine gone).
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    conn: ConnId,
    mut stream: S,
    is_tls: bool,
    inputs: &mpsc::Sender<Input>,
    orders: &mut mpsc::UnboundedReceiver<Order>,
    reading: &Arc<AtomicUsize>,
) -> Option<(S, ServerName<'static>)> {
    let reading = Reading::start(reading);
    // Allocations come back from the engine for reuse (`ReadBuffer`): a fresh buffer per read
    // page-faulted on a third of the bytes received (25,000-55,000 faults per 512 MiB, ~5% of
    // the CPU).
    let mut buf = ReadBuffer::new();
    let mut size = ReadSize::default();
    loop {
        let room = buf.room(size.limit(reading.count()));
        let room_len = room.len();
        let input = tokio::select! {
            read = stream.read(room) => match read {
                Ok(0) => Input::Closed { now: clock::now(), conn },
                Ok(n) => {
                    buf.filled(n);
                    size.record(n, room_len);
                    Input::Received { now: clock::now(), conn, data: buf.take() }
                }
                // No close_notify: core's HTTP framing tells a truncated body from a complete one.
                Err(err) if is_tls && err.kind() == io::ErrorKind::UnexpectedEof => Input::Closed { now: clock::now(), conn },
                Err(err) => Input::ConnectionFailed { now: clock::now(), conn, error: io_failure(&err) },
            },
            order = orders.recv() => match order {
                None => return None, // the engine forgot the connection
                Some(Order::Send(data)) => match write(&mut stream, &data).await {
                    Ok(()) => continue,
                    Err(err) => Input::ConnectionFailed { now: clock::now(), conn, error: io_failure(&err) },
                },
                // read is cancel-safe: no byte read so far is lost by leaving the select.
                Some(Order::StartTls(name)) if !is_tls => return Some((stream, name)),
                Some(Order::StartTls(name)) => Input::ConnectionFailed {
                    now: clock::now(),
                    conn,
                    error: tls_failure(&name.to_str(), &"TLS is already running on this connection"),
                },
            },
        };
        let more = matches!(input, Input::Received { .. });
        if inputs.send(input).await.is_err() || !more {
            return None;
        }
    }
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) -> io::Result<()> {
    stream.write_all(data).await?;
    stream.flush().await // TLS: push the records out, not just into rustls
}

#[cfg(test)]
mod tests;
