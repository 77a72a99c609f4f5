//! The STS operations: who may call them, what they check, the credentials they seal and the XML
//! they answer with. Pure apart from the random numbers for new access key ids; the HTTP side
//! (parsing, signature, web identity key fetching) is in [`super::service`].

use super::oidc::WebIdentity;
use super::params::{StsError, StsRequest};
use super::token::{self, IssuedCredentials, SessionClaims, SessionKind, WebIdentityClaims};
use super::xml;
use crate::authz::{self, Facts};
use crate::config::{Role, Snapshot, StsSettings};
use crate::credentials::{Principal, PrincipalKind};
use crate::policy::{Outcome, PolicyType, PrincipalInfo, PrincipalType};
use crate::sigv4::HttpRequest;

/// `AssumeRole*` default session length.
const DEFAULT_ROLE_SESSION: u32 = 3600;
/// `GetSessionToken` default session length.
const DEFAULT_SESSION_TOKEN: u32 = 43_200;
/// Role chaining caps a session at one hour.
const CHAINED_MAX: u32 = 3600;
/// What the packed size of session policies and tags is measured against (AWS's limit is not
/// published; plain-text policies alone may use 2,048 characters, so packing with tags gets
/// twice that).
const PACKED_LIMIT: usize = 4096;

/// The authenticated caller of a signed STS operation.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// Who signed.
    pub principal: &'a Principal,
    /// The access key id used.
    pub access_key_id: &'a str,
}

/// What an STS call needs besides its parameters. `Debug` shows the request id only (the form body
/// may carry a web identity token).
#[derive(Clone, Copy)]
pub struct Call<'a> {
    /// The configuration in force.
    pub snapshot: &'a Snapshot,
    /// The HTTP request (for `aws:UserAgent` and similar keys).
    pub req: &'a HttpRequest<'a>,
    /// Source IP, region, time.
    pub facts: Facts<'a>,
    /// The request id of the response.
    pub request_id: &'a str,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// What an STS call produced, for the response and for the audit record. `Debug` leaves the body
/// out: it holds the issued secret and session token.
pub struct StsOutcome {
    /// The XML response body.
    pub body: String,
    /// Credentials issued, if any (access key id and expiry are audited; never the secret).
    pub issued: Option<Issued>,
}

impl std::fmt::Debug for StsOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsOutcome")
            .field("body_len", &self.body.len())
            .field("issued", &self.issued)
            .finish()
    }
}

/// An issued session, as CloudTrail records it (`responseElements`).
#[derive(Debug, Clone)]
pub struct Issued {
    /// The temporary access key id.
    pub access_key_id: String,
    /// Expiry, epoch seconds.
    pub expiration: i64,
    /// The assumed-role ARN (or the user ARN for `GetSessionToken`).
    pub arn: String,
    /// `AROA…:session` (or the user id).
    pub assumed_role_id: String,
    /// The session's source identity.
    pub source_identity: Option<String>,
}

/// Runs a signed operation for `caller`, or `AssumeRoleWithWebIdentity` with its verified token.
pub fn execute(
    call: &Call<'_>,
    caller: Option<Caller<'_>>,
    request: &StsRequest,
    web: Option<&WebIdentity>,
) -> Result<StsOutcome, StsError> {
    match (request, caller) {
        (StsRequest::GetCallerIdentity, Some(c)) => Ok(StsOutcome {
            body: xml::get_caller_identity_response(
                &xml::CallerIdentity {
                    arn: &c.principal.arn,
                    user_id: &c.principal.unique_id,
                    account: &c.principal.account_id,
                },
                call.request_id,
            ),
            issued: None,
        }),
        (StsRequest::GetAccessKeyInfo { access_key_id }, Some(c)) => {
            get_access_key_info(call, c, access_key_id)
        }
        (
            StsRequest::GetSessionToken {
                duration_seconds,
                serial_number,
                token_code,
            },
            Some(c),
        ) => get_session_token(
            call,
            c,
            *duration_seconds,
            serial_number.is_some() || token_code.is_some(),
        ),
        (StsRequest::AssumeRole { .. }, Some(c)) => assume_role(call, c, request),
        (StsRequest::AssumeRoleWithWebIdentity { .. }, _) => match web {
            Some(w) => assume_role_with_web_identity(call, request, w),
            None => Err(StsError::invalid_identity_token(
                "The web identity token could not be verified",
            )),
        },
        (_, None) => Err(StsError::missing_authentication_token()),
    }
}

