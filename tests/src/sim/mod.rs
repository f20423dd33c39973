//! A deterministic simulation of one [`Engine`]: a virtual clock, scripted HTTP servers, an
//! in-memory file system, and seeded faults (how responses are split into reads, and delivery
//! latency). No sockets, no threads, no real time: a whole 14-day no-progress timeout runs in
//! microseconds, and a failing seed replays exactly (`BACKHAUL_SIM_SEED=<n>`).
//!
//! `step` performs the engine's pending actions, then delivers the earliest scheduled input (or
//! fires the engine's timer); `drive` steps until nothing is left to do; `drive_until` stops at
//! a condition. Both are bounded and panic on a livelock, naming the seed.
//!
//! Durability is modelled too: `Persist`/`Forget` keep encoded records in [`Sim::store`], each
//! file keeps what a `SyncFile` (or a commit) made durable apart from what was written, and
//! [`Sim::crash`] replaces the engine by a new one restored from the store — after a power
//! loss, every file falls back to its durable bytes.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use backhaul_core::{
    Config, ConnId, Engine, FileIndex, HResult, Input, IoFailureKind, JobEvent, JobId, JobRecord,
    JobState, Output, Owner, Timestamp,
};
use bytes::Bytes;

use crate::kerberos_peer::{FakeGss, KerberosPeer, TokenAsked};
use crate::ntlm_peer::NtlmPeer;

mod certs;
mod perform;
mod proxies;
mod responses;
mod setup;

use certs::sim_ca;
pub use certs::{sim_crl, sim_leaf_with_cdp};

/// The time every simulation starts at: 2026-01-01T00:00:00Z.
pub const START: Timestamp = Timestamp::from_secs(1_767_225_600);

/// One version of a remote file.
#[derive(Clone, PartialEq, Eq)]
pub struct Resource {
    /// The bytes.
    pub body: Vec<u8>,
    /// A strong ETag, quoted (e.g. `"\"v1\""`).
    pub etag: Option<String>,
    /// A Last-Modified HTTP-date.
    pub last_modified: Option<String>,
    /// Send the body chunked instead of with Content-Length.
    pub chunked: bool,
}

impl std::fmt::Debug for Resource {
    /// The body as its length and a checksum: readable in failures, and cheap to fingerprint.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource")
            .field(
                "body",
                &format_args!("{} bytes #{:016x}", self.body.len(), fnv(&self.body)),
            )
            .field("etag", &self.etag)
            .field("last_modified", &self.last_modified)
            .field("chunked", &self.chunked)
            .finish()
    }
}

/// FNV-1a: a cheap, stable checksum for fingerprints and debug output.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Resource {
    /// A resource with a strong ETag.
    pub fn new(body: impl Into<Vec<u8>>, etag: &str) -> Self {
        Self {
            body: body.into(),
            etag: Some(format!("\"{etag}\"")),
            last_modified: None,
            chunked: false,
        }
    }
}

/// How the server answers one request for a path. Replies are used in order; the last repeats.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Serve the path's current resource (honouring Range and If-Range).
    Serve,
    /// Serve it, but close the connection after this many body bytes.
    Truncate(u64),
    /// Answer with this status, extra headers, and a small body.
    Status(u16, Vec<(String, String)>),
    /// Replace the path's resource, then serve the new one.
    ChangeTo(Resource),
    /// Replace the path's resource, then serve the new one truncated after this many bytes.
    ChangeToTruncated(Resource, u64),
    /// Serve the whole resource with a 200, whatever the Range (a server without ranges).
    IgnoreRange,
    /// Answer a range request as `multipart/byteranges`, the range split into this many
    /// adjacent parts (a request without Range, or whose If-Range fails, is served normally).
    Multipart(usize),
    /// Send these bytes as the whole response.
    Raw(Vec<u8>),
    /// Accept the request and never answer.
    Silence,
    /// Close the connection without answering.
    Close,
    /// Serve, but the connection fails (reset) after this many body bytes.
    Reset(u64),
}

/// A request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// Host the connection went to.
    pub host: String,
    /// Request target.
    pub path: String,
    /// Headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The connection it came on.
    pub conn: ConnId,
}

impl SeenRequest {
    /// The first value of a header (lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Server {
    resources: BTreeMap<String, Resource>,
    scripts: BTreeMap<String, VecDeque<Reply>>,
    refuse_connections: bool,
}

#[derive(Debug)]
struct SimConn {
    host: String,
    port: u16,
    /// After a CONNECT through a simulated proxy: the origin the tunnel reaches.
    tunnel_to: Option<(String, u16)>,
}

