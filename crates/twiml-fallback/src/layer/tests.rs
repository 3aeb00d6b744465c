use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

use super::body::{Buffer, Collected, poll_collect};
use super::*;
use crate::error_code::ErrorCode;
use crate::twiml::Rejection;

struct Chunks(VecDeque<&'static [u8]>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.0
                .pop_front()
                .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk)))),
        )
    }
}

fn collect(chunks: &[&'static [u8]], limit: usize) -> Collected {
    let mut body = Chunks(chunks.iter().copied().collect());
    let mut buffer = Buffer::default();
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    match poll_collect(Pin::new(&mut body), &mut buffer, limit, &mut cx) {
        Poll::Ready(Ok(collected)) => collected,
        other => panic!("unexpected {:?}", other.is_pending()),
    }
}

#[test]
fn bounded_reads_keep_every_byte_read() {
    match collect(&[b"abc", b"def"], 10) {
        Collected::Complete(bytes) => assert_eq!(&bytes[..], b"abcdef"),
        Collected::OverLimit(_) => panic!("under the limit"),
    }
    match collect(&[b"abcd", b"efghij", b"never read"], 5) {
        Collected::OverLimit(bytes) => assert_eq!(&bytes[..], b"abcdefghij"),
        Collected::Complete(_) => panic!("over the limit"),
    }
    match collect(&[b"12345"], 5) {
        Collected::Complete(bytes) => assert_eq!(bytes.len(), 5),
        Collected::OverLimit(_) => panic!("exactly the limit is fine"),
    }
}

#[test]
fn causes_name_themselves_and_map_to_twilio_codes() {
    let rejected = |code| {
        FallbackCause::Rejected(Rejection {
            code,
            message: String::new(),
            diagnostic: None,
        })
    };
    for (cause, name, code) in [
        (FallbackCause::Panic("x".into()), "panic", 11200),
        (FallbackCause::BodyPanic("x".into()), "body-panic", 11200),
        (FallbackCause::Error("x".into()), "error", 11200),
        (FallbackCause::BodyError("x".into()), "body-error", 11200),
        (
            FallbackCause::Timeout(std::time::Duration::from_secs(12)),
            "timeout",
            11205,
        ),
        (FallbackCause::Status(http::StatusCode::BAD_GATEWAY), "status", 11200),
        (rejected(ErrorCode::INVALID_CONTENT_TYPE), "content-type", 12300),
        (rejected(ErrorCode::EMPTY_RESPONSE), "empty", 11770),
        (rejected(ErrorCode::RESPONSE_TOO_LARGE), "too-large", 11750),
        (rejected(ErrorCode::DOCUMENT_PARSE_FAILURE), "invalid-twiml", 12100),
        (rejected(ErrorCode::ROOT_NOT_RESPONSE), "invalid-twiml", 12102),
        (rejected(ErrorCode::SCHEMA_VALIDATION), "invalid-twiml", 12200),
    ] {
        assert_eq!(cause.as_str(), name);
        assert_eq!(cause.error_code(), ErrorCode::new(code), "{name}");
        // Every name is a valid header value.
        assert!(http::HeaderValue::from_str(name).is_ok());
    }
}

#[test]
fn layer_and_services_are_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<FallbackLayer>();
    assert_traits::<Fallback<tower_service_fn::Echo>>();
    assert_traits::<ValidateTwilioSignatureLayer>();
}

mod tower_service_fn {
    #[derive(Clone)]
    pub(super) struct Echo;
}
