//! The authorization decision for one authenticated request: mapping, request context (every
//! global condition key the proxy knows), applicable policies, evaluation.

use std::borrow::Cow;
use std::net::IpAddr;

use super::mapping::{self, Mapped, TemplateVars};
use super::message::access_denied_message;
use crate::config::{MappingMode, Snapshot};
use crate::credentials::{Principal, SessionContext};
use crate::policy::{evaluate, Decision, Outcome, Policies, PrincipalInfo, RequestContext};
use crate::sigv4::HttpRequest;

/// What the proxy knows about a request beyond its HTTP content.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// `aws:SourceIp`.
    pub source_ip: Option<IpAddr>,
    /// `aws:SecureTransport`.
    pub secure_transport: bool,
    /// Now, epoch seconds (`aws:CurrentTime`, `aws:EpochTime`).
    pub now: i64,
    /// The scope region (`aws:RequestedRegion`).
    pub region: &'a str,
    /// The scope service (selects the mapping).
    pub service: &'a str,
    /// The form body, when it was read (awsQuery `Action=` in a POST body).
    pub form_body: Option<&'a [u8]>,
    /// `now` already formatted (shared by the requests of one second), when the caller has it.
    pub clock: Option<&'a ClockStrings>,
    /// The TLS client certificate (mutual TLS): `tollgate:ClientCertSubject` and
    /// `tollgate:ClientCertCommonName`.
    pub client_cert: Option<&'a crate::tls::ClientCert>,
}

/// A second's `aws:CurrentTime` and `aws:EpochTime` values, formatted once and shared by every
/// request in that second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockStrings {
    /// Epoch seconds.
    pub now: i64,
    /// ISO 8601 (`2026-11-29T01:02:03Z`).
    pub iso8601: String,
    /// Decimal epoch seconds.
    pub epoch: String,
}

impl ClockStrings {
    /// The strings for `now`.
    pub fn new(now: i64) -> Self {
        Self {
            now,
            iso8601: crate::time::iso8601(now),
            epoch: now.to_string(),
        }
    }
}

/// Why a request is not authorized. Every variant is a 403 `AccessDenied`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzError {
    /// No mapping is configured for the scope's service.
    #[error("no request mapping is configured for service `{0}`")]
    NoMapping(String),
    /// The mapping has no route for this request.
    #[error("no route matches {method} {path} for service `{service}`")]
    Unmatched {
        /// The scope service.
        service: String,
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// The request cannot be mapped safely (malformed or unsupported); default deny.
    #[error("{0}")]
    Refused(String),
    /// The policies deny it.
    #[error("{message}")]
    Denied {
        /// AWS's message ("User: … is not authorized to perform: …").
        message: String,
        /// The action evaluated.
        action: String,
        /// The resource evaluated.
        resource: String,
        /// The decision.
        decision: Box<Decision>,
    },
}

/// An allowed request, and what was decided.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The action (`None` when an unmatched request was let through by `unmatched = "authenticated"`).
    pub action: Option<String>,
    /// The resource.
    pub resource: Option<String>,
    /// The decision of the main action.
    pub decision: Option<Decision>,
}

/// The policy engine's view of an authenticated principal.
pub fn principal_info(p: &Principal) -> &PrincipalInfo {
    p.policy_info()
}

