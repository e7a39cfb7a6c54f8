//! The marketplace's integration tests, one binary (one link of sled, OpenDP and the
//! prover): the store on disk, the HTTP API on 127.0.0.1, API keys, DP releases, study
//! bundles, the OpenAPI description, batched proof verification and reliability under bad
//! input, load and crashes.

mod admin;
mod batching;
mod bundle;
mod circuits;
mod cohort;
mod common;
mod connections;
mod http;
mod idempotency;
mod openapi;
mod releases;
mod reliability;
mod store;
mod trust;
