//! Sealed STS session tokens (`sts::token`): the cost of opening a token on the request path
//! when it is not cached, and of sealing one in the STS endpoint.
//!
//! Workloads:
//! - `role`: a typical `AssumeRole` session — role ARN and id, session name, 2 session tags, no
//!   inline policy (token ≈ 340 characters);
//! - `web_identity_full`: every claim set — web identity with 2 `amr` values, source identity,
//!   3 tags, a transitive key, a 100-byte inline policy, a managed policy ARN, parent user.
//!
//! Functions in group `open_uncached`: `tollgate` is [`token::open`] (length and shape checks,
//! base64url decode, AES-256-GCM open with the access key id in the AAD, claims decode, access
//! key id comparison, expiry, secret re-derivation); `tollgate_decode_only` is
//! [`token::decode_claims`] on the plaintext (the decoder's share). Peer: `jwt_hs512` is the
//! MinIO design (`sts.md` §7.1) — the same claims as a JSON Web Token signed with HMAC-SHA512,
//! verified and deserialized into a typed struct by `jsonwebtoken` 10 (`rust_crypto` backend)
//! with `exp` validation; it neither hides the claims nor derives a secret. Group `seal`:
//! [`token::seal`] with `rand::thread_rng()` (fresh access key id and nonce).
//!
//! Every routine checks its result once before measuring, so a bench cannot silently measure an
//! error path. A full run ends with a summary: interleaved rounds, minimum and median ns per call,
//! and tollgate's ratio to the peer — stable on a machine whose background load varies.
//!
//! Run: `cargo bench --bench sts_token`; results in `target/criterion/<group>/<function>/`.
//! `STS_TOKEN_SUMMARY_ONLY=1 cargo bench --bench sts_token` prints the summary alone.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
#[path = "common/mod.rs"]
mod common;

use common::{interleaved_stats, run_criterion, wants_summary, Case};
use tollgate::sts::token::{self, KeyRing, SessionClaims, SessionKind, WebIdentityClaims};

const NOW: i64 = 1_700_000_000;

fn role_claims() -> SessionClaims {
    SessionClaims {
        access_key_id: String::new(),
        issued_at: NOW,
        expires_at: NOW + 3600,
        account: "123456789012".into(),
        kind: SessionKind::AssumedRole,
        arn: "arn:aws:sts::123456789012:assumed-role/demo/sess1".into(),
        user_id: "AROA3XFRBF535PLBIFPI4:sess1".into(),
        role_arn: Some("arn:aws:iam::123456789012:role/demo".into()),
        role_id: Some("AROA3XFRBF535PLBIFPI4".into()),
        session_name: Some("sess1".into()),
        source_identity: None,
        tags: vec![("team".into(), "blue".into()), ("env".into(), "dev".into())],
        transitive_tag_keys: vec![],
        session_policy: None,
        policy_arns: vec![],
        chained: false,
        mfa_authenticated: false,
        web_identity: None,
        parent_user_arn: None,
    }
}

fn full_claims() -> SessionClaims {
    SessionClaims {
        kind: SessionKind::WebIdentity,
        arn: "arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1".into(),
        user_id: "AROACLKWSDQRAOEXAMPLE:app1".into(),
        role_arn: Some("arn:aws:iam::123456789012:role/FederatedWebIdentityRole".into()),
        role_id: Some("AROACLKWSDQRAOEXAMPLE".into()),
        session_name: Some("app1".into()),
        source_identity: Some("alice".into()),
        tags: vec![
            ("team".into(), "blue".into()),
            ("env".into(), "dev".into()),
            ("project".into(), "atlas".into()),
        ],
        transitive_tag_keys: vec!["team".into()],
        session_policy: Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
                .into(),
        ),
        policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
        chained: true,
        mfa_authenticated: true,
        web_identity: Some(WebIdentityClaims {
            provider: "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE".into(),
            audience: "sts.amazonaws.com".into(),
            subject: "system:serviceaccount:default:app".into(),
            amr: vec!["authenticated".into(), "accounts.google.com".into()],
        }),
        parent_user_arn: Some("arn:aws:iam::123456789012:user/alice".into()),
        ..role_claims()
    }
}

/// The same claims as JWT claims, MinIO-style (`accessKey`, `exp`, `parent`, …).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JwtClaims {
    access_key: String,
    iat: i64,
    exp: i64,
    account: String,
    kind: String,
    arn: String,
    user_id: String,
    role_arn: Option<String>,
    role_id: Option<String>,
    session_name: Option<String>,
    source_identity: Option<String>,
    tags: Vec<(String, String)>,
    transitive_tag_keys: Vec<String>,
    session_policy: Option<String>,
    policy_arns: Vec<String>,
    chained: bool,
    mfa: bool,
    web_identity: Option<(String, String, String, Vec<String>)>,
    parent: Option<String>,
}

impl JwtClaims {
    fn from(c: &SessionClaims, akid: &str) -> Self {
        Self {
            access_key: akid.into(),
            iat: c.issued_at,
            // `jsonwebtoken` checks `exp` against the system clock.
            exp: i64::from(u32::MAX),
            account: c.account.clone(),
            kind: format!("{:?}", c.kind),
            arn: c.arn.clone(),
            user_id: c.user_id.clone(),
            role_arn: c.role_arn.clone(),
            role_id: c.role_id.clone(),
            session_name: c.session_name.clone(),
            source_identity: c.source_identity.clone(),
            tags: c.tags.clone(),
            transitive_tag_keys: c.transitive_tag_keys.clone(),
            session_policy: c.session_policy.clone(),
            policy_arns: c.policy_arns.clone(),
            chained: c.chained,
            mfa: c.mfa_authenticated,
            web_identity: c.web_identity.as_ref().map(|w| {
                (
                    w.provider.clone(),
                    w.audience.clone(),
                    w.subject.clone(),
                    w.amr.clone(),
                )
            }),
            parent: c.parent_user_arn.clone(),
        }
    }
}

