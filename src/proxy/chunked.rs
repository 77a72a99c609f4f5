//! aws-chunked request bodies on the wire: a body that decodes and verifies them on the way to
//! the upstream (see `sigv4::chunked` for the format and the checks).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};

use super::body::BoxError;
use super::error::{AwsError, Fault};
use crate::sigv4::{sniff_chunk_header, ChunkError, ChunkedDecoder, Sniff};

/// Where a [`ChunkedBody`] leaves the reason it failed, so the handler can answer with the
/// matching AWS error (see [`aws_error`]) once the upstream request fails.
#[derive(Debug, Default)]
pub struct ChunkFailure(OnceLock<ChunkError>);

impl ChunkFailure {
    /// An empty slot.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The first failure, if the body failed.
    pub fn get(&self) -> Option<&ChunkError> {
        self.0.get()
    }

    fn set(&self, e: ChunkError) {
        let _ = self.0.set(e);
    }
}

/// The AWS error for a refused aws-chunked body (S3's codes and wording).
pub fn aws_error(e: &ChunkError) -> AwsError {
    let (status, code, message) = match e {
        ChunkError::ChunkSignature | ChunkError::TrailerSignature => (
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.".to_owned(),
        ),
        ChunkError::ChecksumMismatch(algorithm) => (
            StatusCode::BAD_REQUEST,
            "BadDigest",
            format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm.name()
            ),
        ),
        ChunkError::MalformedTrailer(_) => (
            StatusCode::BAD_REQUEST,
            "MalformedTrailerError",
            "The request contained trailing data that was not well-formed or did not conform to our published schema.".to_owned(),
        ),
        ChunkError::UnsupportedChecksum(_) => (
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "The value specified in the x-amz-trailer header is not supported".to_owned(),
        ),
        ChunkError::UnsupportedMode(_) => (
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented".to_owned(),
        ),
        ChunkError::LengthMismatch { .. } => (
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header"
                .to_owned(),
        ),
        ChunkError::TooLarge { .. } => (
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size".to_owned(),
        ),
        ChunkError::MissingSigningContext => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.".to_owned(),
        ),
        ChunkError::Malformed(_) | ChunkError::Truncated => (
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "The request body terminated unexpectedly".to_owned(),
        ),
    };
    AwsError {
        status,
        code,
        message,
        extra: Vec::new(),
        fault: if status.is_server_error() {
            Fault::Internal
        } else {
            Fault::Client
        },
    }
}

/// How the incoming bytes relate to the aws-chunked framing.
enum Framing {
    /// The bytes are aws-chunked.
    AwsChunked,
    /// The HTTP layer removed the framing; trailers come as HTTP trailers.
    Dechunked,
    /// Not known yet: the first bytes, kept until a chunk header is recognised or ruled out.
    Sniff(BytesMut),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Streaming,
    Verified,
    Failed,
}

/// Everything but the inner body.
struct Core {
    decoder: ChunkedDecoder,
    framing: Framing,
    /// Decoded pieces not yet yielded; the last one is held back until the body is verified.
    ready: VecDeque<Bytes>,
    scratch: Vec<Bytes>,
    phase: Phase,
    emitted: u64,
    failure: Arc<ChunkFailure>,
}

impl Core {
    fn fail(&mut self, e: ChunkError) -> BoxError {
        self.phase = Phase::Failed;
        self.ready.clear();
        self.failure.set(e.clone());
        Box::new(e)
    }

    fn feed(&mut self, data: Bytes) -> Result<(), ChunkError> {
        if let Framing::Sniff(buf) = &mut self.framing {
            if buf.is_empty() {
                // Usually the first frame tells: no copy then.
                if let Some(decided) = decide(&data, self.decoder.expected_len()) {
                    return self.start(decided, data);
                }
            }
            buf.extend_from_slice(&data);
            let Some(decided) = decide(buf, self.decoder.expected_len()) else {
                return Ok(());
            };
            let buffered = std::mem::take(buf).freeze();
            return self.start(decided, buffered);
        }
        self.decoder.feed(data, &mut self.scratch)?;
        self.ready.extend(self.scratch.drain(..));
        Ok(())
    }

    /// Ends sniffing with the framing `dechunked` or not, then decodes what was buffered.
    fn start(&mut self, dechunked: bool, buffered: Bytes) -> Result<(), ChunkError> {
        if dechunked {
            self.decoder.assume_dechunked()?;
            self.framing = Framing::Dechunked;
        } else {
            self.framing = Framing::AwsChunked;
        }
        if buffered.is_empty() {
            return Ok(());
        }
        self.feed(buffered)
    }

