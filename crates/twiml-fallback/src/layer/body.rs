//! The middleware's bodies: [`RequestBody`], what the wrapped service receives (also at
//! [`layer::RequestBody`](super::RequestBody)); [`FallbackBody`] and [`SignatureBody`], what the
//! two layers answer with. Named in a service's type; rarely otherwise.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};

pub use super::signature::SignatureBody;

/// The request body handed to the wrapped service: the bytes the layer buffered, or — for a body
/// over the layer's limit, which it passes on untouched — the bytes read so far followed by the
/// rest of the original stream.
#[derive(Debug)]
pub struct RequestBody<B> {
    kind: RequestKind<B>,
}

#[derive(Debug)]
enum RequestKind<B> {
    Buffered(Option<Bytes>),
    Partial { prefix: Option<Bytes>, rest: Pin<Box<B>> },
}

impl<B> RequestBody<B> {
    /// A complete, buffered body.
    pub fn buffered(bytes: Bytes) -> Self {
        Self {
            kind: RequestKind::Buffered((!bytes.is_empty()).then_some(bytes)),
        }
    }

    pub(crate) fn partial(prefix: Bytes, rest: Pin<Box<B>>) -> Self {
        Self {
            kind: RequestKind::Partial {
                prefix: (!prefix.is_empty()).then_some(prefix),
                rest,
            },
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match &mut self.get_mut().kind {
            RequestKind::Buffered(data) => Poll::Ready(data.take().map(|bytes| Ok(Frame::data(bytes)))),
            RequestKind::Partial { prefix, rest } => {
                if let Some(bytes) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                let frame = ready!(rest.as_mut().poll_frame(cx));
                Poll::Ready(
                    frame.map(|result| {
                        result.map(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
                    }),
                )
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            RequestKind::Buffered(data) => data.is_none(),
            RequestKind::Partial { prefix, rest } => prefix.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            RequestKind::Buffered(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            RequestKind::Partial { prefix, rest } => {
                let prefix = prefix.as_ref().map_or(0, |p| p.len() as u64);
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(prefix));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(prefix));
                }
                hint
            }
        }
    }
}

/// The fallback layer's response body: always complete in memory (a passed-through answer is the
/// app's exact bytes; a fallback answer is TwiML).
#[derive(Clone, Debug, Default)]
pub struct FallbackBody {
    data: Option<Bytes>,
}

impl FallbackBody {
    /// A body of `bytes`.
    pub fn new(bytes: Bytes) -> Self {
        Self {
            data: (!bytes.is_empty()).then_some(bytes),
        }
    }
}

impl Body for FallbackBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.data.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// How a bounded read of a body ended.
pub(crate) enum Collected {
    /// The whole body, at most the limit.
    Complete(Bytes),
    /// The body passed the limit; everything read so far.
    OverLimit(Bytes),
}

/// The bytes of a body read so far: a body that arrives as one chunk (the usual case for a
/// webhook) is kept as that chunk, without a copy.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    first: Option<Bytes>,
    rest: Vec<u8>,
}

impl Buffer {
    fn len(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.rest.len()
    }

    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        match &self.first {
            None if self.rest.is_empty() => self.first = Some(chunk),
            _ => {
                if let Some(first) = self.first.take() {
                    self.rest.extend_from_slice(&first);
                }
                self.rest.extend_from_slice(&chunk);
            }
        }
    }

    fn take(&mut self) -> Bytes {
        match self.first.take() {
            Some(first) => first,
            None => Bytes::from(std::mem::take(&mut self.rest)),
        }
    }
}

/// Reads `body` into `buffer` until it ends or holds more than `limit` bytes (it may then hold a
/// little more: whole chunks are kept). Trailers are ignored.
pub(crate) fn poll_collect<B: Body + ?Sized>(
    mut body: Pin<&mut B>,
    buffer: &mut Buffer,
    limit: usize,
    cx: &mut Context<'_>,
) -> Poll<Result<Collected, B::Error>> {
    loop {
        match ready!(body.as_mut().poll_frame(cx)) {
            None => return Poll::Ready(Ok(Collected::Complete(buffer.take()))),
            Some(Err(error)) => return Poll::Ready(Err(error)),
            Some(Ok(frame)) => {
                if let Ok(mut data) = frame.into_data() {
                    // Keep whole chunks, even past the limit: a request passed on must lose nothing.
                    let length = data.remaining();
                    buffer.push(data.copy_to_bytes(length));
                    if buffer.len() > limit {
                        return Poll::Ready(Ok(Collected::OverLimit(buffer.take())));
                    }
                }
            }
        }
    }
}
