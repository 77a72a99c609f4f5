//! The aws-chunked decoder in all three streaming modes, on arbitrary bodies fed in arbitrary
//! pieces, as aws-chunked bytes or as de-chunked data plus HTTP trailers. Must never panic, and
//! the result must not depend on how the body was split.
//!
//! Input: `ctl`, `split`, `len`, then the body.
//! - `ctl & 3`: 0 `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, 1 `…-PAYLOAD-TRAILER`, 2/3
//!   `STREAMING-UNSIGNED-PAYLOAD-TRAILER`;
//! - `(ctl >> 2) & 3`: the declared `x-amz-trailer` (none, crc32, sha256, crc64nvme + a meta one);
//! - `ctl & 0x10`: `len` is `x-amz-decoded-content-length`;
//! - `ctl & 0x20`: de-chunked (unsigned only): the body is `data \0 trailer lines`;
//! - `split` seeds the sizes of the pieces fed.
//!
//! Signatures use the secret `secret`, date `20130524T000000Z`, scope
//! `20130524/us-east-1/s3/aws4_request` and seed signature `4f232c43…a0a9`.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate::sigv4::{
    derive_signing_key, sniff_chunk_header, ChunkError, ChunkSigning, ChunkedDecoder, Signature,
    StreamingMode,
};

const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

fn decoder(ctl: u8, len: u8) -> Result<ChunkedDecoder, ChunkError> {
    let mode = match ctl & 3 {
        0 => StreamingMode::Signed,
        1 => StreamingMode::SignedTrailer,
        _ => StreamingMode::UnsignedTrailer,
    };
    let declared = match (ctl >> 2) & 3 {
        0 => None,
        1 => Some("x-amz-checksum-crc32"),
        2 => Some("x-amz-checksum-sha256"),
        _ => Some("x-amz-checksum-crc64nvme, x-amz-meta-a"),
    };
    let expected = (ctl & 0x10 != 0).then_some(u64::from(len));
    let signing = ChunkSigning {
        key: Arc::new(derive_signing_key("secret", "20130524", "us-east-1", "s3")),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        seed: Signature::from_hex(SEED).unwrap_or_else(|| unreachable!()),
    };
    ChunkedDecoder::new(mode, Some(signing), expected, declared)
}

/// Decodes `body` fed in pieces whose sizes come from `split` (0: all at once).
fn run(ctl: u8, len: u8, split: u8, body: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let mut dec = decoder(ctl, len)?;
    let dechunked = ctl & 0x20 != 0 && !dec.mode().is_signed();
    let (data, trailers) = if dechunked {
        dec.assume_dechunked()?;
        let mut parts = body.splitn(2, |&b| b == 0);
        (parts.next().unwrap_or_default(), parts.next())
    } else {
        (body, None)
    };
    let mut out = Vec::new();
    let mut rest = data;
    let mut state = u32::from(split);
    while !rest.is_empty() {
        let n = if split == 0 {
            rest.len()
        } else {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            1 + (state >> 16) as usize % 97
        };
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        dec.feed(Bytes::copy_from_slice(piece), &mut out)?;
        rest = tail;
    }
    if let Some(text) = trailers {
        let mut map = http::HeaderMap::new();
        for line in text.split(|&b| b == b'\n') {
            let mut kv = line.splitn(2, |&b| b == b':');
            let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
                continue;
            };
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k),
                http::HeaderValue::from_bytes(v),
            ) {
                map.append(k, v);
            }
        }
        dec.http_trailers(&map)?;
    }
    dec.finish()?;
    let decoded: Vec<u8> = out.concat();
    assert_eq!(decoded.len() as u64, dec.decoded_len());
    if ctl & 0x10 != 0 {
        assert_eq!(decoded.len(), usize::from(len));
    }
    Ok(decoded)
}

fuzz_target!(|input: &[u8]| {
    let [ctl, split, len, body @ ..] = input else {
        return;
    };
    let _ = sniff_chunk_header(body);
    let whole = run(*ctl, *len, 0, body);
    let pieces = run(*ctl, *len, (*split).max(1), body);
    // Splitting never changes the outcome (the kind of error; a length error reports the length
    // seen so far, which depends on the pieces).
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b)),
        _ => panic!("split changed the outcome: {whole:?} vs {pieces:?}"),
    }
});
