//! Digest files: the signed, chained index of delivered log files (CloudTrail log file
//! integrity validation).
//!
//! A digest lists the log files delivered in its window with the SHA-256 of their
//! **uncompressed** content, and links to the previous digest of the same account and region by
//! its key, the SHA-256 of its uncompressed content and its signature. The signature itself is
//! not inside the file: S3 keeps it as object metadata (`x-amz-meta-signature`), the file sink in
//! a side file `<digest>.sig` holding the hex signature on one line.
//!
//! Signed string (the AWS CLI's `Sha256RSADigestValidator` builds the same):
//!
//! ```text
//! digestEndTime "\n" digestS3Bucket "/" digestS3Object "\n" hex(sha256(uncompressed)) "\n" previousDigestSignature
//! ```
//!
//! with the literal `null` for the first digest of a chain. Keys are Ed25519 (`Ed25519`) or RSA
//! with PKCS #1 v1.5 padding and SHA-256 (`SHA256withRSA`, what CloudTrail uses; only RSA digests
//! can be checked by `aws cloudtrail validate-logs`' validator). A key's fingerprint is the hex
//! MD5 of its public key bytes: the DER `RSAPublicKey` (PKCS #1) for RSA, as CloudTrail's
//! `ListPublicKeys` returns it, the raw 32 bytes for Ed25519.

use std::fmt;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// `previousDigestHashAlgorithm` and `logFiles[].hashAlgorithm`.
pub const HASH_ALGORITHM: &str = "SHA-256";
/// The metadata name of a digest's hex signature (S3 user metadata `signature`).
pub const SIGNATURE_META: &str = "x-amz-meta-signature";
/// The metadata name of a digest's signature algorithm.
pub const SIGNATURE_ALGORITHM_META: &str = "x-amz-meta-signature-algorithm";

/// `digestSignatureAlgorithm` of RSA keys.
pub const ALGORITHM_RSA: &str = "SHA256withRSA";
/// `digestSignatureAlgorithm` of Ed25519 keys.
pub const ALGORITHM_ED25519: &str = "Ed25519";