fn map_request(
    snapshot: &Snapshot,
    req: &HttpRequest<'_>,
    facts: &Facts<'_>,
) -> Result<(Option<Mapped>, String), AuthzError> {
    let mapping = snapshot
        .access
        .mapping(facts.service)
        .ok_or_else(|| AuthzError::NoMapping(facts.service.to_owned()))?;
    let vars = TemplateVars {
        region: facts.region,
        account: &mapping.account,
        method: req.method,
    };
    // A request the upstream might read differently from the mapping is refused, whatever the
    // mapping does with unmatched requests.
    let ambiguous = match &mapping.mode {
        MappingMode::Rest(_) => mapping::ambiguous_path(req.path),
        MappingMode::AwsJson { .. } => mapping::ambiguous_target(req.headers),
        MappingMode::AwsQuery { .. } => mapping::ambiguous_action(req.query, facts.form_body),
        MappingMode::S3 { .. } => None,
    };
    if let Some(why) = ambiguous {
        return Err(AuthzError::Refused(format!(
            "the request {why}: the upstream could read it as another request than the one \
             authorized"
        )));
    }
    let mapped = match &mapping.mode {
        MappingMode::Rest(routes) => routes
            .map(
                req.method,
                &mapping::merge_slashes(req.path),
                req.query,
                req.headers,
                &vars,
            )
            .map_err(|why| {
                AuthzError::Refused(format!(
                    "the request {why}: the upstream could read it as another request than \
                     the one authorized"
                ))
            })?,
        MappingMode::AwsJson {
            iam_service,
            resource,
        } => {
            let resource = render_resource(resource, &vars);
            mapping::map_aws_json(iam_service, req.headers, &resource)
        }
        MappingMode::AwsQuery {
            iam_service,
            resource,
        } => {
            let resource = render_resource(resource, &vars);
            mapping::map_aws_query(iam_service, req.query, facts.form_body, &resource)
        }
        MappingMode::S3 {
            virtual_host_suffixes,
        } => Some(map_s3(req, virtual_host_suffixes, facts.form_body)?),
    };
    match mapped {
        Some(m) => Ok((Some(m), mapping.account.clone())),
        None if mapping.allow_unmatched => Ok((None, mapping.account.clone())),
        None => Err(AuthzError::Unmatched {
            service: facts.service.to_owned(),
            method: req.method.to_owned(),
            path: req.path.to_owned(),
        }),
    }
}

fn render_resource(template: &str, vars: &TemplateVars<'_>) -> String {
    match mapping::Template::parse(template) {
        Ok(t) => t.render(&[], vars),
        Err(_) => template.to_owned(),
    }
}

fn s3_operation(
    req: &HttpRequest<'_>,
    suffixes: &[String],
) -> Result<super::s3::S3Request, AuthzError> {
    let method: http::Method = req
        .method
        .parse()
        .map_err(|_| AuthzError::Refused(format!("unsupported method `{}`", req.method)))?;
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.authority);
    super::s3::map_s3(&method, host, req.path, req.query, req.headers, suffixes)
        .map_err(|e| AuthzError::Refused(format!("the S3 request cannot be authorized: {e}")))
}

/// S3: the operation, with per-key checks for `DeleteObjects` read from its XML body. An S3
/// request that cannot be mapped is always refused (never "unmatched").
fn map_s3(
    req: &HttpRequest<'_>,
    suffixes: &[String],
    body: Option<&[u8]>,
) -> Result<Mapped, AuthzError> {
    let op = s3_operation(req, suffixes)?;
    let mut also: Vec<(String, String)> = op
        .extra_actions
        .iter()
        .map(|(a, r)| ((*a).to_owned(), r.clone()))
        .collect();
    if op.requires_body() {
        if op.operation != "DeleteObjects" {
            return Err(AuthzError::Refused(format!(
                "{} is not supported: its object keys are in the request body",
                op.operation
            )));
        }
        let body = body.ok_or_else(|| {
            AuthzError::Refused("DeleteObjects needs its body to authorize each key".into())
        })?;
        let text = std::str::from_utf8(body)
            .map_err(|_| AuthzError::Refused("the DeleteObjects body is not UTF-8 XML".into()))?;
        let entries = delete_entries(text).map_err(|why| {
            AuthzError::Refused(format!(
                "the DeleteObjects body cannot be authorized: {why}"
            ))
        })?;
        if entries.is_empty() {
            return Err(AuthzError::Refused(
                "the DeleteObjects body names no object".into(),
            ));
        }
        for (key, version) in entries {
            also.extend(
                op.per_key_checks(&key, version.as_deref())
                    .into_iter()
                    .map(|(a, r)| (a.to_owned(), r)),
            );
        }
    }
    Ok(Mapped {
        action: op.action.to_owned(),
        resource: op.resource,
        keys: op
            .condition_keys
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        also,
    })
}

