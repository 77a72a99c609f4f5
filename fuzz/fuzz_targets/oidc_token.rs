//! Web identity tokens (`AssumeRoleWithWebIdentity`'s `WebIdentityToken`, client input) through
//! `verify_web_identity` with a provider whose keys are the test JWKS, and JWKS documents through
//! `Jwks::from_json`. Must never panic; every refusal maps to an AWS error code with a 4xx
//! status, its message never echoes the token, and nothing the fuzzer makes is accepted (it
//! holds no private key).
//!
//! Input: the first byte selects the mode — 0: the rest is a token; 1: the rest is a JWKS
//! document; otherwise the rest drives a token built from a JSON header and claims the
//! verifier's checks look at (alg, kid, iss, aud, exp …) and an arbitrary signature.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tollgate::sts::oidc::{verify_web_identity, Jwks, JwksSource, OidcError, OidcProvider};

const JWKS: &str = include_str!("../../tests/fixtures/oidc/jwks.json");
const ISSUER: &str = "https://idp.example.com";
const NOW: i64 = 1_700_000_000;

fn setup() -> &'static (OidcProvider, Arc<Jwks>) {
    static SETUP: OnceLock<(OidcProvider, Arc<Jwks>)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let provider = OidcProvider::new(
            ISSUER,
            vec!["client-a".to_owned()],
            JwksSource::Inline(JWKS.to_owned()),
        )
        .expect("the test provider is valid");
        let jwks = Arc::new(Jwks::from_json(JWKS.as_bytes()).expect("the test JWKS parses"));
        (provider, jwks)
    })
}

fn check(token: &str) {
    let (provider, jwks) = setup();
    let result = verify_web_identity(
        token,
        std::slice::from_ref(provider),
        |_| Some(Arc::clone(jwks)),
        NOW,
    );
    let err: OidcError = match result {
        Ok(id) => panic!("a token the fuzzer made was accepted: {id:?}"),
        Err(e) => e,
    };
    assert!(!err.aws_code().is_empty());
    assert!((400..500).contains(&err.http_status()), "{err:?}");
    let text = err.to_string();
    // Token parts as a client sends them (base64url, 20+ characters: longer than any word of
    // the fixed messages, which the fuzzer can otherwise copy into its token).
    let encoded = |p: &&str| {
        p.len() >= 20
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    for part in token.split('.').filter(encoded) {
        assert!(!text.contains(part), "the message echoes the token: {text}");
    }
}

const ALGS: [&str; 8] = [
    "RS256", "ES256", "ES384", "PS256", "HS256", "none", "RS512", "EdDSA",
];
const KIDS: [&str; 4] = ["rsa-1", "ec-1", "ec384-1", "unknown"];
const ISSUERS: [&str; 4] = [
    ISSUER,
    "https://idp.example.com/",
    "http://idp.example.com",
    "https://other.example.com",
];

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn structured(u: &mut Unstructured<'_>) -> Result<String> {
    let mut header = serde_json::Map::new();
    if u.arbitrary()? {
        header.insert("alg".into(), (*u.choose(&ALGS)?).into());
    }
    if u.arbitrary()? {
        header.insert("kid".into(), (*u.choose(&KIDS)?).into());
    }
    if u.ratio(1, 8)? {
        header.insert("crit".into(), serde_json::json!(["b64"]));
    }
    let mut claims = serde_json::Map::new();
    if u.ratio(7, 8)? {
        claims.insert("iss".into(), (*u.choose(&ISSUERS)?).into());
    }
    match u.int_in_range(0..=3)? {
        0 => {}
        1 => {
            claims.insert("aud".into(), "client-a".into());
        }
        2 => {
            claims.insert("aud".into(), serde_json::json!(["x", "client-a"]));
        }
        _ => {
            claims.insert("aud".into(), text(u)?.into());
        }
    }
    for name in ["sub", "azp", "amr", "https://aws.amazon.com/tags"] {
        if u.arbitrary()? {
            claims.insert(name.into(), text(u)?.into());
        }
    }
    for name in ["exp", "iat", "nbf"] {
        if u.arbitrary()? {
            claims.insert(name.into(), (NOW + i64::from(u.arbitrary::<i32>()?)).into());
        }
    }
    let signature: Vec<u8> = u.arbitrary()?;
    Ok(format!(
        "{}.{}.{}",
        b64(serde_json::Value::Object(header).to_string().as_bytes()),
        b64(serde_json::Value::Object(claims).to_string().as_bytes()),
        b64(&signature)
    ))
}

/// Up to 40 bytes of the input as text.
fn text(u: &mut Unstructured<'_>) -> Result<String> {
    let len = u.int_in_range(0..=40)?;
    Ok(String::from_utf8_lossy(u.bytes(len)?).into_owned())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => check(&String::from_utf8_lossy(rest)),
        1 => {
            if let Ok(jwks) = Jwks::from_json(rest) {
                assert!(jwks.len() <= tollgate::sts::oidc::MAX_JWKS_KEYS);
                let _ = jwks.key_ids().count();
            }
        }
        _ => {
            if let Ok(token) = structured(&mut Unstructured::new(rest)) {
                check(&token);
            }
        }
    }
});
