//! `tollgate audit verify DIR`: checks a directory written by the file sink (or a copy of an
//! S3 bucket, e.g. from `aws s3 sync`) against its digest files.
//!
//! What it checks:
//!
//! - every digest decodes and its signature verifies, with the public key given
//!   (`--public-key`: PEM SubjectPublicKeyInfo, PEM PKCS #1 RSA, or either in DER) or else with
//!   the key the writer exported into the directory whose fingerprint the digest names (the
//!   report notes that the key came from the directory: that shows the files agree with each
//!   other, not that they agree with a key you keep elsewhere);
//! - every log file a digest lists exists (else "deleted") and the SHA-256 of its uncompressed
//!   content is the listed one (else "altered"; so is a file that does not decode);
//! - each digest's `previousDigest*` fields match the previous digest of the same account,
//!   region and trail (a removed digest: "digest missing: … refers to a previous digest that
//!   does not exist"), and the digests are in time order ("out of order");
//! - every log file under `CloudTrail/` is listed by some digest (else "not covered by any
//!   digest", e.g. a file added later, or one a running writer has not listed yet).
//!
//! The directory is the bucket's root: keys are paths relative to it. A digest that names its
//! own key with more in front (the directory is a copy of a sub-folder) is resolved against it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use super::digest::{sha256_hex, DigestFile, PublicKey};
use super::file::FileStore;
use super::trail::{gunzip, parse_digest_key, parse_iso8601, parse_log_key, DigestName, Store};

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// The content is not what the digest (or the next digest) recorded, or does not decode.
    Altered,
    /// A listed log file is gone.
    Deleted,
    /// A digest that a later digest names as its previous one is gone.
    DigestMissing,
    /// A digest's signature is missing, does not verify, or no key can check it.
    Signature,
    /// The chain's order or times do not hold.
    OutOfOrder,
    /// A digest starts a new chain although earlier digests of its trail exist.
    ChainRestart,
    /// A digest is not where it says it is.
    Moved,
    /// A log file no digest lists.
    NotCovered,
    /// Something could not be read.
    Unreadable,
}

/// One problem with one file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The file, relative to the directory (`/`-separated).
    pub path: String,
    /// The kind of problem.
    pub problem: Problem,
    /// What is wrong, starting with the kind ("altered: …").
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.detail)
    }
}

/// The result of [`verify_dir`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Everything wrong, by path.
    pub findings: Vec<Finding>,
    /// Digest files read.
    pub digests_checked: usize,
    /// Log files whose hash was checked.
    pub logs_checked: usize,
    /// Remarks that are not findings (where a public key came from).
    pub notes: Vec<String>,
}

impl Report {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// One line: what was checked and how many findings.
    pub fn summary(&self) -> String {
        let findings = match self.findings.len() {
            0 => "no findings".to_owned(),
            1 => "1 finding".to_owned(),
            n => format!("{n} findings"),
        };
        format!(
            "{} digest files and {} log files checked: {findings}",
            self.digests_checked, self.logs_checked
        )
    }

    fn add(&mut self, path: &str, problem: Problem, detail: String) {
        self.findings.push(Finding {
            path: path.to_owned(),
            problem,
            detail,
        });
    }
}

/// A digest as read from the directory.
struct Loaded {
    key: String,
    name: DigestName,
    file: Option<DigestFile>,
    /// Hex SHA-256 of the uncompressed content.
    sha256: Option<String>,
    /// From the `.sig` side file.
    signature: Option<String>,
    /// What is in front of the directory's keys in the digest's own key (`""` normally).
    outer: String,
}

impl Loaded {
    /// A key named inside the digest, as a key in the directory.
    fn local<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(self.outer.as_str()).unwrap_or(key)
    }
}