/// Most objects one `DeleteObjects` request may name (S3's limit).
const MAX_DELETE_OBJECTS: usize = 1000;

/// The `(Key, VersionId)` entries of a `DeleteObjects` body, read by an XML parser the way S3
/// reads them: comments skipped, CDATA sections, character references and the predefined
/// entities decoded, line ends normalized. Anything S3's schema does not have — another element,
/// an attribute (but `xmlns` on `Delete`), a namespace prefix, a DTD or processing instruction,
/// a second `Key` in one `Object`, text between elements, more than 1,000 objects — is refused:
/// the keys authorized must be exactly the keys the upstream will delete, so nothing may be
/// read one way here and another way there.
pub fn delete_entries(xml: &str) -> Result<Vec<(String, Option<String>)>, &'static str> {
    use quick_xml::events::Event;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Element {
        Delete,
        Quiet,
        Object,
        Key,
        VersionId,
        /// `ETag`, `LastModifiedTime`, `Size`: conditions S3 checks; nothing to authorize.
        Other,
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut open: Vec<Element> = Vec::new();
    let mut done = false;
    let mut text = String::new();
    let (mut key, mut version): (Option<String>, Option<String>) = (None, None);
    let mut entries = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|_| "it is not well-formed XML")?;
        let (start, end) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.name();
            if name.prefix().is_some() {
                return Err("it uses a namespace prefix");
            }
            let element = match (open.last(), name.as_ref()) {
                (None, "Delete") if !done => Element::Delete,
                (Some(Element::Delete), "Quiet") => Element::Quiet,
                (Some(Element::Delete), "Object") => Element::Object,
                (Some(Element::Object), "Key") if key.is_none() => Element::Key,
                (Some(Element::Object), "VersionId") if version.is_none() => Element::VersionId,
                (Some(Element::Object), "ETag" | "LastModifiedTime" | "Size") => Element::Other,
                _ => return Err("it has an element S3's DeleteObjects does not"),
            };
            for attr in e.attributes() {
                let attr = attr.map_err(|_| "it is not well-formed XML")?;
                if !(element == Element::Delete && attr.key.as_ref() == "xmlns") {
                    return Err("it has an attribute S3's DeleteObjects does not");
                }
            }
            open.push(element);
            text.clear();
            if !end {
                continue;
            }
        }
        match event {
            Event::Start(_) => {}
            Event::End(_) | Event::Empty(_) => {
                let closed = open.pop().ok_or("it is not well-formed XML")?;
                match closed {
                    Element::Key => key = Some(std::mem::take(&mut text)),
                    Element::VersionId => version = Some(std::mem::take(&mut text)),
                    Element::Object => {
                        let k = key.take().ok_or("an Object has no Key")?;
                        entries.push((k, version.take()));
                        if entries.len() > MAX_DELETE_OBJECTS {
                            return Err("it names more than 1000 objects");
                        }
                    }
                    Element::Delete => done = true,
                    Element::Quiet | Element::Other => {}
                }
                text.clear();
            }
            Event::Text(t) => match open.last() {
                Some(Element::Key | Element::VersionId | Element::Quiet | Element::Other) => {
                    text.push_str(&t.xml10_content());
                }
                _ if t.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) => {}
                _ => return Err("it has text outside the elements that hold text"),
            },
            Event::CData(c) => match open.last() {
                Some(Element::Key | Element::VersionId | Element::Quiet | Element::Other) => {
                    text.push_str(&c.xml10_content());
                }
                _ => return Err("it has text outside the elements that hold text"),
            },
            Event::GeneralRef(r) => {
                if !matches!(
                    open.last(),
                    Some(Element::Key | Element::VersionId | Element::Quiet | Element::Other)
                ) {
                    return Err("it has text outside the elements that hold text");
                }
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => return Err("it refers to an undefined entity"),
                    },
                    Err(_) => return Err("it has an invalid character reference"),
                };
                text.push(c);
            }
            Event::Comment(_) => {}
            Event::Decl(_) if open.is_empty() && !done => {}
            Event::Eof => break,
            _ => return Err("it has a declaration S3's DeleteObjects does not allow"),
        }
    }
    if !done || !open.is_empty() {
        return Err("it is not a whole Delete document");
    }
    Ok(entries)
}

