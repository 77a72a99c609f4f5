//! Request bodies: bounded buffering, and a streaming body that verifies its SHA-256 at the end.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

/// The error type of bodies Tollgate builds.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A boxed body, used both ways.
pub type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body wrapped into [`BoxBody`].
pub fn boxed<B>(body: B) -> BoxBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A complete in-memory body.
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    boxed(http_body_util::Full::new(bytes.into()))
}

/// What [`read_up_to`] found.
pub enum Read<B> {
    /// The whole body, within the limit.
    Complete(Bytes),
    /// The body is longer than the limit: what was read, and the rest still to come.
    Partial(Vec<Bytes>, B),
}

/// Reads a body until its end or until more than `limit` bytes were read.
pub async fn read_up_to<B>(mut body: B, limit: u64) -> Result<Read<B>, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    if body.is_end_stream() {
        return Ok(Read::Complete(Bytes::new()));
    }
    if body.size_hint().lower() > limit {
        return Ok(Read::Partial(Vec::new(), body));
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            chunks.push(data);
            if total > limit {
                return Ok(Read::Partial(chunks, body));
            }
        }
        // Trailers of a buffered body are dropped: nothing downstream reads them yet.
    }
    Ok(Read::Complete(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut buf = BytesMut::with_capacity(usize::try_from(total).unwrap_or(0));
            for c in chunks {
                buf.extend_from_slice(&c);
            }
            buf.freeze()
        }
    }))
}

/// SHA-256 of a buffered body.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    // Most calls (every GET) have no body: its hash is a constant.
    if bytes.is_empty() {
        return crate::sigv4::EMPTY_SHA256_BYTES;
    }
    Sha256::digest(bytes).into()
}

/// The body's hash did not match the signed `x-amz-content-sha256`.
#[derive(Debug, thiserror::Error)]
#[error("request body does not match its x-amz-content-sha256")]
pub struct PayloadMismatch;

pin_project_lite::pin_project! {
    /// Streams a body to the upstream while hashing it. The last data chunk is held back until
    /// the hash is known: on a mismatch it is never sent and the body ends in an error, so the
    /// upstream never sees a complete body (its `Content-Length` or chunked framing stays
    /// unfinished and hyper aborts the request).
    pub struct VerifyingBody<B> {
        prefix: std::vec::IntoIter<Bytes>,
        #[pin]
        inner: B,
        hasher: Option<Sha256>,
        expected: [u8; 32],
        held: Option<Bytes>,
        trailers: Option<http::HeaderMap>,
        mismatch: Arc<AtomicBool>,
    }
}

impl<B> VerifyingBody<B> {
    /// Wraps `inner`, whose first bytes (`prefix`) were already read. `mismatch` is set when the
    /// hash does not match, so the caller can answer with the right error.
    pub fn new(
        prefix: Vec<Bytes>,
        inner: B,
        expected: [u8; 32],
        mismatch: Arc<AtomicBool>,
    ) -> Self {
        Self {
            prefix: prefix.into_iter(),
            inner,
            hasher: Some(Sha256::new()),
            expected,
            held: None,
            trailers: None,
            mismatch,
        }
    }
}

impl<B> Body for VerifyingBody<B>
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
        loop {
            let Some(hasher) = this.hasher.as_mut() else {
                // Verified: release what was held back, then the trailers, then the end.
                if let Some(last) = this.held.take() {
                    return Poll::Ready(Some(Ok(Frame::data(last))));
                }
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            let chunk = match this.prefix.next() {
                Some(c) => Some(c),
                None => match this.inner.as_mut().poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => Some(data),
                        Err(frame) => {
                            *this.trailers = frame.into_trailers().ok();
                            None
                        }
                    },
                    Poll::Ready(None) => None,
                },
            };
            match chunk {
                Some(data) if data.is_empty() => continue,
                Some(data) => {
                    hasher.update(&data);
                    if let Some(previous) = this.held.replace(data) {
                        return Poll::Ready(Some(Ok(Frame::data(previous))));
                    }
                }
                None => {
                    let got: [u8; 32] = this
                        .hasher
                        .take()
                        .map(|h| h.finalize().into())
                        .unwrap_or_default();
                    if !crate::sigv4::ct_eq32(&got, this.expected) {
                        *this.held = None;
                        *this.trailers = None;
                        this.mismatch.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(Box::new(PayloadMismatch))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Never report the end early: the final hash check happens on the last poll.
        false
    }

    fn size_hint(&self) -> SizeHint {
        let pending: u64 = self
            .prefix
            .as_slice()
            .iter()
            .chain(self.held.iter())
            .map(|b| b.len() as u64)
            .sum();
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + pending);
        if let Some(u) = inner.upper() {
            hint.set_upper(u + pending);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn read_up_to_limits() {
        let body = http_body_util::Full::new(Bytes::from_static(b"hello"));
        match read_up_to(body, 5).await.unwrap() {
            Read::Complete(b) => assert_eq!(&b[..], b"hello"),
            Read::Partial(..) => panic!("within the limit"),
        }
        let body = http_body_util::Full::new(Bytes::from_static(b"hello!"));
        assert!(matches!(
            read_up_to(body, 5).await.unwrap(),
            Read::Partial(..)
        ));
    }

    #[tokio::test]
    async fn verifying_body_passes_and_fails() {
        let flag = Arc::new(AtomicBool::new(false));
        let good = sha256(b"abcdef");
        let body = VerifyingBody::new(
            vec![Bytes::from_static(b"ab")],
            http_body_util::Full::new(Bytes::from_static(b"cdef")),
            good,
            flag.clone(),
        );
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"abcdef");
        assert!(!flag.load(Ordering::Acquire));
        let body = VerifyingBody::new(
            vec![],
            http_body_util::Full::new(Bytes::from_static(b"abcdeX")),
            good,
            flag.clone(),
        );
        assert!(body.collect().await.is_err());
        assert!(flag.load(Ordering::Acquire));
    }
}