/// A PKCS #8 v1 Ed25519 private key up to its 32-byte seed (RFC 8410).
const ED25519_PKCS8_V1_PREFIX: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// `1.3.101.112`
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// `1.2.840.113549.1.1.1`
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// A key that cannot be used. The message describes the key's form, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// Signing failed (ring's RSA signer reports nothing more).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot sign the digest with the {0} key")]
pub struct SignError(&'static str);

/// The private key digests are signed with.
///
/// `Debug` shows the algorithm and the public key's fingerprint only.
pub enum DigestKey {
    /// Ed25519 (`digestSignatureAlgorithm: "Ed25519"`).
    Ed25519(Ed25519KeyPair),
    /// RSA, 2048 to 4096 bits, PKCS #1 v1.5 with SHA-256 (`"SHA256withRSA"`).
    Rsa(RsaKeyPair),
}

impl fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestKey")
            .field("algorithm", &self.algorithm())
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl DigestKey {
    /// Loads a private key from PEM: `PRIVATE KEY` (PKCS #8 v1 as `openssl genpkey` and
    /// `tollgate audit new-key` write it, or v2; Ed25519 or RSA) or `RSA PRIVATE KEY` (PKCS #1).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let block = pem_block(pem, &["PRIVATE KEY", "RSA PRIVATE KEY"]).ok_or_else(|| {
            KeyError(
                "not a PEM private key: expected a `-----BEGIN PRIVATE KEY-----` block \
                 (PKCS #8, Ed25519 or RSA)"
                    .to_owned(),
            )
        })?;
        let der = Zeroizing::new(block.1);
        if block.0 == "RSA PRIVATE KEY" {
            return RsaKeyPair::from_der(&der)
                .map(Self::Rsa)
                .map_err(|e| KeyError(format!("the RSA PRIVATE KEY block is not usable: {e}")))?
                .usable();
        }
        Self::from_pkcs8_der(&der)
    }

    /// Loads a DER PKCS #8 private key (Ed25519 or RSA).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Self::Ed25519(k).usable();
        }
        match RsaKeyPair::from_pkcs8(der) {
            Ok(k) => Self::Rsa(k).usable(),
            Err(e) => Err(KeyError(format!(
                "the key is neither an Ed25519 nor an RSA (2048 to 4096 bit) PKCS #8 key ({e})"
            ))),
        }
    }

    /// The key, when a signature made with it verifies with its public half. ring loads an RSA
    /// key whose CRT parameters do not agree (a damaged `dQ`) and only refuses to sign with it,
    /// which would fail the first digest instead of the configuration.
    fn usable(self) -> Result<Self, KeyError> {
        const PROBE: &[u8] = b"tollgate digest key check";
        let verified = self
            .sign(PROBE)
            .is_ok_and(|sig| self.public_key().verify(PROBE, &sig));
        if verified {
            Ok(self)
        } else {
            Err(KeyError(format!(
                "the {} key cannot sign: its parameters are inconsistent",
                self.algorithm()
            )))
        }
    }

    /// A new Ed25519 key and its PEM: PKCS #8 v1, as `openssl genpkey -algorithm ed25519`
    /// writes it (OpenSSL 3.0 does not read the v2 form that ring generates).
    pub fn generate_ed25519() -> Result<(Self, Zeroizing<String>), KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(seed.as_mut_slice())
            .map_err(|_| KeyError("cannot generate an Ed25519 key".to_owned()))?;
        let mut der = Zeroizing::new(ED25519_PKCS8_V1_PREFIX.to_vec());
        der.extend_from_slice(seed.as_slice());
        let pem = Zeroizing::new(pem_encode("PRIVATE KEY", &der));
        let key = Self::from_pkcs8_der(&der)?;
        Ok((key, pem))
    }

    /// `digestSignatureAlgorithm`: `Ed25519` or `SHA256withRSA`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => ALGORITHM_ED25519,
            Self::Rsa(_) => ALGORITHM_RSA,
        }
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Ed25519(k) => PublicKey {
                kind: KeyKind::Ed25519,
                bytes: k.public_key().as_ref().to_vec(),
            },
            Self::Rsa(k) => PublicKey {
                kind: KeyKind::Rsa,
                bytes: k.public_key().as_ref().to_vec(),
            },
        }
    }

    /// `digestPublicKeyFingerprint`: hex MD5 of the public key bytes (32 hex digits).
    pub fn fingerprint(&self) -> String {
        self.public_key().fingerprint()
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match self {
            Self::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Self::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| SignError(ALGORITHM_RSA))?;
                Ok(sig)
            }
        }
    }
}

/// The two key types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Ed25519.
    Ed25519,
    /// RSA.
    Rsa,
}

