//! STS Query-protocol requests: form decoding, operation dispatch and the parameter validation
//! AWS STS performs before it looks at any role, policy or token (`reference/sts.md` §1, §3, §4).
//!
//! Pure: bytes in, an [`StsRequest`] or an [`StsError`] out. Nothing here panics on any input.
//!
//! Order of checks, as AWS's request pipeline does them:
//! 1. form decoding ([`parse_form`]): a malformed `%` escape or invalid UTF-8 → 400
//!    `MalformedQueryString`;
//! 2. `Action` (missing → 400 `MissingAction`), then `Version` and the operation name (→ 400
//!    `InvalidAction`);
//! 3. the model's member constraints (required, length, pattern, numeric range, list size),
//!    aggregated into one 400 `ValidationError` in AWS's words: `"N validation error(s) detected:
//!    Value 'x' at 'member' failed to satisfy constraint: …"` joined with `"; "`;
//! 4. semantic checks: ARN syntax (`"<arn> is invalid"`), then tag key duplicates and transitive
//!    tag keys (400 `InvalidParameterValue`).
//!
//! # Decisions where AWS's behaviour is undocumented
//! - **Missing or wrong `Version`**: 400 `InvalidAction` "Could not find operation `<Action>` for
//!   version `NO_VERSION_SPECIFIED`" (resp. the version sent), the wording of AWS's Query services
//!   (Coral). An empty `Action` or `Version` counts as missing.
//! - **Duplicate parameters**: the last occurrence wins. [`parse_query_and_form`] puts the URL query
//!   parameters before the body's, so for a `POST` carrying both, the body wins.
//! - **Unknown parameters** (including `ProvidedContexts.*`, `MinimumSessionTokenSize`, or list
//!   entries with an unknown suffix) are ignored, as AWS does. Known but unimplemented operations
//!   (`AssumeRoleWithSAML`, `GetFederationToken`, `DecodeAuthorizationMessage`, …) get
//!   `InvalidAction`.
//! - **List indexes** are 1-based decimal without leading zeros. `member.0`, `member.01` or a
//!   non-numeric index → 400 `ValidationError` "Invalid list index …". A gap is reported as a
//!   missing element, `Value null at 'tags.2.member' failed to satisfy constraint: Member must not
//!   be null` (only the first gap of each list). Lists are ordered by index.
//! - **Non-numeric `DurationSeconds`** (or one outside Java's `int`) is one more aggregated
//!   violation, `Member must be a number`. Numbers print as parsed (`+900` → `900`).
//! - **Lengths** count UTF-16 code units, like Java's `String.length()` behind AWS's validator.
//! - **Sensitive members** (`WebIdentityToken`, `clientTokenType` is `sensitive` in the model) are
//!   not echoed: `Value at 'webIdentityToken' failed to satisfy constraint: …`, AWS's form for
//!   sensitive values.
//! - **`RoleArn`**: any string that is not `arn:<partition>:<service>:<region>:<account>:<resource>`
//!   with non-empty partition, service and resource is `"<arn> is invalid"`, as recorded against AWS
//!   [LS]. We additionally require the shape of a role ARN, `arn:aws[-*]:iam::<12 digits>:role/[path/]name`,
//!   with the same message (AWS would answer a well-formed non-role ARN with `AccessDenied`; no role
//!   can match it here). `PolicyArns` get the generic ARN syntax check only.
//! - **`SourceIdentity`** length is 2–256 as in botocore 1.44.8's model (older models and the docs say
//!   2–64). Its pattern `[\w+=,.@-]*` has no `:`, so the documented "must not start with `aws:`"
//!   rule is enforced by the pattern violation.
//! - **`PolicyArns` ≤ 10**: the model has no list maximum; the documented limit of 10 is reported as
//!   `Member must have length less than or equal to 10` at `policyArns`. A too-long list prints as
//!   `[a, b, …]`, tags as `[{Key: k,Value: v}, …]` (AWS prints its Java objects).
//! - **`\p{L}` in tag patterns** is `char::is_alphabetic`, which also admits the few combining marks
//!   Unicode lists as `Other_Alphabetic`; `\p{N}` is `char::is_numeric`; `\p{Z}` is listed exactly.
//! - **`RoleArn`/`PolicyArns` character class** follows the Java regex AWS runs: its
//!   `\u10000-\u10FFFF` reads as `\u1000`, `0-\u10FF`, `F`, `F`, so characters above U+FFFF fail.
//! - The **packed-size** limit (`PackedPolicyTooLarge`), role `MaxSessionDuration` and role-chaining
//!   limits need the role and the caller; they belong to the handler (messages in the `MSG_*`
//!   constants).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// The only API version of STS.
pub const API_VERSION: &str = "2011-06-15";

/// The version text AWS reports when a request has no `Version`.
const NO_VERSION: &str = "NO_VERSION_SPECIFIED";

/// `ExpiredToken`: the session token used to sign the request has expired.
pub const MSG_EXPIRED_TOKEN: &str = "The security token included in the request is expired";
/// `InvalidClientTokenId`: the session token does not open or does not match the access key.
pub const MSG_INVALID_TOKEN: &str = "The security token included in the request is invalid";
/// `InvalidClientTokenId`: the access key ID is unknown.
pub const MSG_UNKNOWN_ACCESS_KEY: &str =
    "The AWS access key provided does not exist in our records.";
/// `MissingAuthenticationToken`: no credentials at all.
pub const MSG_MISSING_AUTHENTICATION_TOKEN: &str = "Request is missing Authentication Token";
/// `InvalidParameterValue`: two tags whose keys differ only in case.
pub const MSG_DUPLICATE_TAG_KEYS: &str =
    "Duplicate tag keys found. Please note that Tag keys are case insensitive.";
/// `InvalidParameterValue`: a transitive tag key that is not one of the request's tags.
pub const MSG_TRANSITIVE_NOT_IN_TAGS: &str =
    "The specified transitive tag key must be included in the requested tags.";
/// `InvalidParameterValue`: a tag overriding a transitive tag of the calling session.
pub const MSG_TRANSITIVE_CONFLICT: &str = "One of the specified transitive tag keys can't be set because it conflicts with a transitive tag key from the calling session.";
/// `ValidationError`: `DurationSeconds` above the role's `MaxSessionDuration`.
pub const MSG_MAX_SESSION_DURATION: &str =
    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.";
/// `ValidationError`: `DurationSeconds` above one hour when chaining roles.
pub const MSG_ROLE_CHAINING_LIMIT: &str =
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.";

/// Who is at fault: the `<Type>` element of an AWS error document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller sent something wrong (every 4xx).
    Sender,
    /// The service failed (5xx).
    Receiver,
}

impl ErrorKind {
    /// `"Sender"` or `"Receiver"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sender => "Sender",
            Self::Receiver => "Receiver",
        }
    }
}

/// An STS error as AWS reports it: code, message, HTTP status and fault.
///
/// Messages are AWS's own wording (clients and tests match on them), not this crate's style.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StsError {
    /// The AWS error code, e.g. `ValidationError`.
    pub code: &'static str,
    /// The human-readable message, verbatim in the error document.
    pub message: String,
    /// The HTTP status.
    pub status: u16,
    /// Who is at fault.
    pub kind: ErrorKind,
}