/// Whether authorizing this request needs its whole body first (S3 `DeleteObjects`; awsQuery
/// requests whose `Action` is in a form body).
pub fn needs_body(snapshot: &Snapshot, req: &HttpRequest<'_>, service: &str) -> bool {
    match snapshot.access.mapping(service).map(|m| &m.mode) {
        Some(MappingMode::S3 {
            virtual_host_suffixes,
        }) => s3_operation(req, virtual_host_suffixes).is_ok_and(|op| op.requires_body()),
        Some(MappingMode::AwsQuery { .. }) => {
            req.method == "POST" && !req.query.is_some_and(|q| q.contains("Action="))
        }
        _ => false,
    }
}

/// Authorizes an authenticated request.
pub fn authorize(
    snapshot: &Snapshot,
    principal: &Principal,
    req: &HttpRequest<'_>,
    facts: &Facts<'_>,
) -> Result<Authorized, AuthzError> {
    let (mapped, default_account) = map_request(snapshot, req, facts)?;
    let Some(mapped) = mapped else {
        return Ok(Authorized {
            action: None,
            resource: None,
            decision: None,
        });
    };
    let info = principal_info(principal);
    let session = principal.session.as_ref();
    let main = decide(
        snapshot,
        info,
        session,
        &mapped.action,
        &mapped.resource,
        &mapped.keys,
        &[],
        &default_account,
        req,
        facts,
        None,
    );
    if main.outcome != Outcome::Allowed {
        return Err(denied(info, &mapped.action, &mapped.resource, main));
    }
    for (action, resource) in &mapped.also {
        let d = decide(
            snapshot,
            info,
            session,
            action,
            resource,
            &mapped.keys,
            &[],
            &default_account,
            req,
            facts,
            None,
        );
        if d.outcome != Outcome::Allowed {
            return Err(denied(info, action, resource, d));
        }
    }
    Ok(Authorized {
        action: Some(mapped.action),
        resource: Some(mapped.resource),
        decision: Some(main),
    })
}

fn denied(info: &PrincipalInfo, action: &str, resource: &str, d: Decision) -> AuthzError {
    AuthzError::Denied {
        message: access_denied_message(&info.arn, action, resource, &d),
        action: action.to_owned(),
        resource: resource.to_owned(),
        decision: Box::new(d),
    }
}

