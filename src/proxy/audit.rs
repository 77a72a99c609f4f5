//! The audit record of one call, filled in as the call proceeds ([`Draft`]) and submitted when
//! it ends — or, if the client goes away mid-call, when the draft is dropped.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderValue;

use super::Listener;
use crate::audit::pipeline::Ticket;
use crate::audit::{Category, Deferred, Detail, ErrorInfo, Event, Identity, ResourceRef, Value};
use crate::authn::Authenticated;
use crate::authz::{Authorized, AuthzError};
use crate::config::{RequestParameters, Snapshot};
use crate::policy::{Decision, Outcome};
use crate::sigv4::AuthForm;
use crate::sts::service::StsResponse;

/// What an STS call adds to its record.
struct StsPart {
    action: Option<&'static str>,
    parameters: Option<Vec<(String, Value)>>,
    response: Option<Vec<(String, Value)>>,
    role_arn: Option<String>,
    error: Option<ErrorInfo>,
}

/// What a call has told its record so far; finished into an [`Event`] by the audit writer.
struct Facts {
    snapshot: Arc<Snapshot>,
    event_time: i64,
    request_id: Arc<str>,
    source_ip: IpAddr,
    user_agent: Option<HeaderValue>,
    host: Option<HeaderValue>,
    method: http::Method,
    uri: http::Uri,
    listener: Listener,
    identity: Identity,
    service: Option<Arc<str>>,
    region: Option<Arc<str>>,
    detail: Detail,
    target: Option<(String, String)>,
    decision: Option<Decision>,
    sts: Option<StsPart>,
    error: Option<ErrorInfo>,
}

/// The record of one call in the making: empty (and free) when nothing is recorded.
pub(crate) struct Draft<'a> {
    ticket: Option<Ticket<'a>>,
    facts: Option<Box<Facts>>,
}

impl<'a> Draft<'a> {
    /// A draft for a request (nothing is kept when `ticket` records nothing).
    pub(crate) fn new(
        ticket: Ticket<'a>,
        snapshot: &Arc<Snapshot>,
        request_id: &str,
        parts: (&http::Method, &http::Uri, &http::HeaderMap),
        source_ip: IpAddr,
        listener: Listener,
    ) -> Self {
        let (method, uri, headers) = parts;
        let facts = ticket.records().then(|| {
            Box::new(Facts {
                snapshot: snapshot.clone(),
                event_time: 0,
                request_id: Arc::from(request_id),
                source_ip,
                user_agent: headers.get(http::header::USER_AGENT).cloned(),
                host: headers.get(http::header::HOST).cloned(),
                method: method.clone(),
                uri: uri.clone(),
                listener,
                identity: Identity::Anonymous,
                service: None,
                region: None,
                detail: Detail::default(),
                target: None,
                decision: None,
                sts: None,
                error: None,
            })
        });
        Self {
            ticket: Some(ticket),
            facts,
        }
    }

    /// False when nothing will be recorded (no sinks, or a dropped record): callers skip work.
    pub(crate) fn records(&self) -> bool {
        self.facts.is_some()
    }

    /// An authentication failure: who the request claimed to be (never trusted).
    pub(crate) fn claimed(&mut self, headers: &http::HeaderMap, query: Option<&str>) {
        let Some(f) = self.facts.as_deref_mut() else {
            return;
        };
        if let Some((form, service)) = crate::sigv4::claimed_scope(headers, query) {
            f.service = Some(Arc::from(service));
            f.detail.signature_version = Some("SigV4");
            f.detail.authentication_method = Some(method_name(form));
            f.identity = Identity::Unknown {
                access_key_id: claimed_access_key(headers, query),
            };
        }
    }

    /// Authentication succeeded.
    pub(crate) fn authenticated(&mut self, authd: &Authenticated) {
        let Some(f) = self.facts.as_deref_mut() else {
            return;
        };
        f.identity = Identity::Principal {
            principal: authd.principal.clone(),
            access_key_id: authd.access_key_id.clone(),
        };
        f.service = Some(authd.service.clone());
        f.region = Some(authd.region.clone());
        f.detail.signature_version = Some("SigV4");
        f.detail.authentication_method = Some(method_name(authd.form));
        f.detail.payload = Some(authd.payload_mode);
    }