impl StsError {
    fn sender(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status,
            kind: ErrorKind::Sender,
        }
    }

    /// The HTTP status as an [`http::StatusCode`] (500 if the number is not a status).
    pub fn status_code(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 403 `AccessDenied`, e.g. "User: <arn> is not authorized to perform: sts:AssumeRole on
    /// resource: <arn>".
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::sender("AccessDenied", 403, message)
    }

    /// 400 `ValidationError`: a parameter constraint failed.
    pub fn validation_error(message: impl Into<String>) -> Self {
        Self::sender("ValidationError", 400, message)
    }

    /// 400 `InvalidParameterValue`, e.g. [`MSG_DUPLICATE_TAG_KEYS`].
    pub fn invalid_parameter_value(message: impl Into<String>) -> Self {
        Self::sender("InvalidParameterValue", 400, message)
    }

    /// 400 `MalformedPolicyDocument`: the session policy is not a valid policy.
    pub fn malformed_policy_document(message: impl Into<String>) -> Self {
        Self::sender("MalformedPolicyDocument", 400, message)
    }

    /// 400 `PackedPolicyTooLarge`: session policies and tags exceed the packed limit.
    pub fn packed_policy_too_large(message: impl Into<String>) -> Self {
        Self::sender("PackedPolicyTooLarge", 400, message)
    }

    /// 403 `RegionDisabledException`: STS is not activated in the region.
    pub fn region_disabled(message: impl Into<String>) -> Self {
        Self::sender("RegionDisabledException", 403, message)
    }

    /// 400 `ExpiredTokenException`: the **web identity** token has expired (not to be confused
    /// with [`StsError::expired_token`]).
    pub fn expired_token_exception(message: impl Into<String>) -> Self {
        Self::sender("ExpiredTokenException", 400, message)
    }

    /// 400 `InvalidIdentityToken`: bad JWT signature, issuer or audience.
    pub fn invalid_identity_token(message: impl Into<String>) -> Self {
        Self::sender("InvalidIdentityToken", 400, message)
    }

    /// 403 `IDPRejectedClaim`: the identity provider rejected the claim.
    pub fn idp_rejected_claim(message: impl Into<String>) -> Self {
        Self::sender("IDPRejectedClaim", 403, message)
    }

    /// 400 `IDPCommunicationError`: the identity provider (its JWKS) could not be reached.
    pub fn idp_communication_error(message: impl Into<String>) -> Self {
        Self::sender("IDPCommunicationError", 400, message)
    }

    /// 400 `InvalidAction`: "Could not find operation `<action>` for version `<version>`".
    pub fn invalid_action(action: &str, version: &str) -> Self {
        Self::sender(
            "InvalidAction",
            400,
            format!("Could not find operation {action} for version {version}"),
        )
    }

    /// 400 `MissingAction`: "Missing Action".
    pub fn missing_action() -> Self {
        Self::sender("MissingAction", 400, "Missing Action")
    }

    /// 400 `MalformedQueryString`: the form body or query string cannot be decoded.
    pub fn malformed_query_string(message: impl Into<String>) -> Self {
        Self::sender("MalformedQueryString", 400, message)
    }

    /// 403 `MissingAuthenticationToken`: no credentials at all.
    pub fn missing_authentication_token() -> Self {
        Self::sender(
            "MissingAuthenticationToken",
            403,
            MSG_MISSING_AUTHENTICATION_TOKEN,
        )
    }

    /// 403 `InvalidClientTokenId`, e.g. [`MSG_INVALID_TOKEN`] or [`MSG_UNKNOWN_ACCESS_KEY`].
    pub fn invalid_client_token_id(message: impl Into<String>) -> Self {
        Self::sender("InvalidClientTokenId", 403, message)
    }

    /// 403 `ExpiredToken`: the session token that signed the request has expired.
    pub fn expired_token() -> Self {
        Self::sender("ExpiredToken", 403, MSG_EXPIRED_TOKEN)
    }

    /// 403 `SignatureDoesNotMatch`.
    pub fn signature_does_not_match(message: impl Into<String>) -> Self {
        Self::sender("SignatureDoesNotMatch", 403, message)
    }

    /// 400 `IncompleteSignature`: a malformed `Authorization` header or presigned query (the
    /// status of the Query APIs' common-errors table).
    pub fn incomplete_signature(message: impl Into<String>) -> Self {
        Self::sender("IncompleteSignature", 400, message)
    }

    /// 500 `InternalFailure` (a `Receiver` fault).
    pub fn internal_failure() -> Self {
        Self {
            code: "InternalFailure",
            message: "The request processing has failed because of an unknown error, exception or failure.".to_owned(),
            status: 500,
            kind: ErrorKind::Receiver,
        }
    }
}

/// A validated STS request.
#[derive(Clone, PartialEq, Eq)]
pub enum StsRequest {
    /// `GetCallerIdentity`: no parameters.
    GetCallerIdentity,
    /// `GetSessionToken`.
    GetSessionToken {
        /// `DurationSeconds`, 900–129600 (default 43200 applied by the handler).
        duration_seconds: Option<u32>,
        /// `SerialNumber` of the MFA device.
        serial_number: Option<String>,
        /// `TokenCode`, six digits.
        token_code: Option<String>,
    },
    /// `AssumeRole`.
    AssumeRole {
        /// `RoleArn`.
        role_arn: String,
        /// `RoleSessionName`.
        role_session_name: String,
        /// `DurationSeconds`, 900–43200 (default 3600 applied by the handler).
        duration_seconds: Option<u32>,
        /// `Policy`: the inline session policy, unparsed.
        policy: Option<String>,
        /// `PolicyArns.member.N.arn`, in index order.
        policy_arns: Vec<String>,
        /// `Tags.member.N.{Key,Value}`, in index order.
        tags: Vec<(String, String)>,
        /// `TransitiveTagKeys.member.N`, in index order.
        transitive_tag_keys: Vec<String>,
        /// `ExternalId`.
        external_id: Option<String>,
        /// `SerialNumber` of the MFA device.
        serial_number: Option<String>,
        /// `TokenCode`, six digits.
        token_code: Option<String>,
        /// `SourceIdentity`.
        source_identity: Option<String>,
    },
    /// `AssumeRoleWithWebIdentity` (unsigned).
    AssumeRoleWithWebIdentity {
        /// `RoleArn`.
        role_arn: String,
        /// `RoleSessionName`.
        role_session_name: String,
        /// `WebIdentityToken`: the OIDC JWT or OAuth 2.0 access token. Not shown by `Debug`.
        web_identity_token: String,
        /// `ProviderId`, only for OAuth 2.0 providers.
        provider_id: Option<String>,
        /// `PolicyArns.member.N.arn`, in index order.
        policy_arns: Vec<String>,
        /// `Policy`: the inline session policy, unparsed.
        policy: Option<String>,
        /// `DurationSeconds`, 900–43200 (default 3600 applied by the handler).
        duration_seconds: Option<u32>,
    },
    /// `GetAccessKeyInfo`.
    GetAccessKeyInfo {
        /// `AccessKeyId`.
        access_key_id: String,
    },
}

impl fmt::Debug for StsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "***");
        match self {
            Self::GetCallerIdentity => f.write_str("GetCallerIdentity"),
            Self::GetSessionToken {
                duration_seconds,
                serial_number,
                token_code,
            } => f
                .debug_struct("GetSessionToken")
                .field("duration_seconds", duration_seconds)
                .field("serial_number", serial_number)
                .field("token_code", &redact(token_code))
                .finish(),
            Self::AssumeRole {
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
            } => f
                .debug_struct("AssumeRole")
                .field("role_arn", role_arn)
                .field("role_session_name", role_session_name)
                .field("duration_seconds", duration_seconds)
                .field("policy", policy)
                .field("policy_arns", policy_arns)
                .field("tags", tags)
                .field("transitive_tag_keys", transitive_tag_keys)
                .field("external_id", external_id)
                .field("serial_number", serial_number)
                .field("token_code", &redact(token_code))
                .field("source_identity", source_identity)
                .finish(),
            Self::AssumeRoleWithWebIdentity {
                role_arn,
                role_session_name,
                web_identity_token: _,
                provider_id,
                policy_arns,
                policy,
                duration_seconds,
            } => f
                .debug_struct("AssumeRoleWithWebIdentity")
                .field("role_arn", role_arn)
                .field("role_session_name", role_session_name)
                .field("web_identity_token", &"***")
                .field("provider_id", provider_id)
                .field("policy_arns", policy_arns)
                .field("policy", policy)
                .field("duration_seconds", duration_seconds)
                .finish(),
            Self::GetAccessKeyInfo { access_key_id } => f
                .debug_struct("GetAccessKeyInfo")
                .field("access_key_id", access_key_id)
                .finish(),
        }
    }
}