/// Evaluates one action on one resource for a principal (and its session, for temporary
/// credentials). `resource_policy` replaces the configured resource policy (a role's trust
/// policy for `sts:AssumeRole*`).
#[allow(clippy::too_many_arguments)]
pub fn decide(
    snapshot: &Snapshot,
    info: &PrincipalInfo,
    session: Option<&SessionContext>,
    action: &str,
    resource: &str,
    keys: &[(String, String)],
    multi: &[(String, Vec<String>)],
    default_account: &str,
    req: &HttpRequest<'_>,
    facts: &Facts<'_>,
    resource_policy: Option<&crate::policy::PolicySet>,
) -> Decision {
    if let Some(d) = session.and_then(|s| revoked(snapshot, s)) {
        return d;
    }
    let entry = snapshot.access.resource(resource);
    let resource_account = entry.map_or(default_account, |e| e.account.as_str());
    let source_ip = facts.source_ip.map(crate::net::IpText::new);
    let mut ctx =
        RequestContext::new(info, action, resource).with_resource_account(resource_account);
    if let Some(ip) = &source_ip {
        ctx.set("aws:sourceip", ip.as_str());
    }
    ctx.set(
        "aws:securetransport",
        if facts.secure_transport {
            "true"
        } else {
            "false"
        },
    );
    match facts.clock.filter(|c| c.now == facts.now) {
        Some(c) => {
            ctx.set("aws:currenttime", c.iso8601.as_str());
            ctx.set("aws:epochtime", c.epoch.as_str());
        }
        None => {
            ctx.set("aws:currenttime", crate::time::iso8601(facts.now));
            ctx.set("aws:epochtime", facts.now.to_string());
        }
    }
    if let Some(cert) = facts.client_cert {
        ctx.set("tollgate:clientcertsubject", cert.subject.as_str());
        if let Some(cn) = &cert.common_name {
            ctx.set("tollgate:clientcertcommonname", cn.as_str());
        }
    }
    ctx.set("aws:requestedregion", facts.region);
    ctx.set("aws:resourceaccount", resource_account);
    if let Some(ua) = req
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        ctx.set("aws:useragent", ua);
    }
    if let Some(r) = req
        .headers
        .get(http::header::REFERER)
        .and_then(|v| v.to_str().ok())
    {
        ctx.set("aws:referer", r);
    }
    let org = snapshot.access.organization.as_ref();
    let principal_path = org.and_then(|o| o.path(&info.account));
    let resource_path = org.and_then(|o| o.path(resource_account));
    if let (Some(o), Some(p)) = (org, principal_path) {
        ctx.set("aws:principalorgid", o.id.as_str());
        ctx.set_multi(
            "aws:principalorgpaths",
            vec![Cow::Borrowed(p.org_path.as_str())],
        );
    }
    if let (Some(o), Some(p)) = (org, resource_path) {
        ctx.set("aws:resourceorgid", o.id.as_str());
        ctx.set_multi(
            "aws:resourceorgpaths",
            vec![Cow::Borrowed(p.org_path.as_str())],
        );
    }
    if let Some(e) = entry {
        for (k, v) in &e.tags {
            ctx.set(
                format!("aws:resourcetag/{}", k.to_ascii_lowercase()),
                v.as_str(),
            );
        }
    }
    if let Some(session) = session {
        session_keys(&mut ctx, snapshot, session, facts.now);
    }
    for (k, v) in keys {
        ctx.set(k.as_str(), v.as_str());
    }
    for (k, values) in multi {
        ctx.set_multi(
            k.as_str(),
            values.iter().map(|v| Cow::Borrowed(v.as_str())).collect(),
        );
    }
    let identity = snapshot.identity_policies(principal_arn_of(info));
    let empty: [crate::policy::PolicySet; 0] = [];
    let policies = Policies {
        identity: identity.map(|s| s.as_ref()),
        boundary: None,
        session: session.and_then(|s| s.policies.as_deref()),
        resource: resource_policy.or_else(|| entry.and_then(|e| e.policy.as_deref())),
        scps: principal_path.map_or(&empty[..], |p| p.scps.as_slice()),
        rcps: resource_path.map_or(&empty[..], |p| p.rcps.as_slice()),
        principal_in_management_account: org.is_some_and(|o| o.is_management(&info.account)),
        resource_in_management_account: org.is_some_and(|o| o.is_management(resource_account)),
    };
    evaluate(&policies, &ctx)
}

/// Configured revocations (`[[sts.revocations]]`) work as AWS's "revoke older sessions" policy:
/// an explicit identity-policy deny of every action for sessions issued before the cut-off.
fn revoked(snapshot: &Snapshot, session: &SessionContext) -> Option<Decision> {
    let c = &session.claims;
    let sts = snapshot.sts.as_ref()?;
    let both = [c.arn.as_str(), c.parent_user_arn.as_deref().unwrap_or("")];
    let principals = if c.parent_user_arn.is_some() {
        &both[..]
    } else {
        &both[..1]
    };
    sts.revocations
        .revoked(c.issued_at, c.role_arn.as_deref(), principals, &c.account)
        .then(|| Decision {
            outcome: Outcome::ExplicitDeny,
            statement: Some(crate::policy::StatementRef {
                policy: "AWSRevokeOlderSessions".into(),
                policy_type: crate::policy::PolicyType::Identity,
                index: 0,
                sid: Some("RevokeOlderSessions".into()),
            }),
            denied_by: Some(crate::policy::PolicyType::Identity),
        })
}

