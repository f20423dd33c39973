//! Group commit: what the host writes to the store, when, and when a command is answered.

use std::sync::{Arc, Mutex};

use backhaul_core::{ConnId, IoFailure, JobEvent, JobId, JobRecord, JobType};
use backhaul_store::{JobStore, LoadedRecord, MemoryStore, StoreError};
use bytes::Bytes;

use super::{CertificateRequest, Host, Io, OffThread};
use crate::config::DriverConfig;
use crate::reload::StoreLocation;

/// A store that remembers each write call: the number of records it carried.
#[derive(Default)]
struct CountingStore {
    inner: MemoryStore,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl JobStore for CountingStore {
    fn put(&mut self, id: JobId, record: &JobRecord) -> Result<(), StoreError> {
        self.batches.lock().unwrap().push(1);
        self.inner.put(id, record)
    }

    fn delete(&mut self, id: JobId) -> Result<(), StoreError> {
        self.batches.lock().unwrap().push(1);
        self.inner.delete(id)
    }

    fn load_all(&self) -> Result<Vec<LoadedRecord>, StoreError> {
        self.inner.load_all()
    }

    fn write_batch(&mut self, writes: &[(JobId, Option<&JobRecord>)]) -> Result<(), StoreError> {
        self.batches.lock().unwrap().push(writes.len());
        for (id, record) in writes {
            match record {
                Some(record) => self.inner.put(*id, record)?,
                None => self.inner.delete(*id)?,
            }
        }
        Ok(())
    }
}

/// No connections are ever asked for here: the jobs stay SUSPENDED.
struct NoIo;

impl Io for NoIo {
    fn connect(
        &mut self,
        _: ConnId,
        _: String,
        _: u16,
        _: Option<String>,
    ) -> Result<(), IoFailure> {
        unreachable!("no connection is asked for")
    }
    fn start_tls(&mut self, _: ConnId, _: String) -> Result<(), IoFailure> {
        unreachable!("no connection is asked for")
    }
    fn send(&mut self, _: ConnId, _: Bytes) -> Result<(), IoFailure> {
        unreachable!("no connection is asked for")
    }
    fn close(&mut self, _: ConnId) {}
    fn publish(&mut self, _: JobEvent) {}
    fn validate_certificate(&mut self, _: CertificateRequest) {}
    fn run_off_thread(&mut self, _: OffThread) {}
    fn fetch_crl(&mut self, _: String) {}
}

fn host() -> (Host, Arc<Mutex<Vec<usize>>>) {
    let store = CountingStore::default();
    let batches = Arc::clone(&store.batches);
    let mut config = DriverConfig::new();
    config.use_system_roots = false;
    config.store = StoreLocation::Custom(Box::new(store));
    let mut host = Host::new(config).expect("a host");
    host.start(&mut NoIo);
    host.flush();
    batches.lock().unwrap().clear();
    (host, batches)
}

/// Runs `CreateJob` as a driver does and returns whether its answer was sent.
fn create_job(host: &mut Host, name: &str) -> Arc<Mutex<Option<JobId>>> {
    let answer = Arc::new(Mutex::new(None));
    let id = host
        .call(&mut NoIo, |host| host.create_job(name, JobType::Download))
        .expect("create_job");
    let sent = Arc::clone(&answer);
    host.reply(move || *sent.lock().unwrap() = Some(id));
    answer
}

#[test]
fn a_command_is_answered_only_once_its_record_is_committed() {
    let (mut host, batches) = host();
    let answer = create_job(&mut host, "one");
    assert_eq!(*answer.lock().unwrap(), None, "answered before the commit");
    assert!(
        batches.lock().unwrap().is_empty(),
        "written before the flush"
    );
    host.flush();
    let id = answer.lock().unwrap().expect("answered after the commit");
    assert_eq!(*batches.lock().unwrap(), vec![1]);
    let stored: Vec<JobId> = host
        .store
        .load_all()
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(stored, vec![id]);
}

#[test]
fn commands_handled_in_one_batch_share_one_store_commit() {
    let (mut host, batches) = host();
    let answers: Vec<_> = (0..10)
        .map(|i| create_job(&mut host, &format!("job {i}")))
        .collect();
    host.flush();
    assert!(answers.iter().all(|a| a.lock().unwrap().is_some()));
    assert_eq!(
        *batches.lock().unwrap(),
        vec![10],
        "one commit with ten records"
    );
}

#[test]
fn a_job_changed_twice_in_a_batch_is_written_once_as_it_ended() {
    let (mut host, batches) = host();
    let answer = create_job(&mut host, "first name");
    host.flush();
    let id = answer.lock().unwrap().unwrap();
    batches.lock().unwrap().clear();
    for name in ["second name", "third name"] {
        host.call(&mut NoIo, |host| {
            let mut job = host.engine_mut().job_mut(id).unwrap();
            job.set_display_name(name).unwrap();
        });
    }
    host.flush();
    assert_eq!(*batches.lock().unwrap(), vec![1]);
    let records = host.store.load_all().unwrap();
    let record = records[0].record.as_ref().unwrap();
    assert_eq!(record.display_name(), "third name");
}

#[test]
fn a_host_dropped_with_gathered_writes_commits_them_and_answers() {
    let (mut host, batches) = host();
    let answer = create_job(&mut host, "late");
    drop(host);
    assert!(answer.lock().unwrap().is_some(), "the held answer was sent");
    assert_eq!(*batches.lock().unwrap(), vec![1]);
}
