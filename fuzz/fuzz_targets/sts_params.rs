//! The STS Query-protocol parser and validator on arbitrary query strings and form bodies, and
//! the XML rendering of whatever comes out. Must never panic, and user input must never add
//! markup to a document.
//!
//! Input: `query \0 body`, or just `body` when there is no NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::sts::params::{self, StsRequest};
use tollgate::sts::xml;

/// Tags in an `ErrorResponse` (6 elements, open + close).
const ERROR_TAGS: usize = 12;
/// Tags in an `AssumeRoleResponse` with `SourceIdentity` and `PackedPolicySize`.
const ASSUME_ROLE_TAGS: usize = 28;

fn check_no_markup(doc: &str, tags: usize) {
    assert_eq!(doc.matches('<').count(), tags, "{doc}");
    assert_eq!(doc.matches('>').count(), tags, "{doc}");
    assert!(
        !doc.chars().any(|c| c < ' ' && c != '\n' && c != '\t'),
        "control character in {doc:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let query = query.map(String::from_utf8_lossy);
    let outcome = params::parse_query_and_form(query.as_deref(), body)
        .and_then(|p| StsRequest::from_params(&p));
    match outcome {
        Err(e) => {
            assert!((400..600).contains(&e.status), "{e:?}");
            let _ = e.status_code();
            check_no_markup(&xml::error_response(&e, "rid"), ERROR_TAGS);
        }
        Ok(req) => {
            let _ = format!("{req:?}");
            let _ = (req.action(), req.requires_signature());
            if let StsRequest::AssumeRole {
                role_session_name,
                source_identity,
                ..
            } = &req
            {
                let arn =
                    format!("arn:aws:sts::123456789012:assumed-role/demo/{role_session_name}");
                let id = format!("AROA3XFRBF535PLBIFPI4:{role_session_name}");
                let result = xml::AssumeRoleResult {
                    credentials: xml::Credentials {
                        access_key_id: "ASIAIOSFODNN7EXAMPLE",
                        secret_access_key: "secret",
                        session_token: "token",
                        expiration: 1_893_456_000,
                    },
                    assumed_role_user: xml::AssumedRoleUser {
                        arn: &arn,
                        assumed_role_id: &id,
                    },
                    packed_policy_size: Some(1),
                    source_identity: Some(source_identity.as_deref().unwrap_or("src")),
                };
                check_no_markup(&xml::assume_role_response(&result, "rid"), ASSUME_ROLE_TAGS);
            }
        }
    }
});