    /// The authorization decision (allowed): kept as is, formatted by the writer.
    pub(crate) fn authorized(&mut self, a: Authorized) {
        let Some(f) = self.facts.as_deref_mut() else {
            return;
        };
        if let (Some(action), Some(resource)) = (a.action, a.resource) {
            f.target = Some((action, resource));
        }
        f.decision = a.decision;
    }

    /// The authorization decision (refused).
    pub(crate) fn refused(&mut self, e: &AuthzError) {
        let Some(f) = self.facts.as_deref_mut() else {
            return;
        };
        if let AuthzError::Denied {
            action,
            resource,
            decision,
            ..
        } = e
        {
            f.target = Some((action.clone(), resource.clone()));
            f.decision = Some((**decision).clone());
        }
    }

    /// An STS call's outcome.
    pub(crate) fn sts(&mut self, r: &StsResponse) {
        let Some(f) = self.facts.as_deref_mut() else {
            return;
        };
        if let Some((provider, audience, subject)) = &r.web_identity {
            if matches!(f.identity, Identity::Anonymous) {
                f.identity = Identity::WebIdentity {
                    provider: provider.clone(),
                    audience: audience.clone(),
                    subject: subject.clone(),
                };
            }
        }
        f.service = Some(Arc::from("sts"));
        f.sts = Some(StsPart {
            action: r.action,
            parameters: r.audit_parameters.clone(),
            response: r.audit_response(),
            role_arn: r.role_arn.clone(),
            error: r.error_code.map(|code| ErrorInfo {
                code,
                message: r.error_message.clone().unwrap_or_default(),
            }),
        });
    }

    /// The call ended: queues its record.
    pub(crate) fn finish(mut self, error: Option<ErrorInfo>) {
        self.submit(error);
    }

    fn submit(&mut self, error: Option<ErrorInfo>) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let Some(mut facts) = self.facts.take() else {
            return;
        };
        facts.event_time = crate::time::now_epoch();
        facts.error = error;
        ticket.submit(facts);
    }
}

impl Facts {
    /// GET, HEAD and OPTIONS do not change anything.
    fn safe_method(&self) -> bool {
        matches!(
            self.method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        )
    }

    fn apply_decision(&mut self, d: &Decision) {
        self.detail.decision = Some(match d.outcome {
            Outcome::Allowed => "Allowed",
            Outcome::ExplicitDeny => "ExplicitDeny",
            Outcome::ImplicitDeny => "ImplicitDeny",
        });
        if let Some(s) = &d.statement {
            self.detail.policy = Some(s.policy.to_string());
            self.detail.statement = Some(match &s.sid {
                Some(sid) => sid.to_string(),
                None => format!("#{}", s.index),
            });
        }
        self.detail.denied_by = d.denied_by.map(|t| t.as_str());
    }
}

impl Deferred for Facts {
    /// Runs on the audit writer thread.
    fn into_event(self: Box<Self>) -> Event {
        let mut f = *self;
        let snapshot = f.snapshot.clone();
        let settings = &snapshot.audit;
        let default_region = snapshot.auth.regions.iter().next().unwrap_or("us-east-1");
        let region = f
            .region
            .clone()
            .unwrap_or_else(|| Arc::from(default_region));
        let principal_account = match &f.identity {
            Identity::Principal { principal, .. } => Some(principal.account_id.clone()),
            _ => None,
        };
        let default_account = snapshot
            .accounts
            .first()
            .map_or("000000000000", |a| a.id.as_str());
        let mut resources = Vec::new();
        let mut request_parameters = None;
        let mut response_elements = None;
        if let Some((action, _)) = &f.target {
            f.detail.action = Some(action.clone());
        }
        if let Some(d) = f.decision.take() {
            f.apply_decision(&d);
        }
        let (event_source, event_name, read_only, category, error) = match f.sts.take() {
            Some(sts) => {
                if let Some(arn) = &sts.role_arn {
                    resources.push(ResourceRef {
                        arn: arn.clone(),
                        account_id: arn_account(arn).map(Arc::from),
                        kind: Arc::from("AWS::IAM::Role"),
                    });
                }
                if settings.request_parameters != RequestParameters::None {
                    request_parameters = sts.parameters;
                }
                response_elements = sts.response;
                (
                    Arc::from("sts.amazonaws.com"),
                    Arc::from(sts.action.unwrap_or("Unknown")),
                    Some(true),
                    Category::Management,
                    sts.error.or(f.error.take()),
                )
            }
            None => {
                let (source, name, read_only) = match &f.target {
                    Some((action, resource)) => {
                        let (prefix, name) = action.split_once(':').unwrap_or(("", action));
                        if resource != "*" {
                            resources.extend(resource_refs(prefix, resource));
                        }
                        (
                            settings.event_source(prefix),
                            Arc::from(name),
                            Some(is_read_only(name).unwrap_or_else(|| f.safe_method())),
                        )
                    }
                    None => (
                        settings.event_source(f.service.as_deref().unwrap_or("unknown")),
                        Arc::from(f.method.as_str()),
                        Some(f.safe_method()),
                    ),
                };
                request_parameters = f.request_parameters(settings.request_parameters);
                (source, name, read_only, Category::Data, f.error.take())
            }
        };
        let recipient = resources
            .iter()
            .find_map(|r| r.account_id.clone())
            .or_else(|| principal_account.map(|a| Arc::from(a.as_str())))
            .unwrap_or_else(|| Arc::from(default_account));
        f.detail.mode = Some(f.listener.as_str());
        Event {
            event_time: f.event_time,
            event_id: super::gate::random_uuid(),
            request_id: f.request_id,
            identity: f.identity,
            event_source,
            event_name,
            region,
            source_ip: f.source_ip,
            user_agent: f.user_agent,
            error,
            request_parameters,
            response_elements,
            detail: f.detail,
            read_only,
            resources,
            category,
            recipient_account: recipient,
            tls: None,
        }
    }
}

