//! Event-stream responses (`application/vnd.amazon.eventstream`), as botocore's `eventstream.py` reads them:
//! StartLiveTail answers with one.
//!
//! A message is `total length (u32 BE) · headers length (u32 BE) · CRC32 of those 8 bytes · headers · payload ·
//! CRC32 of everything before it`; a header is `name length (u8) · name · type (u8, 7 = string) · value length
//! (u16 BE) · value`. An event carries `:message-type: event`, `:event-type` and `:content-type`; an exception
//! `:message-type: exception` and `:exception-type`. For the JSON protocols botocore first reads an
//! `initial-response` event (the output's members that are not the stream: `{}` here), which [`Body`] sends before
//! the backend's events.
//!
//! The backend hands over an [`EventStream`] (a poll function over its own channel, so berth-api never learns what
//! produces the events); the server writes each event as one frame the moment it is ready, and the stream ends
//! when the backend ends it, the client goes away (the body is dropped, and with it the backend's receiver) or
//! the server shuts down.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};

/// The content type of an event-stream response.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// One message of an event stream: an event of a type, or the exception that ends the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// `:message-type: event` with this `:event-type` and a JSON payload.
    Event { event_type: String, payload: Bytes },
    /// `:message-type: exception` with this `:exception-type` and a JSON payload (`{"message": ...}`).
    Exception { exception_type: String, payload: Bytes },
}

type PollFn = dyn FnMut(&mut Context<'_>) -> Poll<Option<StreamEvent>> + Send;

/// The events a streaming operation answers with, as the backend produces them. Cheap to clone (clones share
/// the one source); only the server polls it.
#[derive(Clone)]
pub struct EventStream {
    source: Arc<Mutex<Box<PollFn>>>,
}

impl EventStream {
    /// A stream whose next event `poll` yields (`Ready(None)`: the stream ended), e.g. a channel's `poll_recv`.
    pub fn from_poll(poll: impl FnMut(&mut Context<'_>) -> Poll<Option<StreamEvent>> + Send + 'static) -> Self {
        EventStream { source: Arc::new(Mutex::new(Box::new(poll))) }
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        (self.source.lock().unwrap_or_else(PoisonError::into_inner))(cx)
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventStream")
    }
}

impl PartialEq for EventStream {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.source, &other.source)
    }
}

/// Encodes one message: prelude, prelude CRC, headers (all strings), payload, message CRC.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers.iter().map(|(n, v)| 1 + n.len() + 1 + 2 + v.len()).sum();
    let total = 12 + headers_len + payload.len() + 4;
    let mut out = BytesMut::with_capacity(total);
    out.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
    out.put_u32(u32::try_from(headers_len).unwrap_or(u32::MAX));
    let prelude_crc = crc32fast::hash(&out[..8]);
    out.put_u32(prelude_crc);
    for (name, value) in headers {
        out.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.put_slice(name.as_bytes());
        out.put_u8(7);
        out.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
        out.put_slice(value.as_bytes());
    }
    out.put_slice(payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out.freeze()
}

/// The frame of one event.
pub fn encode_event(event: &StreamEvent) -> Bytes {
    match event {
        StreamEvent::Event { event_type, payload } => encode_message(
            &[(":message-type", "event"), (":event-type", event_type), (":content-type", "application/json")],
            payload,
        ),
        StreamEvent::Exception { exception_type, payload } => encode_message(
            &[
                (":message-type", "exception"),
                (":exception-type", exception_type),
                (":content-type", "application/json"),
            ],
            payload,
        ),
    }
}

/// The body of every API response: the encoded answer at once, or an event stream frame by frame.
pub struct Body(Inner);

enum Inner {
    Full(Option<Bytes>),
    Stream {
        /// The `initial-response` event, sent first.
        initial: Option<Bytes>,
        events: EventStream,
        /// Resolves when the server shuts down: the stream ends there.
        stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    },
}

impl Body {
    pub(crate) fn full(bytes: Bytes) -> Self {
        Body(Inner::Full(Some(bytes)))
    }

    pub(crate) fn stream(events: EventStream, stop: Pin<Box<dyn Future<Output = ()> + Send>>) -> Self {
        let initial = encode_event(&StreamEvent::Event {
            event_type: "initial-response".into(),
            payload: Bytes::from_static(b"{}"),
        });
        Body(Inner::Stream { initial: Some(initial), events, stop })
    }
}

