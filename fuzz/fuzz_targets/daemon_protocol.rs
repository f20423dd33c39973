//! Fuzz target: the body is `backhaul_tests::fuzzing::daemon_protocol` (it also runs under `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backhaul_tests::fuzzing::daemon_protocol(data));