impl StsRequest {
    /// Decodes and validates the parameters of one request (see the module docs for the order of
    /// checks). With duplicate names the last occurrence wins.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, StsError> {
        let p = Params::new(params);
        let action = p
            .get("Action")
            .filter(|a| !a.is_empty())
            .ok_or_else(StsError::missing_action)?;
        let version = p.get("Version").filter(|v| !v.is_empty());
        match version {
            None => return Err(StsError::invalid_action(action, NO_VERSION)),
            Some(v) if v != API_VERSION => return Err(StsError::invalid_action(action, v)),
            Some(_) => {}
        }
        match action {
            "GetCallerIdentity" => Ok(Self::GetCallerIdentity),
            "GetSessionToken" => get_session_token(&p),
            "AssumeRole" => assume_role(&p),
            "AssumeRoleWithWebIdentity" => assume_role_with_web_identity(&p),
            "GetAccessKeyInfo" => get_access_key_info(&p),
            other => Err(StsError::invalid_action(other, API_VERSION)),
        }
    }

    /// The operation name, e.g. `"AssumeRole"` (the IAM action is `sts:<name>`).
    pub fn action(&self) -> &'static str {
        match self {
            Self::GetCallerIdentity => "GetCallerIdentity",
            Self::GetSessionToken { .. } => "GetSessionToken",
            Self::AssumeRole { .. } => "AssumeRole",
            Self::AssumeRoleWithWebIdentity { .. } => "AssumeRoleWithWebIdentity",
            Self::GetAccessKeyInfo { .. } => "GetAccessKeyInfo",
        }
    }

    /// Whether the operation needs a SigV4-signed request; `AssumeRoleWithWebIdentity` is
    /// unsigned (`authtype: none`).
    pub fn requires_signature(&self) -> bool {
        !matches!(self, Self::AssumeRoleWithWebIdentity { .. })
    }
}

/// Decodes an `application/x-www-form-urlencoded` body (or a URL query string) into its
/// parameters, in order. `+` is a space, `%XX` a byte; the decoded bytes must be UTF-8. Empty
/// segments (`a=1&&b=2`) are skipped; a segment without `=` has an empty value.
///
/// A truncated or non-hex `%` escape, or invalid UTF-8, is a 400 `MalformedQueryString`.
pub fn parse_form(input: &[u8]) -> Result<Vec<(String, String)>, StsError> {
    let mut params = Vec::new();
    for pair in input.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let mut halves = pair.splitn(2, |&b| b == b'=');
        let name = halves.next().unwrap_or_default();
        let value = halves.next().unwrap_or_default();
        params.push((decode_component(name)?, decode_component(value)?));
    }
    Ok(params)
}

/// The parameters of a request whose URL query and form body may both carry some: the query's
/// first, then the body's, so that with [`StsRequest::from_params`]'s last-wins rule the body
/// wins for a name present in both.
pub fn parse_query_and_form(
    query: Option<&str>,
    body: &[u8],
) -> Result<Vec<(String, String)>, StsError> {
    let mut params = match query {
        Some(q) => parse_form(q.as_bytes())?,
        None => Vec::new(),
    };
    params.extend(parse_form(body)?);
    Ok(params)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_component(raw: &[u8]) -> Result<String, StsError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => match (bytes.next(), bytes.next()) {
                (Some(h), Some(l)) => match (hex_val(h), hex_val(l)) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => {
                        return Err(StsError::malformed_query_string(
                            "Illegal hex characters in escape (%) pattern",
                        ))
                    }
                },
                _ => {
                    return Err(StsError::malformed_query_string(
                        "Incomplete trailing escape % sequence",
                    ))
                }
            },
            other => out.push(other),
        }
    }
    String::from_utf8(out)
        .map_err(|_| StsError::malformed_query_string("The query string contains invalid UTF-8"))
}

/// The request's parameters by name (last occurrence wins), plus the original order for lists.
struct Params<'a> {
    list: &'a [(String, String)],
    by_name: HashMap<&'a str, &'a str>,
}

impl<'a> Params<'a> {
    fn new(list: &'a [(String, String)]) -> Self {
        let by_name = list.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Self { list, by_name }
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.by_name.get(name).copied()
    }

    /// Entries `<prefix><N>` (`suffix` `None`) or `<prefix><N>.<suffix>`, by index; last wins.
    fn indexed(
        &self,
        prefix: &str,
        suffix: Option<&str>,
    ) -> Result<BTreeMap<u32, &'a str>, StsError> {
        let mut out = BTreeMap::new();
        for (name, value) in self.list {
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let (index, tail) = match rest.split_once('.') {
                Some((i, t)) => (i, Some(t)),
                None => (rest, None),
            };
            if tail != suffix {
                continue;
            }
            out.insert(list_index(index, name)?, value.as_str());
        }
        Ok(out)
    }
}

fn list_index(raw: &str, name: &str) -> Result<u32, StsError> {
    let well_formed =
        !raw.is_empty() && !raw.starts_with('0') && raw.bytes().all(|b| b.is_ascii_digit());
    well_formed
        .then(|| raw.parse::<u32>().ok())
        .flatten()
        .ok_or_else(|| {
            StsError::validation_error(format!(
                "Invalid list index in parameter {name}: list indexes are decimal and start at 1"
            ))
        })
}

/// The first index missing from `1..=max`, if any.
fn first_gap<V>(entries: &BTreeMap<u32, V>) -> Option<u32> {
    let mut expected: u32 = 1;
    for &i in entries.keys() {
        if i != expected {
            return Some(expected);
        }
        expected = expected.saturating_add(1);
    }
    None
}

/// A regular expression of the model, with its text (for messages) and a matcher.
struct Pattern {
    text: &'static str,
    matches: fn(&str) -> bool,
}

/// String constraints of one model shape.
struct StrSpec {
    min: usize,
    max: usize,
    pattern: Option<Pattern>,
    sensitive: bool,
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_z(c: char) -> bool {
    matches!(
        c,
        '\u{20}' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

fn is_tag_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || is_z(c) || "_.:/=+-@".contains(c)
}

fn is_arn_char(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}'
    )
}

const ARN: StrSpec = StrSpec {
    min: 20,
    max: 2048,
    pattern: Some(Pattern {
        text: r"[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+",
        matches: |s| !s.is_empty() && s.chars().all(is_arn_char),
    }),
    sensitive: false,
};

const ROLE_SESSION_NAME: StrSpec = StrSpec {
    min: 2,
    max: 64,
    pattern: Some(Pattern {
        text: r"[\w+=,.@-]*",
        matches: |s| s.chars().all(|c| is_word(c) || "+=,.@-".contains(c)),
    }),
    sensitive: false,
};

const SOURCE_IDENTITY: StrSpec = StrSpec {
    min: 2,
    max: 256,
    pattern: Some(Pattern {
        text: r"[\w+=,.@-]*",
        matches: |s| s.chars().all(|c| is_word(c) || "+=,.@-".contains(c)),
    }),
    sensitive: false,
};

const EXTERNAL_ID: StrSpec = StrSpec {
    min: 2,
    max: 1224,
    pattern: Some(Pattern {
        text: r"[\w+=,.@:\/-]*",
        matches: |s| s.chars().all(|c| is_word(c) || "+=,.@:/-".contains(c)),
    }),
    sensitive: false,
};

const SERIAL_NUMBER: StrSpec = StrSpec {
    min: 9,
    max: 256,
    pattern: Some(Pattern {
        text: r"[\w+=/:,.@-]*",
        matches: |s| s.chars().all(|c| is_word(c) || "+=/:,.@-".contains(c)),
    }),
    sensitive: false,
};

const TOKEN_CODE: StrSpec = StrSpec {
    min: 6,
    max: 6,
    pattern: Some(Pattern {
        text: r"[\d]*",
        matches: |s| s.bytes().all(|b| b.is_ascii_digit()),
    }),
    sensitive: false,
};

const POLICY: StrSpec = StrSpec {
    min: 1,
    max: 2048,
    pattern: Some(Pattern {
        text: r"[\u0009\u000A\u000D\u0020-\u00FF]+",
        matches: |s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}'))
        },
    }),
    sensitive: false,
};

const TAG_KEY: StrSpec = StrSpec {
    min: 1,
    max: 128,
    pattern: Some(Pattern {
        text: r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+",
        matches: |s| !s.is_empty() && s.chars().all(is_tag_char),
    }),
    sensitive: false,
};

const TAG_VALUE: StrSpec = StrSpec {
    min: 0,
    max: 256,
    pattern: Some(Pattern {
        text: r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*",
        matches: |s| s.chars().all(is_tag_char),
    }),
    sensitive: false,
};

const WEB_IDENTITY_TOKEN: StrSpec = StrSpec {
    min: 4,
    max: 20000,
    pattern: None,
    sensitive: true,
};

const PROVIDER_ID: StrSpec = StrSpec {
    min: 4,
    max: 2048,
    pattern: None,
    sensitive: false,
};

