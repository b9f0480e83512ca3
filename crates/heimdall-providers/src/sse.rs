//! Server-sent events: split an upstream byte stream into events as they arrive.
//!
//! Handles `\n`, `\r\n` line ends, multi-line `data:`, comments and events
//! split across network reads. It must not buffer more than one incomplete
//! event, so streams stay chunk-by-chunk.

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};

use crate::error::ProviderError;

/// One SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `event:` field, if any.
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser: feed bytes, take complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: BytesMut,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Appends bytes and returns every event completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line = self.buf.split_to(pos + 1);
            line.truncate(pos);
            if line.last() == Some(&b'\r') {
                line.truncate(pos - 1);
            }
            if let Some(ev) = self.line(&line) {
                out.push(ev);
            }
        }
        out
    }

    /// Flushes a final event that was not followed by a blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let rest = self.buf.split();
            let _ = self.line(&rest);
        }
        self.dispatch()
    }

    fn line(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => (
                &text[..i],
                text[i + 1..].strip_prefix(' ').unwrap_or(&text[i + 1..]),
            ),
            None => (&text[..], ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let data = self.data.take();
        let event = self.event.take();
        data.map(|data| SseEvent { event, data })
    }
}

/// Turns an HTTP body stream into a stream of SSE events. A transport error
/// mid-way becomes `StreamInterrupted`; a timeout becomes `Timeout`. A body
/// that ends without a single event (empty, or not SSE at all) ends with
/// `BadResponse`, so that it never reads as an empty success.
pub fn events(
    body: impl futures::Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
) -> BoxStream<'static, Result<SseEvent, ProviderError>> {
    let state = (
        Box::pin(body),
        SseParser::default(),
        std::collections::VecDeque::new(),
        (false, false),
    );
    futures::stream::unfold(
        state,
        |(mut body, mut parser, mut queue, (mut done, mut seen))| async move {
            loop {
                if let Some(ev) = queue.pop_front() {
                    seen = true;
                    return Some((Ok(ev), (body, parser, queue, (done, seen))));
                }
                if done {
                    return None;
                }
                match body.next().await {
                    Some(Ok(mut bytes)) => {
                        let chunk = bytes.copy_to_bytes(bytes.remaining());
                        queue.extend(parser.push(&chunk));
                    }
                    Some(Err(err)) => {
                        done = true;
                        return Some((Err(err), (body, parser, queue, (done, seen))));
                    }
                    None => {
                        done = true;
                        queue.extend(parser.finish());
                        if !seen && queue.is_empty() {
                            let err = ProviderError::BadResponse(
                                "the upstream answered a stream request without any server-sent event".into(),
                            );
                            return Some((Err(err), (body, parser, queue, (done, seen))));
                        }
                    }
                }
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_reads() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: message_start\r\nda").is_empty());
        let evs = p.push(b"ta: {\"a\":1}\r\n\r\ndata: [DONE]\n\n: comment\n\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].event.as_deref(), Some("message_start"));
        assert_eq!(evs[0].data, "{\"a\":1}");
        assert_eq!(evs[1].data, "[DONE]");
    }

    #[tokio::test]
    async fn a_body_without_events_ends_with_an_error() {
        for body in [&b""[..], b"{\"id\": \"x\", \"choices\": []}"] {
            let bytes = futures::stream::iter(vec![Ok(Bytes::copy_from_slice(body))]);
            let got: Vec<_> = events(bytes).collect().await;
            assert_eq!(got.len(), 1);
            assert!(
                matches!(got[0], Err(ProviderError::BadResponse(_))),
                "{got:?}"
            );
        }
        let bytes = futures::stream::iter(vec![Ok(Bytes::from_static(b"data: [DONE]\n\n"))]);
        let got: Vec<_> = events(bytes).collect().await;
        assert!(matches!(&got[..], [Ok(_)]), "{got:?}");
    }

    #[test]
    fn joins_multiline_data_and_flushes_tail() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: a\ndata: b\n").is_empty());
        assert_eq!(p.finish().unwrap().data, "a\nb");
    }
}