/// A public key that checks digest signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyKind,
    /// The raw 32 bytes (Ed25519) or the DER `RSAPublicKey` (RSA).
    bytes: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl PublicKey {
    /// Parses a public key: PEM `PUBLIC KEY` (SubjectPublicKeyInfo, Ed25519 or RSA) or
    /// `RSA PUBLIC KEY` (PKCS #1), or the same in DER.
    pub fn parse(data: &[u8]) -> Result<Self, KeyError> {
        if let Ok(text) = std::str::from_utf8(data) {
            if text.contains("-----BEGIN") {
                let (_, der) =
                    pem_block(text, &["PUBLIC KEY", "RSA PUBLIC KEY"]).ok_or_else(|| {
                        KeyError(
                        "no `-----BEGIN PUBLIC KEY-----` or `-----BEGIN RSA PUBLIC KEY-----` block"
                            .to_owned(),
                    )
                    })?;
                return Self::from_der(&der);
            }
        }
        Self::from_der(data)
    }

    /// Parses a DER SubjectPublicKeyInfo (Ed25519 or RSA) or PKCS #1 `RSAPublicKey`.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let bad = || {
            KeyError(
                "not a public key: expected a SubjectPublicKeyInfo (Ed25519 or RSA) or a PKCS #1 \
                 RSAPublicKey"
                    .to_owned(),
            )
        };
        let (tag, body, rest) = der_tlv(der).ok_or_else(bad)?;
        if tag != 0x30 || !rest.is_empty() {
            return Err(bad());
        }
        match body.first() {
            Some(0x02) if is_rsa_public_key(der) => Ok(Self {
                kind: KeyKind::Rsa,
                bytes: der.to_vec(),
            }),
            Some(0x30) => {
                let (_, alg, rest) = der_tlv(body).ok_or_else(bad)?;
                let (bit_tag, bits, end) = der_tlv(rest).ok_or_else(bad)?;
                let (oid_tag, oid, _) = der_tlv(alg).ok_or_else(bad)?;
                let key = match bits.split_first() {
                    Some((0, key)) if bit_tag == 0x03 && end.is_empty() && oid_tag == 0x06 => key,
                    _ => return Err(bad()),
                };
                if oid == OID_ED25519 && key.len() == 32 {
                    Ok(Self {
                        kind: KeyKind::Ed25519,
                        bytes: key.to_vec(),
                    })
                } else if oid == OID_RSA && is_rsa_public_key(key) {
                    Ok(Self {
                        kind: KeyKind::Rsa,
                        bytes: key.to_vec(),
                    })
                } else {
                    Err(KeyError(
                        "the public key is neither Ed25519 nor RSA".to_owned(),
                    ))
                }
            }
            _ => Err(bad()),
        }
    }

    /// Ed25519 or RSA.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The `digestSignatureAlgorithm` this key checks.
    pub fn algorithm(&self) -> &'static str {
        match self.kind {
            KeyKind::Ed25519 => ALGORITHM_ED25519,
            KeyKind::Rsa => ALGORITHM_RSA,
        }
    }

    /// Hex MD5 of the key bytes (DER `RSAPublicKey` for RSA, the raw 32 bytes for Ed25519).
    pub fn fingerprint(&self) -> String {
        hex::encode(Md5::digest(&self.bytes))
    }

    /// The DER `RSAPublicKey` (RSA) or the raw 32 bytes (Ed25519): what the fingerprint hashes,
    /// and, base64-encoded, what `ListPublicKeys` returns as `Value` for RSA.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `openssl pkey -pubout` writes it.
    pub fn to_spki_pem(&self) -> String {
        let (oid, params): (&[u8], &[u8]) = match self.kind {
            KeyKind::Ed25519 => (OID_ED25519, &[]),
            KeyKind::Rsa => (OID_RSA, &[0x05, 0x00]),
        };
        let mut alg = der_encode(0x06, oid);
        alg.extend_from_slice(params);
        let mut bits = vec![0u8];
        bits.extend_from_slice(&self.bytes);
        let mut spki = der_encode(0x30, &alg);
        spki.extend_from_slice(&der_encode(0x03, &bits));
        pem_encode("PUBLIC KEY", &der_encode(0x30, &spki))
    }

    /// True when `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.kind {
            KeyKind::Ed25519 => &signature::ED25519,
            KeyKind::Rsa => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(alg, &self.bytes)
            .verify(message, signature)
            .is_ok()
    }
}

/// One entry of `logFiles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFileEntry {
    /// The bucket.
    #[serde(rename = "s3Bucket")]
    pub s3_bucket: String,
    /// The object key.
    #[serde(rename = "s3Object")]
    pub s3_object: String,
    /// Hex SHA-256 of the uncompressed content.
    #[serde(rename = "hashValue")]
    pub hash_value: String,
    /// `SHA-256`.
    #[serde(rename = "hashAlgorithm")]
    pub hash_algorithm: String,
    /// The newest `eventTime` in the file.
    #[serde(rename = "newestEventTime")]
    pub newest_event_time: String,
    /// The oldest `eventTime` in the file.
    #[serde(rename = "oldestEventTime")]
    pub oldest_event_time: String,
}

