//! `aws-chunked` request bodies: an incremental decoder that verifies chunk signatures, the
//! trailer signature and the trailer checksum while it strips the framing.
//!
//! Three payload modes (`x-amz-content-sha256`) use this encoding:
//!
//! | mode | chunk header | after the `0` chunk |
//! |---|---|---|
//! | `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` | `hex(size);chunk-signature=<sig>` | nothing |
//! | `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` | same | `name:value` lines, then `x-amz-trailer-signature:<sig>` |
//! | `STREAMING-UNSIGNED-PAYLOAD-TRAILER` | `hex(size)` | `name:value` lines (e.g. `x-amz-checksum-crc32:<base64>`) |
//!
//! Each line ends in `\r\n` (a bare `\n` is accepted), chunk data is followed by `\r\n`, and the
//! body ends with an empty line. Chunk signatures chain from the seed signature (the request's
//! own signature): chunk *n* signs
//! `AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<signature n-1>\n<sha256("")>\n<sha256(data n)>`,
//! and the trailer signs
//! `AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n<last chunk signature>\n<sha256(trailers)>` where
//! `trailers` is the sorted `name:value\n` lines without the signature.
//!
//! [`ChunkedDecoder`] is fed the body as it arrives, in pieces of any size, and hands back the
//! decoded data as slices of its input (no copy). Data of a signed chunk is released only after
//! its signature has been verified; unsigned data is released at once, its checksum being known
//! only at the end. [`ChunkedDecoder::finish`] runs the final checks (final chunk, trailers,
//! decoded length). A caller that streams the data on must hold back the last piece until
//! `finish` succeeds, so that a receiver never sees a complete body that failed verification
//! (`proxy::chunked::ChunkedBody` does).
//!
//! When an HTTP/1.1 server already removed the framing because the client sent the aws-chunked
//! bytes as the request's own `Transfer-Encoding: chunked` framing (what botocore does for
//! `STREAMING-UNSIGNED-PAYLOAD-TRAILER`), the data arrives plain and the trailers as HTTP
//! trailers: see [`ChunkedDecoder::assume_dechunked`], [`ChunkedDecoder::http_trailers`] and
//! [`sniff_chunk_header`].

use std::sync::Arc;

use base64::Engine as _;
use bytes::{Buf, Bytes};
use sha2::{Digest, Sha256};

use super::{sign, Parsed, PayloadMode, Signature, SigningKey, EMPTY_SHA256_BYTES};

/// `x-amz-content-sha256` of signed chunks without trailers.
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// `x-amz-content-sha256` of signed chunks with signed trailers.
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// `x-amz-content-sha256` of unsigned chunks with trailers (boto3's default over HTTPS).
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// The trailer line that carries the trailer signature.
pub const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// How an aws-chunked body is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamingMode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: every chunk signed, no trailers.
    Signed,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: every chunk signed, signed trailers.
    SignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: no signatures; a checksum trailer, when declared, is
    /// the only integrity check. Also used for aws-chunked bodies sent with `UNSIGNED-PAYLOAD`.
    UnsignedTrailer,
}

impl StreamingMode {
    /// The mode named by an `x-amz-content-sha256` literal (SigV4a `STREAMING-AWS4-ECDSA-…`
    /// literals are not supported and give `None`).
    pub fn from_literal(literal: &str) -> Option<Self> {
        match literal {
            STREAMING_SIGNED => Some(Self::Signed),
            STREAMING_SIGNED_TRAILER => Some(Self::SignedTrailer),
            STREAMING_UNSIGNED_TRAILER => Some(Self::UnsignedTrailer),
            _ => None,
        }
    }

    /// The `x-amz-content-sha256` literal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signed => STREAMING_SIGNED,
            Self::SignedTrailer => STREAMING_SIGNED_TRAILER,
            Self::UnsignedTrailer => STREAMING_UNSIGNED_TRAILER,
        }
    }

    /// True when chunks carry signatures (a [`ChunkSigning`] is needed).
    pub fn is_signed(self) -> bool {
        !matches!(self, Self::UnsignedTrailer)
    }

    /// Decides whether a request's body is aws-chunked and in which mode, from its payload mode
    /// and headers:
    ///
    /// - a `STREAMING-…` literal → that mode (an unknown literal, e.g. SigV4a's, is an error);
    /// - `UNSIGNED-PAYLOAD` with `Content-Encoding: aws-chunked` or
    ///   `x-amz-decoded-content-length` → [`StreamingMode::UnsignedTrailer`] (some clients label
    ///   unsigned aws-chunked bodies so);
    /// - anything else → `None`: the body is not decoded (a declared SHA-256 covers the body
    ///   as sent, framing included).
    pub fn detect(
        payload: &PayloadMode<'_>,
        headers: &http::HeaderMap,
    ) -> Result<Option<Self>, ChunkError> {
        match payload {
            PayloadMode::Streaming(literal) => Self::from_literal(literal)
                .map(Some)
                .ok_or_else(|| ChunkError::UnsupportedMode((*literal).to_owned())),
            PayloadMode::Unsigned if is_aws_chunked(headers) => Ok(Some(Self::UnsignedTrailer)),
            _ => Ok(None),
        }
    }
}

/// True when `Content-Encoding` lists `aws-chunked` or `x-amz-decoded-content-length` is present.
pub fn is_aws_chunked(headers: &http::HeaderMap) -> bool {
    headers.contains_key("x-amz-decoded-content-length")
        || headers
            .get_all(http::header::CONTENT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("aws-chunked"))
}

/// `Content-Encoding` without its `aws-chunked` token, to forward; `None` when nothing is left
/// (remove the header).
pub fn strip_aws_chunked(content_encoding: &str) -> Option<String> {
    let rest: Vec<&str> = content_encoding
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    if rest.is_empty() {
        None
    } else {
        Some(rest.join(", "))
    }
}

/// `x-amz-decoded-content-length`: `Ok(None)` when absent, an error when not a decimal number.
pub fn decoded_content_length(headers: &http::HeaderMap) -> Result<Option<u64>, ChunkError> {
    match headers.get("x-amz-decoded-content-length") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or(ChunkError::Malformed(
                "x-amz-decoded-content-length is not a number",
            )),
    }
}

/// What a chunk signature is computed with: the request's signing key, date, scope and seed
/// signature.
#[derive(Clone, Debug)]
pub struct ChunkSigning {
    /// The signing key of the request's scope (from the signing-key cache).
    pub key: Arc<SigningKey>,
    /// `X-Amz-Date` of the request, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// `<date>/<region>/<service>/aws4_request`.
    pub scope: String,
    /// The request's own (already verified) signature, which the first chunk chains from.
    pub seed: Signature,
}

impl ChunkSigning {
    /// The signing context of a parsed, verified request.
    pub fn from_parsed(parsed: &Parsed<'_>, key: Arc<SigningKey>) -> Self {
        Self {
            key,
            amz_date: parsed.date.as_str().to_owned(),
            scope: parsed.scope_string().to_owned(),
            seed: parsed.signature.clone(),
        }
    }
}

