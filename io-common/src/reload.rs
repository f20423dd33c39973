//! Opening the job store and putting its jobs back into a new engine.

use std::fmt;
use std::path::PathBuf;

use backhaul_core::{Engine, JobId, JobRecord};
use backhaul_store::{JobStore, MemoryStore, RedbStore};

use crate::config::DriverError;

/// Where a driver keeps its jobs.
#[derive(Default)]
#[non_exhaustive]
pub enum StoreLocation {
    /// In memory: nothing survives the process (the default).
    #[default]
    Memory,
    /// A [`RedbStore`] file, created owner-only if missing (see [`default_store_path`]).
    File(PathBuf),
    /// A store the application built.
    Custom(Box<dyn JobStore>),
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Memory => f.write_str("Memory"),
            StoreLocation::File(path) => f.debug_tuple("File").field(path).finish(),
            StoreLocation::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// The per-user store file: `$XDG_STATE_HOME/backhaul/jobs.redb`, else
/// `$HOME/.local/state/backhaul/jobs.redb`; `None` if neither variable is set.
pub fn default_store_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME").filter(|v| !v.is_empty())?;
            Some(PathBuf::from(home).join(".local").join("state"))
        })?;
    Some(state.join("backhaul").join("jobs.redb"))
}

/// A stored record that could not be put back: the job is not in the engine, its record stays
/// in the store untouched (a newer backhaul may read it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenRecord {
    /// The job the record is stored under.
    pub id: JobId,
    /// Why it was not restored (corrupt, newer version, refused by the engine).
    pub reason: String,
}

/// Opens the store `location` names.
pub(crate) fn open_store(location: StoreLocation) -> Result<Box<dyn JobStore>, DriverError> {
    Ok(match location {
        StoreLocation::Memory => Box::new(MemoryStore::new()),
        StoreLocation::File(path) => Box::new(RedbStore::open(path)?),
        StoreLocation::Custom(store) => store,
    })
}

/// Restores every record of `store` into `engine`, oldest first; returns those that could not
/// be. The engine's outputs (a `Persist` per restored job) are left for the caller to drain.
pub(crate) fn reload(
    engine: &mut Engine,
    store: &dyn JobStore,
) -> Result<Vec<BrokenRecord>, DriverError> {
    let mut broken = Vec::new();
    let mut records: Vec<JobRecord> = Vec::new();
    for item in store.load_all()? {
        match item.record {
            Ok(record) if record.id() == item.id => records.push(record),
            Ok(record) => broken.push(BrokenRecord {
                id: item.id,
                reason: format!("the record is job {}'s", record.id()),
            }),
            Err(err) => broken.push(BrokenRecord {
                id: item.id,
                reason: err.to_string(),
            }),
        }
    }
    records.sort_by_key(|r| (r.created(), r.id()));
    for record in records {
        let id = record.id();
        if let Err(err) = engine.restore(record) {
            broken.push(BrokenRecord {
                id,
                reason: err.to_string(),
            });
        }
    }
    for b in &broken {
        tracing::warn!("job {} was not restored: {}", b.id, b.reason);
        engine.reserve_id(b.id);
    }
    Ok(broken)
}