/// A digest file's JSON, fields in CloudTrail's order. Times are `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestFile {
    /// The account.
    #[serde(rename = "awsAccountId")]
    pub aws_account_id: String,
    /// Start of the window of delivery times covered.
    #[serde(rename = "digestStartTime")]
    pub digest_start_time: String,
    /// End of the window (part of the signed string).
    #[serde(rename = "digestEndTime")]
    pub digest_end_time: String,
    /// The bucket the digest lives in.
    #[serde(rename = "digestS3Bucket")]
    pub digest_s3_bucket: String,
    /// The digest's own key.
    #[serde(rename = "digestS3Object")]
    pub digest_s3_object: String,
    /// The signing key's fingerprint.
    #[serde(rename = "digestPublicKeyFingerprint")]
    pub digest_public_key_fingerprint: String,
    /// `SHA256withRSA` or `Ed25519`.
    #[serde(rename = "digestSignatureAlgorithm")]
    pub digest_signature_algorithm: String,
    /// Newest `eventTime` over the listed files (`null` when none).
    #[serde(rename = "newestEventTime")]
    pub newest_event_time: Option<String>,
    /// Oldest `eventTime` over the listed files (`null` when none).
    #[serde(rename = "oldestEventTime")]
    pub oldest_event_time: Option<String>,
    /// The previous digest's bucket (`null` to start a chain).
    #[serde(rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    /// The previous digest's key.
    #[serde(rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    /// Hex SHA-256 of the previous digest's uncompressed content.
    #[serde(rename = "previousDigestHashValue")]
    pub previous_digest_hash_value: Option<String>,
    /// `SHA-256`.
    #[serde(rename = "previousDigestHashAlgorithm")]
    pub previous_digest_hash_algorithm: Option<String>,
    /// The previous digest's hex signature.
    #[serde(rename = "previousDigestSignature")]
    pub previous_digest_signature: Option<String>,
    /// The log files delivered in the window.
    #[serde(rename = "logFiles")]
    pub log_files: Vec<LogFileEntry>,
}

impl DigestFile {
    /// The string that is signed, given the hex SHA-256 of the digest's uncompressed bytes.
    pub fn string_to_sign(&self, sha256_hex: &str) -> String {
        format!(
            "{}\n{}/{}\n{}\n{}",
            self.digest_end_time,
            self.digest_s3_bucket,
            self.digest_s3_object,
            sha256_hex,
            self.previous_digest_signature.as_deref().unwrap_or("null")
        )
    }
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The first PEM block with one of `labels`: (label, DER).
fn pem_block<'l>(text: &str, labels: &[&'l str]) -> Option<(&'l str, Vec<u8>)> {
    for &label in labels {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let Some(start) = text.find(&begin) else {
            continue;
        };
        let body = text.get(start + begin.len()..)?;
        let stop = body.find(&end)?;
        // The base64 of a private key is as secret as the key.
        let b64: Zeroizing<String> = Zeroizing::new(
            body.get(..stop)?
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect(),
        );
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .ok()?;
        return Some((label, der));
    }
    None
}

/// PEM with 64-character lines and a final newline.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    // Sized once, so no copy of a private key's text is left behind by a reallocation.
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 32);
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER tag-length-value: (tag, contents, rest). Definite lengths up to 4 bytes only.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (body, after) = rest.split_at_checked(len)?;
    Some((tag, body, after))
}

fn der_encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(contents);
    out
}

