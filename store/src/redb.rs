//! [`RedbStore`]: job records in one [redb](https://docs.rs/redb) database file.
//!
//! Why redb: it is pure Rust (no C library to build or link), every write transaction is ACID
//! and fsync'ed on commit by default, its copy-on-write B-tree never overwrites the last
//! committed state — so a crash or power loss leaves either the old or the new record, never a
//! torn one — and it is actively maintained with a stable file format.
//!
//! The database holds one table, `jobs`: the job id (16 bytes, big-endian) → the record as
//! [`encode_record`] writes it. Each [`JobStore::put`] and [`JobStore::delete`] is one write
//! transaction with redb's default durability (synced when it returns).

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use backhaul_core::{JobId, JobRecord};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{decode_record, encode_record, JobStore, LoadedRecord, StoreError};

/// The one table: job id → encoded record.
const JOBS: TableDefinition<'_, [u8; 16], &[u8]> = TableDefinition::new("jobs");

/// Mode of the database file: it holds job records (URLs, names, later credentials).
const FILE_MODE: u32 = 0o600;
/// Mode of a directory this store creates for its file.
const DIR_MODE: u32 = 0o700;

/// A crash-safe, on-disk [`JobStore`] (see the module documentation for why redb).
pub struct RedbStore {
    path: PathBuf,
    db: Database,
}

impl RedbStore {
    /// Opens the database at `path`, creating it (owner-only, 0600) if it does not exist, and
    /// its parent directory (0700) if that is missing.
    ///
    /// A file that is not a redb database, or one damaged outside redb, is an error naming the
    /// path (the file is checked on open, so a damaged one is refused instead of trusted).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let fail = |what: &str, err: &dyn std::fmt::Display| {
            StoreError::Io(format!("job store {}: {what}: {err}", path.display()))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(dir)
                    .map_err(|e| fail("cannot create its directory", &e))?;
            }
        }
        // Created here, not by redb, so that it is owner-only from its first byte.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| fail("cannot open", &e))?;
        // redb may panic on a file damaged outside it (its debug assertions, for one); a damaged
        // store must be an error the caller can report, never a crash of the whole process.
        let opened = panic::catch_unwind(AssertUnwindSafe(|| {
            Database::builder()
                .set_check_integrity_on_open(true)
                .create(&path)
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(StoreError::InUse { path })
            }
            Ok(Err(e)) => return Err(fail("not a usable job store", &e)),
            Err(_) => return Err(fail("not a usable job store", &"the file is corrupt")),
        };
        let store = Self { path, db };
        store.write(|_| Ok(()))?; // create the table, so reads never meet a missing one
        Ok(store)
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `bytes` as the record of `id` as they are (tests use it to plant a corrupt record).
    pub fn put_raw(&mut self, id: JobId, bytes: &[u8]) -> Result<(), StoreError> {
        self.write(|table| table.insert(key(id), bytes).map(drop))
    }

    /// One write transaction on the jobs table, committed (and synced) before returning.
    fn write(
        &self,
        f: impl FnOnce(&mut redb::Table<'_, [u8; 16], &[u8]>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let io = |e: &dyn std::fmt::Display| {
            StoreError::Io(format!("job store {}: {e}", self.path.display()))
        };
        let txn = self.db.begin_write().map_err(|e| io(&e))?;
        {
            let mut table = txn.open_table(JOBS).map_err(|e| io(&e))?;
            f(&mut table).map_err(|e| io(&e))?;
        }
        txn.commit().map_err(|e| io(&e))
    }
}

impl JobStore for RedbStore {
    fn put(&mut self, id: JobId, record: &JobRecord) -> Result<(), StoreError> {
        let bytes = encode_record(record);
        self.put_raw(id, &bytes)
    }

    fn delete(&mut self, id: JobId) -> Result<(), StoreError> {
        self.write(|table| table.remove(key(id)).map(drop))
    }

    /// One transaction for the whole batch: one sync, and all of it or none of it after a crash.
    fn write_batch(&mut self, writes: &[(JobId, Option<&JobRecord>)]) -> Result<(), StoreError> {
        self.write(|table| {
            for (id, record) in writes {
                match record {
                    Some(record) => table.insert(key(*id), encode_record(record).as_slice())?,
                    None => table.remove(key(*id))?,
                };
            }
            Ok(())
        })
    }

    fn load_all(&self) -> Result<Vec<LoadedRecord>, StoreError> {
        let io = |e: &dyn std::fmt::Display| {
            StoreError::Io(format!("job store {}: {e}", self.path.display()))
        };
        let txn = self.db.begin_read().map_err(|e| io(&e))?;
        let table = txn.open_table(JOBS).map_err(|e| io(&e))?;
        let mut records = Vec::new();
        for entry in table.iter().map_err(|e| io(&e))? {
            let (id, bytes) = entry.map_err(|e| io(&e))?;
            records.push(LoadedRecord {
                id: JobId(u128::from_be_bytes(id.value())),
                record: decode_record(bytes.value()),
            });
        }
        Ok(records)
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn key(id: JobId) -> [u8; 16] {
    id.0.to_be_bytes()
}