fn sts_settings(snapshot: &Snapshot) -> Result<&StsSettings, StsError> {
    snapshot.sts.as_ref().ok_or_else(|| {
        StsError::region_disabled(
            "STS is not activated on this endpoint: no [sts] key ring is configured",
        )
    })
}

fn get_access_key_info(
    call: &Call<'_>,
    caller: Caller<'_>,
    access_key_id: &str,
) -> Result<StsOutcome, StsError> {
    let account = if access_key_id == caller.access_key_id {
        Some(caller.principal.account_id.clone())
    } else {
        call.snapshot
            .keys
            .get(access_key_id)
            .map(|k| k.principal.account_id.clone())
    };
    let account = account.ok_or_else(|| {
        StsError::invalid_parameter_value(format!(
            "The access key {access_key_id} is not known to this endpoint"
        ))
    })?;
    Ok(StsOutcome {
        body: xml::get_access_key_info_response(&account, call.request_id),
        issued: None,
    })
}

fn seal(sts: &StsSettings, claims: &SessionClaims) -> Result<IssuedCredentials, StsError> {
    token::seal(&sts.ring, claims, &mut rand::thread_rng()).map_err(|e| match e {
        token::TokenError::TooLarge => StsError::packed_policy_too_large(
            "Packed size of session policy and session tags combined too large",
        ),
        _ => StsError::internal_failure(),
    })
}

fn credentials_xml(c: &IssuedCredentials) -> xml::Credentials<'_> {
    xml::Credentials {
        access_key_id: &c.access_key_id,
        secret_access_key: c.secret_access_key.expose(),
        session_token: c.session_token.expose(),
        expiration: c.expiration,
    }
}

/// MFA devices are not modelled: a request that presents an MFA code cannot be satisfied.
fn mfa_refused() -> StsError {
    StsError::access_denied("MultiFactorAuthentication failed, unable to validate MFA code.")
}

fn get_session_token(
    call: &Call<'_>,
    caller: Caller<'_>,
    duration: Option<u32>,
    mfa: bool,
) -> Result<StsOutcome, StsError> {
    let sts = sts_settings(call.snapshot)?;
    let p = caller.principal;
    if p.session.is_some() || p.kind != PrincipalKind::IamUser {
        return Err(StsError::access_denied(
            "Cannot call GetSessionToken with session credentials",
        ));
    }
    if mfa {
        return Err(mfa_refused());
    }
    let now = call.facts.now;
    let duration = duration.unwrap_or(DEFAULT_SESSION_TOKEN);
    let claims = SessionClaims {
        access_key_id: String::new(),
        issued_at: now,
        expires_at: now + i64::from(duration),
        account: p.account_id.clone(),
        kind: SessionKind::SessionToken,
        arn: p.arn.clone(),
        user_id: p.unique_id.clone(),
        role_arn: None,
        role_id: None,
        session_name: None,
        source_identity: None,
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        session_policy: None,
        policy_arns: Vec::new(),
        chained: false,
        mfa_authenticated: false,
        web_identity: None,
        parent_user_arn: Some(p.arn.clone()),
    };
    let issued = seal(sts, &claims)?;
    Ok(StsOutcome {
        body: xml::get_session_token_response(&credentials_xml(&issued), call.request_id),
        issued: Some(Issued {
            access_key_id: issued.access_key_id.clone(),
            expiration: issued.expiration,
            arn: claims.arn,
            assumed_role_id: claims.user_id,
            source_identity: None,
        }),
    })
}

