//! Policy evaluation cost: Tollgate's compiled, action-indexed IAM engine against `cedar-policy`
//! 4.x (`Authorizer::is_authorized`) on the same workloads, measured in the same run.
//!
//! Workloads (IAM JSON and a hand-written Cedar equivalent of every statement, side by side in
//! [`PRINCIPAL_POLICIES`]):
//!
//! - **(a)** one principal (`user/alice`, tags `team=blue`, `project=atlas`) with 10 identity
//!   policies / 50 statements: guardrail denies (`Bool aws:SecureTransport`, `NotIpAddress
//!   aws:SourceIp`, `StringNotEquals aws:RequestedRegion` on a `NotAction`, `ForAnyValue:
//!   StringEquals aws:TagKeys`, …), allows across s3 / ec2 / lambda / logs / sqs / sns / dynamodb /
//!   secretsmanager / ssm / cloudwatch / xray / sts / ecr / execute-api / kms / athena / glue with
//!   wildcards (`s3:Get*`, `ec2:Describe*`), `${aws:username}` and `${aws:PrincipalTag/team}`
//!   resources and condition values, `StringEquals aws:PrincipalTag/*`, `IpAddress`, `StringLike`,
//!   `ForAllValues`. Requests:
//!   - `get`: `s3:GetObject` on `arn:aws:s3:::atlas-data/reports/2024/q1.csv` from 203.0.113.5
//!     over TLS in us-east-1 — allowed by `AtlasData.AtlasRead` (`s3:Get*` + PrincipalTag +
//!     IpAddress + Bool) after 5 `Deny` and 3 other `Allow` candidates are checked;
//!   - `put`: `s3:PutObject` on `atlas-data/incoming/…` with `aws:TagKeys = [project, owner]` and
//!     SSE `aws:kms` — allowed by `AtlasData.AtlasIncomingWrite` (`ForAllValues` on the tag keys).
//! - **(b)** an "account" policy set of 2,000 policies: the 10 of (a), 10 per-team S3 bucket
//!   policies (`s3:GetObject` on other teams' buckets: candidates that fail on the resource) and
//!   1,980 per-service/per-role policies for 396 in-house services (`svcNNN:GetThingNNN`,
//!   `svcNNN:Describe*`, …; distinct actions, each with a `PrincipalTag/team` condition and some
//!   with `IpAddress` / `Bool`). Request: `get` above.
//!
//! Functions in each `eval_*` group: `tollgate` / `cedar` evaluate a prebuilt request;
//! `tollgate_ctx` builds the `RequestContext` (`RequestContext::new` + `set`s, as the proxy does
//! per request) inside the timed section; `cedar_ctx` builds the `Context` + `Request` (entities —
//! principal, resource, action with its action groups — are prebuilt in both cases).
//!
//! `compile_10k`: `CompiledPolicy::from_json` (parse + validate + compile) + `PolicySet::new` for
//! 10,000 policies: `tollgate_1000x10` is 1,000 principals × the 10 policies of (a) (1,000 sets,
//! 50,000 statements); `tollgate_one_set` is 10,000 per-service policies (the (b) generator) in
//! one set; `cedar_one_set` parses the Cedar equivalent of the latter into one `PolicySet`.
//!
//! ## IAM → Cedar mapping
//!
//! Every IAM statement becomes one Cedar policy (`Allow` → `permit`, `Deny` → `forbid`; Cedar's
//! "forbid wins, default deny" is IAM's identity-policy flow). Entities: `User::"alice"` with
//! attributes `name`, `account` and entity *tags* for the principal tags; the resource is
//! `Resource::"<arn>"` with attribute `arn` (and entity tags for `aws:ResourceTag/*`); the action
//! is `Action::"<service:Action>"`.
//! - `Action` lists → `action in [Action::"…", …]` (or `==`); a wildcard action pattern (`s3:Get*`)
//!   becomes an action *group* entity `Action::"s3:Get*"`, and each concrete action entity gets as
//!   parents every group whose pattern matches it (computed once, as a Cedar deployment would ship
//!   its action hierarchy); `"*"` → an unconstrained `action`; `NotAction` → `unless { action in
//!   [...] || … }`.
//! - `Resource` globs → `resource.arn like "…"` (both `*`s cross `/` and `:`), several → `||`.
//! - Condition keys → context attributes: `aws:SourceIp` → `context.sourceIp` (an `ip`),
//!   `aws:SecureTransport` → `context.secureTransport` (bool), `aws:RequestedRegion` →
//!   `context.requestedRegion`, `aws:TagKeys` → `context.tagKeys` (set), `s3:prefix` →
//!   `context.prefix`, `s3:x-amz-server-side-encryption` → `context.sse`, `s3:x-amz-acl` →
//!   `context.acl`, `ec2:CreateAction` → `context.createAction`, `kms:ViaService` →
//!   `context.viaService`, `cloudwatch:namespace` → `context.namespace`, `dynamodb:LeadingKeys`
//!   → `context.leadingKeys` (set); `aws:PrincipalTag/k` → `principal.getTag("k")`,
//!   `aws:ResourceTag/k` → `resource.getTag("k")`.
//! - Operators: `StringEquals` → `==` / `[…].contains(x)`; `StringNotEquals` → `unless` over the
//!   same; `StringLike` → `like`; `IpAddress` → `isInRange(ip("cidr"))` ORed; `NotIpAddress` →
//!   `unless` of that; `Bool` → `== true/false`; `ForAnyValue:StringEquals` → `containsAny`;
//!   `ForAllValues:StringEquals` → `[…].containsAll(x)`.
//! - IAM's missing-key rules are kept with `has` guards: a positive operator on a missing key is
//!   false, a negated one (and `ForAllValues`) true.
//! - Cedar cannot build strings, so `${aws:username}` / `${aws:PrincipalTag/team}` inside
//!   resource patterns are expanded when converting (these are alice's own policies — what a
//!   Cedar template link would do; this favours Cedar slightly). Variables used as whole condition
//!   values become attribute comparisons (`principal.name`, `principal.getTag("team")`).
//!
//! Before measuring, 30 requests (allows, explicit and implicit denies, missing and multivalued
//! keys) against (a) and the same 30 plus 4 service requests against (b) are evaluated by both
//! engines and must agree, and the measured requests must be allowed by the intended statement.
//!
//! Run: `cargo bench --bench policy`; results in `target/criterion/<group>/<function>/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::borrow::Cow;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, Policy, PolicyId, PolicySet as CedarPolicySet, Request, RestrictedExpression,
};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use tollgate::policy::{
    evaluate, CompiledPolicy, Outcome, Policies, PolicySet, PolicyType, PrincipalInfo,
    RequestContext,
};

const ACCOUNT: &str = "111122223333";
const ALICE_ARN: &str = "arn:aws:iam::111122223333:user/alice";
const ALICE_ID: &str = "AIDAJQABLZS4A3QDU576Q";

/// One IAM statement and its Cedar translation.
struct Stmt {
    iam: &'static str,
    cedar: &'static str,
}

/// One policy of workload (a).
struct Pol {
    name: &'static str,
    stmts: [Stmt; 5],
}

