//! Driver defaults: an owner, a seed from OS entropy, a clock in wall time.

use std::time::Duration;

use backhaul_core::{BitsError, Timestamp};
use backhaul_io::{clock, default_owner, os_seed, DriverConfig, DriverError};

#[test]
fn a_default_config_owns_jobs_as_the_current_uid_and_trusts_system_roots() {
    let config = DriverConfig::default();
    assert!(config.owner.0.starts_with("uid:"), "{}", config.owner);
    assert_eq!(config.owner, default_owner());
    assert!(config.use_system_roots);
    assert!(matches!(config.store, backhaul_io::StoreLocation::Memory));
    assert!(config.ca_files.is_empty());
}

#[test]
fn two_configs_get_different_seeds() {
    assert_ne!(os_seed(), os_seed());
    assert_ne!(
        DriverConfig::new().core.rng_seed,
        DriverConfig::new().core.rng_seed
    );
}

#[test]
fn a_stopped_engine_reads_as_e_unexpected_to_bits_callers() {
    let err = BitsError::from(DriverError::Stopped);
    assert_eq!(err.code().0, 0x8000_FFFF);
    assert_eq!(err.detail(), "the engine loop has stopped");
}

#[test]
fn the_clock_is_wall_time_and_sleeps_are_capped() {
    let now = clock::now();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert!(wall.saturating_sub(now.since_epoch()) < Duration::from_secs(1));
    assert_eq!(clock::sleep_for(Timestamp::EPOCH), Duration::ZERO);
    assert!(clock::is_due(Timestamp::EPOCH));
    assert_eq!(
        clock::sleep_for(now.saturating_add(Duration::from_secs(3600))),
        clock::MAX_SLEEP
    );
    let soon = clock::sleep_for(now.saturating_add(Duration::from_millis(500)));
    assert!(
        soon <= Duration::from_millis(500) && soon > Duration::from_millis(400),
        "{soon:?}"
    );
}
