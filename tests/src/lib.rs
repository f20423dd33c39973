//! # backhaul-tests
//!
//! backhaul's test harness: a deterministic simulation of the engine ([`sim`]), a loopback
//! HTTP/1.1 (and HTTPS) server scripted per path ([`server`]), a throwaway PKI for it ([`pki`]),
//! reproducible payloads ([`data`]), and the cross-driver conformance suite ([`conformance`])
//! that `tests/conformance.rs` runs on both drivers. For verification: a two-file [`world`] driven
//! by a small operation alphabet with the contract's [`invariants`] checked after every step, a
//! [`reference`](mod@reference) model of the contract to compare it with, a
//! bounded exhaustive [`explore`]r over it, and the bodies of the fuzz targets ([`fuzzing`]).
//! The crash harnesses draw their kill schedules with [`crash`].

pub mod conformance;
pub mod crash;
pub mod data;
pub mod explore;
pub mod fuzzing;
pub mod invariants;
pub mod kerberos_peer;
pub mod ntlm_peer;
pub mod pki;
pub mod reference;
pub mod server;
pub mod sim;
pub mod world;

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
