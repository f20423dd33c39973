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
    Action, Config, ConnId, Engine, FileIndex, FileOp, HResult, Input, IoFailure, IoFailureKind,
    JobEvent, JobId, JobRecord, JobState, Output, Owner, Timestamp,
};
use bytes::Bytes;

use crate::kerberos_peer::{FakeGss, KerberosPeer, TokenAsked};
use crate::ntlm_peer::{NtlmPeer, Verdict};

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

    /// An HTTP proxy at `host:port` (CONNECT and absolute form), requiring exactly this
    /// `Proxy-Authorization` value when `requires` is set (else 407 with a Basic challenge).
    pub fn proxy(&mut self, host: &str, port: u16, requires: Option<&str>) {
        let proxy = SimProxy {
            requires: requires.map(str::to_string),
            socks: None,
            challenge: None,
            connect_reply: None,
        };
        self.proxies.insert((host.to_string(), port), proxy);
    }

    /// An HTTP proxy at `host:port` (no authentication) that answers every CONNECT with
    /// `reply`, as sent, and opens no tunnel: a refusal (`403`, `502`), or a 2xx followed by
    /// bytes no origin sent.
    pub fn proxy_answering_connect(&mut self, host: &str, port: u16, reply: &[u8]) {
        let proxy = SimProxy {
            connect_reply: Some(Bytes::copy_from_slice(reply)),
            ..SimProxy::default()
        };
        self.proxies.insert((host.to_string(), port), proxy);
    }

    /// An HTTP proxy at `host:port` that challenges with `Negotiate` and requires the Kerberos
    /// token `token` on every request.
    pub fn negotiate_proxy(&mut self, host: &str, port: u16, token: &[u8]) {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(token);
        let proxy = SimProxy {
            requires: Some(format!("Negotiate {encoded}")),
            socks: None,
            challenge: Some("Negotiate".to_string()),
            connect_reply: None,
        };
        self.proxies.insert((host.to_string(), port), proxy);
    }

    /// A SOCKS5 proxy at `host:port`, requiring this user and password when `auth` is set.
    pub fn socks5_proxy(&mut self, host: &str, port: u16, auth: Option<(&str, &str)>) {
        let proxy = SimProxy {
            requires: None,
            socks: Some(auth.map(|(u, p)| (u.to_string(), p.to_string()))),
            challenge: None,
            connect_reply: None,
        };
        self.proxies.insert((host.to_string(), port), proxy);
    }

    /// Puts the HTTP proxy at `host:port` (see [`Sim::proxy`]) behind NTLM: `domain\\user` with
    /// `password`, checked by a real acceptor on the `Proxy-Authorization` of CONNECTs and
    /// absolute-form requests. One exchange per connection: a Type 3 on another connection
    /// than its Type 1 is refused, as real proxies do. Its first `closes` 407s end with
    /// `Connection: close` and the connection closed (the rest keep it alive).
    pub fn proxy_ntlm(
        &mut self,
        host: &str,
        port: u16,
        user: (&str, &str),
        password: &str,
        closes: u32,
    ) {
        let peer = NtlmPeer::new(user.0, user.1, password);
        let gate = ProxyGate {
            peer,
            closes,
            unframed: false,
        };
        self.proxy_gates.insert((host.to_string(), port), gate);
    }

    /// Makes the NTLM gate of the proxy at `host:port` answer 407s without Content-Length:
    /// each body runs until the proxy closes the connection, which it then does.
    pub fn proxy_ntlm_unframed(&mut self, host: &str, port: u16) {
        let gate = self.proxy_gates.get_mut(&(host.to_string(), port));
        let gate = gate.expect("a proxy set up with proxy_ntlm");
        gate.unframed = true;
        gate.closes = u32::MAX;
    }

    /// The NTLM acceptor of a proxy set up with [`Sim::proxy_ntlm`].
    pub fn proxy_ntlm_peer(&self, host: &str, port: u16) -> Option<&NtlmPeer> {
        self.proxy_gates
            .get(&(host.to_string(), port))
            .map(|gate| &gate.peer)
    }

    /// Puts `http(s)://host:port/path` behind NTLM: `domain\\user` with `password`, checked by
    /// a real acceptor, one exchange per connection for all of the server's protected paths
    /// (the 401s carry a body to read). The first call for a server sets its user.
    pub fn ntlm(&mut self, host: &str, port: u16, path: &str, user: (&str, &str), password: &str) {
        let (_, paths) = self
            .ntlm
            .entry((host.to_string(), port))
            .or_insert_with(|| (NtlmPeer::new(user.0, user.1, password), Vec::new()));
        paths.push(path.to_string());
    }

    /// The NTLM acceptor of a server set up with [`Sim::ntlm`].
    pub fn ntlm_peer(&self, host: &str, port: u16) -> Option<&NtlmPeer> {
        self.ntlm
            .get(&(host.to_string(), port))
            .map(|(peer, _)| peer)
    }

    /// Puts `http(s)://host:port/path` behind Negotiate (Kerberos) with `peer`; the first call
    /// for a server sets its acceptor.
    pub fn kerberos(&mut self, host: &str, port: u16, path: &str, peer: KerberosPeer) {
        let (_, paths) = self
            .kerberos
            .entry((host.to_string(), port))
            .or_insert_with(|| (peer, Vec::new()));
        paths.push(path.to_string());
    }

    /// The Negotiate acceptor of a server set up with [`Sim::kerberos`].
    pub fn kerberos_peer(&self, host: &str, port: u16) -> Option<&KerberosPeer> {
        self.kerberos
            .get(&(host.to_string(), port))
            .map(|(peer, _)| peer)
    }

    /// Serves `resource` at `http(s)://host:port/path`.
    pub fn serve(&mut self, host: &str, port: u16, path: &str, resource: Resource) {
        let server = self.servers.entry((host.to_string(), port)).or_default();
        server.resources.insert(path.to_string(), resource);
    }

    /// Scripts how the next requests for `path` are answered (the last reply repeats).
    pub fn script(&mut self, host: &str, port: u16, path: &str, replies: Vec<Reply>) {
        let server = self.servers.entry((host.to_string(), port)).or_default();
        server.scripts.insert(path.to_string(), replies.into());
    }

    /// The resource `host:port` serves at `path` now.
    pub fn resource(&self, host: &str, port: u16, path: &str) -> Option<&Resource> {
        self.servers
            .get(&(host.to_string(), port))?
            .resources
            .get(path)
    }

    /// Makes every connection to `host:port` be refused (or accepted again).
    pub fn refuse_connections(&mut self, host: &str, port: u16, refuse: bool) {
        self.servers
            .entry((host.to_string(), port))
            .or_default()
            .refuse_connections = refuse;
    }

    /// Serves `der` (a CRL) at `url` for `Action::FetchCrl`; `None` makes fetches of it never
    /// answer.
    pub fn publish_crl(&mut self, url: &str, der: Option<Vec<u8>>) {
        self.crls.insert(url.to_string(), der);
    }

    /// Makes the HTTPS host `host` present `chain` instead of its default leaf.
    pub fn present_chain(
        &mut self,
        host: &str,
        chain: Vec<backhaul_core::CertificateDer<'static>>,
    ) {
        self.chains.insert(host.to_string(), chain);
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

    /// "Saves" `job`'s record: traces, per file, the bytes the record claims and the bytes its
    /// temp file holds now.
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

    fn perform(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Connect {
                conn,
                host,
                port,
                tls_server_name,
            } => {
                self.connects += 1;
                self.trace.push(Trace::Connect {
                    conn,
                    host: host.clone(),
                    port,
                    tls: tls_server_name.is_some(),
                });
                let is_proxy = self.proxies.contains_key(&(host.clone(), port));
                let refused = !is_proxy
                    && self
                        .servers
                        .get(&(host.clone(), port))
                        .is_none_or(|s| s.refuse_connections);
                if refused {
                    let error = IoFailure::new(
                        IoFailureKind::ConnectRefused,
                        "Connection refused (simulated)",
                    );
                    self.later(Input::ConnectFailed { now, conn, error });
                } else {
                    self.conns.insert(
                        conn,
                        SimConn {
                            host,
                            port,
                            tunnel_to: None,
                        },
                    );
                    let peer_certificates = tls_server_name
                        .map(|name| {
                            let chain = self.chains.get(&name).cloned();
                            chain.unwrap_or_else(|| vec![sim_leaf(&name)])
                        })
                        .unwrap_or_default();
                    self.later(Input::Connected {
                        now,
                        conn,
                        peer_certificates,
                    });
                }
            }
            Action::Send { conn, data } if self.socks_handshaking(conn) => {
                self.trace.push(Trace::Send { conn });
                self.socks_answer(conn, &data)
            }
            Action::Send { conn, data } => {
                self.trace.push(Trace::Send { conn });
                self.answer(conn, &data);
            }
            Action::Close { conn } => {
                self.conns.remove(&conn);
                self.pending
                    .retain(|(_, _, input)| input_conn(input) != Some(conn));
            }
            Action::OpenTemp {
                job,
                file,
                path,
                create,
            } => {
                let dir_ok = path
                    .parent()
                    .is_some_and(|d| self.dirs.iter().any(|x| x == d));
                let result = if !dir_ok {
                    Err(IoFailureKind::NotFound)
                } else if create && self.files.contains_key(&path) {
                    Err(IoFailureKind::AlreadyExists)
                } else if !create && !self.files.contains_key(&path) {
                    Err(IoFailureKind::NotFound)
                } else {
                    Ok(())
                };
                match result {
                    Ok(()) => {
                        let len = self.files.entry(path.clone()).or_default().data.len() as u64;
                        self.open_files.insert((job, file), path);
                        self.trace.push(Trace::TempOpened { job, file });
                        self.results.push_back(Input::TempOpened {
                            now,
                            job,
                            file,
                            len,
                        });
                    }
                    Err(kind) => {
                        let error = IoFailure::new(kind, format!("{kind:?} (simulated)"));
                        self.results.push_back(Input::FileFailed {
                            now,
                            job,
                            file,
                            op: FileOp::OpenTemp,
                            error,
                        });
                    }
                }
            }
            Action::WriteFile {
                job,
                file,
                offset,
                data,
            } => {
                if let Some(kind) = self.fail_writes {
                    self.trace.push(Trace::WriteFailed { job, file });
                    let error = IoFailure::new(kind, format!("{kind:?} (simulated)"));
                    self.results.push_back(Input::FileFailed {
                        now,
                        job,
                        file,
                        op: FileOp::Write,
                        error,
                    });
                    return;
                }
                let path = self
                    .open_files
                    .get(&(job, file))
                    .expect("write to an open file")
                    .clone();
                let f = self.files.entry(path).or_default();
                let end = offset as usize + data.len();
                if f.data.len() < end {
                    f.data.resize(end, 0);
                }
                f.data[offset as usize..end].copy_from_slice(&data);
            }
            Action::TruncateFile { job, file, len } => {
                let path = self
                    .open_files
                    .get(&(job, file))
                    .expect("truncate an open file")
                    .clone();
                self.files
                    .entry(path)
                    .or_default()
                    .data
                    .truncate(len as usize);
            }
            Action::SyncFile { job, file, len } => {
                let path = self
                    .open_files
                    .get(&(job, file))
                    .expect("sync an open file")
                    .clone();
                // Like fdatasync, it syncs what is there (shorter than `len` after failed writes).
                let f = self.files.entry(path).or_default();
                f.durable = f.data.clone();
                self.syncs.push((job, file, len));
                self.results.push_back(Input::FileSynced {
                    now,
                    job,
                    file,
                    len,
                });
            }
            Action::CloseFile { job, file } => {
                self.open_files.remove(&(job, file));
            }
            Action::CommitFile {
                job,
                file,
                temp,
                dest,
            } => {
                self.open_files.remove(&(job, file));
                match self.files.remove(&temp) {
                    Some(mut f) => {
                        // The driver syncs the file before the rename, and the directory after.
                        f.durable = f.data.clone();
                        self.files.insert(dest, f);
                        self.results
                            .push_back(Input::FileCommitted { now, job, file });
                    }
                    None => {
                        let error = IoFailure::new(
                            IoFailureKind::NotFound,
                            "temp file missing (simulated)",
                        );
                        self.results.push_back(Input::FileFailed {
                            now,
                            job,
                            file,
                            op: FileOp::Commit,
                            error,
                        });
                    }
                }
            }
            Action::DeleteTemp { job, file, path } => {
                self.open_files.remove(&(job, file));
                self.files.remove(&path);
            }
            Action::Persist { job } => {
                self.persists += 1;
                let record = self.engine.job_record(job).expect("persist a live job");
                self.store.insert(job, record.clone());
                if !self.defer_persist {
                    self.save(job);
                } else if !self.persist_due.contains(&job) {
                    self.persist_due.push(job);
                }
            }
            Action::Forget { job } => {
                self.persists += 1;
                self.store.remove(&job);
            }
            Action::StartTls { conn, server_name } => {
                let peer_certificates = vec![sim_leaf(&server_name)];
                self.later(Input::TlsStarted {
                    now,
                    conn,
                    peer_certificates,
                });
            }
            Action::ValidateCertificate {
                conn,
                job,
                host,
                port,
                ..
            } => {
                self.validations.push((job, host, port));
                self.trace.push(Trace::Validate { conn });
                let verdict = self.verdicts.pop_front().unwrap_or(Ok(()));
                self.later(Input::CertificateVerdict { now, conn, verdict });
            }
            Action::RunProgram { job, program, args } => {
                self.programs.push((now, job, program, args));
                let code = self.program_exits.pop_front().unwrap_or(0);
                self.later(Input::ProgramExited {
                    now,
                    job,
                    exit: Ok(code),
                });
            }
            Action::FetchCrl { url } => {
                self.crl_fetches.push(url.clone());
                let result = match self.crls.get(&url) {
                    Some(Some(der)) => Ok(Bytes::from(der.clone())),
                    Some(None) => return, // never answers
                    None => Err(IoFailure::new(
                        IoFailureKind::ConnectRefused,
                        format!("cannot connect to {url} (simulated)"),
                    )),
                };
                self.later(Input::CrlFetched { now, url, result });
            }
            Action::SecurityToken {
                job,
                conn,
                target,
                service,
                input,
            } => {
                let input = input.map(|b| b.to_vec());
                let result = self.gss.step(&service, input.as_deref());
                self.token_requests.push(TokenAsked {
                    job,
                    conn,
                    target,
                    service,
                    input,
                });
                self.later(Input::SecurityToken {
                    now,
                    job,
                    conn,
                    target,
                    result,
                });
            }
            other => panic!("the simulation does not know {other:?}"),
        }
    }

    /// The scripted server reads one request and schedules its response.
    fn answer(&mut self, conn: ConnId, data: &[u8]) {
        let now = self.now;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let mut key = c.tunnel_to.clone().unwrap_or((c.host.clone(), c.port));
        let proxy = match c.tunnel_to {
            None => self.proxies.get(&key).cloned(),
            Some(_) => None,
        };
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let parsed = req.parse(data).expect("the engine sends valid requests");
        assert!(
            parsed.is_complete(),
            "the engine sends a whole request head at once"
        );
        let path = req.path.unwrap_or("/").to_string();
        let seen = SeenRequest {
            host: c.host.clone(),
            path: path.clone(),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            conn,
        };
        self.requests.push(seen.clone());
        let mut path = path;
        if let Some(proxy) = proxy {
            match self.proxy_answer(conn, &key, &proxy, req.method, &seen) {
                ProxyAnswer::Done => return,
                // Absolute form: the origin's answer, relayed.
                ProxyAnswer::Forward(origin, origin_path) => (key, path) = (origin, origin_path),
            }
        }
        if let Some((peer, _)) = self
            .ntlm
            .get_mut(&key)
            .filter(|(_, paths)| paths.contains(&path))
        {
            if let Verdict::Challenge(token) = peer.judge(conn, seen.header("authorization")) {
                let value = token.map_or("NTLM".to_string(), |t| format!("NTLM {t}"));
                let extra = vec![("WWW-Authenticate".to_string(), value)];
                let data = Bytes::from(status_response(401, &extra));
                self.later(Input::Received { now, conn, data });
                return;
            }
        }
        if let Some((peer, _)) = self
            .kerberos
            .get_mut(&key)
            .filter(|(_, paths)| paths.contains(&path))
        {
            if let Verdict::Challenge(token) = peer.judge(conn, seen.header("authorization")) {
                let value = token.map_or("Negotiate".to_string(), |t| format!("Negotiate {t}"));
                let extra = vec![("WWW-Authenticate".to_string(), value)];
                let data = Bytes::from(status_response(401, &extra));
                self.later(Input::Received { now, conn, data });
                return;
            }
        }
        let server = self.servers.entry(key).or_default();
        let reply = match server.scripts.get_mut(&path) {
            Some(script) if script.len() > 1 => script.pop_front().expect("non-empty"),
            Some(script) => script.front().cloned().unwrap_or(Reply::Serve),
            None => Reply::Serve,
        };
        let reset = matches!(reply, Reply::Reset(_));
        let (bytes, truncate_at) = match reply {
            Reply::Serve => (serve(server.resources.get(&path), &seen), None),
            Reply::Truncate(n) => serve_truncated(server.resources.get(&path), &seen, n),
            Reply::Reset(n) => {
                let (bytes, _) = serve_truncated(server.resources.get(&path), &seen, n);
                (bytes, None)
            }
            Reply::Close => (Vec::new(), Some(0)),
            Reply::Status(status, extra) => (status_response(status, &extra), None),
            Reply::ChangeTo(resource) => {
                server.resources.insert(path.clone(), resource);
                (serve(server.resources.get(&path), &seen), None)
            }
            Reply::ChangeToTruncated(resource, n) => {
                server.resources.insert(path.clone(), resource);
                serve_truncated(server.resources.get(&path), &seen, n)
            }
            Reply::IgnoreRange => {
                let mut whole = seen.clone();
                whole.headers.retain(|(name, _)| name != "range");
                (serve(server.resources.get(&path), &whole), None)
            }
            Reply::Multipart(parts) => (
                serve_multipart(server.resources.get(&path), &seen, parts),
                None,
            ),
            Reply::Raw(bytes) => (bytes, None),
            Reply::Silence => return,
        };
        // Seeded fault: the response arrives split at random points, as real reads do.
        let mut rest = Bytes::from(bytes);
        while !rest.is_empty() {
            let piece = 1 + (self.next_rand() % 70_000) as usize;
            let data = rest.split_to(piece.min(rest.len()));
            self.later(Input::Received { now, conn, data });
        }
        if truncate_at.is_some() {
            self.later(Input::Closed { now, conn });
        }
        if reset {
            let error = IoFailure::new(
                IoFailureKind::ConnectionReset,
                "Connection reset by peer (simulated)",
            );
            self.later(Input::ConnectionFailed { now, conn, error });
        }
    }
}

