//! Tollgate: an authorization sidecar that brings AWS's security model (SigV4, IAM, STS,
//! CloudTrail) to any HTTP service.
//!
//! The user manual is the crate's `README.md`; the design is described in `docs/`.
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod audit;
pub mod authn;
pub mod authz;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod extauthz;
pub mod import;
pub mod net;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod sigv4;
pub mod simulate;
pub mod sts;
pub mod telemetry;
pub mod text;
pub mod time;
pub mod tls;