impl Facts {
    /// `requestParameters` of a proxied call.
    fn request_parameters(&self, mode: RequestParameters) -> Option<Vec<(String, Value)>> {
        if mode == RequestParameters::None {
            return None;
        }
        let mut out = Vec::new();
        let is_s3 = self
            .target
            .as_ref()
            .is_some_and(|(action, _)| action.starts_with("s3:"));
        if let (true, Some((_, resource))) = (is_s3, &self.target) {
            if let Some(rest) = resource.strip_prefix("arn:aws:s3:::") {
                let (bucket, key) = match rest.split_once('/') {
                    Some((b, k)) => (b, Some(k)),
                    None => (rest, None),
                };
                out.push(("bucketName".to_owned(), Value::Str(bucket.to_owned())));
                if let Some(k) = key {
                    out.push(("key".to_owned(), Value::Str(k.to_owned())));
                }
            }
        } else {
            out.push(("path".to_owned(), Value::Str(self.uri.path().to_owned())));
        }
        if let Some(host) = self.host.as_ref().and_then(|h| h.to_str().ok()) {
            out.push(("Host".to_owned(), Value::Str(host.to_owned())));
        }
        if mode == RequestParameters::Full {
            if is_s3 {
                out.push(("path".to_owned(), Value::Str(self.uri.path().to_owned())));
            }
            out.push((
                "method".to_owned(),
                Value::Str(self.method.as_str().to_owned()),
            ));
            if let Some(q) = self.uri.query() {
                let params = query_parameters(q);
                if !params.is_empty() {
                    out.push(("query".to_owned(), Value::Object(params)));
                }
            }
        }
        Some(out)
    }
}

impl Drop for Draft<'_> {
    fn drop(&mut self) {
        // Not finished: the client went away mid-call (hyper dropped the request future).
        if self.facts.is_some() {
            self.submit(Some(ErrorInfo {
                code: "RequestCancelled",
                message: "the client closed the connection before the response was complete"
                    .to_owned(),
            }));
        }
    }
}

fn method_name(form: AuthForm) -> &'static str {
    match form {
        AuthForm::Header => "AuthHeader",
        AuthForm::Query => "QueryString",
    }
}

/// The access key id a request names, when it has the shape of one (never trusted, only shown).
fn claimed_access_key(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    let (_, credential) = crate::sigv4::claimed_credential(headers, query)?;
    let key = credential.split(['/', '%']).next()?;
    let valid = (16..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then(|| key.to_owned())
}

/// The query parameters for `requestParameters` (full mode), without the signing parameters.
fn query_parameters(query: &str) -> Vec<(String, Value)> {
    const SECRET_PARAMS: [&str; 5] = [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "X-Amz-Algorithm",
        "X-Amz-SignedHeaders",
    ];
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = percent_decode(k);
            if SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(&k)) {
                return None;
            }
            Some((k, Value::Str(percent_decode(v))))
        })
        .take(64)
        .collect()
}

