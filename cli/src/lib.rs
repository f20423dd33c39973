//! The daemon's side of `backhaul`'s socket protocol, as a library: the wire types
//! ([`protocol`]), reading and answering request lines without a socket ([`requests`]), and what
//! each request does to an engine ([`ops`]).
//!
//! The `backhaul` binary (`src/main.rs`) is built on it; it is a library only so that
//! `backhaul-tests` (the `daemon_protocol` fuzz target and its corpus under `cargo test`) can
//! drive the same code with bytes in memory and a plain `Engine`. Everything else of the CLI
//! stays in the binary.

pub mod ops;
pub mod protocol;
pub mod requests;
