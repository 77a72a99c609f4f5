//! STS response and error documents (AWS Query protocol, `reference/sts.md` §2–§3).
//!
//! Pure: plain structs in, the XML body out. Every value is escaped with [`escape`]; no input
//! reaches the document unescaped. Element order follows the documents recorded from AWS (which
//! botocore parses; it ignores order). Serve with `Content-Type: text/xml` ([`CONTENT_TYPE`]) and
//! an `x-amzn-RequestId` header equal to the `request_id` passed here.

use std::borrow::Cow;
use std::fmt;

use super::params::StsError;
use crate::time::iso8601;

/// The `xmlns` of every STS document.
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The `Content-Type` of STS responses, success or error.
pub const CONTENT_TYPE: &str = "text/xml";

/// Escapes text for XML content or a quoted attribute: `&`, `<`, `>`, `"` and `'` become
/// entities, and CR becomes `&#xD;` (so XML's line-end normalisation cannot turn it into LF).
/// Characters XML 1.0 does not allow at all (C0 controls other than tab, LF and CR; U+FFFE;
/// U+FFFF) cannot be escaped either; they become U+FFFD.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    push_escaped(&mut out, text);
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '&' | '<' | '>' | '"' | '\'' | '\r' | '\u{FFFE}' | '\u{FFFF}'
    ) || (c < ' ' && c != '\t' && c != '\n')
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// Temporary credentials. `Debug` hides the secret and the session token.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// `ASIA…` access key ID.
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// The session token.
    pub session_token: &'a str,
    /// Expiry, seconds since the Unix epoch (rendered `2030-01-01T00:00:00Z`).
    pub expiration: i64,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &"***")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// The role session the credentials belong to.
#[derive(Debug, Clone, Copy)]
pub struct AssumedRoleUser<'a> {
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: &'a str,
    /// `AROA…:<session>`.
    pub assumed_role_id: &'a str,
}

/// The result of `AssumeRole`.
#[derive(Debug, Clone, Copy)]
pub struct AssumeRoleResult<'a> {
    /// The new credentials.
    pub credentials: Credentials<'a>,
    /// The new session's identifiers.
    pub assumed_role_user: AssumedRoleUser<'a>,
    /// `PackedPolicySize`: percentage of the packed limit used by session policies and tags.
    pub packed_policy_size: Option<u32>,
    /// `SourceIdentity`, when set.
    pub source_identity: Option<&'a str>,
}

/// The result of `AssumeRoleWithWebIdentity`.
#[derive(Debug, Clone, Copy)]
pub struct AssumeRoleWithWebIdentityResult<'a> {
    /// The new credentials.
    pub credentials: Credentials<'a>,
    /// The new session's identifiers.
    pub assumed_role_user: AssumedRoleUser<'a>,
    /// `PackedPolicySize`, when session policies were passed.
    pub packed_policy_size: Option<u32>,
    /// `SourceIdentity`, when the token carried one.
    pub source_identity: Option<&'a str>,
    /// `SubjectFromWebIdentityToken`: the token's `sub`.
    pub subject: &'a str,
    /// `Audience`: the token's client ID (`aud`).
    pub audience: &'a str,
    /// `Provider`: the issuer (`iss`) for OIDC, or the `ProviderId` for OAuth 2.0.
    pub provider: &'a str,
}

/// The result of `GetCallerIdentity`.
#[derive(Debug, Clone, Copy)]
pub struct CallerIdentity<'a> {
    /// The caller's ARN.
    pub arn: &'a str,
    /// The `aws:userid` value, e.g. `AROA…:session`.
    pub user_id: &'a str,
    /// The 12-digit account ID.
    pub account: &'a str,
}

/// An indented document in the layout AWS sends.
struct Doc {
    out: String,
    depth: usize,
}