impl Sim {
    /// Whether `conn` is to a SOCKS5 proxy whose tunnel is not open yet.
    fn socks_handshaking(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            c.tunnel_to.is_none()
                && self
                    .proxies
                    .get(&(c.host.clone(), c.port))
                    .is_some_and(|p| p.socks.is_some())
        })
    }

    /// One SOCKS5 handshake message from the engine (each arrives whole): greeting, user and
    /// password, or the connect request, answered as RFC 1928/1929 say.
    fn socks_answer(&mut self, conn: ConnId, data: &[u8]) {
        let now = self.now;
        let c = self.conns.get(&conn).expect("checked by the caller");
        let proxy = self.proxies[&(c.host.clone(), c.port)].clone();
        let auth = proxy.socks.expect("a SOCKS5 proxy");
        let reply: Vec<u8> = match data {
            // Greeting: version 5, methods.
            [5, n, methods @ ..] if methods.len() == usize::from(*n) => {
                let wanted = if auth.is_some() { 2 } else { 0 };
                let method = if methods.contains(&wanted) {
                    wanted
                } else {
                    0xFF
                };
                vec![5, method]
            }
            // RFC 1929: version 1, user, password.
            [1, ulen, rest @ ..] => {
                let (user, rest) = rest.split_at(usize::from(*ulen));
                let password = &rest[1..];
                let good = auth
                    .as_ref()
                    .is_some_and(|(u, p)| u.as_bytes() == user && p.as_bytes() == password);
                vec![1, if good { 0 } else { 1 }]
            }
            // Connect by name: 5, CONNECT, 0, ATYP 3, len, name, port.
            [5, 1, 0, 3, len, rest @ ..] => {
                let (name, port) = rest.split_at(usize::from(*len));
                let name = String::from_utf8_lossy(name).into_owned();
                let port = u16::from_be_bytes([port[0], port[1]]);
                self.conns.get_mut(&conn).expect("open").tunnel_to = Some((name, port));
                vec![5, 0, 0, 1, 0, 0, 0, 0, 0, 0]
            }
            other => panic!("the simulated SOCKS5 proxy cannot read {other:?}"),
        };
        let data = Bytes::from(reply);
        self.later(Input::Received { now, conn, data });
    }
}