/// Checks the log files and digests under `dir`; see the module documentation.
pub fn verify_dir(dir: &Path, public_key: Option<&Path>) -> Report {
    let mut report = Report::default();
    let mut store = FileStore::new(dir);
    if !dir.is_dir() {
        report.add(
            &dir.display().to_string(),
            Problem::Unreadable,
            "unreadable: not a directory".to_owned(),
        );
        return report;
    }
    let given = match public_key {
        None => None,
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| PublicKey::parse(&b).map_err(|e| e.to_string()))
        {
            Ok(k) => {
                report.notes.push(format!(
                    "public key {} ({}) from `{}`",
                    k.fingerprint(),
                    k.algorithm(),
                    path.display()
                ));
                Some(k)
            }
            Err(e) => {
                report.add(
                    &path.display().to_string(),
                    Problem::Unreadable,
                    format!("unreadable: not a usable public key: {e}"),
                );
                return report;
            }
        },
    };
    let keys = match store.list("") {
        Ok(k) => k,
        Err(e) => {
            report.add(&dir.display().to_string(), Problem::Unreadable, e.message);
            return report;
        }
    };

    let mut dir_keys: HashMap<String, (String, PublicKey)> = HashMap::new();
    let mut digest_keys = Vec::new();
    let mut log_keys = Vec::new();
    for key in keys {
        if let Some(fp) = public_key_file(&key) {
            let parsed = store
                .get(&key)
                .ok()
                .flatten()
                .and_then(|o| PublicKey::parse(&o.bytes).ok());
            match parsed {
                Some(k) if k.fingerprint() == fp => {
                    dir_keys.insert(fp.to_owned(), (key, k));
                }
                _ => report.add(
                    &key,
                    Problem::Altered,
                    "altered: not the public key its name says".to_owned(),
                ),
            }
        } else if let Some(name) = parse_digest_key(&key) {
            digest_keys.push((key, name));
        } else if parse_log_key(&key).is_some() {
            log_keys.push(key);
        }
    }

    let mut used_dir_keys = HashSet::new();
    let mut loaded = Vec::new();
    for (key, name) in digest_keys {
        let d = load_digest(&mut store, &mut report, key, name);
        if let (Some(file), Some(sha)) = (&d.file, &d.sha256) {
            check_signature(
                &mut report,
                &d,
                file,
                sha,
                given.as_ref(),
                &dir_keys,
                &mut used_dir_keys,
            );
        }
        loaded.push(d);
    }
    for fp in used_dir_keys {
        if let Some((path, _)) = dir_keys.get(&fp) {
            report.notes.push(format!(
                "public key {fp} taken from the directory (`{path}`): this shows the files agree \
                 with each other; pass --public-key with a copy kept elsewhere to rule out a \
                 replaced key"
            ));
        }
    }

    let listed = check_logs(&mut store, &mut report, &loaded);
    check_chains(&mut report, &loaded);

    // Newest digest end per (prefix, account, region), for the hint on uncovered files.
    let mut last_end: HashMap<(String, String, String), i64> = HashMap::new();
    for d in &loaded {
        if let Some(end) = d
            .file
            .as_ref()
            .and_then(|f| parse_iso8601(&f.digest_end_time))
        {
            let k = (
                d.name.prefix.clone(),
                d.name.account.clone(),
                d.name.region.clone(),
            );
            let e = last_end.entry(k).or_insert(end);
            *e = (*e).max(end);
        }
    }
    for key in &log_keys {
        if listed.contains(key.as_str()) {
            continue;
        }
        let Some(name) = parse_log_key(key) else {
            continue;
        };
        let k = (
            name.prefix.to_owned(),
            name.account.to_owned(),
            name.region.to_owned(),
        );
        let hint = match last_end.get(&k) {
            Some(&end) if name.time + 60 > end => {
                " (opened after the last digest of its account and region ended: a writer that \
                 is still running lists it in its next digest)"
            }
            Some(_) => "",
            None => " (no digest for its account and region)",
        };
        report.add(
            key,
            Problem::NotCovered,
            format!("not covered by any digest{hint}"),
        );
    }
    report.findings.sort();
    report.notes.sort();
    report
}