const PRINCIPAL_POLICIES: [Pol; 10] = [
    Pol {
        name: "Guardrails",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"DenyInsecureTransport","Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
                cedar: r#"forbid(principal, action, resource) when { context has secureTransport && context.secureTransport == false };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyOutsideCorpNetwork","Effect":"Deny","Action":["s3:*","dynamodb:*","secretsmanager:*"],"Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["203.0.113.0/24","198.51.100.0/24"]}}}"#,
                cedar: r#"forbid(principal, action in [Action::"s3:*", Action::"dynamodb:*", Action::"secretsmanager:*"], resource) unless { context has sourceIp && (context.sourceIp.isInRange(ip("203.0.113.0/24")) || context.sourceIp.isInRange(ip("198.51.100.0/24"))) };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyOutsideApprovedRegions","Effect":"Deny","NotAction":["iam:*","sts:*","cloudfront:*","route53:*","support:*"],"Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":["us-east-1","eu-west-1"]}}}"#,
                cedar: r#"forbid(principal, action, resource) unless { action in [Action::"iam:*", Action::"sts:*", Action::"cloudfront:*", Action::"route53:*", Action::"support:*"] || (context has requestedRegion && ["us-east-1", "eu-west-1"].contains(context.requestedRegion)) };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyUserManagement","Effect":"Deny","Action":["iam:CreateUser","iam:DeleteUser","iam:AttachUserPolicy","iam:PutUserPolicy"],"Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalTag/role":"admin"}}}"#,
                cedar: r#"forbid(principal, action in [Action::"iam:CreateUser", Action::"iam:DeleteUser", Action::"iam:AttachUserPolicy", Action::"iam:PutUserPolicy"], resource) unless { principal.hasTag("role") && principal.getTag("role") == "admin" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyBackupDeletion","Effect":"Deny","Action":["s3:DeleteObject","s3:DeleteObjectVersion","s3:PutLifecycleConfiguration"],"Resource":["arn:aws:s3:::*-backups","arn:aws:s3:::*-backups/*"]}"#,
                cedar: r#"forbid(principal, action in [Action::"s3:DeleteObject", Action::"s3:DeleteObjectVersion", Action::"s3:PutLifecycleConfiguration"], resource) when { resource.arn like "arn:aws:s3:::*-backups" || resource.arn like "arn:aws:s3:::*-backups/*" };"#,
            },
        ],
    },
    Pol {
        name: "S3Guardrails",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"DenyRestrictedTagKeys","Effect":"Deny","Action":["s3:PutObject","s3:PutObjectTagging","ec2:CreateTags","ec2:RunInstances"],"Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["restricted","security-level"]}}}"#,
                cedar: r#"forbid(principal, action in [Action::"s3:PutObject", Action::"s3:PutObjectTagging", Action::"ec2:CreateTags", Action::"ec2:RunInstances"], resource) when { context has tagKeys && context.tagKeys.containsAny(["restricted", "security-level"]) };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyUnencryptedUploads","Effect":"Deny","Action":"s3:PutObject","Resource":"*","Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":["aws:kms","AES256"]}}}"#,
                cedar: r#"forbid(principal, action == Action::"s3:PutObject", resource) unless { context has sse && ["aws:kms", "AES256"].contains(context.sse) };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyPublicAcls","Effect":"Deny","Action":["s3:PutObjectAcl","s3:PutBucketAcl","s3:PutObject"],"Resource":"*","Condition":{"StringEquals":{"s3:x-amz-acl":["public-read","public-read-write","authenticated-read"]}}}"#,
                cedar: r#"forbid(principal, action in [Action::"s3:PutObjectAcl", Action::"s3:PutBucketAcl", Action::"s3:PutObject"], resource) when { context has acl && ["public-read", "public-read-write", "authenticated-read"].contains(context.acl) };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyBucketPolicyChanges","Effect":"Deny","Action":["s3:PutBucketPolicy","s3:DeleteBucketPolicy","s3:PutBucketPublicAccessBlock"],"Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalTag/role":"admin"}}}"#,
                cedar: r#"forbid(principal, action in [Action::"s3:PutBucketPolicy", Action::"s3:DeleteBucketPolicy", Action::"s3:PutBucketPublicAccessBlock"], resource) unless { principal.hasTag("role") && principal.getTag("role") == "admin" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyRestrictedPrefixes","Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::*/restricted/*","Condition":{"StringNotEquals":{"aws:PrincipalTag/clearance":["secret","top-secret"]}}}"#,
                cedar: r#"forbid(principal, action in [Action::"s3:*"], resource) when { resource.arn like "arn:aws:s3:::*/restricted/*" } unless { principal.hasTag("clearance") && ["secret", "top-secret"].contains(principal.getTag("clearance")) };"#,
            },
        ],
    },
    Pol {
        name: "HomeDirectories",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"ListOwnHome","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::corp-home","Condition":{"StringLike":{"s3:prefix":["home/${aws:username}/*","home/${aws:username}"]}}}"#,
                cedar: r#"permit(principal, action == Action::"s3:ListBucket", resource) when { resource.arn == "arn:aws:s3:::corp-home" && context has prefix && (context.prefix like "home/alice/*" || context.prefix == "home/alice") };"#,
            },
            Stmt {
                iam: r#"{"Sid":"OwnHomeObjects","Effect":"Allow","Action":["s3:GetObject","s3:GetObjectVersion","s3:PutObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::corp-home/home/${aws:username}/*"}"#,
                cedar: r#"permit(principal, action in [Action::"s3:GetObject", Action::"s3:GetObjectVersion", Action::"s3:PutObject", Action::"s3:DeleteObject"], resource) when { resource.arn like "arn:aws:s3:::corp-home/home/alice/*" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"ConsoleBucketList","Effect":"Allow","Action":["s3:ListAllMyBuckets","s3:GetBucketLocation"],"Resource":"*"}"#,
                cedar: r#"permit(principal, action in [Action::"s3:ListAllMyBuckets", Action::"s3:GetBucketLocation"], resource);"#,
            },
            Stmt {
                iam: r#"{"Sid":"OwnIamUser","Effect":"Allow","Action":["iam:GetUser","iam:ChangePassword","iam:ListAccessKeys","iam:CreateAccessKey","iam:UpdateAccessKey","iam:DeleteAccessKey"],"Resource":"arn:aws:iam::111122223333:user/${aws:username}"}"#,
                cedar: r#"permit(principal, action in [Action::"iam:GetUser", Action::"iam:ChangePassword", Action::"iam:ListAccessKeys", Action::"iam:CreateAccessKey", Action::"iam:UpdateAccessKey", Action::"iam:DeleteAccessKey"], resource) when { resource.arn == "arn:aws:iam::111122223333:user/alice" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"OwnMfaDevice","Effect":"Allow","Action":["iam:CreateVirtualMFADevice","iam:EnableMFADevice","iam:ResyncMFADevice","iam:ListMFADevices"],"Resource":["arn:aws:iam::111122223333:mfa/${aws:username}","arn:aws:iam::111122223333:user/${aws:username}"]}"#,
                cedar: r#"permit(principal, action in [Action::"iam:CreateVirtualMFADevice", Action::"iam:EnableMFADevice", Action::"iam:ResyncMFADevice", Action::"iam:ListMFADevices"], resource) when { resource.arn == "arn:aws:iam::111122223333:mfa/alice" || resource.arn == "arn:aws:iam::111122223333:user/alice" };"#,
            },
        ],
    },
    Pol {
        name: "SharedBuckets",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"SharedRead","Effect":"Allow","Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":"arn:aws:s3:::corp-shared/*","Condition":{"StringEquals":{"aws:PrincipalTag/team":["blue","red","green"]}}}"#,
                cedar: r#"permit(principal, action in [Action::"s3:GetObject", Action::"s3:GetObjectVersion"], resource) when { resource.arn like "arn:aws:s3:::corp-shared/*" && principal.hasTag("team") && ["blue", "red", "green"].contains(principal.getTag("team")) };"#,
            },
            Stmt {
                iam: r#"{"Sid":"TeamReports","Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::corp-reports/${aws:PrincipalTag/team}/*"}"#,
                cedar: r#"permit(principal, action in [Action::"s3:Get*"], resource) when { resource.arn like "arn:aws:s3:::corp-reports/blue/*" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"AssetsWrite","Effect":"Allow","Action":["s3:PutObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::corp-assets/atlas/*","Condition":{"StringEquals":{"aws:PrincipalTag/project":"atlas"}}}"#,
                cedar: r#"permit(principal, action in [Action::"s3:PutObject", Action::"s3:DeleteObject"], resource) when { resource.arn like "arn:aws:s3:::corp-assets/atlas/*" && principal.hasTag("project") && principal.getTag("project") == "atlas" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"SharedListing","Effect":"Allow","Action":["s3:ListBucket","s3:ListBucketVersions"],"Resource":["arn:aws:s3:::corp-shared","arn:aws:s3:::corp-reports"]}"#,
                cedar: r#"permit(principal, action in [Action::"s3:ListBucket", Action::"s3:ListBucketVersions"], resource) when { resource.arn == "arn:aws:s3:::corp-shared" || resource.arn == "arn:aws:s3:::corp-reports" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyConfidentialReports","Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::corp-reports/*/confidential/*","Condition":{"StringNotEquals":{"aws:PrincipalTag/clearance":["secret","top-secret"]}}}"#,
                cedar: r#"forbid(principal, action == Action::"s3:GetObject", resource) when { resource.arn like "arn:aws:s3:::corp-reports/*/confidential/*" } unless { principal.hasTag("clearance") && ["secret", "top-secret"].contains(principal.getTag("clearance")) };"#,
            },
        ],
    },
    Pol {
        name: "Ec2Developer",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"Describe","Effect":"Allow","Action":["ec2:Describe*","elasticloadbalancing:Describe*","autoscaling:Describe*"],"Resource":"*"}"#,
                cedar: r#"permit(principal, action in [Action::"ec2:Describe*", Action::"elasticloadbalancing:Describe*", Action::"autoscaling:Describe*"], resource);"#,
            },
            Stmt {
                iam: r#"{"Sid":"StartStopTeamInstances","Effect":"Allow","Action":["ec2:StartInstances","ec2:StopInstances","ec2:RebootInstances"],"Resource":"arn:aws:ec2:*:111122223333:instance/*","Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}"#,
                cedar: r#"permit(principal, action in [Action::"ec2:StartInstances", Action::"ec2:StopInstances", Action::"ec2:RebootInstances"], resource) when { resource.arn like "arn:aws:ec2:*:111122223333:instance/*" && resource.hasTag("team") && principal.hasTag("team") && resource.getTag("team") == principal.getTag("team") };"#,
            },
            Stmt {
                iam: r#"{"Sid":"RunTaggedInstances","Effect":"Allow","Action":"ec2:RunInstances","Resource":["arn:aws:ec2:*:111122223333:instance/*","arn:aws:ec2:*:111122223333:volume/*","arn:aws:ec2:*::image/ami-*","arn:aws:ec2:*:111122223333:subnet/*","arn:aws:ec2:*:111122223333:network-interface/*","arn:aws:ec2:*:111122223333:security-group/*"],"Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"},"ForAnyValue:StringEquals":{"aws:TagKeys":"team"}}}"#,
                cedar: r#"permit(principal, action == Action::"ec2:RunInstances", resource) when { (resource.arn like "arn:aws:ec2:*:111122223333:instance/*" || resource.arn like "arn:aws:ec2:*:111122223333:volume/*" || resource.arn like "arn:aws:ec2:*::image/ami-*" || resource.arn like "arn:aws:ec2:*:111122223333:subnet/*" || resource.arn like "arn:aws:ec2:*:111122223333:network-interface/*" || resource.arn like "arn:aws:ec2:*:111122223333:security-group/*") && context has requestedRegion && context.requestedRegion == "us-east-1" && context has tagKeys && context.tagKeys.contains("team") };"#,
            },
            Stmt {
                iam: r#"{"Sid":"TagOnLaunch","Effect":"Allow","Action":"ec2:CreateTags","Resource":"arn:aws:ec2:*:111122223333:*/*","Condition":{"StringEquals":{"ec2:CreateAction":"RunInstances"}}}"#,
                cedar: r#"permit(principal, action == Action::"ec2:CreateTags", resource) when { resource.arn like "arn:aws:ec2:*:111122223333:*/*" && context has createAction && context.createAction == "RunInstances" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"TeamVolumes","Effect":"Allow","Action":["ec2:AttachVolume","ec2:DetachVolume"],"Resource":["arn:aws:ec2:*:111122223333:volume/*","arn:aws:ec2:*:111122223333:instance/*"],"Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}"#,
                cedar: r#"permit(principal, action in [Action::"ec2:AttachVolume", Action::"ec2:DetachVolume"], resource) when { (resource.arn like "arn:aws:ec2:*:111122223333:volume/*" || resource.arn like "arn:aws:ec2:*:111122223333:instance/*") && resource.hasTag("team") && principal.hasTag("team") && resource.getTag("team") == principal.getTag("team") };"#,
            },
        ],
    },
    Pol {
        name: "Serverless",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"InvokeAtlasFunctions","Effect":"Allow","Action":["lambda:InvokeFunction","lambda:GetFunction"],"Resource":"arn:aws:lambda:us-east-1:111122223333:function:atlas-*"}"#,
                cedar: r#"permit(principal, action in [Action::"lambda:InvokeFunction", Action::"lambda:GetFunction"], resource) when { resource.arn like "arn:aws:lambda:us-east-1:111122223333:function:atlas-*" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"LambdaReadOnly","Effect":"Allow","Action":["lambda:List*","lambda:Get*"],"Resource":"*"}"#,
                cedar: r#"permit(principal, action in [Action::"lambda:List*", Action::"lambda:Get*"], resource);"#,
            },
            Stmt {
                iam: r#"{"Sid":"AtlasLogs","Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents","logs:DescribeLogStreams"],"Resource":"arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/atlas-*:*"}"#,
                cedar: r#"permit(principal, action in [Action::"logs:CreateLogStream", Action::"logs:PutLogEvents", Action::"logs:DescribeLogStreams"], resource) when { resource.arn like "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/atlas-*:*" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"AtlasQueues","Effect":"Allow","Action":["sqs:SendMessage","sqs:ReceiveMessage","sqs:DeleteMessage","sqs:GetQueueAttributes"],"Resource":"arn:aws:sqs:us-east-1:111122223333:atlas-*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}"#,
                cedar: r#"permit(principal, action in [Action::"sqs:SendMessage", Action::"sqs:ReceiveMessage", Action::"sqs:DeleteMessage", Action::"sqs:GetQueueAttributes"], resource) when { resource.arn like "arn:aws:sqs:us-east-1:111122223333:atlas-*" && context has secureTransport && context.secureTransport == true };"#,
            },
            Stmt {
                iam: r#"{"Sid":"AtlasAlerts","Effect":"Allow","Action":"sns:Publish","Resource":"arn:aws:sns:us-east-1:111122223333:atlas-alerts","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}"#,
                cedar: r#"permit(principal, action == Action::"sns:Publish", resource) when { resource.arn == "arn:aws:sns:us-east-1:111122223333:atlas-alerts" && context has requestedRegion && context.requestedRegion == "us-east-1" };"#,
            },
        ],
    },
    Pol {
        name: "AtlasData",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"AtlasBucketList","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::atlas-data","Condition":{"StringEquals":{"aws:PrincipalTag/project":"atlas"}}}"#,
                cedar: r#"permit(principal, action == Action::"s3:ListBucket", resource) when { resource.arn == "arn:aws:s3:::atlas-data" && principal.hasTag("project") && principal.getTag("project") == "atlas" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"AtlasRead","Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":["arn:aws:s3:::atlas-data","arn:aws:s3:::atlas-data/*"],"Condition":{"StringEquals":{"aws:PrincipalTag/project":"atlas"},"IpAddress":{"aws:SourceIp":["203.0.113.0/24","198.51.100.0/24"]},"Bool":{"aws:SecureTransport":"true"}}}"#,
                cedar: r#"permit(principal, action in [Action::"s3:Get*", Action::"s3:List*"], resource) when { (resource.arn == "arn:aws:s3:::atlas-data" || resource.arn like "arn:aws:s3:::atlas-data/*") && principal.hasTag("project") && principal.getTag("project") == "atlas" && context has sourceIp && (context.sourceIp.isInRange(ip("203.0.113.0/24")) || context.sourceIp.isInRange(ip("198.51.100.0/24"))) && context has secureTransport && context.secureTransport == true };"#,
            },
            Stmt {
                iam: r#"{"Sid":"AtlasIncomingWrite","Effect":"Allow","Action":["s3:PutObject","s3:PutObjectTagging"],"Resource":"arn:aws:s3:::atlas-data/incoming/*","Condition":{"StringEquals":{"aws:PrincipalTag/team":["blue","green"]},"ForAllValues:StringEquals":{"aws:TagKeys":["project","owner","team"]},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}"#,
                cedar: r#"permit(principal, action in [Action::"s3:PutObject", Action::"s3:PutObjectTagging"], resource) when { resource.arn like "arn:aws:s3:::atlas-data/incoming/*" && principal.hasTag("team") && ["blue", "green"].contains(principal.getTag("team")) && (!(context has tagKeys) || ["project", "owner", "team"].containsAll(context.tagKeys)) && context has sourceIp && context.sourceIp.isInRange(ip("203.0.113.0/24")) };"#,
            },
            Stmt {
                iam: r#"{"Sid":"AtlasAthena","Effect":"Allow","Action":["athena:StartQueryExecution","athena:GetQueryExecution","athena:GetQueryResults"],"Resource":"arn:aws:athena:*:111122223333:workgroup/atlas-*"}"#,
                cedar: r#"permit(principal, action in [Action::"athena:StartQueryExecution", Action::"athena:GetQueryExecution", Action::"athena:GetQueryResults"], resource) when { resource.arn like "arn:aws:athena:*:111122223333:workgroup/atlas-*" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"AtlasGlue","Effect":"Allow","Action":["glue:GetTable","glue:GetTables","glue:GetDatabase","glue:GetPartitions"],"Resource":["arn:aws:glue:us-east-1:111122223333:catalog","arn:aws:glue:us-east-1:111122223333:database/atlas","arn:aws:glue:us-east-1:111122223333:table/atlas/*"]}"#,
                cedar: r#"permit(principal, action in [Action::"glue:GetTable", Action::"glue:GetTables", Action::"glue:GetDatabase", Action::"glue:GetPartitions"], resource) when { resource.arn == "arn:aws:glue:us-east-1:111122223333:catalog" || resource.arn == "arn:aws:glue:us-east-1:111122223333:database/atlas" || resource.arn like "arn:aws:glue:us-east-1:111122223333:table/atlas/*" };"#,
            },
        ],
    },
    Pol {
        name: "DataStores",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"AtlasTables","Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:BatchGetItem","dynamodb:Query","dynamodb:PutItem","dynamodb:UpdateItem"],"Resource":"arn:aws:dynamodb:us-east-1:111122223333:table/atlas-*","Condition":{"StringEquals":{"aws:PrincipalTag/project":"atlas"}}}"#,
                cedar: r#"permit(principal, action in [Action::"dynamodb:GetItem", Action::"dynamodb:BatchGetItem", Action::"dynamodb:Query", Action::"dynamodb:PutItem", Action::"dynamodb:UpdateItem"], resource) when { resource.arn like "arn:aws:dynamodb:us-east-1:111122223333:table/atlas-*" && principal.hasTag("project") && principal.getTag("project") == "atlas" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"OwnPreferences","Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:PutItem","dynamodb:Query"],"Resource":"arn:aws:dynamodb:*:111122223333:table/user-prefs","Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":"${aws:username}"}}}"#,
                cedar: r#"permit(principal, action in [Action::"dynamodb:GetItem", Action::"dynamodb:PutItem", Action::"dynamodb:Query"], resource) when { resource.arn like "arn:aws:dynamodb:*:111122223333:table/user-prefs" && (!(context has leadingKeys) || [principal.name].containsAll(context.leadingKeys)) };"#,
            },
            Stmt {
                iam: r#"{"Sid":"DynamoDescribe","Effect":"Allow","Action":["dynamodb:Describe*","dynamodb:List*"],"Resource":"*"}"#,
                cedar: r#"permit(principal, action in [Action::"dynamodb:Describe*", Action::"dynamodb:List*"], resource);"#,
            },
            Stmt {
                iam: r#"{"Sid":"AtlasSecrets","Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:us-east-1:111122223333:secret:atlas/*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"blue"},"Bool":{"aws:SecureTransport":"true"}}}"#,
                cedar: r#"permit(principal, action in [Action::"secretsmanager:GetSecretValue", Action::"secretsmanager:DescribeSecret"], resource) when { resource.arn like "arn:aws:secretsmanager:us-east-1:111122223333:secret:atlas/*" && principal.hasTag("team") && principal.getTag("team") == "blue" && context has secureTransport && context.secureTransport == true };"#,
            },
            Stmt {
                iam: r#"{"Sid":"AtlasParameters","Effect":"Allow","Action":["ssm:GetParameter","ssm:GetParameters","ssm:GetParametersByPath"],"Resource":"arn:aws:ssm:us-east-1:111122223333:parameter/atlas/*"}"#,
                cedar: r#"permit(principal, action in [Action::"ssm:GetParameter", Action::"ssm:GetParameters", Action::"ssm:GetParametersByPath"], resource) when { resource.arn like "arn:aws:ssm:us-east-1:111122223333:parameter/atlas/*" };"#,
            },
        ],
    },
    Pol {
        name: "Observability",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"MetricsRead","Effect":"Allow","Action":["cloudwatch:GetMetricData","cloudwatch:ListMetrics","cloudwatch:DescribeAlarms","cloudwatch:GetMetricStatistics"],"Resource":"*"}"#,
                cedar: r#"permit(principal, action in [Action::"cloudwatch:GetMetricData", Action::"cloudwatch:ListMetrics", Action::"cloudwatch:DescribeAlarms", Action::"cloudwatch:GetMetricStatistics"], resource);"#,
            },
            Stmt {
                iam: r#"{"Sid":"MetricsWrite","Effect":"Allow","Action":"cloudwatch:PutMetricData","Resource":"*","Condition":{"StringEquals":{"cloudwatch:namespace":"Atlas/App"}}}"#,
                cedar: r#"permit(principal, action == Action::"cloudwatch:PutMetricData", resource) when { context has namespace && context.namespace == "Atlas/App" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"LogsRead","Effect":"Allow","Action":["logs:Get*","logs:Describe*","logs:FilterLogEvents","logs:StartQuery"],"Resource":"arn:aws:logs:*:111122223333:log-group:/atlas/*"}"#,
                cedar: r#"permit(principal, action in [Action::"logs:Get*", Action::"logs:Describe*", Action::"logs:FilterLogEvents", Action::"logs:StartQuery"], resource) when { resource.arn like "arn:aws:logs:*:111122223333:log-group:/atlas/*" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"Tracing","Effect":"Allow","Action":["xray:PutTraceSegments","xray:PutTelemetryRecords","xray:GetSamplingRules"],"Resource":"*"}"#,
                cedar: r#"permit(principal, action in [Action::"xray:PutTraceSegments", Action::"xray:PutTelemetryRecords", Action::"xray:GetSamplingRules"], resource);"#,
            },
            Stmt {
                iam: r#"{"Sid":"DenyLogTampering","Effect":"Deny","Action":["logs:DeleteLogGroup","logs:DeleteLogStream","logs:PutRetentionPolicy"],"Resource":"*"}"#,
                cedar: r#"forbid(principal, action in [Action::"logs:DeleteLogGroup", Action::"logs:DeleteLogStream", Action::"logs:PutRetentionPolicy"], resource);"#,
            },
        ],
    },
    Pol {
        name: "Platform",
        stmts: [
            Stmt {
                iam: r#"{"Sid":"WhoAmI","Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}"#,
                cedar: r#"permit(principal, action == Action::"sts:GetCallerIdentity", resource);"#,
            },
            Stmt {
                iam: r#"{"Sid":"AssumeAtlasRoles","Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::111122223333:role/atlas-*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"blue"}}}"#,
                cedar: r#"permit(principal, action == Action::"sts:AssumeRole", resource) when { resource.arn like "arn:aws:iam::111122223333:role/atlas-*" && principal.hasTag("team") && principal.getTag("team") == "blue" };"#,
            },
            Stmt {
                iam: r#"{"Sid":"EcrPull","Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}"#,
                cedar: r#"permit(principal, action in [Action::"ecr:GetAuthorizationToken", Action::"ecr:BatchGetImage", Action::"ecr:GetDownloadUrlForLayer"], resource);"#,
            },
            Stmt {
                iam: r#"{"Sid":"InvokeProdApi","Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:us-east-1:111122223333:*/prod/GET/*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}"#,
                cedar: r#"permit(principal, action == Action::"execute-api:Invoke", resource) when { resource.arn like "arn:aws:execute-api:us-east-1:111122223333:*/prod/GET/*" && context has sourceIp && context.sourceIp.isInRange(ip("203.0.113.0/24")) };"#,
            },
            Stmt {
                iam: r#"{"Sid":"KmsViaS3","Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"arn:aws:kms:us-east-1:111122223333:key/*","Condition":{"StringLike":{"kms:ViaService":"s3.*.amazonaws.com"}}}"#,
                cedar: r#"permit(principal, action in [Action::"kms:Decrypt", Action::"kms:GenerateDataKey"], resource) when { resource.arn like "arn:aws:kms:us-east-1:111122223333:key/*" && context has viaService && context.viaService like "s3.*.amazonaws.com" };"#,
            },
        ],
    },
];

