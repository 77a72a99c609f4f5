//! Compile a policy and evaluate a request against it as identity, boundary, session, resource
//! policy and SCP/RCP level, with arbitrary actions, resources and context keys. Must never panic.
//!
//! Input: one control byte (principal kind, cross-account, boundary), then NUL-separated fields:
//! policy JSON | action | resource | key | value | key | value … A value containing `\x01` is set
//! as a multivalued key (split on `\x01`; a lone `\x01` is present-but-empty).
#![no_main]

use std::borrow::Cow;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tollgate::policy::{
    evaluate, matching_statements, parse_policy, CompiledPolicy, Policies, PolicySet, PolicyType,
    PrincipalInfo, PrincipalType, RequestContext,
};

fn principal(control: u8) -> PrincipalInfo {
    let mut p = PrincipalInfo::user("arn:aws:iam::111122223333:user/alice", "AIDAEXAMPLE");
    p.tags.push(("team".into(), "blue".into()));
    p.tags.push(("Project".into(), "atlas".into()));
    p.has_boundary = control & 0x10 != 0;
    match control & 0x07 {
        1 => {
            p.kind = PrincipalType::AssumedRole;
            p.arn = "arn:aws:sts::111122223333:assumed-role/dev/alice".into();
            p.role_arn = Some("arn:aws:iam::111122223333:role/dev".into());
            p.user_id = "AROAEXAMPLE:alice".into();
            p.user_name = None;
        }
        2 => {
            p.kind = PrincipalType::Account;
            p.arn = "arn:aws:iam::111122223333:root".into();
            p.user_id = "111122223333".into();
            p.user_name = None;
        }
        3 => {
            p.kind = PrincipalType::FederatedUser;
            p.arn = "arn:aws:sts::111122223333:federated-user/alice".into();
            p.user_id = "111122223333:alice".into();
            p.user_name = None;
        }
        4 => {
            p.kind = PrincipalType::Anonymous;
            p.arn = String::new();
            p.account = String::new();
            p.user_id = "anonymous".into();
            p.user_name = None;
            p.tags.clear();
        }
        5 => {
            p.kind = PrincipalType::Service;
            p.arn = String::new();
            p.account = String::new();
            p.user_id = "s3.amazonaws.com".into();
            p.user_name = None;
            p.service = Some("s3.amazonaws.com".into());
            p.tags.clear();
        }
        6 => {
            p.kind = PrincipalType::AssumedRole;
            p.arn = "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForX/x".into();
            p.role_arn =
                Some("arn:aws:iam::111122223333:role/aws-service-role/x.amazonaws.com/AWSServiceRoleForX".into());
            p.user_id = "AROAEXAMPLE2:x".into();
            p.user_name = None;
        }
        _ => {}
    }
    p
}

fn compile(text: &str, ty: PolicyType) -> Option<PolicySet> {
    let parsed = parse_policy(text, ty);
    let doc = parsed.document.or(parsed.lenient)?;
    Some(PolicySet::new(vec![Arc::new(CompiledPolicy::compile(
        "fuzz", ty, &doc,
    ))]))
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut fields = rest.split(|&b| b == 0).map(String::from_utf8_lossy);
    let policy = fields.next().unwrap_or_default();
    let action = fields.next().unwrap_or_default();
    let resource = fields.next().unwrap_or_default();
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = {
        let mut v = Vec::new();
        while let (Some(k), Some(val)) = (fields.next(), fields.next()) {
            if v.len() >= 16 {
                break;
            }
            v.push((k, val));
        }
        v
    };

    let identity = compile(&policy, PolicyType::Identity);
    let resource_set = compile(&policy, PolicyType::Resource);
    let scp = compile(&policy, PolicyType::Scp);
    if identity.is_none() && resource_set.is_none() && scp.is_none() {
        return;
    }

    let p = principal(control);
    let mut ctx = RequestContext::new(&p, action.as_ref(), resource.as_ref());
    if control & 0x08 != 0 {
        ctx = ctx.with_resource_account("444455556666");
    }
    for (k, v) in &pairs {
        if v.contains('\u{1}') {
            let values = v
                .split('\u{1}')
                .filter(|s| !s.is_empty())
                .map(|s| Cow::Owned(s.to_owned()))
                .collect();
            ctx.set_multi(k.as_ref().to_owned(), values);
        } else {
            ctx.set(k.as_ref().to_owned(), v.as_ref().to_owned());
        }
    }
    let _ = ctx.keys().count();

    let scps: Vec<PolicySet> = scp.iter().cloned().collect();
    let all = Policies {
        identity: identity.as_ref(),
        boundary: identity.as_ref(),
        session: identity.as_ref(),
        resource: resource_set.as_ref(),
        scps: &scps,
        rcps: &scps,
        principal_in_management_account: control & 0x20 != 0,
        resource_in_management_account: control & 0x40 != 0,
    };
    let _ = evaluate(&all, &ctx);
    let only_identity = Policies {
        identity: identity.as_ref(),
        ..Policies::default()
    };
    let _ = evaluate(&only_identity, &ctx);
    let only_resource = Policies {
        resource: resource_set.as_ref(),
        ..Policies::default()
    };
    let d = evaluate(&only_resource, &ctx);
    let _ = d.outcome.as_str();
    for set in identity.iter().chain(resource_set.iter()) {
        let _ = matching_statements(set, &ctx);
    }
});