/// A query component, percent-decoded (`+` is a space); kept as sent when malformed.
fn percent_decode(s: &str) -> String {
    match crate::sigv4::percent_decode(s, true) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => s.to_owned(),
    }
}

/// The account field of an ARN, when it has one.
fn arn_account(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (!account.is_empty()).then_some(account)
}

/// `resources` for a mapped action's resource.
fn resource_refs(prefix: &str, resource: &str) -> Vec<ResourceRef> {
    if prefix == "s3" {
        if let Some(rest) = resource.strip_prefix("arn:aws:s3:::") {
            return match rest.split_once('/') {
                Some((bucket, _)) => vec![
                    ResourceRef {
                        arn: resource.to_owned(),
                        account_id: None,
                        kind: Arc::from("AWS::S3::Object"),
                    },
                    ResourceRef {
                        arn: format!("arn:aws:s3:::{bucket}"),
                        account_id: None,
                        kind: Arc::from("AWS::S3::Bucket"),
                    },
                ],
                None => vec![ResourceRef {
                    arn: resource.to_owned(),
                    account_id: None,
                    kind: Arc::from("AWS::S3::Bucket"),
                }],
            };
        }
    }
    // `arn:aws:orders:us-east-1:123456789012:order/42` → `AWS::Orders::Order`.
    let kind = resource
        .split(':')
        .nth(5)
        .and_then(|r| r.split(['/', ':']).next())
        .filter(|t| !t.is_empty())
        .map_or_else(
            || format!("AWS::{}::Resource", capitalize(prefix)),
            |t| format!("AWS::{}::{}", capitalize(prefix), capitalize(t)),
        );
    vec![ResourceRef {
        arn: resource.to_owned(),
        account_id: arn_account(resource).map(Arc::from),
        kind: Arc::from(kind),
    }]
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `readOnly` by the action's verb, as AWS names operations; `None` when the name says neither
/// (`execute-api:Invoke`): the HTTP method decides.
fn is_read_only(name: &str) -> Option<bool> {
    const READ: [&str; 9] = [
        "Get", "List", "Describe", "Head", "Select", "Query", "Scan", "BatchGet", "Lookup",
    ];
    const WRITE: [&str; 16] = [
        "Put", "Create", "Delete", "Update", "Modify", "Set", "Add", "Remove", "Attach", "Detach",
        "Tag", "Untag", "Restore", "Copy", "Abort", "Complete",
    ];
    if READ.iter().any(|p| name.starts_with(p)) {
        Some(true)
    } else if WRITE.iter().any(|p| name.starts_with(p)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_key_is_read_from_either_form() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc"),
        );
        assert_eq!(
            claimed_access_key(&h, None).as_deref(),
            Some("AKIAIOSFODNN7EXAMPLE")
        );
        let q = "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request";
        assert_eq!(
            claimed_access_key(&http::HeaderMap::new(), Some(q)).as_deref(),
            Some("AKIAIOSFODNN7EXAMPLE")
        );
        assert_eq!(
            claimed_access_key(&http::HeaderMap::new(), Some("X-Amz-Credential=a\"b")),
            None
        );
    }

    #[test]
    fn query_parameters_leave_out_signing() {
        let p =
            query_parameters("prefix=a%2Fb&X-Amz-Signature=abc&x-amz-security-token=t&max-keys=5");
        assert_eq!(
            p,
            vec![
                ("prefix".to_owned(), Value::Str("a/b".to_owned())),
                ("max-keys".to_owned(), Value::Str("5".to_owned())),
            ]
        );
    }

    #[test]
    fn resources_and_read_only() {
        let r = resource_refs("s3", "arn:aws:s3:::b/k/x");
        assert_eq!(r.len(), 2);
        assert_eq!(&*r[0].kind, "AWS::S3::Object");
        assert_eq!(r[1].arn, "arn:aws:s3:::b");
        let r = resource_refs("orders", "arn:aws:orders:us-east-1:123456789012:order/42");
        assert_eq!(&*r[0].kind, "AWS::Orders::Order");
        assert_eq!(r[0].account_id.as_deref(), Some("123456789012"));
        assert_eq!(is_read_only("GetObject"), Some(true));
        assert_eq!(is_read_only("PutObject"), Some(false));
        assert_eq!(is_read_only("Invoke"), None);
    }
}