fn iam_document(stmts: &[&str]) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        stmts.join(",")
    )
}

/// The IAM JSON of workload (a)'s policies, with their names.
fn principal_iam() -> Vec<(String, String)> {
    PRINCIPAL_POLICIES
        .iter()
        .map(|p| {
            let stmts: Vec<&str> = p.stmts.iter().map(|s| s.iam).collect();
            (p.name.to_owned(), iam_document(&stmts))
        })
        .collect()
}

/// The Cedar policies of workload (a): `(id, text)`, one per IAM statement (`Policy.Sid`).
fn principal_cedar() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in &PRINCIPAL_POLICIES {
        for s in &p.stmts {
            let v: serde_json::Value = serde_json::from_str(s.iam).unwrap();
            let sid = v["Sid"].as_str().unwrap();
            out.push((format!("{}.{sid}", p.name), s.cedar.to_owned()));
        }
    }
    out
}

/// A generated policy: its name, IAM JSON and Cedar text.
struct Generated {
    name: String,
    iam: String,
    cedar: String,
}

const ROLES: [&str; 5] = ["reader", "writer", "admin", "auditor", "operator"];

/// Background policy `i` for an in-house service: distinct actions per service and role.
fn service_policy(i: usize) -> Generated {
    let svc = i / 5;
    let role = ROLES[i % 5];
    let s = format!("svc{svc:03}");
    let noun = format!("Thing{svc}");
    let team = if svc.is_multiple_of(50) {
        "blue".to_owned()
    } else {
        format!("team-{:02}", svc % 50)
    };
    let actions: Vec<String> = match role {
        "reader" => vec![
            format!("{s}:Get{noun}"),
            format!("{s}:List{noun}s"),
            format!("{s}:Describe*"),
        ],
        "writer" => vec![
            format!("{s}:Create{noun}"),
            format!("{s}:Update{noun}"),
            format!("{s}:Put{noun}Tags"),
        ],
        "admin" => vec![format!("{s}:Delete{noun}"), format!("{s}:Admin*")],
        "auditor" => vec![format!("{s}:Audit{noun}"), format!("{s}:Export{noun}Logs")],
        _ => vec![format!("{s}:Restart{noun}"), format!("{s}:Scale{noun}")],
    };
    let resource = format!("arn:aws:{s}:us-east-1:{ACCOUNT}:thing/{team}/*");
    let (extra_iam, extra_cedar) = match role {
        "writer" | "admin" => (
            r#","IpAddress":{"aws:SourceIp":["10.0.0.0/8","203.0.113.0/24"]}"#,
            r#" && context has sourceIp && (context.sourceIp.isInRange(ip("10.0.0.0/8")) || context.sourceIp.isInRange(ip("203.0.113.0/24")))"#,
        ),
        "auditor" => (
            r#","Bool":{"aws:SecureTransport":"true"}"#,
            r#" && context has secureTransport && context.secureTransport == true"#,
        ),
        _ => ("", ""),
    };
    let iam_actions: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
    let iam = iam_document(&[&format!(
        r#"{{"Sid":"{role}","Effect":"Allow","Action":[{}],"Resource":"{resource}","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"{team}"}}{extra_iam}}}}}"#,
        iam_actions.join(",")
    )]);
    let cedar_actions: Vec<String> = actions.iter().map(|a| format!("Action::\"{a}\"")).collect();
    let cedar = format!(
        r#"permit(principal, action in [{}], resource) when {{ resource.arn like "{resource}" && principal.hasTag("team") && principal.getTag("team") == "{team}"{extra_cedar} }};"#,
        cedar_actions.join(", ")
    );
    Generated {
        name: format!("{s}-{role}"),
        iam,
        cedar,
    }
}

