//! The tokio Manager's life cycle. Transfers are covered by the cross-driver conformance suite.

use backhaul_tokio::{DriverConfig, DriverError, Manager};

fn config() -> DriverConfig {
    DriverConfig {
        use_system_roots: false,
        ..DriverConfig::new()
    }
}

#[test]
fn a_manager_outside_a_runtime_is_refused() {
    assert!(matches!(
        Manager::new(config()),
        Err(DriverError::Runtime(_))
    ));
}

#[tokio::test]
async fn a_missing_ca_file_stops_the_manager_from_starting() {
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

#[tokio::test]
async fn after_shutdown_every_clone_reports_the_engine_stopped() {
    let manager = Manager::new(config()).unwrap();
    let other = manager.clone();
    let mut events = other.subscribe();
    manager.shutdown().await;
    let err = other.jobs().await.unwrap_err();
    assert_eq!(err.code().0, 0x8000_FFFF, "{err}");
    assert!(matches!(
        other.call(|_| ()).await,
        Err(DriverError::Stopped)
    ));
    drop(other);
    assert!(
        events.recv().await.is_err(),
        "the event stream ends with the engine"
    );
}
