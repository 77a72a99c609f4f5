//! The built-in demo: `config/demo.toml`, its secrets, its policies and its OIDC key set,
//! embedded in the binary.
//!
//! The demo secrets (access keys and the session-token key) are embedded on purpose: they are
//! public, printed at startup, and the demo listens on loopback only.

/// The name the demo config goes by in findings.
pub(crate) const CONFIG_NAME: &str = "demo.toml";

/// `config/demo.toml`.
pub(crate) const CONFIG: &str = include_str!("../../config/demo.toml");

/// Files the demo config refers to, by the path it uses.
pub(crate) const FILES: &[(&str, &str)] = &[
    (
        "demo.secrets.toml",
        include_str!("../../config/demo.secrets.toml"),
    ),
    (
        "policies/demo-administrator-access.json",
        include_str!("../../config/policies/demo-administrator-access.json"),
    ),
    (
        "policies/demo-read-only-http.json",
        include_str!("../../config/policies/demo-read-only-http.json"),
    ),
    (
        "policies/demo-deployer-access.json",
        include_str!("../../config/policies/demo-deployer-access.json"),
    ),
    (
        "policies/demo-deployer-trust.json",
        include_str!("../../config/policies/demo-deployer-trust.json"),
    ),
    (
        "policies/demo-web-app-trust.json",
        include_str!("../../config/policies/demo-web-app-trust.json"),
    ),
    (
        "demo-jwks.json",
        include_str!("../../config/demo-jwks.json"),
    ),
];
