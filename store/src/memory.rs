//! An in-memory [`JobStore`]: records live as encoded bytes, so the encoding is exercised exactly
//! as on disk, but nothing survives the process.

use std::collections::BTreeMap;

use backhaul_core::{JobId, JobRecord};

use crate::{decode_record, encode_record, JobStore, LoadedRecord, StoreError};

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

    fn load_all(&self) -> Result<Vec<LoadedRecord>, StoreError> {
        Ok(self
            .records
            .iter()
            .map(|(id, bytes)| LoadedRecord {
                id: *id,
                record: decode_record(bytes),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backhaul_core::{Config, Engine, JobType, Owner, Timestamp};

    #[test]
    fn a_corrupt_record_is_reported_for_its_job_and_the_others_load() {
        let mut engine = Engine::new(Config::new([7; 32]), Timestamp::from_secs(1));
        let good = engine
            .create_job("good", JobType::Download, Owner("u".into()))
            .unwrap();
        let bad = engine
            .create_job("bad", JobType::Download, Owner("u".into()))
            .unwrap();
        let mut store = MemoryStore::new();
        store.put(good, engine.job_record(good).unwrap()).unwrap();
        store.put_raw(bad, b"BHJR\x01\x00\x00\x00{not json".to_vec());
        let loaded = store.load_all().unwrap();
        assert_eq!(loaded.len(), 2);
        for item in loaded {
            if item.id == good {
                assert_eq!(&item.record.unwrap(), engine.job_record(good).unwrap());
            } else {
                assert!(matches!(item.record, Err(StoreError::Corrupt(_))));
            }
        }
        store.delete(good).unwrap();
        store.delete(good).unwrap();
        assert_eq!(store.len(), 1);
    }
}