/// A simulated HTTP proxy: CONNECT tunnels and absolute-form requests, optionally behind
/// Basic proxy authentication or an NTLM gate ([`ProxyGate`]).
#[derive(Clone, Debug, Default)]
struct SimProxy {
    /// The `Proxy-Authorization` value required, if any.
    requires: Option<String>,
    /// A SOCKS5 proxy (RFC 1928) instead of an HTTP one, requiring this user and password
    /// (RFC 1929) when set.
    socks: Option<Option<(String, String)>>,
    /// The `Proxy-Authenticate` value of its 407 (`None`: `Basic realm="proxy"`).
    challenge: Option<String>,
    /// What it answers to CONNECT, as sent (`None`: `200 Connection established` and the
    /// tunnel).
    connect_reply: Option<Bytes>,
}

/// An HTTP proxy's NTLM gate: a password-checking acceptor, one exchange per connection.
#[derive(Debug)]
struct ProxyGate {
    peer: NtlmPeer,
    /// This many more 407s end with `Connection: close` and the connection closed.
    closes: u32,
    /// The 407s carry no Content-Length: their bodies end when the proxy closes.
    unframed: bool,
}

/// A file of the in-memory file system.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SimFile {
    /// Contents, as written (the page cache).
    pub data: Vec<u8>,
    /// Contents as of the last sync: what survives a power loss.
    pub durable: Vec<u8>,
}

impl std::fmt::Debug for SimFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SimFile({} bytes #{:016x})",
            self.data.len(),
            fnv(&self.data)
        )
    }
}

/// What the simulated driver did or delivered, in order: what the invariant checks that
/// depend on ordering (a request only after a verdict, a checkpoint only over written bytes)
/// read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trace {
    /// The engine asked for a connection (`tls`: an HTTPS one).
    Connect {
        /// The connection.
        conn: ConnId,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// HTTPS.
        tls: bool,
    },
    /// The engine asked the app's certificate callback about `conn`.
    Validate {
        /// The connection waiting.
        conn: ConnId,
    },
    /// The callback's verdict on `conn` was delivered to the engine.
    Verdict {
        /// The connection.
        conn: ConnId,
        /// Accepted (or rejected).
        accepted: bool,
    },
    /// The engine wrote (request) bytes to `conn`.
    Send {
        /// The connection.
        conn: ConnId,
    },
    /// A write to a temp file failed (injected with `fail_writes`).
    WriteFailed {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
    },
    /// A temp file was opened (created or reopened) for `(job, file)`.
    TempOpened {
        /// The job.
        job: JobId,
        /// The file.
        file: FileIndex,
    },
    /// The engine asked to persist `job`'s record; per file, the bytes the record claims and
    /// the bytes its temp file held when the record was saved.
    Persist {
        /// The job.
        job: JobId,
        /// `(recorded bytes_transferred, bytes in the temp file)` per file.
        files: Vec<(u64, u64)>,
    },
}