/// A per-team S3 bucket policy (other teams' buckets: candidates for `s3:GetObject` that fail on
/// the resource).
fn team_bucket_policy(t: usize) -> Generated {
    let team = format!("team-{t:02}");
    let iam = iam_document(&[&format!(
        r#"{{"Sid":"TeamBucket","Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:ListBucket"],"Resource":["arn:aws:s3:::{team}-data","arn:aws:s3:::{team}-data/*"],"Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"{team}"}}}}}}"#
    )]);
    let cedar = format!(
        r#"permit(principal, action in [Action::"s3:GetObject", Action::"s3:PutObject", Action::"s3:ListBucket"], resource) when {{ (resource.arn == "arn:aws:s3:::{team}-data" || resource.arn like "arn:aws:s3:::{team}-data/*") && principal.hasTag("team") && principal.getTag("team") == "{team}" }};"#
    );
    Generated {
        name: format!("{team}-bucket"),
        iam,
        cedar,
    }
}

/// `(id, text)` pairs.
type Named = Vec<(String, String)>;

/// Workload (b): the 10 policies of (a), 10 team-bucket policies, 1,980 service policies.
fn account_policies() -> (Named, Named) {
    let mut iam = principal_iam();
    let mut cedar = principal_cedar();
    let generated = (1..=10)
        .map(team_bucket_policy)
        .chain((0..1980).map(service_policy));
    for g in generated {
        cedar.push((g.name.clone(), g.cedar));
        iam.push((g.name, g.iam));
    }
    assert_eq!(iam.len(), 2000);
    (iam, cedar)
}