/// What a request is answered with: an encoded response, or an event stream.
// Built once and matched at once, like `Response` itself.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Answer {
    Response(crate::Response),
    Stream(EventStream),
}

/// Whether the request's operation answers with an event stream.
pub fn is_event_stream(request: &crate::Request) -> bool {
    matches!(request, crate::Request::Logs(berth_model::logs::Operation::StartLiveTail(_)))
}

/// The head of an event-stream answer (200, its content type, the request id) over its body.
pub(crate) fn response(
    events: EventStream,
    request_id: &str,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> http::Response<Body> {
    let stop: Pin<Box<dyn Future<Output = ()> + Send>> = match stop {
        Some(mut rx) => Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        }),
        None => Box::pin(std::future::pending()),
    };
    let mut resp = http::Response::new(Body::stream(events, stop));
    let headers = resp.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = http::HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    resp
}

impl Body {
    /// The whole body of a non-streaming answer; a stream's events are only served by [`crate::serve`].
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.0 {
            Inner::Full(b) => b.unwrap_or_default(),
            Inner::Stream { .. } => Bytes::new(),
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut self.0 {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream { initial, events, stop } => {
                if let Some(first) = initial.take() {
                    return Poll::Ready(Some(Ok(Frame::data(first))));
                }
                if stop.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                events.poll_next(cx).map(|e| e.map(|e| Ok(Frame::data(encode_event(&e)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.0, Inner::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Stream { .. } => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes one message as botocore's `EventStreamMessage` does, checking both CRCs.
    fn decode(frame: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let total = be32(&frame[0..4]);
        let headers_len = be32(&frame[4..8]);
        assert_eq!(total, frame.len());
        assert_eq!(be32(&frame[8..12]) as u32, crc32fast::hash(&frame[..8]), "prelude CRC");
        assert_eq!(be32(&frame[total - 4..]) as u32, crc32fast::hash(&frame[..total - 4]), "message CRC");
        let mut headers = Vec::new();
        let mut h = &frame[12..12 + headers_len];
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8(h[1..1 + n].to_vec()).expect("name");
            assert_eq!(h[1 + n], 7, "string header");
            let len = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
            let value = String::from_utf8(h[4 + n..4 + n + len].to_vec()).expect("value");
            headers.push((name, value));
            h = &h[4 + n + len..];
        }
        (headers, frame[12 + headers_len..total - 4].to_vec())
    }

    #[test]
    fn frames_round_trip_with_both_crcs() {
        let frame = encode_event(&StreamEvent::Event {
            event_type: "sessionUpdate".into(),
            payload: Bytes::from_static(br#"{"sessionResults":[]}"#),
        });
        let (headers, payload) = decode(&frame);
        let want =
            [(":message-type", "event"), (":event-type", "sessionUpdate"), (":content-type", "application/json")];
        assert_eq!(headers, want.map(|(n, v)| (n.to_string(), v.to_string())));
        assert_eq!(payload, br#"{"sessionResults":[]}"#);
    }

    #[test]
    fn a_known_vector() {
        // botocore's tests/unit/test_eventstream.py: EMPTY_MESSAGE and PAYLOAD_ONE_STR_HEADER.
        let frame = encode_message(&[], b"");
        assert_eq!(&frame[..], b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2\x48\xeb\x7d\x98\xc8\xff");
        let frame = encode_message(&[("content-type", "application/json")], b"{'foo':'bar'}");
        let want: &[u8] = b"\x00\x00\x00\x3d\x00\x00\x00\x20\x07\xfd\x83\x96\x0ccontent-type\x07\x00\x10\
            application/json{'foo':'bar'}\x8d\x9c\x08\xb1";
        assert_eq!(&frame[..], want);
    }

    #[test]
    fn exceptions_name_their_type() {
        let frame = encode_event(&StreamEvent::Exception {
            exception_type: "SessionTimeoutException".into(),
            payload: Bytes::from_static(br#"{"message":"over"}"#),
        });
        let (headers, _) = decode(&frame);
        assert_eq!(headers[0], (":message-type".to_string(), "exception".to_string()));
        assert_eq!(headers[1], (":exception-type".to_string(), "SessionTimeoutException".to_string()));
    }
}