struct Workload {
    name: &'static str,
    token: String,
    akid: String,
    plaintext: Vec<u8>,
    jwt: String,
    claims: SessionClaims,
}

struct Fixture {
    ring: KeyRing,
    jwt_key: DecodingKey,
    jwt_validation: Validation,
    workloads: Vec<Workload>,
}

fn fixture() -> Fixture {
    let ring = KeyRing::new(vec![
        ("k2026-02".to_string(), [2u8; 32]),
        ("k2026-01".to_string(), [1u8; 32]),
    ])
    .unwrap();
    let jwt_secret = [7u8; 64];
    let jwt_enc = EncodingKey::from_secret(&jwt_secret);
    let jwt_key = DecodingKey::from_secret(&jwt_secret);
    let jwt_validation = Validation::new(Algorithm::HS512);
    let mut rng = rand::thread_rng();
    let workloads = [
        ("role", role_claims()),
        ("web_identity_full", full_claims()),
    ]
    .into_iter()
    .map(|(name, claims)| {
        let issued = token::seal(&ring, &claims, &mut rng).unwrap();
        let opened = token::open(
            &ring,
            issued.session_token.expose(),
            &issued.access_key_id,
            NOW,
        )
        .unwrap();
        assert_eq!(opened.secret.expose(), issued.secret_access_key.expose());
        let plaintext = token::encode_claims(&opened.claims).unwrap();
        let jwt = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &JwtClaims::from(&opened.claims, &issued.access_key_id),
            &jwt_enc,
        )
        .unwrap();
        jsonwebtoken::decode::<JwtClaims>(&jwt, &jwt_key, &jwt_validation).unwrap();
        println!(
            "{name}: sealed token {} chars (claims {} bytes); JWT HS512 {} chars",
            issued.session_token.expose().len(),
            plaintext.len(),
            jwt.len()
        );
        Workload {
            name,
            token: issued.session_token.expose().to_owned(),
            akid: issued.access_key_id,
            plaintext,
            jwt,
            claims,
        }
    })
    .collect();
    Fixture {
        ring,
        jwt_key,
        jwt_validation,
        workloads,
    }
}

fn cases(f: &Fixture) -> Vec<Case<'_>> {
    let mut out = Vec::new();
    for w in &f.workloads {
        let ring = &f.ring;
        out.push(Case {
            group: "open_uncached",
            name: format!("tollgate/{}", w.name),
            units: 1,
            routine: Box::new(move || {
                let s = token::open(ring, black_box(&w.token), black_box(&w.akid), NOW).unwrap();
                s.claims.tags.len()
            }),
        });
        out.push(Case {
            group: "open_uncached",
            name: format!("tollgate_decode_only/{}", w.name),
            units: 1,
            routine: Box::new(move || {
                token::decode_claims(black_box(&w.plaintext), black_box(&w.akid))
                    .unwrap()
                    .tags
                    .len()
            }),
        });
        out.push(Case {
            group: "open_uncached",
            name: format!("jwt_hs512/{}", w.name),
            units: 1,
            routine: Box::new(move || {
                jsonwebtoken::decode::<JwtClaims>(black_box(&w.jwt), &f.jwt_key, &f.jwt_validation)
                    .unwrap()
                    .claims
                    .tags
                    .len()
            }),
        });
        let mut rng = rand::thread_rng();
        out.push(Case {
            group: "seal",
            name: format!("tollgate/{}", w.name),
            units: 1,
            routine: Box::new(move || {
                token::seal(ring, black_box(&w.claims), &mut rng)
                    .unwrap()
                    .session_token
                    .expose()
                    .len()
            }),
        });
    }
    out
}

/// Interleaved rounds (~25 ms per routine per round); the minimum and median per routine.
fn summary(cases: &mut [Case<'_>]) {
    const ROUNDS: usize = 9;
    let stats = interleaved_stats(cases, ROUNDS);
    println!();
    println!(
        "Summary: {ROUNDS} interleaved rounds of ~25 ms per routine; min and median ns per call."
    );
    println!("`vs jwt_hs512` = the JWT peer's min ÷ this min, same workload.");
    println!();
    println!("| group | function/workload | min ns | median ns | vs jwt_hs512 |");
    println!("|---|---|---|---|---|");
    for (i, case) in cases.iter().enumerate() {
        let workload = case.name.split_once('/').map_or("", |(_, w)| w);
        let peer = cases
            .iter()
            .zip(&stats)
            .find(|(c, _)| c.name == format!("jwt_hs512/{workload}"))
            .map(|(_, s)| s.0);
        let ratio = match peer {
            Some(p) if case.name.starts_with("tollgate/") && case.group == "open_uncached" => {
                format!("{:.2}×", p / stats[i].0)
            }
            _ => String::new(),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {} |",
            case.group, case.name, stats[i].0, stats[i].1, ratio
        );
    }
}

fn main() {
    let f = fixture();
    let mut cases = cases(&f);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .without_plots()
        .configure_from_args();
    let summary_only = std::env::var_os("STS_TOKEN_SUMMARY_ONLY").is_some();
    if !summary_only {
        run_criterion(&mut c, &mut cases);
        c.final_summary();
    }
    if summary_only || wants_summary() {
        summary(&mut cases);
    }
}
