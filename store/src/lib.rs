//! # backhaul-store
//!
//! Where jobs are kept between runs: versioned job records ([`encode_record`],
//! [`decode_record`]) and the [`JobStore`] trait the drivers persist through, with two stores:
//! [`RedbStore`], crash-safe on disk, and [`MemoryStore`], for tests and throwaway managers.
//! The record format and its versioning are described in `docs/store.md`.

#![forbid(unsafe_code)]

mod memory;
mod record;
mod redb;

pub use crate::memory::MemoryStore;
pub use crate::record::{decode_record, encode_record, RECORD_VERSION};
pub use crate::redb::RedbStore;

use backhaul_core::{JobId, JobRecord};

/// What can go wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The bytes are not a job record (truncated, corrupt, not ours).
    #[error("job record is corrupt: {0}")]
    Corrupt(String),
    /// The record was written by a newer backhaul.
    #[error("job record version {found} is newer than this backhaul reads (up to {supported})")]
    UnsupportedVersion {
        /// Version in the record.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// Another process has the store open (redb locks the file): a daemon, or another
    /// program embedding backhaul over the same file.
    #[error("job store {} is in use by another process (a backhaul daemon, or another program using that store)", path.display())]
    InUse {
        /// The store's file.
        path: std::path::PathBuf,
    },
    /// The store itself failed (I/O).
    #[error("job store failed: {0}")]
    Io(String),
}

/// A place that keeps job records. Drivers call it on `Action::Persist` and `Action::Forget`.
pub trait JobStore: Send {
    /// Save (insert or replace) the record of `id`.
    fn put(&mut self, id: JobId, record: &JobRecord) -> Result<(), StoreError>;
    /// Remove the record of `id`; removing a missing record is not an error.
    fn delete(&mut self, id: JobId) -> Result<(), StoreError>;
    /// Every record. A record that fails to decode is reported for its job and does not stop
    /// the others.
    fn load_all(&self) -> Result<Vec<LoadedRecord>, StoreError>;
    /// Several writes, in order: `Some(record)` saves the record of the job, `None` removes it.
    /// The drivers group what a batch of commands and inputs changed into one call, so a store
    /// that can should commit it as one transaction with one sync (as [`RedbStore`] does); this
    /// default applies the writes one by one.
    fn write_batch(&mut self, writes: &[(JobId, Option<&JobRecord>)]) -> Result<(), StoreError> {
        for (id, record) in writes {
            match record {
                Some(record) => self.put(*id, record)?,
                None => self.delete(*id)?,
            }
        }
        Ok(())
    }
}

/// One record read back by [`JobStore::load_all`].
#[derive(Debug)]
pub struct LoadedRecord {
    /// The job the record belongs to.
    pub id: JobId,
    /// The decoded record, or why it could not be decoded.
    pub record: Result<JobRecord, StoreError>,
}