/// A checksum algorithm S3 accepts in `x-amz-checksum-*` trailers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC, zlib's), big-endian.
    Crc32,
    /// CRC-32C (Castagnoli), big-endian.
    Crc32c,
    /// CRC-64/NVME, big-endian.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl ChecksumAlgorithm {
    const ALL: [Self; 6] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
        Self::Sha512,
    ];

    /// The algorithm of a `x-amz-checksum-<name>` trailer or header name (any case).
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(name))
    }

    /// `x-amz-checksum-crc32`, …
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
            Self::Sha512 => "x-amz-checksum-sha512",
        }
    }

    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1`, `SHA256`, `SHA512`: the spelling of S3's
    /// `BadDigest` message ("The CRC32 you specified did not match the calculated checksum.").
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    fn hasher(self) -> Checksummer {
        match self {
            Self::Crc32 => Checksummer::Crc32(crc32fast::Hasher::new()),
            Self::Crc32c => Checksummer::Crc32c(0),
            Self::Crc64Nvme => Checksummer::Crc64Nvme(CRC64_NVME.digest()),
            Self::Sha1 => Checksummer::Sha1(<sha1::Sha1 as sha1::Digest>::new()),
            Self::Sha256 => Checksummer::Sha256(Sha256::new()),
            Self::Sha512 => Checksummer::Sha512(sha2::Sha512::new()),
        }
    }
}

static CRC64_NVME: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_NVME);

/// A running checksum over decoded data.
#[derive(Clone)]
enum Checksummer {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc::Digest<'static, u64, crc::Table<16>>),
    Sha1(sha1::Sha1),
    Sha256(Sha256),
    Sha512(sha2::Sha512),
}

impl Checksummer {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc32(h) => h.update(data),
            Self::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Self::Crc64Nvme(d) => d.update(data),
            Self::Sha1(h) => sha1::Digest::update(h, data),
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    /// The raw checksum bytes (what the trailer carries, base64-encoded).
    fn finish(self) -> Vec<u8> {
        match self {
            Self::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Self::Crc32c(c) => c.to_be_bytes().to_vec(),
            Self::Crc64Nvme(d) => d.finalize().to_be_bytes().to_vec(),
            Self::Sha1(h) => sha1::Digest::finalize(h).to_vec(),
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// Size limits for decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest chunk (data bytes) accepted. Signed chunks are held in memory until verified, so
    /// this bounds the memory of one request. Default 16 MiB (MinIO's limit).
    pub max_chunk_size: u64,
    /// Longest chunk header line, extensions included. Default 4 KiB.
    pub max_line: usize,
    /// Largest trailer section (all trailer lines). Default 16 KiB.
    pub max_trailers: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        Self {
            max_chunk_size: 16 << 20,
            max_line: 4096,
            max_trailers: 16 << 10,
        }
    }
}

/// Why an aws-chunked body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A chunk signature does not match (S3: `SignatureDoesNotMatch`, 403).
    #[error("chunk signature does not match")]
    ChunkSignature,
    /// The trailer signature does not match (S3: `SignatureDoesNotMatch`, 403).
    #[error("trailer signature does not match")]
    TrailerSignature,
    /// The checksum trailer does not match the data (S3: `BadDigest`, 400).
    #[error("the {} you specified did not match the calculated checksum", .0.name())]
    ChecksumMismatch(ChecksumAlgorithm),
    /// Trailers missing, undeclared, repeated or unreadable (S3: `MalformedTrailerError`, 400).
    #[error("malformed trailer: {0}")]
    MalformedTrailer(&'static str),
    /// `x-amz-trailer` names a checksum this decoder does not compute (400).
    #[error("unsupported checksum trailer `{0}`")]
    UnsupportedChecksum(String),
    /// A `STREAMING-…` payload mode this decoder does not handle, e.g. SigV4a's.
    #[error("unsupported streaming payload `{0}`")]
    UnsupportedMode(String),
    /// A signed mode without the request's signing context.
    #[error("signed chunks need the request's signing context")]
    MissingSigningContext,
    /// Broken framing (S3: `IncompleteBody`, 400).
    #[error("malformed aws-chunked body: {0}")]
    Malformed(&'static str),
    /// The body ended before its final chunk or trailers (S3: `IncompleteBody`, 400).
    #[error("aws-chunked body ended before its final chunk")]
    Truncated,
    /// The decoded length differs from `x-amz-decoded-content-length` (S3: `IncompleteBody`).
    #[error("decoded length {got} does not match x-amz-decoded-content-length {expected}")]
    LengthMismatch {
        /// `x-amz-decoded-content-length`.
        expected: u64,
        /// The decoded length (so far, when too long).
        got: u64,
    },
    /// A chunk larger than [`ChunkLimits::max_chunk_size`].
    #[error("chunk of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced chunk size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// What the first bytes of a body that an HTTP/1.1 server de-chunked look like: see
/// [`sniff_chunk_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// Too few bytes to tell.
    NeedMore,
    /// A complete aws-chunked chunk header line announcing `size` bytes.
    ChunkHeader {
        /// The announced chunk size.
        size: u64,
    },
    /// Not a chunk header: the data is plain.
    Plain,
}

