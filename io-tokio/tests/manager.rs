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

#[tokio::test]
async fn events_from_before_the_first_subscription_are_delivered_to_it_once() {
    use backhaul_core::{JobEvent, JobState, JobType};
    let manager = Manager::new(config()).unwrap();
    let job = manager
        .create_job("early", JobType::Download)
        .await
        .unwrap();
    manager.cancel(job).await.unwrap(); // StateChanged with nobody subscribed
    let mut first = manager.subscribe();
    let got = first.recv().await.unwrap();
    assert!(
        matches!(got, JobEvent::StateChanged { job: j, to: JobState::Cancelled, .. } if j == job),
        "{got:?}"
    );
    let mut second = manager.subscribe();
    assert!(second.try_recv().is_err(), "the backlog is delivered once");
    manager.shutdown().await;
}