fn compile_set(policies: &[(String, String)]) -> PolicySet {
    PolicySet::new(
        policies
            .iter()
            .map(|(id, text)| {
                Arc::new(
                    CompiledPolicy::from_json(id.as_str(), PolicyType::Identity, text)
                        .unwrap_or_else(|f| panic!("{id}: {f:?}")),
                )
            })
            .collect(),
    )
}

fn cedar_set(policies: &[(String, String)]) -> CedarPolicySet {
    let mut set = CedarPolicySet::new();
    for (id, text) in policies {
        let p = Policy::parse(Some(PolicyId::new(id)), text)
            .unwrap_or_else(|e| panic!("{id}: {e:?}\n{text}"));
        set.add(p).unwrap();
    }
    set
}

// ---------------------------------------------------------------------------------------------
// Requests, expressed for both engines.

/// IAM action patterns with a wildcard (the Cedar action groups), from every IAM text.
fn action_groups(iam: &[(String, String)]) -> Vec<String> {
    let mut groups = Vec::new();
    for (_, text) in iam {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        for s in v["Statement"].as_array().unwrap() {
            for key in ["Action", "NotAction"] {
                let list = match &s[key] {
                    serde_json::Value::String(a) => vec![a.clone()],
                    serde_json::Value::Array(a) => {
                        a.iter().map(|x| x.as_str().unwrap().to_owned()).collect()
                    }
                    _ => vec![],
                };
                for a in list {
                    if a != "*" && a.contains('*') && !groups.contains(&a) {
                        groups.push(a);
                    }
                }
            }
        }
    }
    groups
}