/// Tells whether a body begins with an aws-chunked chunk header line (`hex[;ext]\r\n`, at most
/// 4 KiB). For a `STREAMING-UNSIGNED-PAYLOAD-TRAILER` request sent with
/// `Transfer-Encoding: chunked`, the HTTP server removed one level of chunked framing: a body
/// that still starts with a chunk header was framed twice (aws-chunked inside HTTP chunked, as
/// Go's HTTP client does for bodies of unknown length); otherwise the aws-chunked framing *was*
/// the HTTP framing (botocore) and the trailers arrived as HTTP trailers.
pub fn sniff_chunk_header(prefix: &[u8]) -> Sniff {
    const MAX: usize = 4096;
    let mut size: u64 = 0;
    let mut digits = 0usize;
    let mut in_ext = false;
    let mut after_size = false;
    let mut cr = false;
    for (i, &b) in prefix.iter().enumerate() {
        if i >= MAX {
            return Sniff::Plain;
        }
        if cr {
            return if b == b'\n' && digits > 0 {
                Sniff::ChunkHeader { size }
            } else {
                Sniff::Plain
            };
        }
        match b {
            b'\n' if digits > 0 => return Sniff::ChunkHeader { size },
            b'\r' if digits > 0 => cr = true,
            _ if in_ext => {
                if !(b == b'\t' || (0x20..0x7f).contains(&b)) {
                    return Sniff::Plain;
                }
            }
            b';' if digits > 0 => in_ext = true,
            b' ' | b'\t' if digits > 0 => after_size = true,
            _ if !after_size && digits < 16 => match hex_value(b) {
                Some(v) => {
                    size = (size << 4) | u64::from(v);
                    digits += 1;
                }
                None => return Sniff::Plain,
            },
            _ => return Sniff::Plain,
        }
    }
    if prefix.len() >= MAX {
        Sniff::Plain
    } else {
        Sniff::NeedMore
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The signing state: key, the fixed middle of every string to sign, the running signature.
struct SigningState {
    key: Arc<SigningKey>,
    /// `<date>\n<scope>\n`.
    date_scope: Vec<u8>,
    previous: [u8; 32],
    sts: Vec<u8>,
}

impl SigningState {
    fn new(ctx: ChunkSigning) -> Self {
        let mut date_scope = Vec::with_capacity(ctx.amz_date.len() + ctx.scope.len() + 2);
        date_scope.extend_from_slice(ctx.amz_date.as_bytes());
        date_scope.push(b'\n');
        date_scope.extend_from_slice(ctx.scope.as_bytes());
        date_scope.push(b'\n');
        let mut previous = [0u8; 32];
        // `Signature` always holds 32 bytes, so its hex always decodes.
        let _ = hex::decode_to_slice(ctx.seed.to_hex(), &mut previous);
        Self {
            key: ctx.key,
            date_scope,
            previous,
            sts: Vec::with_capacity(320),
        }
    }

    /// Verifies `provided` over `algorithm\n<date>\n<scope>\n<previous>\n<middle><hash>` and
    /// makes it the running signature.
    fn verify(
        &mut self,
        algorithm: &[u8],
        middle: &[u8],
        hash: &[u8; 32],
        provided: &Signature,
    ) -> bool {
        let mut hex_buf = [0u8; 64];
        self.sts.clear();
        self.sts.extend_from_slice(algorithm);
        self.sts.push(b'\n');
        self.sts.extend_from_slice(&self.date_scope);
        if hex::encode_to_slice(self.previous, &mut hex_buf).is_ok() {
            self.sts.extend_from_slice(&hex_buf);
        }
        self.sts.push(b'\n');
        self.sts.extend_from_slice(middle);
        if hex::encode_to_slice(hash, &mut hex_buf).is_ok() {
            self.sts.extend_from_slice(&hex_buf);
        }
        let computed = sign(&self.key, &self.sts);
        if provided.matches(&computed) {
            self.previous = computed;
            true
        } else {
            false
        }
    }
}

/// Received trailers: `name:value` with lowercase names and trimmed values, one per line.
#[derive(Default)]
struct Trailers {
    buf: Vec<u8>,
    /// (start, colon, end) of each line in `buf`, without its `\n`.
    lines: Vec<(usize, usize, usize)>,
    signature: Option<Signature>,
    /// Bytes received for the trailer section, framing included.
    received: usize,
}

impl Trailers {
    fn name(&self, line: (usize, usize, usize)) -> &[u8] {
        self.buf.get(line.0..line.1).unwrap_or_default()
    }

    fn value(&self, line: (usize, usize, usize)) -> &[u8] {
        self.buf.get(line.1 + 1..line.2).unwrap_or_default()
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.lines
            .iter()
            .find(|l| self.name(**l) == name.as_bytes())
            .map(|l| self.value(*l))
    }

    /// Adds one trailer; `name` and `value` raw as received.
    fn add(&mut self, name: &[u8], value: &[u8]) -> Result<(), ChunkError> {
        let name = trim_ws(name);
        let value = trim_ws(value);
        let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
        if name.is_empty() || !name.iter().all(token) {
            return Err(ChunkError::MalformedTrailer("invalid trailer name"));
        }
        if !value
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(ChunkError::MalformedTrailer("invalid trailer value"));
        }
        let start = self.buf.len();
        self.buf.extend(name.iter().map(u8::to_ascii_lowercase));
        let colon = self.buf.len();
        if self
            .lines
            .iter()
            .any(|l| self.buf.get(l.0..l.1) == self.buf.get(start..colon))
        {
            self.buf.truncate(start);
            return Err(ChunkError::MalformedTrailer("repeated trailer"));
        }
        self.buf.push(b':');
        self.buf.extend_from_slice(value);
        self.lines.push((start, colon, self.buf.len()));
        self.buf.push(b'\n');
        Ok(())
    }

    /// SHA-256 of the canonical trailers: `name:value\n` lines sorted by name.
    fn canonical_hash(&self) -> [u8; 32] {
        let mut order: Vec<(usize, usize, usize)> = self.lines.clone();
        order.sort_by(|a, b| self.name(*a).cmp(self.name(*b)));
        let mut h = Sha256::new();
        for l in order {
            h.update(self.buf.get(l.0..=l.2).unwrap_or_default());
        }
        h.finalize().into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk header line.
    Header,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// After chunk data: `\r\n` (or `\n`) expected.
    DataEnd { seen_cr: bool },
    /// After the final chunk: trailer lines until an empty line.
    Trailers,
    /// Complete; only stray line ends may follow.
    Done,
    /// The framing was removed by the HTTP layer: all input is data.
    Dechunked,
}

/// Incremental decoder and verifier of one aws-chunked body. See the module docs.
pub struct ChunkedDecoder {
    mode: StreamingMode,
    signing: Option<SigningState>,
    limits: ChunkLimits,
    expected: Option<u64>,
    /// Lowercase trailer names from `x-amz-trailer`.
    declared: Vec<String>,
    checksum: Option<(ChecksumAlgorithm, Checksummer)>,
    state: State,
    line: Vec<u8>,
    /// Sum of the announced chunk sizes.
    announced: u64,
    /// Decoded bytes received.
    decoded: u64,
    chunk_signature: Option<Signature>,
    chunk_hash: Sha256,
    /// Data of the current signed chunk, released once its signature is verified.
    pending: Vec<Bytes>,
    trailers: Trailers,
    http_trailers_seen: bool,
    /// Line ends received after the end.
    stray: usize,
    failed: Option<ChunkError>,
    finished: bool,
}

impl std::fmt::Debug for ChunkedDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedDecoder")
            .field("mode", &self.mode)
            .field("state", &self.state)
            .field("decoded", &self.decoded)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

const PAYLOAD_ALGORITHM: &[u8] = b"AWS4-HMAC-SHA256-PAYLOAD";
const TRAILER_ALGORITHM: &[u8] = b"AWS4-HMAC-SHA256-TRAILER";
/// `<sha256("")>\n`, the fixed part of a chunk string to sign before the data hash.
const CHUNK_MIDDLE: &[u8] = b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n";

impl ChunkedDecoder {
    /// A decoder for one body.
    ///
    /// - `signing`: required for the signed modes, ignored for the unsigned one.
    /// - `expected_decoded_len`: `x-amz-decoded-content-length`; checked as chunks are announced
    ///   and at the end.
    /// - `declared_trailer`: `x-amz-trailer` (comma-separated names). Every declared trailer must
    ///   arrive and no other may; an `x-amz-checksum-*` one is verified against the data. Not
    ///   allowed with [`StreamingMode::Signed`].
    pub fn new(
        mode: StreamingMode,
        signing: Option<ChunkSigning>,
        expected_decoded_len: Option<u64>,
        declared_trailer: Option<&str>,
    ) -> Result<Self, ChunkError> {
        let signing = if mode.is_signed() {
            Some(SigningState::new(
                signing.ok_or(ChunkError::MissingSigningContext)?,
            ))
        } else {
            None
        };
        let declared: Vec<String> = declared_trailer
            .unwrap_or("")
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        if mode == StreamingMode::Signed && !declared.is_empty() {
            return Err(ChunkError::MalformedTrailer(
                "x-amz-trailer needs a trailer payload mode",
            ));
        }
        let mut checksum = None;
        for name in &declared {
            if name == TRAILER_SIGNATURE {
                return Err(ChunkError::MalformedTrailer(
                    "x-amz-trailer-signature cannot be declared",
                ));
            }
            if name.starts_with("x-amz-checksum-") {
                let algorithm = ChecksumAlgorithm::from_header_name(name)
                    .ok_or_else(|| ChunkError::UnsupportedChecksum(name.clone()))?;
                if checksum.is_some() {
                    return Err(ChunkError::MalformedTrailer(
                        "more than one checksum trailer declared",
                    ));
                }
                checksum = Some((algorithm, algorithm.hasher()));
            }
        }
        if declared
            .iter()
            .enumerate()
            .any(|(i, n)| declared.iter().skip(i + 1).any(|m| m == n))
        {
            return Err(ChunkError::MalformedTrailer("trailer declared twice"));
        }
        Ok(Self {
            mode,
            signing,
            limits: ChunkLimits::default(),
            expected: expected_decoded_len,
            declared,
            checksum,
            state: State::Header,
            line: Vec::new(),
            announced: 0,
            decoded: 0,
            chunk_signature: None,
            chunk_hash: Sha256::new(),
            pending: Vec::new(),
            trailers: Trailers::default(),
            http_trailers_seen: false,
            stray: 0,
            failed: None,
            finished: false,
        })
    }

    /// Replaces the default [`ChunkLimits`].
    pub fn with_limits(mut self, limits: ChunkLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The payload mode.
    pub fn mode(&self) -> StreamingMode {
        self.mode
    }

    /// `x-amz-decoded-content-length`, as given.
    pub fn expected_len(&self) -> Option<u64> {
        self.expected
    }

    /// Decoded bytes received so far (released or not).
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// The checksum trailer that will be verified, if any.
    pub fn checksum_algorithm(&self) -> Option<ChecksumAlgorithm> {
        self.checksum.as_ref().map(|(a, _)| *a)
    }

    /// True once [`ChunkedDecoder::finish`] succeeded.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The received trailers, names lowercase and values trimmed, signature excluded. Verified
    /// only once [`ChunkedDecoder::finish`] succeeded.
    pub fn trailers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.trailers.lines.iter().map(|l| {
            (
                std::str::from_utf8(self.trailers.name(*l)).unwrap_or(""),
                std::str::from_utf8(self.trailers.value(*l)).unwrap_or(""),
            )
        })
    }

    /// Declares that the HTTP layer already removed the framing (the client sent the
    /// aws-chunked bytes as its `Transfer-Encoding: chunked` framing): all input is data, and
    /// the trailers come through [`ChunkedDecoder::http_trailers`]. Only for the unsigned mode
    /// (the HTTP layer drops chunk signatures) and before any input.
    pub fn assume_dechunked(&mut self) -> Result<(), ChunkError> {
        if self.mode.is_signed() {
            return Err(self.fail(ChunkError::Malformed(
                "signed chunks cannot be read from http chunked framing",
            )));
        }
        if self.state != State::Header || !self.line.is_empty() || self.decoded > 0 {
            return Err(self.fail(ChunkError::Malformed("framing decided after input")));
        }
        self.state = State::Dechunked;
        Ok(())
    }

    /// Takes trailers that arrived as HTTP trailers (see [`ChunkedDecoder::assume_dechunked`]).
    pub fn http_trailers(&mut self, headers: &http::HeaderMap) -> Result<(), ChunkError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.http_trailers_inner(headers);
        result.map_err(|e| self.fail(e))
    }

    fn http_trailers_inner(&mut self, headers: &http::HeaderMap) -> Result<(), ChunkError> {
        if self.state != State::Dechunked || self.http_trailers_seen {
            return Err(ChunkError::MalformedTrailer("unexpected http trailers"));
        }
        self.http_trailers_seen = true;
        for (name, value) in headers {
            self.trailers.received = self
                .trailers
                .received
                .saturating_add(name.as_str().len() + value.len() + 3);
            if self.trailers.received > self.limits.max_trailers {
                return Err(ChunkError::MalformedTrailer("trailers too large"));
            }
            self.trailer(name.as_str().as_bytes(), value.as_bytes())?;
        }
        Ok(())
    }

    /// Decodes the next piece of the body, appending verified data to `out` (slices of
    /// `input`). After an error the decoder stays failed and returns the same error.
    pub fn feed(&mut self, input: Bytes, out: &mut Vec<Bytes>) -> Result<(), ChunkError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.feed_inner(input, out);
        result.map_err(|e| self.fail(e))
    }

    /// Checks that the body is complete: final chunk, trailers (signature, checksum) and
    /// decoded length. Call at the end of the input; the body is verified only when this
    /// succeeds.
    pub fn finish(&mut self) -> Result<(), ChunkError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.finished {
            return Ok(());
        }
        let result = self.finish_inner();
        match result {
            Ok(()) => {
                self.finished = true;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: ChunkError) -> ChunkError {
        self.pending.clear();
        self.failed = Some(e.clone());
        e
    }

    fn finish_inner(&mut self) -> Result<(), ChunkError> {
        match self.state {
            State::Done => {}
            State::Trailers => {
                // Tolerated: a last trailer line without its line end, or no empty line.
                if !self.line.is_empty() {
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    if !line.is_empty() {
                        self.trailer_line(line)?;
                    }
                }
                self.end_trailers()?;
            }
            State::Dechunked => self.end_trailers()?,
            State::Header | State::Data { .. } | State::DataEnd { .. } => {
                return Err(ChunkError::Truncated)
            }
        }
        self.check_length()
    }

    fn check_length(&self) -> Result<(), ChunkError> {
        match self.expected {
            Some(expected) if expected != self.decoded => Err(ChunkError::LengthMismatch {
                expected,
                got: self.decoded,
            }),
            _ => Ok(()),
        }
    }

    fn feed_inner(&mut self, mut input: Bytes, out: &mut Vec<Bytes>) -> Result<(), ChunkError> {
        while !input.is_empty() {
            match self.state {
                State::Header | State::Trailers => {
                    let newline = input.iter().position(|&b| b == b'\n');
                    let take = newline.map_or(input.len(), |i| i + 1);
                    let limit = if self.state == State::Header {
                        self.limits.max_line
                    } else {
                        self.limits
                            .max_trailers
                            .saturating_sub(self.trailers.received)
                    };
                    if self.line.len() + take > limit {
                        return Err(if self.state == State::Header {
                            ChunkError::Malformed("chunk header line too long")
                        } else {
                            ChunkError::MalformedTrailer("trailers too large")
                        });
                    }
                    let piece = input.split_to(take);
                    self.line.extend_from_slice(&piece);
                    if newline.is_some() {
                        let mut line = std::mem::take(&mut self.line);
                        let result = self.line_done(&line);
                        line.clear();
                        self.line = line;
                        result?;
                    }
                }
                State::Data { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let piece = input.split_to(n);
                    let remaining = remaining - n as u64;
                    self.data(piece, out);
                    if remaining == 0 {
                        self.chunk_data_done(out)?;
                        self.state = State::DataEnd { seen_cr: false };
                    } else {
                        self.state = State::Data { remaining };
                    }
                }
                State::DataEnd { seen_cr } => {
                    let b = input.first().copied().unwrap_or(0);
                    input.advance(1);
                    self.state = match b {
                        b'\r' if !seen_cr => State::DataEnd { seen_cr: true },
                        b'\n' => State::Header,
                        _ => return Err(ChunkError::Malformed("chunk data not followed by crlf")),
                    };
                }
                State::Done => {
                    self.stray = self.stray.saturating_add(input.len());
                    if self.stray <= self.limits.max_line
                        && input.iter().all(|&b| b == b'\r' || b == b'\n')
                    {
                        input.clear();
                    } else {
                        return Err(ChunkError::Malformed("data after the final chunk"));
                    }
                }
                State::Dechunked => {
                    let n = input.len() as u64;
                    let total = self.decoded.saturating_add(n);
                    if let Some(expected) = self.expected {
                        if total > expected {
                            return Err(ChunkError::LengthMismatch {
                                expected,
                                got: total,
                            });
                        }
                    }
                    self.data(std::mem::take(&mut input), out);
                }
            }
        }
        Ok(())
    }

    /// Takes decoded data: checksum, length, and either out (unsigned) or pending (signed).
    fn data(&mut self, piece: Bytes, out: &mut Vec<Bytes>) {
        if piece.is_empty() {
            return;
        }
        self.decoded += piece.len() as u64;
        if let Some((_, c)) = self.checksum.as_mut() {
            c.update(&piece);
        }
        if self.signing.is_some() {
            self.chunk_hash.update(&piece);
            self.pending.push(piece);
        } else {
            out.push(piece);
        }
    }

    fn chunk_data_done(&mut self, out: &mut Vec<Bytes>) -> Result<(), ChunkError> {
        if self.signing.is_some() {
            let hash: [u8; 32] = self.chunk_hash.finalize_reset().into();
            self.verify_chunk(&hash)?;
            out.append(&mut self.pending);
        }
        Ok(())
    }

    fn verify_chunk(&mut self, hash: &[u8; 32]) -> Result<(), ChunkError> {
        let (Some(signing), Some(provided)) = (self.signing.as_mut(), self.chunk_signature.take())
        else {
            return Err(ChunkError::Malformed("missing chunk-signature"));
        };
        if signing.verify(PAYLOAD_ALGORITHM, CHUNK_MIDDLE, hash, &provided) {
            Ok(())
        } else {
            Err(ChunkError::ChunkSignature)
        }
    }

    /// A complete line (with its `\n`) in the header or trailer state.
    fn line_done(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.state == State::Header {
            return self.header_line(line);
        }
        self.trailers.received = self.trailers.received.saturating_add(line.len() + 2);
        if self.trailers.received > self.limits.max_trailers {
            return Err(ChunkError::MalformedTrailer("trailers too large"));
        }
        // As for chunk headers: SDKs never pad a trailer line, and refusing trailing whitespace
        // in signed payloads means a `\r` altered into a tab does not still parse (the value is
        // trimmed before it is signed, so the signature alone would not catch it).
        if self.mode.is_signed() && matches!(line.last(), Some(b' ' | b'\t')) {
            return Err(ChunkError::MalformedTrailer(
                "whitespace at the end of a trailer line",
            ));
        }
        if line.is_empty() {
            // An empty line ends the trailers, except a stray one before required trailers.
            if self.trailers.lines.is_empty()
                && self.trailers.signature.is_none()
                && self.trailers_required()
            {
                return Ok(());
            }
            self.end_trailers()?;
            self.state = State::Done;
            return Ok(());
        }
        self.trailer_line(line)
    }

    fn trailers_required(&self) -> bool {
        self.mode == StreamingMode::SignedTrailer || !self.declared.is_empty()
    }

    fn header_line(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        // RFC 9112 allows whitespace only around `;` and `=`, never before the line end. Signed
        // chunks end in their signature, which SDKs never pad: refusing whitespace there means a
        // `\r` altered into a tab does not still parse. (Unsigned framing stays tolerant.)
        if self.mode.is_signed() && matches!(line.last(), Some(b' ' | b'\t')) {
            return Err(ChunkError::Malformed(
                "whitespace at the end of a chunk header",
            ));
        }
        let mut parts = line.split(|&b| b == b';');
        let size_text = trim_ws(parts.next().unwrap_or_default());
        if size_text.is_empty() || size_text.len() > 16 {
            return Err(ChunkError::Malformed("invalid chunk size"));
        }
        let mut size: u64 = 0;
        for &b in size_text {
            let v = hex_value(b).ok_or(ChunkError::Malformed("invalid chunk size"))?;
            size = (size << 4) | u64::from(v);
        }
        let mut signature = None;
        // Extensions are ignored in the unsigned mode, chunk signatures included.
        let extensions = parts.filter(|_| self.mode.is_signed());
        for ext in extensions {
            let ext = trim_ws(ext);
            let (name, value) = match ext.iter().position(|&b| b == b'=') {
                Some(i) => (
                    trim_ws(ext.get(..i).unwrap_or_default()),
                    trim_ws(ext.get(i + 1..).unwrap_or_default()),
                ),
                None => (ext, &b""[..]),
            };
            if name.eq_ignore_ascii_case(b"chunk-signature") {
                if signature.is_some() {
                    return Err(ChunkError::Malformed("repeated chunk-signature"));
                }
                let sig = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| v.len() == 64)
                    .and_then(Signature::from_hex)
                    .ok_or(ChunkError::Malformed("invalid chunk-signature"))?;
                signature = Some(sig);
            }
        }
        if self.mode.is_signed() {
            if signature.is_none() {
                return Err(ChunkError::Malformed("missing chunk-signature"));
            }
            self.chunk_signature = signature;
        }
        if size > self.limits.max_chunk_size {
            return Err(ChunkError::TooLarge {
                size,
                limit: self.limits.max_chunk_size,
            });
        }
        let announced = self.announced.saturating_add(size);
        if let Some(expected) = self.expected {
            if announced > expected {
                return Err(ChunkError::LengthMismatch {
                    expected,
                    got: announced,
                });
            }
        }
        self.announced = announced;
        if size == 0 {
            if self.signing.is_some() {
                self.verify_chunk(&EMPTY_SHA256_BYTES)?;
            }
            self.state = State::Trailers;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// One non-empty trailer line.
    fn trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ChunkError::MalformedTrailer("trailer line without ':'"))?;
        let name = line.get(..colon).unwrap_or_default();
        let value = line.get(colon + 1..).unwrap_or_default();
        self.trailer(name, value)
    }

    fn trailer(&mut self, name: &[u8], value: &[u8]) -> Result<(), ChunkError> {
        if self.mode == StreamingMode::Signed {
            return Err(ChunkError::MalformedTrailer(
                "trailers are not allowed without a trailer payload mode",
            ));
        }
        if self.trailers.signature.is_some() {
            return Err(ChunkError::MalformedTrailer(
                "trailer after x-amz-trailer-signature",
            ));
        }
        let trimmed = trim_ws(name);
        if trimmed.eq_ignore_ascii_case(TRAILER_SIGNATURE.as_bytes()) {
            if !self.mode.is_signed() {
                return Err(ChunkError::MalformedTrailer(
                    "trailer signature in an unsigned payload",
                ));
            }
            let sig = std::str::from_utf8(trim_ws(value))
                .ok()
                .filter(|v| v.len() == 64)
                .and_then(Signature::from_hex)
                .ok_or(ChunkError::MalformedTrailer(
                    "invalid x-amz-trailer-signature",
                ))?;
            self.trailers.signature = Some(sig);
            return Ok(());
        }
        if !self
            .declared
            .iter()
            .any(|d| d.as_bytes().eq_ignore_ascii_case(trimmed))
        {
            return Err(ChunkError::MalformedTrailer(
                "trailer not declared in x-amz-trailer",
            ));
        }
        self.trailers.add(name, value)
    }

    /// The end of the trailer section: presence, signature, then checksum.
    fn end_trailers(&mut self) -> Result<(), ChunkError> {
        if self.declared.iter().any(|d| self.trailers.get(d).is_none()) {
            return Err(ChunkError::MalformedTrailer(
                "a trailer declared in x-amz-trailer is missing",
            ));
        }
        if self.mode == StreamingMode::SignedTrailer {
            let provided = self
                .trailers
                .signature
                .take()
                .ok_or(ChunkError::MalformedTrailer(
                    "missing x-amz-trailer-signature",
                ))?;
            let hash = self.trailers.canonical_hash();
            let ok = self
                .signing
                .as_mut()
                .is_some_and(|s| s.verify(TRAILER_ALGORITHM, b"", &hash, &provided));
            if !ok {
                return Err(ChunkError::TrailerSignature);
            }
        }
        if let Some((algorithm, summer)) = self.checksum.take() {
            let computed = summer.finish();
            let provided = self
                .trailers
                .get(algorithm.header_name())
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok());
            if provided.as_deref() != Some(&computed[..]) {
                return Err(ChunkError::ChecksumMismatch(algorithm));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        reason = "test code"
    )]

    use super::*;
    use crate::sigv4::{derive_signing_key, EMPTY_SHA256};

    #[test]
    fn constants_agree() {
        assert_eq!(CHUNK_MIDDLE, format!("{EMPTY_SHA256}\n").as_bytes());
        assert_eq!(hex::encode(EMPTY_SHA256_BYTES), EMPTY_SHA256);
    }

    // The S3 API reference example, "Signature Calculations for the Authorization Header:
    // Transferring Payload in Multiple Chunks" (sigv4-streaming.html) and its trailer variant
    // (sigv4-streaming-trailers.html). The documented secret has `/bPxR…` (the IAM guide's
    // example secret has `+bPxR…`; that one does not reproduce these signatures).
    const DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const DOC_DATE: &str = "20130524T000000Z";
    const DOC_SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
    const DOC_SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const DOC_SIGS: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];
    const DOC_TRAILER_SEED: &str =
        "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    const DOC_TRAILER_SIGS: [&str; 3] = [
        "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
    ];
    const DOC_TRAILER_SIGNATURE: &str =
        "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";

    fn doc_key() -> Arc<SigningKey> {
        Arc::new(derive_signing_key(
            DOC_SECRET,
            "20130524",
            "us-east-1",
            "s3",
        ))
    }

    fn ctx(seed: &str) -> ChunkSigning {
        ChunkSigning {
            key: doc_key(),
            amz_date: DOC_DATE.into(),
            scope: DOC_SCOPE.into(),
            seed: Signature::from_hex(seed).unwrap(),
        }
    }

    /// Test encoder: signs chunks with the documented formula, independently of the decoder.
    struct Encoder {
        key: Arc<SigningKey>,
        previous: String,
        trailer_mode: bool,
    }

    impl Encoder {
        fn new(seed: &str, trailer_mode: bool) -> Self {
            Self {
                key: doc_key(),
                previous: seed.into(),
                trailer_mode,
            }
        }

        fn chunk_signature(&mut self, data: &[u8]) -> String {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{DOC_DATE}\n{DOC_SCOPE}\n{}\n{EMPTY_SHA256}\n{}",
                self.previous,
                hex::encode(Sha256::digest(data))
            );
            self.previous = hex::encode(sign(&self.key, sts.as_bytes()));
            self.previous.clone()
        }

        fn trailer_signature(&mut self, trailers: &[(&str, &str)]) -> String {
            let mut sorted = trailers.to_vec();
            sorted.sort();
            let canonical: String = sorted.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
            let sts = format!(
                "AWS4-HMAC-SHA256-TRAILER\n{DOC_DATE}\n{DOC_SCOPE}\n{}\n{}",
                self.previous,
                hex::encode(Sha256::digest(canonical.as_bytes()))
            );
            hex::encode(sign(&self.key, sts.as_bytes()))
        }

        /// A whole signed body with chunks of `chunk` bytes.
        fn encode(&mut self, data: &[u8], chunk: usize, trailers: &[(&str, &str)]) -> Vec<u8> {
            let mut body = Vec::new();
            for piece in data.chunks(chunk) {
                let sig = self.chunk_signature(piece);
                body.extend_from_slice(
                    format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes(),
                );
                body.extend_from_slice(piece);
                body.extend_from_slice(b"\r\n");
            }
            let sig = self.chunk_signature(b"");
            body.extend_from_slice(format!("0;chunk-signature={sig}\r\n").as_bytes());
            if self.trailer_mode {
                for (n, v) in trailers {
                    body.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
                }
                let sig = self.trailer_signature(trailers);
                body.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body
        }
    }

    fn unsigned_body(data: &[u8], chunk: usize, trailers: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for piece in data.chunks(chunk) {
            body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            body.extend_from_slice(piece);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n");
        for (n, v) in trailers {
            body.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn crc32_b64(data: &[u8]) -> String {
        b64(&crc32fast::hash(data).to_be_bytes())
    }

    /// Feeds `body` in pieces split at `splits`, then finishes.
    fn decode_split(
        mut dec: ChunkedDecoder,
        body: &[u8],
        splits: &[usize],
    ) -> Result<Vec<u8>, ChunkError> {
        let mut out = Vec::new();
        let mut start = 0;
        for &s in splits.iter().chain(std::iter::once(&body.len())) {
            let s = s.clamp(start, body.len());
            dec.feed(Bytes::copy_from_slice(&body[start..s]), &mut out)?;
            start = s;
        }
        dec.finish()?;
        Ok(out.concat())
    }

    fn decode(dec: ChunkedDecoder, body: &[u8]) -> Result<Vec<u8>, ChunkError> {
        decode_split(dec, body, &[])
    }

    fn doc_body() -> Vec<u8> {
        let mut body = Vec::new();
        for (size, sig) in [
            (65536usize, DOC_SIGS[0]),
            (1024, DOC_SIGS[1]),
            (0, DOC_SIGS[2]),
        ] {
            body.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
        }
        body
    }

    fn doc_decoder() -> ChunkedDecoder {
        ChunkedDecoder::new(
            StreamingMode::Signed,
            Some(ctx(DOC_SEED)),
            Some(66560),
            None,
        )
        .unwrap()
    }

    #[test]
    fn documented_chunk_signatures_reproduce() {
        let mut enc = Encoder::new(DOC_SEED, false);
        assert_eq!(enc.chunk_signature(&[b'a'; 65536]), DOC_SIGS[0]);
        assert_eq!(enc.chunk_signature(&[b'a'; 1024]), DOC_SIGS[1]);
        assert_eq!(enc.chunk_signature(b""), DOC_SIGS[2]);
        let mut enc = Encoder::new(DOC_TRAILER_SEED, true);
        assert_eq!(enc.chunk_signature(&[b'a'; 65536]), DOC_TRAILER_SIGS[0]);
        assert_eq!(enc.chunk_signature(&[b'a'; 1024]), DOC_TRAILER_SIGS[1]);
        assert_eq!(enc.chunk_signature(b""), DOC_TRAILER_SIGS[2]);
        assert_eq!(
            enc.trailer_signature(&[("x-amz-checksum-crc32c", "sOO8/Q==")]),
            DOC_TRAILER_SIGNATURE
        );
        // The encoder builds the documented body byte for byte (66824 bytes, the documented
        // Content-Length).
        let built = Encoder::new(DOC_SEED, false).encode(&[b'a'; 66560], 65536, &[]);
        assert_eq!(built, doc_body());
        assert_eq!(built.len(), 66824);
    }

    #[test]
    fn documented_body_decodes() {
        let out = decode(doc_decoder(), &doc_body()).unwrap();
        assert_eq!(out.len(), 66560);
        assert!(out.iter().all(|&b| b == b'a'));
    }

    #[test]
    fn documented_trailer_body_decodes() {
        let mut body = Vec::new();
        for (size, sig) in [
            (65536usize, DOC_TRAILER_SIGS[0]),
            (1024, DOC_TRAILER_SIGS[1]),
            (0, DOC_TRAILER_SIGS[2]),
        ] {
            body.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            if size > 0 {
                body.extend_from_slice(b"\r\n");
            }
        }
        body.extend_from_slice(b"x-amz-checksum-crc32c:sOO8/Q==\r\n");
        body.extend_from_slice(
            format!("x-amz-trailer-signature:{DOC_TRAILER_SIGNATURE}\r\n\r\n").as_bytes(),
        );
        let dec = || {
            ChunkedDecoder::new(
                StreamingMode::SignedTrailer,
                Some(ctx(DOC_TRAILER_SEED)),
                Some(66560),
                Some("x-amz-checksum-crc32c"),
            )
            .unwrap()
        };
        assert_eq!(decode(dec(), &body).unwrap().len(), 66560);
        // The documented checksum is right: a wrong one (re-signed) fails as a checksum.
        let mut enc = Encoder::new(DOC_TRAILER_SEED, true);
        let bad = enc.encode(
            &[b'a'; 66560],
            65536,
            &[("x-amz-checksum-crc32c", "AAAAAA==")],
        );
        assert_eq!(
            decode(dec(), &bad),
            Err(ChunkError::ChecksumMismatch(ChecksumAlgorithm::Crc32c))
        );
    }

    #[test]
    fn every_split_gives_the_same_result() {
        // A signed body with trailers: every split point, then every 1..=7-byte feeding.
        let data: Vec<u8> = (0..1200u32).map(|i| (i % 253) as u8).collect();
        let crc = crc32_b64(&data);
        let trailers = [("x-amz-checksum-crc32", crc.as_str())];
        let body = Encoder::new(DOC_SEED, true).encode(&data, 256, &trailers);
        let dec = || {
            ChunkedDecoder::new(
                StreamingMode::SignedTrailer,
                Some(ctx(DOC_SEED)),
                Some(data.len() as u64),
                Some("x-amz-checksum-crc32"),
            )
            .unwrap()
        };
        for at in 0..=body.len() {
            assert_eq!(
                decode_split(dec(), &body, &[at]).unwrap(),
                data,
                "split at {at}"
            );
        }
        for step in 1..=7usize {
            let splits: Vec<usize> = (step..body.len()).step_by(step).collect();
            assert_eq!(decode_split(dec(), &body, &splits).unwrap(), data);
        }
        // The same for an unsigned body.
        let body = unsigned_body(&data, 100, &trailers);
        let dec = || {
            ChunkedDecoder::new(
                StreamingMode::UnsignedTrailer,
                None,
                Some(data.len() as u64),
                Some("x-amz-checksum-crc32"),
            )
            .unwrap()
        };
        for at in 0..=body.len() {
            assert_eq!(
                decode_split(dec(), &body, &[at]).unwrap(),
                data,
                "split at {at}"
            );
        }
        // The documented body: splits around every framing part, and byte-by-byte feeding.
        let body = doc_body();
        let expected = vec![b'a'; 66560];
        let second = 86 + 65536 + 2;
        let points = (0..120)
            .chain(second - 20..second + 120)
            .chain(body.len() - 120..=body.len());
        for at in points {
            assert_eq!(decode_split(doc_decoder(), &body, &[at]).unwrap(), expected);
        }
        for step in [1usize, 89, 4095] {
            let splits: Vec<usize> = (step..body.len()).step_by(step).collect();
            assert_eq!(
                decode_split(doc_decoder(), &body, &splits).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn every_byte_change_fails() {
        // A small signed body with trailers so that every part is covered quickly.
        let data = b"hello aws-chunked world, three chunks";
        let crc = crc32_b64(data);
        let trailers = [("x-amz-checksum-crc32", crc.as_str())];
        let body = Encoder::new(DOC_SEED, true).encode(data, 16, &trailers);
        let dec = || {
            ChunkedDecoder::new(
                StreamingMode::SignedTrailer,
                Some(ctx(DOC_SEED)),
                Some(data.len() as u64),
                Some("x-amz-checksum-crc32"),
            )
            .unwrap()
        };
        assert_eq!(decode(dec(), &body).unwrap(), data);
        for i in 0..body.len() {
            // Every single-bit change, including `\r` ^ 0x04 = `\t` (which the proptest in
            // tests/it/chunked.rs found twice, in chunk headers and in trailer lines).
            for flip in (0..8).map(|bit| 1u8 << bit) {
                let mut bad = body.clone();
                bad[i] ^= flip;
                // Changing the case of a hex digit or of a name is not a change of content.
                let same = bad[i].eq_ignore_ascii_case(&body[i]) && bad[i].is_ascii_alphabetic();
                let result = decode(dec(), &bad);
                if same && result.is_ok() {
                    continue;
                }
                assert!(result.is_err(), "byte {i} ^ {flip:#x} accepted");
            }
        }
        // The documented body: every data byte and every signature byte.
        let doc = doc_body();
        for i in (0..doc.len())
            .step_by(97)
            .chain([0, 20, 85, 86, 66000, doc.len() - 5])
        {
            let mut bad = doc.clone();
            bad[i] = bad[i].wrapping_add(1);
            assert!(
                decode(doc_decoder(), &bad).is_err(),
                "byte {i} changed accepted"
            );
        }
    }

    #[test]
    fn signature_errors_are_reported_as_such() {
        let data = [7u8; 100];
        let mut body = Encoder::new(DOC_SEED, false).encode(&data, 50, &[]);
        let dec = || {
            ChunkedDecoder::new(StreamingMode::Signed, Some(ctx(DOC_SEED)), Some(100), None)
                .unwrap()
        };
        // A data byte of the second chunk.
        let at = body.len() - 90;
        body[at] ^= 1;
        assert_eq!(decode(dec(), &body), Err(ChunkError::ChunkSignature));
        // Data of a signed chunk is not released before its signature is checked.
        let body = Encoder::new(DOC_SEED, false).encode(&data, 50, &[]);
        let mut d = dec();
        let mut out = Vec::new();
        let header_len = body.iter().position(|&b| b == b'\n').unwrap() + 1;
        d.feed(Bytes::copy_from_slice(&body[..header_len + 49]), &mut out)
            .unwrap();
        assert!(out.is_empty());
        d.feed(
            Bytes::copy_from_slice(&body[header_len + 49..header_len + 50]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.concat(), vec![7u8; 50]);
        // Wrong seed: the first chunk fails.
        let other = ChunkedDecoder::new(
            StreamingMode::Signed,
            Some(ctx(DOC_TRAILER_SEED)),
            Some(100),
            None,
        )
        .unwrap();
        assert_eq!(decode(other, &body), Err(ChunkError::ChunkSignature));
        // Reordered chunks fail (the chain).
        let mut enc = Encoder::new(DOC_SEED, false);
        let first = enc.chunk_signature(&[1u8; 10]);
        let second = enc.chunk_signature(&[2u8; 10]);
        let last = enc.chunk_signature(b"");
        let swapped = format!(
            "a;chunk-signature={second}\r\n{}\r\na;chunk-signature={first}\r\n{}\r\n0;chunk-signature={last}\r\n\r\n",
            "\u{2}".repeat(10),
            "\u{1}".repeat(10)
        );
        let d = ChunkedDecoder::new(StreamingMode::Signed, Some(ctx(DOC_SEED)), Some(20), None)
            .unwrap();
        assert_eq!(
            decode(d, swapped.as_bytes()),
            Err(ChunkError::ChunkSignature)
        );
        // A body cut before the final chunk is incomplete.
        let body = Encoder::new(DOC_SEED, false).encode(&data, 50, &[]);
        let cut = body.len() - 2 - 83;
        assert_eq!(decode(dec(), &body[..cut]), Err(ChunkError::Truncated));
        // A wrong final-chunk signature fails.
        let mut bad_final = body.clone();
        let at = body.len() - 5;
        bad_final[at] = if bad_final[at] == b'0' { b'1' } else { b'0' };
        assert_eq!(decode(dec(), &bad_final), Err(ChunkError::ChunkSignature));
    }

    #[test]
    fn trailer_signature_is_checked() {
        let data = b"0123456789";
        let crc = crc32_b64(data);
        let body = Encoder::new(DOC_SEED, true).encode(data, 4, &[("x-amz-checksum-crc32", &crc)]);
        let dec = |declared| {
            ChunkedDecoder::new(
                StreamingMode::SignedTrailer,
                Some(ctx(DOC_SEED)),
                Some(10),
                declared,
            )
            .unwrap()
        };
        assert_eq!(
            decode(dec(Some("x-amz-checksum-crc32")), &body).unwrap(),
            data
        );
        // Another value signed with a wrong signature.
        let text = String::from_utf8(body.clone()).unwrap();
        let tampered = text.replace(&crc, &crc32_b64(b"other"));
        assert_eq!(
            decode(dec(Some("x-amz-checksum-crc32")), tampered.as_bytes()),
            Err(ChunkError::TrailerSignature)
        );
        // Undeclared trailer.
        assert!(matches!(
            decode(dec(None), &body),
            Err(ChunkError::MalformedTrailer(_))
        ));
        // Missing trailer signature.
        let cut = text
            .split("x-amz-trailer-signature")
            .next()
            .unwrap()
            .to_owned()
            + "\r\n";
        assert_eq!(
            decode(dec(Some("x-amz-checksum-crc32")), cut.as_bytes()),
            Err(ChunkError::MalformedTrailer(
                "missing x-amz-trailer-signature"
            ))
        );
        // Signed trailer mode with no trailers but the signature.
        let body = Encoder::new(DOC_SEED, true).encode(data, 4, &[]);
        assert_eq!(decode(dec(None), &body).unwrap(), data);
    }

    #[test]
    fn unsigned_trailer_checksums() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        type Sum = fn(&[u8]) -> Vec<u8>;
        let algorithms: [(&str, Sum); 6] = [
            ("x-amz-checksum-crc32", |d| {
                crc32fast::hash(d).to_be_bytes().to_vec()
            }),
            ("x-amz-checksum-crc32c", |d| {
                crc32c::crc32c(d).to_be_bytes().to_vec()
            }),
            ("x-amz-checksum-crc64nvme", |d| {
                CRC64_NVME.checksum(d).to_be_bytes().to_vec()
            }),
            ("x-amz-checksum-sha1", |d| {
                <sha1::Sha1 as sha1::Digest>::digest(d).to_vec()
            }),
            ("x-amz-checksum-sha256", |d| Sha256::digest(d).to_vec()),
            ("x-amz-checksum-sha512", |d| {
                sha2::Sha512::digest(d).to_vec()
            }),
        ];
        for (name, sum) in algorithms {
            let good = b64(&sum(&data));
            let dec = || {
                ChunkedDecoder::new(
                    StreamingMode::UnsignedTrailer,
                    None,
                    Some(data.len() as u64),
                    Some(name),
                )
                .unwrap()
            };
            let body = unsigned_body(&data, 65536, &[(name, &good)]);
            assert_eq!(decode(dec(), &body).unwrap(), data, "{name}");
            let bad = b64(&sum(b"other"));
            let body = unsigned_body(&data, 65536, &[(name, &bad)]);
            let algorithm = ChecksumAlgorithm::from_header_name(name).unwrap();
            assert_eq!(
                decode(dec(), &body),
                Err(ChunkError::ChecksumMismatch(algorithm)),
                "{name}"
            );
            // A changed data byte fails too.
            let mut body = unsigned_body(&data, 65536, &[(name, &good)]);
            body[100] ^= 1;
            assert_eq!(
                decode(dec(), &body),
                Err(ChunkError::ChecksumMismatch(algorithm))
            );
        }
        // Check values.
        assert_eq!(CRC64_NVME.checksum(b"123456789"), 0xae8b_1486_0a79_9888);
        assert_eq!(crc32_b64(b"abc"), "NSRBwg==");
    }

    #[test]
    fn botocore_style_bodies() {
        // botocore's AwsChunkedWrapper output for b"abc" with CRC32, and for an empty body.
        let body = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n";
        let dec = |len| {
            ChunkedDecoder::new(
                StreamingMode::UnsignedTrailer,
                None,
                Some(len),
                Some("x-amz-checksum-crc32"),
            )
            .unwrap()
        };
        assert_eq!(decode(dec(3), body).unwrap(), b"abc");
        let empty = b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        assert_eq!(decode(dec(0), empty).unwrap(), b"");
        // Missing declared trailer.
        assert_eq!(
            decode(dec(3), b"3\r\nabc\r\n0\r\n\r\n"),
            Err(ChunkError::MalformedTrailer(
                "a trailer declared in x-amz-trailer is missing"
            ))
        );
        // Another checksum than the declared one.
        assert!(matches!(
            decode(
                dec(3),
                b"3\r\nabc\r\n0\r\nx-amz-checksum-sha1:qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\r\n\r\n"
            ),
            Err(ChunkError::MalformedTrailer(_))
        ));
        // No trailer declared, none sent (UNSIGNED-PAYLOAD + aws-chunked).
        let d = ChunkedDecoder::new(StreamingMode::UnsignedTrailer, None, Some(3), None).unwrap();
        assert_eq!(decode(d, b"3\r\nabc\r\n0\r\n\r\n").unwrap(), b"abc");
        // Chunk signatures in an unsigned body are ignored.
        let d = ChunkedDecoder::new(StreamingMode::UnsignedTrailer, None, Some(3), None).unwrap();
        let sig = "0".repeat(64);
        let body = format!("3;chunk-signature={sig}\r\nabc\r\n0;chunk-signature={sig}\r\n\r\n");
        assert_eq!(decode(d, body.as_bytes()).unwrap(), b"abc");
        let d = ChunkedDecoder::new(StreamingMode::UnsignedTrailer, None, Some(3), None).unwrap();
        let body = "3;chunk-signature=00;x=y;z\r\nabc\r\n0;;\r\n\r\n";
        assert_eq!(decode(d, body.as_bytes()).unwrap(), b"abc");
    }

    #[test]
    fn signed_chunk_header_with_trailing_whitespace_is_refused() {
        let data = [7u8; 5];
        let body = Encoder::new(DOC_SEED, false).encode(&data, 5, &[]);
        let end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let decoder = || {
            ChunkedDecoder::new(StreamingMode::Signed, Some(ctx(DOC_SEED)), Some(5), None).unwrap()
        };
        assert_eq!(decode(decoder(), &body).unwrap(), data);
        for pad in [b'\t', b' '] {
            // The `\r` of the first header line turned into whitespace (found by the proptest in
            // tests/it/chunked.rs).
            let mut bad = body.clone();
            bad[end] = pad;
            assert!(decode(decoder(), &bad).is_err(), "{pad}");
        }
    }

    #[test]
    fn line_end_variations_are_tolerated() {
        let dec = || {
            ChunkedDecoder::new(
                StreamingMode::UnsignedTrailer,
                None,
                Some(3),
                Some("x-amz-checksum-crc32"),
            )
            .unwrap()
        };
        for body in [
            &b"3\nabc\n0\nx-amz-checksum-crc32:NSRBwg==\n\n"[..],
            b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n",
            b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==",
            b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\n\r\n",
            b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n\r\n",
            b"3\r\nabc\r\n0\r\n\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n",
            b"3 \r\nabc\r\n0\r\nx-amz-checksum-crc32: NSRBwg== \r\n\r\n",
            b"03\r\nabc\r\n00\r\nX-Amz-Checksum-CRC32:NSRBwg==\r\n\r\n",
        ] {
            assert_eq!(
                decode(dec(), body).map_err(|e| (e, String::from_utf8_lossy(body).into_owned())),
                Ok(b"abc".to_vec())
            );
        }
        // Signed, no trailer: the final empty line may be missing.
        let data = [1u8; 5];
        let body = Encoder::new(DOC_SEED, false).encode(&data, 5, &[]);
        let d =
            ChunkedDecoder::new(StreamingMode::Signed, Some(ctx(DOC_SEED)), Some(5), None).unwrap();
        assert_eq!(decode(d, &body[..body.len() - 2]).unwrap(), data);
    }

    #[test]
    fn framing_errors() {
        let dec =
            |len| ChunkedDecoder::new(StreamingMode::UnsignedTrailer, None, len, None).unwrap();
        for (body, why) in [
            (&b"x\r\nabc\r\n0\r\n\r\n"[..], "invalid chunk size"),
            (b"\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
            (b"3\r\nabcd\r\n0\r\n\r\n", "chunk data not followed by crlf"),
            (
                b"3\r\nabc\r\r\n0\r\n\r\n",
                "chunk data not followed by crlf",
            ),
            (b"3\r\nabc\r\n0\r\n\r\nextra", "data after the final chunk"),
            (b"11111111111111111\r\n", "invalid chunk size"),
        ] {
            assert_eq!(decode(dec(None), body), Err(ChunkError::Malformed(why)));
        }
        assert_eq!(decode(dec(None), b"3\r\nab"), Err(ChunkError::Truncated));
        assert_eq!(decode(dec(None), b"3\r\nabc"), Err(ChunkError::Truncated));
        assert_eq!(decode(dec(None), b""), Err(ChunkError::Truncated));
        // Lengths: announced beyond the expected length fails at once; short fails at the end.
        let mut d = dec(Some(2));
        assert_eq!(
            d.feed(Bytes::from_static(b"3\r\n"), &mut Vec::new()),
            Err(ChunkError::LengthMismatch {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(
            decode(dec(Some(4)), b"3\r\nabc\r\n0\r\n\r\n"),
            Err(ChunkError::LengthMismatch {
                expected: 4,
                got: 3
            })
        );
        // Limits.
        let d = dec(None).with_limits(ChunkLimits {
            max_chunk_size: 2,
            ..ChunkLimits::default()
        });
        assert_eq!(
            decode(d, b"3\r\nabc\r\n0\r\n\r\n"),
            Err(ChunkError::TooLarge { size: 3, limit: 2 })
        );
        let long = format!("3;{}\r\nabc\r\n0\r\n\r\n", "x".repeat(5000));
        assert_eq!(
            decode(dec(None), long.as_bytes()),
            Err(ChunkError::Malformed("chunk header line too long"))
        );
        let d = ChunkedDecoder::new(
            StreamingMode::UnsignedTrailer,
            None,
            None,
            Some("x-amz-meta-big"),
        )
        .unwrap();
        let big = format!("0\r\nx-amz-meta-big:{}\r\n\r\n", "v".repeat(17_000));
        assert_eq!(
            decode(d, big.as_bytes()),
            Err(ChunkError::MalformedTrailer("trailers too large"))
        );
        // Errors are sticky.
        let mut d = dec(None);
        let mut out = Vec::new();
        assert!(d.feed(Bytes::from_static(b"zz\r\n"), &mut out).is_err());
        assert!(d.feed(Bytes::from_static(b"0\r\n\r\n"), &mut out).is_err());
        assert!(d.finish().is_err());
        // Signed mode: no signature, or a short one.
        let d =
            || ChunkedDecoder::new(StreamingMode::Signed, Some(ctx(DOC_SEED)), None, None).unwrap();
        assert_eq!(
            decode(d(), b"0\r\n\r\n"),
            Err(ChunkError::Malformed("missing chunk-signature"))
        );
        assert_eq!(
            decode(d(), b"0;chunk-signature=abc\r\n\r\n"),
            Err(ChunkError::Malformed("invalid chunk-signature"))
        );
        // Trailers in the no-trailer signed mode.
        let body = Encoder::new(DOC_SEED, false).encode(b"", 1, &[]);
        let mut with_trailer = body[..body.len() - 2].to_vec();
        with_trailer.extend_from_slice(b"x-amz-meta-a:b\r\n\r\n");
        assert!(matches!(
            decode(d(), &with_trailer),
            Err(ChunkError::MalformedTrailer(_))
        ));
    }

    #[test]
    fn constructor_checks() {
        assert_eq!(
            ChunkedDecoder::new(StreamingMode::Signed, None, None, None).err(),
            Some(ChunkError::MissingSigningContext)
        );
        assert_eq!(
            ChunkedDecoder::new(
                StreamingMode::UnsignedTrailer,
                None,
                None,
                Some("x-amz-checksum-md5")
            )
            .err(),
            Some(ChunkError::UnsupportedChecksum("x-amz-checksum-md5".into()))
        );
        assert!(ChunkedDecoder::new(
            StreamingMode::UnsignedTrailer,
            None,
            None,
            Some("x-amz-checksum-crc32, x-amz-checksum-sha1")
        )
        .is_err());
        assert!(ChunkedDecoder::new(
            StreamingMode::Signed,
            Some(ctx(DOC_SEED)),
            None,
            Some("x-amz-checksum-crc32")
        )
        .is_err());
        let d = ChunkedDecoder::new(
            StreamingMode::UnsignedTrailer,
            None,
            None,
            Some(" X-Amz-Checksum-CRC32C "),
        )
        .unwrap();
        assert_eq!(d.checksum_algorithm(), Some(ChecksumAlgorithm::Crc32c));
    }

    #[test]
    fn dechunked_bodies() {
        let dec = || {
            let mut d = ChunkedDecoder::new(
                StreamingMode::UnsignedTrailer,
                None,
                Some(3),
                Some("x-amz-checksum-crc32"),
            )
            .unwrap();
            d.assume_dechunked().unwrap();
            d
        };
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-amz-checksum-crc32", "NSRBwg==".parse().unwrap());
        let mut d = dec();
        let mut out = Vec::new();
        d.feed(Bytes::from_static(b"ab"), &mut out).unwrap();
        d.feed(Bytes::from_static(b"c"), &mut out).unwrap();
        d.http_trailers(&trailers).unwrap();
        d.finish().unwrap();
        assert_eq!(out.concat(), b"abc");
        assert_eq!(
            d.trailers().collect::<Vec<_>>(),
            [("x-amz-checksum-crc32", "NSRBwg==")]
        );
        // Missing trailers, wrong data, too long.
        let mut d = dec();
        d.feed(Bytes::from_static(b"abc"), &mut Vec::new()).unwrap();
        assert!(matches!(d.finish(), Err(ChunkError::MalformedTrailer(_))));
        let mut d = dec();
        d.feed(Bytes::from_static(b"abd"), &mut Vec::new()).unwrap();
        d.http_trailers(&trailers).unwrap();
        assert_eq!(
            d.finish(),
            Err(ChunkError::ChecksumMismatch(ChecksumAlgorithm::Crc32))
        );
        let mut d = dec();
        assert!(d
            .feed(Bytes::from_static(b"abcd"), &mut Vec::new())
            .is_err());
        // Signed modes cannot be de-chunked.
        let mut d =
            ChunkedDecoder::new(StreamingMode::Signed, Some(ctx(DOC_SEED)), None, None).unwrap();
        assert!(d.assume_dechunked().is_err());
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff_chunk_header(b""), Sniff::NeedMore);
        assert_eq!(sniff_chunk_header(b"1a"), Sniff::NeedMore);
        assert_eq!(sniff_chunk_header(b"1a\r"), Sniff::NeedMore);
        assert_eq!(
            sniff_chunk_header(b"1a\r\nxx"),
            Sniff::ChunkHeader { size: 26 }
        );
        assert_eq!(sniff_chunk_header(b"1a\n"), Sniff::ChunkHeader { size: 26 });
        assert_eq!(
            sniff_chunk_header(b"400;chunk-signature=00\r\n"),
            Sniff::ChunkHeader { size: 1024 }
        );
        assert_eq!(sniff_chunk_header(b"hello"), Sniff::Plain);
        assert_eq!(sniff_chunk_header(b"\r\n"), Sniff::Plain);
        assert_eq!(sniff_chunk_header(b"1a\rx"), Sniff::Plain);
        assert_eq!(sniff_chunk_header(b"12 34\r\n"), Sniff::Plain);
        assert_eq!(sniff_chunk_header(&[b'1'; 17]), Sniff::Plain);
        assert_eq!(sniff_chunk_header(b"1;\x00\r\n"), Sniff::Plain);
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'x', 5000));
        assert_eq!(sniff_chunk_header(&long), Sniff::Plain);
    }

    #[test]
    fn detection_and_headers() {
        let mut h = http::HeaderMap::new();
        assert_eq!(
            StreamingMode::detect(&PayloadMode::Streaming(STREAMING_SIGNED), &h),
            Ok(Some(StreamingMode::Signed))
        );
        assert!(StreamingMode::detect(
            &PayloadMode::Streaming("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"),
            &h
        )
        .is_err());
        assert_eq!(StreamingMode::detect(&PayloadMode::Unsigned, &h), Ok(None));
        h.insert("content-encoding", "gzip, AWS-Chunked".parse().unwrap());
        assert_eq!(
            StreamingMode::detect(&PayloadMode::Unsigned, &h),
            Ok(Some(StreamingMode::UnsignedTrailer))
        );
        assert_eq!(
            StreamingMode::detect(&PayloadMode::Declared(EMPTY_SHA256), &h),
            Ok(None)
        );
        assert_eq!(strip_aws_chunked("aws-chunked"), None);
        assert_eq!(strip_aws_chunked("aws-chunked,gzip"), Some("gzip".into()));
        assert_eq!(
            strip_aws_chunked("gzip, aws-chunked, br"),
            Some("gzip, br".into())
        );
        h.insert("x-amz-decoded-content-length", "66560".parse().unwrap());
        assert_eq!(decoded_content_length(&h), Ok(Some(66560)));
        h.insert("x-amz-decoded-content-length", "-1".parse().unwrap());
        assert!(decoded_content_length(&h).is_err());
        for mode in [
            StreamingMode::Signed,
            StreamingMode::SignedTrailer,
            StreamingMode::UnsignedTrailer,
        ] {
            assert_eq!(StreamingMode::from_literal(mode.as_str()), Some(mode));
        }
    }

    #[test]
    fn error_messages_are_lower_case() {
        let e = ChunkError::ChecksumMismatch(ChecksumAlgorithm::Crc32);
        assert_eq!(
            e.to_string(),
            "the CRC32 you specified did not match the calculated checksum"
        );
    }
}