/// The role named by `RoleArn`, or the `AccessDenied` AWS gives for a role that does not exist
/// (it does not reveal which roles exist).
fn find_role<'s>(
    snapshot: &'s Snapshot,
    role_arn: &str,
    principal_arn: &str,
    action: &str,
) -> Result<&'s Role, StsError> {
    snapshot.role(role_arn).ok_or_else(|| {
        StsError::access_denied(format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {role_arn}"
        ))
    })
}

/// Checks `DurationSeconds` against the role's maximum and the role-chaining cap.
fn session_duration(requested: Option<u32>, role: &Role, chained: bool) -> Result<u32, StsError> {
    let duration = requested.unwrap_or(DEFAULT_ROLE_SESSION);
    let max = u32::try_from(role.max_session_duration.as_secs()).unwrap_or(u32::MAX);
    if chained && duration > CHAINED_MAX {
        return Err(StsError::validation_error(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration > max {
        return Err(StsError::validation_error(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok(duration)
}

/// Validates session policies: the inline document parses as a session policy, and each managed
/// policy exists in the role's account (or is AWS managed and configured). Returns the packed
/// size in bytes of the policies.
fn check_session_policies(
    snapshot: &Snapshot,
    role: &Role,
    inline: Option<&str>,
    arns: &[String],
) -> Result<usize, StsError> {
    let mut packed = 0;
    if let Some(text) = inline {
        let parsed = crate::policy::parse_policy(text, PolicyType::Session);
        if parsed.document.is_none() {
            let reason = parsed
                .findings
                .iter()
                .find(|f| f.severity == crate::policy::Severity::Error)
                .map(|f| f.message.clone())
                .unwrap_or_else(|| "the policy is not valid".to_owned());
            return Err(StsError::malformed_policy_document(reason));
        }
        packed += text.chars().filter(|c| !c.is_whitespace()).count();
    }
    for arn in arns {
        let same_account = arn.split(':').nth(4) == Some(role.account.as_str());
        let aws_managed = arn.starts_with("arn:aws:iam::aws:policy/");
        if !(same_account || aws_managed) || snapshot.compiled_policy(arn).is_none() {
            return Err(StsError::invalid_parameter_value(format!(
                "Policy {arn} does not exist or is not attachable."
            )));
        }
        packed += arn.len();
    }
    Ok(packed)
}

/// The packed-size percentage AWS reports as `PackedPolicySize`, or `PackedPolicyTooLarge`.
fn packed_percent(bytes: usize) -> Result<u32, StsError> {
    let percent = (bytes * 100).div_ceil(PACKED_LIMIT);
    if percent > 100 {
        return Err(StsError::packed_policy_too_large(format!(
            "Packed size of session policy and session tags combined too large ({percent}% of the limit)"
        )));
    }
    Ok(u32::try_from(percent).unwrap_or(100))
}

/// `aws:RequestTag/<key>` condition keys for the tags an `AssumeRole*` call passes.
fn request_tag_keys(tags: &[(String, String)], out: &mut Vec<(String, String)>) {
    for (k, v) in tags {
        out.push((format!("aws:RequestTag/{k}"), v.clone()));
    }
}

/// Evaluates the role's trust policy (as the resource policy) together with the caller's
/// identity and session policies and SCPs, for one `sts:` action.
#[allow(clippy::too_many_arguments)]
fn trust_allows(
    call: &Call<'_>,
    info: &PrincipalInfo,
    session: Option<&crate::credentials::SessionContext>,
    role: &Role,
    action: &str,
    keys: &[(String, String)],
    multi: &[(String, Vec<String>)],
) -> Result<(), StsError> {
    let trust = call.snapshot.trust_policy(&role.arn);
    let decision = authz::decide(
        call.snapshot,
        info,
        session,
        action,
        &role.arn,
        keys,
        multi,
        &role.account,
        call.req,
        &call.facts,
        Some(trust.map_or(&EMPTY_SET, |t| t.as_ref())),
    );
    if decision.outcome == Outcome::Allowed {
        return Ok(());
    }
    Err(StsError::access_denied(authz::access_denied_message(
        &info.arn, action, &role.arn, &decision,
    )))
}

static EMPTY_SET: std::sync::LazyLock<crate::policy::PolicySet> =
    std::sync::LazyLock::new(crate::policy::PolicySet::default);

/// Tags and transitive keys inherited from the calling session, merged with the requested ones.
#[allow(clippy::type_complexity)]
fn merge_tags(
    caller: Option<&SessionClaims>,
    tags: &[(String, String)],
    transitive: &[String],
) -> Result<(Vec<(String, String)>, Vec<String>), StsError> {
    let mut out_tags: Vec<(String, String)> = Vec::new();
    let mut out_keys: Vec<String> = Vec::new();
    if let Some(c) = caller {
        for key in &c.transitive_tag_keys {
            if tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
                return Err(StsError::invalid_parameter_value(format!(
                    "The transitive tag key {key} conflicts with a transitive tag key from the calling session."
                )));
            }
            if let Some(t) = c.tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                out_tags.push(t.clone());
            }
            out_keys.push(key.clone());
        }
    }
    out_tags.extend(tags.iter().cloned());
    for k in transitive {
        if !out_keys.iter().any(|o| o.eq_ignore_ascii_case(k)) {
            out_keys.push(k.clone());
        }
    }
    Ok((out_tags, out_keys))
}

/// The claims of a new session of `role`, before the call-specific parts (tags, policies,
/// source identity, chaining, web identity) are set.
fn role_session(
    role: &Role,
    session: &str,
    now: i64,
    duration: u32,
    kind: SessionKind,
) -> SessionClaims {
    SessionClaims {
        access_key_id: String::new(),
        issued_at: now,
        expires_at: now + i64::from(duration),
        account: role.account.clone(),
        kind,
        arn: format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            role.account, role.name, session
        ),
        user_id: format!("{}:{}", role.unique_id, session),
        role_arn: Some(role.arn.clone()),
        role_id: Some(role.unique_id.clone()),
        session_name: Some(session.to_owned()),
        source_identity: None,
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        session_policy: None,
        policy_arns: Vec::new(),
        chained: false,
        mfa_authenticated: false,
        web_identity: None,
        parent_user_arn: None,
    }
}

fn assume_role(
    call: &Call<'_>,
    caller: Caller<'_>,
    request: &StsRequest,
) -> Result<StsOutcome, StsError> {
    let StsRequest::AssumeRole {
        role_arn,
        role_session_name,
        duration_seconds,
        policy,
        policy_arns,
        tags,
        transitive_tag_keys,
        external_id,
        serial_number,
        token_code,
        source_identity,
    } = request
    else {
        return Err(StsError::internal_failure());
    };
    let sts = sts_settings(call.snapshot)?;
    let p = caller.principal;
    let info = p.policy_info();
    let role = find_role(call.snapshot, role_arn, &p.arn, "sts:AssumeRole")?;
    if serial_number.is_some() || token_code.is_some() {
        return Err(mfa_refused());
    }
    let caller_claims = p.session.as_ref().map(|s| &s.claims);
    let chained = caller_claims.is_some();
    let duration = session_duration(*duration_seconds, role, chained)?;
    let mut packed = check_session_policies(call.snapshot, role, policy.as_deref(), policy_arns)?;
    let (all_tags, all_transitive) = merge_tags(caller_claims, tags, transitive_tag_keys)?;
    packed += all_tags
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>();
    let packed_percent = packed_percent(packed)?;

    // The source identity persists along a chain and cannot be changed once set.
    let inherited_source = caller_claims.and_then(|c| c.source_identity.clone());
    if let (Some(old), Some(new)) = (&inherited_source, source_identity) {
        if old != new {
            return Err(StsError::access_denied(format!(
                "User: {} is not authorized to perform: sts:SetSourceIdentity on resource: {}: the source identity of the calling session cannot be changed",
                p.arn, role.arn
            )));
        }
    }
    let source = source_identity.clone().or(inherited_source);

    let mut keys: Vec<(String, String)> =
        vec![("sts:RoleSessionName".into(), role_session_name.clone())];
    if let Some(e) = external_id {
        keys.push(("sts:ExternalId".into(), e.clone()));
    }
    if let Some(s) = &source {
        keys.push(("sts:SourceIdentity".into(), s.clone()));
    }
    request_tag_keys(tags, &mut keys);
    let mut multi: Vec<(String, Vec<String>)> = Vec::new();
    if !tags.is_empty() {
        multi.push((
            "aws:TagKeys".into(),
            tags.iter().map(|(k, _)| k.clone()).collect(),
        ));
    }
    if !transitive_tag_keys.is_empty() {
        multi.push(("sts:TransitiveTagKeys".into(), transitive_tag_keys.clone()));
    }
    let session = p.session.as_ref();
    trust_allows(call, info, session, role, "sts:AssumeRole", &keys, &multi)?;
    if !tags.is_empty() {
        trust_allows(call, info, session, role, "sts:TagSession", &keys, &multi)?;
    }
    if source.is_some() {
        trust_allows(
            call,
            info,
            session,
            role,
            "sts:SetSourceIdentity",
            &keys,
            &multi,
        )?;
    }

    let parent_user_arn = match caller_claims {
        Some(c) => c.parent_user_arn.clone(),
        None => Some(p.arn.clone()),
    };
    let claims = SessionClaims {
        source_identity: source.clone(),
        tags: all_tags,
        transitive_tag_keys: all_transitive,
        session_policy: policy.clone(),
        policy_arns: policy_arns.clone(),
        chained,
        mfa_authenticated: caller_claims.is_some_and(|c| c.mfa_authenticated),
        parent_user_arn,
        ..role_session(
            role,
            role_session_name,
            call.facts.now,
            duration,
            SessionKind::AssumedRole,
        )
    };
    let (arn, user_id) = (claims.arn.clone(), claims.user_id.clone());
    let issued = seal(sts, &claims)?;
    let reports_packed = policy.is_some() || !policy_arns.is_empty() || !claims.tags.is_empty();
    let body = xml::assume_role_response(
        &xml::AssumeRoleResult {
            credentials: credentials_xml(&issued),
            assumed_role_user: xml::AssumedRoleUser {
                arn: &arn,
                assumed_role_id: &user_id,
            },
            packed_policy_size: reports_packed.then_some(packed_percent),
            source_identity: source.as_deref(),
        },
        call.request_id,
    );
    Ok(StsOutcome {
        body,
        issued: Some(Issued {
            access_key_id: issued.access_key_id.clone(),
            expiration: issued.expiration,
            arn,
            assumed_role_id: user_id,
            source_identity: source,
        }),
    })
}

fn assume_role_with_web_identity(
    call: &Call<'_>,
    request: &StsRequest,
    web: &WebIdentity,
) -> Result<StsOutcome, StsError> {
    let StsRequest::AssumeRoleWithWebIdentity {
        role_arn,
        role_session_name,
        policy_arns,
        policy,
        duration_seconds,
        ..
    } = request
    else {
        return Err(StsError::internal_failure());
    };
    let sts = sts_settings(call.snapshot)?;
    let role = call.snapshot.role(role_arn).ok_or_else(|| {
        StsError::access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
    })?;
    // The provider is registered in an account; the role must trust it by that account's ARN.
    let provider_account = sts
        .oidc_providers
        .iter()
        .find(|p| p.provider.provider() == web.provider)
        .map_or(role.account.as_str(), |p| p.account.as_str());
    let federated = super::federated_provider(call.snapshot, &web.provider, provider_account);
    let duration = session_duration(*duration_seconds, role, false)?;
    let mut packed = check_session_policies(call.snapshot, role, policy.as_deref(), policy_arns)?;
    packed += web
        .principal_tags
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>();
    let packed_percent = packed_percent(packed)?;

    let info = PrincipalInfo {
        kind: PrincipalType::WebIdentityUser,
        arn: federated.clone(),
        // The identity provider belongs to the account that trusts it: not a cross-account call.
        account: provider_account.to_owned(),
        role_arn: None,
        user_id: web.subject.clone(),
        user_name: None,
        tags: Vec::new(),
        service: None,
        has_boundary: false,
    };
    let mut keys: Vec<(String, String)> = vec![
        ("sts:RoleSessionName".into(), role_session_name.clone()),
        ("aws:FederatedProvider".into(), federated.clone()),
    ];
    let mut multi: Vec<(String, Vec<String>)> = Vec::new();
    for (k, values) in web.condition_keys() {
        if k.ends_with(":amr") || values.len() != 1 {
            multi.push((k, values));
        } else if let Some(v) = values.into_iter().next() {
            keys.push((k, v));
        }
    }
    request_tag_keys(&web.principal_tags, &mut keys);
    if !web.transitive_tag_keys.is_empty() {
        multi.push((
            "sts:TransitiveTagKeys".into(),
            web.transitive_tag_keys.clone(),
        ));
    }
    if !web.principal_tags.is_empty() {
        multi.push((
            "aws:TagKeys".into(),
            web.principal_tags.iter().map(|(k, _)| k.clone()).collect(),
        ));
    }
    let action = "sts:AssumeRoleWithWebIdentity";
    let denied =
        |_: StsError| StsError::access_denied(format!("Not authorized to perform {action}"));
    trust_allows(call, &info, None, role, action, &keys, &multi).map_err(denied)?;
    if !web.principal_tags.is_empty() {
        trust_allows(call, &info, None, role, "sts:TagSession", &keys, &multi).map_err(denied)?;
    }

    let claims = SessionClaims {
        tags: web.principal_tags.clone(),
        transitive_tag_keys: web.transitive_tag_keys.clone(),
        session_policy: policy.clone(),
        policy_arns: policy_arns.clone(),
        web_identity: Some(WebIdentityClaims {
            provider: web.provider.clone(),
            audience: web.audience.clone(),
            subject: web.subject.clone(),
            amr: web.amr.clone(),
        }),
        ..role_session(
            role,
            role_session_name,
            call.facts.now,
            duration,
            SessionKind::WebIdentity,
        )
    };
    let (arn, user_id) = (claims.arn.clone(), claims.user_id.clone());
    let issued = seal(sts, &claims)?;
    let reports_packed = policy.is_some() || !policy_arns.is_empty() || !claims.tags.is_empty();
    let body = xml::assume_role_with_web_identity_response(
        &xml::AssumeRoleWithWebIdentityResult {
            credentials: credentials_xml(&issued),
            assumed_role_user: xml::AssumedRoleUser {
                arn: &arn,
                assumed_role_id: &user_id,
            },
            packed_policy_size: reports_packed.then_some(packed_percent),
            source_identity: None,
            subject: &web.subject,
            audience: &web.audience,
            provider: &web.issuer,
        },
        call.request_id,
    );
    Ok(StsOutcome {
        body,
        issued: Some(Issued {
            access_key_id: issued.access_key_id.clone(),
            expiration: issued.expiration,
            arn,
            assumed_role_id: user_id,
            source_identity: None,
        }),
    })
}