/// `*`-only glob, ASCII case-insensitive (IAM action matching).
fn star_match(pattern: &str, text: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let t = text.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !t.starts_with(first) || t.len() < first.len() + last.len() || !t.ends_with(last) {
        return false;
    }
    let mut rest = &t[first.len()..t.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(EntityTypeName::from_str(ty).unwrap(), EntityId::new(id))
}

/// One test request, for both engines.
#[derive(Clone)]
struct Req {
    action: &'static str,
    resource: &'static str,
    ip: Option<&'static str>,
    secure: Option<bool>,
    region: Option<&'static str>,
    tag_keys: Option<Vec<&'static str>>,
    /// `(IAM key, Cedar context attribute, value)`.
    extra: Vec<(&'static str, &'static str, &'static str)>,
    leading_keys: Option<Vec<&'static str>>,
    resource_tags: Vec<(&'static str, &'static str)>,
}

impl Req {
    fn new(action: &'static str, resource: &'static str) -> Self {
        Self {
            action,
            resource,
            ip: Some("203.0.113.5"),
            secure: Some(true),
            region: Some("us-east-1"),
            tag_keys: None,
            extra: Vec::new(),
            leading_keys: None,
            resource_tags: Vec::new(),
        }
    }

    fn iam_context<'a>(&self, principal: &'a PrincipalInfo) -> RequestContext<'a> {
        let mut ctx = RequestContext::new(principal, self.action, self.resource);
        if let Some(ip) = self.ip {
            ctx.set("aws:SourceIp", ip);
        }
        if let Some(s) = self.secure {
            ctx.set("aws:SecureTransport", if s { "true" } else { "false" });
        }
        if let Some(r) = self.region {
            ctx.set("aws:RequestedRegion", r);
        }
        if let Some(keys) = &self.tag_keys {
            ctx.set_multi(
                "aws:TagKeys",
                keys.iter().map(|k| Cow::Borrowed(*k)).collect(),
            );
        }
        for (k, _, v) in &self.extra {
            ctx.set(*k, *v);
        }
        if let Some(keys) = &self.leading_keys {
            ctx.set_multi(
                "dynamodb:LeadingKeys",
                keys.iter().map(|k| Cow::Borrowed(*k)).collect(),
            );
        }
        for (k, v) in &self.resource_tags {
            ctx.set(format!("aws:ResourceTag/{k}"), *v);
        }
        ctx
    }

    fn cedar_context(&self) -> Context {
        let mut pairs: Vec<(String, RestrictedExpression)> = Vec::new();
        if let Some(ip) = self.ip {
            pairs.push(("sourceIp".into(), RestrictedExpression::new_ip(ip)));
        }
        if let Some(s) = self.secure {
            pairs.push(("secureTransport".into(), RestrictedExpression::new_bool(s)));
        }
        if let Some(r) = self.region {
            pairs.push((
                "requestedRegion".into(),
                RestrictedExpression::new_string(r.into()),
            ));
        }
        if let Some(keys) = &self.tag_keys {
            pairs.push((
                "tagKeys".into(),
                RestrictedExpression::new_set(
                    keys.iter()
                        .map(|k| RestrictedExpression::new_string((*k).into())),
                ),
            ));
        }
        for (_, k, v) in &self.extra {
            pairs.push(((*k).into(), RestrictedExpression::new_string((*v).into())));
        }
        if let Some(keys) = &self.leading_keys {
            pairs.push((
                "leadingKeys".into(),
                RestrictedExpression::new_set(
                    keys.iter()
                        .map(|k| RestrictedExpression::new_string((*k).into())),
                ),
            ));
        }
        Context::from_pairs(pairs).unwrap()
    }
}

/// The Cedar side of a request: entities, and the uids for building `Request`s.
struct CedarWorld {
    principal: EntityUid,
    action: EntityUid,
    resource: EntityUid,
    entities: Entities,
}

impl CedarWorld {
    fn new(req: &Req, groups: &[String]) -> Self {
        let principal = uid("User", "alice");
        let alice = Entity::new_with_tags(
            principal.clone(),
            [
                (
                    "name".to_owned(),
                    RestrictedExpression::new_string("alice".into()),
                ),
                (
                    "account".to_owned(),
                    RestrictedExpression::new_string(ACCOUNT.into()),
                ),
            ],
            [],
            [
                (
                    "team".to_owned(),
                    RestrictedExpression::new_string("blue".into()),
                ),
                (
                    "project".to_owned(),
                    RestrictedExpression::new_string("atlas".into()),
                ),
            ],
        )
        .unwrap();
        let resource = uid("Resource", req.resource);
        let res = Entity::new_with_tags(
            resource.clone(),
            [(
                "arn".to_owned(),
                RestrictedExpression::new_string(req.resource.into()),
            )],
            [],
            req.resource_tags.iter().map(|(k, v)| {
                (
                    (*k).to_owned(),
                    RestrictedExpression::new_string((*v).into()),
                )
            }),
        )
        .unwrap();
        let action = uid("Action", req.action);
        let parents: Vec<EntityUid> = groups
            .iter()
            .filter(|g| star_match(g, req.action))
            .map(|g| uid("Action", g))
            .collect();
        let mut ents = vec![alice, res];
        for p in &parents {
            ents.push(Entity::new_no_attrs(p.clone(), Default::default()));
        }
        ents.push(Entity::new_no_attrs(
            action.clone(),
            parents.into_iter().collect(),
        ));
        let entities = Entities::from_entities(ents, None).unwrap();
        Self {
            principal,
            action,
            resource,
            entities,
        }
    }

