//! An in-memory [`JobStore`]: records live as encoded bytes, so the encoding is exercised exactly
//! as on disk, but nothing survives the process.

use std::collections::BTreeMap;

use backhaul_core::{JobId, JobRecord};

use crate::{decode_record, encode_record, JobStore, StoreError};

/// Keeps encoded records in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: BTreeMap<JobId, Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// No records held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Replace the bytes of a record (tests use it to plant a corrupt record).
    pub fn put_raw(&mut self, id: JobId, bytes: Vec<u8>) {
        self.records.insert(id, bytes);
    }
}

impl JobStore for MemoryStore {
    fn put(&mut self, id: JobId, record: &JobRecord) -> Result<(), StoreError> {
        self.records.insert(id, encode_record(record));
        Ok(())
    }

    fn delete(&mut self, id: JobId) -> Result<(), StoreError> {
        self.records.remove(&id);
        Ok(())
    }

    fn load_all(&self) -> Result<Vec<(JobId, Result<JobRecord, StoreError>)>, StoreError> {
        Ok(self.records.iter().map(|(id, bytes)| (*id, decode_record(bytes))).collect())
    }
}
