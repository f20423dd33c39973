//! The blocking Manager's life cycle. Transfers are covered by the cross-driver conformance suite.

use backhaul_blocking::{DriverConfig, DriverError, Manager};

fn config() -> DriverConfig {
    DriverConfig {
        use_system_roots: false,
        ..DriverConfig::new()
    }
}

#[test]
fn a_missing_ca_file_stops_the_manager_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.pem");
    let err = Manager::new(DriverConfig {
        ca_files: vec![path.clone()],
        ..config()
    })
    .unwrap_err();
    assert!(
        matches!(&err, DriverError::CaFile { path: p, .. } if *p == path),
        "{err:?}"
    );
}

#[test]
fn after_shutdown_every_clone_reports_the_engine_stopped() {
    let manager = Manager::new(config()).unwrap();
    let other = manager.clone();
    let events = other.subscribe();
    manager.shutdown();
    let err = other.jobs().unwrap_err();
    assert_eq!(err.code().0, 0x8000_FFFF, "{err}");
    assert!(matches!(other.call(|_| ()), Err(DriverError::Stopped)));
    drop(other);
    assert!(
        events.recv().is_err(),
        "the event stream ends with the engine"
    );
}

#[test]
fn dropping_the_last_manager_stops_the_engine_thread() {
    let manager = Manager::new(config()).unwrap();
    let events = manager.subscribe();
    drop(manager);
    let ended = events.recv_timeout(std::time::Duration::from_secs(10));
    assert_eq!(ended, Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
}

#[test]
fn events_from_before_the_first_subscription_are_delivered_to_it_once() {
    use backhaul_core::{JobEvent, JobState, JobType};
    let manager = Manager::new(config()).unwrap();
    let job = manager.create_job("early", JobType::Download).unwrap();
    manager.cancel(job).unwrap(); // StateChanged with nobody subscribed
    let first = manager.subscribe();
    let got = first
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(
        matches!(got, JobEvent::StateChanged { job: j, to: JobState::Cancelled, .. } if j == job),
        "{got:?}"
    );
    let second = manager.subscribe();
    assert!(second.try_recv().is_err(), "the backlog is delivered once");
    manager.shutdown();
}