    fn request(&self, ctx: Context) -> Request {
        Request::new(
            self.principal.clone(),
            self.action.clone(),
            self.resource.clone(),
            ctx,
            None,
        )
        .unwrap()
    }
}

fn alice() -> PrincipalInfo {
    let mut p = PrincipalInfo::user(ALICE_ARN, ALICE_ID);
    p.tags.push(("team".into(), "blue".into()));
    p.tags.push(("project".into(), "atlas".into()));
    p
}

fn get_request() -> Req {
    Req::new(
        "s3:GetObject",
        "arn:aws:s3:::atlas-data/reports/2024/q1.csv",
    )
}

fn put_request() -> Req {
    Req {
        tag_keys: Some(vec!["project", "owner"]),
        extra: vec![("s3:x-amz-server-side-encryption", "sse", "aws:kms")],
        ..Req::new(
            "s3:PutObject",
            "arn:aws:s3:::atlas-data/incoming/2024-06-01.csv",
        )
    }
}

/// Requests on which both engines must agree: `(label, request, expected allow)`.
fn equivalence_cases() -> Vec<(&'static str, Req, bool)> {
    let get = get_request();
    let put = put_request();
    vec![
        ("get", get.clone(), true),
        (
            "get outside network",
            Req {
                ip: Some("192.0.2.9"),
                ..get.clone()
            },
            false,
        ),
        (
            "get no source ip",
            Req {
                ip: None,
                ..get.clone()
            },
            false,
        ),
        (
            "get insecure",
            Req {
                secure: Some(false),
                ..get.clone()
            },
            false,
        ),
        (
            "get other region",
            Req {
                region: Some("ap-south-1"),
                ..get.clone()
            },
            false,
        ),
        (
            "get other bucket",
            Req::new("s3:GetObject", "arn:aws:s3:::team-07-data/x"),
            false,
        ),
        (
            "get restricted prefix",
            Req::new("s3:GetObject", "arn:aws:s3:::atlas-data/restricted/x"),
            false,
        ),
        (
            "get own home",
            Req::new(
                "s3:GetObject",
                "arn:aws:s3:::corp-home/home/alice/notes.txt",
            ),
            true,
        ),
        (
            "get other home",
            Req::new("s3:GetObject", "arn:aws:s3:::corp-home/home/bob/notes.txt"),
            false,
        ),
        (
            "get team report",
            Req::new(
                "s3:GetObjectVersion",
                "arn:aws:s3:::corp-reports/blue/q1.pdf",
            ),
            true,
        ),
        (
            "get confidential report",
            Req::new(
                "s3:GetObject",
                "arn:aws:s3:::corp-reports/blue/confidential/x.pdf",
            ),
            false,
        ),
        (
            "list own home",
            Req {
                extra: vec![("s3:prefix", "prefix", "home/alice/")],
                ..Req::new("s3:ListBucket", "arn:aws:s3:::corp-home")
            },
            true,
        ),
        (
            "list other home",
            Req {
                extra: vec![("s3:prefix", "prefix", "home/bob/")],
                ..Req::new("s3:ListBucket", "arn:aws:s3:::corp-home")
            },
            false,
        ),
        ("put", put.clone(), true),
        (
            "put unencrypted",
            Req {
                extra: vec![],
                ..put.clone()
            },
            false,
        ),
        (
            "put restricted tag",
            Req {
                tag_keys: Some(vec!["project", "restricted"]),
                ..put.clone()
            },
            false,
        ),
        (
            "put unlisted tag",
            Req {
                tag_keys: Some(vec!["project", "cost"]),
                ..put.clone()
            },
            false,
        ),
        (
            "put public acl",
            Req {
                extra: vec![
                    ("s3:x-amz-server-side-encryption", "sse", "AES256"),
                    ("s3:x-amz-acl", "acl", "public-read"),
                ],
                ..put.clone()
            },
            false,
        ),
        ("ec2 describe", Req::new("ec2:DescribeInstances", "*"), true),
        (
            "ec2 start own team",
            Req {
                resource_tags: vec![("team", "blue")],
                ..Req::new(
                    "ec2:StartInstances",
                    "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc",
                )
            },
            true,
        ),
        (
            "ec2 start other team",
            Req {
                resource_tags: vec![("team", "red")],
                ..Req::new(
                    "ec2:StartInstances",
                    "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc",
                )
            },
            false,
        ),
        (
            "iam own user",
            Req::new("iam:GetUser", "arn:aws:iam::111122223333:user/alice"),
            true,
        ),
        (
            "iam other user",
            Req::new("iam:GetUser", "arn:aws:iam::111122223333:user/bob"),
            false,
        ),
        (
            "iam create user",
            Req::new("iam:CreateUser", "arn:aws:iam::111122223333:user/mallory"),
            false,
        ),
        (
            "sts any region",
            Req {
                region: Some("ap-south-1"),
                ..Req::new("sts:GetCallerIdentity", "*")
            },
            true,
        ),
        (
            "prefs own keys",
            Req {
                leading_keys: Some(vec!["alice"]),
                ..Req::new(
                    "dynamodb:GetItem",
                    "arn:aws:dynamodb:us-east-1:111122223333:table/user-prefs",
                )
            },
            true,
        ),
        (
            "prefs other keys",
            Req {
                leading_keys: Some(vec!["alice", "bob"]),
                ..Req::new(
                    "dynamodb:GetItem",
                    "arn:aws:dynamodb:us-east-1:111122223333:table/user-prefs",
                )
            },
            false,
        ),
        (
            "api invoke",
            Req::new(
                "execute-api:Invoke",
                "arn:aws:execute-api:us-east-1:111122223333:a1b2c3/prod/GET/widgets/1",
            ),
            true,
        ),
        // (KMS is left out: Tollgate, like AWS, also requires the key policy to allow.)
        (
            "sqs send",
            Req::new(
                "sqs:SendMessage",
                "arn:aws:sqs:us-east-1:111122223333:atlas-jobs",
            ),
            true,
        ),
        (
            "sqs send insecure",
            Req {
                secure: Some(false),
                ..Req::new(
                    "sqs:SendMessage",
                    "arn:aws:sqs:us-east-1:111122223333:atlas-jobs",
                )
            },
            false,
        ),
    ]
}

fn cedar_decide(world: &CedarWorld, req: &Req, set: &CedarPolicySet) -> cedar_policy::Response {
    let resp =
        Authorizer::new().is_authorized(&world.request(req.cedar_context()), set, &world.entities);
    let errors: Vec<String> = resp
        .diagnostics()
        .errors()
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "cedar errors: {errors:?}");
    resp
}