    fn trailers(&mut self, trailers: &http::HeaderMap) -> Result<(), ChunkError> {
        if let Framing::Sniff(buf) = &mut self.framing {
            let buffered = std::mem::take(buf).freeze();
            // HTTP trailers come only when the aws-chunked framing was the HTTP framing.
            self.start(true, buffered)?;
        }
        match self.framing {
            Framing::Dechunked => self.decoder.http_trailers(trailers),
            _ => Err(ChunkError::MalformedTrailer(
                "http trailers after an aws-chunked body",
            )),
        }
    }

    fn end(&mut self) -> Result<(), ChunkError> {
        if let Framing::Sniff(buf) = &mut self.framing {
            let buffered = std::mem::take(buf).freeze();
            // Ended before the first chunk could be checked: not aws-chunked.
            let plain = decide(&buffered, self.decoder.expected_len()).unwrap_or(true);
            self.start(plain, buffered)?;
        }
        self.decoder.finish()
    }
}

/// The largest first chunk whose end is checked before calling a body aws-chunked (see
/// [`decide`]); a larger one is taken on its header line alone.
const SNIFF_VERIFY_MAX: u64 = 1 << 20;

/// `Some(true)` for plain (de-chunked) data, `Some(false)` for aws-chunked, `None` to wait.
///
/// A plain body can begin with bytes that read as a chunk header line: random data (an upload
/// of compressed or encrypted bytes) starts with a hex digit and a line feed about once in
/// 3,000 uploads, and was then refused as a malformed aws-chunked body (the interop test of
/// botocore's uploads of `os.urandom` data hit it). So a header line must also end in CRLF,
/// announce no more than the object, and — for a first chunk of up to 1 MiB — be followed by
/// that many bytes and a CRLF, as every aws-chunked body is; plain data passes all three only by
/// a chance of about 2⁻³².
fn decide(buf: &[u8], expected: Option<u64>) -> Option<bool> {
    match sniff_chunk_header(buf) {
        Sniff::NeedMore => None,
        Sniff::Plain => Some(true),
        Sniff::ChunkHeader { size } => {
            // A first chunk larger than the whole object, or an empty first chunk of a
            // non-empty object, cannot begin an aws-chunked body of it.
            if expected.is_some_and(|expected| size > expected || (size == 0 && expected > 0)) {
                return Some(true);
            }
            let header_len = buf.iter().position(|&b| b == b'\n')? + 1;
            if header_len < 2 || buf.get(header_len - 2) != Some(&b'\r') {
                return Some(true);
            }
            // The final empty chunk is followed by trailers, not by a CRLF after its data.
            if size == 0 || size > SNIFF_VERIFY_MAX {
                return Some(false);
            }
            let end = header_len + usize::try_from(size).ok()?;
            match buf.get(end..end + 2) {
                None => None,
                Some(b"\r\n") => Some(false),
                Some(_) => Some(true),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// Decodes an aws-chunked request body on its way to the upstream, verifying chunk
    /// signatures, the trailer signature and the trailer checksum, and yields the decoded data.
    ///
    /// The last decoded piece is held back until the whole body is verified
    /// ([`ChunkedDecoder::finish`]): on any failure the body ends in an error instead, so the
    /// upstream never receives a complete body (its `Content-Length`, set to the decoded length,
    /// stays unfulfilled and hyper aborts the request), and the reason is left in the
    /// [`ChunkFailure`] slot.
    ///
    /// Trailers are verified and dropped: nothing is forwarded after the data.
    pub struct ChunkedBody<B> {
        #[pin]
        inner: B,
        core: Core,
    }
}

impl<B> ChunkedBody<B> {
    /// Wraps `inner`.
    ///
    /// `http_chunked`: the request came with `Transfer-Encoding: chunked`, so the HTTP/1.1
    /// server already removed one level of chunked framing. Clients either send the
    /// aws-chunked bytes *as* that framing (botocore: the data then arrives plain and the
    /// trailers as HTTP trailers), or inside it (Go's HTTP client for bodies of unknown
    /// length). For the unsigned mode the body's first line tells which; signed chunks are
    /// always decoded (their signatures do not survive the HTTP layer, so a body sent the first
    /// way fails as malformed).
    pub fn new(
        inner: B,
        decoder: ChunkedDecoder,
        http_chunked: bool,
        failure: Arc<ChunkFailure>,
    ) -> Self {
        let framing = if http_chunked && !decoder.mode().is_signed() {
            Framing::Sniff(BytesMut::new())
        } else {
            Framing::AwsChunked
        };
        Self {
            inner,
            core: Core {
                decoder,
                framing,
                ready: VecDeque::new(),
                scratch: Vec::new(),
                phase: Phase::Streaming,
                emitted: 0,
                failure,
            },
        }
    }
}

impl<B> Body for ChunkedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let core = this.core;
        loop {
            match core.phase {
                Phase::Failed => return Poll::Ready(None),
                Phase::Verified => {
                    let next = core.ready.pop_front();
                    if let Some(data) = &next {
                        core.emitted += data.len() as u64;
                    }
                    return Poll::Ready(next.map(|d| Ok(Frame::data(d))));
                }
                Phase::Streaming => {}
            }
            if core.ready.len() > 1 {
                if let Some(data) = core.ready.pop_front() {
                    core.emitted += data.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
            }
            let result = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    core.phase = Phase::Failed;
                    core.ready.clear();
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => Ok(()),
                    Ok(data) => core.feed(data),
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => core.trailers(&trailers),
                        Err(_) => Ok(()),
                    },
                },
                Poll::Ready(None) => core.end().map(|()| core.phase = Phase::Verified),
            };
            if let Err(e) = result {
                return Poll::Ready(Some(Err(core.fail(e))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.core.phase == Phase::Verified && self.core.ready.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.core.decoder.expected_len() {
            Some(expected) if self.core.phase != Phase::Failed && expected > self.core.emitted => {
                SizeHint::with_exact(expected - self.core.emitted)
            }
            _ => SizeHint::default(),
        }
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
    use crate::sigv4::{derive_signing_key, ChunkSigning, Signature, StreamingMode};
    use http_body_util::BodyExt;
    use sha2::{Digest, Sha256};

    type Frames = Vec<Result<Frame<Bytes>, std::io::Error>>;

    /// A body that yields the given frames.
    struct TestBody(VecDeque<Result<Frame<Bytes>, std::io::Error>>);

    impl Body for TestBody {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    fn stream(frames: Frames) -> TestBody {
        TestBody(frames.into())
    }

    fn data(bytes: &[u8]) -> Result<Frame<Bytes>, std::io::Error> {
        Ok(Frame::data(Bytes::copy_from_slice(bytes)))
    }

    /// Trailers carrying `text`'s CRC-32 as `x-amz-checksum-crc32`.
    fn crc32_trailer(text: &[u8]) -> http::HeaderMap {
        let mut t = http::HeaderMap::new();
        t.insert(
            "x-amz-checksum-crc32",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                crc32fast::hash(text).to_be_bytes(),
            )
            .parse()
            .unwrap(),
        );
        t
    }

    fn unsigned(len: u64) -> ChunkedDecoder {
        ChunkedDecoder::new(
            StreamingMode::UnsignedTrailer,
            None,
            Some(len),
            Some("x-amz-checksum-crc32"),
        )
        .unwrap()
    }

    /// Polls the body to its end: the data frames, and the error if one came.
    async fn drain<B>(body: B) -> (Vec<u8>, Option<BoxError>)
    where
        B: Body<Data = Bytes, Error = BoxError> + Unpin,
    {
        let mut body = body;
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => out.extend_from_slice(&f.into_data().unwrap()),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    const ABC: &[u8] = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n";

    #[tokio::test]
    async fn decodes_and_releases_only_when_verified() {
        let failure = ChunkFailure::new();
        let frames = vec![data(&ABC[..5]), data(&ABC[5..])];
        let body = ChunkedBody::new(stream(frames), unsigned(3), false, failure.clone());
        assert_eq!(body.size_hint().exact(), Some(3));
        let (out, err) = drain(body).await;
        assert_eq!(out, b"abc");
        assert!(err.is_none());
        assert!(failure.get().is_none());

        // A bad checksum: the data is never yielded completely.
        let bad = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        let failure = ChunkFailure::new();
        let body = ChunkedBody::new(stream(vec![data(bad)]), unsigned(3), false, failure.clone());
        let (out, err) = drain(body).await;
        assert!(out.len() < 3);
        assert!(err.is_some());
        let e = failure.get().unwrap();
        assert!(matches!(e, ChunkError::ChecksumMismatch(_)));
        let aws = aws_error(e);
        assert_eq!(aws.code, "BadDigest");
        assert_eq!(
            aws.message,
            "The CRC32 you specified did not match the calculated checksum."
        );
        assert_eq!(aws.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn holds_back_the_last_piece_across_many_chunks() {
        // Many chunks, fed one frame each; the final check fails on length.
        let mut body = Vec::new();
        for _ in 0..10 {
            body.extend_from_slice(b"2\r\nab\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let frames = || -> Frames { body.chunks(7).map(data).collect() };
        let failure = ChunkFailure::new();
        let dec =
            ChunkedDecoder::new(StreamingMode::UnsignedTrailer, None, Some(21), None).unwrap();
        let (out, err) = drain(ChunkedBody::new(
            stream(frames()),
            dec,
            false,
            failure.clone(),
        ))
        .await;
        assert!(out.len() < 20, "{}", out.len());
        assert!(err.is_some());
        assert_eq!(
            failure.get(),
            Some(&ChunkError::LengthMismatch {
                expected: 21,
                got: 20
            })
        );
        assert_eq!(aws_error(failure.get().unwrap()).code, "IncompleteBody");
        let dec =
            ChunkedDecoder::new(StreamingMode::UnsignedTrailer, None, Some(20), None).unwrap();
        let (out, err) = drain(ChunkedBody::new(
            stream(frames()),
            dec,
            false,
            ChunkFailure::new(),
        ))
        .await;
        assert_eq!(out, b"ab".repeat(10));
        assert!(err.is_none());
    }

    #[tokio::test]
    async fn signed_chunks() {
        let key = Arc::new(derive_signing_key("secret", "20130524", "us-east-1", "s3"));
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let scope = "20130524/us-east-1/s3/aws4_request";
        let mut previous = seed.to_owned();
        let mut sign = |d: &[u8]| {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n{scope}\n{previous}\n{}\n{}",
                crate::sigv4::EMPTY_SHA256,
                hex::encode(Sha256::digest(d))
            );
            previous = hex::encode(crate::sigv4::sign(&key, sts.as_bytes()));
            previous.clone()
        };
        let mut body = Vec::new();
        for piece in [&b"hello "[..], b"world"] {
            body.extend_from_slice(
                format!("{:x};chunk-signature={}\r\n", piece.len(), sign(piece)).as_bytes(),
            );
            body.extend_from_slice(piece);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("0;chunk-signature={}\r\n\r\n", sign(b"")).as_bytes());
        let decoder = || {
            ChunkedDecoder::new(
                StreamingMode::Signed,
                Some(ChunkSigning {
                    key: key.clone(),
                    amz_date: "20130524T000000Z".into(),
                    scope: scope.into(),
                    seed: Signature::from_hex(seed).unwrap(),
                }),
                Some(11),
                None,
            )
            .unwrap()
        };
        // Even with `http_chunked`, signed bodies are decoded.
        let frames: Frames = body.chunks(3).map(data).collect();
        let (out, err) = drain(ChunkedBody::new(
            stream(frames),
            decoder(),
            true,
            ChunkFailure::new(),
        ))
        .await;
        assert_eq!(out, b"hello world");
        assert!(err.is_none());
        // A changed byte in the second chunk: "hello " may pass, "world" never does.
        let mut bad = body.clone();
        let at = body.len() - 86 - 2 - 1;
        bad[at] ^= 1;
        let failure = ChunkFailure::new();
        let frames: Frames = bad.chunks(3).map(data).collect();
        let (out, err) = drain(ChunkedBody::new(
            stream(frames),
            decoder(),
            false,
            failure.clone(),
        ))
        .await;
        assert!(err.is_some());
        assert!(!out.ends_with(b"world") && !out.ends_with(b"worle"));
        assert_eq!(failure.get(), Some(&ChunkError::ChunkSignature));
        let aws = aws_error(failure.get().unwrap());
        assert_eq!(
            (aws.status, aws.code),
            (StatusCode::FORBIDDEN, "SignatureDoesNotMatch")
        );
        // Signed chunks whose framing the HTTP layer removed (data only) fail as malformed.
        let failure = ChunkFailure::new();
        let frames = vec![data(b"hello world")];
        let (_, err) = drain(ChunkedBody::new(
            stream(frames),
            decoder(),
            true,
            failure.clone(),
        ))
        .await;
        assert!(err.is_some());
        assert_eq!(aws_error(failure.get().unwrap()).code, "IncompleteBody");
    }

    #[tokio::test]
    async fn dechunked_by_http_with_http_trailers() {
        // botocore over HTTPS: hyper removed the framing; data then HTTP trailers.
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-amz-checksum-crc32", "NSRBwg==".parse().unwrap());
        let frames = vec![
            data(b"a"),
            data(b"bc"),
            Ok(Frame::trailers(trailers.clone())),
        ];
        let (out, err) = drain(ChunkedBody::new(
            stream(frames),
            unsigned(3),
            true,
            ChunkFailure::new(),
        ))
        .await;
        assert_eq!(out, b"abc");
        assert!(err.is_none());
        // Empty object: no data at all, only trailers.
        let mut empty = http::HeaderMap::new();
        empty.insert("x-amz-checksum-crc32", "AAAAAA==".parse().unwrap());
        let frames = vec![Ok(Frame::trailers(empty))];
        let (out, err) = drain(ChunkedBody::new(
            stream(frames),
            unsigned(0),
            true,
            ChunkFailure::new(),
        ))
        .await;
        assert!(out.is_empty());
        assert!(err.is_none());
        // Wrong data.
        let failure = ChunkFailure::new();
        let frames = vec![data(b"abd"), Ok(Frame::trailers(trailers.clone()))];
        let (out, err) = drain(ChunkedBody::new(
            stream(frames),
            unsigned(3),
            true,
            failure.clone(),
        ))
        .await;
        assert!(out.len() < 3 && err.is_some());
        assert!(matches!(
            failure.get(),
            Some(ChunkError::ChecksumMismatch(_))
        ));
        // Missing trailers.
        let failure = ChunkFailure::new();
        let frames = vec![data(b"abc")];
        let (_, err) = drain(ChunkedBody::new(
            stream(frames),
            unsigned(3),
            true,
            failure.clone(),
        ))
        .await;
        assert!(err.is_some());
        assert_eq!(
            aws_error(failure.get().unwrap()).code,
            "MalformedTrailerError"
        );
        // Framed twice (aws-chunked inside HTTP chunked), split inside the first line.
        let frames = vec![data(b"3"), data(&ABC[1..])];
        let (out, err) = drain(ChunkedBody::new(
            stream(frames),
            unsigned(3),
            true,
            ChunkFailure::new(),
        ))
        .await;
        assert_eq!(out, b"abc");
        assert!(err.is_none());
        // Plain data that merely looks like a chunk header but announces more than the object.
        let text = b"9\r\nabc";
        let t = crc32_trailer(text);
        let frames = vec![data(text), Ok(Frame::trailers(t))];
        let (out, err) = drain(ChunkedBody::new(
            stream(frames),
            unsigned(6),
            true,
            ChunkFailure::new(),
        ))
        .await;
        assert_eq!(out, text);
        assert!(err.is_none());
        // Plain (random) data that begins like a chunk header within the object's size — `a`
        // and CRLF, or `5` and a bare LF — but is not followed by a chunk's end: plain, in
        // whatever pieces it arrives.
        for text in [&b"a\r\n0123456789xyz-more-bytes"[..], b"5\n0123456789"] {
            let t = crc32_trailer(text);
            for split in 1..text.len() {
                let frames = vec![
                    data(&text[..split]),
                    data(&text[split..]),
                    Ok(Frame::trailers(t.clone())),
                ];
                let (out, err) = drain(ChunkedBody::new(
                    stream(frames),
                    unsigned(text.len() as u64),
                    true,
                    ChunkFailure::new(),
                ))
                .await;
                assert_eq!(out, text, "split at {split}");
                assert!(err.is_none(), "split at {split}");
            }
        }
    }

    #[tokio::test]
    async fn inner_errors_pass_through() {
        let frames = vec![data(b"3\r\nab"), Err(std::io::Error::other("reset"))];
        let failure = ChunkFailure::new();
        let (_, err) = drain(ChunkedBody::new(
            stream(frames),
            unsigned(3),
            false,
            failure.clone(),
        ))
        .await;
        assert!(err.is_some());
        assert!(failure.get().is_none());
    }

    #[tokio::test]
    async fn collects_like_any_body() {
        let body = ChunkedBody::new(
            stream(vec![data(ABC)]),
            unsigned(3),
            false,
            ChunkFailure::new(),
        );
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abc");
    }
}
