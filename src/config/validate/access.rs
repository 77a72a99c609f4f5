//! Validation and compilation of `[organization]`, `[[resources]]`, `[[mappings]]` and
//! `auth.trusted_proxies`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Check;
use crate::authz::mapping::{RestRoutes, Route};
use crate::config::schema::{RawMapping, RawOrganization, RawResource};
use crate::config::{Access, Account, Mapping, MappingMode, OrgPath, Organization, ResourceEntry};
use crate::policy::{Cidr, CompiledPolicy, PolicySet, PolicyType, Wildcard};

/// An organizational unit: its parent (`None`: the root), SCPs and RCPs.
type UnitLevel = (
    Option<String>,
    Vec<Arc<CompiledPolicy>>,
    Vec<Arc<CompiledPolicy>>,
);

/// AWS's FullAWSAccess SCP, attached wherever a config names no SCP.
const FULL_AWS_ACCESS: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
/// AWS's RCPFullAWSAccess, attached to every root, OU and account and never detachable.
const RCP_FULL_AWS_ACCESS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;

fn builtin(name: &str, ty: PolicyType, text: &str) -> Option<Arc<CompiledPolicy>> {
    CompiledPolicy::from_json(name, ty, text).ok().map(Arc::new)
}

impl Check<'_> {
    pub(super) fn access(
        &mut self,
        org: Option<RawOrganization>,
        resources: Vec<RawResource>,
        mappings: Vec<RawMapping>,
        accounts: &[Account],
        trusted_proxies: Vec<String>,
    ) -> Access {
        let organization = org.and_then(|o| self.organization(o, accounts));
        let resources = self.resources(resources);
        let mappings = self.mappings(mappings);
        let trusted_proxies = trusted_proxies
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let c = Cidr::parse(p);
                if c.is_none() {
                    self.at(
                        format!("auth.trusted_proxies[{i}]"),
                        format!("`{p}` is not an IP address or CIDR"),
                    );
                }
                c
            })
            .collect();
        Access {
            organization,
            resources,
            mappings: mappings.into_iter().collect(),
            trusted_proxies,
        }
    }

    fn organization(&mut self, o: RawOrganization, accounts: &[Account]) -> Option<Organization> {
        let key = "organization";
        let valid_id = |s: &str, prefix: &str| {
            s.strip_prefix(prefix).is_some_and(|r| {
                !r.is_empty()
                    && r.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
        };
        if !valid_id(&o.id, "o-") {
            self.at(
                format!("{key}.id"),
                format!("`{}` is not an organization id (o-…)", o.id),
            );
        }
        let root_id = o.root_id.clone().unwrap_or_else(|| "r-0000".to_owned());
        if !valid_id(&root_id, "r-") {
            self.at(
                format!("{key}.root_id"),
                format!("`{root_id}` is not a root id (r-…)"),
            );
        }
        if let Some(m) = &o.management_account {
            if !accounts.iter().any(|a| &a.id == m) {
                self.at(
                    format!("{key}.management_account"),
                    format!("`{m}` is not a configured account"),
                );
            }
        }
        // Policies by name.
        let mut scps: HashMap<String, Arc<CompiledPolicy>> = HashMap::new();
        let mut rcps: HashMap<String, Arc<CompiledPolicy>> = HashMap::new();
        for (i, p) in o.policies.into_iter().enumerate() {
            let pk = format!("{key}.policies[{i}]");
            let ty = match p.kind.as_str() {
                "scp" => PolicyType::Scp,
                "rcp" => PolicyType::Rcp,
                other => {
                    self.at(
                        format!("{pk}.type"),
                        format!("`{other}` is not a policy type: use \"scp\" or \"rcp\""),
                    );
                    continue;
                }
            };
            let doc = match (p.file, p.document) {
                (Some(f), None) => self.document_file(&format!("{pk}.file"), &f, ty),
                (None, Some(t)) => self.document_text(&format!("{pk}.document"), &t, ty),
                _ => {
                    self.at(&pk, "needs exactly one of `file` or `document`");
                    None
                }
            };
            let Some(doc) = doc else { continue };
            let Some(compiled) = crate::policy::parse_policy_value(&doc, ty)
                .document
                .map(|d| Arc::new(CompiledPolicy::compile(p.name.clone(), ty, &d)))
            else {
                continue;
            };
            let map = if ty == PolicyType::Scp {
                &mut scps
            } else {
                &mut rcps
            };
            if map.insert(p.name.clone(), compiled).is_some() {
                self.at(
                    format!("{pk}.name"),
                    format!("duplicate policy name `{}`", p.name),
                );
            }
        }
        let full_scp = scps
            .get("FullAWSAccess")
            .cloned()
            .or_else(|| builtin("FullAWSAccess", PolicyType::Scp, FULL_AWS_ACCESS));
        let full_rcp = builtin("RCPFullAWSAccess", PolicyType::Rcp, RCP_FULL_AWS_ACCESS);
        let resolve = |check: &mut Self,
                       at: &str,
                       names: Option<&Vec<String>>,
                       ty: PolicyType|
         -> Vec<Arc<CompiledPolicy>> {
            let map = if ty == PolicyType::Scp { &scps } else { &rcps };
            let mut out = Vec::new();
            match names {
                None if ty == PolicyType::Scp => out.extend(full_scp.clone()),
                None => {}
                Some(list) => {
                    for n in list {
                        match map.get(n) {
                            Some(p) => out.push(p.clone()),
                            None if ty == PolicyType::Scp && n == "FullAWSAccess" => {
                                out.extend(full_scp.clone())
                            }
                            None => check.at(
                                at,
                                format!(
                                    "`{n}` is not an {} defined in organization.policies",
                                    if ty == PolicyType::Scp { "SCP" } else { "RCP" }
                                ),
                            ),
                        }
                    }
                }
            }
            if ty == PolicyType::Rcp {
                out.extend(full_rcp.clone());
            }
            out
        };
        // Levels: the root, each OU, each account.
        let root_scps = resolve(
            self,
            &format!("{key}.scps"),
            o.scps.as_ref(),
            PolicyType::Scp,
        );
        let root_rcps = resolve(self, &format!("{key}.rcps"), Some(&o.rcps), PolicyType::Rcp);
        let mut units: HashMap<String, UnitLevel> = HashMap::new();
        for (i, u) in o.units.iter().enumerate() {
            let uk = format!("{key}.units[{i}]");
            if u.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
                self.at(format!("{uk}.name"), "must not be empty");
            }
            if !valid_id(&u.id, "ou-") {
                self.at(
                    format!("{uk}.id"),
                    format!("`{}` is not an organizational unit id (ou-…)", u.id),
                );
            }
            let s = resolve(
                self,
                &format!("{uk}.scps"),
                u.scps.as_ref(),
                PolicyType::Scp,
            );
            let r = resolve(self, &format!("{uk}.rcps"), Some(&u.rcps), PolicyType::Rcp);
            let parent = u.parent.clone().filter(|p| p != &root_id && p != "root");
            if units.insert(u.id.clone(), (parent, s, r)).is_some() {
                self.at(
                    format!("{uk}.id"),
                    format!("duplicate organizational unit `{}`", u.id),
                );
            }
        }
        for (i, u) in o.units.iter().enumerate() {
            if let Some(p) = units.get(&u.id).and_then(|x| x.0.clone()) {
                if !units.contains_key(&p) {
                    self.at(
                        format!("{key}.units[{i}].parent"),
                        format!("`{p}` is neither the root nor a configured organizational unit"),
                    );
                }
            }
        }
        let mut paths = HashMap::new();
        for (i, a) in accounts.iter().enumerate() {
            let ak = format!("accounts[{i}]");
            let acct_scps = resolve(
                self,
                &format!("{ak}.scps"),
                a.scps.as_ref(),
                PolicyType::Scp,
            );
            let acct_rcps = resolve(self, &format!("{ak}.rcps"), Some(&a.rcps), PolicyType::Rcp);
            // Walk up from the account's parent to the root.
            let mut chain: Vec<&String> = Vec::new();
            let mut cursor = a
                .parent
                .as_ref()
                .filter(|p| **p != root_id && p.as_str() != "root");
            let mut seen = HashSet::new();
            while let Some(ou) = cursor {
                if !seen.insert(ou.clone()) {
                    self.at(
                        format!("{ak}.parent"),
                        format!("organizational units form a cycle at `{ou}`"),
                    );
                    break;
                }
                match units.get(ou) {
                    Some((parent, _, _)) => {
                        chain.push(ou);
                        cursor = parent.as_ref();
                    }
                    None => {
                        self.at(
                            format!("{ak}.parent"),
                            format!(
                                "`{ou}` is neither the root nor a configured organizational unit"
                            ),
                        );
                        break;
                    }
                }
            }
            chain.reverse();
            let mut scp_levels = vec![PolicySet::new(root_scps.clone())];
            let mut rcp_levels = vec![PolicySet::new(root_rcps.clone())];
            let mut org_path = format!("{}/{}/", o.id, root_id);
            for ou in &chain {
                if let Some((_, s, r)) = units.get(*ou) {
                    scp_levels.push(PolicySet::new(s.clone()));
                    rcp_levels.push(PolicySet::new(r.clone()));
                }
                org_path.push_str(ou);
                org_path.push('/');
            }
            scp_levels.push(PolicySet::new(acct_scps));
            rcp_levels.push(PolicySet::new(acct_rcps));
            paths.insert(
                a.id.clone(),
                OrgPath {
                    scps: scp_levels,
                    rcps: rcp_levels,
                    org_path,
                },
            );
        }
        Some(Organization {
            id: o.id,
            root_id,
            management_account: o.management_account,
            paths: paths.into_iter().collect(),
        })
    }

    fn resources(&mut self, raw: Vec<RawResource>) -> Vec<ResourceEntry> {
        let mut out = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let key = format!("resources[{i}]");
            if r.arns.is_empty() {
                self.at(
                    format!("{key}.arns"),
                    "needs at least one ARN or ARN pattern",
                );
            }
            for (j, a) in r.arns.iter().enumerate() {
                if !a.starts_with("arn:") || a.split(':').count() < 6 {
                    self.at(format!("{key}.arns[{j}]"), format!("`{a}` is not an ARN (arn:partition:service:region:account:resource; `*` and `?` allowed)"));
                }
            }
            let Some(account) = self.account_of(&key, r.account.as_deref()) else {
                continue;
            };
            let doc = match (r.policy_file, r.policy) {
                (Some(f), None) => {
                    self.document_file(&format!("{key}.policy_file"), &f, PolicyType::Resource)
                }
                (None, Some(t)) => {
                    self.document_text(&format!("{key}.policy"), &t, PolicyType::Resource)
                }
                (None, None) => None,
                (Some(_), Some(_)) => {
                    self.at(&key, "give either `policy_file` or `policy`, not both");
                    None
                }
            };
            let id = r.arns.first().cloned().unwrap_or_default();
            let policy = doc
                .and_then(|d| crate::policy::parse_policy_value(&d, PolicyType::Resource).document)
                .map(|d| {
                    Arc::new(PolicySet::new(vec![Arc::new(CompiledPolicy::compile(
                        id.clone(),
                        PolicyType::Resource,
                        &d,
                    ))]))
                });
            let tags = self.tags(&key, r.tags);
            out.push(ResourceEntry {
                patterns: r.arns.iter().map(|a| Wildcard::new(a)).collect(),
                account,
                policy,
                tags,
            });
        }
        out
    }

    fn mappings(&mut self, raw: Vec<RawMapping>) -> HashMap<String, Mapping> {
        let mut out = HashMap::new();
        for (i, m) in raw.into_iter().enumerate() {
            let key = format!("mappings[{i}]");
            let Some(account) = self.account_of(&key, m.account.as_deref()) else {
                continue;
            };
            let iam_service = m.iam_service.clone().unwrap_or_else(|| m.service.clone());
            let resource = m.resource.clone().unwrap_or_else(|| "*".to_owned());
            let allow_unmatched = match m.unmatched.as_deref() {
                None | Some("deny") => false,
                Some("authenticated") => true,
                Some(other) => {
                    self.at(
                        format!("{key}.unmatched"),
                        format!("`{other}` must be \"deny\" or \"authenticated\""),
                    );
                    false
                }
            };
            if m.mode != "rest" && !m.routes.is_empty() {
                self.at(
                    format!("{key}.routes"),
                    format!(
                        "routes are only used with mode = \"rest\", not `{}`",
                        m.mode
                    ),
                );
            }
            let mode = match m.mode.as_str() {
                "rest" => {
                    let mut routes = Vec::new();
                    for (j, r) in m.routes.iter().enumerate() {
                        let keys: Vec<(String, String)> =
                            r.keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        match Route::new(
                            r.method.as_deref().unwrap_or("*"),
                            &r.path,
                            &r.action,
                            r.resource.as_deref().unwrap_or("*"),
                            &keys,
                        ) {
                            Ok(route) => routes.push(route),
                            Err(e) => self.at(format!("{key}.routes[{j}]"), e.0),
                        }
                        if !r.action.contains(':') {
                            self.at(
                                format!("{key}.routes[{j}].action"),
                                format!("`{}` must be service:Action", r.action),
                            );
                        }
                    }
                    if routes.is_empty() && !allow_unmatched {
                        self.warnings_at(
                            &key,
                            "a rest mapping without routes denies every request",
                        );
                    }
                    MappingMode::Rest(RestRoutes::new(routes))
                }
                "aws-json" => MappingMode::AwsJson {
                    iam_service,
                    resource,
                },
                "aws-query" => MappingMode::AwsQuery {
                    iam_service,
                    resource,
                },
                "s3" => MappingMode::S3 {
                    virtual_host_suffixes: m.virtual_host_suffixes.clone(),
                },
                other => {
                    self.at(
                        format!("{key}.mode"),
                        format!(
                            "`{other}` must be \"rest\", \"aws-json\", \"aws-query\" or \"s3\""
                        ),
                    );
                    continue;
                }
            };
            if out
                .insert(
                    m.service.clone(),
                    Mapping {
                        service: m.service.clone(),
                        mode,
                        account,
                        allow_unmatched,
                    },
                )
                .is_some()
            {
                self.at(
                    format!("{key}.service"),
                    format!("a mapping for `{}` is already defined", m.service),
                );
            }
        }
        out
    }

    fn warnings_at(&mut self, key: &str, message: &str) {
        self.warnings.push(crate::config::Finding {
            file: self.origin.label().to_owned(),
            line: None,
            column: None,
            key: Some(key.to_owned()),
            message: message.to_owned(),
        });
    }
}
