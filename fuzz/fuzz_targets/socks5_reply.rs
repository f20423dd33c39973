//! Fuzz target: the body is `backhaul_tests::fuzzing::socks5_reply` (it also runs under `cargo test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backhaul_tests::fuzzing::socks5_reply(data));
