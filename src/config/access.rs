//! What authorization needs from the configuration: the organization (SCPs and RCPs per level),
//! resources (resource policies, tags, owners) and how requests map to IAM actions.

use std::sync::Arc;

use crate::authz::mapping::RestRoutes;
use crate::policy::{Cidr, PolicySet, Wildcard};

/// Organization, resources, mappings, trusted proxies.
#[derive(Debug, Default)]
pub struct Access {
    /// The organization, if configured.
    pub organization: Option<Organization>,
    /// Resources with policies, tags or owners, in config order (the first match wins).
    pub resources: Vec<ResourceEntry>,
    /// Request mappings by SigV4 scope service.
    pub mappings: super::FastMap<String, Mapping>,
    /// Peers whose `X-Forwarded-For` is trusted for `aws:SourceIp`.
    pub trusted_proxies: Vec<Cidr>,
}

impl Access {
    /// The mapping for a scope service.
    pub fn mapping(&self, service: &str) -> Option<&Mapping> {
        self.mappings.get(service)
    }

    /// The first configured resource whose patterns match `arn`.
    pub fn resource(&self, arn: &str) -> Option<&ResourceEntry> {
        self.resources
            .iter()
            .find(|r| r.patterns.iter().any(|p| p.matches(arn)))
    }
}

/// An AWS Organizations structure.
#[derive(Debug)]
pub struct Organization {
    /// `o-…`.
    pub id: String,
    /// `r-…`.
    pub root_id: String,
    /// The management account (SCPs don't apply to it, RCPs don't apply to its resources).
    pub management_account: Option<String>,
    pub(crate) paths: super::FastMap<String, OrgPath>,
}

impl Organization {
    /// The account's place in the organization.
    pub fn path(&self, account: &str) -> Option<&OrgPath> {
        self.paths.get(account)
    }

    /// Whether `account` is the management account.
    pub fn is_management(&self, account: &str) -> bool {
        self.management_account.as_deref() == Some(account)
    }
}

/// The policies on an account's path, root → OUs → account.
#[derive(Debug)]
pub struct OrgPath {
    /// SCP levels (each needs an Allow).
    pub scps: Vec<PolicySet>,
    /// RCP levels (RCPFullAWSAccess included at each level).
    pub rcps: Vec<PolicySet>,
    /// `aws:PrincipalOrgPaths` / `aws:ResourceOrgPaths` value, `o-…/r-…/ou-…/`.
    pub org_path: String,
}

/// A resource (or family of resources) with a policy, tags or an owner.
#[derive(Debug)]
pub struct ResourceEntry {
    /// ARN patterns (`*`, `?`) the entry applies to.
    pub patterns: Vec<Wildcard>,
    /// The owning account.
    pub account: String,
    /// The resource-based policy, if any.
    pub policy: Option<Arc<PolicySet>>,
    /// Tags (`aws:ResourceTag/*`).
    pub tags: Vec<(String, String)>,
}

/// How requests signed for one service map to IAM actions.
#[derive(Debug)]
pub enum MappingMode {
    /// Route templates (internal REST APIs).
    Rest(RestRoutes),
    /// `X-Amz-Target` (awsJson services).
    AwsJson {
        /// IAM service prefix of the actions.
        iam_service: String,
        /// Resource for every action (a template with `${region}`/`${account}`, or `*`).
        resource: String,
    },
    /// `Action=` (awsQuery services).
    AwsQuery {
        /// IAM service prefix of the actions.
        iam_service: String,
        /// Resource for every action.
        resource: String,
    },
    /// The S3 REST operation table.
    S3 {
        /// Host suffixes for virtual-hosted-style buckets.
        virtual_host_suffixes: Vec<String>,
    },
}

/// A mapping for one scope service.
#[derive(Debug)]
pub struct Mapping {
    /// The SigV4 scope service it handles.
    pub service: String,
    /// How to read requests.
    pub mode: MappingMode,
    /// The account that owns the resources (`${account}`, default resource owner).
    pub account: String,
    /// Let authenticated requests that match no route through (default: deny them).
    pub allow_unmatched: bool,
}