/// The simulated world around one engine.
#[derive(Debug)]
pub struct Sim {
    /// The engine under test.
    pub engine: Engine,
    /// The seed this run replays with.
    pub seed: u64,
    /// Every event the engine emitted, in order.
    pub events: Vec<JobEvent>,
    /// Every request the servers received, in order.
    pub requests: Vec<SeenRequest>,
    /// The in-memory file system.
    pub files: BTreeMap<PathBuf, SimFile>,
    /// Every connection the engine asked to open.
    pub connects: u32,
    /// Times a job record was persisted.
    pub persists: u32,
    /// The job store: each job's last persisted record. It goes through the on-disk encoding
    /// whenever it is read back (`stored`, `crash`), not at every persist: encoding is most of a
    /// simulated step's cost (the `engine_ops` fuzz target's profile), reading back is rare.
    pub store: BTreeMap<JobId, JobRecord>,
    /// Every `SyncFile` performed: (job, file, len).
    pub syncs: Vec<(JobId, FileIndex, u64)>,
    /// Times the engine was replaced by one restored from the store.
    pub restarts: u32,
    /// Write failures to inject: when set, writes fail with this kind.
    pub fail_writes: Option<IoFailureKind>,
    /// Directories that exist (files may only be created in these).
    pub dirs: Vec<PathBuf>,
    /// The app's certificate callback's answers, in order; `Ok` once they run out.
    pub verdicts: VecDeque<Result<(), HResult>>,
    /// Every question to the certificate callback: (job, host, port).
    pub validations: Vec<(JobId, String, u16)>,
    /// Every notification program run: (when, job, program, args).
    pub programs: Vec<(Timestamp, JobId, String, Vec<String>)>,
    /// The programs' exit codes, in order; 0 once they run out.
    pub program_exits: VecDeque<i32>,
    /// Every CRL URL the engine asked to fetch, in order.
    pub crl_fetches: Vec<String>,
    /// The GSS-API answering `Action::SecurityToken` (no ticket by default).
    pub gss: FakeGss,
    /// Every `Action::SecurityToken`, in order.
    pub token_requests: Vec<TokenAsked>,
    /// CRLs served to `Action::FetchCrl`, by URL (`None`: the fetch never answers). A URL
    /// not here fails as unreachable.
    crls: BTreeMap<String, Option<Vec<u8>>>,
    /// Chains presented by HTTPS hosts; a host not here presents `sim_leaf(host)`.
    chains: BTreeMap<String, Vec<backhaul_core::CertificateDer<'static>>>,
    /// What the driver did and delivered, in order (see [`Trace`]).
    pub trace: Vec<Trace>,
    /// Save records once the drain is done rather than when `Persist` comes out: the record
    /// read then is never ahead of the writes queued behind the `Persist` (see docs/model.md,
    /// checkpoint-behind-data). Off by default: `backhaul_io::Host` saves in order.
    pub defer_persist: bool,
    persist_due: Vec<JobId>,
    now: Timestamp,
    rng: u64,
    latency: Duration,
    servers: BTreeMap<(String, u16), Server>,
    /// NTLM-protected servers: (host, port) → the acceptor and the paths it protects.
    ntlm: BTreeMap<(String, u16), (NtlmPeer, Vec<String>)>,
    /// Negotiate (Kerberos)-protected servers: (host, port) → the acceptor and its paths.
    kerberos: BTreeMap<(String, u16), (KerberosPeer, Vec<String>)>,
    proxies: BTreeMap<(String, u16), SimProxy>,
    /// NTLM gates of HTTP proxies, by the proxy's (host, port).
    proxy_gates: BTreeMap<(String, u16), ProxyGate>,
    conns: BTreeMap<ConnId, SimConn>,
    open_files: BTreeMap<(JobId, FileIndex), PathBuf>,
    pending: Vec<(Timestamp, u64, Input)>,
    order: u64,
    last_timeout: Option<Timestamp>,
    /// Results of file actions, fed once the engine is drained (the drain contract).
    results: VecDeque<Input>,
}

impl Sim {
    /// A world with one engine seeded from `seed`, and a directory `/dl`.
    pub fn new(seed: u64) -> Self {
        let mut config = Config::new(seed_bytes(seed));
        config.receive_timeout = Duration::from_secs(60);
        Self::with_config(seed, config)
    }

