//! What the audit trail reads back from disk or a bucket: digest documents (as `tollgate audit
//! verify` and a restarting trail read them: `gunzip`, then the `DigestFile` JSON), public and
//! private keys, and the recovery of a partial log object a killed run left. Must never panic.
//!
//! Input: the first byte selects the mode (`mode % 8`), the rest is its input:
//!
//! - 0: digest JSON; whatever parses serializes and parses back to the same `DigestFile`;
//! - 1: a gzip'd digest; `gunzip` then mode 0;
//! - 2: `PublicKey::parse` (PEM or DER); a key re-exports (`to_spki_pem`) to the same key, an
//!   RSA key's bytes are its DER `RSAPublicKey`, an Ed25519 key is 32 bytes;
//! - 3: `DigestKey::from_pkcs8_pem` (and `from_pkcs8_der` on the raw bytes); a key signs
//!   what its public half verifies, and its public half round-trips as in mode 2;
//! - 4: the partial-recovery decoder on raw bytes: whatever it returns is a valid
//!   `{"Records":[…]}` document with exactly the records it counts;
//! - 5: the same on the rest gzip'd with a sync flush and cut (first two bytes: the cut, a
//!   multiple of 3 for the finished stream): the records are a prefix of the text, and a
//!   complete document is the whole text;
//! - 6: generated records written as the trail writes them (sync flushes between records), cut
//!   anywhere: exactly the records that were complete before the cut come back, and at least
//!   every record flushed before it;
//! - 7: `gunzip` is strict: it gives back what was gzip'd, and refuses a cut or extended stream.
//!
//! Seeds (`seeds/audit_digest/`) hold digests of a file-sink run, the key fixtures of
//! `tests/fixtures/audit/` and partials.
#![no_main]

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate::audit::digest::{DigestFile, DigestKey, KeyKind, PublicKey};
use tollgate::audit::trail::{fuzz_rebuild, gunzip, parse_iso8601};

const RECORDS_START: &[u8] = b"{\"Records\":[";
const RECORDS_END: &[u8] = b"]}\n";

fn check_digest_json(json: &[u8]) {
    let Ok(file) = serde_json::from_slice::<DigestFile>(json) else {
        return;
    };
    let again = serde_json::to_vec(&file).expect("a digest serializes");
    let reparsed: DigestFile = serde_json::from_slice(&again).expect("a written digest parses");
    assert_eq!(reparsed, file);
    let signed = file.string_to_sign("00");
    assert!(signed.starts_with(&file.digest_end_time));
    let _ = parse_iso8601(&file.digest_start_time);
    let _ = parse_iso8601(&file.digest_end_time);
}

fn check_public_key(key: &PublicKey) {
    let fp = key.fingerprint();
    assert!(
        fp.len() == 32 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fp}"
    );
    let pem = key.to_spki_pem();
    assert_eq!(PublicKey::parse(pem.as_bytes()).as_ref(), Ok(key), "{pem}");
    match key.kind() {
        KeyKind::Ed25519 => assert_eq!(key.bytes().len(), 32),
        KeyKind::Rsa => assert_eq!(PublicKey::from_der(key.bytes()).as_ref(), Ok(key)),
    }
}

fn check_private_key(key: &DigestKey) {
    let public = key.public_key();
    check_public_key(&public);
    assert_eq!(key.algorithm(), public.algorithm());
    assert_eq!(key.fingerprint(), public.fingerprint());
    let sig = key.sign(b"digest").expect("a loaded key signs");
    assert!(public.verify(b"digest", &sig));
    assert!(!public.verify(b"digesT", &sig));
}

/// Whatever the decoder returns is a closed `{"Records":[…]}` of `records` objects.
fn check_rebuilt(content: &[u8], records: usize) {
    assert!(records >= 1);
    assert!(content.starts_with(RECORDS_START));
    assert!(content.ends_with(RECORDS_END));
    let doc: Value = serde_json::from_slice(content).unwrap_or_else(|e| {
        panic!(
            "the recovered document is not JSON ({e}): {:?}",
            String::from_utf8_lossy(content)
        )
    });
    let members = doc.as_object().expect("an object");
    assert_eq!(members.len(), 1);
    let list = members
        .get("Records")
        .and_then(Value::as_array)
        .expect("a Records array");
    assert_eq!(list.len(), records);
    assert!(list.iter().all(Value::is_object));
}

/// `text` gzip'd with a sync flush (decodes without the trailer), and the finished stream.
fn gzip_flushed(text: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(text).expect("in memory");
    gz.flush().expect("in memory");
    let flushed = gz.get_ref().clone();
    (flushed, gz.finish().expect("in memory"))
}

fn rebuilt_from_text(cut: u16, text: &[u8]) {
    let (flushed, finished) = gzip_flushed(text);
    let whole = usize::from(cut) % 3 == 0;
    let partial = if whole {
        &finished[..]
    } else {
        &flushed[..usize::from(cut) % (flushed.len() + 1)]
    };
    let Some((content, records, complete)) = fuzz_rebuild(partial) else {
        return;
    };
    check_rebuilt(&content, records);
    let kept = &content[..content.len() - RECORDS_END.len()];
    assert!(text.starts_with(kept), "the records are not the text's");
    if complete {
        assert_eq!(text, &content[..]);
    }
}