const ACCESS_KEY_ID: StrSpec = StrSpec {
    min: 16,
    max: 128,
    pattern: Some(Pattern {
        text: r"[\w]*",
        matches: |s| s.chars().all(is_word),
    }),
    sensitive: false,
};

const MAX_TAGS: usize = 50;
const MAX_TRANSITIVE_TAG_KEYS: usize = 50;
const MAX_POLICY_ARNS: usize = 10;
const ROLE_DURATION: (i64, i64) = (900, 43_200);
const SESSION_DURATION: (i64, i64) = (900, 129_600);

/// How a value appears in a violation.
enum Shown<'a> {
    Null,
    Hidden,
    Text(&'a str),
}

/// Constraint violations, aggregated into one `ValidationError` as AWS does.
#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn add(&mut self, value: Shown<'_>, path: &str, constraint: &str) {
        let value = match value {
            Shown::Null => "Value null".to_owned(),
            Shown::Hidden => "Value".to_owned(),
            Shown::Text(t) => format!("Value '{t}'"),
        };
        self.0.push(format!(
            "{value} at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    fn check(&mut self, path: &str, value: &str, spec: &StrSpec) {
        let shown = || {
            if spec.sensitive {
                Shown::Hidden
            } else {
                Shown::Text(value)
            }
        };
        if let Some(p) = &spec.pattern {
            if !(p.matches)(value) {
                self.add(
                    shown(),
                    path,
                    &format!("Member must satisfy regular expression pattern: {}", p.text),
                );
            }
        }
        let len = value.encode_utf16().count();
        if len < spec.min {
            self.add(
                shown(),
                path,
                &format!(
                    "Member must have length greater than or equal to {}",
                    spec.min
                ),
            );
        }
        if len > spec.max {
            self.add(
                shown(),
                path,
                &format!("Member must have length less than or equal to {}", spec.max),
            );
        }
    }

    /// A required member: `""` when missing (the violation makes [`Violations::finish`] fail).
    fn required<'a>(&mut self, path: &str, value: Option<&'a str>, spec: &StrSpec) -> &'a str {
        match value {
            Some(v) => {
                self.check(path, v, spec);
                v
            }
            None => {
                self.add(Shown::Null, path, "Member must not be null");
                ""
            }
        }
    }

    fn optional(&mut self, path: &str, value: Option<&str>, spec: &StrSpec) -> Option<String> {
        let v = value?;
        self.check(path, v, spec);
        Some(v.to_owned())
    }

    /// An optional integer member (Java `int`) within `min..=max`.
    fn int(&mut self, path: &str, raw: Option<&str>, (min, max): (i64, i64)) -> Option<u32> {
        let raw = raw?;
        let Ok(n) = raw.parse::<i32>() else {
            self.add(Shown::Text(raw), path, "Member must be a number");
            return None;
        };
        let shown = n.to_string();
        let n = i64::from(n);
        if n < min {
            self.add(
                Shown::Text(&shown),
                path,
                &format!("Member must have value greater than or equal to {min}"),
            );
        }
        if n > max {
            self.add(
                Shown::Text(&shown),
                path,
                &format!("Member must have value less than or equal to {max}"),
            );
        }
        u32::try_from(n).ok()
    }

    fn list_len(&mut self, path: &str, shown: &str, len: usize, max: usize) {
        if len > max {
            self.add(
                Shown::Text(shown),
                path,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    fn finish(self) -> Result<(), StsError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(StsError::validation_error(format!(
                "{n} validation error{} detected: {}",
                if n == 1 { "" } else { "s" },
                self.0.join("; ")
            ))),
        }
    }
}

fn policy_arns(p: &Params<'_>, v: &mut Violations) -> Result<Vec<String>, StsError> {
    let entries = p.indexed("PolicyArns.member.", Some("arn"))?;
    if let Some(gap) = first_gap(&entries) {
        v.add(
            Shown::Null,
            &format!("policyArns.{gap}.member"),
            "Member must not be null",
        );
    }
    let shown = format!(
        "[{}]",
        entries.values().copied().collect::<Vec<_>>().join(", ")
    );
    v.list_len("policyArns", &shown, entries.len(), MAX_POLICY_ARNS);
    let mut out = Vec::with_capacity(entries.len());
    for (i, arn) in entries {
        v.check(&format!("policyArns.{i}.member.arn"), arn, &ARN);
        out.push(arn.to_owned());
    }
    Ok(out)
}