/// What a simulated proxy did with a request.
enum ProxyAnswer {
    /// It answered (200 to CONNECT, or 407).
    Done,
    /// An absolute-form request: the origin (host, port) and path to relay it to.
    Forward((String, u16), String),
}

impl Sim {
    fn proxy_answer(
        &mut self,
        conn: ConnId,
        key: &(String, u16),
        proxy: &SimProxy,
        method: Option<&str>,
        seen: &SeenRequest,
    ) -> ProxyAnswer {
        let now = self.now;
        if let Some(gate) = self.proxy_gates.get_mut(key) {
            let verdict = gate.peer.judge(conn, seen.header("proxy-authorization"));
            if let Verdict::Challenge(token) = verdict {
                let value = token.map_or("NTLM".to_string(), |t| format!("NTLM {t}"));
                let mut extra = vec![("Proxy-Authenticate".to_string(), value)];
                let close = gate.closes > 0;
                if close {
                    gate.closes -= 1;
                    extra.push(("Connection".to_string(), "close".to_string()));
                }
                let mut response = status_response(407, &extra);
                if gate.unframed {
                    let text = String::from_utf8(response).expect("an ASCII head");
                    response = text
                        .lines()
                        .filter(|l| !l.starts_with("Content-Length"))
                        .collect::<Vec<_>>()
                        .join("\r\n")
                        .into_bytes();
                }
                let data = Bytes::from(response);
                self.later(Input::Received { now, conn, data });
                if close {
                    self.later(Input::Closed { now, conn });
                }
                return ProxyAnswer::Done;
            }
        }
        if let Some(required) = &proxy.requires {
            if seen.header("proxy-authorization") != Some(required.as_str()) {
                let challenge = proxy
                    .challenge
                    .as_deref()
                    .unwrap_or("Basic realm=\"proxy\"");
                let extra = vec![("Proxy-Authenticate".to_string(), challenge.to_string())];
                let data = Bytes::from(status_response(407, &extra));
                self.later(Input::Received { now, conn, data });
                return ProxyAnswer::Done;
            }
        }
        if method == Some("CONNECT") {
            if let Some(data) = proxy.connect_reply.clone() {
                self.later(Input::Received { now, conn, data });
                return ProxyAnswer::Done;
            }
            let (host, port) = seen.path.rsplit_once(':').expect("CONNECT host:port");
            let target = (host.to_string(), port.parse().expect("CONNECT port"));
            if let Some(c) = self.conns.get_mut(&conn) {
                c.tunnel_to = Some(target);
            }
            let data = Bytes::from_static(b"HTTP/1.1 200 Connection established\r\n\r\n");
            self.later(Input::Received { now, conn, data });
            return ProxyAnswer::Done;
        }
        let url = url::Url::parse(&seen.path).expect("absolute form to a proxy");
        let origin = (
            url.host_str().expect("a host").to_string(),
            url.port_or_known_default().expect("a port"),
        );
        ProxyAnswer::Forward(origin, url.path().to_string())
    }
}

