//! [`DriverConfig`] and [`DriverError`]: the same for both drivers.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::reload::StoreLocation;
use backhaul_core::{BitsError, Config, HResult, Owner};

/// How a driver is set up: the engine's [`Config`] plus what only a driver can provide.
pub struct DriverConfig {
    /// The engine's configuration. Its `trust_anchors` are extended with the roots below.
    pub core: Config,
    /// Extra trust anchors: PEM files of CA certificates. Each must hold at least one.
    pub ca_files: Vec<PathBuf>,
    /// Trust the operating system's root certificates (default true).
    pub use_system_roots: bool,
    /// CRL files (PEM or DER) for `BG_SSL_ENABLE_CRL_CHECK`, read at startup into the
    /// engine's `crl_files`.
    pub crl_files: Vec<PathBuf>,
    /// Where jobs are persisted (default: in memory). A store that holds jobs is reloaded:
    /// the manager starts with every job in it.
    pub store: StoreLocation,
    /// The owner of the jobs this driver creates (default: [`default_owner`]).
    pub owner: Owner,
}

impl DriverConfig {
    /// Defaults: core's defaults seeded from OS entropy ([`os_seed`]), system roots, an
    /// in-memory store, and the current user as owner.
    pub fn new() -> Self {
        Self {
            core: Config::new(os_seed()),
            ca_files: Vec::new(),
            use_system_roots: true,
            crl_files: Vec::new(),
            store: StoreLocation::Memory,
            owner: default_owner(),
        }
    }
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DriverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverConfig")
            .field("core", &self.core)
            .field("ca_files", &self.ca_files)
            .field("use_system_roots", &self.use_system_roots)
            .field("crl_files", &self.crl_files)
            .field("store", &self.store)
            .field("owner", &self.owner)
            .finish()
    }
}

/// Why a driver could not start, or why a call did not reach the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// A CA file is missing, unreadable, or holds no usable certificate.
    #[error("CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A CRL file is missing, unreadable, or holds something that is not a usable CRL.
    #[error("CRL file {}: {reason}", path.display())]
    CrlFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O failure while starting.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The job store could not be opened or read (the message names its file).
    #[error(transparent)]
    Store(#[from] backhaul_store::StoreError),
    /// The TLS client configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The async runtime the driver needs is not there (tokio: `Manager::new` outside a runtime).
    #[error("no runtime: {0}")]
    Runtime(String),
    /// The engine loop has stopped (shut down, or it panicked).
    #[error("the engine loop has stopped")]
    Stopped,
}

/// `E_UNEXPECTED`: what a driver failure looks like where a BITS code is expected.
const E_UNEXPECTED: HResult = HResult(0x8000_FFFF);

impl From<DriverError> for BitsError {
    fn from(err: DriverError) -> Self {
        BitsError::new(E_UNEXPECTED, err.to_string())
    }
}

/// The current user as a job owner: `uid:<n>`, read from the owner of `/proc/self`.
///
/// Where `/proc` is not mounted it falls back to `user:$USER`, then `uid:unknown`.
pub fn default_owner() -> Owner {
    if let Ok(meta) = std::fs::metadata("/proc/self") {
        return Owner(format!("uid:{}", meta.uid()));
    }
    match std::env::var("USER") {
        Ok(user) if !user.is_empty() => Owner(format!("user:{user}")),
        _ => Owner("uid:unknown".to_string()),
    }
}

/// 32 bytes of OS entropy for the engine's RNG seed (drivers may read it; core may not).
///
/// Reads `/dev/urandom`; should that fail, it warns and mixes std's random hash keys (which
/// std draws from the OS as well) with the time and the process id.
pub fn os_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed)) {
        Ok(()) => return seed,
        Err(err) => {
            tracing::warn!("cannot read /dev/urandom ({err}); seeding from std's hash keys")
        }
    }
    use std::hash::{BuildHasher, Hasher};
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    seed
}