impl Doc {
    fn new(root: &str) -> Self {
        let mut out = String::with_capacity(1024);
        out.push('<');
        out.push_str(root);
        out.push_str(" xmlns=\"");
        out.push_str(NAMESPACE);
        out.push_str("\">\n");
        Self { out, depth: 1 }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        push_escaped(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn opt_leaf(&mut self, name: &str, text: Option<&str>) {
        if let Some(t) = text {
            self.leaf(name, t);
        }
    }

    fn credentials(&mut self, c: &Credentials<'_>, order: CredentialOrder) {
        let expiration = iso8601(c.expiration);
        self.open("Credentials");
        match order {
            CredentialOrder::KeyFirst => {
                self.leaf("AccessKeyId", c.access_key_id);
                self.leaf("SecretAccessKey", c.secret_access_key);
                self.leaf("SessionToken", c.session_token);
                self.leaf("Expiration", &expiration);
            }
            CredentialOrder::TokenFirst => {
                self.leaf("SessionToken", c.session_token);
                self.leaf("SecretAccessKey", c.secret_access_key);
                self.leaf("Expiration", &expiration);
                self.leaf("AccessKeyId", c.access_key_id);
            }
        }
        self.close("Credentials");
    }

    fn assumed_role_user(&mut self, u: &AssumedRoleUser<'_>) {
        self.open("AssumedRoleUser");
        self.leaf("Arn", u.arn);
        self.leaf("AssumedRoleId", u.assumed_role_id);
        self.close("AssumedRoleUser");
    }

    /// Closes the result, adds `ResponseMetadata` and closes the root.
    fn finish(mut self, result: &str, root: &str, request_id: &str) -> String {
        self.close(result);
        self.open("ResponseMetadata");
        self.leaf("RequestId", request_id);
        self.close("ResponseMetadata");
        self.depth = 0;
        self.out.push_str("</");
        self.out.push_str(root);
        self.out.push_str(">\n");
        self.out
    }
}

/// The two `Credentials` layouts AWS's recorded documents use.
#[derive(Clone, Copy)]
enum CredentialOrder {
    KeyFirst,
    TokenFirst,
}

/// The `AssumeRoleResponse` document.
pub fn assume_role_response(result: &AssumeRoleResult<'_>, request_id: &str) -> String {
    let mut d = Doc::new("AssumeRoleResponse");
    d.open("AssumeRoleResult");
    d.opt_leaf("SourceIdentity", result.source_identity);
    d.assumed_role_user(&result.assumed_role_user);
    d.credentials(&result.credentials, CredentialOrder::KeyFirst);
    if let Some(size) = result.packed_policy_size {
        d.leaf("PackedPolicySize", &size.to_string());
    }
    d.finish("AssumeRoleResult", "AssumeRoleResponse", request_id)
}

/// The `AssumeRoleWithWebIdentityResponse` document.
pub fn assume_role_with_web_identity_response(
    result: &AssumeRoleWithWebIdentityResult<'_>,
    request_id: &str,
) -> String {
    let mut d = Doc::new("AssumeRoleWithWebIdentityResponse");
    d.open("AssumeRoleWithWebIdentityResult");
    d.leaf("SubjectFromWebIdentityToken", result.subject);
    d.leaf("Audience", result.audience);
    d.assumed_role_user(&result.assumed_role_user);
    d.credentials(&result.credentials, CredentialOrder::TokenFirst);
    if let Some(size) = result.packed_policy_size {
        d.leaf("PackedPolicySize", &size.to_string());
    }
    d.opt_leaf("SourceIdentity", result.source_identity);
    d.leaf("Provider", result.provider);
    d.finish(
        "AssumeRoleWithWebIdentityResult",
        "AssumeRoleWithWebIdentityResponse",
        request_id,
    )
}

/// The `GetSessionTokenResponse` document.
pub fn get_session_token_response(credentials: &Credentials<'_>, request_id: &str) -> String {
    let mut d = Doc::new("GetSessionTokenResponse");
    d.open("GetSessionTokenResult");
    d.credentials(credentials, CredentialOrder::TokenFirst);
    d.finish(
        "GetSessionTokenResult",
        "GetSessionTokenResponse",
        request_id,
    )
}

/// The `GetCallerIdentityResponse` document.
pub fn get_caller_identity_response(identity: &CallerIdentity<'_>, request_id: &str) -> String {
    let mut d = Doc::new("GetCallerIdentityResponse");
    d.open("GetCallerIdentityResult");
    d.leaf("Arn", identity.arn);
    d.leaf("UserId", identity.user_id);
    d.leaf("Account", identity.account);
    d.finish(
        "GetCallerIdentityResult",
        "GetCallerIdentityResponse",
        request_id,
    )
}

/// The `GetAccessKeyInfoResponse` document.
pub fn get_access_key_info_response(account: &str, request_id: &str) -> String {
    let mut d = Doc::new("GetAccessKeyInfoResponse");
    d.open("GetAccessKeyInfoResult");
    d.leaf("Account", account);
    d.finish(
        "GetAccessKeyInfoResult",
        "GetAccessKeyInfoResponse",
        request_id,
    )
}

/// The `ErrorResponse` document for `error` (serve it with `error.status`).
pub fn error_response(error: &StsError, request_id: &str) -> String {
    let mut d = Doc::new("ErrorResponse");
    d.open("Error");
    d.leaf("Type", error.kind.as_str());
    d.leaf("Code", error.code);
    d.leaf("Message", &error.message);
    d.close("Error");
    d.leaf("RequestId", request_id);
    d.depth = 0;
    d.out.push_str("</ErrorResponse>\n");
    d.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sts::params::StsRequest;

    const CREDS: Credentials<'static> = Credentials {
        access_key_id: "ASIAIOSFODNN7EXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
        session_token: "v1.kid-2024-01.opaque-token",
        expiration: 1_893_456_000, // 2030-01-01T00:00:00Z
    };

    // The documents of reference/sts.md §2 and §3.1, byte for byte.
    const ASSUME_ROLE: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>alice</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/sess1</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:sess1</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>v1.kid-2024-01.opaque-token</SessionToken>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
"#;

    const GET_SESSION_TOKEN: &str = r#"<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetSessionTokenResult>
    <Credentials>
      <SessionToken>v1.kid-2024-01.opaque-token</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
  </GetSessionTokenResult>
  <ResponseMetadata>
    <RequestId>58c5dbae-abef-11e0-8cfe-09039844ac7d</RequestId>
  </ResponseMetadata>
</GetSessionTokenResponse>
"#;

    const GET_CALLER_IDENTITY: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/demo/sess1</Arn>
    <UserId>AROA3XFRBF535PLBIFPI4:sess1</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
"#;

    const WEB_IDENTITY: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</SubjectFromWebIdentityToken>
    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>v1.kid-2024-01.opaque-token</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <SourceIdentity>SourceIdentityValue</SourceIdentity>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
"#;

    const ERROR: &str = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>ExpiredToken</Code>
    <Message>The security token included in the request is expired</Message>
  </Error>
  <RequestId>4d0b6e2f-7a0e-4c0e-9c43-1b1d0f2f9c0a</RequestId>
</ErrorResponse>
"#;

    #[test]
    fn assume_role_document() {
        let result = AssumeRoleResult {
            credentials: CREDS,
            assumed_role_user: AssumedRoleUser {
                arn: "arn:aws:sts::123456789012:assumed-role/demo/sess1",
                assumed_role_id: "AROA3XFRBF535PLBIFPI4:sess1",
            },
            packed_policy_size: Some(6),
            source_identity: Some("alice"),
        };
        assert_eq!(
            assume_role_response(&result, "c6104cbe-af31-11e0-8154-cbc7ccf896c7"),
            ASSUME_ROLE
        );
        let bare = AssumeRoleResult {
            packed_policy_size: None,
            source_identity: None,
            ..result
        };
        let doc = assume_role_response(&bare, "r");
        assert!(!doc.contains("SourceIdentity") && !doc.contains("PackedPolicySize"));
    }

    #[test]
    fn get_session_token_document() {
        assert_eq!(
            get_session_token_response(&CREDS, "58c5dbae-abef-11e0-8cfe-09039844ac7d"),
            GET_SESSION_TOKEN
        );
    }

    #[test]
    fn get_caller_identity_document() {
        let identity = CallerIdentity {
            arn: "arn:aws:sts::123456789012:assumed-role/demo/sess1",
            user_id: "AROA3XFRBF535PLBIFPI4:sess1",
            account: "123456789012",
        };
        assert_eq!(
            get_caller_identity_response(&identity, "01234567-89ab-cdef-0123-456789abcdef"),
            GET_CALLER_IDENTITY
        );
    }

    #[test]
    fn web_identity_document() {
        let result = AssumeRoleWithWebIdentityResult {
            credentials: CREDS,
            assumed_role_user: AssumedRoleUser {
                arn: "arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1",
                assumed_role_id: "AROACLKWSDQRAOEXAMPLE:app1",
            },
            packed_policy_size: None,
            source_identity: Some("SourceIdentityValue"),
            subject: "amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A",
            audience: "client.5498841531868486423.1548@apps.example.com",
            provider: "www.amazon.com",
        };
        assert_eq!(
            assume_role_with_web_identity_response(&result, "ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE"),
            WEB_IDENTITY
        );
        let with_size = AssumeRoleWithWebIdentityResult {
            packed_policy_size: Some(12),
            ..result
        };
        assert!(assume_role_with_web_identity_response(&with_size, "r")
            .contains("</Credentials>\n    <PackedPolicySize>12</PackedPolicySize>\n"));
    }

    #[test]
    fn get_access_key_info_document() {
        assert_eq!(
            get_access_key_info_response("123456789012", "rid"),
            "<GetAccessKeyInfoResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <GetAccessKeyInfoResult>\n    <Account>123456789012</Account>\n  </GetAccessKeyInfoResult>\n  <ResponseMetadata>\n    <RequestId>rid</RequestId>\n  </ResponseMetadata>\n</GetAccessKeyInfoResponse>\n"
        );
    }

    #[test]
    fn error_document() {
        assert_eq!(
            error_response(
                &StsError::expired_token(),
                "4d0b6e2f-7a0e-4c0e-9c43-1b1d0f2f9c0a"
            ),
            ERROR
        );
        let doc = error_response(&StsError::internal_failure(), "r");
        assert!(doc.contains("<Type>Receiver</Type>\n    <Code>InternalFailure</Code>"));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("plain"), Cow::Borrowed("plain"));
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(escape("a\tb\nc\rd"), "a\tb\nc&#xD;d");
        assert_eq!(escape("\u{0}\u{1b}\u{FFFE}é"), "\u{FFFD}\u{FFFD}\u{FFFD}é");
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn user_input_is_escaped_in_results() {
        let result = AssumeRoleResult {
            credentials: CREDS,
            assumed_role_user: AssumedRoleUser {
                arn: "arn:aws:sts::123456789012:assumed-role/demo/<&>",
                assumed_role_id: "AROA3XFRBF535PLBIFPI4:<&>",
            },
            packed_policy_size: None,
            source_identity: Some("a'b\"c"),
        };
        let doc = assume_role_response(&result, "<rid>");
        assert!(
            doc.contains("<Arn>arn:aws:sts::123456789012:assumed-role/demo/&lt;&amp;&gt;</Arn>")
        );
        assert!(doc.contains("<AssumedRoleId>AROA3XFRBF535PLBIFPI4:&lt;&amp;&gt;</AssumedRoleId>"));
        assert!(doc.contains("<SourceIdentity>a&apos;b&quot;c</SourceIdentity>"));
        assert!(doc.contains("<RequestId>&lt;rid&gt;</RequestId>"));
    }

    #[test]
    fn validation_messages_are_escaped_in_errors() {
        let params = vec![
            ("Action".to_owned(), "AssumeRole".to_owned()),
            ("Version".to_owned(), "2011-06-15".to_owned()),
            (
                "RoleArn".to_owned(),
                "arn:aws:iam::123456789012:role/demo".to_owned(),
            ),
            ("RoleSessionName".to_owned(), "</Message><x>&".to_owned()),
        ];
        let err = StsRequest::from_params(&params).unwrap_err();
        let doc = error_response(&err, "rid");
        assert_eq!(
            doc,
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>ValidationError</Code>\n    <Message>1 validation error detected: Value &apos;&lt;/Message&gt;&lt;x&gt;&amp;&apos; at &apos;roleSessionName&apos; failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*</Message>\n  </Error>\n  <RequestId>rid</RequestId>\n</ErrorResponse>\n"
        );
        assert_eq!(doc.matches('<').count(), 12);
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let debug = format!("{CREDS:?}");
        assert!(
            !debug.contains("wJalr") && !debug.contains("opaque"),
            "{debug}"
        );
        assert!(debug.contains("ASIAIOSFODNN7EXAMPLE"));
    }
}
