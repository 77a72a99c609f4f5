//! Sealed STS session tokens: `sts::token::open` on arbitrary token strings and access key ids
//! with a fixed key ring, and the claims decoder on arbitrary bytes. Must never panic; whatever
//! decodes must re-encode to the same bytes (the current encoding is canonical; version-2 claims,
//! still read, re-encode to the same claims), and whatever opens must
//! be bound to the presented access key id, unexpired and carry a 40-character secret.
//!
//! Input: the first byte selects the mode; even → `open` (rest = `akid '\n' token`), odd →
//! `decode_claims` (rest = encoded claims). Seeds (`seeds/sts_token/`, written by the ignored
//! unit test `sts::token::tests::write_fuzz_seeds`) hold valid tokens for this ring and clock.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tollgate::sts::token::{self, KeyRing};

/// The clock the seeds were sealed for (they expire an hour or more later).
const NOW: i64 = 1_700_000_100;

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        KeyRing::new(vec![
            ("fuzz-2".to_string(), [2; 32]),
            ("fuzz-1".to_string(), [1; 32]),
        ])
        .expect("valid fixed ring")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let (akid, tok) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&b""[..], rest),
        };
        let akid = String::from_utf8_lossy(akid);
        let tok = String::from_utf8_lossy(tok);
        for now in [i64::MIN, NOW, i64::MAX] {
            match token::open(ring(), &tok, &akid, now) {
                Ok(s) => {
                    assert_eq!(s.claims.access_key_id, akid);
                    assert!(now < s.claims.expires_at);
                    assert_eq!(s.secret.expose().len(), token::SECRET_ACCESS_KEY_LEN);
                    assert!(ring().contains(&s.kid));
                }
                Err(e) => {
                    let _ = e.aws_error_code();
                }
            }
        }
    } else if let Ok(claims) = token::decode_claims(rest, "ASIAFUZZFUZZFUZZFUZZ") {
        let again = token::encode_claims(&claims);
        if rest.first() == Some(&token::CLAIMS_VERSION) {
            assert_eq!(again.as_deref(), Ok(rest), "the claims encoding is canonical");
        } else if let Ok(again) = again {
            // Version 2, still read: re-encoded as the current version, the same claims.
            let back = token::decode_claims(&again, &claims.access_key_id);
            assert_eq!(back.as_ref(), Ok(&claims), "version 2 claims survive re-encoding");
        }
    }
});
