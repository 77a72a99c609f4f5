//! The integration-test binary: one module per area, each in `tests/it/NAME.rs`.
//!
//! Plain `cargo test` runs the hermetic tests; the interop tests (real AWS
//! clients, see `tests/it/interop.rs`) are `#[ignore]`d and run by the README
//! test command, `tests/run.sh`, with `--include-ignored`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

#[path = "it/support.rs"]
mod support;

/// A steady load generator for the operational tests.
#[path = "it/load.rs"]
mod load;

#[path = "it/interop.rs"]
mod interop;

#[path = "it/sigv4.rs"]
mod sigv4;

#[path = "it/proxy.rs"]
mod proxy;

#[path = "it/policy.rs"]
mod policy;

#[path = "it/simulate.rs"]
mod simulate;

#[path = "it/authz.rs"]
mod authz;

#[path = "it/chunked.rs"]
mod chunked;

#[path = "it/moto.rs"]
mod moto;

#[path = "it/import.rs"]
mod import;

#[path = "it/sts.rs"]
mod sts;

#[path = "it/audit.rs"]
mod audit;

#[path = "it/audit_s3.rs"]
mod audit_s3;

#[path = "it/audit_files.rs"]
mod audit_files;

#[path = "it/extauthz.rs"]
mod extauthz;

#[path = "it/envoy.rs"]
mod envoy;

#[path = "it/reload.rs"]
mod reload;

#[path = "it/logs.rs"]
mod logs;

#[path = "it/limits.rs"]
mod limits;

#[path = "it/tls.rs"]
mod tls;

#[path = "it/deploy.rs"]
mod deploy;