/// `Some(fingerprint)` for `…/AWSLogs/<account>/CloudTrail-Digest/public-keys/<fp>.pem`.
fn public_key_file(key: &str) -> Option<&str> {
    let (dir, file) = key.rsplit_once('/')?;
    let fp = file.strip_suffix(".pem")?;
    let dir = dir.strip_suffix("/CloudTrail-Digest/public-keys")?;
    let (rest, _account) = dir.rsplit_once('/')?;
    (rest == "AWSLogs" || rest.ends_with("/AWSLogs")).then_some(fp)
}

fn load_digest(
    store: &mut FileStore,
    report: &mut Report,
    key: String,
    name: DigestName,
) -> Loaded {
    let mut d = Loaded {
        key,
        name,
        file: None,
        sha256: None,
        signature: None,
        outer: String::new(),
    };
    let object = match store.get(&d.key) {
        Ok(Some(o)) => o,
        Ok(None) => return d,
        Err(e) => {
            report.add(
                &d.key,
                Problem::Unreadable,
                format!("unreadable: {}", e.message),
            );
            return d;
        }
    };
    report.digests_checked += 1;
    d.signature = object
        .meta(super::digest::SIGNATURE_META)
        .map(str::to_owned);
    let content = match gunzip(&object.bytes) {
        Ok(c) => c,
        Err(e) => {
            report.add(&d.key, Problem::Altered, format!("altered: {e}"));
            return d;
        }
    };
    d.sha256 = Some(sha256_hex(&content));
    match serde_json::from_slice::<DigestFile>(&content) {
        Ok(file) => {
            match file.digest_s3_object.strip_suffix(d.key.as_str()) {
                Some(outer) if outer.is_empty() || outer.ends_with('/') => {
                    d.outer = outer.to_owned();
                }
                _ => report.add(
                    &d.key,
                    Problem::Moved,
                    format!("moved: its digestS3Object is `{}`", file.digest_s3_object),
                ),
            }
            d.file = Some(file);
        }
        Err(e) => report.add(
            &d.key,
            Problem::Altered,
            format!("altered: not a digest file ({e})"),
        ),
    }
    d
}

fn check_signature(
    report: &mut Report,
    d: &Loaded,
    file: &DigestFile,
    sha256: &str,
    given: Option<&PublicKey>,
    dir_keys: &HashMap<String, (String, PublicKey)>,
    used_dir_keys: &mut HashSet<String>,
) {
    let fp = &file.digest_public_key_fingerprint;
    let key = match given {
        Some(k) if &k.fingerprint() != fp => {
            report.add(
                &d.key,
                Problem::Signature,
                format!(
                    "signature: signed with key {fp}, not with the given public key {}",
                    k.fingerprint()
                ),
            );
            return;
        }
        Some(k) => k,
        None => match dir_keys.get(fp) {
            Some((_, k)) => {
                used_dir_keys.insert(fp.clone());
                k
            }
            None => {
                report.add(
                    &d.key,
                    Problem::Signature,
                    format!(
                        "signature: no public key with fingerprint {fp} in the directory \
                         (pass --public-key)"
                    ),
                );
                return;
            }
        },
    };
    if file.digest_signature_algorithm != key.algorithm() {
        report.add(
            &d.key,
            Problem::Signature,
            format!(
                "signature: digestSignatureAlgorithm is `{}` but key {fp} is {}",
                file.digest_signature_algorithm,
                key.algorithm()
            ),
        );
        return;
    }
    let Some(signature) = &d.signature else {
        report.add(
            &d.key,
            Problem::Signature,
            "signature: missing (no `.sig` file next to it)".to_owned(),
        );
        return;
    };
    let valid = hex::decode(signature)
        .is_ok_and(|sig| key.verify(file.string_to_sign(sha256).as_bytes(), &sig));
    if !valid {
        report.add(
            &d.key,
            Problem::Altered,
            "altered: the signature does not verify (the digest or its `.sig` was changed)"
                .to_owned(),
        );
    }
}

