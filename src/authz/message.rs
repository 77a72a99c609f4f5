//! AWS's `AccessDenied` message wording ("User: ARN is not authorized to perform: ACTION on
//! resource: ARN because …"), from the IAM User Guide's "Troubleshoot access denied error
//! messages".

use crate::policy::{Decision, Outcome, PolicyType};

fn policy_phrase(t: PolicyType) -> &'static str {
    match t {
        PolicyType::Identity => "identity-based policy",
        PolicyType::Resource | PolicyType::Trust => "resource-based policy",
        PolicyType::Boundary => "permissions boundary",
        PolicyType::Session => "session policy",
        PolicyType::Scp => "service control policy",
        PolicyType::Rcp => "resource control policy",
    }
}

/// The message of a denied decision, e.g. `User: arn:aws:iam::123456789012:user/bob is not
/// authorized to perform: s3:PutObject on resource: arn:aws:s3:::b/k because no identity-based
/// policy allows the s3:PutObject action`.
pub fn access_denied_message(
    principal_arn: &str,
    action: &str,
    resource: &str,
    decision: &Decision,
) -> String {
    let head = format!(
        "User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
    );
    match decision.outcome {
        Outcome::ExplicitDeny => {
            let t = decision
                .statement
                .as_ref()
                .map_or(PolicyType::Identity, |s| s.policy_type);
            format!("{head} with an explicit deny in a {}", policy_phrase(t))
        }
        Outcome::ImplicitDeny => {
            let t = decision.denied_by.unwrap_or(PolicyType::Identity);
            format!(
                "{head} because no {} allows the {action} action",
                policy_phrase(t)
            )
        }
        Outcome::Allowed => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::StatementRef;

    #[test]
    fn wording_follows_aws() {
        let implicit = Decision {
            outcome: Outcome::ImplicitDeny,
            statement: None,
            denied_by: Some(PolicyType::Identity),
        };
        assert_eq!(
            access_denied_message("arn:aws:iam::123456789012:user/bob", "s3:PutObject", "arn:aws:s3:::b/k", &implicit),
            "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::b/k because no identity-based policy allows the s3:PutObject action"
        );
        let explicit = Decision {
            outcome: Outcome::ExplicitDeny,
            statement: Some(StatementRef {
                policy: "scp".into(),
                policy_type: PolicyType::Scp,
                index: 0,
                sid: None,
            }),
            denied_by: None,
        };
        assert!(access_denied_message("u", "a:b", "*", &explicit)
            .ends_with("with an explicit deny in a service control policy"));
    }
}