/// A JSON value of depth at most `depth`.
fn json_value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    Ok(match u.int_in_range(0..=if depth == 0 { 3 } else { 5 })? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::String(u.arbitrary()?),
        4 => Value::Array(
            (0..u.int_in_range(0..=3)?)
                .map(|_| json_value(u, depth - 1))
                .collect::<Result<_>>()?,
        ),
        _ => Value::Object(
            (0..u.int_in_range(0..=3)?)
                .map(|_| Ok((u.arbitrary::<String>()?, json_value(u, depth - 1)?)))
                .collect::<Result<_>>()?,
        ),
    })
}

fn generated(u: &mut Unstructured<'_>) -> Result<()> {
    let n = u.int_in_range(1..=8)?;
    let mut records = Vec::new();
    for i in 0..n {
        let mut record = serde_json::Map::new();
        record.insert("eventVersion".into(), "1.11".into());
        record.insert(
            "eventTime".into(),
            tollgate::time::iso8601(u.int_in_range(0..=4_102_444_800)?).into(),
        );
        record.insert("eventID".into(), format!("e{i}").into());
        record.insert("requestParameters".into(), json_value(u, 3)?);
        records.push(serde_json::to_vec(&record).expect("serializes"));
    }
    // Written as `LogObject` writes: the start, then records with sync flushes between some.
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(RECORDS_START).expect("in memory");
    // Compressed length after which record `i` decodes (`None`: not flushed on its own).
    let mut flushed_at: Vec<Option<usize>> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            gz.write_all(b",").expect("in memory");
        }
        gz.write_all(r).expect("in memory");
        if u.arbitrary()? {
            gz.flush().expect("in memory");
            flushed_at.push(Some(gz.get_ref().len()));
        } else {
            flushed_at.push(None);
        }
    }
    let sealed = u.arbitrary()?;
    let bytes = if sealed {
        gz.write_all(RECORDS_END).expect("in memory");
        gz.finish().expect("in memory")
    } else {
        gz.flush().expect("in memory");
        gz.get_ref().clone()
    };
    let cut = u.int_in_range(0..=bytes.len())?;
    // Every record up to the last one flushed before the cut decodes.
    let at_least = flushed_at
        .iter()
        .rposition(|f| f.is_some_and(|at| at <= cut))
        .map_or(0, |i| i + 1);
    let at_least = if cut == bytes.len() { n } else { at_least };
    let expected = |k: usize| {
        let mut doc = RECORDS_START.to_vec();
        for (i, r) in records.iter().take(k).enumerate() {
            if i > 0 {
                doc.push(b',');
            }
            doc.extend_from_slice(r);
        }
        doc.extend_from_slice(RECORDS_END);
        doc
    };
    match fuzz_rebuild(&bytes[..cut]) {
        None => assert_eq!(at_least, 0, "{at_least} complete records were dropped"),
        Some((content, k, complete)) => {
            check_rebuilt(&content, k);
            assert!(
                k >= at_least && k <= n,
                "{k} records of {n}, {at_least} flushed"
            );
            assert_eq!(content, expected(k), "not the first {k} records");
            if sealed && cut == bytes.len() {
                assert!(complete, "a whole object is complete");
            }
            if complete {
                assert!(sealed && k == n, "an open or cut object is complete");
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 8 {
        0 => check_digest_json(rest),
        1 => {
            if let Ok(json) = gunzip(rest) {
                check_digest_json(&json);
            }
        }
        2 => {
            if let Ok(key) = PublicKey::parse(rest) {
                check_public_key(&key);
                let _ = key.verify(b"digest", rest);
            }
        }
        3 => {
            if let Ok(key) = DigestKey::from_pkcs8_pem(&String::from_utf8_lossy(rest)) {
                check_private_key(&key);
            }
            if let Ok(key) = DigestKey::from_pkcs8_der(rest) {
                check_private_key(&key);
            }
        }
        4 => {
            if let Some((content, records, _)) = fuzz_rebuild(rest) {
                check_rebuilt(&content, records);
            }
        }
        5 => {
            if let [hi, lo, text @ ..] = rest {
                rebuilt_from_text(u16::from_be_bytes([*hi, *lo]), text);
            }
        }
        6 => {
            let _ = generated(&mut Unstructured::new(rest));
        }
        _ => {
            let (_, gz) = gzip_flushed(rest);
            assert_eq!(gunzip(&gz).as_deref(), Ok(rest));
            let cut = rest.first().map_or(0, |&b| usize::from(b)) % gz.len();
            assert!(gunzip(&gz[..cut]).is_err(), "a stream cut at {cut} decodes");
            let mut longer = gz.clone();
            longer.push(rest.last().copied().unwrap_or(0));
            assert!(
                gunzip(&longer).is_err(),
                "a stream with more after it decodes"
            );
        }
    }
});
