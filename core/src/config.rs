//! The engine's configuration: limits, scheduling, timeouts, trust anchors and the RNG seed.

use std::time::Duration;

use rustls_pki_types::CertificateDer;

use crate::proxy::ProxyEnvironment;

/// How the engine is set up. Build with [`Config::new`] and adjust the public fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Seed of the engine's RNG (job ids, temp names, retry jitter). Same seed, same run.
    pub rng_seed: [u8; 32],
    /// Sent as `User-Agent` on every request.
    pub user_agent: String,
    /// How many FOREGROUND jobs may transfer at once. BITS runs all of them: `usize::MAX`.
    pub max_foreground_jobs: usize,
    /// How many background (HIGH/NORMAL/LOW) jobs may transfer at once. BITS runs one.
    pub max_background_jobs: usize,
    /// Round-robin slice among background jobs of equal priority (BITS leaves it unstated).
    pub time_slice: Duration,
    /// `MaxFilesPerJob` (BITS default 200): `BG_E_TOO_MANY_FILES_IN_JOB` beyond it.
    pub max_files_per_job: usize,
    /// `MaxRangesPerFile` (BITS default 500): `BG_E_TOO_MANY_RANGES_IN_FILE` beyond it.
    pub max_ranges_per_file: usize,
    /// `MaxJobsPerUser` (BITS default 60): `BG_E_TOO_MANY_JOBS_PER_USER` beyond it.
    pub max_jobs_per_owner: usize,
    /// `MaxJobsPerMachine` (BITS default 300): `BG_E_TOO_MANY_JOBS_PER_MACHINE` beyond it.
    pub max_jobs: usize,
    /// Connecting (TCP + TLS) longer than this is a transient `ERROR_WINHTTP_TIMEOUT`.
    pub connect_timeout: Duration,
    /// A connection that delivers no byte for this long while a response is awaited is a
    /// transient `ERROR_WINHTTP_TIMEOUT`.
    pub receive_timeout: Duration,
    /// Largest response head (status line and headers) accepted, in bytes.
    pub max_response_head_bytes: usize,
    /// Most response headers accepted.
    pub max_response_headers: usize,
    /// Redirects followed for one request before the file fails.
    pub max_redirects: u32,
    /// Idle keep-alive connections kept per origin.
    pub max_idle_connections_per_origin: usize,
    /// Trust anchors for HTTPS: the system store plus extra CA files, loaded by the driver.
    pub trust_anchors: Vec<CertificateDer<'static>>,
    /// The proxy environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, either
    /// case) that PRECONFIG jobs follow. Core reads no environment: the driver fills this in.
    pub proxy_environment: ProxyEnvironment,
    /// CRLs (DER) for `BG_SSL_ENABLE_CRL_CHECK`, loaded by the driver from files: used while
    /// current, before anything is fetched from a certificate's distribution points.
    pub crl_files: Vec<Vec<u8>>,
    /// A running file is checkpointed (temp file synced, then its offset persisted) after this
    /// many bytes…
    pub checkpoint_bytes: u64,
    /// …or after this long, whichever comes first. A restart resumes from the last checkpoint.
    pub checkpoint_interval: Duration,
}

impl Config {
    /// Defaults from BITS where BITS has one, with the given RNG seed.
    pub fn new(rng_seed: [u8; 32]) -> Self {
        Self {
            rng_seed,
            user_agent: format!("backhaul/{}", env!("CARGO_PKG_VERSION")),
            max_foreground_jobs: usize::MAX,
            max_background_jobs: 1,
            time_slice: Duration::from_secs(120),
            max_files_per_job: 200,
            max_ranges_per_file: 500,
            max_jobs_per_owner: 60,
            max_jobs: 300,
            connect_timeout: Duration::from_secs(60),
            receive_timeout: Duration::from_secs(60),
            max_response_head_bytes: 64 * 1024,
            max_response_headers: 100,
            max_redirects: 10,
            max_idle_connections_per_origin: 4,
            trust_anchors: Vec::new(),
            proxy_environment: ProxyEnvironment::default(),
            crl_files: Vec::new(),
            checkpoint_bytes: 8 * 1024 * 1024,
            checkpoint_interval: Duration::from_secs(5),
        }
    }
}