    /// A world around an engine built from `config` (its RNG seed is replaced by `seed`'s).
    pub fn with_config(seed: u64, mut config: Config) -> Self {
        config.rng_seed = seed_bytes(seed);
        config.trust_anchors.push(sim_ca().0.clone());
        Self {
            engine: Engine::new(config, START),
            seed,
            events: Vec::new(),
            requests: Vec::new(),
            files: BTreeMap::new(),
            connects: 0,
            persists: 0,
            store: BTreeMap::new(),
            syncs: Vec::new(),
            restarts: 0,
            fail_writes: None,
            dirs: vec![PathBuf::from("/dl")],
            verdicts: VecDeque::new(),
            validations: Vec::new(),
            programs: Vec::new(),
            program_exits: VecDeque::new(),
            crl_fetches: Vec::new(),
            gss: FakeGss::default(),
            token_requests: Vec::new(),
            crls: BTreeMap::new(),
            chains: BTreeMap::new(),
            trace: Vec::new(),
            defer_persist: false,
            persist_due: Vec::new(),
            now: START,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            latency: Duration::from_millis(5),
            servers: BTreeMap::new(),
            ntlm: BTreeMap::new(),
            kerberos: BTreeMap::new(),
            proxies: BTreeMap::new(),
            proxy_gates: BTreeMap::new(),
            conns: BTreeMap::new(),
            open_files: BTreeMap::new(),
            pending: Vec::new(),
            order: 0,
            last_timeout: None,
            results: VecDeque::new(),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The record the store holds for `id`, decoded.
    pub fn stored(&self, id: JobId) -> Option<JobRecord> {
        let bytes = backhaul_store::encode_record(self.store.get(&id)?);
        Some(backhaul_store::decode_record(&bytes).expect("the store holds valid records"))
    }

    /// The process dies now and a new one starts `downtime` later: connections, open files and
    /// undelivered inputs are gone; with `power_loss`, so is every byte not synced. The new
    /// engine restores every stored record (oldest first), then runs its scheduler.
    pub fn crash(&mut self, power_loss: bool, downtime: Duration) {
        self.restarts += 1;
        let mut config = self.engine.config().clone();
        config.rng_seed[31] ^= self.restarts as u8;
        self.conns.clear();
        self.open_files.clear();
        self.pending.clear();
        self.results.clear();
        self.last_timeout = None;
        if power_loss {
            for file in self.files.values_mut() {
                file.data = file.durable.clone();
            }
        }
        self.now = self.now.saturating_add(downtime);
        self.engine = Engine::new(config, self.now);
        let mut records: Vec<JobRecord> = self
            .store
            .keys()
            .filter_map(|id| self.stored(*id))
            .collect();
        records.sort_by_key(|r| (r.created(), r.id()));
        for record in records {
            self.engine
                .restore(record)
                .expect("a stored record restores");
            self.drain();
        }
        self.engine.handle(Input::Timeout { now: self.now });
        self.drain();
    }

    /// Moves the clock forward by `d` (firing timers that fall due on the way).
    pub fn advance(&mut self, d: Duration) {
        let until = self.now.saturating_add(d);
        while let Some(at) = self.next_wakeup().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.deliver_due();
            self.drain();
        }
        self.now = until;
        self.engine.handle(Input::Timeout { now: until });
        self.drain();
    }

    /// Creates a download job owned by `test` and returns its id.
    pub fn create_job(&mut self, name: &str) -> JobId {
        let id = self
            .engine
            .create_job(name, backhaul_core::JobType::Download, Owner("test".into()))
            .expect("create_job");
        self.drain();
        id
    }

    /// Runs a command on the engine at the current time, then performs its outputs.
    pub fn command<R>(&mut self, f: impl FnOnce(&mut Engine) -> R) -> R {
        self.engine.handle(Input::Timeout { now: self.now });
        self.drain();
        let r = f(&mut self.engine);
        self.drain();
        r
    }

    /// A job's state.
    pub fn state(&self, id: JobId) -> JobState {
        self.engine.job(id).expect("job exists").state()
    }

    /// One step: deliver the earliest scheduled input or fire the engine's timer. False when
    /// nothing is left to do.
    pub fn step(&mut self) -> bool {
        self.drain();
        let Some(at) = self.next_wakeup() else {
            return false;
        };
        self.now = self.now.max(at);
        self.deliver_due();
        self.drain();
        true
    }

    /// Steps until nothing is left to do. Panics (naming the seed) after `max_steps`.
    pub fn drive(&mut self, max_steps: usize) {
        self.drive_until(max_steps, |_| false);
    }

    /// Steps until `done` holds or nothing is left to do. Panics after `max_steps`.
    pub fn drive_until(&mut self, max_steps: usize, mut done: impl FnMut(&Sim) -> bool) {
        for _ in 0..max_steps {
            if done(self) || !self.step() {
                return;
            }
        }
        panic!(
            "livelock: still busy after {max_steps} steps (seed {})",
            self.seed
        );
    }

    /// Steps until job `id` is in `state`; panics if it never gets there.
    pub fn drive_to_state(&mut self, id: JobId, state: JobState) {
        self.drive_until(100_000, |s| s.state(id) == state);
        assert_eq!(
            self.state(id),
            state,
            "job never reached {state} (seed {})",
            self.seed
        );
    }

    /// The contents of a file in the in-memory file system.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(Path::new(path)).map(|f| f.data.as_slice())
    }

    /// The states a job went through, from its `StateChanged` events.
    pub fn states_of(&self, id: JobId) -> Vec<JobState> {
        self.events
            .iter()
            .filter_map(|e| match e {
                JobEvent::StateChanged { job, to, .. } if *job == id => Some(*to),
                _ => None,
            })
            .collect()
    }

