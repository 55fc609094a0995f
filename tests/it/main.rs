//! The integration tests, as one binary: each module is one area of the gateway (its file
//! says which), and `common` holds the helpers they share. One binary links the crate and its
//! dependencies once instead of once per area.
//!
//! `cargo test --test it` runs them all; `cargo test --test it abuse::` one area.

mod common;

mod abuse;
mod authz;
mod cli;
mod config;
mod conformance;
mod console;
mod crash;
mod dedup;
mod delivery;
mod doctor;
mod errors;
mod forward;
mod fuzz_replay;
mod interop;
mod journal;
mod limits;
mod observability;
mod properties;
mod redis;
mod redis_cluster;
mod redis_failover;
mod redis_queue;
mod redis_store;
mod reliability;
mod reload;
mod schema;
mod schemes;
mod secrets;
mod server;
mod sidecar;
mod store_redb;
mod tls;
mod tracing;
mod vectors_core;