/// The simulation's CA: its certificate (trusted by every simulated engine) and its issuer.
fn sim_ca() -> &'static (
    backhaul_core::CertificateDer<'static>,
    rcgen::Issuer<'static, rcgen::KeyPair>,
) {
    static CA: std::sync::OnceLock<(
        backhaul_core::CertificateDer<'static>,
        rcgen::Issuer<'static, rcgen::KeyPair>,
    )> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "backhaul sim CA");
        let cert = params.self_signed(&key).expect("self-signed CA");
        (cert.der().clone(), rcgen::Issuer::new(params, key))
    })
}

/// A leaf certificate for `name` with serial number `serial` and a CRL distribution point at
/// `cdp`, issued by the simulation's CA.
pub fn sim_leaf_with_cdp(
    name: &str,
    serial: u64,
    cdp: &str,
) -> backhaul_core::CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("leaf params");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.serial_number = Some(rcgen::SerialNumber::from(serial));
    params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec![cdp.to_string()],
    }];
    params
        .signed_by(&key, &sim_ca().1)
        .expect("signed leaf")
        .der()
        .clone()
}

/// A CRL (DER) of the simulation's CA revoking `revoked` serials, issued 2025-12-01 and current
/// until `next_update` (year, month, day).
pub fn sim_crl(revoked: &[u64], next_update: (i32, u8, u8)) -> Vec<u8> {
    let (year, month, day) = next_update;
    let params = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2025, 12, 1),
        next_update: rcgen::date_time_ymd(year, month, day),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|&serial| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(serial),
                revocation_time: rcgen::date_time_ymd(2025, 12, 2),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    params.signed_by(&sim_ca().1).expect("CRL").der().to_vec()
}