/// Checks every listed log file; returns the keys listed.
fn check_logs<'a>(
    store: &mut FileStore,
    report: &mut Report,
    loaded: &'a [Loaded],
) -> HashSet<&'a str> {
    let mut listed = HashSet::new();
    // Hash of each log file checked (None: missing or undecodable).
    let mut hashes: HashMap<&str, Option<String>> = HashMap::new();
    for d in loaded {
        let Some(file) = &d.file else {
            continue;
        };
        for entry in &file.log_files {
            let key = d.local(&entry.s3_object);
            listed.insert(key);
            let hash = match hashes.get(key) {
                Some(h) => h.clone(),
                None => {
                    let h = hash_log(store, report, key, &d.key);
                    hashes.insert(key, h.clone());
                    h
                }
            };
            if let Some(h) = hash {
                if h != entry.hash_value {
                    report.add(
                        key,
                        Problem::Altered,
                        format!(
                            "altered: the SHA-256 of its uncompressed content is {h}; digest \
                             `{}` lists {}",
                            d.key, entry.hash_value
                        ),
                    );
                }
            }
        }
    }
    listed
}

/// The hash of a listed log file, with a finding when it is gone or does not decode.
fn hash_log(store: &mut FileStore, report: &mut Report, key: &str, digest: &str) -> Option<String> {
    let object = match store.get(key) {
        Ok(Some(o)) => o,
        Ok(None) => {
            report.add(
                key,
                Problem::Deleted,
                format!("deleted: digest `{digest}` lists it but it does not exist"),
            );
            return None;
        }
        Err(e) => {
            report.add(
                key,
                Problem::Unreadable,
                format!("unreadable: {}", e.message),
            );
            return None;
        }
    };
    report.logs_checked += 1;
    match gunzip(&object.bytes) {
        Ok(content) => Some(sha256_hex(&content)),
        Err(e) => {
            report.add(key, Problem::Altered, format!("altered: {e}"));
            None
        }
    }
}

/// Checks the `previousDigest*` links and the time order of each trail's digests.
fn check_chains(report: &mut Report, loaded: &[Loaded]) {
    let by_key: HashMap<&str, &Loaded> = loaded.iter().map(|d| (d.key.as_str(), d)).collect();
    let mut chains: BTreeMap<(&str, &str, &str, &str, &str), Vec<&Loaded>> = BTreeMap::new();
    for d in loaded {
        let n = &d.name;
        chains
            .entry((&n.prefix, &n.account, &n.region, &n.trail, &n.home_region))
            .or_default()
            .push(d);
    }
    for chain in chains.values_mut() {
        chain.sort_by(|a, b| (a.name.time, &a.key).cmp(&(b.name.time, &b.key)));
        let mut before: Option<&Loaded> = None;
        for &d in chain.iter() {
            if let Some(file) = &d.file {
                check_link(report, d, file, before, &by_key);
            }
            before = Some(d);
        }
    }
}