fn tags(p: &Params<'_>, v: &mut Violations) -> Result<Vec<(String, String)>, StsError> {
    let keys = p.indexed("Tags.member.", Some("Key"))?;
    let values = p.indexed("Tags.member.", Some("Value"))?;
    let mut entries: BTreeMap<u32, (Option<&str>, Option<&str>)> = BTreeMap::new();
    for (&i, &k) in &keys {
        entries.entry(i).or_default().0 = Some(k);
    }
    for (&i, &val) in &values {
        entries.entry(i).or_default().1 = Some(val);
    }
    if let Some(gap) = first_gap(&entries) {
        v.add(
            Shown::Null,
            &format!("tags.{gap}.member"),
            "Member must not be null",
        );
    }
    let shown = format!(
        "[{}]",
        entries
            .values()
            .map(|(k, val)| format!(
                "{{Key: {},Value: {}}}",
                k.unwrap_or("null"),
                val.unwrap_or("null")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    v.list_len("tags", &shown, entries.len(), MAX_TAGS);
    let mut out = Vec::with_capacity(entries.len());
    for (i, (key, value)) in entries {
        let key = v.required(&format!("tags.{i}.member.key"), key, &TAG_KEY);
        let value = v.required(&format!("tags.{i}.member.value"), value, &TAG_VALUE);
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

fn transitive_tag_keys(p: &Params<'_>, v: &mut Violations) -> Result<Vec<String>, StsError> {
    let entries = p.indexed("TransitiveTagKeys.member.", None)?;
    if let Some(gap) = first_gap(&entries) {
        v.add(
            Shown::Null,
            &format!("transitiveTagKeys.{gap}.member"),
            "Member must not be null",
        );
    }
    let shown = format!(
        "[{}]",
        entries.values().copied().collect::<Vec<_>>().join(", ")
    );
    v.list_len(
        "transitiveTagKeys",
        &shown,
        entries.len(),
        MAX_TRANSITIVE_TAG_KEYS,
    );
    let mut out = Vec::with_capacity(entries.len());
    for (i, key) in entries {
        v.check(&format!("transitiveTagKeys.{i}.member"), key, &TAG_KEY);
        out.push(key.to_owned());
    }
    Ok(out)
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` with non-empty partition, service
/// and resource; the six parts.
fn arn_parts(arn: &str) -> Option<[&str; 5]> {
    let mut it = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ) else {
        return None;
    };
    (!partition.is_empty() && !service.is_empty() && !resource.is_empty())
        .then_some([partition, service, region, account, resource])
}

fn invalid_arn(arn: &str) -> StsError {
    StsError::validation_error(format!("{arn} is invalid"))
}

fn check_role_arn(arn: &str) -> Result<(), StsError> {
    let [partition, service, region, account, resource] =
        arn_parts(arn).ok_or_else(|| invalid_arn(arn))?;
    let role_name = resource
        .strip_prefix("role/")
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or_default();
    let is_role = (partition == "aws" || partition.starts_with("aws-"))
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !role_name.is_empty();
    if is_role {
        Ok(())
    } else {
        Err(invalid_arn(arn))
    }
}

fn check_tags(tags: &[(String, String)], transitive: &[String]) -> Result<(), StsError> {
    let mut seen = HashSet::with_capacity(tags.len());
    for (key, _) in tags {
        if !seen.insert(key.to_lowercase()) {
            return Err(StsError::invalid_parameter_value(MSG_DUPLICATE_TAG_KEYS));
        }
    }
    if transitive.iter().any(|k| !seen.contains(&k.to_lowercase())) {
        return Err(StsError::invalid_parameter_value(
            MSG_TRANSITIVE_NOT_IN_TAGS,
        ));
    }
    Ok(())
}

fn get_session_token(p: &Params<'_>) -> Result<StsRequest, StsError> {
    let mut v = Violations::default();
    let duration_seconds = v.int(
        "durationSeconds",
        p.get("DurationSeconds"),
        SESSION_DURATION,
    );
    let serial_number = v.optional("serialNumber", p.get("SerialNumber"), &SERIAL_NUMBER);
    let token_code = v.optional("tokenCode", p.get("TokenCode"), &TOKEN_CODE);
    v.finish()?;
    Ok(StsRequest::GetSessionToken {
        duration_seconds,
        serial_number,
        token_code,
    })
}

fn assume_role(p: &Params<'_>) -> Result<StsRequest, StsError> {
    let mut v = Violations::default();
    let role_arn = v.required("roleArn", p.get("RoleArn"), &ARN);
    let role_session_name = v.required(
        "roleSessionName",
        p.get("RoleSessionName"),
        &ROLE_SESSION_NAME,
    );
    let policy_arns = policy_arns(p, &mut v)?;
    let policy = v.optional("policy", p.get("Policy"), &POLICY);
    let duration_seconds = v.int("durationSeconds", p.get("DurationSeconds"), ROLE_DURATION);
    let tags = tags(p, &mut v)?;
    let transitive_tag_keys = transitive_tag_keys(p, &mut v)?;
    let external_id = v.optional("externalId", p.get("ExternalId"), &EXTERNAL_ID);
    let serial_number = v.optional("serialNumber", p.get("SerialNumber"), &SERIAL_NUMBER);
    let token_code = v.optional("tokenCode", p.get("TokenCode"), &TOKEN_CODE);
    let source_identity = v.optional("sourceIdentity", p.get("SourceIdentity"), &SOURCE_IDENTITY);
    v.finish()?;
    check_role_arn(role_arn)?;
    if let Some(bad) = policy_arns.iter().find(|a| arn_parts(a).is_none()) {
        return Err(invalid_arn(bad));
    }
    check_tags(&tags, &transitive_tag_keys)?;
    Ok(StsRequest::AssumeRole {
        role_arn: role_arn.to_owned(),
        role_session_name: role_session_name.to_owned(),
        duration_seconds,
        policy,
        policy_arns,
        tags,
        transitive_tag_keys,
        external_id,
        serial_number,
        token_code,
        source_identity,
    })
}

fn assume_role_with_web_identity(p: &Params<'_>) -> Result<StsRequest, StsError> {
    let mut v = Violations::default();
    let role_arn = v.required("roleArn", p.get("RoleArn"), &ARN);
    let role_session_name = v.required(
        "roleSessionName",
        p.get("RoleSessionName"),
        &ROLE_SESSION_NAME,
    );
    let web_identity_token = v.required(
        "webIdentityToken",
        p.get("WebIdentityToken"),
        &WEB_IDENTITY_TOKEN,
    );
    let provider_id = v.optional("providerId", p.get("ProviderId"), &PROVIDER_ID);
    let policy_arns = policy_arns(p, &mut v)?;
    let policy = v.optional("policy", p.get("Policy"), &POLICY);
    let duration_seconds = v.int("durationSeconds", p.get("DurationSeconds"), ROLE_DURATION);
    v.finish()?;
    check_role_arn(role_arn)?;
    if let Some(bad) = policy_arns.iter().find(|a| arn_parts(a).is_none()) {
        return Err(invalid_arn(bad));
    }
    Ok(StsRequest::AssumeRoleWithWebIdentity {
        role_arn: role_arn.to_owned(),
        role_session_name: role_session_name.to_owned(),
        web_identity_token: web_identity_token.to_owned(),
        provider_id,
        policy_arns,
        policy,
        duration_seconds,
    })
}

fn get_access_key_info(p: &Params<'_>) -> Result<StsRequest, StsError> {
    let mut v = Violations::default();
    let access_key_id = v.required("accessKeyId", p.get("AccessKeyId"), &ACCESS_KEY_ID);
    v.finish()?;
    Ok(StsRequest::GetAccessKeyInfo {
        access_key_id: access_key_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSUME_ROLE_BODY: &str = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo&RoleSessionName=sess1&DurationSeconds=900&ExternalId=ext-123&SourceIdentity=alice&Tags.member.1.Key=team&Tags.member.1.Value=blue&Tags.member.2.Key=env&Tags.member.2.Value=dev&TransitiveTagKeys.member.1=team&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess&Policy=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
    const WEB_IDENTITY_BODY: &str = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FFederatedWebIdentityRole&RoleSessionName=app1&WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.e30.sig";
    const ROLE: &str = "arn:aws:iam::123456789012:role/demo";

    fn parse(body: &str) -> Result<StsRequest, StsError> {
        StsRequest::from_params(&parse_form(body.as_bytes())?)
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// An AssumeRole request with `extra` appended to a valid minimal one.
    fn assume(extra: &[(&str, &str)]) -> Result<StsRequest, StsError> {
        let mut p = params(&[
            ("Action", "AssumeRole"),
            ("Version", API_VERSION),
            ("RoleArn", ROLE),
            ("RoleSessionName", "sess1"),
        ]);
        p.extend(params(extra));
        StsRequest::from_params(&p)
    }

    fn err(r: Result<StsRequest, StsError>) -> StsError {
        r.expect_err("expected an error")
    }

    fn validation(r: Result<StsRequest, StsError>) -> String {
        let e = err(r);
        assert_eq!(
            (e.code, e.status, e.kind),
            ("ValidationError", 400, ErrorKind::Sender),
            "{e:?}"
        );
        e.message
    }

    #[test]
    fn boto3_assume_role_body() {
        let req = parse(ASSUME_ROLE_BODY).unwrap();
        assert_eq!(
            req,
            StsRequest::AssumeRole {
                role_arn: ROLE.into(),
                role_session_name: "sess1".into(),
                duration_seconds: Some(900),
                policy: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#.into()),
                policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
                tags: vec![("team".into(), "blue".into()), ("env".into(), "dev".into())],
                transitive_tag_keys: vec!["team".into()],
                external_id: Some("ext-123".into()),
                serial_number: None,
                token_code: None,
                source_identity: Some("alice".into()),
            }
        );
        assert_eq!(req.action(), "AssumeRole");
        assert!(req.requires_signature());
    }

    #[test]
    fn boto3_get_session_token_and_caller_identity_bodies() {
        assert_eq!(
            parse("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=3600").unwrap(),
            StsRequest::GetSessionToken {
                duration_seconds: Some(3600),
                serial_number: None,
                token_code: None
            }
        );
        assert_eq!(
            parse("Action=GetCallerIdentity&Version=2011-06-15").unwrap(),
            StsRequest::GetCallerIdentity
        );
    }

    #[test]
    fn boto3_web_identity_body() {
        let req = parse(WEB_IDENTITY_BODY).unwrap();
        assert_eq!(
            req,
            StsRequest::AssumeRoleWithWebIdentity {
                role_arn: "arn:aws:iam::123456789012:role/FederatedWebIdentityRole".into(),
                role_session_name: "app1".into(),
                web_identity_token: "eyJhbGciOiJSUzI1NiJ9.e30.sig".into(),
                provider_id: None,
                policy_arns: vec![],
                policy: None,
                duration_seconds: None,
            }
        );
        assert!(!req.requires_signature());
        let debug = format!("{req:?}");
        assert!(!debug.contains("eyJ"), "{debug}");
        assert!(debug.contains("***"));
    }

    #[test]
    fn get_access_key_info() {
        assert_eq!(
            parse("Action=GetAccessKeyInfo&Version=2011-06-15&AccessKeyId=ASIAIOSFODNN7EXAMPLE")
                .unwrap(),
            StsRequest::GetAccessKeyInfo {
                access_key_id: "ASIAIOSFODNN7EXAMPLE".into()
            }
        );
        assert_eq!(
            validation(parse("Action=GetAccessKeyInfo&Version=2011-06-15&AccessKeyId=AKIA-x")),
            "2 validation errors detected: Value 'AKIA-x' at 'accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]*; Value 'AKIA-x' at 'accessKeyId' failed to satisfy constraint: Member must have length greater than or equal to 16"
        );
        assert_eq!(
            validation(parse("Action=GetAccessKeyInfo&Version=2011-06-15")),
            "1 validation error detected: Value null at 'accessKeyId' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form(b"a=x+y%20z&b&&c=%2B%26%3d&=v&d=%C3%A9").unwrap(),
            params(&[
                ("a", "x y z"),
                ("b", ""),
                ("c", "+&="),
                ("", "v"),
                ("d", "é")
            ])
        );
        assert_eq!(parse_form(b"").unwrap(), vec![]);
        assert_eq!(parse_form(b"a=b=c").unwrap(), params(&[("a", "b=c")]));
    }

    #[test]
    fn malformed_escapes_are_400() {
        for body in [
            &b"Action=%"[..],
            b"Action=%4",
            b"Action=%zz",
            b"A%g1=1",
            b"a=%FF",
            b"a=\xff",
        ] {
            let e = parse_form(body).unwrap_err();
            assert_eq!(
                (e.code, e.status),
                ("MalformedQueryString", 400),
                "{body:?}"
            );
        }
        assert_eq!(
            parse_form(b"a=%").unwrap_err().message,
            "Incomplete trailing escape % sequence"
        );
    }

    #[test]
    fn query_and_body_merge_body_wins() {
        let p = parse_query_and_form(
            Some("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=1000"),
            b"DurationSeconds=2000",
        )
        .unwrap();
        assert_eq!(
            StsRequest::from_params(&p).unwrap(),
            StsRequest::GetSessionToken {
                duration_seconds: Some(2000),
                serial_number: None,
                token_code: None
            }
        );
        // Parameters from either place are used.
        let p =
            parse_query_and_form(Some("Action=GetCallerIdentity"), b"Version=2011-06-15").unwrap();
        assert_eq!(
            StsRequest::from_params(&p).unwrap(),
            StsRequest::GetCallerIdentity
        );
        let p = parse_query_and_form(None, b"Action=GetCallerIdentity&Version=2011-06-15").unwrap();
        assert_eq!(
            StsRequest::from_params(&p).unwrap(),
            StsRequest::GetCallerIdentity
        );
        assert!(parse_query_and_form(Some("a=%"), b"").is_err());
    }

    #[test]
    fn action_and_version() {
        let e = err(parse("Version=2011-06-15"));
        assert_eq!(
            (e.code, e.status, e.message.as_str()),
            ("MissingAction", 400, "Missing Action")
        );
        assert_eq!(
            err(parse("Action=&Version=2011-06-15")).code,
            "MissingAction"
        );
        let e = err(parse("Action=GetFederationToken&Version=2011-06-15"));
        assert_eq!(
            (e.code, e.status, e.message.as_str()),
            (
                "InvalidAction",
                400,
                "Could not find operation GetFederationToken for version 2011-06-15"
            )
        );
        assert_eq!(
            err(parse("Action=getcalleridentity&Version=2011-06-15")).code,
            "InvalidAction"
        );
        let e = err(parse("Action=GetCallerIdentity"));
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "InvalidAction",
                "Could not find operation GetCallerIdentity for version NO_VERSION_SPECIFIED"
            )
        );
        let e = err(parse("Action=GetCallerIdentity&Version=2012-01-01"));
        assert_eq!(
            e.message,
            "Could not find operation GetCallerIdentity for version 2012-01-01"
        );
        // Unknown parameters are ignored.
        assert_eq!(
            parse("Action=GetCallerIdentity&Version=2011-06-15&Foo=bar&ProvidedContexts.member.1.ProviderArn=x")
                .unwrap(),
            StsRequest::GetCallerIdentity
        );
    }

    #[test]
    fn role_session_name() {
        assert_eq!(
            validation(assume(&[("RoleSessionName", "Session1:2")])),
            "1 validation error detected: Value 'Session1:2' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        );
        let long = "s".repeat(65);
        assert_eq!(
            validation(assume(&[("RoleSessionName", &long)])),
            format!("1 validation error detected: Value '{long}' at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64")
        );
        assert_eq!(
            validation(assume(&[("RoleSessionName", "a")])),
            "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"
        );
        for bad in ["PowerUser/x", "a:b", "dependabot[bot]", "a b"] {
            validation(assume(&[("RoleSessionName", bad)]));
        }
        for good in ["ab", "a+=,.@-_Z9", &"s".repeat(64)] {
            assume(&[("RoleSessionName", good)]).unwrap();
        }
    }

    #[test]
    fn missing_required_members_are_aggregated() {
        assert_eq!(
            validation(parse("Action=AssumeRole&Version=2011-06-15")),
            "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"
        );
        assert_eq!(
            validation(parse("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo&RoleSessionName=x&WebIdentityToken=abc")),
            "2 validation errors detected: Value 'x' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2; Value at 'webIdentityToken' failed to satisfy constraint: Member must have length greater than or equal to 4"
        );
    }

    #[test]
    fn role_arn() {
        assert_eq!(
            validation(assume(&[("RoleArn", "arn:aws:iam::1:role")])),
            "1 validation error detected: Value 'arn:aws:iam::1:role' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20"
        );
        let long = format!("{ROLE}{}", "x".repeat(2049 - ROLE.len()));
        assert!(validation(assume(&[("RoleArn", &long)]))
            .ends_with("Member must have length less than or equal to 2048"));
        assert!(validation(assume(&[(
            "RoleArn",
            "arn:aws:iam::123456789012:role/\u{1F600}"
        )]))
        .contains("Member must satisfy regular expression pattern: [\\u0009"));
        // Recorded against AWS [LS].
        for bad in [
            "nothing-valid-in-here",
            "arn::b:::something/test-role",
            "arn:a::::something/test-role",
            "arn:a:::something/test-role",
            "arn:a:a::aaaaaaaaaa:",
            // Well-formed ARNs that cannot name a role.
            "arn:aws:iam::123456789012:user/demo",
            "arn:aws:s3:::bucket/role/demo",
            "arn:aws:iam::12345678901:role/demo",
            "arn:aws:iam:us-east-1:123456789012:role/demo",
            "arn:aws:iam::123456789012:role/path/",
            "arn:other:iam::123456789012:role/demo",
        ] {
            assert_eq!(
                validation(assume(&[("RoleArn", bad)])),
                format!("{bad} is invalid")
            );
        }
        for good in [
            ROLE,
            "arn:aws:iam::123456789012:role/path/to/demo",
            "arn:aws-cn:iam::123456789012:role/demo",
            "arn:aws-us-gov:iam::123456789012:role/demo",
        ] {
            assume(&[("RoleArn", good)]).unwrap();
        }
    }

    #[test]
    fn duration_seconds() {
        let msg = |v: &str, c: &str| {
            format!("1 validation error detected: Value '{v}' at 'durationSeconds' failed to satisfy constraint: Member must {c}")
        };
        assert_eq!(
            validation(assume(&[("DurationSeconds", "899")])),
            msg("899", "have value greater than or equal to 900")
        );
        assert_eq!(
            validation(assume(&[("DurationSeconds", "43201")])),
            msg("43201", "have value less than or equal to 43200")
        );
        assert_eq!(
            validation(assume(&[("DurationSeconds", "-5")])),
            msg("-5", "have value greater than or equal to 900")
        );
        assert_eq!(
            validation(assume(&[("DurationSeconds", "abc")])),
            msg("abc", "be a number")
        );
        assert_eq!(
            validation(assume(&[("DurationSeconds", "")])),
            msg("", "be a number")
        );
        assert_eq!(
            validation(assume(&[("DurationSeconds", " 900")])),
            msg(" 900", "be a number")
        );
        assert_eq!(
            validation(assume(&[("DurationSeconds", "99999999999")])),
            msg("99999999999", "be a number")
        );
        assert_eq!(
            validation(assume(&[("DurationSeconds", "+50000")])),
            msg("50000", "have value less than or equal to 43200")
        );
        for (d, want) in [("900", 900), ("43200", 43200), ("+3600", 3600)] {
            match assume(&[("DurationSeconds", d)]).unwrap() {
                StsRequest::AssumeRole {
                    duration_seconds, ..
                } => assert_eq!(duration_seconds, Some(want)),
                other => panic!("{other:?}"),
            }
        }
        // GetSessionToken allows up to 36 hours.
        let gst = |d: &str| {
            parse(&format!(
                "Action=GetSessionToken&Version=2011-06-15&DurationSeconds={d}"
            ))
        };
        assert!(gst("129600").is_ok());
        assert_eq!(
            validation(gst("129601")),
            msg("129601", "have value less than or equal to 129600")
        );
        assert_eq!(
            validation(gst("899")),
            msg("899", "have value greater than or equal to 900")
        );
        // Web identity: same range as AssumeRole.
        assert_eq!(
            validation(parse(&format!("{WEB_IDENTITY_BODY}&DurationSeconds=43201"))),
            msg("43201", "have value less than or equal to 43200")
        );
    }

    #[test]
    fn policy() {
        assume(&[("Policy", &"x".repeat(2048))]).unwrap();
        assume(&[("Policy", "{\t\n\r \u{FF}}")]).unwrap();
        assert_eq!(
            validation(assume(&[("Policy", &"x".repeat(2049))])),
            format!("1 validation error detected: Value '{}' at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048", "x".repeat(2049))
        );
        assert_eq!(
            validation(assume(&[("Policy", "{\u{100}}")])),
            "1 validation error detected: Value '{\u{100}}' at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
        );
        assert_eq!(
            validation(assume(&[("Policy", "\u{1}")])),
            "1 validation error detected: Value '\u{1}' at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
        );
        assert_eq!(
            validation(assume(&[("Policy", "")])),
            "2 validation errors detected: Value '' at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+; Value '' at 'policy' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
    }

    #[test]
    fn policy_arns() {
        let arn = |i: usize| format!("arn:aws:iam::123456789012:policy/p{i}");
        let many: Vec<(String, String)> = (1..=11)
            .map(|i| (format!("PolicyArns.member.{i}.arn"), arn(i)))
            .collect();
        let as_ref: Vec<(&str, &str)> =
            many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match assume(&as_ref[..10]).unwrap() {
            StsRequest::AssumeRole { policy_arns, .. } => {
                assert_eq!(policy_arns, (1..=10).map(arn).collect::<Vec<_>>())
            }
            other => panic!("{other:?}"),
        }
        let msg = validation(assume(&as_ref));
        assert!(
            msg.starts_with(
                "1 validation error detected: Value '[arn:aws:iam::123456789012:policy/p1, "
            ),
            "{msg}"
        );
        assert!(msg.ends_with("]' at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10"), "{msg}");
        assert_eq!(
            validation(assume(&[("PolicyArns.member.1.arn", "arn:aws:iam::aws")])),
            "1 validation error detected: Value 'arn:aws:iam::aws' at 'policyArns.1.member.arn' failed to satisfy constraint: Member must have length greater than or equal to 20"
        );
        assert_eq!(
            validation(assume(&[(
                "PolicyArns.member.1.arn",
                "not-an-arn-but-long-enough"
            )])),
            "not-an-arn-but-long-enough is invalid"
        );
        // Ordered by index, not by position in the body.
        match assume(&[
            ("PolicyArns.member.2.arn", &arn(2)),
            ("PolicyArns.member.1.arn", &arn(1)),
        ])
        .unwrap()
        {
            StsRequest::AssumeRole { policy_arns, .. } => {
                assert_eq!(policy_arns, vec![arn(1), arn(2)])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_indexes() {
        for name in [
            "Tags.member.0.Key",
            "Tags.member.01.Key",
            "Tags.member.x.Key",
            "Tags.member..Key",
            "TransitiveTagKeys.member.0",
            "PolicyArns.member.99999999999.arn",
        ] {
            let e = validation(assume(&[(name, "team")]));
            assert!(e.starts_with("Invalid list index in parameter "), "{e}");
        }
        assert_eq!(
            validation(assume(&[("Tags.member.1.Key", "a"), ("Tags.member.1.Value", "1"), ("Tags.member.3.Key", "c"), ("Tags.member.3.Value", "3")])),
            "1 validation error detected: Value null at 'tags.2.member' failed to satisfy constraint: Member must not be null"
        );
        assert_eq!(
            validation(assume(&[("TransitiveTagKeys.member.2", "a")])),
            "1 validation error detected: Value null at 'transitiveTagKeys.1.member' failed to satisfy constraint: Member must not be null"
        );
        assert_eq!(
            validation(assume(&[("PolicyArns.member.4000000000.arn", "arn:aws:iam::123456789012:policy/p")])),
            "1 validation error detected: Value null at 'policyArns.1.member' failed to satisfy constraint: Member must not be null"
        );
        // Unknown suffixes are unknown parameters.
        assume(&[("Tags.member.0.Foo", "x"), ("PolicyArns.member.1.Arn", "x")]).unwrap();
    }

    #[test]
    fn tags() {
        match assume(&[
            ("Tags.member.2.Key", "b"),
            ("Tags.member.2.Value", ""),
            ("Tags.member.1.Key", "Ké y:/=+-@_."),
            ("Tags.member.1.Value", "日本 ٣"),
        ])
        .unwrap()
        {
            StsRequest::AssumeRole { tags, .. } => assert_eq!(
                tags,
                vec![
                    ("Ké y:/=+-@_.".into(), "日本 ٣".into()),
                    ("b".into(), String::new())
                ]
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            validation(assume(&[("Tags.member.1.Key", "team")])),
            "1 validation error detected: Value null at 'tags.1.member.value' failed to satisfy constraint: Member must not be null"
        );
        assert_eq!(
            validation(assume(&[("Tags.member.1.Key", ""), ("Tags.member.1.Value", "v")])),
            "2 validation errors detected: Value '' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+; Value '' at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        assert_eq!(
            validation(assume(&[("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "a*b")])),
            "1 validation error detected: Value 'a*b' at 'tags.1.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*"
        );
        let key = "k".repeat(129);
        assert_eq!(
            validation(assume(&[("Tags.member.1.Key", &key), ("Tags.member.1.Value", "v")])),
            format!("1 validation error detected: Value '{key}' at 'tags.1.member.key' failed to satisfy constraint: Member must have length less than or equal to 128")
        );
        let value = "v".repeat(257);
        assert_eq!(
            validation(assume(&[("Tags.member.1.Key", "k"), ("Tags.member.1.Value", &value)])),
            format!("1 validation error detected: Value '{value}' at 'tags.1.member.value' failed to satisfy constraint: Member must have length less than or equal to 256")
        );
        assume(&[
            ("Tags.member.1.Key", &"k".repeat(128)),
            ("Tags.member.1.Value", &"v".repeat(256)),
        ])
        .unwrap();
        // 50 tags pass, 51 fail.
        let many: Vec<(String, String)> = (1..=51)
            .flat_map(|i| {
                [
                    (format!("Tags.member.{i}.Key"), format!("k{i}")),
                    (format!("Tags.member.{i}.Value"), "v".to_owned()),
                ]
            })
            .collect();
        let as_ref: Vec<(&str, &str)> =
            many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assume(&as_ref[..100]).unwrap();
        let msg = validation(assume(&as_ref));
        assert!(
            msg.starts_with(
                "1 validation error detected: Value '[{Key: k1,Value: v}, {Key: k2,Value: v}, "
            ),
            "{msg}"
        );
        assert!(msg.ends_with("]' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"), "{msg}");
    }

    #[test]
    fn duplicate_tag_keys_case_insensitive() {
        let e = err(assume(&[
            ("Tags.member.1.Key", "Team"),
            ("Tags.member.1.Value", "a"),
            ("Tags.member.2.Key", "team"),
            ("Tags.member.2.Value", "b"),
        ]));
        assert_eq!(
            (e.code, e.status, e.message.as_str()),
            (
                "InvalidParameterValue",
                400,
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        );
    }

    #[test]
    fn transitive_tag_keys() {
        let tagged = [("Tags.member.1.Key", "Team"), ("Tags.member.1.Value", "a")];
        let with = |k: &str| {
            let mut p = tagged.to_vec();
            p.push(("TransitiveTagKeys.member.1", k));
            assume(&p)
        };
        match with("tEAM").unwrap() {
            StsRequest::AssumeRole {
                transitive_tag_keys,
                ..
            } => assert_eq!(transitive_tag_keys, vec!["tEAM".to_owned()]),
            other => panic!("{other:?}"),
        }
        let e = err(with("env"));
        assert_eq!(
            (e.code, e.status, e.message.as_str()),
            (
                "InvalidParameterValue",
                400,
                "The specified transitive tag key must be included in the requested tags."
            )
        );
        assert_eq!(
            err(assume(&[("TransitiveTagKeys.member.1", "team")])).message,
            MSG_TRANSITIVE_NOT_IN_TAGS
        );
        assert_eq!(
            validation(with("a*")),
            "1 validation error detected: Value 'a*' at 'transitiveTagKeys.1.member' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+"
        );
        let many: Vec<(String, String)> = (1..=51)
            .map(|i| (format!("TransitiveTagKeys.member.{i}"), "Team".to_owned()))
            .collect();
        let mut p: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        p.extend(tagged);
        assert!(validation(assume(&p)).ends_with("at 'transitiveTagKeys' failed to satisfy constraint: Member must have length less than or equal to 50"));
        p.remove(50); // TransitiveTagKeys.member.51
        assume(&p).unwrap();
    }

    #[test]
    fn external_id_source_identity_mfa() {
        let one = |path: &str, v: &str, c: &str| {
            format!("1 validation error detected: Value '{v}' at '{path}' failed to satisfy constraint: Member must {c}")
        };
        assume(&[("ExternalId", "a:/b=c,d.e@f-g+h_i")]).unwrap();
        assert_eq!(
            validation(assume(&[("ExternalId", "x")])),
            one("externalId", "x", "have length greater than or equal to 2")
        );
        assert_eq!(
            validation(assume(&[("ExternalId", "a b")])),
            one(
                "externalId",
                "a b",
                r"satisfy regular expression pattern: [\w+=,.@:\/-]*"
            )
        );
        assume(&[("ExternalId", &"e".repeat(1224))]).unwrap();
        assert!(validation(assume(&[("ExternalId", &"e".repeat(1225))]))
            .ends_with("less than or equal to 1224"));

        assume(&[("SourceIdentity", &"s".repeat(256))]).unwrap();
        assert!(validation(assume(&[("SourceIdentity", &"s".repeat(257))]))
            .ends_with("less than or equal to 256"));
        assert_eq!(
            validation(assume(&[("SourceIdentity", "a")])),
            one(
                "sourceIdentity",
                "a",
                "have length greater than or equal to 2"
            )
        );
        for reserved in ["aws:x", "AWS:alice"] {
            assert_eq!(
                validation(assume(&[("SourceIdentity", reserved)])),
                one(
                    "sourceIdentity",
                    reserved,
                    r"satisfy regular expression pattern: [\w+=,.@-]*"
                )
            );
        }

        assume(&[
            ("SerialNumber", "arn:aws:iam::123456789012:mfa/user"),
            ("TokenCode", "012345"),
        ])
        .unwrap();
        assert_eq!(
            validation(assume(&[("SerialNumber", "GAHT1234")])),
            one(
                "serialNumber",
                "GAHT1234",
                "have length greater than or equal to 9"
            )
        );
        assert_eq!(
            validation(assume(&[("SerialNumber", "GAHT 12345678")])),
            one(
                "serialNumber",
                "GAHT 12345678",
                r"satisfy regular expression pattern: [\w+=/:,.@-]*"
            )
        );
        assert_eq!(
            validation(assume(&[("TokenCode", "12345")])),
            one(
                "tokenCode",
                "12345",
                "have length greater than or equal to 6"
            )
        );
        assert_eq!(
            validation(assume(&[("TokenCode", "1234567")])),
            one(
                "tokenCode",
                "1234567",
                "have length less than or equal to 6"
            )
        );
        assert_eq!(
            validation(assume(&[("TokenCode", "12345a")])),
            one(
                "tokenCode",
                "12345a",
                r"satisfy regular expression pattern: [\d]*"
            )
        );
        assert_eq!(
            validation(assume(&[("TokenCode", "١٢٣٤٥٦")])),
            one(
                "tokenCode",
                "١٢٣٤٥٦",
                r"satisfy regular expression pattern: [\d]*"
            )
        );
        let gst = parse(
            "Action=GetSessionToken&Version=2011-06-15&SerialNumber=GAHT12345678&TokenCode=123456",
        )
        .unwrap();
        assert_eq!(
            gst,
            StsRequest::GetSessionToken {
                duration_seconds: None,
                serial_number: Some("GAHT12345678".into()),
                token_code: Some("123456".into())
            }
        );
        assert!(!format!("{gst:?}").contains("123456\""));
    }

    #[test]
    fn web_identity_members() {
        let token = "t".repeat(20_000);
        let ok = parse(&format!("{WEB_IDENTITY_BODY}x&ProviderId=www.amazon.com&Policy=%7B%7D&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess&DurationSeconds=43200")).unwrap();
        assert!(matches!(
            ok,
            StsRequest::AssumeRoleWithWebIdentity {
                provider_id: Some(_),
                policy: Some(_),
                duration_seconds: Some(43200),
                ..
            }
        ));
        let req = |t: &str| {
            parse(&format!("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo&RoleSessionName=app1&WebIdentityToken={t}"))
        };
        req(&token).unwrap();
        // The token is sensitive: never echoed.
        let long = format!("{token}t");
        assert_eq!(
            validation(req(&long)),
            "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length less than or equal to 20000"
        );
        assert_eq!(
            validation(parse(&format!("{WEB_IDENTITY_BODY}&ProviderId=abc"))),
            "1 validation error detected: Value 'abc' at 'providerId' failed to satisfy constraint: Member must have length greater than or equal to 4"
        );
        assert_eq!(
            validation(parse("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Auser%2Fdemo&RoleSessionName=app1&WebIdentityToken=abcd")),
            "arn:aws:iam::123456789012:user/demo is invalid"
        );
    }

    #[test]
    fn lengths_count_utf16_units() {
        // U+10400 (a Deseret letter, \p{L}) is two UTF-16 code units, as Java counts them.
        let key = |n: usize| "\u{10400}".repeat(n);
        assume(&[
            ("Tags.member.1.Key", &key(64)),
            ("Tags.member.1.Value", "v"),
        ])
        .unwrap();
        assert!(validation(assume(&[
            ("Tags.member.1.Key", &key(65)),
            ("Tags.member.1.Value", "v")
        ]))
        .ends_with("Member must have length less than or equal to 128"));
    }

    #[test]
    fn errors_have_aws_codes_and_statuses() {
        let cases = [
            (StsError::access_denied("x"), "AccessDenied", 403),
            (StsError::validation_error("x"), "ValidationError", 400),
            (
                StsError::invalid_parameter_value("x"),
                "InvalidParameterValue",
                400,
            ),
            (
                StsError::malformed_policy_document("x"),
                "MalformedPolicyDocument",
                400,
            ),
            (
                StsError::packed_policy_too_large("x"),
                "PackedPolicyTooLarge",
                400,
            ),
            (
                StsError::region_disabled("x"),
                "RegionDisabledException",
                403,
            ),
            (
                StsError::expired_token_exception("x"),
                "ExpiredTokenException",
                400,
            ),
            (
                StsError::invalid_identity_token("x"),
                "InvalidIdentityToken",
                400,
            ),
            (StsError::idp_rejected_claim("x"), "IDPRejectedClaim", 403),
            (
                StsError::idp_communication_error("x"),
                "IDPCommunicationError",
                400,
            ),
            (
                StsError::invalid_action("X", API_VERSION),
                "InvalidAction",
                400,
            ),
            (StsError::missing_action(), "MissingAction", 400),
            (
                StsError::malformed_query_string("x"),
                "MalformedQueryString",
                400,
            ),
            (
                StsError::missing_authentication_token(),
                "MissingAuthenticationToken",
                403,
            ),
            (
                StsError::invalid_client_token_id(MSG_INVALID_TOKEN),
                "InvalidClientTokenId",
                403,
            ),
            (StsError::expired_token(), "ExpiredToken", 403),
            (
                StsError::signature_does_not_match("x"),
                "SignatureDoesNotMatch",
                403,
            ),
            (
                StsError::incomplete_signature("x"),
                "IncompleteSignature",
                400,
            ),
        ];
        for (e, code, status) in cases {
            assert_eq!(
                (e.code, e.status, e.kind),
                (code, status, ErrorKind::Sender)
            );
            assert_eq!(e.status_code().as_u16(), status);
        }
        let e = StsError::internal_failure();
        assert_eq!(
            (e.code, e.status, e.kind.as_str()),
            ("InternalFailure", 500, "Receiver")
        );
        assert_eq!(
            StsError::expired_token().message,
            "The security token included in the request is expired"
        );
        assert_eq!(
            StsError::missing_authentication_token().message,
            "Request is missing Authentication Token"
        );
        assert_eq!(
            StsError::missing_action().to_string(),
            "MissingAction: Missing Action"
        );
    }
}