/// Both engines agree on every case, and the measured requests are allowed by the intended
/// statements.
fn check_equivalence(
    iam: &PolicySet,
    cedar: &CedarPolicySet,
    groups: &[String],
    extra: &[(&'static str, Req, bool)],
) {
    let principal = alice();
    let cases = equivalence_cases();
    for (label, req, expected) in cases.iter().chain(extra) {
        let ctx = req.iam_context(&principal);
        let d = evaluate(
            &Policies {
                identity: Some(iam),
                ..Policies::default()
            },
            &ctx,
        );
        let world = CedarWorld::new(req, groups);
        let resp = cedar_decide(&world, req, cedar);
        let cedar_allowed = resp.decision() == CedarDecision::Allow;
        assert_eq!(d.is_allowed(), *expected, "tollgate, {label}: {d:?}");
        assert_eq!(
            cedar_allowed,
            *expected,
            "cedar, {label}: {:?}",
            resp.diagnostics()
        );
    }
}

// ---------------------------------------------------------------------------------------------

fn bench_eval(
    c: &mut Criterion,
    group: &str,
    iam: &PolicySet,
    cedar: &CedarPolicySet,
    req: &Req,
    groups: &[String],
    expected: &str,
) {
    let principal = alice();
    let policies = Policies {
        identity: Some(iam),
        ..Policies::default()
    };
    let ctx = req.iam_context(&principal);
    let d = evaluate(&policies, &ctx);
    assert_eq!(d.outcome, Outcome::Allowed);
    let s = d.statement.as_ref().unwrap();
    let sid = s.sid.as_deref().unwrap_or("");
    assert_eq!(
        format!("{}.{sid}", s.policy),
        expected,
        "{group}: allowed by"
    );
    let world = CedarWorld::new(req, groups);
    let prebuilt = world.request(req.cedar_context());
    let authorizer = Authorizer::new();
    let resp = authorizer.is_authorized(&prebuilt, cedar, &world.entities);
    assert_eq!(resp.decision(), CedarDecision::Allow);
    let reasons: Vec<String> = resp
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    assert_eq!(reasons, [expected], "{group}: cedar reasons");

    let mut g = c.benchmark_group(group);
    g.bench_function("tollgate", |b| {
        b.iter(|| {
            let d = evaluate(black_box(&policies), black_box(&ctx));
            assert!(d.outcome == Outcome::Allowed);
            d
        })
    });
    g.bench_function("tollgate_ctx", |b| {
        b.iter(|| {
            let ctx = black_box(req).iam_context(black_box(&principal));
            let d = evaluate(black_box(&policies), &ctx);
            assert!(d.outcome == Outcome::Allowed);
            d
        })
    });
    g.bench_function("cedar", |b| {
        b.iter(|| {
            let r =
                authorizer.is_authorized(black_box(&prebuilt), black_box(cedar), &world.entities);
            assert!(r.decision() == CedarDecision::Allow);
            r
        })
    });
    g.bench_function("cedar_ctx", |b| {
        b.iter(|| {
            let request = world.request(black_box(req).cedar_context());
            let r = authorizer.is_authorized(&request, black_box(cedar), &world.entities);
            assert!(r.decision() == CedarDecision::Allow);
            r
        })
    });
    g.finish();
}

fn policy_benches(c: &mut Criterion) {
    // Workload (a).
    let a_iam = principal_iam();
    let a_cedar = principal_cedar();
    assert_eq!(a_cedar.len(), 50);
    let a_set = compile_set(&a_iam);
    let a_cedar_set = cedar_set(&a_cedar);
    // Workload (b).
    let (b_iam, b_cedar) = account_policies();
    let b_set = compile_set(&b_iam);
    let b_cedar_set = cedar_set(&b_cedar);
    assert_eq!(b_cedar_set.policies().count(), 2040);
    let groups = action_groups(&b_iam);

    check_equivalence(&a_set, &a_cedar_set, &groups, &[]);
    let b_extra = vec![
        (
            "svc000 get (team blue)",
            Req::new(
                "svc000:GetThing0",
                "arn:aws:svc000:us-east-1:111122223333:thing/blue/t1",
            ),
            true,
        ),
        (
            "svc000 describe",
            Req::new(
                "svc000:DescribeThings",
                "arn:aws:svc000:us-east-1:111122223333:thing/blue/t1",
            ),
            true,
        ),
        (
            "svc001 get (team-01)",
            Req::new(
                "svc001:GetThing1",
                "arn:aws:svc001:us-east-1:111122223333:thing/team-01/t1",
            ),
            false,
        ),
        (
            "svc050 audit insecure",
            Req {
                secure: Some(false),
                ..Req::new(
                    "svc050:AuditThing50",
                    "arn:aws:svc050:us-east-1:111122223333:thing/blue/t1",
                )
            },
            false,
        ),
    ];
    check_equivalence(&b_set, &b_cedar_set, &groups, &b_extra);
    println!(
        "policy bench: {} equivalence cases agree between tollgate and cedar",
        2 * equivalence_cases().len() + b_extra.len()
    );

    bench_eval(
        c,
        "eval_a_get",
        &a_set,
        &a_cedar_set,
        &get_request(),
        &groups,
        "AtlasData.AtlasRead",
    );
    bench_eval(
        c,
        "eval_a_put",
        &a_set,
        &a_cedar_set,
        &put_request(),
        &groups,
        "AtlasData.AtlasIncomingWrite",
    );
    bench_eval(
        c,
        "eval_b_get",
        &b_set,
        &b_cedar_set,
        &get_request(),
        &groups,
        "AtlasData.AtlasRead",
    );

    // Compilation of 10,000 policies.
    let per_principal: Vec<Vec<(String, String)>> = (0..1000)
        .map(|u| {
            a_iam
                .iter()
                .map(|(name, text)| {
                    (
                        format!("arn:aws:iam::{ACCOUNT}:policy/u{u}/{name}"),
                        text.clone(),
                    )
                })
                .collect()
        })
        .collect();
    let services: Vec<Generated> = (0..10_000).map(service_policy).collect();
    let one_set_iam: Vec<(String, String)> = services
        .iter()
        .map(|g| (g.name.clone(), g.iam.clone()))
        .collect();
    let one_set_cedar: Vec<(String, String)> = services
        .iter()
        .map(|g| (g.name.clone(), g.cedar.clone()))
        .collect();
    let one_set_cedar_text: String = one_set_cedar
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");

    // A single timed run of each, printed, before criterion's samples.
    let t = Instant::now();
    let sets: Vec<PolicySet> = per_principal.iter().map(|p| compile_set(p)).collect();
    let e1 = t.elapsed();
    let t = Instant::now();
    let one = compile_set(&one_set_iam);
    let e2 = t.elapsed();
    println!(
        "compile 10k: 1000 sets x 10 policies ({} statements) in {e1:?}; 10,000 policies in one set in {e2:?}",
        sets.iter().map(|s| s.policies().iter().map(|p| p.statements.len()).sum::<usize>()).sum::<usize>()
    );
    drop((sets, one));

    let mut g = c.benchmark_group("compile_10k");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("tollgate_1000x10", |b| {
        b.iter(|| {
            per_principal
                .iter()
                .map(|p| compile_set(p))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("tollgate_one_set", |b| b.iter(|| compile_set(&one_set_iam)));
    g.bench_function("cedar_one_set", |b| {
        b.iter(|| CedarPolicySet::from_str(black_box(&one_set_cedar_text)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, policy_benches);
criterion_main!(benches);