fn check_link(
    report: &mut Report,
    d: &Loaded,
    file: &DigestFile,
    before: Option<&Loaded>,
    by_key: &HashMap<&str, &Loaded>,
) {
    let start = parse_iso8601(&file.digest_start_time);
    let end = parse_iso8601(&file.digest_end_time);
    match (start, end) {
        (Some(s), Some(e)) if e < s => report.add(
            &d.key,
            Problem::OutOfOrder,
            format!(
                "out of order: it ends ({}) before it starts ({})",
                file.digest_end_time, file.digest_start_time
            ),
        ),
        (Some(_), Some(_)) => {}
        _ => report.add(
            &d.key,
            Problem::Altered,
            "altered: digestStartTime or digestEndTime is not a time".to_owned(),
        ),
    }
    let Some(previous) = &file.previous_digest_s3_object else {
        if let Some(b) = before {
            report.add(
                &d.key,
                Problem::ChainRestart,
                format!(
                    "chain restarts: its previousDigest fields are null although digest `{}` \
                     comes before it",
                    b.key
                ),
            );
        }
        return;
    };
    let previous = d.local(previous);
    let Some(&p) = by_key.get(previous) else {
        report.add(
            previous,
            Problem::DigestMissing,
            format!(
                "digest missing: `{}` refers to a previous digest that does not exist",
                d.key
            ),
        );
        return;
    };
    if let Some(b) = before {
        if b.key != p.key {
            report.add(
                &d.key,
                Problem::OutOfOrder,
                format!(
                    "out of order: it refers to `{}` as its previous digest, but `{}` comes \
                     between them",
                    p.key, b.key
                ),
            );
        }
    } else {
        report.add(
            &d.key,
            Problem::OutOfOrder,
            format!(
                "out of order: its previous digest `{}` is not older than it",
                p.key
            ),
        );
    }
    if let Some(sha) = &p.sha256 {
        if file.previous_digest_hash_value.as_deref() != Some(sha.as_str()) {
            report.add(
                &p.key,
                Problem::Altered,
                format!(
                    "altered: its SHA-256 is {sha}; the next digest `{}` recorded {}",
                    d.key,
                    file.previous_digest_hash_value.as_deref().unwrap_or("null")
                ),
            );
        }
    }
    if let Some(sig) = &p.signature {
        if file.previous_digest_signature.as_deref() != Some(sig.as_str()) {
            report.add(
                &p.key,
                Problem::Signature,
                format!(
                    "signature: its `.sig` differs from the signature the next digest `{}` \
                     recorded",
                    d.key
                ),
            );
        }
    }
    if let Some(pf) = &p.file {
        if file.previous_digest_s3_bucket.as_deref() != Some(pf.digest_s3_bucket.as_str()) {
            report.add(
                &d.key,
                Problem::Altered,
                format!(
                    "altered: previousDigestS3Bucket is {:?}, the previous digest says `{}`",
                    file.previous_digest_s3_bucket, pf.digest_s3_bucket
                ),
            );
        }
        if let (Some(s), Some(pe)) = (start, parse_iso8601(&pf.digest_end_time)) {
            if s < pe {
                report.add(
                    &d.key,
                    Problem::OutOfOrder,
                    format!(
                        "out of order: it starts ({}) before its previous digest `{}` ends ({})",
                        file.digest_start_time, p.key, pf.digest_end_time
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::audit::file::file_sink;
    use crate::audit::trail::testing::{rec, T0};
    use crate::audit::trail::{gzip, DigestConfig, DigestKey, TrailConfig};
    use crate::audit::Sink;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/audit")
            .join(name)
    }

    fn key(name: &str) -> Arc<DigestKey> {
        Arc::new(DigestKey::from_pkcs8_pem(&fs::read_to_string(fixture(name)).unwrap()).unwrap())
    }

    /// Three hourly digests: hour 1 with two log files, hour 2 with one, and the closing one
    /// with one.
    fn three_intervals(dir: &Path, key_name: &str) {
        let mut sink = file_sink(
            dir,
            TrailConfig {
                digest: Some(DigestConfig::new(key(key_name), "main", "us-east-1")),
                ..TrailConfig::default()
            },
        );
        let mut n = 0;
        let mut at = |sink: &mut dyn Sink, t: i64| {
            n += 1;
            sink.write(&[rec("123456789012", "us-east-1", t, n)], t)
                .unwrap();
            sink.tick(t).unwrap();
        };
        at(&mut sink, T0 + 10);
        at(&mut sink, T0 + 400);
        sink.tick(T0 + 3600).unwrap();
        at(&mut sink, T0 + 3700);
        sink.tick(T0 + 7200).unwrap();
        at(&mut sink, T0 + 7300);
        sink.close(T0 + 7310).unwrap();
    }

    fn digests(dir: &Path) -> Vec<String> {
        let mut d: Vec<String> = FileStore::new(dir)
            .list("")
            .unwrap()
            .into_iter()
            .filter(|k| parse_digest_key(k).is_some())
            .collect();
        d.sort_by_key(|k| parse_digest_key(k).unwrap().time);
        d
    }

    fn logs(dir: &Path) -> Vec<String> {
        FileStore::new(dir)
            .list("")
            .unwrap()
            .into_iter()
            .filter(|k| parse_log_key(k).is_some())
            .collect()
    }

    fn problems(r: &Report) -> Vec<(String, Problem)> {
        r.findings
            .iter()
            .map(|f| (f.path.clone(), f.problem))
            .collect()
    }

    #[test]
    fn a_chain_of_three_intervals_verifies_with_ed25519_and_rsa() {
        for (private, publics) in [
            ("ed25519.pem", vec!["ed25519.pub.pem"]),
            (
                "rsa2048.pem",
                vec![
                    "rsa2048.pub.pem",
                    "rsa2048.pkcs1.pub.pem",
                    "rsa2048.pkcs1.pub.der",
                ],
            ),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            three_intervals(tmp.path(), private);
            let ds = digests(tmp.path());
            assert_eq!(ds.len(), 3, "{private}");
            let report = verify_dir(tmp.path(), None);
            assert!(report.is_clean(), "{private}: {:?}", report.findings);
            assert_eq!((report.digests_checked, report.logs_checked), (3, 4));
            assert!(report
                .notes
                .iter()
                .any(|n| n.contains("taken from the directory")));
            assert_eq!(
                report.summary(),
                "3 digest files and 4 log files checked: no findings"
            );
            for public in publics {
                let report = verify_dir(tmp.path(), Some(&fixture(public)));
                assert!(report.is_clean(), "{public}: {:?}", report.findings);
                assert!(!report
                    .notes
                    .iter()
                    .any(|n| n.contains("taken from the directory")));
            }
            // Digests of an hour with no log file still come, with an empty list.
            let files: Vec<DigestFile> = ds
                .iter()
                .map(|k| {
                    serde_json::from_slice(&gunzip(&fs::read(tmp.path().join(k)).unwrap()).unwrap())
                        .unwrap()
                })
                .collect();
            assert_eq!(
                files.iter().map(|f| f.log_files.len()).collect::<Vec<_>>(),
                [2, 1, 1]
            );
            assert_eq!(files[0].digest_start_time, "2025-01-15T12:00:10Z");
            assert_eq!(files[0].digest_end_time, "2025-01-15T13:00:00Z");
            assert_eq!(files[2].digest_end_time, "2025-01-15T14:01:50Z");
        }
    }

    #[test]
    fn the_given_key_must_be_the_signing_key() {
        let tmp = tempfile::tempdir().unwrap();
        three_intervals(tmp.path(), "ed25519.pem");
        let report = verify_dir(tmp.path(), Some(&fixture("rsa2048.pub.pem")));
        assert_eq!(report.findings.len(), 3);
        assert!(report
            .findings
            .iter()
            .all(|f| f.problem == Problem::Signature && f.detail.contains("not with the given")));
        let report = verify_dir(tmp.path(), Some(&fixture("ed25519.pem")));
        assert_eq!(report.findings[0].problem, Problem::Unreadable);
    }

    /// A fresh copy of the chain, changed by `tamper`, then verified.
    fn tampered(tamper: impl FnOnce(&Path, &[String], &[String])) -> Report {
        let tmp = tempfile::tempdir().unwrap();
        three_intervals(tmp.path(), "ed25519.pem");
        let (ds, ls) = (digests(tmp.path()), logs(tmp.path()));
        tamper(tmp.path(), &ds, &ls);
        verify_dir(tmp.path(), Some(&fixture("ed25519.pub.pem")))
    }

    fn listed_by(dir: &Path, digest: &str) -> Vec<String> {
        let f: DigestFile =
            serde_json::from_slice(&gunzip(&fs::read(dir.join(digest)).unwrap()).unwrap()).unwrap();
        f.log_files.into_iter().map(|l| l.s3_object).collect()
    }

    #[test]
    fn detects_an_altered_log_file() {
        let mut path = String::new();
        let r = tampered(|dir, _, ls| {
            path = ls[0].clone();
            let p = dir.join(&ls[0]);
            let mut content = gunzip(&fs::read(&p).unwrap()).unwrap();
            let at = content.iter().position(|&b| b == b'e').unwrap();
            content[at] = b'E';
            fs::write(&p, gzip(&content).unwrap()).unwrap();
        });
        assert_eq!(problems(&r), [(path.clone(), Problem::Altered)]);
        assert!(
            r.findings[0].detail.starts_with("altered: the SHA-256"),
            "{}",
            r.findings[0]
        );

        let r = tampered(|dir, _, ls| {
            path = ls[1].clone();
            fs::write(dir.join(&ls[1]), b"not gzip").unwrap();
        });
        assert_eq!(problems(&r), [(path.clone(), Problem::Altered)]);
        assert!(
            r.findings[0].detail.contains("not a valid gzip"),
            "{}",
            r.findings[0]
        );
    }

    #[test]
    fn detects_a_deleted_log_file() {
        let mut path = String::new();
        let r = tampered(|dir, _, ls| {
            path = ls[2].clone();
            fs::remove_file(dir.join(&ls[2])).unwrap();
        });
        assert_eq!(problems(&r), [(path, Problem::Deleted)]);
        assert!(r.findings[0].to_string().contains(": deleted: digest `"));
    }

    #[test]
    fn detects_a_removed_digest() {
        let mut removed = String::new();
        let mut next = String::new();
        let mut orphans = Vec::new();
        let r = tampered(|dir, ds, _| {
            removed = ds[1].clone();
            next = ds[2].clone();
            orphans = listed_by(dir, &ds[1]);
            fs::remove_file(dir.join(&ds[1])).unwrap();
            fs::remove_file(dir.join(format!("{}.sig", ds[1]))).unwrap();
        });
        let mut expected = vec![(removed.clone(), Problem::DigestMissing)];
        expected.extend(orphans.iter().map(|o| (o.clone(), Problem::NotCovered)));
        let mut got = problems(&r);
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
        let missing = r
            .findings
            .iter()
            .find(|f| f.problem == Problem::DigestMissing)
            .unwrap();
        assert_eq!(
            missing.to_string(),
            format!("{removed}: digest missing: `{next}` refers to a previous digest that does not exist")
        );
    }

    #[test]
    fn detects_an_altered_digest_or_signature() {
        let mut path = String::new();
        let r = tampered(|dir, ds, _| {
            path = ds[0].clone();
            let p = dir.join(&ds[0]);
            let text = String::from_utf8(gunzip(&fs::read(&p).unwrap()).unwrap()).unwrap();
            let text = text.replacen("\"logFiles\":[{", "\"logFiles\":[{\"x\":1,", 1);
            fs::write(&p, gzip(text.as_bytes()).unwrap()).unwrap();
        });
        // Its signature fails, and the next digest recorded another hash.
        assert_eq!(
            problems(&r),
            [
                (path.clone(), Problem::Altered),
                (path.clone(), Problem::Altered)
            ]
        );

        let r = tampered(|dir, ds, _| {
            path = ds[1].clone();
            let p = dir.join(format!("{}.sig", ds[1]));
            let sig = fs::read_to_string(&p).unwrap();
            let flipped = if sig.starts_with('0') { "1" } else { "0" };
            fs::write(&p, format!("{flipped}{}", &sig[1..])).unwrap();
        });
        assert_eq!(
            problems(&r),
            [
                (path.clone(), Problem::Altered),
                (path.clone(), Problem::Signature)
            ]
        );

        let mut orphan = String::new();
        let r = tampered(|dir, ds, _| {
            path = ds[2].clone();
            orphan = listed_by(dir, &ds[2]).remove(0);
            fs::write(dir.join(&ds[2]), b"\x1f\x8b garbage").unwrap();
        });
        // What only the undecodable digest listed is covered by none.
        assert_eq!(
            problems(&r),
            [
                (path.clone(), Problem::Altered),
                (orphan, Problem::NotCovered)
            ]
        );
    }

    /// Rewrites a digest as edited and signs it again with the writer's key.
    fn resign(dir: &Path, digest: &str, edit: impl FnOnce(&mut DigestFile)) {
        let p = dir.join(digest);
        let mut file: DigestFile =
            serde_json::from_slice(&gunzip(&fs::read(&p).unwrap()).unwrap()).unwrap();
        edit(&mut file);
        let json = serde_json::to_vec(&file).unwrap();
        let sig = key("ed25519.pem")
            .sign(file.string_to_sign(&sha256_hex(&json)).as_bytes())
            .unwrap();
        fs::write(&p, gzip(&json).unwrap()).unwrap();
        fs::write(
            dir.join(format!("{digest}.sig")),
            format!("{}\n", hex::encode(sig)),
        )
        .unwrap();
    }

    #[test]
    fn detects_digests_out_of_order() {
        // Validly signed, but starting before its previous digest ended.
        let mut path = String::new();
        let r = tampered(|dir, ds, _| {
            path = ds[2].clone();
            resign(dir, &ds[2], |f| {
                f.digest_start_time = "2025-01-15T12:30:00Z".into()
            });
        });
        assert_eq!(problems(&r), [(path.clone(), Problem::OutOfOrder)]);
        assert!(
            r.findings[0].detail.contains("before its previous digest"),
            "{}",
            r.findings[0]
        );

        // Validly signed, but linking past the digest before it (a fork).
        let r = tampered(|dir, ds, _| {
            path = ds[2].clone();
            let first = ds[0].clone();
            let content = gunzip(&fs::read(dir.join(&first)).unwrap()).unwrap();
            let sig = fs::read_to_string(dir.join(format!("{first}.sig"))).unwrap();
            resign(dir, &ds[2], |f| {
                f.previous_digest_s3_object = Some(first.clone());
                f.previous_digest_hash_value = Some(sha256_hex(&content));
                f.previous_digest_signature = Some(sig.trim().to_owned());
            });
        });
        assert_eq!(problems(&r), [(path.clone(), Problem::OutOfOrder)]);
        assert!(
            r.findings[0].detail.contains("comes between them"),
            "{}",
            r.findings[0]
        );

        // A chain that starts over in the middle.
        let r = tampered(|dir, ds, _| {
            path = ds[1].clone();
            resign(dir, &ds[1], |f| {
                f.previous_digest_s3_bucket = None;
                f.previous_digest_s3_object = None;
                f.previous_digest_hash_value = None;
                f.previous_digest_hash_algorithm = None;
                f.previous_digest_signature = None;
            });
        });
        // The next digest recorded the old content and signature of the rewritten one.
        let mut got = problems(&r);
        got.sort();
        assert_eq!(
            got,
            [
                (path.clone(), Problem::Altered),
                (path.clone(), Problem::Signature),
                (path.clone(), Problem::ChainRestart),
            ]
        );
    }

    #[test]
    fn detects_a_log_file_no_digest_lists() {
        let mut added = String::new();
        let r = tampered(|dir, _, ls| {
            added = ls[0].replace(
                &ls[0][ls[0].len() - 24..ls[0].len() - 8],
                "AAAAAAAAAAAAAAAA",
            );
            fs::copy(dir.join(&ls[0]), dir.join(&added)).unwrap();
        });
        assert_eq!(problems(&r), [(added, Problem::NotCovered)]);
        assert_eq!(r.findings[0].detail, "not covered by any digest");
    }

    #[test]
    fn a_restart_continues_the_chain() {
        let tmp = tempfile::tempdir().unwrap();
        three_intervals(tmp.path(), "rsa2048.pem");
        let mut sink = file_sink(
            tmp.path(),
            TrailConfig {
                digest: Some(DigestConfig::new(key("rsa2048.pem"), "main", "us-east-1")),
                ..TrailConfig::default()
            },
        );
        sink.write(&[rec("123456789012", "us-east-1", T0 + 9000, 9)], T0 + 9000)
            .unwrap();
        sink.close(T0 + 9001).unwrap();
        let ds = digests(tmp.path());
        assert_eq!(ds.len(), 4);
        let last: DigestFile =
            serde_json::from_slice(&gunzip(&fs::read(tmp.path().join(&ds[3])).unwrap()).unwrap())
                .unwrap();
        assert_eq!(
            last.previous_digest_s3_object.as_deref(),
            Some(ds[2].as_str())
        );
        assert_eq!(last.digest_start_time, "2025-01-15T14:01:50Z");
        let report = verify_dir(tmp.path(), Some(&fixture("rsa2048.pkcs1.pub.der")));
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!((report.digests_checked, report.logs_checked), (4, 5));
    }
}
