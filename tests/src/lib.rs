//! # backhaul-tests
//!
//! backhaul's test harness: a deterministic simulation of the engine ([`sim`]), a loopback
//! HTTP/1.1 (and HTTPS) server scripted per path ([`server`]), a throwaway PKI for it ([`pki`]),
//! reproducible payloads ([`data`]), and the cross-driver conformance suite ([`conformance`])
//! that `tests/conformance.rs` runs on both drivers.

pub mod conformance;
pub mod data;
pub mod ntlm_peer;
pub mod pki;
pub mod server;
pub mod sim;

pub use crate::data::{deterministic_bytes, sha256_hex};
pub use crate::pki::{LeafProblem, TestPki};
pub use crate::server::{
    AuthSpec, Behavior, FileSpec, RecordedRequest, Route, ServerDigestAlgorithm, ServerScheme,
    Step, TestServer,
};

/// The README's Rust examples, compiled by `cargo test --doc` so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
