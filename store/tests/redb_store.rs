//! `RedbStore` on a real file: round trips, permissions, damaged records and damaged files.

use std::os::unix::fs::PermissionsExt;

use backhaul_core::{Config, Engine, JobId, JobType, Owner, Timestamp};
use backhaul_store::{JobStore, RedbStore, StoreError, RECORD_VERSION};

/// An engine with `names.len()` jobs, for their records.
fn engine_with_jobs(names: &[&str]) -> (Engine, Vec<JobId>) {
    let mut engine = Engine::new(Config::new([3; 32]), Timestamp::from_secs(1_000));
    let ids = names
        .iter()
        .map(|n| {
            engine
                .create_job(n, JobType::Download, Owner("u".into()))
                .unwrap()
        })
        .collect();
    (engine, ids)
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn records_survive_reopening_and_deletes_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let (engine, ids) = engine_with_jobs(&["a", "b", "c"]);
    {
        let mut store = RedbStore::open(&path).unwrap();
        for id in &ids {
            store.put(*id, engine.job_record(*id).unwrap()).unwrap();
        }
        store.delete(ids[1]).unwrap();
        store.delete(ids[1]).unwrap(); // a missing record is not an error
    }
    let store = RedbStore::open(&path).unwrap();
    let mut loaded = store.load_all().unwrap();
    loaded.sort_by_key(|r| r.id);
    let mut expected = vec![ids[0], ids[2]];
    expected.sort();
    assert_eq!(loaded.iter().map(|r| r.id).collect::<Vec<_>>(), expected);
    for item in loaded {
        assert_eq!(
            &item.record.unwrap(),
            engine.job_record(item.id).unwrap(),
            "record of {} round-trips",
            item.id
        );
    }
}

#[test]
fn the_file_is_owner_only_and_a_created_directory_is_0700() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("backhaul").join("jobs.redb");
    RedbStore::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[test]
fn a_corrupt_record_and_a_newer_record_are_reported_and_the_others_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let (engine, ids) = engine_with_jobs(&["good", "other"]);
    let mut store = RedbStore::open(&path).unwrap();
    for id in &ids {
        store.put(*id, engine.job_record(*id).unwrap()).unwrap();
    }
    let corrupt = JobId(0x1111);
    let newer = JobId(0x2222);
    store
        .put_raw(corrupt, b"BHJR\x01\x00\x00\x00{\"id\":")
        .unwrap();
    let mut future = b"BHJR".to_vec();
    future.extend_from_slice(&(RECORD_VERSION + 1).to_le_bytes());
    future.extend_from_slice(b"{\"whatever\":1}");
    store.put_raw(newer, &future).unwrap();
    drop(store);

    let loaded = RedbStore::open(&path).unwrap().load_all().unwrap();
    assert_eq!(loaded.len(), 4);
    for item in loaded {
        match item.id {
            id if id == corrupt => assert!(matches!(item.record, Err(StoreError::Corrupt(_)))),
            id if id == newer => assert!(matches!(
                item.record,
                Err(StoreError::UnsupportedVersion { found, .. }) if found == RECORD_VERSION + 1
            )),
            id => assert_eq!(&item.record.unwrap(), engine.job_record(id).unwrap()),
        }
    }
}

#[test]
fn a_store_open_elsewhere_is_refused_as_in_use_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let first = RedbStore::open(&path).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::InUse { path: p } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("in use"), "{err}");
    drop(first);
    RedbStore::open(&path).expect("free again once the first is closed");
}

#[test]
fn a_file_that_is_not_a_store_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
    let err = RedbStore::open(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
}

#[test]
fn a_store_damaged_after_writing_is_refused_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let (engine, ids) = engine_with_jobs(&["a"]);
    {
        let mut store = RedbStore::open(&path).unwrap();
        store
            .put(ids[0], engine.job_record(ids[0]).unwrap())
            .unwrap();
    }
    // Scribble over everything after the header: pages, checksums, the lot.
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(512) {
        *b ^= 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    match RedbStore::open(&path) {
        Err(err) => assert!(err.to_string().contains(&path.display().to_string())),
        // redb may recover the last good commit from its redundant header; then the record
        // must still read back intact or be reported, never garbage.
        Ok(store) => {
            for item in store.load_all().unwrap_or_default() {
                if let Ok(record) = item.record {
                    assert_eq!(&record, engine.job_record(ids[0]).unwrap());
                }
            }
        }
    }
}