/// A leaf certificate for `name`, issued by the simulation's CA (cached per name).
fn sim_leaf(name: &str) -> backhaul_core::CertificateDer<'static> {
    static LEAVES: std::sync::Mutex<BTreeMap<String, backhaul_core::CertificateDer<'static>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut leaves = LEAVES.lock().unwrap_or_else(|p| p.into_inner());
    leaves
        .entry(name.to_string())
        .or_insert_with(|| {
            let key = rcgen::KeyPair::generate().expect("leaf key");
            let mut params =
                rcgen::CertificateParams::new(vec![name.to_string()]).expect("leaf params");
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            params
                .signed_by(&key, &sim_ca().1)
                .expect("signed leaf")
                .der()
                .clone()
        })
        .clone()
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

/// A full or ranged response for `resource`, as a real server would send it.
fn serve(resource: Option<&Resource>, req: &SeenRequest) -> Vec<u8> {
    let Some(r) = resource else {
        return status_response(404, &[]);
    };
    let len = r.body.len() as u64;
    let validators_match = match req.header("if-range") {
        None => true,
        Some(v) => r.etag.as_deref() == Some(v) || r.last_modified.as_deref() == Some(v),
    };
    // `bytes=a-` or `bytes=a-b` (an end past the file is cut to it, RFC 9110 §14.1.2).
    let range = req
        .header("range")
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let end = if b.is_empty() {
                None
            } else {
                Some(b.parse::<u64>().ok()?)
            };
            Some((a.parse::<u64>().ok()?, end))
        })
        .filter(|_| validators_match);
    let mut head = String::new();
    let body: &[u8] = match range {
        Some((start, _)) if start >= len => {
            head.push_str(&format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n"
            ));
            head.push_str("Content-Length: 0\r\n");
            &[]
        }
        Some((start, end)) => {
            let end = end.map_or(len - 1, |end| end.min(len - 1));
            head.push_str("HTTP/1.1 206 Partial Content\r\n");
            head.push_str(&format!("Content-Range: bytes {start}-{end}/{len}\r\n"));
            &r.body[start as usize..=end as usize]
        }
        None => {
            head.push_str("HTTP/1.1 200 OK\r\n");
            &r.body
        }
    };
    if let Some(etag) = &r.etag {
        head.push_str(&format!("ETag: {etag}\r\n"));
    }
    if let Some(lm) = &r.last_modified {
        head.push_str(&format!("Last-Modified: {lm}\r\n"));
    }
    let mut out;
    if r.chunked && !head.contains(" 416 ") {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        out = head.into_bytes();
        for piece in body.chunks(1000) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        if !head.contains("Content-Length") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        out = head.into_bytes();
        out.extend_from_slice(body);
    }
    out
}