    /// A hash of everything that decides what happens next — the engine (its whole `Debug`
    /// form), the file system, the servers, connections, queued inputs, verdicts and the clock —
    /// and nothing of the history (events, requests, trace). Two runs with equal fingerprints
    /// behave alike from here on: the exhaustive explorer deduplicates states by it.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", self.engine).hash(&mut h);
        for (at, order, input) in &self.pending {
            (at, order).hash(&mut h);
            match input {
                Input::Received { conn, data, .. } => (conn, fnv(data)).hash(&mut h),
                other => format!("{other:?}").hash(&mut h),
            }
        }
        format!(
            "{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}",
            self.files,
            self.servers,
            self.conns,
            self.open_files,
            self.results,
            self.verdicts,
            self.fail_writes,
            self.last_timeout,
            self.rng,
        )
        .hash(&mut h);
        self.now.hash(&mut h);
        h.finish()
    }

    /// Records what a save would hold for the invariants: per file, the offset a restart
    /// resumes from (the synced checkpoint) and the bytes the temp file holds durably. A
    /// CANCELLED record is only kept to find its temp files again: it is never resumed.
    fn save(&mut self, job: JobId) {
        let (Ok(view), Some(record)) = (self.engine.job(job), self.engine.job_record(job)) else {
            return;
        };
        if record.state().is_final() {
            return;
        }
        let files = view
            .files()
            .iter()
            .zip(record.checkpoints())
            .map(|(f, checkpoint)| {
                let durable = f
                    .temporary_name
                    .as_ref()
                    .and_then(|t| self.files.get(t))
                    .map_or(0, |t| t.durable.len() as u64);
                (checkpoint, durable)
            })
            .collect();
        self.trace.push(Trace::Persist { job, files });
    }

    fn next_wakeup(&self) -> Option<Timestamp> {
        let delivery = self.pending.iter().map(|(at, _, _)| *at).min();
        let timer = self.last_timeout.map(|t| t.max(self.now));
        match (delivery, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn deliver_due(&mut self) {
        let now = self.now;
        let mut due: Vec<(Timestamp, u64, Input)> = Vec::new();
        let mut rest = Vec::new();
        for item in self.pending.drain(..) {
            if item.0 <= now {
                due.push(item);
            } else {
                rest.push(item);
            }
        }
        self.pending = rest;
        due.sort_by_key(|(at, order, _)| (*at, *order));
        if due.is_empty() {
            self.engine.handle(Input::Timeout { now });
        }
        for (_, _, input) in due {
            if let Input::CertificateVerdict { conn, verdict, .. } = &input {
                self.trace.push(Trace::Verdict {
                    conn: *conn,
                    accepted: verdict.is_ok(),
                });
            }
            // Inputs carry the time they are delivered at, not the time they were scheduled.
            self.engine.handle(input.at(now));
            self.drain();
        }
    }

    /// Performs every pending output of the engine.
    fn drain(&mut self) {
        loop {
            match self.engine.poll_output() {
                Output::Action(action) => self.perform(action),
                Output::Event(event) => self.events.push(event),
                Output::Timeout(t) => {
                    self.last_timeout = t;
                    match self.results.pop_front() {
                        Some(input) => self.engine.handle(input),
                        None => {
                            for job in std::mem::take(&mut self.persist_due) {
                                self.save(job);
                            }
                            return;
                        }
                    }
                }
            }
        }
    }

    fn later(&mut self, input: Input) {
        let jitter = self.next_rand() % 3;
        let mut at = self
            .now
            .saturating_add(self.latency + Duration::from_millis(jitter));
        // A connection delivers in order, like TCP: never before its previous delivery.
        if let Some(conn) = input_conn(&input) {
            let last = self
                .pending
                .iter()
                .filter(|p| input_conn(&p.2) == Some(conn))
                .map(|p| p.0)
                .max();
            // Each further piece takes a millisecond: a crude bandwidth, so reads arrive apart.
            at = at.max(last.map_or(at, |l| l.saturating_add(Duration::from_millis(1))));
        }
        self.order += 1;
        self.pending.push((at, self.order, input));
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: the seeded source of every simulated fault.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn input_conn(input: &Input) -> Option<ConnId> {
    match input {
        Input::Connected { conn, .. }
        | Input::ConnectFailed { conn, .. }
        | Input::Received { conn, .. }
        | Input::Closed { conn, .. }
        | Input::ConnectionFailed { conn, .. }
        | Input::CertificateVerdict { conn, .. }
        | Input::TlsStarted { conn, .. } => Some(*conn),
        _ => None,
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes
}

/// Seeds for a randomized scenario: `BACKHAUL_SIM_SEED` replays one, otherwise `count` seeds.
pub fn seeds(count: u64) -> Vec<u64> {
    match std::env::var("BACKHAUL_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (1..=count).collect(),
    }
}

/// Runs `scenario` for each seed; a failure names the seed to replay it with.
pub fn for_each_seed(count: u64, scenario: impl Fn(u64) + std::panic::RefUnwindSafe) {
    for seed in seeds(count) {
        if let Err(panic) = std::panic::catch_unwind(|| scenario(seed)) {
            eprintln!("scenario failed with seed {seed}: replay with BACKHAUL_SIM_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}
