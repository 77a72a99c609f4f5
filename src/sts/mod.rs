//! Tollgate's Security Token Service: the AWS STS Query API, sealed session tokens and web
//! identity (OIDC) federation.

pub mod oidc;
pub mod ops;
pub mod params;
pub mod service;
pub mod session;
pub mod token;
pub mod xml;

/// The `aws:FederatedProvider` value (and trust-policy `Federated` principal) of the identity
/// provider named `provider`: from its configured account when it is configured, else from
/// `fallback_account` (see [`oidc::OidcProvider::federated_principal`] for the naming rule).
pub fn federated_provider(
    snapshot: &crate::config::Snapshot,
    provider: &str,
    fallback_account: &str,
) -> String {
    let configured = snapshot.sts.as_ref().and_then(|s| {
        s.oidc_providers
            .iter()
            .find(|p| p.provider.provider() == provider)
    });
    match configured {
        Some(p) => p.federated_principal(),
        None => oidc::federated_principal(provider, fallback_account),
    }
}