/// The keys a session adds to every request it signs (IAM User Guide, global condition keys).
fn session_keys<'a>(
    ctx: &mut RequestContext<'a>,
    snapshot: &Snapshot,
    session: &'a SessionContext,
    now: i64,
) {
    let c = &session.claims;
    ctx.set("aws:tokenissuetime", crate::time::iso8601(c.issued_at));
    ctx.set(
        "aws:multifactorauthpresent",
        if c.mfa_authenticated { "true" } else { "false" },
    );
    if c.mfa_authenticated {
        ctx.set(
            "aws:multifactorauthage",
            now.saturating_sub(c.issued_at).max(0).to_string(),
        );
    }
    if let Some(s) = &c.source_identity {
        ctx.set("aws:sourceidentity", s.as_str());
    }
    if let Some(w) = &c.web_identity {
        ctx.set(
            "aws:federatedprovider",
            crate::sts::federated_provider(snapshot, &w.provider, &c.account),
        );
    }
}

fn principal_arn_of(info: &PrincipalInfo) -> &str {
    info.principal_arn()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sts::token::{SessionClaims, SessionKind};

    fn entries(xml: &str) -> Result<Vec<(String, Option<String>)>, &'static str> {
        delete_entries(xml)
    }

    fn keys(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn delete_objects_bodies_as_sdks_send_them() {
        // boto3's shape: declaration, namespace, Quiet last.
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Object><Key>a</Key></Object>
  <Object><Key>b&amp;c &lt;d&gt;</Key><VersionId>v1</VersionId></Object>
  <Object><Key>e</Key><ETag>"x"</ETag><Size>3</Size></Object>
  <Quiet>true</Quiet>
</Delete>"#;
        assert_eq!(
            entries(xml).unwrap(),
            keys(&[("a", None), ("b&c <d>", Some("v1")), ("e", None)])
        );
        // No namespace, a key with spaces kept as they are, and no objects at all.
        assert_eq!(
            entries("<Delete><Object><Key> a b </Key></Object></Delete>").unwrap(),
            keys(&[(" a b ", None)])
        );
        assert_eq!(
            entries("<Delete><Quiet>false</Quiet></Delete>").unwrap(),
            vec![]
        );
    }

    /// The keys authorized are the keys an XML parser (S3's, moto's) reads: a comment, a CDATA
    /// section or a character reference cannot show one key to Tollgate and another upstream.
    /// (The string search this replaced took the commented-out key, and the CDATA markup and
    /// the reference literally.)
    #[test]
    fn delete_objects_keys_are_read_as_an_xml_parser_reads_them() {
        let one = |xml: &str| entries(xml).unwrap();
        assert_eq!(
            one("<Delete><Object><!-- <Key>public/x</Key> --><Key>secret</Key></Object></Delete>"),
            keys(&[("secret", None)])
        );
        assert_eq!(
            one("<Delete><Object><Key><![CDATA[secret]]></Key></Object></Delete>"),
            keys(&[("secret", None)])
        );
        assert_eq!(
            one("<Delete><Object><Key>&#115;e&#x63;ret</Key></Object></Delete>"),
            keys(&[("secret", None)])
        );
        assert_eq!(
            one("<Delete><Object><Key>a\r\nb</Key></Object></Delete>"),
            keys(&[("a\nb", None)])
        );
    }

    #[test]
    fn delete_objects_bodies_outside_s3s_schema_are_refused() {
        for xml in [
            // Two keys in one object: which one would the upstream delete?
            "<Delete><Object><Key>public/x</Key><Key>secret</Key></Object></Delete>",
            // An attribute, a namespace prefix, an element S3 does not have.
            "<Delete><Object id=\"1\"><Key>secret</Key></Object></Delete>",
            "<Delete xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\"><s3:Object><s3:Key>k</s3:Key></s3:Object></Delete>",
            "<Delete><Object><Key>k</Key><Extra/></Object></Delete>",
            "<Delete><Objects><Key>k</Key></Objects></Delete>",
            // A DTD (entities), an undefined entity, a processing instruction.
            "<!DOCTYPE Delete [<!ENTITY k \"secret\">]><Delete><Object><Key>&k;</Key></Object></Delete>",
            "<Delete><Object><Key>&k;</Key></Object></Delete>",
            "<Delete><?pi x?><Object><Key>k</Key></Object></Delete>",
            // Text between elements, an object without a key, unclosed or second roots.
            "<Delete>k<Object><Key>k</Key></Object></Delete>",
            "<Delete><Object></Object></Delete>",
            "<Delete><Object><Key>k</Key></Object>",
            "<Delete></Delete><Delete><Object><Key>k</Key></Object></Delete>",
            "<Delete><Object><Key>k</Key></Object></Wrong>",
            "",
        ] {
            assert!(entries(xml).is_err(), "accepted: {xml}");
        }
        let many = format!(
            "<Delete>{}</Delete>",
            "<Object><Key>k</Key></Object>".repeat(1001)
        );
        assert_eq!(entries(&many), Err("it names more than 1000 objects"));
        let most = format!(
            "<Delete>{}</Delete>",
            "<Object><Key>k</Key></Object>".repeat(1000)
        );
        assert_eq!(entries(&most).unwrap().len(), 1000);
    }

    fn session(source: &str, issued_at: i64) -> Principal {
        let snapshot = crate::config::load_demo(1).unwrap();
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*",
            "Condition":{"StringEquals":{"aws:SourceIdentity":"alice"},
                         "Bool":{"aws:MultiFactorAuthPresent":"false"},
                         "DateGreaterThan":{"aws:TokenIssueTime":"2026-06-01T00:00:00Z"}}}]}"#;
        let claims = SessionClaims {
            access_key_id: "ASIAAAAAAAAAAAAAAAAA".into(),
            issued_at,
            expires_at: issued_at + 3600,
            account: "123456789012".into(),
            kind: SessionKind::AssumedRole,
            arn: "arn:aws:sts::123456789012:assumed-role/deployer/s".into(),
            user_id: "AROAEXAMPLE:s".into(),
            role_arn: Some("arn:aws:iam::123456789012:role/deployer".into()),
            role_id: None,
            session_name: Some("s".into()),
            source_identity: Some(source.into()),
            tags: vec![],
            transitive_tag_keys: vec![],
            session_policy: Some(policy.into()),
            policy_arns: vec![],
            chained: false,
            mfa_authenticated: false,
            web_identity: None,
            parent_user_arn: None,
        };
        crate::sts::session::session_principal(&snapshot, claims).unwrap()
    }

    fn allowed(p: &Principal, now: i64, clock: bool) -> bool {
        let snapshot = crate::config::load_demo(1).unwrap();
        let headers = http::HeaderMap::new();
        let req = HttpRequest {
            method: "POST",
            path: "/deployments/1",
            query: None,
            authority: None,
            headers: &headers,
        };
        let strings = ClockStrings::new(now);
        let facts = Facts {
            source_ip: None,
            secure_transport: false,
            now,
            region: "us-east-1",
            service: "execute-api",
            form_body: None,
            clock: clock.then_some(&strings),
            client_cert: None,
        };
        decide(
            &snapshot,
            p.policy_info(),
            p.session.as_ref(),
            "execute-api:Invoke",
            "arn:aws:execute-api:us-east-1:123456789012:demo/prod/POST/deployments/1",
            &[],
            &[],
            "123456789012",
            &req,
            &facts,
            None,
        )
        .is_allowed()
    }

    #[test]
    fn session_keys_reach_the_policies() {
        let now = 1_800_000_000;
        // aws:SourceIdentity, aws:MultiFactorAuthPresent and aws:TokenIssueTime all hold.
        assert!(allowed(&session("alice", now - 60), now, true));
        assert!(allowed(&session("alice", now - 60), now, false));
        // Another source identity: the session policy's condition fails.
        assert!(!allowed(&session("bob", now - 60), now, true));
        // Issued before the session policy's cut-off (and before the demo's revocation).
        assert!(!allowed(&session("alice", 1_780_000_000), now, true));
    }
}