/// `SEQUENCE { INTEGER, INTEGER }` and nothing else.
fn is_rsa_public_key(der: &[u8]) -> bool {
    let Some((0x30, body, rest)) = der_tlv(der) else {
        return false;
    };
    let Some((0x02, _, body)) = der_tlv(body) else {
        return false;
    };
    let Some((0x02, _, body)) = der_tlv(body) else {
        return false;
    };
    rest.is_empty() && body.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/audit")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn key(name: &str) -> DigestKey {
        DigestKey::from_pkcs8_pem(std::str::from_utf8(&fixture(name)).unwrap()).unwrap()
    }

    #[test]
    fn loads_openssl_keys_and_matches_openssl_public_keys() {
        // `openssl genpkey -algorithm ed25519` writes a v1 PKCS #8 document (no public key).
        let ed = key("ed25519.pem");
        assert_eq!(ed.algorithm(), "Ed25519");
        let ed_pub = PublicKey::parse(&fixture("ed25519.pub.pem")).unwrap();
        assert_eq!(ed.public_key(), ed_pub);
        assert_eq!(
            ed.public_key().to_spki_pem().as_bytes(),
            fixture("ed25519.pub.pem")
        );

        let rsa = key("rsa2048.pem");
        assert_eq!(rsa.algorithm(), "SHA256withRSA");
        for name in [
            "rsa2048.pub.pem",
            "rsa2048.pkcs1.pub.pem",
            "rsa2048.pkcs1.pub.der",
        ] {
            assert_eq!(
                rsa.public_key(),
                PublicKey::parse(&fixture(name)).unwrap(),
                "{name}"
            );
        }
        assert_eq!(
            rsa.public_key().to_spki_pem().as_bytes(),
            fixture("rsa2048.pub.pem")
        );
        // The fingerprints `openssl … -outform DER | md5sum` gives (see the fixtures' README).
        assert_eq!(rsa.fingerprint(), "73005b1a2196268de296348157ed16c4");
        assert_eq!(ed.fingerprint(), "f70196cdf1a001ab375f3eb2544df8db");
    }

    #[test]
    fn signs_and_verifies() {
        for name in ["ed25519.pem", "rsa2048.pem"] {
            let k = key(name);
            let sig = k.sign(b"message").unwrap();
            let public = k.public_key();
            assert!(public.verify(b"message", &sig), "{name}");
            assert!(!public.verify(b"messagE", &sig), "{name}");
        }
        let (generated, pem) = DigestKey::generate_ed25519().unwrap();
        // The shape `openssl genpkey -algorithm ed25519` writes: one 64-character line.
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
        assert_eq!(pem.lines().count(), 3);
        assert_ne!(DigestKey::generate_ed25519().unwrap().1, pem);
        let again = DigestKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(generated.fingerprint(), again.fingerprint());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = key("ed25519.pem");
        let shown = format!("{k:?}");
        assert_eq!(
            shown,
            "DigestKey { algorithm: \"Ed25519\", fingerprint: \"f70196cdf1a001ab375f3eb2544df8db\", .. }"
        );
    }

    #[test]
    fn rejects_what_is_not_a_key() {
        assert!(DigestKey::from_pkcs8_pem("hello").is_err());
        let e = DigestKey::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("neither an Ed25519 nor an RSA"),
            "{e}"
        );
        // Found by the `audit_digest` fuzz target: one base64 character of `dQ` changed; ring
        // loads the key but cannot sign with it.
        let rsa = String::from_utf8(fixture("rsa2048.pem")).unwrap();
        let damaged = rsa.replace("Drsw6RsH", "Drss6RsH");
        assert_ne!(damaged, rsa);
        let e = DigestKey::from_pkcs8_pem(&damaged).unwrap_err();
        assert!(e.to_string().contains("cannot sign"), "{e}");
        assert!(PublicKey::parse(b"\x30\x03\x02\x01\x01").is_err());
        assert!(PublicKey::parse(&fixture("ed25519.pem")).is_err());
    }

    #[test]
    fn string_to_sign_starts_a_chain_with_null() {
        let d = DigestFile {
            aws_account_id: "111122223333".into(),
            digest_start_time: "2025-01-15T11:00:00Z".into(),
            digest_end_time: "2025-01-15T12:00:00Z".into(),
            digest_s3_bucket: "b".into(),
            digest_s3_object: "AWSLogs/k.json.gz".into(),
            digest_public_key_fingerprint: "f".into(),
            digest_signature_algorithm: "Ed25519".into(),
            newest_event_time: None,
            oldest_event_time: None,
            previous_digest_s3_bucket: None,
            previous_digest_s3_object: None,
            previous_digest_hash_value: None,
            previous_digest_hash_algorithm: None,
            previous_digest_signature: None,
            log_files: vec![],
        };
        assert_eq!(
            d.string_to_sign("abc"),
            "2025-01-15T12:00:00Z\nb/AWSLogs/k.json.gz\nabc\nnull"
        );
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.starts_with("{\"awsAccountId\":\"111122223333\",\"digestStartTime\""));
        assert!(json.contains("\"previousDigestSignature\":null,\"logFiles\":[]}"));
    }
}
