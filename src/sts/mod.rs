//! Tollgate's Security Token Service: the AWS STS Query API, sealed session tokens and web
//! identity (OIDC) federation.

pub mod oidc;
pub mod ops;
pub mod params;
pub mod service;
pub mod session;
pub mod token;
pub mod xml;

/// The `aws:FederatedProvider` value (and trust-policy `Federated` principal) of an identity
/// provider: the bare name for the providers AWS names that way, the provider's IAM ARN for every
/// other OIDC provider.
pub fn federated_provider(provider: &str, account: &str) -> String {
    match provider {
        "cognito-identity.amazonaws.com"
        | "accounts.google.com"
        | "graph.facebook.com"
        | "www.amazon.com" => provider.to_owned(),
        _ => format!("arn:aws:iam::{account}:oidc-provider/{provider}"),
    }
}