/// A 206 `multipart/byteranges` answer to a one-range request, in `parts` adjacent parts.
fn serve_multipart(resource: Option<&Resource>, req: &SeenRequest, parts: usize) -> Vec<u8> {
    let single = serve(resource, req);
    let (Some(r), true) = (resource, single.starts_with(b"HTTP/1.1 206")) else {
        return single;
    };
    let text = String::from_utf8_lossy(&single);
    let range = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Range: bytes "))
        .and_then(|v| v.split_once('/'))
        .and_then(|(range, _)| range.split_once('-'))
        .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
        .expect("a 206 names its range");
    let len = r.body.len();
    let (start, end) = range;
    let step = (end + 1 - start).div_ceil(parts.max(1));
    let mut body = b"\r\n".to_vec();
    let mut at = start;
    while at <= end {
        let last = (at + step - 1).min(end);
        body.extend_from_slice(b"--SIM_BOUNDARY\r\nContent-Type: application/octet-stream\r\n");
        body.extend_from_slice(
            format!("Content-Range: bytes {at}-{last}/{len}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&r.body[at..=last]);
        body.extend_from_slice(b"\r\n");
        at = last + 1;
    }
    body.extend_from_slice(b"--SIM_BOUNDARY--\r\n");
    let mut head = "HTTP/1.1 206 Partial Content\r\n\
        Content-Type: multipart/byteranges; boundary=SIM_BOUNDARY\r\n"
        .to_string();
    if let Some(etag) = &r.etag {
        head.push_str(&format!("ETag: {etag}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    [head.into_bytes(), body].concat()
}

fn serve_truncated(
    resource: Option<&Resource>,
    req: &SeenRequest,
    body_bytes: u64,
) -> (Vec<u8>, Option<u64>) {
    let full = serve(resource, req);
    let head_len = full
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(full.len(), |p| p + 4);
    let cut = (head_len as u64 + body_bytes).min(full.len() as u64) as usize;
    (full[..cut].to_vec(), Some(body_bytes))
}

fn status_response(status: u16, extra: &[(String, String)]) -> Vec<u8> {
    let body = format!("status {status}: this body must never reach a file\n");
    let mut out = format!(
        "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
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
