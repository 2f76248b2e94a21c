//! Server-sent events: decoding a streamed body into events, and driving a
//! provider's streamed answer with its deadlines
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html>).
//!
//! The parser is written by hand rather than taken from `eventsource-stream`:
//! it is small, it yields `event` as an `Option` (OpenAI chat completions
//! sends none), it fails at once on invalid UTF-8 (the crate keeps buffering
//! the bytes after an invalid one and never yields again), and it bounds how
//! much one event may buffer.
//!
//! [`drive`] turns a request into a provider's stream of answer items, with
//! its deadlines.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Response;

use super::{BoxStream, ProviderError};

mod drive;

#[cfg(test)]
pub(crate) use drive::replay;
pub(crate) use drive::{Decode, Flow, drive};

/// Longest event (or line) buffered before the stream counts as broken.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field; `None` when the event had none.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental SSE parser: bytes in (split anywhere), events out.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// The line being read, without its end.
    line: Vec<u8>,
    /// The last line ended with CR: a LF right after it belongs to that end.
    after_cr: bool,
    /// A first line has been read (a byte-order mark is dropped before it).
    started: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    /// Reads `bytes`, appending each completed event to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), String> {
        while !bytes.is_empty() {
            if std::mem::take(&mut self.after_cr) && bytes.first() == Some(&b'\n') {
                bytes = &bytes[1..];
                continue;
            }
            let Some(end) = bytes.iter().position(|b| matches!(b, b'\n' | b'\r')) else {
                self.line.extend_from_slice(bytes);
                break;
            };
            self.line.extend_from_slice(&bytes[..end]);
            self.after_cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            let line = std::mem::take(&mut self.line);
            self.read_line(&line, out)?;
            self.line = line;
            self.line.clear();
        }
        let buffered = self.line.len() + self.data.as_ref().map_or(0, String::len);
        if buffered > MAX_EVENT_BYTES {
            return Err(format!("an event is longer than {MAX_EVENT_BYTES} bytes"));
        }
        Ok(())
    }

    fn read_line(&mut self, line: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), String> {
        let mut line = std::str::from_utf8(line).map_err(|_| "invalid UTF-8 in the stream")?;
        if !std::mem::replace(&mut self.started, true) {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            // The spec dispatches only events with data; `event:` alone is dropped.
            let event = self.event.take();
            if let Some(data) = self.data.take() {
                out.push_back(SseEvent { event, data });
            }
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // a comment: keep-alives from proxies
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()).filter(|v| !v.is_empty()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {} // id, retry: nothing to reconnect to
        }
        Ok(())
    }
}

/// The events of a streamed response body.
pub(crate) struct SseReader {
    provider: &'static str,
    body: BoxStream<Result<Bytes, String>>,
    decoder: SseDecoder,
    ready: VecDeque<SseEvent>,
}

impl SseReader {
    pub fn new(provider: &'static str, body: BoxStream<Result<Bytes, String>>) -> Self {
        SseReader {
            provider,
            body,
            decoder: SseDecoder::default(),
            ready: VecDeque::new(),
        }
    }

    pub fn from_response(provider: &'static str, response: Response) -> Self {
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(super::http::describe));
        Self::new(provider, Box::pin(body))
    }

    /// The next event; `None` at the end of the body (an unfinished event
    /// there is dropped, as the spec says). A body that breaks off is an error.
    pub async fn next(&mut self) -> Option<Result<SseEvent, ProviderError>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            let result = match self.body.next().await? {
                Ok(bytes) => self.decoder.feed(&bytes, &mut self.ready),
                Err(e) => Err(format!("the stream broke off: {e}")),
            };
            if let Err(detail) = result {
                return Some(Err(ProviderError::protocol(self.provider, detail)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: name.map(str::to_string),
            data: data.to_string(),
        }
    }

    /// Decodes `chunks` as consecutive reads.
    fn decode(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = VecDeque::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut out).expect("valid stream");
        }
        out.into()
    }

    /// Every split of `stream` in two reads, and one read per byte.
    fn all_splits(stream: &[u8]) -> Vec<Vec<SseEvent>> {
        let mut results: Vec<_> = (0..=stream.len())
            .map(|i| decode(&[&stream[..i], &stream[i..]]))
            .collect();
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        results.push(decode(&bytes));
        results
    }

    #[test]
    fn events_split_anywhere_even_inside_a_character() {
        let stream =
            "event: content_block_delta\ndata: {\"text\":\"Café ☕ 👋\"}\n\ndata: [DONE]\n\n";
        let expected = vec![
            event(Some("content_block_delta"), "{\"text\":\"Café ☕ 👋\"}"),
            event(None, "[DONE]"),
        ];
        for result in all_splits(stream.as_bytes()) {
            assert_eq!(result, expected);
        }
    }

    #[test]
    fn several_events_in_one_read() {
        let stream = b"data: a\n\ndata: b\n\nevent: ping\ndata: {}\n\n";
        assert_eq!(
            decode(&[stream]),
            vec![
                event(None, "a"),
                event(None, "b"),
                event(Some("ping"), "{}")
            ]
        );
    }

    #[test]
    fn comments_are_skipped_and_data_lines_joined() {
        let stream =
            b": keep-alive\n\n: OPENROUTER PROCESSING\ndata: one\ndata:two\ndata:  three\n\n";
        assert_eq!(decode(&[stream]), vec![event(None, "one\ntwo\n three")]);
    }

    #[test]
    fn crlf_and_cr_line_ends_even_split_between_reads() {
        let stream = b"event: x\r\ndata: 1\r\n\r\ndata: 2\r\rdata: 3\n\n";
        let expected = vec![event(Some("x"), "1"), event(None, "2"), event(None, "3")];
        for result in all_splits(stream) {
            assert_eq!(result, expected);
        }
    }

    #[test]
    fn an_event_without_data_or_its_blank_line_is_not_dispatched() {
        assert_eq!(decode(&[b"event: ping\n\n"]), vec![]);
        assert_eq!(decode(&[b"data: cut"]), vec![]);
        assert_eq!(
            decode(&[b"\xef\xbb\xbfdata\n\nid: 1\nretry: 5\ndata: x\n\n"]),
            vec![event(None, ""), event(None, "x")]
        );
    }

    #[test]
    fn invalid_utf8_and_endless_lines_are_errors() {
        let mut out = VecDeque::new();
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(b"data: \xff\xfe\n\n", &mut out).is_err());
        let mut decoder = SseDecoder::default();
        let long = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert!(decoder.feed(&long, &mut out).is_err());
    }

    #[tokio::test]
    async fn reader_yields_events_then_none_or_the_break() {
        let chunks: Vec<Result<Bytes, String>> = vec![
            Ok(Bytes::from_static(b"data: a\n")),
            Ok(Bytes::from_static(b"\ndata: b\n\n")),
        ];
        let mut reader = SseReader::new("test", Box::pin(futures_util::stream::iter(chunks)));
        assert_eq!(reader.next().await, Some(Ok(event(None, "a"))));
        assert_eq!(reader.next().await, Some(Ok(event(None, "b"))));
        assert_eq!(reader.next().await, None);

        let chunks = vec![Ok(Bytes::from_static(b"data: a\n\n")), Err("reset".into())];
        let mut reader = SseReader::new("test", Box::pin(futures_util::stream::iter(chunks)));
        assert_eq!(reader.next().await, Some(Ok(event(None, "a"))));
        assert!(matches!(
            reader.next().await,
            Some(Err(ProviderError::Protocol { .. }))
        ));
    }
}
